//! A container's unix-socket channel, from the host's side.

use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;

use super::Container;
use crate::channel::{self, ChannelStatus, JsonChannel, Link};
use crate::error::{ChannelProblem, Error, Result};

/// How long a connect may take: a local socket answers at once or not at all.
const CONNECT_LIMIT: Duration = Duration::from_secs(2);

impl Container {
    /// Takes the channel directory made for it: removed with it from now on.
    pub(crate) fn open_channel(&self, dir: PathBuf, socket_file: &str) -> Result<()> {
        self.owned.remove_dir_with(dir.clone());
        let socket = channel::link_by_id(&dir, socket_file, self.id()).map_err(|e| Error::Io {
            operation: "name the channel socket of",
            resource: self.describe(),
            source: e,
        })?;
        let _ = self.channel.set(Link {
            socket,
            last_answer: Default::default(),
        });
        Ok(())
    }

    fn link(&self) -> Result<&Link> {
        self.channel.get().ok_or_else(|| {
            channel::error(
                &self.describe(),
                std::path::Path::new(""),
                ChannelProblem::NotConfigured,
            )
        })
    }

    /// The host path of the channel's socket, `<dir>/<container id>.sock`.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// println!("socat - UNIX-CONNECT:{}", c.channel_path()?.display());
    /// # Ok(()) }
    /// ```
    pub fn channel_path(&self) -> Result<PathBuf> {
        Ok(self.link()?.socket.clone())
    }

    /// Connects to the process listening on the container's channel (see
    /// [`ContainerBuilder::channel`](crate::ContainerBuilder::channel)).
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// use tokio::io::AsyncWriteExt;
    /// let mut stream = c.channel().await?;
    /// stream.write_all(b"hello\n").await.unwrap();
    /// # Ok(()) }
    /// ```
    pub async fn channel(&self) -> Result<UnixStream> {
        channel::connect(&self.describe(), self.link()?, CONNECT_LIMIT).await
    }

    /// Connects to the channel for newline-delimited JSON requests.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let mut channel = c.json_channel().await?;
    /// let pong: String = channel.request(&"ping", std::time::Duration::from_secs(1)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn json_channel(&self) -> Result<JsonChannel> {
        let link = self.link()?;
        let stream = channel::connect(&self.describe(), link, CONNECT_LIMIT).await?;
        Ok(JsonChannel::new(stream, self.describe(), link))
    }

    /// One request on a connection of its own: connects, sends `message` as
    /// a line of JSON and reads one line back, all within `limit`.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let reply: serde_json::Value = c
    ///     .request(&serde_json::json!({"op": "status"}), std::time::Duration::from_secs(2))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn request<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        message: &T,
        limit: Duration,
    ) -> Result<R> {
        let link = self.link()?;
        let describe = self.describe();
        let stream = channel::connect(&describe, link, limit.min(CONNECT_LIMIT)).await?;
        JsonChannel::new(stream, describe, link)
            .request(message, limit)
            .await
    }

    /// Whether the channel's socket exists and accepts now, and when a
    /// request last got an answer.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// assert!(c.channel_status().await?.accepts);
    /// # Ok(()) }
    /// ```
    pub async fn channel_status(&self) -> Result<ChannelStatus> {
        Ok(channel::status(self.link()?).await)
    }

    /// Removes the channel's socket file when nothing listens on it, so that
    /// a process started again can bind its path: a stopped process leaves
    /// its socket behind in the host directory, and a second `bind` of that
    /// path fails with "address in use". A socket that accepts is live and
    /// kept, which makes this safe on a container that is already running.
    pub(crate) async fn clear_stale_channel(&self) {
        let Some(link) = self.channel.get() else {
            return;
        };
        let Some(dir) = link.socket.parent() else {
            return;
        };
        let socket = match std::fs::read_link(&link.socket) {
            Ok(target) => dir.join(target),
            Err(_) => link.socket.clone(),
        };
        let refused = matches!(
            UnixStream::connect(&socket).await,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        );
        if !refused {
            return;
        }
        if let Err(err) = std::fs::remove_file(&socket) {
            tracing::debug!(socket = %socket.display(), %err, "could not remove a stale channel socket");
        }
    }
}
