//! The `Container` guard: a running container that is removed when the guard drops.

pub(crate) mod builder;
mod channel;
mod config;
pub(crate) mod files;
mod lifecycle;
mod networks;
mod oom;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Mutex;
use std::time::Duration;

use bollard::models::{ContainerInspectResponse, ContainerState};
use bollard::Docker;

pub use builder::ContainerBuilder;
pub use config::{Healthcheck, RestartPolicy};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::exec::{self, Exec, ExecOutput};
use crate::logs::{LogLine, LogStream, Logs};
use crate::owned::{Hold, Owned};
use crate::port::{self as ports, Port};
use crate::remove::ObjectKind;
use crate::wait::run::{wait, Target};
use crate::wait::WaitFor;
use crate::{config as switches, worker};

/// How long a drop during a panic waits for the container's last logs.
const PANIC_LOG_WAIT: Duration = Duration::from_secs(3);

/// A container that exists in the engine until this guard is dropped (or
/// [`remove`](Container::remove)d, or [`keep`](Container::keep)-ed).
///
/// Dropping never blocks and never panics: the removal goes to a background
/// worker and is finished before the process exits. Dropped during a panic, the
/// guard first prints the container's last 50 log lines to stderr.
///
/// ```no_run
/// use dockhand::{Container, WaitFor};
///
/// # async fn demo() -> dockhand::Result<()> {
/// let web = Container::builder("fixtures/busybox:latest")
///     .cmd(["sh", "-c", "echo ready; httpd -f -p 8080"])
///     .expose(8080)
///     .wait_for(WaitFor::log("ready"))
///     .start()
///     .await?;
/// let addr = web.address(8080)?;          // 127.0.0.1:<random>
/// let out = web.exec(["echo", "hi"]).await?;
/// assert_eq!(out.exit_code, 0);
/// assert_eq!(out.stdout_str(), "hi\n");
/// # Ok(()) }
/// ```
pub struct Container {
    /// The container, and the networks and volumes it uses (let go only after
    /// it is removed).
    owned: Hold,
    image: String,
    published: Vec<Port>,
    ports: Mutex<HashMap<Port, u16>>,
    /// Aliases by network id: the engine drops them on disconnect, and a
    /// reconnect without aliases gives them back.
    aliases: Mutex<HashMap<String, Vec<String>>>,
    /// Its own address, when the host can reach it (a local engine): a port
    /// wait asks the service there, where nothing accepts before it listens.
    address: Mutex<Option<IpAddr>>,
    /// The lock file of its users, when it is reused by configuration.
    reuse_lock: std::sync::OnceLock<std::path::PathBuf>,
    /// Its unix-socket channel, when it was given one.
    channel: std::sync::OnceLock<crate::channel::Link>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("name", &self.name())
            .field("id", &self.short_id())
            .field("image", &self.image)
            .finish()
    }
}

impl Container {
    /// Starts describing a container running `image`.
    ///
    /// ```
    /// let builder = dockhand::Container::builder("fixtures/busybox:latest");
    /// ```
    pub fn builder(image: impl Into<String>) -> ContainerBuilder {
        ContainerBuilder::new(image)
    }

    pub(crate) fn new(
        engine: Engine,
        id: String,
        name: String,
        image: String,
        published: Vec<Port>,
        holds: Vec<Hold>,
    ) -> Self {
        Container {
            owned: Owned::new(engine, ObjectKind::Container, id, name, holds),
            image,
            published,
            ports: Mutex::new(HashMap::new()),
            aliases: Mutex::new(HashMap::new()),
            address: Mutex::new(None),
            reuse_lock: std::sync::OnceLock::new(),
            channel: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn docker(&self) -> &Docker {
        self.owned.engine().docker()
    }

    /// The full container id.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::Container) { assert_eq!(c.id().len(), 64); }
    /// ```
    pub fn id(&self) -> &str {
        self.owned.id()
    }

    fn short_id(&self) -> &str {
        let id = self.id();
        &id[..id.len().min(12)]
    }

    /// The container's name.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::Container) { assert!(c.name().starts_with("dockhand-")); }
    /// ```
    pub fn name(&self) -> &str {
        self.owned.name()
    }

    /// The image it runs, as given to the builder.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::Container) { println!("{}", c.image()); }
    /// ```
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The engine it runs on.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::Container) { println!("{}", c.engine().version()); }
    /// ```
    pub fn engine(&self) -> &Engine {
        self.owned.engine()
    }

    /// The host to connect to for published ports (127.0.0.1 for a local engine).
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::Container) { assert_eq!(c.host(), "127.0.0.1"); }
    /// ```
    pub fn host(&self) -> &str {
        self.engine().host()
    }

