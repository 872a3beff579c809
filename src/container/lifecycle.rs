//! Stopping, starting, pausing and signalling a running container.

use bollard::query_parameters::{KillContainerOptions, RestartContainerOptions, StopContainerOptions};

use super::Container;
use crate::error::{Error, Result};

impl Container {
    /// Stops the container (SIGTERM, then SIGKILL after the stop timeout). The
    /// guard still removes it when dropped.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// c.stop().await?;
    /// # Ok(()) }
    /// ```
    pub async fn stop(&self) -> Result<()> {
        self.docker()
            .stop_container(self.id(), None::<StopContainerOptions>)
            .await
            .map_err(|e| Error::engine("stop", self.describe(), e))
    }

    /// Starts a stopped container again and re-reads its host ports. A
    /// channel's socket left by the stopped process is removed first, so the
    /// new one can listen on the same path.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// c.stop().await?;
    /// c.start().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(&self) -> Result<()> {
        self.clear_stale_channel().await;
        self.docker()
            .start_container(self.id(), None)
            .await
            .map_err(|e| Error::engine("start", self.describe(), e))?;
        self.refresh_ports().await
    }

    /// Restarts the container and re-reads its host ports, which may have changed.
    /// With a channel it is a stop and a start, so the stopped process's socket
    /// can be cleared in between.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// c.restart().await?;
    /// let new_port = c.host_port(8080)?;
    /// # Ok(()) }
    /// ```
    pub async fn restart(&self) -> Result<()> {
        if self.channel.get().is_some() {
            // The engine's restart gives no moment between the stop and the
            // start to clear the stopped process's socket.
            self.stop().await?;
            return self.start().await;
        }
        self.docker()
            .restart_container(self.id(), None::<RestartContainerOptions>)
            .await
            .map_err(|e| Error::engine("restart", self.describe(), e))?;
        self.refresh_ports().await
    }

    /// Freezes every process in the container.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// c.pause().await?;
    /// c.unpause().await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause(&self) -> Result<()> {
        self.docker()
            .pause_container(self.id())
            .await
            .map_err(|e| Error::engine("pause", self.describe(), e))
    }

    /// Resumes a paused container.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// c.unpause().await?;
    /// # Ok(()) }
    /// ```
    pub async fn unpause(&self) -> Result<()> {
        self.docker()
            .unpause_container(self.id())
            .await
            .map_err(|e| Error::engine("unpause", self.describe(), e))
    }

    /// Sends a signal (`"SIGKILL"`, `"SIGHUP"`, `"9"`) to the container's main process.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// c.kill("SIGKILL").await?;
    /// # Ok(()) }
    /// ```
    pub async fn kill(&self, signal: &str) -> Result<()> {
        let options = KillContainerOptions {
            signal: signal.to_string(),
        };
        self.docker()
            .kill_container(self.id(), Some(options))
            .await
            .map_err(|e| Error::engine("kill", self.describe(), e))
    }
}
