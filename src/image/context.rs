//! `BuildContext`: a Dockerfile and files held in memory, packed into a
//! deterministic tar for the engine. No temporary files.

use std::collections::{BTreeMap, HashMap};

use super::ignore::Ignore;
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
    ignore: Ignore,
    pub(crate) labels: HashMap<String, String>,
    pub(crate) cached: bool,
    pub(crate) dockerfile_name: String,
    pub(crate) build_args: BTreeMap<String, String>,
    pub(crate) target: Option<String>,
    pub(crate) no_cache: bool,
    pub(crate) pull: bool,
    pub(crate) registry_auths: BTreeMap<String, super::auth::RegistryAuth>,
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
            ignore: Ignore::default(),
            labels: HashMap::new(),
            cached: false,
            dockerfile_name: "Dockerfile".into(),
            build_args: BTreeMap::new(),
            target: None,
            no_cache: false,
            pull: false,
            registry_auths: BTreeMap::new(),
        }
    }

    /// Names the Dockerfile inside the context (default `Dockerfile`).
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\n").dockerfile_name("ci.Dockerfile");
    /// ```
    pub fn dockerfile_name(mut self, name: impl Into<String>) -> Self {
        self.dockerfile_name = name.into();
        self
    }

    /// A build argument (`ARG` in the Dockerfile).
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\nARG VERSION\n").build_arg("VERSION", "1.2");
    /// ```
    pub fn build_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.build_args.insert(key.into(), value.into());
        self
    }

    /// Builds only up to this stage of a multi-stage Dockerfile.
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch AS base\n").target("base");
    /// ```
    pub fn target(mut self, stage: impl Into<String>) -> Self {
        self.target = Some(stage.into());
        self
    }

    /// Ignores the engine's layer cache.
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\n").no_cache();
    /// ```
    pub fn no_cache(mut self) -> Self {
        self.no_cache = true;
        self
    }

    /// Pulls newer versions of base images before building.
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM alpine\n").pull_base();
    /// ```
    pub fn pull_base(mut self) -> Self {
        self.pull = true;
        self
    }

    /// Credentials for a registry the build pulls base images from (a host
    /// such as `ghcr.io`); those `docker login` stored are sent as well.
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM ghcr.io/org/base:1\n")
    ///     .registry_auth("ghcr.io", dockhand::RegistryAuth::basic("ci", "token"));
    /// ```
    pub fn registry_auth(mut self, registry: &str, auth: super::auth::RegistryAuth) -> Self {
        self.registry_auths.insert(registry.to_string(), auth);
        self
    }

    /// Adds a host file or directory (modes, owners and symlinks kept) at
    /// `context_path`; an unreadable path is reported when the context is packed.
    ///
    /// A directory's own `.dockerignore`, when it has one, is honoured the way
    /// `docker build` honours it, relative to that directory: what it excludes
    /// is not read at all (a `target/` of gigabytes costs nothing) unless a `!`
    /// exception may put something inside it back.
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\nCOPY app /app\n").host_path("src", "app");
    /// ```
    pub fn host_path(mut self, host: impl AsRef<std::path::Path>, context_path: &str) -> Self {
        let host = host.as_ref();
        let dest = match archive::normalize(context_path) {
            Ok(dest) => dest,
            Err(e) => {
                self.problems.push(e);
                return self;
            }
        };
        let ignore = match std::fs::read_to_string(host.join(".dockerignore")) {
            Ok(text) => match Ignore::parse(&text) {
                Ok(ignore) => ignore,
                Err(e) => {
                    self.problems.push(format!("{}: {e}", host.display()));
                    return self;
                }
            },
            Err(_) => Ignore::default(),
        };
        let excluded = |rel: &str| ignore.excludes(rel);
        let skip = archive::Skip {
            excluded: (!ignore.is_empty()).then_some(&excluded as &dyn Fn(&str) -> bool),
            walk_excluded: ignore.has_exceptions(),
        };
        if let Err(e) = archive::add_host_path_except(&mut self.entries, host, &dest, &skip) {
            self.problems.push(format!("{}: {e}", host.display()));
        }
        self
    }

    /// `.dockerignore` rules for the whole context, matched against paths in the
    /// context when it is packed (in-memory files too). The Dockerfile is always
    /// sent. Syntax as Docker's: globs, `**`, `!` exceptions, `#` comments; the
    /// last matching rule decides.
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\nCOPY . /app\n")
    ///     .file("app.rs", b"fn main() {}".to_vec(), 0o644)
    ///     .file("debug.log", b"noise".to_vec(), 0o644)
    ///     .dockerignore("*.log\n");
    /// let tar = ctx.to_tar().unwrap();
    /// assert!(!String::from_utf8_lossy(&tar).contains("debug.log"));
    /// ```
    pub fn dockerignore(mut self, rules: &str) -> Self {
        match Ignore::parse(rules) {
            Ok(ignore) => self.ignore = ignore,
            Err(e) => self.problems.push(e),
        }
        self
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

    /// Caches the image by content: the hash of the context and the build options
    /// becomes a label, and building an unchanged context again finds that image
    /// (one list call, no build). A cached image outlives the process: neither
    /// guards, the watcher nor the sweeper remove it (for test fixtures shared by
    /// many runs). By default a built image belongs to the process that built it.
    ///
    /// ```
    /// let ctx = dockhand::BuildContext::new("FROM scratch\n").cached();
    /// ```
    pub fn cached(mut self) -> Self {
        self.cached = true;
        self
    }

    /// The content hash: the tar plus every option that changes the result.
    pub(crate) fn content_hash(&self, tar: &[u8], tag: &str, bases: &[String]) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(tar);
        // The base images' ids: a rebuilt base must not hand out images built
        // on the old one.
        for base in bases {
            hash.update(b"\0base\0");
            hash.update(base.as_bytes());
        }
        let mut labels: Vec<_> = self.labels.iter().collect();
        labels.sort();
        let options = format!(
            "\0{tag}\0{}\0{:?}\0{:?}\0{:?}\0{}",
            self.dockerfile_name, self.build_args, self.target, labels, self.pull
        );
        hash.update(options.as_bytes());
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The images the Dockerfile builds on (`FROM`), without `scratch` and
    /// earlier stages; build args in them are substituted, and one that still
    /// holds a variable is left out (the engine resolves it).
    pub(crate) fn base_images(&self) -> Vec<String> {
        let mut stages: Vec<String> = Vec::new();
        let mut bases = Vec::new();
        for line in self.dockerfile.lines() {
            let mut words = line.split_whitespace();
            if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
                continue;
            }
            let mut words = words.skip_while(|w| w.starts_with("--"));
            let Some(image) = words.next() else { continue };
            let mut image = image.to_string();
            for (key, value) in &self.build_args {
                image = image
                    .replace(&format!("${{{key}}}"), value)
                    .replace(&format!("${key}"), value);
            }
            let earlier_stage = stages.contains(&image.to_ascii_lowercase());
            if image != "scratch" && !image.contains('$') && !earlier_stage && !bases.contains(&image) {
                bases.push(image);
            }
            if let (Some(as_word), Some(stage)) = (words.next(), words.next())
                && as_word.eq_ignore_ascii_case("AS")
            {
                stages.push(stage.to_ascii_lowercase());
            }
        }
        bases
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
            Ok(path) if path == self.dockerfile_name => self
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
        if !self.ignore.is_empty() {
            entries.retain(|path, _| !self.ignore.excludes(path));
        }
        let name =
            archive::normalize(&self.dockerfile_name).map_err(|e| Error::invalid("build context", e))?;
        entries.insert(
            name,
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
    fn hash_follows_content_and_options() {
        let ctx = BuildContext::new("FROM scratch\n").file("a", b"1".to_vec(), 0o644);
        let tar = ctx.to_tar().unwrap();
        let h = ctx.content_hash(&tar, "x:1", &[]);
        assert_eq!(h, ctx.clone().content_hash(&ctx.to_tar().unwrap(), "x:1", &[]));
        assert_eq!(h.len(), 64);
        assert_ne!(h, ctx.content_hash(&tar, "x:2", &[]));
        assert_ne!(h, ctx.clone().build_arg("A", "1").content_hash(&tar, "x:1", &[]));
        let other = BuildContext::new("FROM scratch\n").file("a", b"2".to_vec(), 0o644);
        assert_ne!(h, other.content_hash(&other.to_tar().unwrap(), "x:1", &[]));
        let mode = BuildContext::new("FROM scratch\n").file("a", b"1".to_vec(), 0o600);
        assert_ne!(h, mode.content_hash(&mode.to_tar().unwrap(), "x:1", &[]));
    }

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

    fn names(tar: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn host_directory_honours_its_dockerignore() {
        let dir = std::env::temp_dir().join(format!("dockhand-ignore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, body) in [
            ("src/main.rs", "fn main() {}"),
            ("target/debug/app", "binary"),
            ("notes.log", "x"),
            ("keep/a.log", "x"),
            ("keep/b.txt", "x"),
            (".dockerignore", "target\n**/*.log\n!keep/a.log\n"),
        ] {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        let ctx = BuildContext::new("FROM scratch\n").host_path(&dir, "app");
        let got = names(&ctx.to_tar().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            got,
            [
                "Dockerfile",
                "app/",
                "app/.dockerignore",
                "app/keep/",
                "app/keep/a.log",
                "app/keep/b.txt",
                "app/src/",
                "app/src/main.rs"
            ]
        );
    }

    #[test]
    fn context_rules_apply_to_everything_but_the_dockerfile() {
        let ctx = BuildContext::new("FROM scratch\n")
            .file("a.txt", vec![], 0o644)
            .file("b/c.txt", vec![], 0o644)
            .file("b/d.bin", vec![], 0o644)
            .dockerignore("*.txt\nDockerfile\nb/*.bin\n");
        assert_eq!(names(&ctx.to_tar().unwrap()), ["Dockerfile", "b/c.txt"]);
        let err = BuildContext::new("FROM scratch\n").dockerignore("[").to_tar();
        assert!(err.is_ok(), "an unclosed [ is a literal, as in Go");
    }

    #[test]
    fn base_images_are_the_from_lines_but_stages_and_scratch() {
        let ctx = BuildContext::new(
            "ARG V\nFROM --platform=linux/amd64 golang:${GO} AS build\nRUN x\nFROM build AS test\nFROM test\nFROM scratch\nFROM alpine:$V\nfrom debian:12\n",
        )
        .build_arg("GO", "1.22");
        assert_eq!(ctx.base_images(), ["golang:1.22", "debian:12"]);
        let tar = ctx.to_tar().unwrap();
        assert_ne!(
            ctx.content_hash(&tar, "x:1", &["debian:12=sha256:a".into()]),
            ctx.content_hash(&tar, "x:1", &["debian:12=sha256:b".into()])
        );
    }
}
