//! The one error type of the crate.
//!
//! Every variant names the operation and the resource it failed on, so a failing
//! test's output says what to look at without a debugger.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

mod channel;
mod not_ready;

pub use channel::ChannelProblem;
pub use not_ready::{NotReady, NotReadyReason};

/// What dockhand calls return.
///
/// ```
/// fn start() -> dockhand::Result<u16> {
///     Ok(8080)
/// }
/// assert_eq!(start().unwrap(), 8080);
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in dockhand.
///
/// The enum is `#[non_exhaustive]`: match the variants you care about and use the
/// predicates ([`Error::is_not_found`], [`Error::is_timeout`]) for the rest.
///
/// ```
/// use dockhand::Error;
/// let err = Error::InvalidConfig {
///     resource: "container for image ''".into(),
///     reason: "the image name is empty".into(),
/// };
/// assert!(err.to_string().contains("image name is empty"));
/// assert!(!err.is_not_found());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No engine answered on any of the places dockhand looked for one.
    #[error("no container engine is reachable; tried: {}. {hint}", .tried.join("; "))]
    EngineUnavailable {
        /// Each endpoint tried, with why it failed.
        tried: Vec<String>,
        /// What the user can do about it.
        hint: String,
    },

    /// The engine refused or failed a request. Its answer is shown as from
    /// the engine that gave it ("Podman answered 409: ...") when this process
    /// has only one kind of engine; bollard itself calls every engine Docker.
    #[error("{operation} {resource}: {}", engine_answer(.source))]
    Engine {
        /// What dockhand asked the engine to do (`create container`, `exec`, ...).
        operation: &'static str,
        /// The object it was about (`container dockhand-1a2b (busybox)`).
        resource: String,
        /// The engine client's error, with the HTTP status where there is one.
        #[source]
        source: bollard::errors::Error,
    },

    /// The image is neither present locally nor could it be pulled.
    #[error("image {image} not found: it is not present in the engine and pulling it failed ({reason}). Build or load it first, or check the name and the registry")]
    ImageNotFound {
        /// The image reference as given.
        image: String,
        /// Why the pull failed.
        reason: String,
    },

    /// The registry refused the credentials, or wants some and none were given.
    #[error("registry {registry} refused access to {image}: {reason}. Give credentials with RegistryAuth::basic (or `docker login {registry}`) and check the user may {operation} this repository")]
    RegistryAuth {
        /// `pull` or `push`.
        operation: &'static str,
        /// The registry's host (`docker.io` for Docker Hub).
        registry: String,
        /// The image reference as given.
        image: String,
        /// The engine's message.
        reason: String,
    },

    /// The registry could not be reached (refused, unknown host, TLS failure).
    #[error("registry {registry} is unreachable for {operation} of {image}: {reason}. Check that the registry runs and the engine can reach it; a registry that is not on loopback must serve TLS or be listed in the engine's insecure-registries")]
    RegistryUnreachable {
        /// `pull` or `push`.
        operation: &'static str,
        /// The registry's host.
        registry: String,
        /// The image reference as given.
        image: String,
        /// The engine's message.
        reason: String,
    },

    /// A builder was given a value that cannot work; nothing was created.
    #[error("invalid configuration for {resource}: {reason}")]
    InvalidConfig {
        /// What was being configured.
        resource: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A container port was asked for that the container does not publish.
    #[error("container {container} does not publish port {port}; published: [{}]. Add .expose({}) to the builder", .published.join(", "), .port.split('/').next().unwrap_or_default())]
    PortNotExposed {
        /// Container name.
        container: String,
        /// The port asked for, `8080/tcp`.
        port: String,
        /// The ports it does publish.
        published: Vec<String>,
    },

    /// A container did not become ready: its wait timed out, it exited, or it
    /// turned unhealthy. The details (state, last logs) are in [`NotReady`].
    #[error("{0}")]
    NotReady(Box<NotReady>),

    /// An operation did not finish within its time limit.
    #[error("{operation} {resource} did not finish within {after:?}")]
    Timeout {
        /// What was being done.
        operation: &'static str,
        /// On what.
        resource: String,
        /// The limit.
        after: Duration,
    },

    /// An image build failed.
    #[error("building image {image} failed at step {step:?}: {message}\n--- last build output ---\n{}", .output.join("\n"))]
    BuildFailed {
        /// The tag being built.
        image: String,
        /// The Dockerfile step that failed, when the engine said.
        step: Option<String>,
        /// The engine's error message.
        message: String,
        /// The failed step's exit code, read from the message as Docker
        /// ("returned a non-zero code: 3") and Podman ("exit status 3") word it.
        exit_code: Option<i64>,
        /// The last lines of build output.
        output: Vec<String>,
    },

    /// A command run in a container failed: SQL through a client, a flush, an
    /// exec a module relies on.
    #[error("{command} in {container} exited with code {exit_code}: {stderr}")]
    Exec {
        /// The container, `container <name> (<id>)`.
        container: String,
        /// What was run (`psql`, `redis-cli FLUSHDB`), without secrets.
        command: String,
        /// Its exit code.
        exit_code: i64,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },

    /// A registry failed a pull or push in a way none of the other variants
    /// names (a server error, a refused upload).
    #[error("registry {registry} failed the {operation} of {image}: {reason}")]
    Registry {
        /// `pull` or `push`.
        operation: &'static str,
        /// The registry's host.
        registry: String,
        /// The image reference as given.
        image: String,
        /// The engine's message.
        reason: String,
    },

    /// The operation needs a running container and this one is not running
    /// (stats of a stopped container: an error, not a reading of zeros).
    #[error("{operation} {resource}: it is not running ({state}); start it first")]
    NotRunning {
        /// What was being done (`read stats of`).
        operation: &'static str,
        /// The container, `container <name> (<id>)`.
        resource: String,
        /// Its state (`exited with code 0`, `created`).
        state: String,
    },

    /// The object would clash with one that already exists in the engine (a
    /// group whose name a live group uses); nothing was created.
    #[error("{resource} clashes with {existing}: {hint}")]
    Conflict {
        /// What was being created.
        resource: String,
        /// What is in the way, and who owns it.
        existing: String,
        /// What the user can do about it.
        hint: String,
    },

    /// Local I/O failed (reading a file for a build context, a socket for a wait).
    #[error("{operation} {resource}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// On what.
        resource: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A database server refused or failed a request made over its own
    /// protocol (a clone, a checkpoint), or could not be reached.
    #[error("{operation} {resource}: {message}")]
    Database {
        /// What was being done (`clone database`, `checkpoint`).
        operation: &'static str,
        /// On what: the server's container and the database.
        resource: String,
        /// What the server (or the connection) said.
        message: String,
    },

    /// A container's unix-socket channel could not be used: not set up,
    /// not made yet, refused, a reply that is not JSON, no reply in time.
    #[error("channel of {container}{}: {problem}", socket_at(.path))]
    Channel {
        /// The container, `container <name> (<id>)`.
        container: String,
        /// The socket's host path.
        path: std::path::PathBuf,
        /// What went wrong, with what to do about it.
        problem: ChannelProblem,
    },

    /// A migration failed while its template database was built; the
    /// half-built template was dropped.
    #[error("migration {migration} failed on {server}: {message}\n  in statement: {statement}")]
    Migration {
        /// The server's container.
        server: String,
        /// The migration: a file's name, `statement N`, or the function's version.
        migration: String,
        /// The statement the server pointed at (or the migration's start).
        statement: String,
        /// The server's message.
        message: String,
    },
}

