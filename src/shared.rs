//! One container shared by every test: of the test run (found again by its
//! configuration in every process), or of the process (started by a closure,
//! removed by the exit hook, since statics never drop).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::OnceCell;

use crate::container::{Container, ContainerBuilder};
use crate::error::Result;
use crate::reuse::Reuse;

/// A container started once, on first use, and handed to every test that asks.
///
/// [`SharedContainer::reused`] shares it with every process of the test run
/// (under `cargo nextest run` each test is a process of its own); it is
/// removed once the run is over and no process uses it. [`SharedContainer::new`]
/// starts one per process, with any start code, removed when the process
/// exits (or by the watcher if it is killed).
///
/// ```no_run
/// use dockhand::{Container, SharedContainer, WaitFor};
///
/// static WEB: SharedContainer = SharedContainer::reused(|| {
///     Container::builder("fixtures/busybox:latest")
///         .cmd(["httpd", "-f", "-p", "8080"])
///         .expose(8080)
///         .wait_for(WaitFor::port(8080))
/// });
///
/// #[tokio::test]
/// async fn serves() -> dockhand::Result<()> {
///     let web = WEB.get().await?; // one container for the whole run
///     println!("{}", web.address(8080)?);
///     Ok(())
/// }
/// ```
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
    recipe: Recipe,
    cell: OnceCell<Arc<Container>>,
}

/// How the shared container comes to be.
enum Recipe {
    /// This process's own, started by this code.
    Start(fn() -> BoxFuture<'static, Result<Container>>),
    /// The run's, from this builder.
    Reused(fn() -> ContainerBuilder),
}

impl std::fmt::Debug for SharedContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedContainer")
            .field("started", &self.cell.initialized())
            .finish()
    }
}

impl SharedContainer {
    /// One container per process, started by this code; nothing starts until
    /// [`get`](Self::get).
    ///
    /// ```
    /// static WEB: dockhand::SharedContainer = dockhand::SharedContainer::new(|| {
    ///     Box::pin(dockhand::Container::builder("busybox").cmd(["sleep", "3600"]).start())
    /// });
    /// ```
    pub const fn new(start: fn() -> BoxFuture<'static, Result<Container>>) -> Self {
        SharedContainer {
            recipe: Recipe::Start(start),
            cell: OnceCell::const_new(),
        }
    }

    /// One container for every process of the test run, from this builder
    /// ([`ContainerBuilder::reuse`] with [`Reuse::Run`]); nothing starts until
    /// [`get`](Self::get).
    ///
    /// ```
    /// static WEB: dockhand::SharedContainer = dockhand::SharedContainer::reused(|| {
    ///     dockhand::Container::builder("busybox").cmd(["sleep", "3600"])
    /// });
    /// ```
    pub const fn reused(builder: fn() -> ContainerBuilder) -> Self {
        SharedContainer {
            recipe: Recipe::Reused(builder),
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
        match self.recipe {
            Recipe::Start(start) => start_once(&self.cell, start).await,
            Recipe::Reused(builder) => {
                start_once(&self.cell, move || Box::pin(builder().reuse(Reuse::Run).start())).await
            }
        }
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
