//! Copying files into and out of containers as in-memory tar archives.

use std::path::PathBuf;

use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use bollard::Docker;
use futures_util::StreamExt;

use super::Container;
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

impl Container {
    /// Writes a file (bytes, mode, owned by root) into the container.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// c.copy_file_to("/etc/app.conf", b"x=1\n".to_vec(), 0o644).await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy_file_to(&self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Result<()> {
        self.copy_file_to_owned(path, contents, mode, 0, 0).await
    }

    /// Writes a file with an owner (uid, gid) into the container.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// c.copy_file_to_owned("/home/app/key", b"k".to_vec(), 0o600, 1000, 1000).await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy_file_to_owned(
        &self,
        path: &str,
        contents: impl Into<Vec<u8>>,
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> Result<()> {
        let spec = FileSpec::Bytes {
            path: path.to_string(),
            data: contents.into(),
            mode,
            uid,
            gid,
        };
        self.upload_specs(&[spec]).await
    }

    /// Copies a host file or directory (modes and symlinks kept) to `dest` in the
    /// container.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// c.copy_host_path_to("tests/data", "/srv/data").await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy_host_path_to(&self, host_path: impl AsRef<std::path::Path>, dest: &str) -> Result<()> {
        let spec = FileSpec::HostPath {
            host: host_path.as_ref().to_path_buf(),
            dest: dest.to_string(),
        };
        self.upload_specs(&[spec]).await
    }

    async fn upload_specs(&self, specs: &[FileSpec]) -> Result<()> {
        let tar = pack(specs, &self.describe())?;
        upload(self.docker(), self.id(), tar, &self.describe()).await
    }

    /// Reads a file out of the container. A missing path is an error for which
    /// [`Error::is_not_found`] holds.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let hosts = c.copy_file_from("/etc/hosts").await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy_file_from(&self, path: &str) -> Result<Vec<u8>> {
        let tar = download(self.docker(), self.id(), path, &self.describe()).await?;
        single_file(&tar, path, &self.describe())
    }

    /// A directory (or file) of the container as a tar archive.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let tar = c.copy_dir_from("/var/log").await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy_dir_from(&self, path: &str) -> Result<Vec<u8>> {
        download(self.docker(), self.id(), path, &self.describe()).await
    }

    /// Unpacks a directory (or file) of the container into `host_dir`, created if
    /// missing.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// c.copy_dir_to_host("/var/log", "target/container-logs").await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy_dir_to_host(&self, path: &str, host_dir: impl AsRef<std::path::Path>) -> Result<()> {
        let tar = self.copy_dir_from(path).await?;
        let host_dir = host_dir.as_ref();
        let io = |source| Error::Io {
            operation: "unpack into host directory",
            resource: format!("{} (from path {path} of {})", host_dir.display(), self.describe()),
            source,
        };
        std::fs::create_dir_all(host_dir).map_err(io)?;
        tar::Archive::new(tar.as_slice()).unpack(host_dir).map_err(io)
    }
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
