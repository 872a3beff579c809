//! One container shared by every test of a process: started on first use, removed
//! when the process exits (statics never drop, so the exit hook does it).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::OnceCell;

use crate::container::Container;
use crate::error::Result;

/// A container started once per process, on first use, and handed to every test
/// that asks; removed when the process exits (or by the watcher if it is killed).
///
/// ```no_run
/// use dockhand::{Container, SharedContainer, WaitFor};
///
/// static DB: SharedContainer = SharedContainer::new(|| {
///     Box::pin(async {
///         Container::builder("fixtures/busybox:latest")
///             .cmd(["sh", "-c", "echo ready; sleep 3600"])
///             .wait_for(WaitFor::log("ready"))
///             .start()
///             .await
///     })
/// });
///
/// #[tokio::test]
/// async fn uses_the_shared_database() -> dockhand::Result<()> {
///     let db = DB.get().await?;
///     db.exec(["true"]).await?;
///     Ok(())
/// }
/// ```
pub struct SharedContainer {
    start: fn() -> BoxFuture<'static, Result<Container>>,
    cell: OnceCell<Arc<Container>>,
}

impl std::fmt::Debug for SharedContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedContainer")
            .field("started", &self.cell.initialized())
            .finish()
    }
}

impl SharedContainer {
    /// Describes how to start the container; nothing starts until [`get`](Self::get).
    ///
    /// ```
    /// static WEB: dockhand::SharedContainer = dockhand::SharedContainer::new(|| {
    ///     Box::pin(dockhand::Container::builder("busybox").cmd(["sleep", "3600"]).start())
    /// });
    /// ```
    pub const fn new(start: fn() -> BoxFuture<'static, Result<Container>>) -> Self {
        SharedContainer {
            start,
            cell: OnceCell::const_new(),
        }
    }

    /// The container, started by the first caller; callers that come meanwhile
    /// wait for that start. A failed start is not cached: the next call tries again.
    ///
    /// ```no_run
    /// # static DB: dockhand::SharedContainer = dockhand::SharedContainer::new(|| Box::pin(dockhand::Container::builder("x").start()));
    /// # async fn demo() -> dockhand::Result<()> {
    /// let db = DB.get().await?;
    /// println!("{}", db.name());
    /// # Ok(()) }
    /// ```
    pub async fn get(&'static self) -> Result<Arc<Container>> {
        start_once(&self.cell, self.start).await
    }
}

/// Something holding a container: what a shared server is removed through.
pub(crate) trait HoldsContainer: Send + Sync + 'static {
    fn held_container(&self) -> &Container;
}

impl HoldsContainer for Container {
    fn held_container(&self) -> &Container {
        self
    }
}

/// Starts a shared server on first use (later callers wait for that start; a
/// failure is not cached) and registers its removal for exit.
pub(crate) async fn start_once<T: HoldsContainer>(
    cell: &'static OnceCell<Arc<T>>,
    start: impl FnOnce() -> BoxFuture<'static, Result<T>>,
) -> Result<Arc<T>> {
    cell.get_or_try_init(|| async {
        let server = Arc::new(start().await?);
        let held = server.clone();
        crate::worker::release_at_exit(Box::new(move || held.held_container().release_at_exit()));
        Ok(server)
    })
    .await
    .cloned()
}
