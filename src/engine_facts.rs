//! What a local engine said about itself, remembered for the other processes
//! of a test run. The engine's `/version` takes Docker 6–9 ms here (it asks
//! containerd and runc for theirs), and under `cargo nextest run` every test
//! is a process that connects anew; a ping (half a millisecond) still checks
//! that the engine answers.
//!
//! An answer is trusted only while the engine's socket is the one it came
//! through (its inode and change time: an engine makes its socket anew each
//! time it starts), for at most [`FRESH_FOR`], and only from a file of this
//! user's own.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How long a remembered answer is trusted: long enough for a test run,
/// short enough that an engine upgraded behind a socket kept open by its
/// service manager is asked again soon.
const FRESH_FOR: Duration = Duration::from_secs(600);

/// The parts of an engine's `/version` answer that dockhand uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    pub version: String,
    pub api_version: String,
    pub kernel_version: String,
    pub podman: bool,
}

impl Facts {
    pub(crate) fn from_version(version: &bollard::models::SystemVersion) -> Facts {
        Facts {
            version: version.version.clone().unwrap_or_default(),
            api_version: version.api_version.clone().unwrap_or_default(),
            kernel_version: version.kernel_version.clone().unwrap_or_default(),
            podman: version
                .components
                .iter()
                .flatten()
                .any(|c| c.name.to_ascii_lowercase().contains("podman")),
        }
    }

    fn to_text(&self, stamp: &str) -> String {
        format!(
            "{stamp}\n{}\n{}\n{}\n{}\n",
            self.version, self.api_version, self.kernel_version, self.podman
        )
    }

    /// The facts in `text` if they were written for `stamp`.
    fn from_text(text: &str, stamp: &str) -> Option<Facts> {
        let mut lines = text.lines();
        if lines.next()? != stamp {
            return None;
        }
        let (version, api_version, kernel_version) = (lines.next()?, lines.next()?, lines.next()?);
        let podman = lines.next()?.parse().ok()?;
        Some(Facts {
            version: version.to_string(),
            api_version: api_version.to_string(),
            kernel_version: kernel_version.to_string(),
            podman,
        })
    }
}

/// The socket's identity, for an endpoint on this host's file system.
fn stamp(endpoint: &str) -> Option<String> {
    let path = endpoint.strip_prefix("unix://")?;
    let meta = std::fs::metadata(path).ok()?;
    Some(format!(
        "{} {} {} {}",
        meta.dev(),
        meta.ino(),
        meta.ctime(),
        meta.ctime_nsec()
    ))
}

fn path(endpoint: &str) -> PathBuf {
    let tag = crate::user_dir::endpoint_tag(endpoint);
    crate::user_dir::dir().join(format!("engine-{tag}.facts"))
}

/// What the engine at `endpoint` said lately, through the socket it listens
/// on now.
pub(crate) fn remembered(endpoint: &str) -> Option<Facts> {
    let stamp = stamp(endpoint)?;
    let path = path(endpoint);
    let meta = std::fs::metadata(&path).ok()?;
    let age = SystemTime::now().duration_since(meta.modified().ok()?).ok()?;
    if meta.uid() != crate::user_dir::uid() || age > FRESH_FOR {
        return None;
    }
    Facts::from_text(&std::fs::read_to_string(&path).ok()?, &stamp)
}

/// Remembers what the engine said, for the run's next processes; a failure
/// only costs them the question.
pub(crate) fn remember(endpoint: &str, facts: &Facts) {
    let Some(stamp) = stamp(endpoint) else { return };
    let path = path(endpoint);
    // Answers too old to be trusted: engines at sockets made for one test (a
    // proxy, a fault) would otherwise leave one each.
    if let Some(dir) = path.parent() {
        crate::user_dir::forget_older(dir, "engine-", ".facts", FRESH_FOR);
    }
    let _ = crate::user_dir::write_whole(&path, facts.to_text(&stamp).as_bytes(), 0o644);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            version: "20.10.24".into(),
            api_version: "1.41".into(),
            kernel_version: "6.1.0".into(),
            podman: false,
        }
    }

    #[test]
    fn facts_are_read_back_only_for_the_socket_they_came_through() {
        let text = facts().to_text("1 2 3 4");
        assert_eq!(Facts::from_text(&text, "1 2 3 4"), Some(facts()));
        assert_eq!(Facts::from_text(&text, "1 2 3 5"), None);
        assert_eq!(Facts::from_text("1 2 3 4\n20.10\n", "1 2 3 4"), None);
    }

    #[test]
    fn a_tcp_endpoint_is_never_remembered() {
        assert_eq!(stamp("tcp://127.0.0.1:2375"), None);
        assert_eq!(remembered("tcp://127.0.0.1:2375"), None);
    }

    #[test]
    fn an_engine_that_made_its_socket_anew_is_asked_again() {
        let dir = std::env::temp_dir().join(format!("dockhand-facts-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("engine.sock");
        let endpoint = format!("unix://{}", socket.display());
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        remember(&endpoint, &facts());
        assert_eq!(remembered(&endpoint), Some(facts()));
        drop(listener);
        std::fs::remove_file(&socket).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(remembered(&endpoint), None);
        let _ = std::fs::remove_file(path(&endpoint));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
