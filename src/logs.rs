//! Container logs: a snapshot, and a follow stream of whole lines tagged with the
//! stream they came from.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::{LogsOptions, WaitContainerOptions};
use bollard::Docker;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};

use crate::error::{Error, Result};

/// Which output stream a log line came from.
///
/// ```
/// assert_eq!(dockhand::LogSource::Stderr.to_string(), "stderr");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogSource {
    /// Standard output (and a TTY's output).
    Stdout,
    /// Standard error.
    Stderr,
}

impl fmt::Display for LogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogSource::Stdout => "stdout",
            LogSource::Stderr => "stderr",
        })
    }
}

/// One line of container output, without its line ending.
///
/// ```
/// use dockhand::{LogLine, LogSource};
/// let line = LogLine { source: LogSource::Stdout, text: "ready".into() };
/// assert_eq!(line.to_string(), "stdout: ready");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The stream it was written to.
    pub source: LogSource,
    /// The text, lossily decoded as UTF-8, without the trailing newline.
    pub text: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.text)
    }
}

/// A snapshot of a container's logs, in the order the engine recorded them.
///
/// ```
/// use dockhand::{LogLine, LogSource, Logs};
/// let logs = Logs::from_lines(vec![
///     LogLine { source: LogSource::Stdout, text: "a".into() },
///     LogLine { source: LogSource::Stderr, text: "b".into() },
/// ]);
/// assert_eq!(logs.stdout(), "a\n");
/// assert_eq!(logs.stderr(), "b\n");
/// assert_eq!(logs.all(), "a\nb\n");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logs {
    lines: Vec<LogLine>,
}

impl Logs {
    /// Wraps lines into a snapshot.
    ///
    /// ```
    /// assert!(dockhand::Logs::from_lines(vec![]).lines().is_empty());
    /// ```
    pub fn from_lines(lines: Vec<LogLine>) -> Self {
        Logs { lines }
    }

    /// Every line, both streams interleaved in order.
    ///
    /// ```
    /// assert_eq!(dockhand::Logs::default().lines().len(), 0);
    /// ```
    pub fn lines(&self) -> &[LogLine] {
        &self.lines
    }

    /// Standard output as text, one `\n` after each line.
    ///
    /// ```
    /// assert_eq!(dockhand::Logs::default().stdout(), "");
    /// ```
    pub fn stdout(&self) -> String {
        self.join(Some(LogSource::Stdout))
    }

    /// Standard error as text, one `\n` after each line.
    ///
    /// ```
    /// assert_eq!(dockhand::Logs::default().stderr(), "");
    /// ```
    pub fn stderr(&self) -> String {
        self.join(Some(LogSource::Stderr))
    }

    /// Both streams interleaved, as text.
    ///
    /// ```
    /// assert_eq!(dockhand::Logs::default().all(), "");
    /// ```
    pub fn all(&self) -> String {
        self.join(None)
    }

    fn join(&self, only: Option<LogSource>) -> String {
        let mut out = String::new();
        for line in self.lines.iter().filter(|l| only.is_none_or(|s| s == l.source)) {
            out.push_str(&line.text);
            out.push('\n');
        }
        out
    }
}

/// Turns the engine's frames, which may cut a line anywhere, into whole lines,
/// keeping one partial line per stream.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl LineSplitter {
    pub(crate) fn feed(&mut self, frame: LogOutput, out: &mut VecDeque<LogLine>) {
        let (source, bytes) = match frame {
            LogOutput::StdOut { message } | LogOutput::Console { message } => (LogSource::Stdout, message),
            LogOutput::StdErr { message } => (LogSource::Stderr, message),
            LogOutput::StdIn { .. } => return,
        };
        let buf = match source {
            LogSource::Stdout => &mut self.stdout,
            LogSource::Stderr => &mut self.stderr,
        };
        buf.extend_from_slice(&bytes);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let rest = buf.split_off(pos + 1);
            let mut line = std::mem::replace(buf, rest);
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            out.push_back(LogLine {
                source,
                text: String::from_utf8_lossy(&line).into_owned(),
            });
        }
    }

    /// The partial lines left when the stream ends.
    pub(crate) fn finish(&mut self, out: &mut VecDeque<LogLine>) {
        for (source, buf) in [
            (LogSource::Stdout, &mut self.stdout),
            (LogSource::Stderr, &mut self.stderr),
        ] {
            if !buf.is_empty() {
                out.push_back(LogLine {
                    source,
                    text: String::from_utf8_lossy(buf).into_owned(),
                });
                buf.clear();
            }
        }
    }
}

