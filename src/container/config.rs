//! Small value types for the container builder: healthcheck and restart policy.

use std::time::Duration;

use bollard::models::{HealthConfig, RestartPolicy as EngineRestart, RestartPolicyNameEnum};

/// A healthcheck the engine runs in the container.
///
/// ```
/// use dockhand::Healthcheck;
/// use std::time::Duration;
/// let hc = Healthcheck::cmd(["pg_isready", "-q"])
///     .interval(Duration::from_millis(200))
///     .timeout(Duration::from_secs(2))
///     .retries(30)
///     .start_period(Duration::from_secs(1));
/// let shell = Healthcheck::shell("wget -q -O - http://localhost:8080/ || exit 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    test: Vec<String>,
    interval: Option<Duration>,
    timeout: Option<Duration>,
    retries: Option<u32>,
    start_period: Option<Duration>,
}

impl Healthcheck {
    /// Runs the program with its arguments directly.
    ///
    /// ```
    /// let hc = dockhand::Healthcheck::cmd(["true"]);
    /// ```
    pub fn cmd<I, S>(cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut test = vec!["CMD".to_string()];
        test.extend(cmd.into_iter().map(Into::into));
        Healthcheck::from_test(test)
    }

    /// Runs the command through the container's `/bin/sh -c`.
    ///
    /// ```
    /// let hc = dockhand::Healthcheck::shell("test -f /tmp/ready");
    /// ```
    pub fn shell(command: impl Into<String>) -> Self {
        Healthcheck::from_test(vec!["CMD-SHELL".into(), command.into()])
    }

    fn from_test(test: Vec<String>) -> Self {
        Healthcheck {
            test,
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
        }
    }

    /// Time between checks (engine default 30 s: set it short for tests).
    ///
    /// ```
    /// let hc = dockhand::Healthcheck::cmd(["true"]).interval(std::time::Duration::from_millis(100));
    /// ```
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = Some(every);
        self
    }

    /// How long one check may run.
    ///
    /// ```
    /// let hc = dockhand::Healthcheck::cmd(["true"]).timeout(std::time::Duration::from_secs(1));
    /// ```
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Consecutive failures before the container is unhealthy.
    ///
    /// ```
    /// let hc = dockhand::Healthcheck::cmd(["true"]).retries(3);
    /// ```
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = Some(n);
        self
    }

    /// Grace period during which failures do not count.
    ///
    /// ```
    /// let hc = dockhand::Healthcheck::cmd(["true"]).start_period(std::time::Duration::from_secs(2));
    /// ```
    pub fn start_period(mut self, grace: Duration) -> Self {
        self.start_period = Some(grace);
        self
    }

    pub(crate) fn to_engine(&self) -> HealthConfig {
        let nanos = |d: Option<Duration>| d.map(|d| d.as_nanos().min(i64::MAX as u128) as i64);
        HealthConfig {
            test: Some(self.test.clone()),
            interval: nanos(self.interval),
            timeout: nanos(self.timeout),
            retries: self.retries.map(i64::from),
            start_period: nanos(self.start_period),
            ..Default::default()
        }
    }

    /// Why the engine would refuse it, if it would.
    pub(crate) fn problem(&self) -> Option<String> {
        let too_short = |d: Option<Duration>| d.is_some_and(|d| d < Duration::from_millis(1));
        if self.test.len() < 2 || self.test[1].trim().is_empty() {
            Some("the healthcheck command is empty".into())
        } else if too_short(self.interval) || too_short(self.timeout) {
            Some("healthcheck interval and timeout must be at least 1ms".into())
        } else {
            None
        }
    }
}

/// What the engine does when the container's process exits.
///
/// ```
/// let p = dockhand::RestartPolicy::OnFailure { max_retries: 3 };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never restart (the default).
    No,
    /// Always restart.
    Always,
    /// Restart unless stopped by hand.
    UnlessStopped,
    /// Restart after a non-zero exit, at most this many times (0: no limit).
    OnFailure {
        /// The limit.
        max_retries: u32,
    },
}

impl RestartPolicy {
    pub(crate) fn to_engine(self) -> EngineRestart {
        let (name, max) = match self {
            RestartPolicy::No => (RestartPolicyNameEnum::NO, None),
            RestartPolicy::Always => (RestartPolicyNameEnum::ALWAYS, None),
            RestartPolicy::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
            RestartPolicy::OnFailure { max_retries } => {
                (RestartPolicyNameEnum::ON_FAILURE, Some(i64::from(max_retries)))
            }
        };
        EngineRestart {
            name: Some(name),
            maximum_retry_count: max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthcheck_in_engine_units() {
        let hc = Healthcheck::shell("exit 0")
            .interval(Duration::from_millis(250))
            .retries(4)
            .to_engine();
        assert_eq!(hc.test.unwrap(), ["CMD-SHELL", "exit 0"]);
        assert_eq!(hc.interval, Some(250_000_000));
        assert_eq!(hc.retries, Some(4));
        assert_eq!(hc.timeout, None);
        assert!(Healthcheck::cmd(Vec::<String>::new()).problem().is_some());
        assert!(Healthcheck::cmd(["true"]).problem().is_none());
    }

    #[test]
    fn restart_policy_names() {
        let p = RestartPolicy::OnFailure { max_retries: 2 }.to_engine();
        assert_eq!(p.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(p.maximum_retry_count, Some(2));
    }
}