/// ` at <path>`, or nothing for a channel that has no path.
fn socket_at(path: &std::path::Path) -> String {
    match path.as_os_str().is_empty() {
        true => String::new(),
        false => format!(" at {}", path.display()),
    }
}

impl Error {
    /// True when the object asked for does not exist (HTTP 404 from the engine,
    /// a missing image).
    ///
    /// ```
    /// let err = dockhand::Error::ImageNotFound { image: "nope:1".into(), reason: "no registry".into() };
    /// assert!(err.is_not_found());
    /// ```
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::ImageNotFound { .. } => true,
            Error::Engine { source, .. } => status_of(source) == Some(404),
            _ => false,
        }
    }

    /// True when a registry refused the credentials (or wanted some).
    ///
    /// ```
    /// let err = dockhand::Error::RegistryAuth {
    ///     operation: "pull",
    ///     registry: "127.0.0.1:5000".into(),
    ///     image: "127.0.0.1:5000/app:1".into(),
    ///     reason: "unauthorized: authentication required".into(),
    /// };
    /// assert!(err.is_auth());
    /// assert!(err.to_string().contains("127.0.0.1:5000"));
    /// ```
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::RegistryAuth { .. })
    }

    /// True when something did not happen in time (a readiness wait, an exec).
    ///
    /// ```
    /// let err = dockhand::Error::Timeout {
    ///     operation: "exec",
    ///     resource: "container x".into(),
    ///     after: std::time::Duration::from_secs(1),
    /// };
    /// assert!(err.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
            || matches!(
                self,
                Error::Engine {
                    source: bollard::errors::Error::RequestTimeoutError,
                    ..
                }
            )
            || matches!(self, Error::NotReady(info) if info.reason == NotReadyReason::TimedOut)
            || matches!(
                self,
                Error::Channel {
                    problem: ChannelProblem::Timeout(_),
                    ..
                }
            )
    }

    /// True when the engine could not be reached at all.
    ///
    /// ```
    /// let err = dockhand::Error::EngineUnavailable { tried: vec![], hint: String::new() };
    /// assert!(err.is_engine_unavailable());
    /// ```
    pub fn is_engine_unavailable(&self) -> bool {
        matches!(self, Error::EngineUnavailable { .. })
    }

    pub(crate) fn engine(
        operation: &'static str,
        resource: impl Into<String>,
        source: bollard::errors::Error,
    ) -> Self {
        Error::Engine {
            operation,
            resource: resource.into(),
            source,
        }
    }

    pub(crate) fn invalid(resource: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            resource: resource.into(),
            reason: reason.into(),
        }
    }
}

