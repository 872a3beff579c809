//! In-memory tar archives, deterministic: entries sorted by path, a fixed mtime,
//! explicit modes and owners, so the same content always gives the same bytes.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// One entry of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    File {
        data: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
    },
    Dir {
        mode: u32,
    },
    Symlink {
        target: String,
    },
}

/// Entries keyed by their path inside the archive (no leading `/`).
pub(crate) type Entries = BTreeMap<String, Entry>;

/// A fixed modification time (2000-01-01) so archives hash the same.
const MTIME: u64 = 946_684_800;

pub(crate) fn normalize(path: &str) -> Result<String, String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.is_empty() {
        return Err(format!("path {path:?} names no file"));
    }
    if parts.contains(&"..") {
        return Err(format!("path {path:?} must not contain '..'"));
    }
    Ok(parts.join("/"))
}

/// Adds a host file, symlink or whole directory under `dest`, keeping modes,
/// owners and links.
pub(crate) fn add_host_path(entries: &mut Entries, host: &Path, dest: &str) -> std::io::Result<()> {
    add_host_path_except(entries, host, dest, &Skip::default())
}

/// Which host paths [`add_host_path_except`] leaves out.
#[derive(Default)]
pub(crate) struct Skip<'a> {
    /// Takes the path relative to the added directory; true leaves it out.
    pub(crate) excluded: Option<&'a dyn Fn(&str) -> bool>,
    /// Walk into excluded directories, because something inside may be put back.
    pub(crate) walk_excluded: bool,
}

/// [`add_host_path`] leaving out what `skip` excludes; an excluded directory is
/// not read at all unless `skip.walk_excluded`.
pub(crate) fn add_host_path_except(
    entries: &mut Entries,
    host: &Path,
    dest: &str,
    skip: &Skip<'_>,
) -> std::io::Result<()> {
    walk(entries, host, dest, "", skip)
}

fn walk(entries: &mut Entries, host: &Path, dest: &str, rel: &str, skip: &Skip<'_>) -> std::io::Result<()> {
    let excluded = !rel.is_empty() && skip.excluded.is_some_and(|f| f(rel));
    let meta = fs::symlink_metadata(host)?;
    if excluded && !(meta.is_dir() && skip.walk_excluded) {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(host)?.to_string_lossy().into_owned();
        entries.insert(dest.to_string(), Entry::Symlink { target });
    } else if meta.is_dir() {
        if !excluded {
            entries.insert(dest.to_string(), Entry::Dir { mode });
        }
        let mut children: Vec<_> = fs::read_dir(host)?.collect::<std::io::Result<_>>()?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let name = child.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            walk(
                entries,
                &child.path(),
                &format!("{dest}/{name}"),
                &child_rel,
                skip,
            )?;
        }
    } else {
        entries.insert(
            dest.to_string(),
            Entry::File {
                data: fs::read(host)?,
                mode,
                uid: u64::from(meta.uid()),
                gid: u64::from(meta.gid()),
            },
        );
    }
    Ok(())
}

pub(crate) fn build(entries: &Entries) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, entry) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(MTIME);
        header.set_uid(0);
        header.set_gid(0);
        match entry {
            Entry::File { data, mode, uid, gid } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_uid(*uid);
                header.set_gid(*gid);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, path, data.as_slice())?;
            }
            Entry::Dir { mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                tar.append_data(&mut header, format!("{path}/"), std::io::empty())?;
            }
            Entry::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, path, target)?;
            }
        }
    }
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_entries_same_bytes_and_modes_kept() {
        let mut a = Entries::new();
        a.insert(
            "b/run.sh".into(),
            Entry::File {
                data: b"#!/bin/sh\n".to_vec(),
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
        );
        a.insert(
            "a.txt".into(),
            Entry::File {
                data: b"x".to_vec(),
                mode: 0o600,
                uid: 70,
                gid: 70,
            },
        );
        a.insert("tmp".into(), Entry::Dir { mode: 0o1777 });
        a.insert(
            "bin/sh".into(),
            Entry::Symlink {
                target: "busybox".into(),
            },
        );
        let first = build(&a).unwrap();
        assert_eq!(first, build(&a.clone()).unwrap());

        let mut archive = tar::Archive::new(first.as_slice());
        let seen: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("a.txt".to_string(), 0o600, 70),
                ("b/run.sh".to_string(), 0o755, 0),
                ("bin/sh".to_string(), 0o777, 0),
                ("tmp/".to_string(), 0o1777, 0),
            ]
        );
    }

    #[test]
    fn paths_are_normalized_and_checked() {
        assert_eq!(normalize("/etc//app/./conf").unwrap(), "etc/app/conf");
        assert!(normalize("/").is_err());
        assert!(normalize("../etc/passwd").unwrap_err().contains(".."));
    }
}
