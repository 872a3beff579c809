//! Helpers shared by the integration tests.
#![allow(dead_code, unused_imports)]

#[path = "../../fixtures/busybox.rs"]
mod busybox_fixture;
#[path = "../../fixtures/debian.rs"]
mod debian_fixture;
#[path = "../../fixtures/mariadb.rs"]
mod mariadb_fixture;
#[path = "../../fixtures/nats.rs"]
mod nats_fixture;
#[path = "../../fixtures/postgres.rs"]
mod postgres_fixture;
#[path = "../../fixtures/redis.rs"]
mod redis_fixture;

pub mod registry;
pub mod tls;

pub use busybox_fixture::busybox;

/// The busybox fixture's tag (build it first with `busybox().await`).
pub fn busybox_tag() -> &'static str {
    busybox_fixture::BUSYBOX
}
pub use mariadb_fixture::{mariadb, MARIADB};
pub use nats_fixture::{nats, NATS};
pub use postgres_fixture::{postgres, POSTGRES};
pub use redis_fixture::{redis, REDIS};

use std::process::Command;
use std::time::Duration;

/// Whether the engine still has a container with this id or name (checked with
/// the docker CLI, independently of the library).
pub fn container_exists(id: &str) -> bool {
    Command::new("docker")
        .args(["container", "inspect", id])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Ids of containers carrying label `key=value`, running or not.
pub fn containers_labelled(key: &str, value: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={key}={value}")])
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Waits for the cleanup worker, then says whether `id` is gone.
pub fn gone_after_cleanup(id: &str) -> bool {
    assert!(
        dockhand::wait_for_cleanup(Duration::from_secs(30)),
        "cleanup did not finish"
    );
    !container_exists(id)
}

/// A unique value for labels and names in one test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos:x}{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Whether the engine has an object of `kind` (network, volume) by that name.
pub fn object_exists(kind: &str, name: &str) -> bool {
    Command::new("docker")
        .args([kind, "inspect", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Waits for the cleanup worker to finish everything handed to it so far.
pub fn settle() {
    assert!(
        dockhand::wait_for_cleanup(Duration::from_secs(30)),
        "cleanup did not finish"
    );
}

/// The watcher process of a dockhand session, found by its environment.
pub fn watcher_pid(session: &str) -> Option<u32> {
    let marker = format!("DOCKHAND_WATCHER_SESSION={session}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        environ
            .split(|b| *b == 0)
            .any(|v| v == marker.as_bytes())
            .then_some(pid)
    })
}
