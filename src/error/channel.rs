//! Why a container's channel failed.

use std::fmt;
use std::time::Duration;

/// Why a container's channel failed ([`Error::Channel`](super::Error::Channel)).
///
/// ```
/// use dockhand::ChannelProblem;
/// assert!(ChannelProblem::Missing.to_string().contains("no socket"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelProblem {
    /// The container was started without a channel.
    NotConfigured,
    /// The engine is not on this machine, so its containers cannot share a
    /// directory of it.
    RemoteEngine(String),
    /// Nothing has made the socket (yet).
    Missing,
    /// The socket exists, but nothing listens on it.
    Refused,
    /// The socket belongs to another user and does not let this one in.
    PermissionDenied,
    /// The reply (or the message) is not JSON.
    NotJson(String),
    /// No answer within the limit.
    Timeout(Duration),
    /// The process closed the connection before it replied.
    Closed,
    /// Another I/O error.
    Io(String),
}

impl fmt::Display for ChannelProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConfigured => f.write_str(
                "the container has no channel; start it with ContainerBuilder::channel()",
            ),
            Self::RemoteEngine(endpoint) => write!(
                f,
                "the engine at {endpoint} is not on this machine, so no directory of this machine can hold the \
                 socket; channels need a local engine (reach the process through a published port instead)"
            ),
            Self::Missing => f.write_str(
                "there is no socket yet; the process in the container must listen on the path in $DOCKHAND_CHANNEL \
                 (wait for it with a log line or retry)",
            ),
            Self::Refused => f.write_str(
                "the socket exists but nothing accepts on it: the process that made it has stopped listening or exited",
            ),
            Self::PermissionDenied => f.write_str(
                "permission denied: the process in the container made the socket without write permission for this \
                 user; have it create the socket with mode 0666 (umask 0)",
            ),
            Self::NotJson(detail) => write!(f, "not JSON: {detail}"),
            Self::Timeout(limit) => write!(f, "no reply within {limit:?}"),
            Self::Closed => f.write_str("the process closed the connection before it replied"),
            Self::Io(detail) => f.write_str(detail),
        }
    }
}
