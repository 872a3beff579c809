//! Evaluating a [`WaitFor`] tree against a started container: one deadline, one
//! log stream shared by every log condition, and a watch on the container that
//! fails the wait at once when it exits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bollard::models::HealthStatusEnum;
use bollard::query_parameters::{EventsOptions, WaitContainerOptions};
use bollard::Docker;
use futures_util::future::{self, BoxFuture};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::port::Direct;
use super::protocol::Answer;
use super::{HttpWait, ProtocolWait, WaitFor};
use crate::error::NotReadyReason;
use crate::exec::{self, Exec};
use crate::logs::{LogLine, LogStream};
use crate::port::Port;

/// What a wait needs to know about its container.
pub(crate) struct Target<'a> {
    pub docker: &'a Docker,
    pub id: &'a str,
    /// The container as errors name it.
    pub resource: &'a str,
    pub host: &'a str,
    pub ports: &'a HashMap<Port, u16>,
    /// The container's own address when the host reaches it (local engines).
    pub address: Option<std::net::IpAddr>,
    /// Where the container's current run begins (the previous run's
    /// `State.FinishedAt`): log
    /// conditions count only lines from then on. `None` on a first start.
    pub since: Option<&'a str>,
    /// Podman runs healthchecks only when asked (it has no timer without
    /// systemd): the health wait asks it at the check's interval.
    pub podman: bool,
}

/// How long conditions still get to hold after the container exited: its last
/// log lines may arrive just after the exit event.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// Waits until `condition` holds, the deadline passes, or the container exits.
pub(crate) async fn wait(
    target: &Target<'_>,
    condition: &WaitFor,
    deadline: Instant,
) -> Result<(), NotReadyReason> {
    let nodes = condition.walk();
    let uses_logs = nodes.iter().any(|c| matches!(c, WaitFor::Log(_)));
    let expects_exit = nodes.iter().any(|c| matches!(c, WaitFor::Exit(_)));
    let feed = LogFeed::new();

    let check = check(target, condition, &feed);
    let pump = async {
        if uses_logs {
            feed.pump(target).await;
        }
        future::pending::<()>().await
    };
    let exited = async {
        if expects_exit {
            future::pending::<()>().await;
        }
        // A followed log stream ends when the container stops, but the engine
        // can miss a container that exits while the stream is being attached
        // and keep the stream open: the exit wait runs beside it regardless.
        let after_logs = async {
            if uses_logs {
                feed.ended().await;
                exit_code(target.docker, target.id).await
            } else {
                future::pending().await
            }
        };
        tokio::select! {
            code = after_logs => code,
            code = exit_code(target.docker, target.id) => code,
        }
    };
    let timer = tokio::time::sleep_until(deadline);
    tokio::pin!(check, pump, exited, timer);

    tokio::select! {
        biased;
        result = &mut check => result,
        _ = &mut timer => Err(NotReadyReason::TimedOut),
        code = &mut exited => {
            let code = match code {
                Ok(code) => code,
                Err(why) => return Err(NotReadyReason::ProbeFailed(why)),
            };
            let grace = async {
                tokio::select! {
                    result = &mut check => result,
                    _ = &mut pump => unreachable!("the log pump never completes"),
                }
            };
            match tokio::time::timeout(EXIT_GRACE, grace).await {
                Ok(Ok(())) => Ok(()),
                _ => Err(NotReadyReason::Exited { code }),
            }
        }
        _ = &mut pump => unreachable!("the log pump never completes"),
    }
}

fn check<'a>(
    target: &'a Target<'a>,
    condition: &'a WaitFor,
    feed: &'a LogFeed,
) -> BoxFuture<'a, Result<(), NotReadyReason>> {
    match condition {
        WaitFor::Log(log) => async move {
            let matcher = log.matcher().map_err(NotReadyReason::ProbeFailed)?;
            feed.wait_for(|line| matcher.matches(line), log.needed()).await;
            Ok(())
        }
        .boxed(),
        WaitFor::Port(port) => port_listens(target, port, feed).boxed(),
        WaitFor::Http(http) => http_answers(target, http, feed).boxed(),
        WaitFor::Protocol(wait) => protocol_answers(target, wait, feed).boxed(),
        WaitFor::Healthy => healthy(target).boxed(),
        WaitFor::Exit(expected) => exits(target, *expected).boxed(),
        WaitFor::Command(cmd) => command_succeeds(target, cmd, feed).boxed(),
        WaitFor::Duration(pause) => async move {
            tokio::time::sleep(*pause).await;
            Ok(())
        }
        .boxed(),
        WaitFor::All(items) => async move {
            future::try_join_all(items.iter().map(|c| check(target, c, feed))).await?;
            Ok(())
        }
        .boxed(),
        WaitFor::Any(items) if items.is_empty() => future::ok(()).boxed(),
        WaitFor::Any(items) => async move {
            future::select_ok(items.iter().map(|c| check(target, c, feed)))
                .await
                .map(|_| ())
        }
        .boxed(),
    }
}

