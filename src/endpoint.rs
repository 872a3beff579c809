//! Where the engine is and how to talk to it, decided the way the `docker`
//! CLI decides it: `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and
//! `DOCKER_CERT_PATH`), else the context named by `DOCKER_CONTEXT` or the
//! docker config's `currentContext`, else the default sockets. The host that
//! tests reach published ports on is decided here too, in one place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};
use once_cell::sync::Lazy;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How to reach one engine: its endpoint, the TLS material it wants, and the
/// host tests reach its published ports on.
///
/// ```no_run
/// # async fn demo() -> dockhand::Result<()> {
/// let config = dockhand::EngineConfig::new("tcp://ci-docker.internal:2376")
///     .tls_dir("/etc/ci/docker-certs")?; // ca.pem, cert.pem, key.pem
/// let engine = dockhand::Engine::connect_with(config).await?;
/// assert_eq!(engine.host(), "ci-docker.internal");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    pub(crate) endpoint: String,
    pub(crate) tls: Option<TlsFiles>,
    pub(crate) host: Option<String>,
    /// Where this came from, for error messages (`DOCKER_HOST`, `context ci`).
    pub(crate) source: String,
}

/// The client certificate, its key and the CA that signed the engine's
/// certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// `ca.pem`, `cert.pem` and `key.pem` in `dir`, each checked to exist.
    fn in_dir(dir: &Path, resource: &str) -> Result<TlsFiles> {
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        let missing: Vec<String> = [&files.ca, &files.cert, &files.key]
            .iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            return Err(Error::invalid(
                resource,
                format!(
                    "TLS is on but the certificate directory {} lacks {}; put ca.pem, cert.pem and key.pem there or point DOCKER_CERT_PATH at the right one",
                    dir.display(),
                    missing.join(", ")
                ),
            ));
        }
        Ok(files)
    }

    fn describe(&self) -> String {
        match self.ca.parent() {
            Some(dir) => format!("certificates in {}", dir.display()),
            None => "certificates".into(),
        }
    }
}

impl EngineConfig {
    /// An engine at `endpoint` (`unix:///path`, `tcp://host:port`), without
    /// TLS.
    ///
    /// ```
    /// let config = dockhand::EngineConfig::new("unix:///var/run/docker.sock");
    /// ```
    pub fn new(endpoint: impl Into<String>) -> Self {
        EngineConfig {
            endpoint: endpoint.into(),
            tls: None,
            host: None,
            source: "the caller".into(),
        }
    }

    /// Talks TLS with the client certificate `cert.pem`, its key `key.pem`
    /// and the CA `ca.pem` in `dir` (as `DOCKER_CERT_PATH` holds them). Fails
    /// when a file is missing.
    ///
    /// ```no_run
    /// # fn demo() -> dockhand::Result<()> {
    /// let config = dockhand::EngineConfig::new("tcp://10.0.0.5:2376").tls_dir("/certs")?;
    /// # Ok(()) }
    /// ```
    pub fn tls_dir(mut self, dir: impl AsRef<Path>) -> Result<Self> {
        let resource = format!("engine {}", self.endpoint);
        self.tls = Some(TlsFiles::in_dir(dir.as_ref(), &resource)?);
        Ok(self)
    }

    /// Reaches published ports on this host instead of the one the
    /// endpoint implies (as `DOCKHAND_HOST` does).
    ///
    /// ```
    /// let config = dockhand::EngineConfig::new("tcp://10.0.0.5:2375").host("docker.lan");
    /// ```
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The docker context `name` from the context store under `config_dir`
    /// (`~/.docker` or `DOCKER_CONFIG`), with its TLS material, as the
    /// docker CLI reads it.
    ///
    /// ```no_run
    /// # fn demo() -> dockhand::Result<()> {
    /// let config = dockhand::EngineConfig::from_context("/home/me/.docker", "ci")?;
    /// # Ok(()) }
    /// ```
    pub fn from_context(config_dir: impl AsRef<Path>, name: &str) -> Result<Self> {
        read_context(config_dir.as_ref(), name)
    }

    /// The endpoint.
    ///
    /// ```
    /// assert_eq!(dockhand::EngineConfig::new("tcp://h:2375").endpoint(), "tcp://h:2375");
    /// ```
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The host tests reach published ports on: the override, else the host
    /// of a `tcp://` endpoint, else 127.0.0.1.
    pub(crate) fn reach_host(&self) -> String {
        self.host.clone().unwrap_or_else(|| host_of(&self.endpoint))
    }

