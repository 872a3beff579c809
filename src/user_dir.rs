//! This user's directory for the files the processes of a test run share
//! (`$TMPDIR/dockhand-<uid>`: the processes of one run are on one host), and
//! the short names files in it are given.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// This user's id (from `/proc/self`, which needs no unsafe call).
pub(crate) fn uid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

/// The directory.
pub(crate) fn dir() -> PathBuf {
    std::env::temp_dir().join(format!("dockhand-{}", uid()))
}

/// A short name for an engine endpoint, for file names.
pub(crate) fn endpoint_tag(endpoint: &str) -> String {
    hex::short(&Sha256::digest(endpoint.as_bytes()), 8)
}

/// Writes `contents` to `path` whole (a reader sees the old contents or the
/// new, never part), with permissions `mode`, creating the directory; a
/// failure leaves no staging file.
pub(crate) fn write_whole(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut staging = path.as_os_str().to_owned();
    staging.push(format!(".{}.staging", std::process::id()));
    let staging = PathBuf::from(staging);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&staging)
        .and_then(|mut file| file.write_all(contents))
        .and_then(|()| std::fs::rename(&staging, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    written
}

/// Removes this directory's files named `<prefix>…<suffix>` that were last
/// written more than `age` ago: files made for one engine socket or one
/// server's settings would otherwise pile up, one per test.
pub(crate) fn forget_older(dir: &Path, prefix: &str, suffix: &str, age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(prefix) && name.ends_with(suffix)) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|since| since > age);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Hex without a dependency: the first `len` digits of a digest.
pub(crate) mod hex {
    pub(crate) fn short(bytes: &[u8], len: usize) -> String {
        bytes
            .iter()
            .flat_map(|b| [b >> 4, b & 0xf])
            .take(len)
            .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn only_old_files_of_the_kind_are_forgotten() {
        let dir = std::env::temp_dir().join(format!("dockhand-forget-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for name in ["pg-old.admin", "pg-new.admin", "other-old.admin", "pg-old.lock"] {
            let file = std::fs::File::create(dir.join(name)).unwrap();
            if name.contains("old") {
                file.set_modified(hour_ago).unwrap();
            }
        }
        forget_older(&dir, "pg-", ".admin", Duration::from_secs(600));
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["other-old.admin", "pg-new.admin", "pg-old.lock"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_written_whole_replaces_the_old_and_leaves_no_staging() {
        let path = dir().join(format!("unit-{}.whole", std::process::id()));
        write_whole(&path, b"old", 0o644).unwrap();
        write_whole(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let staging = dir().join(format!(
            "unit-{}.whole.{}.staging",
            std::process::id(),
            std::process::id()
        ));
        assert!(!staging.exists());
        std::fs::remove_file(&path).unwrap();
    }
}
