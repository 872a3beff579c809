//! Joining and leaving networks while a container runs.

use bollard::models::{NetworkConnectRequest, NetworkDisconnectRequest};

use super::Container;
use crate::error::{Error, Result};
use crate::network::Network;

impl Container {
    /// Joins a network while running, under these aliases (none: `&[]`). The
    /// container keeps the network alive until it is removed itself.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container, net: &dockhand::Network) -> dockhand::Result<()> {
    /// c.connect(net, &["cache"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(&self, network: &Network, aliases: &[&str]) -> Result<()> {
        let aliases: Vec<String> = aliases.iter().map(|a| a.to_string()).collect();
        self.connect_endpoint(network, &aliases).await
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
        Ok(())
    }

    /// Leaves a network: a network partition for this container. The engine drops
    /// its aliases; give them again to [`connect`](Self::connect) to heal.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container, net: &dockhand::Network) -> dockhand::Result<()> {
    /// c.disconnect(net).await?;
    /// c.connect(net, &["db"]).await?;
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