/// A stream of a container's log lines, following new output until the container
/// stops. Implements [`futures_util::Stream`]; [`LogStream::next_line`] reads it
/// without importing a stream trait.
///
/// ```no_run
/// # async fn demo(web: &dockhand::Container) -> dockhand::Result<()> {
/// let mut lines = web.log_stream();
/// while let Some(line) = lines.next_line().await {
///     if line?.text.contains("listening") { break; }
/// }
/// # Ok(()) }
/// ```
pub struct LogStream {
    frames: Option<BoxStream<'static, std::result::Result<LogOutput, bollard::errors::Error>>>,
    splitter: LineSplitter,
    ready: VecDeque<LogLine>,
    resource: String,
    /// With timestamps asked for: lines from before this instant (a sortable
    /// timestamp, see [`sortable`]) are dropped, and every line's stamp is cut.
    since: Option<String>,
}

impl fmt::Debug for LogStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStream")
            .field("resource", &self.resource)
            .finish()
    }
}

impl LogStream {
    pub(crate) fn new(docker: &Docker, id: &str, resource: String, follow: bool, tail: &str) -> Self {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.to_string(),
            ..Default::default()
        };
        LogStream::from_options(docker, id, resource, options, None)
    }

    fn from_options(
        docker: &Docker,
        id: &str,
        resource: String,
        options: LogsOptions,
        since: Option<String>,
    ) -> Self {
        let follow = options.follow;
        let frames = docker.logs(id, Some(options));
        let frames = if follow {
            frames
                .take_until(stopped_for_good(docker.clone(), id.to_string()))
                .boxed()
        } else {
            frames.boxed()
        };
        LogStream {
            frames: Some(frames),
            splitter: LineSplitter::default(),
            ready: VecDeque::new(),
            resource,
            since,
        }
    }

    /// Follows only what the container logged from `started_at` on (the end
    /// of its previous run): a wait after a restart must not match the
    /// previous run's lines. The engine filters by whole seconds; the rest is filtered
    /// here by each line's own timestamp.
    pub(crate) fn since_start(docker: &Docker, id: &str, resource: String, started_at: &str) -> Self {
        let since = sortable(started_at);
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            timestamps: true,
            since: unix_seconds(&since).unwrap_or(0),
            tail: "all".to_string(),
            ..Default::default()
        };
        LogStream::from_options(docker, id, resource, options, Some(since))
    }

    /// The logs of any container by id or name, from its first line, following new
    /// output when `follow` is set (for containers without a guard, e.g. from the CLI).
    ///
    /// ```no_run
    /// # async fn demo(engine: &dockhand::Engine) {
    /// let mut logs = dockhand::LogStream::attach(engine, "my-container", false);
    /// while let Some(Ok(line)) = logs.next_line().await { println!("{line}"); }
    /// # }
    /// ```
    pub fn attach(engine: &crate::Engine, container: &str, follow: bool) -> Self {
        LogStream::new(
            engine.docker(),
            container,
            format!("container {container}"),
            follow,
            "all",
        )
    }

    /// The next line, or `None` when the container stopped and all was read.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) {
    /// let first = c.log_stream().next_line().await;
    /// # }
    /// ```
    pub async fn next_line(&mut self) -> Option<Result<LogLine>> {
        self.next().await
    }

    /// Reads to the end (for a snapshot).
    pub(crate) async fn collect_all(mut self) -> Result<Vec<LogLine>> {
        let mut lines = Vec::new();
        while let Some(line) = self.next().await {
            lines.push(line?);
        }
        Ok(lines)
    }
}

