//! The details of a container that did not become ready.

use std::fmt;
use std::time::Duration;

/// The details of a failed readiness wait.
///
/// ```
/// use dockhand::{NotReady, NotReadyReason};
/// let info = NotReady {
///     container: "dockhand-1 (abc)".into(),
///     image: "busybox".into(),
///     condition: "port 80/tcp to accept connections".into(),
///     elapsed: std::time::Duration::from_secs(5),
///     reason: NotReadyReason::Exited { code: 1 },
///     state: "exited with code 1".into(),
///     logs: vec!["stderr: bind: address in use".into()],
/// };
/// assert!(info.to_string().contains("exited with code 1"));
/// ```
#[derive(Debug, Clone)]
pub struct NotReady {
    /// Container name and short id.
    pub container: String,
    /// Image it runs.
    pub image: String,
    /// The wait condition that did not hold.
    pub condition: String,
    /// How long dockhand waited.
    pub elapsed: Duration,
    /// Why waiting stopped.
    pub reason: NotReadyReason,
    /// The container's state at that moment (`running`, `exited with code 1`, `OOM-killed`).
    pub state: String,
    /// Its last log lines (both streams, in order), captured before removal.
    pub logs: Vec<String>,
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "container {} (image {}) not ready: waiting for {}: {} after {:.1}s; state: {}",
            self.container,
            self.image,
            self.condition,
            self.reason,
            self.elapsed.as_secs_f64(),
            self.state
        )?;
        if self.logs.is_empty() {
            return f.write_str("\n--- no log output ---");
        }
        write!(f, "\n--- last {} log lines ---", self.logs.len())?;
        for line in &self.logs {
            write!(f, "\n{line}")?;
        }
        Ok(())
    }
}

/// Why a container was not ready.
///
/// ```
/// use dockhand::NotReadyReason;
/// assert_eq!(NotReadyReason::Unhealthy.to_string(), "the container turned unhealthy");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotReadyReason {
    /// The startup deadline passed.
    TimedOut,
    /// The container exited while dockhand waited.
    Exited {
        /// Its exit code.
        code: i64,
    },
    /// An exit wait saw a different exit code than expected.
    WrongExitCode {
        /// The code expected.
        expected: i64,
        /// The code seen.
        actual: i64,
    },
    /// The engine reported the healthcheck as failing.
    Unhealthy,
    /// A probe could not run at all (bad HTTP response, exec refused, ...).
    ProbeFailed(String),
}

impl fmt::Display for NotReadyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut => f.write_str("timed out"),
            Self::Exited { code } => write!(f, "the container exited with code {code}"),
            Self::WrongExitCode { expected, actual } => {
                write!(f, "the container exited with code {actual}, expected {expected}")
            }
            Self::Unhealthy => f.write_str("the container turned unhealthy"),
            Self::ProbeFailed(why) => write!(f, "the probe failed: {why}"),
        }
    }
}
