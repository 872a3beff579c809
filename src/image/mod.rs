//! Building images from in-memory contexts.

mod auth;
mod context;
mod ignore;
mod import;
mod reference;
mod registry;
mod store;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bollard::query_parameters::{BuildImageOptions, ListImagesOptions, TagImageOptions};
use futures_util::StreamExt;
use once_cell::sync::Lazy;
use tokio::sync::OnceCell;

pub use auth::RegistryAuth;
pub use context::BuildContext;
pub(crate) use reference::familiar;
pub use registry::{PullOptions, PullPolicy, Pulled};
pub use store::ImageInfo;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::labels;
use crate::owned::{Hold, Owned};
use crate::remove::{remove_object, ObjectKind};
use reference::{same_name, split_reference};

/// How many lines of build output a failure carries.
const FAILURE_LINES: usize = 50;

/// Builds in flight in this process, by content hash: concurrent builds of one
/// context wait for the first instead of building again.
static IN_FLIGHT: Lazy<Mutex<HashMap<String, Arc<OnceCell<String>>>>> = Lazy::new(Default::default);

/// A built image. Owned by the process that built it and removed when the guard
/// drops, unless it was built [`cached`](BuildContext::cached) or is
/// [`keep`](Image::keep)-ed.
///
/// ```no_run
/// # async fn demo() -> dockhand::Result<()> {
/// let image = dockhand::BuildContext::new("FROM fixtures/busybox:latest\nCMD [\"echo\", \"hi\"]\n")
///     .build("example/hi:latest")
///     .await?;
/// let c = dockhand::Container::builder(image.tag()).start().await?;
/// # Ok(()) }
/// ```
pub struct Image {
    /// Owned (removed with the guard) unless the build was cached.
    owned: Option<Hold>,
    engine: Engine,
    id: String,
    tag: String,
    from_cache: bool,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("tag", &self.tag)
            .field("id", &self.id)
            .field("from_cache", &self.from_cache)
            .finish()
    }
}

impl Image {
    /// The image id (`sha256:...`).
    ///
    /// ```no_run
    /// # fn demo(i: &dockhand::Image) { assert!(i.id().starts_with("sha256:")); }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tag it was built as; use it as a container's image.
    ///
    /// ```no_run
    /// # fn demo(i: &dockhand::Image) { let b = dockhand::Container::builder(i.tag()); }
    /// ```
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// True when the content-hash cache found it and nothing was built.
    ///
    /// ```no_run
    /// # fn demo(i: &dockhand::Image) { println!("cache hit: {}", i.from_cache()); }
    /// ```
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// Leaves the image in the engine; the watcher and the signal cleanup leave
    /// it too. Returns its tag.
    ///
    /// ```no_run
    /// # fn demo(i: dockhand::Image) { let tag = i.keep(); }
    /// ```
    pub fn keep(self) -> String {
        if let Some(owned) = &self.owned {
            owned.keep();
        }
        self.tag
    }

    /// Removes the image now (forced) and reports errors.
    ///
    /// ```no_run
    /// # async fn demo(i: dockhand::Image) -> dockhand::Result<()> {
    /// i.remove().await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove(self) -> Result<()> {
        match &self.owned {
            Some(owned) => owned.remove().await,
            None => remove_object(self.engine.docker(), ObjectKind::Image, &self.id)
                .await
                .map_err(|e| Error::engine("remove", format!("image {}", self.tag), e)),
        }
    }
}