impl Stream for LogStream {
    type Item = Result<LogLine>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(mut line) = this.ready.pop_front() {
                if let Some(since) = &this.since {
                    let (stamp, text) = line.text.split_once(' ').unwrap_or((line.text.as_str(), ""));
                    if sortable(stamp) < *since {
                        continue;
                    }
                    line.text = text.to_string();
                }
                return Poll::Ready(Some(Ok(line)));
            }
            let Some(frames) = this.frames.as_mut() else {
                return Poll::Ready(None);
            };
            match frames.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => this.splitter.feed(frame, &mut this.ready),
                Poll::Ready(Some(Err(err))) => {
                    this.frames = None;
                    return Poll::Ready(Some(Err(Error::engine(
                        "read logs of",
                        this.resource.clone(),
                        err,
                    ))));
                }
                Poll::Ready(None) => {
                    this.frames = None;
                    this.splitter.finish(&mut this.ready);
                }
            }
        }
    }
}

/// How long a followed stream may go on after its container stopped: its last
/// lines can arrive just after the exit.
const FOLLOW_GRACE: Duration = Duration::from_secs(2);

/// Resolves a while after the container stopped. The engine ends a followed
/// stream when the container stops, except when it exits while the stream is
/// being attached (moby#31323, seen here under load): then the stream stays
/// open forever, and this ends it.
async fn stopped_for_good(docker: Docker, id: String) {
    let options = WaitContainerOptions {
        condition: "not-running".into(),
    };
    // An error (the container is gone) also means no more lines will come.
    let _ = docker.wait_container(&id, Some(options)).next().await;
    tokio::time::sleep(FOLLOW_GRACE).await;
}

/// An RFC 3339 UTC timestamp (`2026-11-29T20:10:36.1Z`) with its fraction
/// padded to nanoseconds, so that two of them compare as strings the way they
/// compare as instants (the engine trims trailing zeros from some, not others).
fn sortable(stamp: &str) -> String {
    let stamp = stamp.trim_end_matches('Z');
    let (whole, fraction) = stamp.split_once('.').unwrap_or((stamp, ""));
    format!("{whole}.{fraction:0<9}")
}

/// Seconds since the epoch of a sortable UTC timestamp (proleptic Gregorian).
fn unix_seconds(sortable: &str) -> Option<i32> {
    let number = |range: std::ops::Range<usize>| sortable.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hh, mm, ss) = (number(11..13)?, number(14..16)?, number(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    i32::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn out(s: &str) -> LogOutput {
        LogOutput::StdOut {
            message: Bytes::copy_from_slice(s.as_bytes()),
        }
    }
    fn err(s: &str) -> LogOutput {
        LogOutput::StdErr {
            message: Bytes::copy_from_slice(s.as_bytes()),
        }
    }

    #[test]
    fn lines_split_across_frames_are_joined_per_stream() {
        let mut s = LineSplitter::default();
        let mut q = VecDeque::new();
        s.feed(out("rea"), &mut q);
        s.feed(err("warn"), &mut q);
        s.feed(out("dy\nnext\r\npart"), &mut q);
        s.feed(err("ing\n"), &mut q);
        let texts: Vec<String> = q.iter().map(|l| l.to_string()).collect();
        assert_eq!(texts, ["stdout: ready", "stdout: next", "stderr: warning"]);
        q.clear();
        s.finish(&mut q);
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].text, "part");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut s = LineSplitter::default();
        let mut q = VecDeque::new();
        s.feed(
            LogOutput::StdOut {
                message: Bytes::from_static(b"a\xffb\n"),
            },
            &mut q,
        );
        assert_eq!(q[0].text, "a\u{fffd}b");
    }

    #[test]
    fn timestamps_compare_as_instants_and_convert_to_seconds() {
        assert!(sortable("2026-11-29T20:10:36.1Z") > sortable("2026-11-29T20:10:36.099999999Z"));
        assert!(sortable("2026-11-29T20:10:36Z") < sortable("2026-11-29T20:10:36.000000001Z"));
        assert_eq!(unix_seconds(&sortable("1970-01-01T00:00:00Z")), Some(0));
        assert_eq!(
            unix_seconds(&sortable("2026-11-29T20:10:36.5Z")),
            Some(1_795_983_036)
        );
        assert_eq!(unix_seconds("garbage"), None);
    }
}
