//! `ContainerBuilder`: everything about a container before it exists, checked in
//! full before anything is created.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding};
use bollard::query_parameters::CreateContainerOptions;
use tokio::time::Instant;

use super::config::{Healthcheck, RestartPolicy};
use super::files::{self, FileSpec};
use super::Container;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::image::{PullOptions, PullPolicy, RegistryAuth};
use crate::labels;
use crate::network::Network;
use crate::port::{Port, Protocol, Publish};
use crate::units::{parse_cpus, parse_memory};
use crate::volume::Mount;
use crate::wait::run::{wait, Target};
use crate::wait::WaitFor;

/// How many log lines a readiness error carries.
pub(crate) const ERROR_LOG_LINES: usize = 50;

/// Describes a container; [`start`](ContainerBuilder::start) creates it, starts it
/// and waits until it is ready.
///
/// ```no_run
/// use dockhand::{Container, WaitFor};
/// # async fn demo() -> dockhand::Result<()> {
/// let web = Container::builder("fixtures/busybox:latest")
///     .cmd(["httpd", "-f", "-p", "8080"])
///     .expose(8080)
///     .env("MODE", "test")
///     .memory("64m")
///     .cpus("0.5")
///     .wait_for(WaitFor::port(8080))
///     .start()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .start().await"]
pub struct ContainerBuilder {
    image: String,
    engine: Option<Engine>,
    name: Option<String>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    env: Vec<(String, String)>,
    publish: Vec<Publish>,
    labels: HashMap<String, String>,
    hostname: Option<String>,
    user: Option<String>,
    workdir: Option<String>,
    privileged: bool,
    init: bool,
    cap_add: Vec<String>,
    cap_drop: Vec<String>,
    memory: Option<String>,
    cpus: Option<String>,
    restart: Option<RestartPolicy>,
    healthcheck: Option<Healthcheck>,
    stop_timeout: Option<Duration>,
    startup_timeout: Duration,
    tmpfs: Vec<(String, String)>,
    files: Vec<FileSpec>,
    networks: Vec<(Network, Vec<String>)>,
    mounts: Vec<Mount>,
    waits: Vec<WaitFor>,
    pull: PullOptions,
}

impl ContainerBuilder {
    pub(crate) fn new(image: impl Into<String>) -> Self {
        ContainerBuilder {
            image: image.into(),
            engine: None,
            name: None,
            cmd: None,
            entrypoint: None,
            env: Vec::new(),
            publish: Vec::new(),
            labels: HashMap::new(),
            hostname: None,
            user: None,
            workdir: None,
            privileged: false,
            init: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            memory: None,
            cpus: None,
            restart: None,
            healthcheck: None,
            stop_timeout: None,
            startup_timeout: Duration::from_secs(60),
            tmpfs: Vec::new(),
            files: Vec::new(),
            networks: Vec::new(),
            mounts: Vec::new(),
            waits: Vec::new(),
            pull: PullOptions::default(),
        }
    }

    /// When the image is pulled (default [`PullPolicy::Missing`]). A pull is
    /// not counted against the [`startup_timeout`](Self::startup_timeout); it is
    /// cut off only when it stops making progress.
    ///
    /// ```
    /// let b = dockhand::Container::builder("redis:7-alpine").pull_policy(dockhand::PullPolicy::Always);
    /// ```
    pub fn pull_policy(mut self, policy: PullPolicy) -> Self {
        self.pull.policy = policy;
        self
    }

    /// Credentials for pulling the image; without them those `docker login`
    /// stored for its registry are used.
    ///
    /// ```
    /// let b = dockhand::Container::builder("ghcr.io/org/app:1")
    ///     .registry_auth(dockhand::RegistryAuth::basic("ci", "token"));
    /// ```
    pub fn registry_auth(mut self, auth: RegistryAuth) -> Self {
        self.pull.auth = Some(auth);
        self
    }

    /// Uses this engine instead of the process-wide default.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let engine = dockhand::Engine::connect_to("unix:///run/podman/podman.sock").await?;
    /// let b = dockhand::Container::builder("busybox").engine(&engine);
    /// # Ok(()) }
    /// ```
    pub fn engine(mut self, engine: &Engine) -> Self {
        self.engine = Some(engine.clone());
        self
    }

