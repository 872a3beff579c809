//! Who uses a reused container, counted by the kernel: every process that uses
//! one holds a shared `flock` on its lock file for as long as it lives, and the
//! kernel lets go of it however the process ends (SIGKILL included). Whoever
//! wants to remove the container must first get the lock exclusively, which it
//! can only while no process uses it — and while it holds it, no process can
//! begin to.
//!
//! The files live in a directory of this user's (`$TMPDIR/dockhand-<uid>`):
//! the processes of one test run are on one host.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub(crate) use crate::user_dir::{dir, endpoint_tag, hex, uid};

/// The lock file of the container with this key on this engine.
pub(crate) fn path_for(endpoint: &str, key: &str) -> PathBuf {
    dir().join(format!("shared-{}-{key}.lock", endpoint_tag(endpoint)))
}

/// The file a reaper holds while it waits for a run to end.
pub(crate) fn reaper_path(lock: &Path) -> PathBuf {
    lock.with_extension("reaper")
}

/// Another file beside a lock file (a Redis server's logical databases).
pub(crate) fn beside(lock: &Path, extension: &str) -> PathBuf {
    lock.with_extension(extension)
}

fn open(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Opens `path` and locks it with `take` (false: not now), again on a new file
/// when the path was unlinked or replaced while this process waited:
/// [`forget`] unlinks the file of a removed container while holding it
/// exclusively, and a lock on an inode no path names counts a user nobody
/// else sees.
fn open_locked(path: &Path, take: impl Fn(&File) -> io::Result<bool>) -> io::Result<Option<File>> {
    for _ in 0..100 {
        let file = open(path)?;
        if !take(&file)? {
            return Ok(None);
        }
        if same_file(&file, path) {
            return Ok(Some(file));
        }
    }
    Err(io::Error::other(format!(
        "the lock file {} was replaced 100 times while this process locked it",
        path.display()
    )))
}

fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
        _ => false,
    }
}

/// The lock, taken exclusively, if no process holds it now.
pub(crate) fn try_exclusive(path: &Path) -> io::Result<Option<File>> {
    open_locked(path, |file| match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(err)) => Err(err),
    })
}

/// The lock, taken exclusively; blocks until every user has let go.
pub(crate) fn exclusive(path: &Path) -> io::Result<File> {
    open_locked(path, |file| file.lock().map(|()| true))?
        .ok_or_else(|| io::Error::other("a blocking lock returned without the lock"))
}

/// Removes the files of a container that is gone: the lock file at `path` and
/// those beside it (readiness, reaper, Redis databases). `users` is that lock,
/// held exclusively, so no process uses the container or can begin to; one
/// that opened the file meanwhile finds it unlinked once it has the lock and
/// begins again on a new one.
pub(crate) fn forget(path: &Path, users: File) {
    if let (Some(dir), Some(stem)) = (path.parent(), path.file_stem()) {
        let beside = format!("{}.", stem.to_string_lossy());
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if name.to_string_lossy().starts_with(&beside) && entry.path() != path {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
    let _ = std::fs::remove_file(path);
    drop(users);
}

/// Whether a lock file exists and someone holds it (shared or exclusive).
pub(crate) fn held(path: &Path) -> io::Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    Ok(try_exclusive(path)?.is_none())
}

/// The shared locks this process holds: one per lock file, until it exits.
static USING: Mutex<Option<HashMap<PathBuf, File>>> = Mutex::new(None);

/// Begins using the container behind `path` (once per process; later calls
/// return at once): waits while someone removes it. True the first time.
pub(crate) async fn begin_using(path: &Path) -> io::Result<bool> {
    if using(path) {
        return Ok(false);
    }
    let owned = path.to_path_buf();
    let file = tokio::task::spawn_blocking(move || {
        let file = open_locked(&owned, |file| file.lock_shared().map(|()| true))?
            .ok_or_else(|| io::Error::other("a blocking lock returned without the lock"))?;
        // The last use, for an idle TTL of containers kept across runs.
        file.set_modified(std::time::SystemTime::now())?;
        Ok::<_, io::Error>(file)
    })
    .await
    .map_err(io::Error::other)??;
    let mut held = USING.lock().unwrap_or_else(|e| e.into_inner());
    let held = held.get_or_insert_with(HashMap::new);
    // Two tasks may have raced here; the second lock is simply dropped.
    let first = !held.contains_key(path);
    held.entry(path.to_path_buf()).or_insert(file);
    Ok(first)
}

fn using(path: &Path) -> bool {
    let held = USING.lock().unwrap_or_else(|e| e.into_inner());
    held.as_ref().is_some_and(|h| h.contains_key(path))
}

/// Stops using it: the shared lock is let go (the exit hook, when no watcher
/// reaps after this process).
pub(crate) fn end_using(path: &Path) {
    let mut held = USING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(held) = held.as_mut() {
        held.remove(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exclusive_lock_waits_for_every_user() {
        let path = dir().join(format!("unit-{}.lock", crate::labels::random_hex(12)));
        let user = open(&path).unwrap();
        user.lock_shared().unwrap();
        assert!(held(&path).unwrap());
        assert!(try_exclusive(&path).unwrap().is_none(), "a user holds it");
        drop(user);
        let remover = try_exclusive(&path).unwrap().expect("nobody uses it");
        assert!(
            open(&path).unwrap().try_lock_shared().is_err(),
            "no new user while removing"
        );
        drop(remover);
        assert!(!held(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_locker_waiting_while_the_file_is_forgotten_locks_a_new_one() {
        let path = dir().join(format!("unit-{}.lock", crate::labels::random_hex(12)));
        let ready = beside(&path, "ready");
        std::fs::write(&ready, b"x").unwrap();
        let remover = exclusive(&path).unwrap();
        let waiting = {
            let path = path.clone();
            std::thread::spawn(move || exclusive(&path).unwrap())
        };
        // Let the waiter open the old file and block on it.
        std::thread::sleep(std::time::Duration::from_millis(200));
        forget(&path, remover);
        assert!(!ready.exists(), "the files beside it go too");
        let second = waiting.join().unwrap();
        assert!(same_file(&second, &path), "the waiter holds a file no path names");
        assert!(
            try_exclusive(&path).unwrap().is_none(),
            "and so nobody sees its lock"
        );
        forget(&path, second);
        assert!(!path.exists());
    }

    #[test]
    fn paths_are_per_engine_and_key() {
        let a = path_for("unix:///var/run/docker.sock", "k1");
        assert_ne!(a, path_for("unix:///run/podman/podman.sock", "k1"));
        assert_ne!(a, path_for("unix:///var/run/docker.sock", "k2"));
        assert!(a.starts_with(dir()));
        assert_eq!(reaper_path(&a).extension().unwrap(), "reaper");
        assert_eq!(hex::short(&[0xab, 0x01], 3), "ab0");
    }
}
