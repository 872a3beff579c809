//! The log condition: a substring or regex, on one stream or either, N times.

use std::fmt;

use regex::Regex;

use crate::logs::{LogLine, LogSource};

/// Waits for a log line; made by [`WaitFor::log`](crate::WaitFor::log) and
/// [`WaitFor::log_regex`](crate::WaitFor::log_regex).
///
/// ```
/// use dockhand::WaitFor;
/// let w = WaitFor::log("database system is ready").on_stderr().times(1);
/// assert_eq!(w.to_string(), "log line containing \"database system is ready\" on stderr");
/// ```
#[derive(Debug, Clone)]
pub struct LogWait {
    pattern: Pattern,
    source: Option<LogSource>,
    times: usize,
}

#[derive(Debug, Clone)]
enum Pattern {
    Substring(String),
    Regex(String),
}

impl LogWait {
    pub(crate) fn substring(text: String) -> Self {
        LogWait {
            pattern: Pattern::Substring(text),
            source: None,
            times: 1,
        }
    }

    pub(crate) fn regex(pattern: String) -> Self {
        LogWait {
            pattern: Pattern::Regex(pattern),
            source: None,
            times: 1,
        }
    }

    /// Only lines on standard output count.
    ///
    /// ```
    /// let w = dockhand::WaitFor::log("ready").on_stdout();
    /// ```
    pub fn on_stdout(mut self) -> Self {
        self.source = Some(LogSource::Stdout);
        self
    }

    /// Only lines on standard error count.
    ///
    /// ```
    /// let w = dockhand::WaitFor::log("ready").on_stderr();
    /// ```
    pub fn on_stderr(mut self) -> Self {
        self.source = Some(LogSource::Stderr);
        self
    }

    /// The condition holds once `n` matching lines were seen (at least 1).
    ///
    /// ```
    /// let w = dockhand::WaitFor::log("ready").times(2);
    /// ```
    pub fn times(mut self, n: usize) -> Self {
        self.times = n.max(1);
        self
    }

    pub(crate) fn needed(&self) -> usize {
        self.times
    }

    /// The compiled matcher, or why the pattern is invalid.
    pub(crate) fn matcher(&self) -> Result<Matcher, String> {
        let test = match &self.pattern {
            Pattern::Substring(s) if s.is_empty() => return Err("the log text to wait for is empty".into()),
            Pattern::Substring(s) => Test::Substring(s.clone()),
            Pattern::Regex(r) => {
                Test::Regex(Regex::new(r).map_err(|e| format!("invalid log regex {r:?}: {e}"))?)
            }
        };
        Ok(Matcher {
            test,
            source: self.source,
        })
    }
}

/// A compiled log condition.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    test: Test,
    source: Option<LogSource>,
}

#[derive(Debug, Clone)]
enum Test {
    Substring(String),
    Regex(Regex),
}

impl Matcher {
    pub(crate) fn matches(&self, line: &LogLine) -> bool {
        if self.source.is_some_and(|s| s != line.source) {
            return false;
        }
        match &self.test {
            Test::Substring(s) => line.text.contains(s.as_str()),
            Test::Regex(r) => r.is_match(&line.text),
        }
    }
}

impl fmt::Display for LogWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pattern {
            Pattern::Substring(s) => write!(f, "log line containing {s:?}")?,
            Pattern::Regex(r) => write!(f, "log line matching /{r}/")?,
        }
        if self.times > 1 {
            write!(f, " {} times", self.times)?;
        }
        match self.source {
            Some(s) => write!(f, " on {s}"),
            None => f.write_str(" on stdout or stderr"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(source: LogSource, text: &str) -> LogLine {
        LogLine {
            source,
            text: text.into(),
        }
    }

    #[test]
    fn substring_respects_stream() {
        let m = LogWait::substring("ready".into()).on_stderr().matcher().unwrap();
        assert!(m.matches(&line(LogSource::Stderr, "server ready now")));
        assert!(!m.matches(&line(LogSource::Stdout, "server ready now")));
        assert!(!m.matches(&line(LogSource::Stderr, "starting")));
    }

    #[test]
    fn regex_compiles_or_says_why() {
        let m = LogWait::regex(r"port \d+$".into()).matcher().unwrap();
        assert!(m.matches(&line(LogSource::Stdout, "listening on port 80")));
        assert!(!m.matches(&line(LogSource::Stdout, "listening on port x")));
        let err = LogWait::regex("(".into()).matcher().unwrap_err();
        assert!(err.contains("invalid log regex"), "{err}");
        assert!(LogWait::substring(String::new()).matcher().is_err());
    }
}