    /// The container's name (default: `dockhand-` and a random suffix).
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").name("web-1");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The command (replaces the image's `CMD`).
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").cmd(["sleep", "60"]);
    /// ```
    pub fn cmd<I, S>(mut self, cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cmd = Some(cmd.into_iter().map(Into::into).collect());
        self
    }

    /// The entrypoint (replaces the image's `ENTRYPOINT`).
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").entrypoint(["/bin/sh", "-c"]);
    /// ```
    pub fn entrypoint<I, S>(mut self, entrypoint: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.entrypoint = Some(entrypoint.into_iter().map(Into::into).collect());
        self
    }

    /// Sets an environment variable.
    ///
    /// ```
    /// let b = dockhand::Container::builder("postgres").env("POSTGRES_PASSWORD", "secret");
    /// ```
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Publishes a container port on a random host port of 127.0.0.1. A bare
    /// number is TCP; use [`Port::udp`] for UDP.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").expose(8080).expose(dockhand::Port::udp(53));
    /// ```
    pub fn expose(self, port: impl Into<Port>) -> Self {
        self.publish_on(port, "127.0.0.1", None)
    }

    /// Publishes a container port on a fixed host port of 127.0.0.1. Fixed ports
    /// collide between parallel tests: prefer [`expose`](Self::expose).
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").expose_fixed(8080, 18080);
    /// ```
    pub fn expose_fixed(self, port: impl Into<Port>, host_port: u16) -> Self {
        self.publish_on(port, "127.0.0.1", Some(host_port))
    }

    /// Publishes a container port on another host address (`0.0.0.0` makes it
    /// reachable from other machines), on a random or fixed host port.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").publish_on(8080, "0.0.0.0", None);
    /// ```
    pub fn publish_on(
        mut self,
        port: impl Into<Port>,
        host_ip: impl Into<String>,
        host_port: Option<u16>,
    ) -> Self {
        let port = port.into();
        self.publish.retain(|p| p.port != port);
        self.publish.push(Publish {
            port,
            host_ip: host_ip.into(),
            host_port,
        });
        self
    }

    /// Adds a label. Keys starting with `dockhand.` are reserved.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").label("team", "payments");
    /// ```
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The container's host name.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").hostname("db");
    /// ```
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Runs the process as this user (`name`, `uid` or `uid:gid`).
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").user("nobody");
    /// ```
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The working directory.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").workdir("/tmp");
    /// ```
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// Runs the container privileged.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").privileged();
    /// ```
    pub fn privileged(mut self) -> Self {
        self.privileged = true;
        self
    }

    /// Runs an init process as PID 1 that forwards signals and reaps zombies, so
    /// a process without signal handlers still stops promptly.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").init();
    /// ```
    pub fn init(mut self) -> Self {
        self.init = true;
        self
    }

    /// Adds a Linux capability (`NET_ADMIN`).
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").cap_add("NET_ADMIN");
    /// ```
    pub fn cap_add(mut self, capability: impl Into<String>) -> Self {
        self.cap_add.push(capability.into());
        self
    }

    /// Drops a Linux capability (`ALL` drops every one).
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").cap_drop("ALL");
    /// ```
    pub fn cap_drop(mut self, capability: impl Into<String>) -> Self {
        self.cap_drop.push(capability.into());
        self
    }

    /// Memory limit: `"512m"`, `"1g"`, or bytes.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").memory("256m");
    /// ```
    pub fn memory(mut self, limit: impl Into<String>) -> Self {
        self.memory = Some(limit.into());
        self
    }

    /// CPU limit: `"0.5"`, `"2"`, or millicpus `"500m"`.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").cpus("500m");
    /// ```
    pub fn cpus(mut self, limit: impl Into<String>) -> Self {
        self.cpus = Some(limit.into());
        self
    }