    /// How to name it in a list of places tried.
    pub(crate) fn describe(&self) -> String {
        let mut text = self.endpoint.clone();
        if let Some(tls) = &self.tls {
            text.push_str(&format!(", TLS with {}", tls.describe()));
        }
        if self.source != "the caller" {
            text.push_str(&format!(", from {}", self.source));
        }
        text
    }
}

/// What the environment asks for: one engine, or the default places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wanted {
    One(EngineConfig),
    Defaults { host: Option<String> },
}

/// Reads the environment through `var` (so tests can give their own).
pub(crate) fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Wanted> {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let host = set("DOCKHAND_HOST").or_else(|| set("TESTCONTAINERS_HOST_OVERRIDE"));
    let config_dir = set("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| Path::new(&h).join(".docker")));
    if let Some(endpoint) = set("DOCKER_HOST") {
        let endpoint = endpoint.trim().to_string();
        let mut config = EngineConfig {
            endpoint,
            tls: None,
            host: host.clone(),
            source: "DOCKER_HOST".into(),
        };
        if set("DOCKER_TLS_VERIFY").is_some() {
            let dir = set("DOCKER_CERT_PATH").map(PathBuf::from).or(config_dir);
            let Some(dir) = dir else {
                return Err(Error::invalid(
                    format!("engine {} from DOCKER_HOST", config.endpoint),
                    "DOCKER_TLS_VERIFY is set but neither DOCKER_CERT_PATH nor HOME says where the certificates are",
                ));
            };
            let resource = format!("engine {} from DOCKER_HOST", config.endpoint);
            config.tls = Some(TlsFiles::in_dir(&dir, &resource)?);
        }
        return Ok(Wanted::One(config));
    }
    let context = set("DOCKER_CONTEXT").or_else(|| current_context(config_dir.as_deref()?));
    match (context, config_dir) {
        (Some(name), Some(dir)) if name != "default" => {
            let mut config = read_context(&dir, &name)?;
            config.host = host.or(config.host);
            Ok(Wanted::One(config))
        }
        (Some(name), None) if name != "default" => Err(Error::invalid(
            format!("docker context {name}"),
            "no docker config directory is known (set DOCKER_CONFIG or HOME)",
        )),
        _ => Ok(Wanted::Defaults { host }),
    }
}

/// `currentContext` of the docker config, when it names one.
fn current_context(config_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    config
        .get("currentContext")?
        .as_str()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
}

#[derive(serde::Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: HashMap<String, ContextEndpoint>,
}

#[derive(serde::Deserialize)]
struct ContextEndpoint {
    #[serde(rename = "Host")]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// A context from the store: `contexts/meta/<sha256 of name>/meta.json`, and
/// its TLS material under `contexts/tls/<sha256 of name>/docker/`.
fn read_context(config_dir: &Path, name: &str) -> Result<EngineConfig> {
    let resource = format!("docker context {name}");
    let digest = format!("{:x}", Sha256::digest(name.as_bytes()));
    let meta_path = config_dir
        .join("contexts")
        .join("meta")
        .join(&digest)
        .join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| {
        Error::invalid(
            &resource,
            format!(
                "the context store has no such context ({}: {e}); `docker context ls` lists the ones there",
                meta_path.display()
            ),
        )
    })?;
    let meta: ContextMeta = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            &resource,
            format!("{} is not a context: {e}", meta_path.display()),
        )
    })?;
    let docker = meta.endpoints.get("docker");
    let Some(endpoint) = docker.and_then(|d| d.host.clone()) else {
        return Err(Error::invalid(
            &resource,
            format!("{} names no docker endpoint host", meta_path.display()),
        ));
    };
    let tls_dir = config_dir
        .join("contexts")
        .join("tls")
        .join(&digest)
        .join("docker");
    let tls = match tls_dir.is_dir() {
        true if docker.is_some_and(|d| d.skip_tls_verify) => {
            return Err(Error::invalid(
                &resource,
                "the context skips TLS verification, which dockhand does not do; give it the engine's CA",
            ))
        }
        true => Some(TlsFiles::in_dir(&tls_dir, &resource)?),
        false => None,
    };
    Ok(EngineConfig {
        endpoint,
        tls,
        host: None,
        source: format!("context {name} ({})", meta_path.display()),
    })
}

