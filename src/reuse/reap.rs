//! Who removes a container reused for a run, and when: once the run is over
//! and no process uses it.
//!
//! The run is the `cargo test` or `cargo nextest run` process that started
//! this one (its parent); a binary started any other way is a run of its own.
//! Each user tells its watcher; after the user is gone, the first watcher to
//! take the container's reaper lock stays behind until the run's process
//! exits, then takes the users' lock exclusively (waiting for any process
//! still using it) and removes the container. The others exit at once. While
//! a reaper waits, sweeps leave the container alone: between two test
//! processes of a run nobody holds it, yet it is in use.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::lock;
use crate::inventory::ManagedObject;
use crate::labels;
use crate::remove::{remove_patiently, ObjectKind};

/// How long a container kept across runs may sit unused before any sweep
/// removes it.
pub(crate) const IDLE_TTL: Duration = Duration::from_secs(24 * 3600);

/// A container a process used, as its watcher is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reap {
    /// The run's process: pid and start time.
    pub run_pid: u32,
    pub run_start: String,
    pub container: String,
    pub lock: PathBuf,
}

impl Reap {
    /// The line for the watcher's pipe (the path last: it may hold spaces).
    pub(crate) fn line(&self) -> String {
        format!(
            "reap {} {} {} {}",
            self.run_pid,
            self.run_start,
            self.container,
            self.lock.display()
        )
    }

    pub(crate) fn parse(line: &str) -> Option<Reap> {
        let mut parts = line.strip_prefix("reap ")?.splitn(4, ' ');
        Some(Reap {
            run_pid: parts.next()?.parse().ok()?,
            run_start: parts.next()?.to_string(),
            container: parts.next()?.to_string(),
            lock: PathBuf::from(parts.next()?.trim_end()),
        })
    }
}

/// The pid and start time of the process whose end ends this run.
pub(crate) fn run_root() -> (u32, String) {
    let me = std::process::id();
    let own = || {
        (
            me,
            labels::process_start_time(me).unwrap_or_else(|| "unknown".into()),
        )
    };
    let Some(parent) = parent_pid(me) else {
        return own();
    };
    let name = std::fs::read_to_string(format!("/proc/{parent}/comm")).unwrap_or_default();
    if is_test_runner(name.trim()) {
        match labels::process_start_time(parent) {
            Some(start) => (parent, start),
            None => own(),
        }
    } else {
        own()
    }
}

/// `cargo` (for `cargo test`) or nextest (each test a process of its own).
fn is_test_runner(comm: &str) -> bool {
    comm == "cargo" || comm.starts_with("cargo-nextest")
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The reaper lock of `reap`'s container, taken by a watcher as soon as it is
/// told (while its parent still holds the users' lock): `None` when another
/// watcher has it. Taken only once its parent was gone, it would leave a gap
/// between the parent's exit and the watcher's own cleanup in which neither
/// lock is held and a sweep (another test's, in the same run) takes the
/// container for unused.
pub(crate) fn claim(reap: Reap) -> Option<(Reap, File)> {
    let reaper = lock::try_exclusive(&lock::reaper_path(&reap.lock)).ok()??;
    Some((reap, reaper))
}

/// The watcher's part, after its parent is gone: for each container it
/// [`claim`]ed, wait for the run to end and nobody to use it, then remove it.
pub(crate) fn reap_after_runs(
    docker: &bollard::Docker,
    runtime: &tokio::runtime::Runtime,
    mine: Vec<(Reap, File)>,
) {
    for (reap, _) in &mine {
        while labels::process_alive(reap.run_pid, &reap.run_start) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for (reap, reaper) in mine {
        let Ok(users) = lock::exclusive(&reap.lock) else {
            continue;
        };
        let removed = runtime.block_on(remove_patiently(docker, ObjectKind::Container, &reap.container));
        if removed.is_ok() {
            lock::forget(&reap.lock, users);
        }
        drop(reaper);
    }
}

/// A sweep's verdict on a reused container of this host.
pub(crate) enum SweepCheck {
    /// Nobody uses it: remove it while holding these locks, so that no process
    /// begins to use it meanwhile, then [`lock::forget`] its files.
    Remove(String, HeldLocks),
    Keep(String),
}

/// The locks of a reused container a sweep removes.
pub(crate) struct HeldLocks {
    path: PathBuf,
    users: File,
    reaper: File,
}

impl HeldLocks {
    /// Lets go of them; `removed`: the container is gone, and so go its files.
    pub(crate) fn release(self, removed: bool) {
        if removed {
            lock::forget(&self.path, self.users);
        }
        drop(self.reaper);
    }
}

/// Whether a sweep may remove this reused container; `persistent_too` for
/// `dockhand sweep --reused`.
pub(crate) fn sweep_check(object: &ManagedObject, persistent_too: bool) -> SweepCheck {
    let Some(path) = object.labels.get(labels::REUSE_LOCK).map(PathBuf::from) else {
        return SweepCheck::Keep("reused, but its lock file is not named".into());
    };
    let persistent = object
        .labels
        .get(labels::REUSE)
        .is_some_and(|r| r == "persistent");
    if persistent && !persistent_too && !idle_for(&path, object, IDLE_TTL) {
        return SweepCheck::Keep(
            "reused across runs (DOCKHAND_REUSE); `dockhand sweep --reused` removes it".into(),
        );
    }
    let reaper = lock::try_exclusive(&lock::reaper_path(&path));
    let users = lock::try_exclusive(&path);
    match (reaper, users) {
        (Ok(Some(reaper)), Ok(Some(users))) => SweepCheck::Remove(
            "reused, and no live process uses it".into(),
            HeldLocks { path, users, reaper },
        ),
        (Err(err), _) | (_, Err(err)) => SweepCheck::Keep(format!(
            "reused; its lock file {} cannot be read: {err}",
            path.display()
        )),
        _ => SweepCheck::Keep("reused by a live process or run".into()),
    }
}

/// Whether nobody began to use it for `ttl` (the lock file's time, or the
/// container's age when the file is gone).
fn idle_for(path: &Path, object: &ManagedObject, ttl: Duration) -> bool {
    let last = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let idle = match last {
        Some(last) => SystemTime::now().duration_since(last).unwrap_or_default(),
        None => Duration::from_secs(labels::unix_now().saturating_sub(object.created().unwrap_or(0))),
    };
    idle >= ttl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_with_spaces_in_the_path() {
        let reap = Reap {
            run_pid: 42,
            run_start: "12345".into(),
            container: "dockhand-shared-abc".into(),
            lock: PathBuf::from("/tmp/my dir/shared-1-abc.lock"),
        };
        assert_eq!(Reap::parse(&reap.line()), Some(reap));
        assert_eq!(Reap::parse("keep abc"), None);
        assert_eq!(Reap::parse("reap x 1 c /p"), None);
    }

    #[test]
    fn the_run_is_the_test_runner_or_this_process() {
        assert!(is_test_runner("cargo"));
        assert!(is_test_runner("cargo-nextest"));
        assert!(!is_test_runner("bash"));
        let (pid, start) = run_root();
        assert!(labels::process_alive(pid, &start));
        assert!(parent_pid(std::process::id()).is_some());
    }
}
