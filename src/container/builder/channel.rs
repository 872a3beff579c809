//! A builder's channel: the host directory made before the create, mounted
//! where the socket's directory is, and named in the container's labels (for
//! the sweeper) and environment (for the process).

use std::path::{Path, PathBuf};

use bollard::models::ContainerCreateBody;

use super::ContainerBuilder;
use crate::channel;
use crate::engine::Engine;
use crate::error::{ChannelProblem, Error, Result};
use crate::volume::Mount;

impl ContainerBuilder {
    /// Gives the container a channel: a directory of this machine's, mounted
    /// at `/run/dockhand`, where the process listens on the unix socket
    /// named by `$DOCKHAND_CHANNEL` (`/run/dockhand/channel.sock`). The host
    /// connects with [`Container::channel`](crate::Container::channel); the
    /// directory is removed with the container. Local engines only.
    ///
    /// ```
    /// let b = dockhand::Container::builder("fixtures/debian-db:bookworm").channel();
    /// ```
    pub fn channel(self) -> Self {
        self.channel_at(channel::DEFAULT_SOCKET)
    }

    /// [`channel`](Self::channel) with the socket at `path` in the container;
    /// its directory is the one mounted, so pick one the image does not use.
    ///
    /// ```
    /// let b = dockhand::Container::builder("fixtures/debian-db:bookworm")
    ///     .channel_at("/run/app/control.sock");
    /// ```
    pub fn channel_at(mut self, path: impl Into<String>) -> Self {
        self.channel = Some(path.into());
        self
    }

    /// Why the channel's socket path cannot be used, if it cannot.
    pub(super) fn channel_problem(&self) -> Option<String> {
        let socket = self.channel.as_deref()?;
        let path = Path::new(socket);
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if !path.is_absolute() || path.file_name().is_none() || parent == Some(Path::new("/")) {
            return Some(format!(
                "the channel socket {socket:?} must be an absolute path below a directory of its own \
                 (such as /run/dockhand/channel.sock): that directory is mounted from the host"
            ));
        }
        if self.reuse.is_some() {
            return Some(
                "a reused container cannot have a channel: its directory belongs to one process".into(),
            );
        }
        None
    }

    /// Makes the channel's directory and adds it to the create request;
    /// `None` without a channel.
    pub(super) fn attach_channel(
        &self,
        engine: &Engine,
        name: &str,
        body: &mut ContainerCreateBody,
    ) -> Result<Option<(PathBuf, String)>> {
        let Some(socket) = self.channel.as_deref() else {
            return Ok(None);
        };
        let path = Path::new(socket);
        let (Some(target), Some(file)) = (path.parent(), path.file_name()) else {
            return Ok(None); // refused by the checks before
        };
        if !engine.is_local() {
            return Err(channel::error(
                &format!("container {name}"),
                path,
                ChannelProblem::RemoteEngine(engine.endpoint().to_string()),
            ));
        }
        let dir = channel::make_dir(engine.endpoint(), crate::session::session_id(), name).map_err(|e| {
            Error::Io {
                operation: "make the channel directory of",
                resource: format!("container {name}"),
                source: e,
            }
        })?;
        let dir_text = dir.to_string_lossy().into_owned();
        body.env
            .get_or_insert_with(Vec::new)
            .push(format!("{}={socket}", channel::ENV));
        body.labels
            .get_or_insert_with(Default::default)
            .insert(channel::LABEL.to_string(), dir_text.clone());
        let mount = Mount::bind(dir_text, target.to_string_lossy())
            .to_engine()
            .map_err(|reason| Error::invalid(format!("container {name}"), reason))?;
        let host = body.host_config.get_or_insert_with(Default::default);
        host.mounts.get_or_insert_with(Vec::new).push(mount);
        Ok(Some((dir, file.to_string_lossy().into_owned())))
    }
}