    /// What the engine does when the process exits.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").restart(dockhand::RestartPolicy::Always);
    /// ```
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = Some(policy);
        self
    }

    /// A healthcheck for the engine to run; pair it with [`WaitFor::healthy`].
    ///
    /// ```
    /// use dockhand::{Healthcheck, WaitFor};
    /// let b = dockhand::Container::builder("busybox")
    ///     .healthcheck(Healthcheck::shell("test -f /tmp/up").interval(std::time::Duration::from_millis(100)))
    ///     .wait_for(WaitFor::healthy());
    /// ```
    pub fn healthcheck(mut self, check: Healthcheck) -> Self {
        self.healthcheck = Some(check);
        self
    }

    /// How long `stop()` waits after SIGTERM before SIGKILL (engine default 10 s).
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").stop_timeout(std::time::Duration::from_secs(1));
    /// ```
    pub fn stop_timeout(mut self, grace: Duration) -> Self {
        self.stop_timeout = Some(grace);
        self
    }

    /// The one deadline for the whole start: create, start and every wait
    /// (default 60 s).
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").startup_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn startup_timeout(mut self, limit: Duration) -> Self {
        self.startup_timeout = limit;
        self
    }

    /// Mounts a tmpfs at `path` with mount options (`"size=64m,mode=1777"`, or "").
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").tmpfs("/var/lib/data", "size=64m");
    /// ```
    pub fn tmpfs(mut self, path: impl Into<String>, options: impl Into<String>) -> Self {
        self.tmpfs.push((path.into(), options.into()));
        self
    }

    /// Copies a file with these bytes and mode into the container before it starts.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox")
    ///     .copy_file("/etc/app/config.toml", b"port = 80\n".to_vec(), 0o644);
    /// ```
    pub fn copy_file(self, path: impl Into<String>, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.copy_file_owned(path, contents, mode, 0, 0)
    }

    /// Copies a file with an owner (uid, gid) into the container before it starts.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox")
    ///     .copy_file_owned("/home/app/.pgpass", b"*:*:*:app:pw\n".to_vec(), 0o600, 1000, 1000);
    /// ```
    pub fn copy_file_owned(
        mut self,
        path: impl Into<String>,
        contents: impl Into<Vec<u8>>,
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> Self {
        self.files.push(FileSpec::Bytes {
            path: path.into(),
            data: contents.into(),
            mode,
            uid,
            gid,
        });
        self
    }

    /// Copies a host file or a whole host directory (modes and symlinks kept) to
    /// `dest` in the container before it starts.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").copy_host_path("tests/data", "/srv/data");
    /// ```
    pub fn copy_host_path(
        mut self,
        host_path: impl Into<std::path::PathBuf>,
        dest: impl Into<String>,
    ) -> Self {
        self.files.push(FileSpec::HostPath {
            host: host_path.into(),
            dest: dest.into(),
        });
        self
    }

    /// Joins a network (the first one joined is the container's primary network).
    /// The container keeps the network alive until it is removed itself.
    ///
    /// ```no_run
    /// # async fn demo(net: &dockhand::Network) {
    /// let b = dockhand::Container::builder("busybox").network(net);
    /// # }
    /// ```
    pub fn network(mut self, network: &Network) -> Self {
        if !self.networks.iter().any(|(n, _)| n.id() == network.id()) {
            self.networks.push((network.clone(), Vec::new()));
        }
        self
    }

    /// Joins a network under an alias that other containers on it can resolve.
    /// Call it again for more aliases.
    ///
    /// ```no_run
    /// # async fn demo(net: &dockhand::Network) {
    /// let b = dockhand::Container::builder("busybox").network_alias(net, "db").network_alias(net, "primary");
    /// # }
    /// ```
    pub fn network_alias(mut self, network: &Network, alias: impl Into<String>) -> Self {
        self = self.network(network);
        if let Some((_, aliases)) = self.networks.iter_mut().find(|(n, _)| n.id() == network.id()) {
            aliases.push(alias.into());
        }
        self
    }

    /// Mounts a volume, a host path or a tmpfs.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").mount(dockhand::Mount::tmpfs("/scratch"));
    /// ```
    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// Adds a readiness condition; several calls must all hold, under one deadline.
    ///
    /// ```
    /// use dockhand::WaitFor;
    /// let b = dockhand::Container::builder("busybox")
    ///     .wait_for(WaitFor::log("ready"))
    ///     .wait_for(WaitFor::port(8080));
    /// ```
    pub fn wait_for(mut self, condition: impl Into<WaitFor>) -> Self {
        self.waits.push(condition.into());
        self
    }

    /// The container's name: the given one, or a fresh unique one.
    fn resolved_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("dockhand-{}", labels::random_hex(12)))
    }

    /// Checks everything that can be checked without the engine and produces the
    /// engine's create request.
    pub(crate) fn to_create_body(&self, name: &str) -> Result<ContainerCreateBody> {
        let resource = format!("container {name} (image {:?})", self.image);
        let bad = |reason: String| Error::invalid(resource.clone(), reason);
        if self.image.trim().is_empty() {
            return Err(bad("the image name is empty".into()));
        }
        if self.image.chars().any(char::is_whitespace) {
            return Err(bad(format!(
                "the image name {:?} contains white space",
                self.image
            )));
        }
        if self.startup_timeout.is_zero() {
            return Err(bad("the startup timeout is zero".into()));
        }
        for p in &self.publish {
            if p.port.number() == 0 {
                return Err(bad(
                    "port 0 cannot be exposed; give the port the service listens on".into(),
                ));
            }
            if p.host_ip.parse::<std::net::IpAddr>().is_err() {
                return Err(bad(format!(
                    "host address {:?} for port {} is not an IP address",
                    p.host_ip, p.port
                )));
            }
        }
        for (key, _) in &self.env {
            if key.is_empty() || key.contains('=') {
                return Err(bad(format!(
                    "environment variable name {key:?} is empty or contains '='"
                )));
            }
        }
        for file in &self.files {
            file.dest().map_err(|e| bad(format!("file to copy: {e}")))?;
        }
        let mounts = self
            .mounts
            .iter()
            .map(Mount::to_engine)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(&bad)?;
        if let Some(problem) = self.healthcheck.as_ref().and_then(Healthcheck::problem) {
            return Err(bad(problem));
        }
        let memory = self
            .memory
            .as_deref()
            .map(parse_memory)
            .transpose()
            .map_err(bad)?;
        let nano_cpus = self.cpus.as_deref().map(parse_cpus).transpose().map_err(bad)?;
        for condition in self.waits.iter().flat_map(WaitFor::walk) {
            self.check_condition(condition).map_err(&bad)?;
        }
        let labels = labels::stamp(&resource, &self.labels)?;

        let port_bindings = (!self.publish.is_empty()).then(|| {
            self.publish
                .iter()
                .map(|p| {
                    let binding = PortBinding {
                        host_ip: Some(p.host_ip.clone()),
                        host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
                    };
                    (p.port.to_string(), Some(vec![binding]))
                })
                .collect::<HashMap<_, _>>()
        });
        let host_config = HostConfig {
            port_bindings,
            memory,
            nano_cpus,
            privileged: self.privileged.then_some(true),
            init: self.init.then_some(true),
            cap_add: (!self.cap_add.is_empty()).then(|| self.cap_add.clone()),
            cap_drop: (!self.cap_drop.is_empty()).then(|| self.cap_drop.clone()),
            restart_policy: self.restart.map(RestartPolicy::to_engine),
            tmpfs: (!self.tmpfs.is_empty()).then(|| self.tmpfs.iter().cloned().collect()),
            mounts: (!mounts.is_empty()).then_some(mounts),
            // The first network is joined at create time; engines before API 1.44
            // take only one there, so the others are connected before start.
            network_mode: self.networks.first().map(|(n, _)| n.name().to_string()),
            ..Default::default()
        };
        let networking_config = self.networks.first().map(|(network, aliases)| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.name().to_string(), endpoint(aliases))])),
        });
        Ok(ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: self.cmd.clone(),
            entrypoint: self.entrypoint.clone(),
            env: (!self.env.is_empty()).then(|| self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            exposed_ports: (!self.publish.is_empty())
                .then(|| self.publish.iter().map(|p| p.port.to_string()).collect()),
            hostname: self.hostname.clone(),
            user: self.user.clone(),
            working_dir: self.workdir.clone(),
            labels: Some(labels),
            healthcheck: self.healthcheck.as_ref().map(Healthcheck::to_engine),
            stop_timeout: self.stop_timeout.map(|d| d.as_secs() as i64),
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        })
    }

    fn check_condition(&self, condition: &WaitFor) -> std::result::Result<(), String> {
        let published = |port: &Port| self.publish.iter().any(|p| p.port == *port);
        match condition {
            WaitFor::Log(log) => log.matcher().map(|_| ()),
            WaitFor::Port(port) if port.protocol() == Protocol::Udp => Err(format!(
                "cannot wait for UDP port {port}: nothing tells when a UDP service listens; wait for a log line instead"
            )),
            WaitFor::Port(port) if !published(port) => Err(format!(
                "waiting for port {port}, which is not exposed; add .expose({})",
                port.number()
            )),
            WaitFor::Http(http) if !published(&http.port) => Err(format!(
                "waiting for HTTP on port {}, which is not exposed; add .expose({})",
                http.port,
                http.port.number()
            )),
            WaitFor::Healthy if self.healthcheck.is_none() => Ok(()), // the image may define one
            WaitFor::Command(cmd) if cmd.is_empty() => Err("the wait command is empty".into()),
            _ => Ok(()),
        }
    }

    /// Creates, starts and waits for the container. Every failure after the
    /// engine created it removes it again before returning.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let c = dockhand::Container::builder("fixtures/busybox:latest")
    ///     .cmd(["sleep", "60"])
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(self) -> Result<Container> {
        let name = self.resolved_name();
        let body = self.to_create_body(&name)?;
        let engine = crate::owned::engine_for(self.engine.clone()).await?;
        let resource = format!("container {name} (image {})", self.image);
        if self.pull.policy == PullPolicy::Always {
            engine.pull_image(&self.image, &self.pull).await?;
        }
        let mut begun = Instant::now();
        let limit = self.startup_timeout;
        let id = match create(&engine, &name, &body, &resource, limit).await? {
            Some(id) => id,
            None => {
                // The engine lacks the image: pull (by the policy), then the
                // startup clock starts afresh, as a pull is not the service's start.
                engine.pull_image(&self.image, &self.pull).await?;
                begun = Instant::now();
                create(&engine, &name, &body, &resource, limit)
                    .await?
                    .ok_or_else(|| Error::ImageNotFound {
                        image: self.image.clone(),
                        reason: "the engine still lacks it after pulling".into(),
                    })?
            }
        };
        let deadline = begun + self.startup_timeout;
        // From here on the guard owns the container: any early return removes it.
        let holds = self
            .networks
            .iter()
            .map(|(n, _)| n.hold())
            .chain(self.mounts.iter().filter_map(Mount::hold))
            .collect();
        let published = self.publish.iter().map(|p| p.port).collect();
        let container = Container::new(engine, id, name, self.image.clone(), published, holds);

        for (network, aliases) in self.networks.iter().skip(1) {
            if let Err(err) = container.connect_endpoint(network, aliases).await {
                return Err(container.fail_removing(err).await);
            }
        }
        if !self.files.is_empty() {
            let copied = match files::pack(&self.files, &resource) {
                Ok(tar) => {
                    files::upload(container.docker(), container.id(), tar, &container.describe()).await
                }
                Err(err) => Err(err),
            };
            if let Err(err) = copied {
                return Err(container.fail_removing(err).await);
            }
        }

        if let Err(err) = container.docker().start_container(container.id(), None).await {
            let err = Error::engine("start", container.describe(), err);
            return Err(container.fail_removing(err).await);
        }
        if let Err(err) = container.refresh_ports().await {
            return Err(container.fail_removing(err).await);
        }

        if !self.waits.is_empty() {
            let condition = if self.waits.len() == 1 {
                self.waits[0].clone()
            } else {
                WaitFor::All(self.waits.clone())
            };
            let ports = container.ports_snapshot();
            let described = container.describe();
            let target = Target {
                docker: container.docker(),
                id: container.id(),
                resource: &described,
                host: container.host(),
                ports: &ports,
            };
            if let Err(reason) = wait(&target, &condition, deadline).await {
                let err = container.not_ready(&condition, begun.elapsed(), reason).await;
                return Err(container.fail_removing(err).await);
            }
        }
        tracing::debug!(container = %container.describe(), elapsed_ms = begun.elapsed().as_millis() as u64, "container ready");
        Ok(container)
    }
}

