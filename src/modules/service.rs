//! What every module shares: the [`Service`] trait (its settings, its container
//! builder, its port), the running form [`Running`] with the accessors written
//! once, one [`Shared`] server per test run, and the run-on-drop guard that the
//! per-test databases use.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::container::{Container, ContainerBuilder};
use crate::error::Result;
use crate::exec::Exec;

/// A service module: its settings are the implementing type, and they say how
/// to build its container and which port clients use. Adding a module is its
/// settings, this impl and its readiness (the builder's waits).
///
/// ```no_run
/// use dockhand::modules::{Running, Service};
/// use dockhand::{Container, ContainerBuilder, WaitFor};
///
/// #[derive(Clone, Debug)]
/// struct Echo;
///
/// impl Service for Echo {
///     type State = ();
///     const NAME: &'static str = "echo";
///     const PORT: u16 = 7;
///     fn builder(&self) -> ContainerBuilder {
///         Container::builder("fixtures/busybox:latest")
///             .cmd(["sh", "-c", "echo ready; nc -lk -p 7 -e cat"])
///             .expose(7)
///             .wait_for(WaitFor::log("ready"))
///     }
/// }
///
/// # async fn demo() -> dockhand::Result<()> {
/// let echo: Running<Echo> = Echo.start().await?;
/// println!("{}:{}", echo.host(), echo.port());
/// # Ok(()) }
/// ```
pub trait Service: Clone + Send + Sync + Sized + 'static {
    /// Extra state the running service keeps (a pool of databases); `()` if none.
    type State: Default + Send + Sync + 'static;
    /// A short name for messages (`postgres`).
    const NAME: &'static str;
    /// The container port clients connect to; the builder must expose it.
    const PORT: u16;

    /// The container this service runs as, waits included; add to it freely.
    fn builder(&self) -> ContainerBuilder;

    /// Starts the service and waits until it is ready.
    fn start(&self) -> impl Future<Output = Result<Running<Self>>> + Send {
        let settings = self.clone();
        async move {
            let container = settings.builder().start().await?;
            Running::new(container, settings)
        }
    }
}

/// A running service: its container, the settings it was started with, and the
/// accessors every module has. Removed when dropped, like any [`Container`].
///
/// ```no_run
/// # async fn demo() -> dockhand::Result<()> {
/// let redis = dockhand::modules::Redis::new().start().await?;
/// let logs = redis.container().logs().await?;
/// println!("{}:{}", redis.host(), redis.port());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Running<S: Service> {
    container: Container,
    settings: S,
    port_at_start: u16,
    pub(crate) state: S::State,
}

impl<S: Service> Running<S> {
    /// Wraps a container started from (a builder like) `settings.builder()`.
    /// Fails when the container does not publish the service's port.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// use dockhand::modules::{Postgres, Running, Service};
    /// let settings = Postgres::new();
    /// let container = settings.builder().label("team", "db").start().await?;
    /// let pg = Running::new(container, settings)?;
    /// # Ok(()) }
    /// ```
    pub fn new(container: Container, settings: S) -> Result<Self> {
        let port_at_start = container.host_port(S::PORT)?;
        Ok(Running {
            container,
            settings,
            port_at_start,
            state: S::State::default(),
        })
    }

    /// The container, for exec, logs and the rest.
    ///
    /// ```no_run
    /// # async fn demo(r: &dockhand::modules::RedisContainer) -> dockhand::Result<()> {
    /// let logs = r.container().logs().await?;
    /// # Ok(()) }
    /// ```
    pub fn container(&self) -> &Container {
        &self.container
    }

    /// The settings it was started with.
    ///
    /// ```no_run
    /// # fn demo(pg: &dockhand::modules::PostgresContainer) { println!("{:?}", pg.settings()); }
    /// ```
    pub fn settings(&self) -> &S {
        &self.settings
    }

    /// Removes it now and reports errors.
    ///
    /// ```no_run
    /// # async fn demo(r: dockhand::modules::RedisContainer) -> dockhand::Result<()> {
    /// r.remove().await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove(self) -> Result<()> {
        self.container.remove().await
    }

    /// Host to connect to (127.0.0.1 for a local engine).
    ///
    /// ```no_run
    /// # fn demo(r: &dockhand::modules::RedisContainer) { assert_eq!(r.host(), "127.0.0.1"); }
    /// ```
    pub fn host(&self) -> &str {
        self.container.host()
    }

    /// The host port of the service's port, as published now (a restart may
    /// change it).
    ///
    /// ```no_run
    /// # fn demo(r: &dockhand::modules::RedisContainer) { let port: u16 = r.port(); }
    /// ```
    pub fn port(&self) -> u16 {
        // `new` checked the port is published, and a restart re-reads every
        // published port, so the lookup only misses if the engine dropped it;
        // then the port it had at start is the real last known one.
        self.container.host_port(S::PORT).unwrap_or(self.port_at_start)
    }
}

