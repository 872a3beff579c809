//! Volumes and mounts: `VolumeBuilder`, the `Volume` guard, and `Mount`
//! (volume, bind, tmpfs).

use std::collections::HashMap;

use bollard::models::{Mount as EngineMount, MountTmpfsOptions, MountType, VolumeCreateRequest};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::owned::{prepare, Hold, Owned, Prepared};
use crate::remove::ObjectKind;
use crate::units::parse_memory;

/// A named volume, removed when the guard and every container that mounts it are
/// gone.
///
/// ```no_run
/// use dockhand::{Container, Mount, Volume};
/// # async fn demo() -> dockhand::Result<()> {
/// let data = Volume::builder().create().await?;
/// let writer = Container::builder("fixtures/busybox:latest")
///     .cmd(["sh", "-c", "echo hi > /data/x"])
///     .mount(Mount::volume(&data, "/data"))
///     .wait_for(dockhand::WaitFor::exit_code(0))
///     .start()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Volume {
    hold: Hold,
}

impl std::fmt::Debug for Volume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume").field("name", &self.hold.name()).finish()
    }
}

impl Volume {
    /// Starts describing a volume.
    ///
    /// ```
    /// let b = dockhand::Volume::builder().label("team", "core");
    /// ```
    pub fn builder() -> VolumeBuilder {
        VolumeBuilder::default()
    }

    /// The volume's name.
    ///
    /// ```no_run
    /// # fn demo(v: &dockhand::Volume) { assert!(v.name().starts_with("dockhand-vol-")); }
    /// ```
    pub fn name(&self) -> &str {
        self.hold.name()
    }

    /// Removes the volume now; one already gone counts as removed. While a
    /// container (even a stopped one) uses it, it waits up to 10 s, then fails (and
    /// the guard tries again when the last clone drops).
    ///
    /// ```no_run
    /// # async fn demo(v: dockhand::Volume) -> dockhand::Result<()> {
    /// v.remove().await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove(self) -> Result<()> {
        self.hold.remove().await
    }

    /// Leaves the volume in the engine when the guard goes; returns its name.
    ///
    /// ```no_run
    /// # fn demo(v: dockhand::Volume) { let name = v.keep(); }
    /// ```
    pub fn keep(self) -> String {
        self.hold.keep();
        self.hold.name().to_string()
    }
}

/// Describes a volume; [`create`](VolumeBuilder::create) makes it.
///
/// ```no_run
/// # async fn demo() -> dockhand::Result<()> {
/// let v = dockhand::Volume::builder().name("pgdata").driver("local").create().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until .create().await"]
pub struct VolumeBuilder {
    name: Option<String>,
    driver: Option<String>,
    driver_opts: HashMap<String, String>,
    labels: HashMap<String, String>,
    engine: Option<Engine>,
}

impl VolumeBuilder {
    /// The name (default: `dockhand-vol-` and a random suffix).
    ///
    /// ```
    /// let b = dockhand::Volume::builder().name("pgdata");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The driver (default `local`).
    ///
    /// ```
    /// let b = dockhand::Volume::builder().driver("local");
    /// ```
    pub fn driver(mut self, driver: impl Into<String>) -> Self {
        self.driver = Some(driver.into());
        self
    }

    /// Adds a driver option.
    ///
    /// ```
    /// let b = dockhand::Volume::builder().driver_opt("type", "tmpfs").driver_opt("device", "tmpfs");
    /// ```
    pub fn driver_opt(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.driver_opts.insert(key.into(), value.into());
        self
    }

    /// Adds a label (`dockhand.` keys are reserved).
    ///
    /// ```
    /// let b = dockhand::Volume::builder().label("team", "core");
    /// ```
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Uses this engine instead of the process-wide default.
    ///
    /// ```no_run
    /// # async fn demo(e: &dockhand::Engine) { let b = dockhand::Volume::builder().engine(e); }
    /// ```
    pub fn engine(mut self, engine: &Engine) -> Self {
        self.engine = Some(engine.clone());
        self
    }

    /// Creates the volume.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let v = dockhand::Volume::builder().create().await?;
    /// # Ok(()) }
    /// ```
    pub async fn create(self) -> Result<Volume> {
        let Prepared {
            name,
            resource,
            labels,
            engine,
        } = prepare(ObjectKind::Volume, self.name, &self.labels, self.engine).await?;
        let request = VolumeCreateRequest {
            name: Some(name.clone()),
            driver: Some(self.driver.unwrap_or_else(|| "local".into())),
            driver_opts: (!self.driver_opts.is_empty()).then_some(self.driver_opts),
            labels: Some(labels),
            ..Default::default()
        };
        let created = engine
            .docker()
            .create_volume(request)
            .await
            .map_err(|e| Error::engine("create", resource, e))?;
        Ok(Volume {
            hold: Owned::new(
                engine,
                ObjectKind::Volume,
                created.name.clone(),
                created.name,
                Vec::new(),
            ),
        })
    }
}

/// Something mounted into a container: a volume, a host directory, or a tmpfs.
///
/// ```no_run
/// use dockhand::{Mount, Volume};
/// # async fn demo() -> dockhand::Result<()> {
/// let data = Volume::builder().create().await?;
/// let mounts = [
///     Mount::volume(&data, "/var/lib/data"),
///     Mount::bind("/etc/ssl/certs", "/certs").read_only(),
///     Mount::tmpfs("/scratch").size("64m").mode(0o1777),
/// ];
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Mount {
    source: Source,
    target: String,
    read_only: bool,
}

