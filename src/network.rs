//! Networks: `NetworkBuilder` and the `Network` guard.

use std::collections::HashMap;

use bollard::models::NetworkCreateRequest;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::owned::{prepare, Hold, Owned, Prepared};
use crate::remove::ObjectKind;

/// A user-defined network, removed when the guard and every container that joined
/// it are gone (whatever order they drop in).
///
/// ```no_run
/// use dockhand::{Container, Network};
/// # async fn demo() -> dockhand::Result<()> {
/// let net = Network::builder().create().await?;
/// let db = Container::builder("fixtures/busybox:latest")
///     .cmd(["httpd", "-f", "-p", "80"])
///     .network_alias(&net, "db")
///     .start()
///     .await?;
/// let client = Container::builder("fixtures/busybox:latest")
///     .cmd(["sleep", "60"])
///     .network(&net)
///     .start()
///     .await?;
/// client.exec(["wget", "-q", "-O", "-", "http://db/"]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Network {
    hold: Hold,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("name", &self.hold.name())
            .field("id", &self.hold.id())
            .finish()
    }
}

impl Network {
    /// Starts describing a network.
    ///
    /// ```
    /// let b = dockhand::Network::builder().internal();
    /// ```
    pub fn builder() -> NetworkBuilder {
        NetworkBuilder::default()
    }

    /// The network's name (what containers and aliases refer to).
    ///
    /// ```no_run
    /// # fn demo(n: &dockhand::Network) { assert!(n.name().starts_with("dockhand-net-")); }
    /// ```
    pub fn name(&self) -> &str {
        self.hold.name()
    }

    /// The network's id.
    ///
    /// ```no_run
    /// # fn demo(n: &dockhand::Network) { println!("{}", n.id()); }
    /// ```
    pub fn id(&self) -> &str {
        self.hold.id()
    }

    pub(crate) fn hold(&self) -> Hold {
        self.hold.clone()
    }

    /// Removes the network now; one already gone counts as removed. While
    /// containers are still attached it waits up to 10 s for them to leave, then
    /// fails (and the guard tries again when the last clone drops).
    ///
    /// ```no_run
    /// # async fn demo(n: dockhand::Network) -> dockhand::Result<()> {
    /// n.remove().await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove(self) -> Result<()> {
        self.hold.remove().await
    }

    /// Leaves the network in the engine when the guard goes; returns its name.
    ///
    /// ```no_run
    /// # fn demo(n: dockhand::Network) { let name = n.keep(); }
    /// ```
    pub fn keep(self) -> String {
        self.hold.keep();
        self.hold.name().to_string()
    }
}

/// Describes a network; [`create`](NetworkBuilder::create) makes it.
///
/// ```no_run
/// # async fn demo() -> dockhand::Result<()> {
/// let net = dockhand::Network::builder()
///     .name("backend")
///     .internal()
///     .label("team", "core")
///     .option("com.docker.network.driver.mtu", "1400")
///     .create()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until .create().await"]
pub struct NetworkBuilder {
    name: Option<String>,
    driver: Option<String>,
    internal: bool,
    labels: HashMap<String, String>,
    options: HashMap<String, String>,
    engine: Option<Engine>,
}

impl NetworkBuilder {
    /// The name (default: `dockhand-net-` and a random suffix).
    ///
    /// ```
    /// let b = dockhand::Network::builder().name("backend");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The driver (default `bridge`).
    ///
    /// ```
    /// let b = dockhand::Network::builder().driver("bridge");
    /// ```
    pub fn driver(mut self, driver: impl Into<String>) -> Self {
        self.driver = Some(driver.into());
        self
    }

    /// No route out of the network: containers reach only each other.
    ///
    /// ```
    /// let b = dockhand::Network::builder().internal();
    /// ```
    pub fn internal(mut self) -> Self {
        self.internal = true;
        self
    }

    /// Adds a label (`dockhand.` keys are reserved).
    ///
    /// ```
    /// let b = dockhand::Network::builder().label("team", "core");
    /// ```
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a driver option.
    ///
    /// ```
    /// let b = dockhand::Network::builder().option("com.docker.network.driver.mtu", "1400");
    /// ```
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }

    /// Uses this engine instead of the process-wide default.
    ///
    /// ```no_run
    /// # async fn demo(e: &dockhand::Engine) { let b = dockhand::Network::builder().engine(e); }
    /// ```
    pub fn engine(mut self, engine: &Engine) -> Self {
        self.engine = Some(engine.clone());
        self
    }

    /// Creates the network.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let net = dockhand::Network::builder().create().await?;
    /// # Ok(()) }
    /// ```
    pub async fn create(self) -> Result<Network> {
        let Prepared {
            name,
            resource,
            labels,
            engine,
        } = prepare(ObjectKind::Network, self.name, &self.labels, self.engine).await?;
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some(self.driver.unwrap_or_else(|| "bridge".into())),
            internal: Some(self.internal),
            attachable: Some(true),
            options: (!self.options.is_empty()).then_some(self.options),
            labels: Some(labels),
            ..Default::default()
        };
        let created = engine
            .docker()
            .create_network(request)
            .await
            .map_err(|e| Error::engine("create", resource, e))?;
        Ok(Network {
            hold: Owned::new(engine, ObjectKind::Network, created.id, name, Vec::new()),
        })
    }
}