/// One server shared by every test of the test run: by every test of a
/// process, and by every process of the same `cargo test` or `cargo nextest
/// run` (where each test is a process of its own). The first user anywhere
/// starts it; the others find it by its configuration
/// ([`Reuse::Run`](crate::Reuse)) and wait until it is ready. It is removed once
/// the run is over and no process uses it, however the processes ended
/// (`DOCKHAND_REUSE=1` keeps it for the next run). Within a process, a failed
/// start is not cached: the next call tries again.
///
/// ```no_run
/// use dockhand::modules::{Redis, Shared};
///
/// static REDIS: Shared<Redis> = Shared::new(Redis::new);
///
/// #[tokio::test]
/// async fn caches() -> dockhand::Result<()> {
///     let server = REDIS.server().await?;
///     println!("{}", server.connection_string());
///     Ok(())
/// }
/// ```
pub struct Shared<S: Service> {
    settings: fn() -> S,
    server: OnceCell<Arc<Running<S>>>,
}

impl<S: Service> std::fmt::Debug for Shared<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("service", &S::NAME)
            .field("started", &self.server.initialized())
            .finish()
    }
}

impl<S: Service> Shared<S> {
    /// Describes the server; nothing starts until first use.
    ///
    /// ```
    /// use dockhand::modules::{Postgres, Shared};
    /// static PG: Shared<Postgres> = Shared::new(|| Postgres::new().user("app"));
    /// ```
    pub const fn new(settings: fn() -> S) -> Self {
        Shared {
            settings,
            server: OnceCell::const_new(),
        }
    }

    /// The settings the server is started with.
    #[cfg(feature = "postgres")]
    pub(super) fn settings_now(&self) -> S {
        (self.settings)()
    }

    /// Whether this process has its server already.
    #[cfg(feature = "postgres")]
    pub(super) fn has_server(&self) -> bool {
        self.server.initialized()
    }

    /// The server: this process's, or the run's, or started now.
    ///
    /// ```no_run
    /// # static R: dockhand::modules::SharedRedis = dockhand::modules::SharedRedis::new(dockhand::modules::Redis::new);
    /// # async fn demo() -> dockhand::Result<()> {
    /// println!("{}", R.server().await?.connection_string());
    /// # Ok(()) }
    /// ```
    pub async fn server(&'static self) -> Result<Arc<Running<S>>> {
        let settings = self.settings;
        crate::shared::start_once(&self.server, move || {
            Box::pin(async move {
                let settings = settings();
                let container = settings.builder().reuse(crate::Reuse::Run).start().await?;
                Running::new(container, settings)
            })
        })
        .await
    }
}

impl<S: Service> crate::shared::HoldsContainer for Running<S> {
    fn held_container(&self) -> &Container {
        &self.container
    }
}

/// Runs a command in a container when dropped (in the background, on the
/// worker), then hands whether it succeeded to `then`: what returns a per-test
/// database to its server.
pub(crate) struct ExecOnDrop {
    endpoint: String,
    container: String,
    command: Option<Exec>,
    then: Option<Box<dyn FnOnce(bool) + Send>>,
}

impl std::fmt::Debug for ExecOnDrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecOnDrop")
            .field("container", &self.container)
            .finish()
    }
}

impl ExecOnDrop {
    pub(crate) fn new(server: &Container, command: Exec) -> Self {
        ExecOnDrop {
            endpoint: server.engine().endpoint().to_string(),
            container: server.id().to_string(),
            command: Some(command),
            then: None,
        }
    }

    pub(crate) fn then(mut self, then: impl FnOnce(bool) + Send + 'static) -> Self {
        self.then = Some(Box::new(then));
        self
    }
}

impl Drop for ExecOnDrop {
    fn drop(&mut self) {
        let Some(command) = self.command.take() else {
            return;
        };
        let (id, then) = (self.container.clone(), self.then.take());
        crate::worker::submit(
            &self.endpoint,
            Box::new(move |docker| {
                Box::pin(async move {
                    // The server may be gone first; then so is what it held.
                    let ran = crate::exec::run(&docker, &id, &id, command).await;
                    if let Some(then) = then {
                        then(ran.is_ok_and(|out| out.success()));
                    }
                })
            }),
        );
    }
}
