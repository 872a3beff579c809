//! Readiness conditions: what must hold before a started container is handed to
//! the test. All conditions of one start share one deadline and one log stream.

mod http;
mod log;
mod port;
mod protocol;
pub(crate) mod run;

use std::fmt;
use std::time::Duration;

pub use http::HttpWait;
pub use log::LogWait;
pub use protocol::ProtocolWait;

use crate::port::Port;

/// A readiness condition for [`ContainerBuilder::wait_for`](crate::ContainerBuilder::wait_for).
///
/// ```
/// use dockhand::WaitFor;
/// use std::time::Duration;
/// let ready = WaitFor::all([
///     WaitFor::log("ready").on_stderr().times(2).into(),
///     WaitFor::port(8080),
///     WaitFor::http(8080).path("/health").status(200).into(),
/// ]);
/// assert!(ready.to_string().contains("port 8080/tcp"));
/// let either = WaitFor::any([WaitFor::healthy(), WaitFor::duration(Duration::from_secs(2))]);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WaitFor {
    /// A log line matching a substring or a regex.
    Log(LogWait),
    /// The service inside really listens on this port (TCP), reached through its
    /// published host port.
    Port(Port),
    /// An HTTP request to a published port is answered as expected.
    Http(HttpWait),
    /// A server answers its own protocol on a published port.
    Protocol(ProtocolWait),
    /// The engine reports the container's healthcheck as healthy.
    Healthy,
    /// The container exits, with this code when one is given.
    Exit(Option<i64>),
    /// A command run in the container exits with 0.
    Command(Vec<String>),
    /// A fixed time passes.
    Duration(Duration),
    /// Every condition holds.
    All(Vec<WaitFor>),
    /// One of the conditions holds.
    Any(Vec<WaitFor>),
}

impl WaitFor {
    /// A log line containing `text`, on either stream, once. Refine it with
    /// [`LogWait`]'s methods.
    ///
    /// ```
    /// let w = dockhand::WaitFor::log("listening on").on_stdout();
    /// ```
    pub fn log(text: impl Into<String>) -> LogWait {
        LogWait::substring(text.into())
    }

    /// A log line matching a regular expression (checked when the container starts).
    ///
    /// ```
    /// let w = dockhand::WaitFor::log_regex(r"listening on port \d+");
    /// ```
    pub fn log_regex(pattern: impl Into<String>) -> LogWait {
        LogWait::regex(pattern.into())
    }

    /// The service listens on container port `port`, which must be exposed.
    ///
    /// Connecting to the published port is not enough on Docker: its port proxy
    /// accepts the connection before the service listens. dockhand checks that the
    /// connection is carried through to the service.
    ///
    /// ```
    /// let w = dockhand::WaitFor::port(5432);
    /// ```
    pub fn port(port: impl Into<Port>) -> WaitFor {
        WaitFor::Port(port.into())
    }

    /// An HTTP `GET /` on exposed container port `port` answers with a 2xx status;
    /// refine it with [`HttpWait`]'s methods.
    ///
    /// ```
    /// let w = dockhand::WaitFor::http(8080).path("/ready").status(204);
    /// ```
    pub fn http(port: impl Into<Port>) -> HttpWait {
        HttpWait::new(port.into())
    }

    /// PostgreSQL answers on a published port: its startup message gets an
    /// authentication request, not "the database system is starting up" (what
    /// `pg_isready` checks). Exact: the official image's init server listens on
    /// no TCP port, so only the real server answers.
    ///
    /// ```
    /// let w = dockhand::WaitFor::postgres(5432).user("app");
    /// ```
    pub fn postgres(port: impl Into<Port>) -> ProtocolWait {
        ProtocolWait::postgres(port.into())
    }

    /// Redis answers `PING` on a published port (`+PONG`, or `-NOAUTH` from a
    /// server with a password), and is not loading its dataset.
    ///
    /// ```
    /// let w = dockhand::WaitFor::redis(6379);
    /// ```
    pub fn redis(port: impl Into<Port>) -> WaitFor {
        WaitFor::Protocol(ProtocolWait::redis(port.into()))
    }

    /// A MySQL or MariaDB server sends its handshake on a published port.
    ///
    /// ```
    /// let w = dockhand::WaitFor::mysql(3306);
    /// ```
    pub fn mysql(port: impl Into<Port>) -> WaitFor {
        WaitFor::Protocol(ProtocolWait::mysql(port.into()))
    }