/// Creates the container; `None` when the engine lacks the image.
async fn create(
    engine: &Engine,
    name: &str,
    body: &ContainerCreateBody,
    resource: &str,
    limit: Duration,
) -> Result<Option<String>> {
    let options = CreateContainerOptions {
        name: Some(name.to_string()),
        ..Default::default()
    };
    let created = engine.docker().create_container(Some(options), body.clone());
    match tokio::time::timeout(limit, created).await {
        Err(_) => Err(Error::Timeout {
            operation: "create",
            resource: resource.to_string(),
            after: limit,
        }),
        Ok(Ok(created)) => Ok(Some(created.id)),
        Ok(Err(err)) if is_missing_image(&err) => Ok(None),
        Ok(Err(err)) => Err(Error::engine("create", resource, err)),
    }
}

/// A 404 can also mean a network that is gone; only a missing image is pulled.
fn is_missing_image(err: &bollard::errors::Error) -> bool {
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message,
        } => message.to_lowercase().contains("no such image"),
        _ => false,
    }
}

/// An endpoint on a network with these aliases.
pub(crate) fn endpoint(aliases: &[String]) -> EndpointSettings {
    EndpointSettings {
        aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Container;

    #[test]
    fn defaults_bind_loopback_and_stamp_labels() {
        let body = Container::builder("busybox")
            .expose(8080)
            .label("team", "a")
            .to_create_body("c1")
            .unwrap();
        let bindings = body.host_config.unwrap().port_bindings.unwrap();
        let b = bindings["8080/tcp"].as_ref().unwrap()[0].clone();
        assert_eq!(b.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(b.host_port.as_deref(), Some(""));
        let labels = body.labels.unwrap();
        assert_eq!(labels["team"], "a");
        assert_eq!(labels[labels::MANAGED], "true");
    }

    #[test]
    fn limits_and_options_reach_the_engine() {
        let body = Container::builder("busybox")
            .memory("64m")
            .cpus("500m")
            .env("A", "1")
            .init()
            .restart(RestartPolicy::UnlessStopped)
            .stop_timeout(Duration::from_secs(3))
            .expose_fixed(Port::udp(53), 5353)
            .to_create_body("c2")
            .unwrap();
        let hc = body.host_config.unwrap();
        assert_eq!(hc.memory, Some(64 << 20));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.init, Some(true));
        assert_eq!(body.env.unwrap(), ["A=1"]);
        assert_eq!(body.stop_timeout, Some(3));
        assert_eq!(body.exposed_ports.unwrap(), ["53/udp"]);
        let b = hc.port_bindings.unwrap()["53/udp"].as_ref().unwrap()[0].clone();
        assert_eq!(b.host_port.as_deref(), Some("5353"));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let reason = |b: ContainerBuilder| b.to_create_body("c").unwrap_err().to_string();
        assert!(reason(Container::builder("")).contains("image name is empty"));
        assert!(reason(Container::builder("busybox").expose(0)).contains("port 0"));
        assert!(reason(Container::builder("busybox").memory("lots")).contains("\"lots\""));
        assert!(reason(Container::builder("busybox").cpus("x")).contains("cpus"));
        assert!(reason(Container::builder("busybox").env("A=B", "c")).contains("'='"));
        assert!(reason(Container::builder("busybox").label("dockhand.owner.pid", "1")).contains("reserved"));
        assert!(reason(Container::builder("busybox").wait_for(WaitFor::port(80))).contains(".expose(80)"));
        assert!(reason(Container::builder("busybox").wait_for(WaitFor::http(80))).contains(".expose(80)"));
        assert!(reason(Container::builder("busybox").wait_for(WaitFor::log_regex("("))).contains("regex"));
        assert!(reason(Container::builder("busybox").copy_file("../x", vec![], 0o644)).contains(".."));
        assert!(
            reason(Container::builder("busybox").publish_on(80, "localhost", None)).contains("IP address")
        );
        let udp = Container::builder("busybox")
            .expose(Port::udp(53))
            .wait_for(WaitFor::port(Port::udp(53)));
        assert!(reason(udp).contains("UDP"));
    }
}
