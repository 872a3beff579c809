//! Copying files into and out of containers as in-memory tar archives.

use std::path::PathBuf;

use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use bollard::Docker;
use futures_util::StreamExt;

use crate::archive::{self, Entries, Entry};
use crate::error::{Error, Result};

/// One thing to copy into a container.
#[derive(Debug, Clone)]
pub(crate) enum FileSpec {
    Bytes {
        path: String,
        data: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
    },
    HostPath {
        host: PathBuf,
        dest: String,
    },
}

impl FileSpec {
    /// The destination path, checked.
    pub(crate) fn dest(&self) -> std::result::Result<String, String> {
        match self {
            FileSpec::Bytes { path, .. } => archive::normalize(path),
            FileSpec::HostPath { dest, .. } => archive::normalize(dest),
        }
    }
}

/// Packs the specs into one tar to unpack at `/`.
pub(crate) fn pack(specs: &[FileSpec], resource: &str) -> Result<Vec<u8>> {
    let mut entries = Entries::new();
    for spec in specs {
        let dest = spec.dest().map_err(|e| Error::invalid(resource, e))?;
        match spec {
            FileSpec::Bytes {
                data, mode, uid, gid, ..
            } => {
                entries.insert(
                    dest,
                    Entry::File {
                        data: data.clone(),
                        mode: *mode,
                        uid: *uid,
                        gid: *gid,
                    },
                );
            }
            FileSpec::HostPath { host, .. } => {
                archive::add_host_path(&mut entries, host, &dest).map_err(|source| Error::Io {
                    operation: "read host path",
                    resource: format!("{} (to copy into {resource})", host.display()),
                    source,
                })?
            }
        }
    }
    archive::build(&entries).map_err(|source| Error::Io {
        operation: "pack files for",
        resource: resource.to_string(),
        source,
    })
}

pub(crate) async fn upload(docker: &Docker, id: &str, tar: Vec<u8>, resource: &str) -> Result<()> {
    let options = UploadToContainerOptions {
        path: "/".into(),
        ..Default::default()
    };
    docker
        .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
        .await
        .map_err(|e| Error::engine("copy files into", resource, e))
}

/// The tar the engine makes of `path` (a file or a directory).
pub(crate) async fn download(docker: &Docker, id: &str, path: &str, resource: &str) -> Result<Vec<u8>> {
    let options = DownloadFromContainerOptions {
        path: path.to_string(),
    };
    let mut stream = docker.download_from_container(id, Some(options));
    let mut tar = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::engine("copy out", format!("path {path} of {resource}"), e))?;
        tar.extend_from_slice(&chunk);
    }
    Ok(tar)
}

/// The bytes of the single regular file in `tar`.
pub(crate) fn single_file(tar: &[u8], path: &str, resource: &str) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        operation: "unpack",
        resource: format!("path {path} of {resource}"),
        source,
    };
    let mut archive = tar::Archive::new(tar);
    let mut entries = archive.entries().map_err(io)?;
    let Some(first) = entries.next() else {
        return Err(Error::invalid(
            format!("path {path} of {resource}"),
            "the engine sent an empty archive",
        ));
    };
    let mut first = first.map_err(io)?;
    if first.header().entry_type().is_dir() {
        return Err(Error::invalid(
            format!("path {path} of {resource}"),
            "it is a directory; use copy_dir_from or copy_dir_to_host",
        ));
    }
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut first, &mut data).map_err(io)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn host_directories_keep_modes_and_links() {
        let dir = std::env::temp_dir().join(format!("dockhand-files-{}", std::process::id()));
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("sub/run.sh"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(dir.join("sub/run.sh"), fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("sub/run.sh", dir.join("link")).unwrap();
        let mut entries = Entries::new();
        archive::add_host_path(&mut entries, &dir, "opt/app").unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            entries["opt/app/sub/run.sh"],
            Entry::File { mode: 0o750, .. }
        ));
        assert_eq!(
            entries["opt/app/link"],
            Entry::Symlink {
                target: "sub/run.sh".into()
            }
        );
        assert!(matches!(entries["opt/app/sub"], Entry::Dir { .. }));
    }

    #[test]
    fn single_file_refuses_directories() {
        let mut e = Entries::new();
        e.insert("d".into(), Entry::Dir { mode: 0o755 });
        let tar = archive::build(&e).unwrap();
        let err = single_file(&tar, "/d", "container c").unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        let mut e = Entries::new();
        e.insert(
            "f".into(),
            Entry::File {
                data: b"42".to_vec(),
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
        );
        assert_eq!(
            single_file(&archive::build(&e).unwrap(), "/f", "c").unwrap(),
            b"42"
        );
    }
}
