//! Cached start state: a volume holding a container's initialised state (a
//! database server's data directory after its first start and migrations)
//! and the script that puts it in place, found by the hash of the
//! configuration it was taken from, so that the next start of that
//! configuration skips the initialisation.
//!
//! - A volume, not an image: committing 40 MB under fuse-overlayfs takes five
//!   seconds, and reading it back out of an image layer a second; a volume is
//!   a plain directory on the engine's host, filled and read at disk speed.
//! - A container started from a state mounts it read-only at [`MOUNT`] and
//!   runs [`START`] before its own entrypoint.
//! - It is filled through a helper container that is never started; its name
//!   (`dockhand-cache-helper-…`) lets the sweeper find one a killed process
//!   left.
//! - It is labelled `dockhand.cache.*`, not `dockhand.managed`: it is meant to
//!   outlive the run. Saving one removes the older ones of its configuration
//!   that no container uses; the sweeper removes those replaced or saved over
//!   [`STALE_AFTER`] ago, `dockhand sweep --cache` all of them.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListVolumesOptions, RemoveVolumeOptions,
    UploadToContainerOptions,
};
use bollard::Docker;

use crate::error::{Error, Result};
use crate::labels::random_hex;
use crate::remove::{remove_object, ObjectKind};

/// The configuration key a state starts.
pub(crate) const OF: &str = "dockhand.cache.of";
/// What the state holds beyond a first start (template keys), comma-separated.
pub(crate) const HOLDS: &str = "dockhand.cache.holds";
/// The image a container with a cached state was configured with.
pub(crate) const BASE: &str = "dockhand.cache.base";
/// When it was saved, in seconds since the epoch.
const SAVED: &str = "dockhand.cache.saved";
/// Where a container started from a state has it, read-only.
pub(crate) const MOUNT: &str = "/dockhand-state";
/// The script in the state that puts it in place, then runs its arguments.
pub(crate) const START: &str = "/dockhand-state/start.sh";
/// The name every helper container starts with.
const HELPER: &str = "dockhand-cache-helper-";
/// The name every state volume starts with.
const VOLUME: &str = "dockhand-cache-state-";
/// How long after it was saved a sweep removes a state.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// A state of a configuration.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) volume: String,
    pub(crate) holds: Vec<String>,
}

/// The newest state of configuration `key`, if any.
pub(crate) async fn find(docker: &Docker, key: &str) -> Result<Option<Found>> {
    let states = list(docker, Some(key)).await?;
    Ok(states
        .into_iter()
        .max_by_key(|(_, _, _, saved)| *saved)
        .map(|(volume, _, holds, _)| Found { volume, holds }))
}

/// States as (volume, configuration key, holds, saved), of one configuration
/// or of all.
async fn list(docker: &Docker, key: Option<&str>) -> Result<Vec<(String, String, Vec<String>, u64)>> {
    let label = match key {
        Some(key) => format!("{OF}={key}"),
        None => OF.to_string(),
    };
    let options = ListVolumesOptions {
        filters: Some(HashMap::from([("label".to_string(), vec![label])])),
    };
    let volumes = docker
        .list_volumes(Some(options))
        .await
        .map_err(|e| Error::engine("list", "cached start states", e))?;
    Ok(volumes
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|volume| {
            let labels = volume.labels;
            let holds = labels.get(HOLDS).map(|h| split(h)).unwrap_or_default();
            let saved = labels.get(SAVED).and_then(|s| s.parse().ok()).unwrap_or(0);
            let of = labels.get(OF).cloned().unwrap_or_default();
            (volume.name, of, holds, saved)
        })
        .collect())
}

fn split(holds: &str) -> Vec<String> {
    holds
        .split(',')
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect()
}

/// What to save: tar archives rooted at the state's directory (their paths
/// begin with `dockhand-state/`), one of them holding [`START`].
pub(crate) struct Snapshot {
    pub(crate) key: String,
    pub(crate) base_image: String,
    pub(crate) holds: Vec<String>,
    pub(crate) files: Vec<Vec<u8>>,
}