impl BuildContext {
    /// Builds the context into an image tagged `tag`. Build output goes to
    /// `tracing` (target `dockhand::image`), one event per line; a failing step is
    /// an [`Error::BuildFailed`] with the step and the last 50 lines of output.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let image = dockhand::BuildContext::new("FROM scratch\nCOPY hello /hello\n")
    ///     .file("hello", b"hi\n".to_vec(), 0o644)
    ///     .build("example/hello:latest")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn build(&self, tag: &str) -> Result<Image> {
        let engine = Engine::connect().await?;
        self.build_on(&engine, tag).await
    }

    /// [`build`](Self::build) on a given engine.
    ///
    /// ```no_run
    /// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
    /// let image = dockhand::BuildContext::new("FROM scratch\n").build_on(engine, "x:1").await;
    /// # Ok(()) }
    /// ```
    pub async fn build_on(&self, engine: &Engine, tag: &str) -> Result<Image> {
        if tag.trim().is_empty() || tag.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "image build",
                format!("the tag {tag:?} is empty or has white space"),
            ));
        }
        let tar = self.to_tar()?;
        let resource = format!("image {tag}");
        if !self.cached {
            let mut labels = labels::stamp(&resource, &self.labels)?;
            // An image inherits its base's labels: one built on a cached build
            // must not look like that build to the cache, nor like a fixture.
            labels.insert(labels::CONTEXT_HASH.into(), String::new());
            labels.insert(labels::PERSISTENT.into(), String::new());
            let engine = crate::owned::engine_for(Some(engine.clone())).await?;
            let id = self.run_build(&engine, tag, tar, labels).await?;
            let owned = Owned::new(
                engine.clone(),
                ObjectKind::Image,
                id.clone(),
                tag.to_string(),
                Vec::new(),
            );
            return Ok(Image {
                owned: Some(owned),
                engine,
                id,
                tag: tag.to_string(),
                from_cache: false,
            });
        }
        if self.labels.keys().any(|k| k.starts_with(labels::PREFIX)) {
            return Err(Error::invalid(
                resource,
                "labels starting with dockhand. are reserved",
            ));
        }
        let mut bases = Vec::new();
        for base in self.base_images() {
            let id = engine
                .local_image_id(&base)
                .await?
                .unwrap_or_else(|| "absent".into());
            bases.push(format!("{base}={id}"));
        }
        let hash = self.content_hash(&tar, tag, &bases);
        let slot = IN_FLIGHT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(hash.clone())
            .or_default()
            .clone();
        let mut built_here = false;
        let id = slot
            .get_or_try_init(|| async {
                if let Some(id) = find_cached(engine, &hash, tag).await? {
                    return Ok::<_, Error>(id);
                }
                built_here = true;
                let mut labels = self.labels.clone();
                labels.insert(labels::PERSISTENT.into(), "true".into());
                labels.insert(labels::CONTEXT_HASH.into(), hash.clone());
                self.run_build(engine, tag, tar, labels).await
            })
            .await?
            .clone();
        Ok(Image {
            owned: None,
            engine: engine.clone(),
            id,
            tag: tag.to_string(),
            from_cache: !built_here,
        })
    }

    /// Credentials for base images: every login in the docker config, then the
    /// context's own.
    fn build_credentials(&self) -> Option<HashMap<String, bollard::auth::DockerCredentials>> {
        let mut auths = RegistryAuth::all_from_docker_config();
        auths.extend(self.registry_auths.clone());
        (!auths.is_empty()).then(|| {
            auths
                .iter()
                .map(|(registry, auth)| {
                    // The engine keys Docker Hub by its old index address.
                    let key = match registry.as_str() {
                        "docker.io" => "https://index.docker.io/v1/".to_string(),
                        other => other.to_string(),
                    };
                    (key, auth.credentials(registry))
                })
                .collect()
        })
    }

    /// One build, again (up to twice more) where Podman's image store lost a
    /// layer or image to a removal made while it built ("layer not known"):
    /// the same build then succeeds, and no step of the user's failed.
    async fn run_build(
        &self,
        engine: &Engine,
        tag: &str,
        tar: Vec<u8>,
        labels: HashMap<String, String>,
    ) -> Result<String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .run_build_once(engine, tag, tar.clone(), labels.clone())
                .await
            {
                Err(Error::BuildFailed { message, .. })
                    if attempt < 3
                        && engine.kind() == crate::EngineKind::Podman
                        && (message.contains("layer not known") || message.contains("image not known")) =>
                {
                    tracing::debug!(target: "dockhand::image", image = tag, "{message}; building again");
                }
                other => return other,
            }
        }
    }

    async fn run_build_once(
        &self,
        engine: &Engine,
        tag: &str,
        tar: Vec<u8>,
        labels: HashMap<String, String>,
    ) -> Result<String> {
        let options = BuildImageOptions {
            t: Some(tag.to_string()),
            dockerfile: self.dockerfile_name.clone(),
            labels: Some(labels),
            buildargs: (!self.build_args.is_empty()).then(|| {
                self.build_args
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
            target: self.target.clone().unwrap_or_default(),
            nocache: self.no_cache,
            pull: self.pull.then(|| "true".to_string()),
            rm: true,
            forcerm: true,
            ..Default::default()
        };
        let mut output = engine.docker().build_image(
            options,
            self.build_credentials(),
            Some(bollard::body_full(tar.into())),
        );
        let mut last_lines: VecDeque<String> = VecDeque::new();
        let mut step: Option<String> = None;
        let fail = |message: String, step: Option<String>, lines: &VecDeque<String>| Error::BuildFailed {
            image: tag.to_string(),
            step,
            exit_code: step_exit_code(&message),
            message,
            output: lines.iter().cloned().collect(),
        };
        while let Some(event) = output.next().await {
            let event = match event {
                Ok(event) => event,
                // The engine's own words, without bollard's wrapper.
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(fail(error, step, &last_lines))
                }
                Err(err) => return Err(fail(err.to_string(), step, &last_lines)),
            };
            if let Some(text) = event.stream.as_deref() {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    // Docker says "Step 2/3 : RUN ...", Podman "STEP 2/3: RUN ...".
                    if line.starts_with("Step ") || line.starts_with("STEP ") {
                        step = Some(line.to_string());
                    }
                    tracing::debug!(target: "dockhand::image", image = tag, "{line}");
                    if last_lines.len() == FAILURE_LINES {
                        last_lines.pop_front();
                    }
                    last_lines.push_back(line.to_string());
                }
            }
            if let Some(detail) = event.error_detail {
                let message = detail.message.unwrap_or_else(|| "unknown build error".into());
                return Err(fail(message, step, &last_lines));
            }
        }
        // The id is asked of the engine by tag rather than read from the
        // stream's `aux`, whose type changes with bollard's `buildkit` feature.
        engine
            .docker()
            .inspect_image(tag)
            .await
            .map_err(|e| Error::engine("inspect built image", tag, e))
            .map(|i| i.id.unwrap_or_default())
    }
}