/// Which kinds of engine this process connected to: 1 Docker, 2 Podman.
static ENGINES_SEEN: AtomicU8 = AtomicU8::new(0);

/// Notes a connected engine, so that errors can name the one that answered.
pub(crate) fn note_engine(podman: bool) {
    ENGINES_SEEN.fetch_or(if podman { 2 } else { 1 }, Ordering::Relaxed);
}

/// The engine's name when only one kind is connected; never a guess.
fn engine_name(seen: u8) -> &'static str {
    match seen {
        1 => "Docker",
        2 => "Podman",
        _ => "the engine",
    }
}

fn engine_answer(source: &bollard::errors::Error) -> String {
    match source {
        bollard::errors::Error::DockerResponseServerError { status_code, message } => {
            let name = engine_name(ENGINES_SEEN.load(Ordering::Relaxed));
            format!("{name} answered {status_code}: {message}")
        }
        other => other.to_string(),
    }
}

/// The HTTP status of an engine error, when it came from the engine's answer.
pub(crate) fn status_of(err: &bollard::errors::Error) -> Option<u16> {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(code: u16) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code: code,
            message: "No such container: x".into(),
        }
    }

    #[test]
    fn engine_error_names_operation_and_resource() {
        let err = Error::engine("stop container", "container web-1", server_error(404));
        let text = err.to_string();
        assert!(text.starts_with("stop container container web-1:"), "{text}");
        assert!(err.is_not_found());
        assert!(!Error::engine("x", "y", server_error(500)).is_not_found());
    }

    #[test]
    fn the_answering_engine_is_named_only_when_it_is_certain() {
        assert_eq!(engine_name(1), "Docker");
        assert_eq!(engine_name(2), "Podman");
        assert_eq!(engine_name(3), "the engine");
        assert_eq!(engine_name(0), "the engine");
        let text = Error::engine("remove", "image x", server_error(409)).to_string();
        assert!(text.contains("answered 409: No such container: x"), "{text}");
    }

    #[test]
    fn not_ready_shows_state_and_logs() {
        let err = Error::NotReady(Box::new(NotReady {
            container: "dockhand-ab12 (0123456789ab)".into(),
            image: "busybox".into(),
            condition: "log line containing \"ready\"".into(),
            elapsed: Duration::from_millis(1500),
            reason: NotReadyReason::TimedOut,
            state: "running".into(),
            logs: vec!["stdout: booting".into(), "stderr: oops".into()],
        }));
        let text = err.to_string();
        assert!(text.contains("dockhand-ab12"), "{text}");
        assert!(text.contains("image busybox"), "{text}");
        assert!(text.contains("timed out after 1.5s"), "{text}");
        assert!(text.contains("state: running"), "{text}");
        assert!(text.contains("last 2 log lines"), "{text}");
        assert!(text.ends_with("stderr: oops"), "{text}");
        assert!(err.is_timeout());
    }

    #[test]
    fn error_is_send_sync_and_small() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Error>();
        // The large details (NotReady's state and logs) are boxed, so a Result
        // stays within two cache lines; today 104 bytes, the engine variant
        // with bollard's 56-byte error.
        assert!(
            std::mem::size_of::<Error>() <= 128,
            "{}",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn engine_unavailable_lists_every_endpoint() {
        let err = Error::EngineUnavailable {
            tried: vec![
                "unix:///var/run/docker.sock (no such file)".into(),
                "unix:///run/podman/podman.sock (no such file)".into(),
            ],
            hint: "Start the engine or set DOCKER_HOST.".into(),
        };
        let text = err.to_string();
        assert!(text.contains("/var/run/docker.sock (no such file); unix:///run/podman"));
        assert!(err.is_engine_unavailable());
    }
}
