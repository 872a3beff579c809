//! Finding and connecting to the container engine: `DOCKER_HOST`, then the
//! default sockets of Docker (rootful and rootless) and Podman.
//!
//! The client keeps no idle connections, so one [`Engine`] can be used from the
//! runtimes of many `#[tokio::test]`s in turn; no request outlives the runtime that
//! polls it.

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use tokio::sync::OnceCell;

use crate::endpoint::{self, EngineConfig, Wanted};
use crate::engine_facts::{self, Facts};
use crate::error::{Error, Result};

/// How long one endpoint may take to answer a ping before the next is tried.
const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an engine that answered the ping may take to say its version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(15);

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
    /// On this machine (a unix socket, or TCP on loopback): published ports
    /// bind to 127.0.0.1. A remote engine binds them where this host reaches.
    local: bool,
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
    /// The process-wide engine, found as the `docker` CLI finds it:
    /// `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`) when
    /// set, and only it; else the context `DOCKER_CONTEXT` or the docker
    /// config's `currentContext` names; else the first default socket that
    /// answers. `DOCKHAND_HOST` (or `TESTCONTAINERS_HOST_OVERRIDE`) names the
    /// host to reach published ports on. Connected once; a failure is not
    /// cached, so a later call tries again.
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
                match endpoint::from_env(&|name| std::env::var(name).ok())? {
                    Wanted::One(config) => Engine::connect_first(&[config]).await,
                    Wanted::Defaults { host } => {
                        let configs: Vec<EngineConfig> = candidates(
                            std::env::var("XDG_RUNTIME_DIR").ok().as_deref(),
                            std::env::var("HOME").ok().as_deref(),
                        )
                        .into_iter()
                        .map(|endpoint| match &host {
                            Some(host) => EngineConfig::new(endpoint).host(host.clone()),
                            None => EngineConfig::new(endpoint),
                        })
                        .collect();
                        Engine::connect_first(&configs).await
                    }
                }
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
        Engine::connect_with(EngineConfig::new(endpoint)).await
    }

    /// Connects to the engine `config` describes (an endpoint with TLS, a
    /// context, a host override), bypassing the process-wide default. An
    /// engine that does not answer, or refuses the certificate, is an
    /// [`Error::EngineUnavailable`] within about a second.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let config = dockhand::EngineConfig::new("tcp://127.0.0.1:2376").tls_dir("/tmp/certs")?;
    /// let engine = dockhand::Engine::connect_with(config).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(config: EngineConfig) -> Result<Engine> {
        Engine::connect_first(&[config]).await
    }

    async fn connect_first(candidates: &[EngineConfig]) -> Result<Engine> {
        let mut tried = Vec::new();
        for config in candidates {
            match try_endpoint(config).await {
                Ok(engine) => {
                    tracing::debug!(endpoint = %config.endpoint, kind = %engine.kind(), version = %engine.version(), "connected to engine");
                    return Ok(engine);
                }
                Err(why) => tried.push(format!("{} ({why})", config.describe())),
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

    /// Whether the engine runs on this machine (a unix socket, or TCP on a
    /// loopback address). Only then do published ports bind to 127.0.0.1 by
    /// default; a remote engine binds them on all its addresses, so that
    /// this host can reach them at [`host`](Self::host).
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// assert!(dockhand::Engine::connect().await?.is_local());
    /// # Ok(()) }
    /// ```
    pub fn is_local(&self) -> bool {
        self.inner.local
    }

    /// Whether a connect to a container's own address is meaningful here.
    pub(crate) fn reaches_containers(&self) -> bool {
        self.inner.reaches_containers
    }
}

/// The default places to look for an engine, in order.
pub(crate) fn candidates(xdg_runtime_dir: Option<&str>, home: Option<&str>) -> Vec<String> {
    let mut out = vec!["unix:///var/run/docker.sock".to_string()];
    if let Some(dir) = xdg_runtime_dir {
        out.push(format!("unix://{dir}/docker.sock"));
    }
    if let Some(home) = home {
        out.push(format!("unix://{home}/.docker/run/docker.sock"));
        out.push(format!("unix://{home}/.colima/default/docker.sock"));
        out.push(format!("unix://{home}/.orbstack/run/docker.sock"));
    }
    out.push("unix:///run/podman/podman.sock".to_string());
    if let Some(dir) = xdg_runtime_dir {
        out.push(format!("unix://{dir}/podman/podman.sock"));
    }
    if let Some(home) = home {
        out.push(format!(
            "unix://{home}/.local/share/containers/podman/machine/podman.sock"
        ));
    }
    out
}

/// A rootful engine on this very kernel: its bridge is one of this host's
/// interfaces. A VM (Docker Desktop, colima) reports another kernel; a rootless
/// engine listens under the user's runtime directory.
fn reaches_containers(endpoint: &str, engine_kernel: Option<&str>) -> bool {
    if !endpoint::is_local(endpoint) {
        return false;
    }
    let here = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let path = endpoint.strip_prefix("unix://").unwrap_or_default();
    let rootless = path.starts_with("/run/user/") || path.contains("/.docker/run/");
    !rootless && engine_kernel.is_some_and(|k| !k.is_empty() && k == here.trim())
}

/// The API version to speak: the engine's newest, or the client's if that
/// is older (what bollard's own negotiation does, without its second call).
fn negotiated(engine_api: Option<&str>) -> bollard::ClientVersion {
    let ours = bollard::API_DEFAULT_VERSION;
    let theirs = engine_api.and_then(|v| {
        let (major, minor) = v.split_once('.')?;
        Some((major.parse::<usize>().ok()?, minor.parse::<usize>().ok()?))
    });
    match theirs {
        Some((major, minor)) if (major, minor) < (ours.major_version, ours.minor_version) => {
            bollard::ClientVersion {
                major_version: major,
                minor_version: minor,
            }
        }
        _ => bollard::ClientVersion {
            major_version: ours.major_version,
            minor_version: ours.minor_version,
        },
    }
}

/// An error and what caused it, down to the root (a refused certificate
/// hides several layers below "client error (Connect)").
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

async fn try_endpoint(config: &EngineConfig) -> std::result::Result<Engine, String> {
    let endpoint = config.endpoint.as_str();
    let probe = endpoint::client(endpoint, config.tls.as_ref(), bollard::API_DEFAULT_VERSION)?;
    // A ping answers in milliseconds wherever an engine listens, so a dead
    // endpoint fails fast; the version call may take longer (Podman 4
    // gathers its host's details for it, about 2 s), and is made only once.
    tokio::time::timeout(PING_TIMEOUT, probe.ping())
        .await
        .map_err(|_| format!("no answer within {PING_TIMEOUT:?}"))?
        .map_err(|e| with_causes(&e))?;
    let facts = match engine_facts::remembered(endpoint) {
        Some(facts) => facts,
        None => {
            let version = tokio::time::timeout(VERSION_TIMEOUT, probe.version())
                .await
                .map_err(|_| format!("no version within {VERSION_TIMEOUT:?}"))?
                .map_err(|e| with_causes(&e))?;
            let facts = Facts::from_version(&version);
            engine_facts::remember(endpoint, &facts);
            facts
        }
    };
    let speaks = negotiated(Some(&facts.api_version));
    let docker = endpoint::client(endpoint, config.tls.as_ref(), &speaks)?;
    let podman = facts.podman;
    endpoint::remember(config);
    crate::error::note_engine(podman);
    Ok(Engine {
        inner: Arc::new(Inner {
            docker,
            endpoint: endpoint.to_string(),
            kind: if podman {
                EngineKind::Podman
            } else {
                EngineKind::Docker
            },
            host: config.reach_host(),
            local: endpoint::is_local(endpoint),
            reaches_containers: reaches_containers(endpoint, Some(&facts.kernel_version)),
            version: facts.version,
            api_version: facts.api_version,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_order_is_rootful_rootless_desktop_podman() {
        let c = candidates(Some("/run/user/1000"), Some("/home/u"));
        assert_eq!(
            c,
            vec![
                "unix:///var/run/docker.sock",
                "unix:///run/user/1000/docker.sock",
                "unix:///home/u/.docker/run/docker.sock",
                "unix:///home/u/.colima/default/docker.sock",
                "unix:///home/u/.orbstack/run/docker.sock",
                "unix:///run/podman/podman.sock",
                "unix:///run/user/1000/podman/podman.sock",
                "unix:///home/u/.local/share/containers/podman/machine/podman.sock",
            ]
        );
        assert_eq!(candidates(None, None).len(), 2);
    }

    #[test]
    fn the_older_of_the_two_api_versions_is_spoken() {
        let v = |api: Option<&str>| {
            let n = negotiated(api);
            (n.major_version, n.minor_version)
        };
        let ours = (
            bollard::API_DEFAULT_VERSION.major_version,
            bollard::API_DEFAULT_VERSION.minor_version,
        );
        assert_eq!(v(Some("1.41")), (1, 41));
        assert_eq!(v(Some("1.99")), ours);
        assert_eq!(v(Some("nonsense")), ours);
        assert_eq!(v(None), ours);
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
        assert!(reaches_containers("tcp://127.0.0.1:2376", here));
        assert!(!reaches_containers("unix:///var/run/docker.sock", None));
    }
}