/// TLS material by endpoint, for the clients made away from the `Engine`
/// (the cleanup worker, the signal handler, the watcher).
static TLS: Lazy<Mutex<HashMap<String, TlsFiles>>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// Remembers how `endpoint` is reached, for [`client_for`].
pub(crate) fn remember(config: &EngineConfig) {
    if let Some(tls) = &config.tls {
        TLS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(config.endpoint.clone(), tls.clone());
    }
}

/// The TLS files of `endpoint`, as `ca\ncert\nkey` for a child process.
pub(crate) fn tls_env(endpoint: &str) -> Option<String> {
    let tls = TLS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(endpoint)
        .cloned()?;
    Some(format!(
        "{}\n{}\n{}",
        tls.ca.display(),
        tls.cert.display(),
        tls.key.display()
    ))
}

/// Takes TLS files a parent passed with [`tls_env`].
pub(crate) fn remember_tls_env(endpoint: &str, value: &str) {
    let mut paths = value.lines().map(PathBuf::from);
    if let (Some(ca), Some(cert), Some(key)) = (paths.next(), paths.next(), paths.next()) {
        let config = EngineConfig {
            endpoint: endpoint.to_string(),
            tls: Some(TlsFiles { ca, cert, key }),
            host: None,
            source: "the parent process".into(),
        };
        remember(&config);
    }
}

/// A fresh client for `endpoint`, without a round trip, with the TLS
/// material it was first reached with.
pub(crate) fn client_for(endpoint: &str) -> std::result::Result<Docker, String> {
    let tls = TLS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(endpoint)
        .cloned();
    client(endpoint, tls.as_ref(), API_DEFAULT_VERSION)
}

/// A client speaking API `version` to `endpoint`.
pub(crate) fn client(
    endpoint: &str,
    tls: Option<&TlsFiles>,
    version: &ClientVersion,
) -> std::result::Result<Docker, String> {
    // How long the engine may take to begin a reply (a stream's body may run
    // longer): a hung engine is a timeout naming the call, never a hang.
    let timeout = crate::config::engine_timeout_secs()?;
    if let Some(path) = endpoint.strip_prefix("unix://") {
        if !Path::new(path).exists() {
            return Err("no such socket".into());
        }
        return Docker::connect_with_unix(path, timeout, API_DEFAULT_VERSION).map_err(|e| e.to_string());
    }
    if !(endpoint.starts_with("tcp://")
        || endpoint.starts_with("http://")
        || endpoint.starts_with("https://"))
    {
        return Err("unsupported scheme: use unix://, tcp:// or https://".into());
    }
    match tls {
        Some(tls) => tls_client(endpoint, tls, version, timeout),
        None if endpoint.starts_with("https://") => {
            Err("https:// needs TLS material: set DOCKER_TLS_VERIFY and DOCKER_CERT_PATH".into())
        }
        None => Docker::connect_with_http(endpoint, timeout, API_DEFAULT_VERSION).map_err(|e| e.to_string()),
    }
}

#[cfg(feature = "tls")]
fn tls_client(
    endpoint: &str,
    tls: &TlsFiles,
    version: &ClientVersion,
    timeout: u64,
) -> std::result::Result<Docker, String> {
    Docker::connect_with_ssl(endpoint, &tls.key, &tls.cert, &tls.ca, timeout, version)
        .map_err(|e| format!("TLS with {}: {e}", tls.describe()))
}

#[cfg(not(feature = "tls"))]
fn tls_client(
    _endpoint: &str,
    _tls: &TlsFiles,
    _version: &ClientVersion,
    _timeout: u64,
) -> std::result::Result<Docker, String> {
    Err("this engine wants TLS, and dockhand was built without its `tls` feature: add features = [\"tls\"] to the dockhand dependency".into())
}

