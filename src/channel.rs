//! Unix-socket channels to a process in a container: a directory of this
//! user's on the host, bind-mounted into the container, where the process
//! listens on a socket the host connects to. Faster than a published port and
//! independent of the network, but only where the engine shares this
//! machine's filesystem (a local engine).
//!
//! Directories live at `$TMPDIR/dockhand-<uid>/channels/<engine>/<session>/<container name>`:
//! per engine, because a sweep of one engine sees only its own containers; per
//! session, so the watcher of a dead process removes all of its directories
//! without asking the engine which ones are still used.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::error::{ChannelProblem, Error, Result};

/// The container label holding the channel's host directory.
pub(crate) const LABEL: &str = "dockhand.channel";
/// The variable that tells the process in the container where to listen.
pub(crate) const ENV: &str = "DOCKHAND_CHANNEL";
/// Where the process listens when the builder names no path.
pub(crate) const DEFAULT_SOCKET: &str = "/run/dockhand/channel.sock";
/// How old a directory without a container must be before a sweep removes
/// it: one made a moment ago may belong to a create still under way.
const ORPHAN_GRACE: Duration = Duration::from_secs(60);

/// The channels of every session on `endpoint`.
fn root(endpoint: &str) -> PathBuf {
    crate::reuse::lock::dir()
        .join("channels")
        .join(crate::reuse::lock::endpoint_tag(endpoint))
}

/// Makes the (empty) host directory of a container's channel. Open to every
/// user, because the process in the container may run as any uid; the
/// directories above it keep other users of this machine out.
pub(crate) fn make_dir(endpoint: &str, session: &str, container_name: &str) -> io::Result<PathBuf> {
    let dir = root(endpoint).join(session).join(container_name);
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
    let top = crate::reuse::lock::dir();
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

/// Names the socket by the container's id on the host side, beside the name
/// the process was told (the id is known only once the container exists).
pub(crate) fn link_by_id(dir: &Path, socket_file: &str, id: &str) -> io::Result<PathBuf> {
    let link = dir.join(format!("{id}.sock"));
    if link.file_name() != Some(std::ffi::OsStr::new(socket_file)) {
        std::os::unix::fs::symlink(socket_file, &link)?;
    }
    Ok(link)
}

/// Removes a channel directory; one already gone is fine.
pub(crate) fn remove_dir(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => tracing::warn!(dir = %dir.display(), %err, "could not remove a channel directory"),
    }
    // The session's directory goes with its last channel.
    if let Some(parent) = dir.parent() {
        let _ = std::fs::remove_dir(parent);
    }
}

/// The watcher of a dead session: every channel directory of it goes,
/// except those of containers it was told to spare.
pub(crate) fn remove_session(endpoint: &str, session: &str, spared: impl Fn(&str) -> bool) {
    let dir = root(endpoint).join(session);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !spared(&name) {
            remove_dir(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(&dir);
}

/// A sweep: removes the channel directories on `endpoint` whose container is
/// gone (a killed watcher's leftovers, kept containers swept later). Returns
/// how many went.
pub(crate) async fn reap_orphans(docker: &Docker, endpoint: &str) -> Result<usize> {
    let root = root(endpoint);
    if !root.exists() {
        return Ok(0);
    }
    let options = ListContainersOptions {
        all: true,
        filters: Some([("label".to_string(), vec![LABEL.to_string()])].into()),
        ..Default::default()
    };
    let listed = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| Error::engine("list", "containers with channels", e))?;
    let used: std::collections::HashSet<String> = listed
        .into_iter()
        .filter_map(|c| c.labels?.remove(LABEL))
        .collect();
    let mut removed = 0;
    for session in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for dir in std::fs::read_dir(session.path()).into_iter().flatten().flatten() {
            let path = dir.path();
            if !used.contains(&path.to_string_lossy().into_owned()) && older_than(&path, ORPHAN_GRACE) {
                remove_dir(&path);
                removed += 1;
            }
        }
        if older_than(&session.path(), ORPHAN_GRACE) {
            let _ = std::fs::remove_dir(session.path());
        }
    }
    Ok(removed)
}

fn older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| at.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}

/// Where a container's channel is, and when it last answered (in this process).
#[derive(Debug)]
pub(crate) struct Link {
    /// The socket's host path, `<dir>/<container id>.sock`.
    pub socket: PathBuf,
    pub last_answer: Arc<Mutex<Option<SystemTime>>>,
}

/// What [`Container::channel_status`](crate::Container::channel_status) found.
///
/// ```no_run
/// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
/// let status = c.channel_status().await?;
/// if status.accepts {
///     println!("listening at {}", status.path.display());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelStatus {
    /// The socket's host path.
    pub path: PathBuf,
    /// Whether the process has made the socket.
    pub exists: bool,
    /// Whether a connect to it succeeds now.
    pub accepts: bool,
    /// When a request through this process's [`JsonChannel`]s last got a reply.
    pub last_answer: Option<SystemTime>,
}

/// Probes the socket: does it exist, does it accept.
pub(crate) async fn status(link: &Link) -> ChannelStatus {
    let exists = std::fs::metadata(&link.socket).is_ok();
    let accepts = exists && connect_path(&link.socket).await.is_ok();
    ChannelStatus {
        path: link.socket.clone(),
        exists,
        accepts,
        last_answer: *link.last_answer.lock().unwrap_or_else(|e| e.into_inner()),
    }
}