async fn port_listens(target: &Target<'_>, port: &Port, feed: &LogFeed) -> Result<(), NotReadyReason> {
    let host_port = host_port(target, port).await?;
    let mut direct = target
        .address
        .map(|ip| std::net::SocketAddr::new(ip, port.number()));
    let mut pause = Backoff::new(1, 2);
    loop {
        match direct {
            Some(addr) => match super::port::direct(addr).await {
                Direct::Listening => return still_running(target).await,
                Direct::NotYet => {}
                Direct::Unreachable => {
                    tracing::debug!(container = target.resource, %addr, "container address unreachable; probing through the published port");
                    direct = None;
                    continue;
                }
            },
            None if super::port::probe(target.host, host_port).await => return still_running(target).await,
            None => {}
        }
        pause.sleep_or_log(feed).await;
    }
}

/// A connect that succeeded proves a listener only while the container runs:
/// once it exits the engine hands its address to the next container started
/// (which may well listen on the same port), so the answer is checked against
/// the container's state before it counts.
async fn still_running(target: &Target<'_>) -> Result<(), NotReadyReason> {
    let inspected = crate::podman::inspect_container(target.docker, target.id)
        .await
        .map_err(|e| NotReadyReason::ProbeFailed(format!("inspect failed: {e}")))?;
    match inspected.state.and_then(|s| s.running) {
        Some(false) => Err(exit_reason(target).await),
        _ => Ok(()),
    }
}

/// Why a container that is no longer running is not ready: its exit code,
/// from the engine's wait that returns at once.
async fn exit_reason(target: &Target<'_>) -> NotReadyReason {
    match exit_code(target.docker, target.id).await {
        Ok(code) => NotReadyReason::Exited { code },
        Err(why) => NotReadyReason::ProbeFailed(why),
    }
}

async fn http_answers(target: &Target<'_>, http: &HttpWait, feed: &LogFeed) -> Result<(), NotReadyReason> {
    let host_port = host_port(target, &http.port).await?;
    // Until the service listens, a connect is cheaper than a request.
    port_listens(target, &http.port, feed).await?;
    let mut pause = Backoff::new(2, 100);
    loop {
        match http.attempt(target.host, host_port).await {
            Ok(()) => return Ok(()),
            Err(why) => tracing::trace!(container = target.resource, %why, "http wait: not yet"),
        }
        pause.sleep_or_log(feed).await;
    }
}

async fn protocol_answers(
    target: &Target<'_>,
    wait: &ProtocolWait,
    feed: &LogFeed,
) -> Result<(), NotReadyReason> {
    let host_port = host_port(target, &wait.port).await?;
    // Exactly when the socket listens first; then the server itself must speak.
    port_listens(target, &wait.port, feed).await?;
    let mut pause = Backoff::new(1, 20);
    loop {
        match wait.ask(target.host, host_port).await {
            Answer::Ready => return Ok(()),
            Answer::NotYet(why) => tracing::trace!(container = target.resource, %why, "{wait}: not yet"),
        }
        pause.sleep_or_log(feed).await;
    }
}

async fn exits(target: &Target<'_>, expected: Option<i64>) -> Result<(), NotReadyReason> {
    let code = exit_code(target.docker, target.id)
        .await
        .map_err(NotReadyReason::ProbeFailed)?;
    match expected {
        Some(want) if want != code => Err(NotReadyReason::WrongExitCode {
            expected: want,
            actual: code,
        }),
        _ => Ok(()),
    }
}

async fn command_succeeds(target: &Target<'_>, cmd: &[String], feed: &LogFeed) -> Result<(), NotReadyReason> {
    let mut pause = Backoff::new(50, 500);
    loop {
        match exec::run(target.docker, target.id, target.resource, Exec::new(cmd.to_vec())).await {
            Ok(out) if out.success() => return Ok(()),
            // The engine could not run the program at all: retrying will not help.
            Ok(out) if out.exit_code == 126 || out.exit_code == 127 => {
                return Err(NotReadyReason::ProbeFailed(format!(
                    "command {cmd:?} cannot run in the container (exit {}): {}",
                    out.exit_code,
                    out.stderr_str().trim()
                )))
            }
            Ok(_) | Err(_) => pause.sleep_or_log(feed).await,
        }
    }
}

/// The host port of `port`. A container that exited before its ports were
/// read has none: that is its exit, not a port the builder forgot.
async fn host_port(target: &Target<'_>, port: &Port) -> Result<u16, NotReadyReason> {
    if let Some(host_port) = target.ports.get(port) {
        return Ok(*host_port);
    }
    let running = crate::podman::inspect_container(target.docker, target.id)
        .await
        .ok()
        .and_then(|i| i.state?.running);
    if running == Some(false) {
        return Err(exit_reason(target).await);
    }
    Err(NotReadyReason::ProbeFailed(format!(
        "port {port} is not published; add .expose({})",
        port.number()
    )))
}