    /// `container <name> (<short id>)`, how errors name it.
    pub(crate) fn describe(&self) -> String {
        self.owned.describe()
    }

    /// `<name> (<short id>)`, for messages that say "container" themselves.
    pub(crate) fn label(&self) -> String {
        format!("{} ({})", self.name(), self.short_id())
    }

    /// The host port that container port `port` is published on.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let port = c.host_port(5432)?;
    /// # Ok(()) }
    /// ```
    pub fn host_port(&self, port: impl Into<Port>) -> Result<u16> {
        let port = port.into();
        let ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        ports.get(&port).copied().ok_or_else(|| Error::PortNotExposed {
            container: self.label(),
            port: port.to_string(),
            published: self.published.iter().map(Port::to_string).collect(),
        })
    }

    /// Host and host port of container port `port`, ready to connect to.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let addr = c.address(8080)?;
    /// let stream = std::net::TcpStream::connect(addr);
    /// # Ok(()) }
    /// ```
    pub fn address(&self, port: impl Into<Port>) -> Result<SocketAddr> {
        let host_port = self.host_port(port)?;
        (self.host(), host_port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| Error::Io {
                operation: "resolve host of",
                resource: self.describe(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} has no address", self.host()),
                ),
            })
    }

    pub(crate) fn ports_snapshot(&self) -> HashMap<Port, u16> {
        self.ports.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the published ports (they change when the container restarts).
    pub(crate) async fn refresh_ports(&self) -> Result<()> {
        if self.published.is_empty() {
            return Ok(());
        }
        let inspected = self.inspect().await?;
        self.take_ports_from(&inspected);
        Ok(())
    }

    /// Takes the published ports and address from an inspection of it.
    pub(crate) fn take_ports_from(&self, inspected: &ContainerInspectResponse) {
        let settings = inspected.network_settings.as_ref();
        let fresh = ports::host_ports(settings.and_then(|n| n.ports.as_ref()));
        *self.ports.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        let address = settings
            .filter(|_| self.engine().reaches_containers())
            .and_then(|n| n.networks.as_ref())
            .and_then(|networks| {
                networks
                    .values()
                    .find_map(|n| n.ip_address.as_deref().and_then(|ip| ip.parse().ok()))
            });
        *self.address.lock().unwrap_or_else(|e| e.into_inner()) = address;
    }

    /// Waits for `condition` until `deadline`; with `since`, log conditions
    /// count lines from that instant on.
    pub(crate) async fn wait_for(
        &self,
        condition: &WaitFor,
        deadline: tokio::time::Instant,
        since: Option<&str>,
    ) -> std::result::Result<(), crate::NotReadyReason> {
        let ports = self.ports_snapshot();
        let described = self.describe();
        let address = *self.address.lock().unwrap_or_else(|e| e.into_inner());
        let target = Target {
            docker: self.docker(),
            id: self.id(),
            resource: &described,
            host: self.host(),
            ports: &ports,
            address,
            since,
            podman: self.engine().kind() == crate::EngineKind::Podman,
        };
        wait(&target, condition, deadline).await
    }

    /// Runs a command in the container and collects its exit code and output.
    /// Takes an array, a vector or an [`Exec`] with env, user, stdin or a timeout.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let out = c.exec(["sh", "-c", "echo out; echo err >&2; exit 3"]).await?;
    /// assert_eq!(out.exit_code, 3);
    /// assert_eq!(out.stdout_str(), "out\n");
    /// assert_eq!(out.stderr_str(), "err\n");
    /// let fed = c.exec(dockhand::Exec::new(["cat"]).stdin(b"hi".to_vec())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn exec(&self, command: impl Into<Exec>) -> Result<ExecOutput> {
        exec::run(self.docker(), self.id(), &self.describe(), command.into()).await
    }

    /// Everything the container has logged so far.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let logs = c.logs().await?;
    /// assert!(logs.stdout().contains("ready"));
    /// # Ok(()) }
    /// ```
    pub async fn logs(&self) -> Result<Logs> {
        LogStream::new(self.docker(), self.id(), self.describe(), false, "all")
            .collect_all()
            .await
            .map(Logs::from_lines)
    }

    /// Follows the container's output, line by line, from its first line on.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let mut lines = c.log_stream();
    /// let first = lines.next_line().await;
    /// # Ok(()) }
    /// ```
    pub fn log_stream(&self) -> LogStream {
        LogStream::new(self.docker(), self.id(), self.describe(), true, "all")
    }

    pub(crate) async fn last_log_lines(&self, n: usize) -> Result<Vec<String>> {
        let lines = LogStream::new(self.docker(), self.id(), self.describe(), false, &n.to_string())
            .collect_all()
            .await?;
        Ok(lines.iter().map(LogLine::to_string).collect())
    }

    /// Waits for a condition on the running container, e.g. after a restart.
    /// Log conditions look at what the current run logged: after a restart, a
    /// line the previous run printed does not count.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// c.restart().await?;
    /// c.wait_until(dockhand::WaitFor::port(8080), std::time::Duration::from_secs(10)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_until(&self, condition: impl Into<WaitFor>, timeout: Duration) -> Result<()> {
        let condition = condition.into();
        let begun = tokio::time::Instant::now();
        // Log conditions count from the current run on, not a previous one's
        // lines (after a restart, or a stop and start).
        let since = match condition.walk().iter().any(|c| matches!(c, WaitFor::Log(_))) {
            true => self.current_run_since().await?,
            false => None,
        };
        match self.wait_for(&condition, begun + timeout, since.as_deref()).await {
            Ok(()) => Ok(()),
            Err(reason) => Err(self.not_ready(&condition, begun.elapsed(), reason).await),
        }
    }

    /// From when the current run's log lines count: the end of the previous
    /// run (`State.FinishedAt`), `None` when there was none. (Its start,
    /// `State.StartedAt`, is recorded only after the process began, so a line
    /// printed at once can carry an earlier stamp.)
    pub(crate) async fn current_run_since(&self) -> Result<Option<String>> {
        let finished = self.inspect().await?.state.and_then(|s| s.finished_at);
        Ok(finished.filter(|at| !at.starts_with("0001-")))
    }

    /// The readiness error, with the state and last logs read while the container
    /// still exists.
    pub(crate) async fn not_ready(
        &self,
        condition: &WaitFor,
        elapsed: Duration,
        reason: crate::NotReadyReason,
    ) -> Error {
        let state = match crate::podman::inspect_container(self.docker(), self.id()).await {
            Ok(ContainerInspectResponse {
                state: Some(mut state),
                ..
            }) => {
                oom::flag_late_oom(self, &mut state).await;
                describe_state(Some(&state))
            }
            Ok(_) => describe_state(None),
            Err(err) => format!("unknown ({err})"),
        };
        let logs = self
            .last_log_lines(builder::ERROR_LOG_LINES)
            .await
            .unwrap_or_else(|err| vec![format!("(logs unavailable: {err})")]);
        Error::NotReady(Box::new(crate::error::NotReady {
            container: self.label(),
            image: self.image.clone(),
            condition: condition.to_string(),
            elapsed,
            reason,
            state,
            logs,
        }))
    }

    /// What the engine does with this container from now on (start, die with
    /// its exit code, oom, kill, health_status, restart, pause, destroy, ...).
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// use futures_util::StreamExt;
    /// let mut events = c.events()?;
    /// c.kill("SIGKILL").await?;
    /// while let Some(event) = events.next().await {
    ///     if event?.action == "die" { break; }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> Result<crate::EventStream> {
        self.engine()
            .events()
            .kind(ObjectKind::Container)
            .object(self.id())
            .stream()
    }

    /// The engine's full description of the container.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let running = c.inspect().await?.state.and_then(|s| s.running);
    /// # Ok(()) }
    /// ```
    pub async fn inspect(&self) -> Result<ContainerInspectResponse> {
        crate::podman::inspect_container(self.docker(), self.id())
            .await
            .map_err(|e| Error::engine("inspect", self.describe(), e))
    }

    /// Removes the container now and reports whether that worked; for a test that
    /// must see it gone before going on.
    ///
    /// ```no_run
    /// # async fn demo(c: dockhand::Container) -> dockhand::Result<()> {
    /// c.remove().await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove(self) -> Result<()> {
        self.owned.remove().await
    }

    /// Removes it now through a shared reference (a group's replica, which
    /// others may still hold): afterwards the guard has nothing left to do.
    pub(crate) async fn remove_shared(&self) -> Result<()> {
        self.owned.remove().await
    }

    /// Disarms the guard: the container stays after the guard is gone, and so do
    /// its networks and volumes; the watcher and the signal cleanup leave them.
    /// Returns its id.
    ///
    /// ```no_run
    /// # fn demo(c: dockhand::Container) {
    /// let id = c.keep();
    /// println!("left running for inspection: {id}");
    /// # }
    /// ```
    pub fn keep(self) -> String {
        self.owned.keep();
        self.id().to_string()
    }

    /// Removes the container after a failed start, awaited so the caller sees it
    /// gone, and returns the error that caused it.
    pub(crate) async fn fail_removing(self, err: Error) -> Error {
        if !switches::keep_all()
            && let Err(remove_err) = self.owned.remove().await
        {
            tracing::warn!(container = %self.describe(), %remove_err, "removing a container that failed to start failed");
        }
        err
    }

    /// A container other processes use too: dropping this handle leaves it.
    pub(crate) fn disown(&self) {
        self.owned.disarm();
    }

    /// Notes that it is reused, and the lock file that counts its users.
    pub(crate) fn mark_reused(&self, lock: std::path::PathBuf) {
        let _ = self.reuse_lock.set(lock);
    }

    /// The lock file of its users, when it is reused by configuration.
    pub(crate) fn reuse_lock(&self) -> Option<&std::path::Path> {
        self.reuse_lock.get().map(|p| p.as_path())
    }

    /// Removes a container whose guard will never drop (it lives in a static):
    /// the exit hook calls this before waiting for the worker.
    pub(crate) fn release_at_exit(&self) {
        self.owned.release();
    }

    fn print_last_logs_blocking(&self) {
        let id = self.id().to_string();
        let fetched = worker::run_blocking(self.engine().endpoint(), PANIC_LOG_WAIT, move |docker| {
            Box::pin(async move {
                let stream = LogStream::new(&docker, &id, id.clone(), false, "50");
                stream.collect_all().await
            })
        });
        match fetched {
            Some(Ok(lines)) => {
                eprintln!(
                    "--- dockhand: last {} log lines of container {} ---",
                    lines.len(),
                    self.describe()
                );
                for line in lines {
                    eprintln!("{line}");
                }
                eprintln!("--- end of logs of {} ---", self.describe());
            }
            Some(Err(err)) => eprintln!("dockhand: could not read logs of {}: {err}", self.describe()),
            None => eprintln!(
                "dockhand: logs of {} did not arrive within {PANIC_LOG_WAIT:?}",
                self.describe()
            ),
        }
    }
}