/// The host published ports are reached on, for an endpoint.
pub(crate) fn host_of(endpoint: &str) -> String {
    let rest = ["tcp://", "http://", "https://"]
        .iter()
        .find_map(|scheme| endpoint.strip_prefix(scheme));
    match rest {
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

/// Whether the engine runs on this machine: a unix socket, or a TCP endpoint
/// on a loopback address. Only then do published ports bind to 127.0.0.1.
pub(crate) fn is_local(endpoint: &str) -> bool {
    if endpoint.starts_with("unix://") {
        return true;
    }
    let host = host_of(endpoint);
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dockhand-endpoint-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn certs(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.join(f), "pem").unwrap();
        }
    }

    #[test]
    fn docker_host_with_tls_and_a_host_override() {
        let dir = tempdir("tls");
        certs(&dir);
        let d = dir.to_str().unwrap();
        let pairs = [
            ("DOCKER_HOST", "tcp://10.1.2.3:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", d),
            ("TESTCONTAINERS_HOST_OVERRIDE", "docker.lan"),
        ];
        let Wanted::One(config) = from_env(&env(&pairs)).unwrap() else {
            panic!()
        };
        assert_eq!(config.endpoint, "tcp://10.1.2.3:2376");
        assert_eq!(config.tls.as_ref().unwrap().cert, dir.join("cert.pem"));
        assert_eq!(config.reach_host(), "docker.lan");
        // DOCKHAND_HOST wins over the testcontainers variable.
        let mut more = pairs.to_vec();
        more.push(("DOCKHAND_HOST", "mine"));
        let Wanted::One(config) = from_env(&env(&more)).unwrap() else {
            panic!()
        };
        assert_eq!(config.reach_host(), "mine");
    }

    #[test]
    fn a_cert_path_without_the_files_is_named() {
        let dir = tempdir("empty");
        let pairs = [
            ("DOCKER_HOST", "tcp://10.1.2.3:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", dir.to_str().unwrap()),
        ];
        let err = from_env(&env(&pairs)).unwrap_err().to_string();
        assert!(
            err.contains("ca.pem") && err.contains(dir.to_str().unwrap()),
            "{err}"
        );
        assert!(err.contains("tcp://10.1.2.3:2376"), "{err}");
    }

    #[test]
    fn contexts_are_read_from_the_store_as_the_cli_writes_them() {
        let dir = tempdir("ctx");
        let digest = format!("{:x}", Sha256::digest(b"ci"));
        let meta = dir.join("contexts/meta").join(&digest);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"ci","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://192.0.2.9:2376","SkipTLSVerify":false}}}"#,
        )
        .unwrap();
        certs(&dir.join("contexts/tls").join(&digest).join("docker"));
        std::fs::write(dir.join("config.json"), r#"{"currentContext":"ci"}"#).unwrap();
        let d = dir.to_str().unwrap();
        let Wanted::One(config) = from_env(&env(&[("DOCKER_CONFIG", d)])).unwrap() else {
            panic!()
        };
        assert_eq!(config.endpoint, "tcp://192.0.2.9:2376");
        assert!(config.tls.is_some());
        assert_eq!(config.reach_host(), "192.0.2.9");
        assert!(config.describe().contains("context ci"), "{}", config.describe());
        // DOCKER_CONTEXT names another one, which does not exist.
        let err = from_env(&env(&[("DOCKER_CONFIG", d), ("DOCKER_CONTEXT", "nope")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("docker context nope") && err.contains("meta.json"),
            "{err}"
        );
        // "default" is the default sockets; DOCKER_HOST beats any context.
        let defaults = from_env(&env(&[("DOCKER_CONFIG", d), ("DOCKER_CONTEXT", "default")])).unwrap();
        assert_eq!(defaults, Wanted::Defaults { host: None });
        let Wanted::One(config) =
            from_env(&env(&[("DOCKER_CONFIG", d), ("DOCKER_HOST", "unix:///x.sock")])).unwrap()
        else {
            panic!()
        };
        assert_eq!(config.endpoint, "unix:///x.sock");
    }

    #[test]
    fn host_and_locality_come_from_the_endpoint() {
        assert_eq!(host_of("unix:///var/run/docker.sock"), "127.0.0.1");
        assert_eq!(host_of("tcp://192.0.2.7:2375"), "192.0.2.7");
        assert_eq!(host_of("tcp://docker.internal:2376/"), "docker.internal");
        assert_eq!(host_of("tcp://[::1]:2375"), "::1");
        assert!(is_local("unix:///var/run/docker.sock"));
        assert!(
            is_local("tcp://127.0.0.1:2376") && is_local("tcp://[::1]:2375") && is_local("tcp://localhost:1")
        );
        assert!(!is_local("tcp://192.0.2.7:2375"));
    }

    #[test]
    fn unusable_endpoints_are_named() {
        assert_eq!(
            client_for("unix:///definitely/not/here.sock").unwrap_err(),
            "no such socket"
        );
        assert!(client_for("ftp://x").unwrap_err().contains("unsupported"));
        assert!(client_for("https://10.0.0.1:2376").unwrap_err().contains("TLS"));
    }
}
