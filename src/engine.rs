//! Finding and connecting to the container engine: `DOCKER_HOST`, then the
//! default sockets of Docker (rootful and rootless) and Podman.
//!
//! The client keeps no idle connections, so one [`Engine`] can be used from the
//! runtimes of many `#[tokio::test]`s in turn; no request outlives the runtime that
//! polls it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::{Docker, API_DEFAULT_VERSION};
use tokio::sync::OnceCell;

use crate::error::{Error, Result};

/// How long one endpoint may take to answer a ping before the next is tried.
const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// Per-request timeout of the engine client: how long the engine may take to
/// send response headers (a streaming body may run longer).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Which engine answers.
///
/// ```
/// assert_eq!(dockhand::EngineKind::Podman.to_string(), "Podman");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineKind {
    /// Docker Engine (moby).
    Docker,
    /// Podman's Docker-compatible API.
    Podman,
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineKind::Docker => "Docker",
            EngineKind::Podman => "Podman",
        })
    }
}

/// A connection to a container engine.
///
/// Cheap to clone. [`Engine::connect`] returns the process-wide default engine,
/// found the way the `docker` CLI finds it.
///
/// ```no_run
/// # async fn demo() -> dockhand::Result<()> {
/// let engine = dockhand::Engine::connect().await?;
/// println!("{} {} at {}", engine.kind(), engine.version(), engine.endpoint());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    docker: Docker,
    endpoint: String,
    kind: EngineKind,
    version: String,
    api_version: String,
    host: String,
    /// Whether this host reaches the containers' own addresses: the engine
    /// runs on this kernel (not in a VM) and not rootless (whose containers
    /// live in a network namespace of their own).
    reaches_containers: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("endpoint", &self.inner.endpoint)
            .field("kind", &self.inner.kind)
            .field("version", &self.inner.version)
            .finish()
    }
}

static DEFAULT: OnceCell<Engine> = OnceCell::const_new();

impl Engine {
    /// The process-wide engine: `DOCKER_HOST` when set (and only it), otherwise
    /// the first of the default sockets that answers. Connected once; a failure is
    /// not cached, so a later call tries again.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let engine = dockhand::Engine::connect().await?;
    /// assert!(!engine.version().is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn connect() -> Result<Engine> {
        DEFAULT
            .get_or_try_init(|| async {
                let candidates = candidates(
                    std::env::var("DOCKER_HOST").ok().as_deref(),
                    std::env::var("XDG_RUNTIME_DIR").ok().as_deref(),
                    std::env::var("HOME").ok().as_deref(),
                );
                Engine::connect_first(&candidates).await
            })
            .await
            .cloned()
    }

    /// Connects to one endpoint (`unix:///path` or `tcp://host:port`), bypassing
    /// the process-wide default.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let engine = dockhand::Engine::connect_to("unix:///var/run/docker.sock").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_to(endpoint: &str) -> Result<Engine> {
        Engine::connect_first(&[endpoint.to_string()]).await
    }

    async fn connect_first(candidates: &[String]) -> Result<Engine> {
        let mut tried = Vec::new();
        for endpoint in candidates {
            match try_endpoint(endpoint).await {
                Ok(engine) => {
                    tracing::debug!(endpoint = %endpoint, kind = %engine.kind(), version = %engine.version(), "connected to engine");
                    return Ok(engine);
                }
                Err(why) => tried.push(format!("{endpoint} ({why})")),
            }
        }
        Err(Error::EngineUnavailable {
            tried,
            hint: "Start Docker or Podman, or set DOCKER_HOST to the engine's socket (unix:///path) or address (tcp://host:port)".into(),
        })
    }

    /// The endpoint this engine was reached at.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// assert!(dockhand::Engine::connect().await?.endpoint().contains("://"));
    /// # Ok(()) }
    /// ```
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// Docker or Podman.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let kind = dockhand::Engine::connect().await?.kind();
    /// # Ok(()) }
    /// ```
    pub fn kind(&self) -> EngineKind {
        self.inner.kind
    }

    /// The engine's own version (`20.10.24`), for diagnostics.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// println!("{}", dockhand::Engine::connect().await?.version());
    /// # Ok(()) }
    /// ```
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The newest API version the engine speaks (`1.41`).
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// println!("{}", dockhand::Engine::connect().await?.api_version());
    /// # Ok(()) }
    /// ```
    pub fn api_version(&self) -> &str {
        &self.inner.api_version
    }

    /// The host name or address tests use to reach published ports: 127.0.0.1 for
    /// a local socket, the engine's host for `tcp://`. This is the one place that
    /// decides it.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// assert_eq!(dockhand::Engine::connect().await?.host(), "127.0.0.1");
    /// # Ok(()) }
    /// ```
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    pub(crate) fn docker(&self) -> &Docker {
        &self.inner.docker
    }

    /// Whether a connect to a container's own address is meaningful here.
    pub(crate) fn reaches_containers(&self) -> bool {
        self.inner.reaches_containers
    }
}

