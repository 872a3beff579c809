//! The `dockhand.*` label namespace: what marks an engine object as ours, which
//! process owns it, and since when.
//!
//! The owner is identified by host, pid *and* the process start time, so a sweeper
//! can tell a live owner from a dead one whose pid was reused.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use once_cell::sync::Lazy;
use rand::Rng;

use crate::error::{Error, Result};

/// The reserved prefix; user labels may not start with it.
pub const PREFIX: &str = "dockhand.";
/// Present (`true`) on every object dockhand creates.
pub const MANAGED: &str = "dockhand.managed";
/// Random id of the creating process's session.
pub const SESSION: &str = "dockhand.session";
/// Host name of the creating process.
pub const OWNER_HOST: &str = "dockhand.owner.host";
/// Pid of the creating process.
pub const OWNER_PID: &str = "dockhand.owner.pid";
/// Start time of the creating process (clock ticks since boot on Linux), to tell
/// a reused pid from the real owner.
pub const OWNER_START: &str = "dockhand.owner.start";
/// Unix time in seconds when the object was created.
pub const CREATED: &str = "dockhand.created";
/// `true` on images built to outlive their process (test fixtures); they carry
/// no ownership labels, so nothing sweeps them.
pub const PERSISTENT: &str = "dockhand.persistent";
/// The content hash of a cached build's context and options.
pub const CONTEXT_HASH: &str = "dockhand.context-hash";
/// `true` on objects created while `DOCKHAND_KEEP` was set, `failed` under
/// `DOCKHAND_KEEP=failed`: sweeps leave them (but `--kept`).
pub const KEEP: &str = "dockhand.keep";
/// `on` when a watcher removes the object if its process is killed, `off` when
/// none does (turned off, or the start-up hook did not run).
pub const WATCHER: &str = "dockhand.watcher";

/// `run` or `persistent` on a container reused by configuration
/// ([`Reuse`](crate::Reuse)); its session label names no process, so no
/// process's cleanup removes it.
pub const REUSE: &str = "dockhand.reuse";
/// The configuration hash a reused container is found by.
pub const REUSE_KEY: &str = "dockhand.reuse.key";
/// The lock file on the creating host whose shared locks are its users.
pub const REUSE_LOCK: &str = "dockhand.reuse.lock";

/// The replica group a container belongs to.
pub const GROUP: &str = "dockhand.group";
/// A replica's index in its group (`0`, `1`, ...); a replacement keeps it.
pub const GROUP_REPLICA: &str = "dockhand.group.replica";

/// Who this process is, as stamped on every object it creates.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub session: String,
    pub host: String,
    pub pid: u32,
    pub start: String,
}

static OWNER: Lazy<Owner> = Lazy::new(|| Owner {
    session: random_hex(16),
    host: host_name(),
    pid: std::process::id(),
    start: process_start_time(std::process::id()).unwrap_or_else(|| "unknown".into()),
});

/// The id shared by every object this process creates.
pub(crate) fn session_id() -> &'static str {
    &OWNER.session
}

pub(crate) fn owner() -> &'static Owner {
    &OWNER
}

/// The full set of labels for a new object: the caller's own, then ours.
///
/// Fails when a caller label uses the reserved prefix, so a user cannot make an
/// object look like it belongs to another process.
pub(crate) fn stamp(resource: &str, user: &HashMap<String, String>) -> Result<HashMap<String, String>> {
    if let Some(key) = user.keys().find(|k| k.starts_with(PREFIX)) {
        return Err(Error::invalid(
            resource,
            format!("label {key:?} uses the reserved prefix {PREFIX:?}; choose another key"),
        ));
    }
    let owner = owner();
    let mut labels = user.clone();
    labels.insert(MANAGED.into(), "true".into());
    labels.insert(SESSION.into(), owner.session.clone());
    labels.insert(OWNER_HOST.into(), owner.host.clone());
    labels.insert(OWNER_PID.into(), owner.pid.to_string());
    labels.insert(OWNER_START.into(), owner.start.clone());
    labels.insert(CREATED.into(), unix_now().to_string());
    let watched = if crate::config::watcher_wanted() {
        "on"
    } else {
        "off"
    };
    labels.insert(WATCHER.into(), watched.into());
    if crate::config::keep_all() {
        labels.insert(KEEP.into(), "true".into());
    } else if crate::config::keep_failed() {
        // Only what a failed test held is left behind; sweeps leave it.
        labels.insert(KEEP.into(), "failed".into());
    }
    Ok(labels)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn random_hex(len: usize) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    let mut rng = rand::rng();
    (0..len).map(|_| HEX[rng.random_range(0..16)] as char).collect()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether a process with this pid and start time exists on this host (a
/// reused pid is another process).
pub(crate) fn process_alive(pid: u32, start: &str) -> bool {
    match process_start_time(pid) {
        Some(actual) => start == "unknown" || actual == start,
        None => false,
    }
}

/// Field 22 of `/proc/<pid>/stat`: the start time in clock ticks since boot.
pub(crate) fn process_start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; the fields
    // after the last ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_adds_ownership_and_keeps_user_labels() {
        let mut user = HashMap::new();
        user.insert("team".to_string(), "db".to_string());
        let labels = stamp("container x", &user).unwrap();
        assert_eq!(labels["team"], "db");
        assert_eq!(labels[MANAGED], "true");
        assert_eq!(labels[SESSION], session_id());
        assert_eq!(labels[OWNER_PID], std::process::id().to_string());
        assert_ne!(labels[OWNER_START], "unknown");
        assert!(labels[CREATED].parse::<u64>().unwrap() > 1_700_000_000);
    }

    #[test]
    fn reserved_prefix_is_refused() {
        let mut user = HashMap::new();
        user.insert("dockhand.session".to_string(), "someone-else".to_string());
        let err = stamp("container x", &user).unwrap_err();
        assert!(err.to_string().contains("reserved prefix"), "{err}");
    }

    #[test]
    fn start_time_is_stable_and_differs_for_pid_1() {
        let me = process_start_time(std::process::id()).unwrap();
        assert_eq!(Some(me.clone()), process_start_time(std::process::id()));
        assert!(me.parse::<u64>().is_ok());
        assert_eq!(process_start_time(u32::MAX), None);
    }

    #[test]
    fn random_hex_is_hex_and_varies() {
        let a = random_hex(12);
        assert_eq!(a.len(), 12);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(12));
    }
}