/// The exit code in a failed build step's message: Docker's "returned a
/// non-zero code: 3", Podman's "exit status 3".
fn step_exit_code(message: &str) -> Option<i64> {
    // Podman's own helpers end their failures with "exit status N" too (a
    // layer that did not fit on its disk: "ApplyLayer ... exit status 1"):
    // only its runtime's words name the step's command.
    ["non-zero code: ", "while running runtime: exit status "]
        .iter()
        .find_map(|marker| {
            let (_, rest) = message.rsplit_once(marker)?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
}

/// The image a cached build made before, tagged as `tag` (tagged again if the
/// tag was moved or removed meanwhile).
async fn find_cached(engine: &Engine, hash: &str, tag: &str) -> Result<Option<String>> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={hash}", labels::CONTEXT_HASH)],
    )]);
    let options = ListImagesOptions {
        filters: Some(filters),
        ..Default::default()
    };
    let found = crate::podman::list_images(engine.docker(), options)
        .await
        .map_err(|e| Error::engine("look up cached build of", format!("image {tag}"), e))?;
    let has_tag = |i: &bollard::models::ImageSummary| i.repo_tags.iter().any(|t| same_name(t, tag));
    // Images built on this one by other tools inherit its label too: prefer
    // the one that still carries the tag, and among the rest the oldest (a
    // derived image is always younger than its base).
    let image = match found.iter().position(has_tag) {
        Some(at) => found.into_iter().nth(at),
        None => found.into_iter().min_by_key(|i| i.created),
    };
    let Some(image) = image else {
        return Ok(None);
    };
    if !has_tag(&image) {
        let (repo, version) = split_reference(tag);
        engine
            .docker()
            .tag_image(
                &image.id,
                Some(TagImageOptions {
                    repo: Some(repo.to_string()),
                    tag: Some(version.to_string()),
                }),
            )
            .await
            .map_err(|e| Error::engine("tag cached build as", format!("image {tag}"), e))?;
    }
    Ok(Some(image.id))
}

#[cfg(test)]
mod tests {
    use super::step_exit_code;

    #[test]
    fn step_exit_code_is_read_from_either_engine() {
        let docker = "The command '/bin/sh -c exit 3' returned a non-zero code: 3";
        let podman = "building at STEP \"RUN exit 3\": while running runtime: exit status 3";
        assert_eq!(step_exit_code(docker), Some(3));
        assert_eq!(step_exit_code(podman), Some(3));
        assert_eq!(step_exit_code("no such file"), None);
        let store = "adding layer with blob \"sha256:1c\": ApplyLayer stdout:  stderr: write /fill: no space left on device exit status 1";
        assert_eq!(
            step_exit_code(store),
            None,
            "the engine's store failed, not the step"
        );
    }
}
