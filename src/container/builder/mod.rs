//! `ContainerBuilder`: everything about a container before it exists, checked in
//! full before anything is created.

mod channel;
mod create;
mod internal;
mod reuse;
mod start;

use std::collections::HashMap;
use std::time::Duration;

pub(crate) use create::endpoint;

use super::config::{Healthcheck, RestartPolicy};
use super::files::FileSpec;
use crate::engine::Engine;
use crate::image::{PullOptions, PullPolicy, RegistryAuth};
use crate::network::Network;
use crate::port::{Port, Publish};
use crate::reuse::Reuse;
use crate::volume::Mount;
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
    /// `dockhand.*` labels the crate itself adds (a group's name and index),
    /// set after the user's labels are checked.
    reserved_labels: HashMap<String, String>,
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
    reuse: Option<Reuse>,
    /// Start from this configuration's cached state image when there is one.
    cached_state: bool,
    /// Programs run, in order, before the entrypoint the container would
    /// have run (each ends by exec'ing the arguments after it).
    run_first: Vec<String>,
    /// The path in the container of a channel's socket.
    channel: Option<String>,
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
            reserved_labels: HashMap::new(),
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
            reuse: None,
            cached_state: false,
            run_first: Vec::new(),
            channel: None,
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

    /// Publishes a container port on a random host port of 127.0.0.1 (on a
    /// remote engine, of every address the engine's host has, so that this
    /// machine reaches it). A bare number is TCP; use [`Port::udp`] for UDP.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").expose(8080).expose(dockhand::Port::udp(53));
    /// ```
    pub fn expose(self, port: impl Into<Port>) -> Self {
        self.publish(port.into(), None, None)
    }

    /// Publishes a container port on a fixed host port of 127.0.0.1 (every
    /// address on a remote engine). Fixed ports collide between parallel
    /// tests: prefer [`expose`](Self::expose).
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").expose_fixed(8080, 18080);
    /// ```
    pub fn expose_fixed(self, port: impl Into<Port>, host_port: u16) -> Self {
        self.publish(port.into(), None, Some(host_port))
    }

    /// Publishes a container port on another host address (`0.0.0.0` makes it
    /// reachable from other machines), on a random or fixed host port.
    ///
    /// ```
    /// let b = dockhand::Container::builder("busybox").publish_on(8080, "0.0.0.0", None);
    /// ```
    pub fn publish_on(
        self,
        port: impl Into<Port>,
        host_ip: impl Into<String>,
        host_port: Option<u16>,
    ) -> Self {
        self.publish(port.into(), Some(host_ip.into()), host_port)
    }

    fn publish(mut self, port: Port, host_ip: Option<String>, host_port: Option<u16>) -> Self {
        self.publish.retain(|p| p.port != port);
        self.publish.push(Publish {
            port,
            host_ip,
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

    /// Reuses one container for every process of the test run (or across runs)
    /// instead of starting one: [`start`](Self::start) finds the running
    /// container with this exact configuration (image id, command, environment,
    /// ports, mounts, limits, labels, files) or creates it, and waits until it
    /// is ready. Two processes starting it at once end with one container.
    /// Dropping the handle leaves it running for the others; it is removed once
    /// the run is over and no process uses it, however they ended.
    ///
    /// A reused container cannot join a network or mount a volume that belongs
    /// to one process; reach it through its published ports.
    ///
    /// ```no_run
    /// use dockhand::{Container, Reuse, WaitFor};
    /// # async fn demo() -> dockhand::Result<()> {
    /// let server = Container::builder("fixtures/busybox:latest")
    ///     .cmd(["httpd", "-f", "-p", "8080"])
    ///     .expose(8080)
    ///     .wait_for(WaitFor::port(8080))
    ///     .reuse(Reuse::Run)
    ///     .start()
    ///     .await?;
    /// println!("{}", server.address(8080)?);
    /// # Ok(()) }
    /// ```
    pub fn reuse(mut self, lifetime: Reuse) -> Self {
        self.reuse = Some(lifetime);
        self
    }
}
