//! `BuildContext`: a Dockerfile and files held in memory, packed into a
//! deterministic tar for the engine. No temporary files.

use std::collections::HashMap;

use crate::archive::{self, Entries, Entry};
use crate::error::{Error, Result};

/// A build context: a Dockerfile string plus files with their bytes, modes and
/// owners, and directories and symlinks.
///
/// ```
/// use dockhand::BuildContext;
/// let ctx = BuildContext::new("FROM scratch\nCOPY hello /hello\n")
///     .file("hello", b"hi\n".to_vec(), 0o644)
///     .file_owned("etc/app.conf", b"x=1\n".to_vec(), 0o600, 70, 70)
///     .dir("tmp", 0o1777)
///     .symlink("bin/sh", "busybox");
/// let tar = ctx.to_tar().unwrap();
/// assert_eq!(tar, ctx.to_tar().unwrap()); // deterministic
/// ```
#[derive(Debug, Clone)]
pub struct BuildContext {
    dockerfile: String,
    entries: Entries,
    problems: Vec<String>,
    pub(crate) labels: HashMap<String, String>,
    pub(crate) persistent: bool,
}

impl BuildContext {
    /// A context whose `Dockerfile` has this content.
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\n");
    /// ```
    pub fn new(dockerfile: impl Into<String>) -> Self {
        BuildContext {
            dockerfile: dockerfile.into(),
            entries: Entries::new(),
            problems: Vec::new(),
            labels: HashMap::new(),
            persistent: false,
        }
    }

    /// Adds a label to the image (`dockhand.` keys are reserved).
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\n").label("team", "core");
    /// ```
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Keeps the image beyond this process: it is not owned by the session, so
    /// neither the watcher nor the sweeper removes it (for test fixtures shared by
    /// many runs). By default a built image belongs to the process that built it.
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\n").persistent();
    /// ```
    pub fn persistent(mut self) -> Self {
        self.persistent = true;
        self
    }

    /// Adds a file owned by root.
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\n").file("run.sh", b"#!/bin/sh\n".to_vec(), 0o755);
    /// ```
    pub fn file(self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.file_owned(path, contents, mode, 0, 0)
    }

    /// Adds a file with an owner (uid, gid), so no `RUN chown` step is needed.
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\n").file_owned("data", vec![], 0o600, 999, 999);
    /// ```
    pub fn file_owned(self, path: &str, contents: impl Into<Vec<u8>>, mode: u32, uid: u64, gid: u64) -> Self {
        let data = contents.into();
        self.entry(path, Entry::File { data, mode, uid, gid })
    }

    /// Adds a directory with a mode (`0o1777` for a `/tmp`).
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\n").dir("tmp", 0o1777);
    /// ```
    pub fn dir(self, path: &str, mode: u32) -> Self {
        self.entry(path, Entry::Dir { mode })
    }

    /// Adds a symbolic link pointing at `target`.
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\n").symlink("bin/sh", "busybox");
    /// ```
    pub fn symlink(self, path: &str, target: impl Into<String>) -> Self {
        self.entry(
            path,
            Entry::Symlink {
                target: target.into(),
            },
        )
    }

    fn entry(mut self, path: &str, entry: Entry) -> Self {
        match archive::normalize(path) {
            Ok(path) if path == "Dockerfile" => self
                .problems
                .push("a file named Dockerfile would replace the context's Dockerfile".into()),
            Ok(path) => {
                self.entries.insert(path, entry);
            }
            Err(e) => self.problems.push(e),
        }
        self
    }

    /// The context as tar bytes: sorted entries, fixed mtime, explicit modes.
    ///
    /// ```
    /// let tar = dockhand::BuildContext::new("FROM scratch\n").to_tar().unwrap();
    /// assert!(tar.len() >= 1024);
    /// ```
    pub fn to_tar(&self) -> Result<Vec<u8>> {
        if let Some(problem) = self.problems.first() {
            return Err(Error::invalid("build context", problem.clone()));
        }
        let mut entries = self.entries.clone();
        entries.insert(
            "Dockerfile".into(),
            Entry::File {
                data: self.dockerfile.clone().into_bytes(),
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
        );
        archive::build(&entries).map_err(|source| Error::Io {
            operation: "pack",
            resource: "build context".into(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_is_in_the_tar_and_bad_paths_are_reported() {
        let tar = BuildContext::new("FROM scratch\n")
            .file("a", b"1".to_vec(), 0o600)
            .to_tar()
            .unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["Dockerfile", "a"]);

        let err = BuildContext::new("FROM scratch\n")
            .file("../a", vec![], 0o644)
            .to_tar()
            .unwrap_err();
        assert!(err.to_string().contains(".."), "{err}");
        let err = BuildContext::new("x")
            .file("Dockerfile", vec![], 0o644)
            .to_tar()
            .unwrap_err();
        assert!(err.to_string().contains("Dockerfile"), "{err}");
    }
}