    /// The container's healthcheck reports healthy; `unhealthy` fails at once.
    ///
    /// ```
    /// let w = dockhand::WaitFor::healthy();
    /// ```
    pub fn healthy() -> WaitFor {
        WaitFor::Healthy
    }

    /// The container exits, with any code.
    ///
    /// ```
    /// let w = dockhand::WaitFor::exit();
    /// ```
    pub fn exit() -> WaitFor {
        WaitFor::Exit(None)
    }

    /// The container exits with `code`; another code fails the wait.
    ///
    /// ```
    /// let w = dockhand::WaitFor::exit_code(0);
    /// ```
    pub fn exit_code(code: i64) -> WaitFor {
        WaitFor::Exit(Some(code))
    }

    /// `cmd` run in the container succeeds (retried until it does).
    ///
    /// ```
    /// let w = dockhand::WaitFor::command(["pg_isready", "-q"]);
    /// ```
    pub fn command<I, S>(cmd: I) -> WaitFor
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        WaitFor::Command(cmd.into_iter().map(Into::into).collect())
    }

    /// A fixed pause. Prefer a condition that says the service is ready.
    ///
    /// ```
    /// let w = dockhand::WaitFor::duration(std::time::Duration::from_millis(200));
    /// ```
    pub fn duration(pause: Duration) -> WaitFor {
        WaitFor::Duration(pause)
    }

    /// Every condition holds (they are checked concurrently).
    ///
    /// ```
    /// use dockhand::WaitFor;
    /// let w = WaitFor::all([WaitFor::port(80), WaitFor::log("up").into()]);
    /// ```
    pub fn all<I, W>(conditions: I) -> WaitFor
    where
        I: IntoIterator<Item = W>,
        W: Into<WaitFor>,
    {
        WaitFor::All(conditions.into_iter().map(Into::into).collect())
    }

    /// The first condition to hold wins; fails only when all have failed.
    ///
    /// ```
    /// use dockhand::WaitFor;
    /// let w = WaitFor::any([WaitFor::log("ready").into(), WaitFor::exit()]);
    /// ```
    pub fn any<I, W>(conditions: I) -> WaitFor
    where
        I: IntoIterator<Item = W>,
        W: Into<WaitFor>,
    {
        WaitFor::Any(conditions.into_iter().map(Into::into).collect())
    }

    /// Every condition in this tree, itself included.
    pub(crate) fn walk(&self) -> Vec<&WaitFor> {
        let mut out = vec![self];
        if let WaitFor::All(items) | WaitFor::Any(items) = self {
            for item in items {
                out.extend(item.walk());
            }
        }
        out
    }
}

impl fmt::Display for WaitFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitFor::Log(w) => w.fmt(f),
            WaitFor::Port(p) => write!(f, "port {p} to accept connections"),
            WaitFor::Http(h) => h.fmt(f),
            WaitFor::Protocol(p) => p.fmt(f),
            WaitFor::Healthy => f.write_str("healthcheck to report healthy"),
            WaitFor::Exit(None) => f.write_str("the container to exit"),
            WaitFor::Exit(Some(code)) => write!(f, "the container to exit with code {code}"),
            WaitFor::Command(cmd) => write!(f, "command {cmd:?} to succeed"),
            WaitFor::Duration(d) => write!(f, "{d:?} to pass"),
            WaitFor::All(items) | WaitFor::Any(items) => {
                let joiner = if matches!(self, WaitFor::All(_)) {
                    " and "
                } else {
                    " or "
                };
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(joiner)?;
                    }
                    item.fmt(f)?;
                }
                f.write_str(")")
            }
        }
    }
}

impl From<LogWait> for WaitFor {
    fn from(w: LogWait) -> Self {
        WaitFor::Log(w)
    }
}

impl From<ProtocolWait> for WaitFor {
    fn from(w: ProtocolWait) -> Self {
        WaitFor::Protocol(w)
    }
}

impl From<HttpWait> for WaitFor {
    fn from(w: HttpWait) -> Self {
        WaitFor::Http(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_nested_conditions() {
        let w = WaitFor::all([
            WaitFor::log("ready").times(2).into(),
            WaitFor::any([WaitFor::port(5432), WaitFor::exit_code(0)]),
        ]);
        assert_eq!(
            w.to_string(),
            "(log line containing \"ready\" 2 times on stdout or stderr and (port 5432/tcp to accept connections or the container to exit with code 0))"
        );
        assert_eq!(w.walk().len(), 5);
    }
}