#[derive(Debug, Clone)]
enum Source {
    Volume(Volume),
    NamedVolume(String),
    Bind(String),
    Tmpfs { size: Option<String>, mode: Option<u32> },
}

impl Mount {
    /// Mounts a dockhand volume; the container keeps the volume alive.
    ///
    /// ```no_run
    /// # fn demo(v: &dockhand::Volume) { let m = dockhand::Mount::volume(v, "/data"); }
    /// ```
    pub fn volume(volume: &Volume, target: impl Into<String>) -> Self {
        Mount::new(Source::Volume(volume.clone()), target)
    }

    /// Mounts a volume by name that dockhand does not manage (created if missing,
    /// never removed by dockhand).
    ///
    /// ```
    /// let m = dockhand::Mount::named_volume("shared-cache", "/cache");
    /// ```
    pub fn named_volume(name: impl Into<String>, target: impl Into<String>) -> Self {
        Mount::new(Source::NamedVolume(name.into()), target)
    }

    /// Mounts a host path (absolute) into the container.
    ///
    /// ```
    /// let m = dockhand::Mount::bind("/srv/fixtures", "/fixtures").read_only();
    /// ```
    pub fn bind(host_path: impl Into<String>, target: impl Into<String>) -> Self {
        Mount::new(Source::Bind(host_path.into()), target)
    }

    /// Mounts an empty in-memory filesystem; its content is lost when the
    /// container stops.
    ///
    /// ```
    /// let m = dockhand::Mount::tmpfs("/tmp/cache").size("16m");
    /// ```
    pub fn tmpfs(target: impl Into<String>) -> Self {
        Mount::new(
            Source::Tmpfs {
                size: None,
                mode: None,
            },
            target,
        )
    }

    fn new(source: Source, target: impl Into<String>) -> Self {
        Mount {
            source,
            target: target.into(),
            read_only: false,
        }
    }

    /// Makes the mount read-only inside the container.
    ///
    /// ```
    /// let m = dockhand::Mount::bind("/srv", "/srv").read_only();
    /// ```
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Size limit of a tmpfs (`"64m"`); ignored for other mounts.
    ///
    /// ```
    /// let m = dockhand::Mount::tmpfs("/t").size("8m");
    /// ```
    pub fn size(mut self, limit: impl Into<String>) -> Self {
        if let Source::Tmpfs { size, .. } = &mut self.source {
            *size = Some(limit.into());
        }
        self
    }

    /// Permission bits of a tmpfs's root (`0o1777`); ignored for other mounts.
    ///
    /// ```
    /// let m = dockhand::Mount::tmpfs("/t").mode(0o700);
    /// ```
    pub fn mode(mut self, bits: u32) -> Self {
        if let Source::Tmpfs { mode, .. } = &mut self.source {
            *mode = Some(bits);
        }
        self
    }

    /// The volume this mount keeps alive, if any.
    pub(crate) fn hold(&self) -> Option<Hold> {
        match &self.source {
            Source::Volume(v) => Some(v.hold.clone()),
            _ => None,
        }
    }

    pub(crate) fn to_engine(&self) -> std::result::Result<EngineMount, String> {
        if !self.target.starts_with('/') {
            return Err(format!("mount target {:?} must be an absolute path", self.target));
        }
        let mut mount = EngineMount {
            target: Some(self.target.clone()),
            read_only: Some(self.read_only),
            ..Default::default()
        };
        match &self.source {
            Source::Volume(v) => {
                mount.typ = Some(MountType::VOLUME);
                mount.source = Some(v.name().to_string());
            }
            Source::NamedVolume(name) => {
                mount.typ = Some(MountType::VOLUME);
                mount.source = Some(name.clone());
            }
            Source::Bind(path) => {
                if !path.starts_with('/') {
                    return Err(format!("bind source {path:?} must be an absolute host path"));
                }
                mount.typ = Some(MountType::BIND);
                mount.source = Some(path.clone());
            }
            Source::Tmpfs { size, mode } => {
                mount.typ = Some(MountType::TMPFS);
                let size_bytes = size.as_deref().map(parse_memory).transpose()?;
                mount.tmpfs_options = Some(MountTmpfsOptions {
                    size_bytes,
                    mode: mode.map(i64::from),
                    ..Default::default()
                });
            }
        }
        Ok(mount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_in_engine_terms() {
        let bind = Mount::bind("/srv", "/data").read_only().to_engine().unwrap();
        assert_eq!(bind.typ, Some(MountType::BIND));
        assert_eq!(bind.read_only, Some(true));
        let tmp = Mount::tmpfs("/t").size("16m").mode(0o700).to_engine().unwrap();
        let opts = tmp.tmpfs_options.unwrap();
        assert_eq!((opts.size_bytes, opts.mode), (Some(16 << 20), Some(0o700)));
        assert!(Mount::bind("relative", "/x")
            .to_engine()
            .unwrap_err()
            .contains("absolute"));
        assert!(Mount::tmpfs("x").to_engine().unwrap_err().contains("absolute"));
        assert!(Mount::named_volume("v", "/v").hold().is_none());
    }
}