/// The error of a channel operation.
pub(crate) fn error(container: &str, path: &Path, problem: ChannelProblem) -> Error {
    Error::Channel {
        container: container.to_string(),
        path: path.to_path_buf(),
        problem,
    }
}

/// Connects to the socket, telling apart the ways that fails.
pub(crate) async fn connect(container: &str, link: &Link, limit: Duration) -> Result<UnixStream> {
    let fail = |problem| error(container, &link.socket, problem);
    match tokio::time::timeout(limit, connect_path(&link.socket)).await {
        Err(_) => Err(fail(ChannelProblem::Timeout(limit))),
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(err)) => Err(fail(match err.kind() {
            io::ErrorKind::NotFound => ChannelProblem::Missing,
            io::ErrorKind::ConnectionRefused => ChannelProblem::Refused,
            io::ErrorKind::PermissionDenied => ChannelProblem::PermissionDenied,
            _ => ChannelProblem::Io(err.to_string()),
        })),
    }
}

/// Connects to a socket however long its path: an address holds only 108
/// bytes, which a container id and a deep `$TMPDIR` can pass, so a long one
/// is reached through a descriptor of its directory.
async fn connect_path(path: &Path) -> io::Result<UnixStream> {
    const ROOM: usize = 100;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return UnixStream::connect(path).await;
    };
    if path.as_os_str().len() < ROOM {
        return UnixStream::connect(path).await;
    }
    let handle = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd())).join(name);
    let connected = UnixStream::connect(&short).await;
    drop(handle);
    connected
}

/// A connection to a container's channel that speaks newline-delimited JSON:
/// one message a line each way.
///
/// ```no_run
/// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
/// use std::time::Duration;
/// let mut channel = c.json_channel().await?;
/// let reply: serde_json::Value = channel
///     .request(&serde_json::json!({"op": "ping"}), Duration::from_secs(2))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct JsonChannel {
    stream: BufReader<UnixStream>,
    container: String,
    path: PathBuf,
    last_answer: Arc<Mutex<Option<SystemTime>>>,
}

impl JsonChannel {
    pub(crate) fn new(stream: UnixStream, container: String, link: &Link) -> Self {
        JsonChannel {
            stream: BufReader::new(stream),
            container,
            path: link.socket.clone(),
            last_answer: link.last_answer.clone(),
        }
    }

    fn fail(&self, problem: ChannelProblem) -> Error {
        error(&self.container, &self.path, problem)
    }

    /// Sends `message` as one line and reads one line back as `R`, all within
    /// `limit`.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let mut channel = c.json_channel().await?;
    /// let n: u64 = channel.request(&"count", std::time::Duration::from_secs(1)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn request<T: Serialize + ?Sized, R: DeserializeOwned>(
        &mut self,
        message: &T,
        limit: Duration,
    ) -> Result<R> {
        match tokio::time::timeout(limit, self.exchange(message)).await {
            Err(_) => Err(self.fail(ChannelProblem::Timeout(limit))),
            Ok(result) => result,
        }
    }

    async fn exchange<T: Serialize + ?Sized, R: DeserializeOwned>(&mut self, message: &T) -> Result<R> {
        let mut line =
            serde_json::to_vec(message).map_err(|e| self.fail(ChannelProblem::NotJson(e.to_string())))?;
        line.push(b'\n');
        let sent = self.stream.get_mut().write_all(&line).await;
        sent.map_err(|e| self.fail(ChannelProblem::Io(e.to_string())))?;
        let mut reply = String::new();
        let read = self.stream.read_line(&mut reply).await;
        match read.map_err(|e| self.fail(ChannelProblem::Io(e.to_string())))? {
            0 => return Err(self.fail(ChannelProblem::Closed)),
            _ => *self.last_answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now()),
        }
        serde_json::from_str(reply.trim_end()).map_err(|e| {
            let shown: String = reply.trim_end().chars().take(200).collect();
            self.fail(ChannelProblem::NotJson(format!("{e}; the reply was {shown:?}")))
        })
    }

    /// The connection itself, for a protocol of the caller's own.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let stream: tokio::net::UnixStream = c.json_channel().await?.into_inner();
    /// # Ok(()) }
    /// ```
    pub fn into_inner(self) -> UnixStream {
        self.stream.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_link_points_at_the_socket_by_a_relative_name() {
        let dir = std::env::temp_dir().join(format!("dockhand-channel-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = link_by_id(&dir, "channel.sock", "abc").unwrap();
        assert_eq!(link, dir.join("abc.sock"));
        assert_eq!(std::fs::read_link(&link).unwrap(), PathBuf::from("channel.sock"));
        remove_dir(&dir);
        assert!(!dir.exists());
    }

    #[test]
    fn a_socket_already_named_by_the_id_gets_no_link() {
        let dir = std::env::temp_dir().join(format!("dockhand-channel-test2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = link_by_id(&dir, "abc.sock", "abc").unwrap();
        assert!(std::fs::symlink_metadata(&link).is_err());
        remove_dir(&dir);
    }
}