/// The container's exit code once it is no longer running.
pub(crate) async fn exit_code(docker: &Docker, id: &str) -> Result<i64, String> {
    let options = WaitContainerOptions {
        condition: "not-running".into(),
    };
    match docker.wait_container(id, Some(options)).next().await {
        Some(Ok(answer)) => Ok(answer.status_code),
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(err)) => Err(format!("waiting for the container to exit failed: {err}")),
        None => Err("the engine ended the wait without an exit code".into()),
    }
}

async fn healthy(target: &Target<'_>) -> Result<(), NotReadyReason> {
    let filters = HashMap::from([
        ("container".to_string(), vec![target.id.to_string()]),
        ("event".to_string(), vec!["health_status".to_string()]),
    ]);
    let mut events = target
        .docker
        .events(Some(EventsOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .boxed();
    let mut next_run = Instant::now();
    loop {
        let inspected = crate::podman::inspect_container(target.docker, target.id)
            .await
            .map_err(|e| NotReadyReason::ProbeFailed(format!("inspect failed: {e}")))?;
        let status = inspected
            .state
            .as_ref()
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status);
        let has_check = inspected
            .config
            .as_ref()
            .and_then(|c| c.healthcheck.as_ref())
            .and_then(|h| h.test.as_ref())
            .is_some_and(|test| test.first().is_some_and(|t| t != "NONE"));
        match status {
            None | Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) if !has_check => {
                return Err(NotReadyReason::ProbeFailed(
                    "the container has no healthcheck; define one with .healthcheck(...) or wait for something else".into(),
                ))
            }
            Some(HealthStatusEnum::HEALTHY) => return Ok(()),
            Some(HealthStatusEnum::UNHEALTHY) => return Err(NotReadyReason::Unhealthy),
            _ => {}
        }
        if target.podman && has_check && Instant::now() >= next_run {
            // A run answers with its own result; the container's status
            // (which counts retries and the start period) is read after it.
            next_run = Instant::now() + crate::podman::health_interval(&inspected);
            crate::podman::run_healthcheck(target.docker, target.id)
                .await
                .map_err(NotReadyReason::ProbeFailed)?;
            continue;
        }
        // An event says the status changed; the periodic look covers an event
        // missed while the subscription was being set up. On Podman the look
        // is also when the next check is run.
        let pause = if target.podman {
            next_run
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1))
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            event = events.next() => {
                if event.is_none() {
                    events = futures_util::stream::pending().boxed();
                }
            }
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Lines of the one followed log stream, shared by all log conditions.
struct LogFeed {
    lines: Mutex<Vec<LogLine>>,
    seen: watch::Sender<usize>,
    done: watch::Sender<bool>,
}

impl LogFeed {
    fn new() -> Self {
        LogFeed {
            lines: Mutex::new(Vec::new()),
            seen: watch::Sender::new(0),
            done: watch::Sender::new(false),
        }
    }

    /// Resolves once the followed stream has ended.
    async fn ended(&self) {
        let mut done = self.done.subscribe();
        // The sender lives in `self`, so this only fails if it is gone, which
        // cannot happen while `self` is borrowed.
        let _ = done.wait_for(|ended| *ended).await;
    }

    async fn pump(&self, target: &Target<'_>) {
        let resource = target.resource.to_string();
        let mut stream = match target.since {
            Some(started) => LogStream::since_start(target.docker, target.id, resource, started),
            None => LogStream::new(target.docker, target.id, resource, true, "all"),
        };
        while let Some(Ok(line)) = stream.next_line().await {
            let count = {
                let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
                lines.push(line);
                lines.len()
            };
            self.seen.send_replace(count);
        }
        self.done.send_replace(true);
    }

    async fn wait_for(&self, matches: impl Fn(&LogLine) -> bool, needed: usize) {
        let mut changes = self.seen.subscribe();
        let (mut cursor, mut found) = (0, 0);
        loop {
            {
                let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
                found += lines[cursor..].iter().filter(|l| matches(l)).count();
                cursor = lines.len();
            }
            if found >= needed {
                return;
            }
            if changes.changed().await.is_err() {
                future::pending::<()>().await;
            }
        }
    }
}

/// Growing pauses between probes: quick at first, when a service is most likely
/// to come up, then easing off.
struct Backoff {
    next_ms: u64,
    max_ms: u64,
}

impl Backoff {
    fn new(first_ms: u64, max_ms: u64) -> Self {
        Backoff {
            next_ms: first_ms,
            max_ms,
        }
    }

    /// Sleeps out the pause, or less when the container logs a new line: a
    /// service usually says it is ready just before it is, and a probe that
    /// waits out a long pause then adds that pause to the start.
    async fn sleep_or_log(&mut self, feed: &LogFeed) {
        let mut changes = feed.seen.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(self.next_ms)) => {}
            Ok(()) = changes.changed() => {
                // Let the service act on what it just logged.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        self.next_ms = (self.next_ms * 3 / 2).min(self.max_ms);
    }
}