/// Saves a state and removes the older ones of its configuration that no
/// container uses; returns the new state's volume.
pub(crate) async fn save(docker: &Docker, snapshot: Snapshot) -> Result<String> {
    let volume = format!("{VOLUME}{}-{}", snapshot.key, random_hex(6));
    let labels = HashMap::from([
        (OF.to_string(), snapshot.key.clone()),
        (HOLDS.to_string(), snapshot.holds.join(",")),
        (SAVED.to_string(), now().to_string()),
    ]);
    let request = VolumeCreateRequest {
        name: Some(volume.clone()),
        labels: Some(labels),
        ..Default::default()
    };
    docker
        .create_volume(request)
        .await
        .map_err(|e| Error::engine("create", format!("volume {volume}"), e))?;
    if let Err(err) = fill(docker, &volume, &snapshot).await {
        let _ = remove_object(docker, ObjectKind::Volume, &volume).await;
        return Err(err);
    }
    for (old, _, _, _) in list(docker, Some(&snapshot.key)).await? {
        if old != volume {
            let _ = docker.remove_volume(&old, None::<RemoveVolumeOptions>).await;
        }
    }
    Ok(volume)
}

/// Unpacks the snapshot's files into the volume, through a helper container
/// that mounts it and is never started.
async fn fill(docker: &Docker, volume: &str, snapshot: &Snapshot) -> Result<()> {
    let helper = format!("{HELPER}{}-{}", snapshot.key, random_hex(6));
    let body = ContainerCreateBody {
        image: Some(snapshot.base_image.clone()),
        host_config: Some(HostConfig {
            mounts: Some(vec![Mount {
                target: Some(MOUNT.to_string()),
                source: Some(volume.to_string()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(helper.clone()),
        ..Default::default()
    };
    docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| Error::engine("create", format!("container {helper}"), e))?;
    let mut filled = Ok(());
    for tar in &snapshot.files {
        let options = UploadToContainerOptions {
            path: "/".into(),
            ..Default::default()
        };
        let uploaded = docker
            .upload_to_container(&helper, Some(options), bollard::body_full(tar.clone().into()))
            .await;
        if let Err(e) = uploaded {
            filled = Err(Error::engine(
                "copy a start state into",
                format!("volume {volume}"),
                e,
            ));
            break;
        }
    }
    let _ = remove_object(docker, ObjectKind::Container, &helper).await;
    filled
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether a state saved at `saved` is stale at `now` (both in seconds).
fn stale(saved: u64, now: u64, all: bool) -> bool {
    all || now.saturating_sub(saved) >= STALE_AFTER.as_secs()
}

/// Removes stale states (all of them with `all`) that no container uses, and
/// helper containers a killed process left; returns what it removed (or, in a
/// dry run, would remove), with why.
pub(crate) async fn sweep(
    docker: &Docker,
    all: bool,
    dry_run: bool,
) -> Result<Vec<(ObjectKind, String, String)>> {
    let mut removed = Vec::new();
    let now = now();
    let states = list(docker, None).await?;
    // Another state of the same configuration saved later replaces it.
    let mut newest: HashMap<&str, u64> = HashMap::new();
    for (_, key, _, saved) in &states {
        let at = newest.entry(key.as_str()).or_default();
        *at = (*at).max(*saved);
    }
    for (volume, key, _, saved) in &states {
        let replaced = newest.get(key.as_str()).is_some_and(|n| n > saved);
        if !replaced && !stale(*saved, now, all) {
            continue;
        }
        // Not forced: a state a container runs from stays.
        if dry_run
            || docker
                .remove_volume(volume, None::<RemoveVolumeOptions>)
                .await
                .is_ok()
        {
            let why = match (all, replaced) {
                (true, _) => "cached start state",
                (false, true) => "cached start state replaced by a newer one",
                (false, false) => "cached start state saved over a week ago",
            };
            removed.push((ObjectKind::Volume, volume.clone(), why.to_string()));
        }
    }
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("name".to_string(), vec![HELPER.to_string()])])),
        ..Default::default()
    };
    let helpers = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| Error::engine("list", "cached start state helpers", e))?;
    for helper in helpers {
        // A helper lives for one save: one older than a minute was left.
        let old = now.saturating_sub(helper.created.unwrap_or(0).max(0) as u64) > 60;
        let Some(id) = helper.id.filter(|_| old) else {
            continue;
        };
        if dry_run || remove_object(docker, ObjectKind::Container, &id).await.is_ok() {
            removed.push((
                ObjectKind::Container,
                id,
                "helper left by a start state save".into(),
            ));
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_goes_stale_a_week_after_it_was_saved() {
        let week = STALE_AFTER.as_secs();
        assert!(!stale(1_000, 1_000 + week - 1, false));
        assert!(stale(1_000, 1_000 + week, false));
        assert!(stale(1_000, 1_000, true));
        assert_eq!(split("a,b,"), ["a", "b"]);
        assert!(split("").is_empty());
    }
}
