//! This user's directory for the files the processes of a test run share
//! (`$TMPDIR/dockhand-<uid>`: the processes of one run are on one host), and
//! the short names files in it are given.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

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
