//! Cached start state: an image of a container's initialised state (a
//! database server after its first start and migrations), found by the hash of
//! the configuration it was started with, so that the next start of that
//! configuration skips the initialisation.
//!
//! - A state image is committed from a helper container that is created from
//!   the base image, never started, and given the state as files; its name
//!   (`dockhand-cache-helper-…`) lets the sweeper find one a killed process left.
//! - It is labelled `dockhand.cache.*`, not `dockhand.managed`: it is meant to
//!   outlive the run. Saving one removes the older ones of its configuration;
//!   the sweeper removes those unused for [`STALE_AFTER`], `dockhand sweep
//!   --cache` all of them.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::{ContainerConfig, ContainerCreateBody};
use bollard::query_parameters::{
    CommitContainerOptions, CreateContainerOptions, ListContainersOptions, ListImagesOptions,
    RemoveImageOptions, UploadToContainerOptions,
};
use bollard::Docker;

use crate::error::{Error, Result};
use crate::labels::random_hex;
use crate::remove::{remove_object, ObjectKind};

/// The configuration key a state image starts.
pub(crate) const OF: &str = "dockhand.cache.of";
/// What the state holds beyond a first start (template keys), comma-separated.
pub(crate) const HOLDS: &str = "dockhand.cache.holds";
/// The image a container with a cached state was configured with, which its
/// state is saved over.
pub(crate) const BASE: &str = "dockhand.cache.base";
/// When it was saved, in seconds since the epoch.
const SAVED: &str = "dockhand.cache.saved";
/// The name every helper container starts with.
const HELPER: &str = "dockhand-cache-helper-";
/// The repository state images are tagged in.
const REPOSITORY: &str = "dockhand-cache/state";
/// How long a state image may go unsaved before a sweep removes it.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// A state image of a configuration.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) image: String,
    pub(crate) holds: Vec<String>,
}

/// The newest state image of configuration `key`, if any.
pub(crate) async fn find(docker: &Docker, key: &str) -> Result<Option<Found>> {
    let images = list(docker, Some(key)).await?;
    Ok(images
        .into_iter()
        .max_by_key(|(_, _, _, saved)| *saved)
        .map(|(image, _, holds, _)| Found { image, holds }))
}

/// State images as (id, configuration key, holds, saved), of one
/// configuration or of all.
async fn list(docker: &Docker, key: Option<&str>) -> Result<Vec<(String, String, Vec<String>, u64)>> {
    let label = match key {
        Some(key) => format!("{OF}={key}"),
        None => OF.to_string(),
    };
    let options = ListImagesOptions {
        filters: Some(HashMap::from([("label".to_string(), vec![label])])),
        ..Default::default()
    };
    let images = docker
        .list_images(Some(options))
        .await
        .map_err(|e| Error::engine("list", "cached start states", e))?;
    Ok(images
        .into_iter()
        .map(|image| {
            let holds = image.labels.get(HOLDS).map(|h| split(h)).unwrap_or_default();
            let saved = image.labels.get(SAVED).and_then(|s| s.parse().ok()).unwrap_or(0);
            let of = image.labels.get(OF).cloned().unwrap_or_default();
            (image.id, of, holds, saved)
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

/// What to save: files over the base image, and how the image starts.
pub(crate) struct Snapshot {
    pub(crate) key: String,
    pub(crate) base_image: String,
    pub(crate) holds: Vec<String>,
    /// Tar archives unpacked at `/`, in order.
    pub(crate) files: Vec<Vec<u8>>,
    pub(crate) entrypoint: Vec<String>,
    pub(crate) cmd: Option<Vec<String>>,
}

/// Saves a state image and removes the older ones of its configuration that
/// no container uses; returns the new image's id.
pub(crate) async fn save(docker: &Docker, snapshot: Snapshot) -> Result<String> {
    let helper = format!("{HELPER}{}-{}", snapshot.key, random_hex(6));
    let body = ContainerCreateBody {
        image: Some(snapshot.base_image.clone()),
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
    let committed = commit(docker, &helper, &snapshot).await;
    let _ = remove_object(docker, ObjectKind::Container, &helper).await;
    let image = committed?;
    for (old, _, _, _) in list(docker, Some(&snapshot.key)).await? {
        if old != image {
            let _ = docker.remove_image(&old, None::<RemoveImageOptions>, None).await;
        }
    }
    Ok(image)
}

async fn commit(docker: &Docker, helper: &str, snapshot: &Snapshot) -> Result<String> {
    for tar in &snapshot.files {
        let options = UploadToContainerOptions {
            path: "/".into(),
            ..Default::default()
        };
        docker
            .upload_to_container(helper, Some(options), bollard::body_full(tar.clone().into()))
            .await
            .map_err(|e| Error::engine("copy files into", format!("container {helper}"), e))?;
    }
    let labels = HashMap::from([
        (OF.to_string(), snapshot.key.clone()),
        (HOLDS.to_string(), snapshot.holds.join(",")),
        (SAVED.to_string(), now().to_string()),
    ]);
    let config = ContainerConfig {
        entrypoint: Some(snapshot.entrypoint.clone()),
        cmd: snapshot.cmd.clone(),
        labels: Some(labels),
        ..Default::default()
    };
    let options = CommitContainerOptions {
        container: Some(helper.to_string()),
        repo: Some(REPOSITORY.to_string()),
        tag: Some(snapshot.key.clone()),
        pause: false,
        ..Default::default()
    };
    let committed = docker
        .commit_container(options, config)
        .await
        .map_err(|e| Error::engine("commit", format!("container {helper}"), e))?;
    Ok(committed.id)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether a state image saved at `saved` is stale at `now` (both in seconds).
fn stale(saved: u64, now: u64, all: bool) -> bool {
    all || now.saturating_sub(saved) >= STALE_AFTER.as_secs()
}

/// Removes stale state images (all of them with `all`) that no container
/// uses, and helper containers a killed process left; returns what it removed
/// (or, in a dry run, would remove), with why.
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
    for (image, key, _, saved) in &states {
        let replaced = newest.get(key.as_str()).is_some_and(|n| n > saved);
        if !replaced && !stale(*saved, now, all) {
            continue;
        }
        // Not forced: a state a container was started from stays.
        if dry_run
            || docker
                .remove_image(image, None::<RemoveImageOptions>, None)
                .await
                .is_ok()
        {
            let why = match (all, replaced) {
                (true, _) => "cached start state",
                (false, true) => "cached start state replaced by a newer one",
                (false, false) => "cached start state saved over a week ago",
            };
            removed.push((ObjectKind::Image, image.clone(), why.to_string()));
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
