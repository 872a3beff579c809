//! Joining and leaving networks while a container runs.

use bollard::models::{NetworkConnectRequest, NetworkDisconnectRequest};

use super::Container;
use crate::error::{Error, Result};
use crate::network::Network;

impl Container {
    /// Joins a network while running, under these aliases. With none (`&[]`)
    /// it gets back the aliases it last had on that network, so healing a
    /// partition is `connect(net, &[])`. The container keeps the network alive
    /// until it is removed itself.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container, net: &dockhand::Network) -> dockhand::Result<()> {
    /// c.connect(net, &["cache"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(&self, network: &Network, aliases: &[&str]) -> Result<()> {
        let mut aliases: Vec<String> = aliases.iter().map(|a| a.to_string()).collect();
        if aliases.is_empty() {
            let remembered = self.aliases.lock().unwrap_or_else(|e| e.into_inner());
            aliases = remembered.get(network.id()).cloned().unwrap_or_default();
        }
        self.connect_endpoint(network, &aliases).await
    }

    /// Remembers the aliases the container has on `network`.
    pub(crate) fn remember_aliases(&self, network: &Network, aliases: &[String]) {
        let mut remembered = self.aliases.lock().unwrap_or_else(|e| e.into_inner());
        remembered.insert(network.id().to_string(), aliases.to_vec());
    }

    pub(crate) async fn connect_endpoint(&self, network: &Network, aliases: &[String]) -> Result<()> {
        let request = NetworkConnectRequest {
            container: self.id().to_string(),
            endpoint_config: Some(super::builder::endpoint(aliases)),
        };
        let resource = format!("{} to network {}", self.describe(), network.name());
        self.docker()
            .connect_network(network.id(), request)
            .await
            .map_err(|e| Error::engine("connect", resource, e))?;
        self.owned.hold(&network.hold());
        self.remember_aliases(network, aliases);
        Ok(())
    }

    /// Leaves a network: a network partition for this container. The engine
    /// drops its aliases there; [`connect`](Self::connect) with none heals the
    /// partition under the same aliases.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container, net: &dockhand::Network) -> dockhand::Result<()> {
    /// c.disconnect(net).await?;
    /// c.connect(net, &[]).await?; // back, still reachable as before
    /// # Ok(()) }
    /// ```
    pub async fn disconnect(&self, network: &Network) -> Result<()> {
        let request = NetworkDisconnectRequest {
            container: self.id().to_string(),
            force: Some(false),
        };
        let resource = format!("{} from network {}", self.describe(), network.name());
        self.docker()
            .disconnect_network(network.id(), request)
            .await
            .map_err(|e| Error::engine("disconnect", resource, e))
    }
}