/// Where to look for an engine, in order. `DOCKER_HOST` alone when set: a user
/// who names an engine does not want another one used behind their back.
pub(crate) fn candidates(
    docker_host: Option<&str>,
    xdg_runtime_dir: Option<&str>,
    home: Option<&str>,
) -> Vec<String> {
    if let Some(host) = docker_host.filter(|h| !h.trim().is_empty()) {
        return vec![host.trim().to_string()];
    }
    let mut out = vec!["unix:///var/run/docker.sock".to_string()];
    if let Some(dir) = xdg_runtime_dir {
        out.push(format!("unix://{dir}/docker.sock"));
    }
    if let Some(home) = home {
        out.push(format!("unix://{home}/.docker/run/docker.sock"));
    }
    out.push("unix:///run/podman/podman.sock".to_string());
    if let Some(dir) = xdg_runtime_dir {
        out.push(format!("unix://{dir}/podman/podman.sock"));
    }
    out
}

/// A fresh client for `endpoint`, without a round trip. The cleanup worker uses it
/// to get a connection of its own.
pub(crate) fn client_for(endpoint: &str) -> std::result::Result<Docker, String> {
    if let Some(path) = endpoint.strip_prefix("unix://") {
        if !Path::new(path).exists() {
            return Err("no such socket".into());
        }
        Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION).map_err(|e| e.to_string())
    } else if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
        Docker::connect_with_http(endpoint, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
            .map_err(|e| e.to_string())
    } else {
        Err("unsupported scheme: use unix:// or tcp://".into())
    }
}

/// The host published ports are reached on, for an endpoint.
pub(crate) fn host_of(endpoint: &str) -> String {
    match endpoint
        .strip_prefix("tcp://")
        .or_else(|| endpoint.strip_prefix("http://"))
    {
        Some(rest) => {
            let authority = rest.split('/').next().unwrap_or(rest);
            let host = match authority.rsplit_once(':') {
                Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
                _ => authority,
            };
            host.trim_start_matches('[').trim_end_matches(']').to_string()
        }
        None => "127.0.0.1".into(),
    }
}

/// A rootful engine on this very kernel: its bridge is one of this host's
/// interfaces. A VM (Docker Desktop, colima) reports another kernel; a rootless
/// engine listens under the user's runtime directory.
fn reaches_containers(endpoint: &str, engine_kernel: Option<&str>) -> bool {
    let Some(path) = endpoint.strip_prefix("unix://") else {
        return false;
    };
    let here = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rootless = path.starts_with("/run/user/") || path.contains("/.docker/run/");
    !rootless && engine_kernel.is_some_and(|k| !k.is_empty() && k == here.trim())
}

async fn try_endpoint(endpoint: &str) -> std::result::Result<Engine, String> {
    let docker = client_for(endpoint)?;
    let docker = tokio::time::timeout(PING_TIMEOUT, docker.negotiate_version())
        .await
        .map_err(|_| format!("no answer within {PING_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    let version = tokio::time::timeout(PING_TIMEOUT, docker.version())
        .await
        .map_err(|_| format!("no answer within {PING_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    let podman = version
        .components
        .iter()
        .flatten()
        .any(|c| c.name.to_ascii_lowercase().contains("podman"));
    Ok(Engine {
        inner: Arc::new(Inner {
            docker,
            endpoint: endpoint.to_string(),
            kind: if podman {
                EngineKind::Podman
            } else {
                EngineKind::Docker
            },
            version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
            host: host_of(endpoint),
            reaches_containers: reaches_containers(endpoint, version.kernel_version.as_deref()),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_alone_when_set() {
        assert_eq!(
            candidates(Some("tcp://10.0.0.5:2375"), Some("/run/user/1000"), None),
            vec!["tcp://10.0.0.5:2375"]
        );
    }

    #[test]
    fn default_order_is_rootful_rootless_desktop_podman() {
        let c = candidates(None, Some("/run/user/1000"), Some("/home/u"));
        assert_eq!(
            c,
            vec![
                "unix:///var/run/docker.sock",
                "unix:///run/user/1000/docker.sock",
                "unix:///home/u/.docker/run/docker.sock",
                "unix:///run/podman/podman.sock",
                "unix:///run/user/1000/podman/podman.sock",
            ]
        );
        assert_eq!(candidates(Some("  "), None, None).len(), 2);
    }

    #[test]
    fn host_comes_from_tcp_endpoint() {
        assert_eq!(host_of("unix:///var/run/docker.sock"), "127.0.0.1");
        assert_eq!(host_of("tcp://192.0.2.7:2375"), "192.0.2.7");
        assert_eq!(host_of("tcp://docker.internal:2376/"), "docker.internal");
        assert_eq!(host_of("tcp://[::1]:2375"), "::1");
    }

    #[test]
    fn only_a_rootful_engine_on_this_kernel_reaches_containers() {
        let here = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let here = Some(here.trim());
        assert!(reaches_containers("unix:///var/run/docker.sock", here));
        assert!(!reaches_containers(
            "unix:///var/run/docker.sock",
            Some("6.6.12-linuxkit")
        ));
        assert!(!reaches_containers("unix:///run/user/1000/docker.sock", here));
        assert!(!reaches_containers("tcp://10.0.0.5:2375", here));
        assert!(!reaches_containers("unix:///var/run/docker.sock", None));
    }

    #[test]
    fn missing_socket_is_named() {
        assert_eq!(
            client_for("unix:///definitely/not/here.sock").unwrap_err(),
            "no such socket"
        );
        assert!(client_for("ftp://x").unwrap_err().contains("unsupported"));
    }
}