impl Drop for Container {
    /// The removal itself is the core's; a container dropped during a panic
    /// first shows why the test failed.
    fn drop(&mut self) {
        if self.owned.is_armed() && std::thread::panicking() {
            self.print_last_logs_blocking();
            if switches::keep_failed() {
                let name = self.name();
                eprintln!(
                    "dockhand: container {name} is kept for a look inside:\n  docker exec -it {name} sh\n  docker logs {name}\n  dockhand sweep --kept    # removes it, and everything else kept, when done"
                );
            }
        }
    }
}

/// `running`, `exited with code 1`, `OOM-killed (exit 137)`, ... for error texts.
pub(crate) fn describe_state(state: Option<&ContainerState>) -> String {
    let Some(state) = state else {
        return "unknown".into();
    };
    let code = state.exit_code.unwrap_or(0);
    if state.oom_killed == Some(true) {
        return format!("OOM-killed (exit code {code})");
    }
    if state.running == Some(true) {
        return if state.paused == Some(true) {
            "paused".into()
        } else {
            "running".into()
        };
    }
    let status = state
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into());
    match status.as_str() {
        "exited" | "dead" => {
            let mut text = format!("{status} with code {code}");
            if code == 137 {
                // Podman with cgroup v1 reports an OOM kill only this way.
                text.push_str(" (SIGKILL)");
            }
            if let Some(err) = state.error.as_deref().filter(|e| !e.is_empty()) {
                text.push_str(&format!(" ({err})"));
            }
            text
        }
        _ => status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::ContainerStateStatusEnum;

    #[test]
    fn state_texts() {
        let mut s = ContainerState {
            status: Some(ContainerStateStatusEnum::EXITED),
            running: Some(false),
            exit_code: Some(3),
            ..Default::default()
        };
        assert_eq!(describe_state(Some(&s)), "exited with code 3");
        s.oom_killed = Some(true);
        s.exit_code = Some(137);
        assert_eq!(describe_state(Some(&s)), "OOM-killed (exit code 137)");
        let running = ContainerState {
            running: Some(true),
            ..Default::default()
        };
        assert_eq!(describe_state(Some(&running)), "running");
        assert_eq!(describe_state(None), "unknown");
    }
}
