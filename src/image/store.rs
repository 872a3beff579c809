//! The engine's local images: tag, inspect, exists, remove, prune.

use std::collections::HashMap;

use bollard::query_parameters::{RemoveImageOptions, TagImageOptions};

use super::reference::split_reference;
use crate::engine::Engine;
use crate::error::{status_of, Error, Result};

/// What the engine knows about a local image.
///
/// ```no_run
/// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
/// let info = engine.inspect_image("fixtures/busybox:latest").await?;
/// println!("{} {:?} {} bytes", info.id, info.tags, info.size);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageInfo {
    /// The image id (`sha256:...`).
    pub id: String,
    /// Every `repo:tag` pointing at it.
    pub tags: Vec<String>,
    /// Registry digests (`repo@sha256:...`) it was pulled or pushed as.
    pub digests: Vec<String>,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// Size in bytes.
    pub size: i64,
    /// When it was built (RFC 3339), as the engine says.
    pub created: String,
}

impl Engine {
    /// Inspects a local image by reference or id; a missing one is an
    /// [`Error::ImageNotFound`].
    ///
    /// ```no_run
    /// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
    /// let info = engine.inspect_image("fixtures/busybox:latest").await?;
    /// assert!(info.id.starts_with("sha256:"));
    /// # Ok(()) }
    /// ```
    pub async fn inspect_image(&self, reference: &str) -> Result<ImageInfo> {
        match self.docker().inspect_image(reference).await {
            Ok(image) => Ok(ImageInfo {
                created: created_text(&image),
                id: image.id.unwrap_or_default(),
                tags: image.repo_tags.unwrap_or_default(),
                digests: image.repo_digests.unwrap_or_default(),
                labels: image.config.and_then(|c| c.labels).unwrap_or_default(),
                size: image.size.unwrap_or_default(),
            }),
            Err(e) if status_of(&e) == Some(404) => Err(Error::ImageNotFound {
                image: reference.into(),
                reason: "the engine has no such image".into(),
            }),
            Err(e) => Err(Error::engine("inspect", format!("image {reference}"), e)),
        }
    }

    /// Points `target` (`repo:tag`, `latest` when no tag) at the image `source`.
    ///
    /// ```no_run
    /// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
    /// engine.tag_image("fixtures/busybox:latest", "127.0.0.1:5000/busybox:1").await?;
    /// # Ok(()) }
    /// ```
    pub async fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        let (repo, tag) = split_reference(target);
        if target.contains('@') || repo.is_empty() {
            return Err(Error::invalid(
                format!("tag of image {source}"),
                format!("the target {target:?} must be repo[:tag] without a digest"),
            ));
        }
        let options = TagImageOptions {
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
        };
        match self.docker().tag_image(source, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Err(Error::ImageNotFound {
                image: source.into(),
                reason: format!("there is nothing to tag as {target}"),
            }),
            Err(e) => Err(Error::engine("tag", format!("image {source} as {target}"), e)),
        }
    }

    /// Removes a local image reference: a tag is untagged (the image goes when
    /// its last tag does), an id removes the image. Forced, so a stopped
    /// container using it does not block. A missing image is
    /// [`Error::ImageNotFound`].
    ///
    /// ```no_run
    /// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
    /// engine.remove_image("127.0.0.1:5000/busybox:1").await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove_image(&self, reference: &str) -> Result<()> {
        let options = RemoveImageOptions {
            force: true,
            noprune: false,
            ..Default::default()
        };
        match self.docker().remove_image(reference, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Err(Error::ImageNotFound {
                image: reference.into(),
                reason: "the engine has no such image to remove".into(),
            }),
            Err(e) => Err(Error::engine("remove", format!("image {reference}"), e)),
        }
    }

    /// The id of a local image, `None` when the engine lacks it.
    pub(crate) async fn local_image_id(&self, reference: &str) -> Result<Option<String>> {
        match self.docker().inspect_image(reference).await {
            Ok(image) => Ok(Some(image.id.unwrap_or_default())),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(Error::engine("inspect", format!("image {reference}"), e)),
        }
    }
}

/// The image's creation time as the engine wrote it (RFC 3339). bollard's
/// type for it depends on which of its optional features the user's build
/// turned on (`time`, `chrono`, or a plain string), so it is read through the
/// field's own serialisation, which is RFC 3339 text in every case.
fn created_text(image: &bollard::models::ImageInspect) -> String {
    serde_json::to_value(image)
        .ok()
        .and_then(|v| v.get("Created").and_then(|c| c.as_str()).map(str::to_string))
        .unwrap_or_default()
}
