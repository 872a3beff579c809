//! Pulling and pushing: a pull policy, credentials, progress to `tracing`,
//! one pull per image at a time in a process, and failures sorted into typed
//! errors (auth, unreachable, not found, stalled).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{CreateImageOptions, PushImageOptions};
use futures_util::{Stream, StreamExt};
use once_cell::sync::Lazy;
use tokio::sync::OnceCell;

use super::auth::RegistryAuth;
use super::reference::{registry_of, split_reference};
use crate::engine::Engine;
use crate::error::{status_of, Error, Result};

/// When a container's image is pulled.
///
/// ```
/// use dockhand::PullPolicy;
/// assert_eq!(PullPolicy::default(), PullPolicy::Missing);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only when the engine does not have the image.
    #[default]
    Missing,
    /// Pull every time, to get the newest image behind a moving tag.
    Always,
    /// Never pull: a missing image is an [`Error::ImageNotFound`].
    Never,
}

/// How [`Engine::pull_image`] pulls.
///
/// ```
/// use dockhand::{PullOptions, PullPolicy, RegistryAuth};
/// let options = PullOptions::new()
///     .policy(PullPolicy::Always)
///     .auth(RegistryAuth::basic("ci", "token"))
///     .stall_limit(std::time::Duration::from_secs(30));
/// ```
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub(crate) policy: PullPolicy,
    pub(crate) auth: Option<RegistryAuth>,
    pub(crate) stall_limit: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            policy: PullPolicy::Missing,
            auth: None,
            stall_limit: Duration::from_secs(120),
        }
    }
}

impl PullOptions {
    /// Policy [`Missing`](PullPolicy::Missing), credentials from the Docker
    /// config, a two-minute stall limit.
    ///
    /// ```
    /// let options = dockhand::PullOptions::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// When to pull.
    ///
    /// ```
    /// let options = dockhand::PullOptions::new().policy(dockhand::PullPolicy::Never);
    /// ```
    pub fn policy(mut self, policy: PullPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Credentials; without them those `docker login` stored are used.
    ///
    /// ```
    /// let options = dockhand::PullOptions::new().auth(dockhand::RegistryAuth::basic("u", "p"));
    /// ```
    pub fn auth(mut self, auth: RegistryAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Gives up when the engine reports no progress for this long, so a
    /// registry that accepts a connection and then says nothing cannot hang a
    /// test. A slow but moving pull is not cut off.
    ///
    /// ```
    /// let options = dockhand::PullOptions::new().stall_limit(std::time::Duration::from_secs(30));
    /// ```
    pub fn stall_limit(mut self, limit: Duration) -> Self {
        self.stall_limit = limit;
        self
    }
}

/// What [`Engine::pull_image`] did.
///
/// ```no_run
/// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
/// let pulled = engine.pull_image("redis:7-alpine", &dockhand::PullOptions::new()).await?;
/// println!("{} (fetched: {})", pulled.id, pulled.fetched);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pulled {
    /// The image id (`sha256:...`).
    pub id: String,
    /// False when the policy found the image present and nothing was fetched.
    pub fetched: bool,
}

/// A failed pull, kept cloneable so every caller joined to one pull gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    NotFound(String),
    Auth(String),
    Unreachable(String),
    Stalled(Duration),
    Other(String),
}

impl Failure {
    /// Sorts an engine message (the engine relays the registry's words).
    fn classify(status: Option<u16>, message: String) -> Failure {
        let lower = message.to_lowercase();
        let any = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
        if matches!(status, Some(401 | 403))
            || any(&[
                "unauthorized",
                "authentication required",
                "no basic auth credentials",
                "access denied",
                "denied:",
                "401 unauthorized",
                "incorrect username or password",
            ])
        {
            Failure::Auth(message)
        } else if any(&[
            "connection refused",
            "no such host",
            "i/o timeout",
            "network is unreachable",
            "no route to host",
            "tls handshake",
            "x509:",
            "server gave http response to https client",
            "context deadline exceeded",
        ]) {
            Failure::Unreachable(message)
        } else if status == Some(404)
            || any(&["manifest unknown", "not found", "does not exist", "name unknown"])
        {
            Failure::NotFound(message)
        } else {
            Failure::Other(message)
        }
    }

    fn into_error(self, operation: &'static str, image: &str) -> Error {
        let registry = registry_of(image).to_string();
        match self {
            Failure::Auth(reason) => Error::RegistryAuth {
                operation,
                registry,
                image: image.into(),
                reason,
            },
            Failure::Unreachable(reason) => Error::RegistryUnreachable {
                operation,
                registry,
                image: image.into(),
                reason,
            },
            Failure::Stalled(after) => Error::Timeout {
                operation: if operation == "push" {
                    "push (no progress) of"
                } else {
                    "pull (no progress) of"
                },
                resource: format!("image {image} from registry {registry}"),
                after,
            },
            Failure::NotFound(reason) if operation == "pull" => Error::ImageNotFound {
                image: image.into(),
                reason: format!("registry {registry}: {reason}"),
            },
            Failure::NotFound(reason) | Failure::Other(reason) => Error::Registry {
                operation,
                registry: registry.to_string(),
                image: image.into(),
                reason,
            },
        }
    }
}

type Outcome = std::result::Result<(), Failure>;

/// Pulls in flight in this process, by engine and reference: a second caller
/// waits for the first one's pull instead of starting its own.
static IN_FLIGHT: Lazy<Mutex<HashMap<String, Arc<OnceCell<Outcome>>>>> = Lazy::new(Default::default);

impl Engine {
    /// Pulls an image by the policy: with [`PullPolicy::Missing`] (the default)
    /// only when the engine lacks it. Progress goes to `tracing` (target
    /// `dockhand::image`). Callers pulling one reference at the same time in one
    /// process share one pull. Failures are typed: [`Error::RegistryAuth`],
    /// [`Error::RegistryUnreachable`], [`Error::ImageNotFound`], or
    /// [`Error::Timeout`] when the engine stops reporting progress.
    ///
    /// ```no_run
    /// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
    /// use dockhand::{PullOptions, PullPolicy, RegistryAuth};
    /// let options = PullOptions::new()
    ///     .policy(PullPolicy::Always)
    ///     .auth(RegistryAuth::basic("ci", "token"));
    /// engine.pull_image("127.0.0.1:5000/app:1", &options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn pull_image(&self, reference: &str, options: &PullOptions) -> Result<Pulled> {
        check_reference(reference, "pull")?;
        if options.policy != PullPolicy::Always {
            if let Some(id) = self.local_image_id(reference).await? {
                return Ok(Pulled { id, fetched: false });
            }
            if options.policy == PullPolicy::Never {
                return Err(Error::ImageNotFound {
                    image: reference.into(),
                    reason: "it is not present and the pull policy is Never".into(),
                });
            }
        }
        self.pull_shared(reference, options).await?;
        let id = self
            .local_image_id(reference)
            .await?
            .ok_or_else(|| Error::ImageNotFound {
                image: reference.into(),
                reason: "the engine reported the pull done but does not have the image".into(),
            })?;
        Ok(Pulled { id, fetched: true })
    }

    /// Pushes a local image to its registry (the reference's first component),
    /// with these credentials or those `docker login` stored. Progress goes to
    /// `tracing`; failures are typed as for [`pull_image`](Self::pull_image).
    ///
    /// ```no_run
    /// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
    /// engine.tag_image("fixtures/busybox:latest", "127.0.0.1:5000/busybox:1").await?;
    /// engine.push_image("127.0.0.1:5000/busybox:1", Some(&dockhand::RegistryAuth::basic("u", "p"))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn push_image(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<()> {
        check_reference(reference, "push")?;
        if self.local_image_id(reference).await?.is_none() {
            return Err(Error::ImageNotFound {
                image: reference.into(),
                reason: "there is no local image to push; build or tag it first".into(),
            });
        }
        let (repo, tag) = split_reference(reference);
        let registry = registry_of(reference);
        // The engine insists on an auth header for pushes, even an empty one.
        let credentials = resolve(auth, registry).unwrap_or_default();
        let options = PushImageOptions {
            tag: (!tag.is_empty()).then(|| tag.to_string()),
            ..Default::default()
        };
        let stream = self.docker().push_image(repo, Some(options), Some(credentials));
        let progress = stream.map(|item| {
            item.map(|info| Progress {
                status: info.status,
                layer: None,
                error: info.error_detail.and_then(|d| d.message),
            })
        });
        follow(progress, reference, "push", PullOptions::default().stall_limit)
            .await
            .map_err(|f| f.into_error("push", reference))
    }

    /// One pull of `reference` at a time per engine in this process.
    async fn pull_shared(&self, reference: &str, options: &PullOptions) -> Result<()> {
        let key = format!("{}\0{reference}", self.endpoint());
        let cell = IN_FLIGHT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let outcome = cell
            .get_or_init(|| async {
                // A caller that found the image missing may get here after
                // another caller's pull finished and was forgotten: look again
                // rather than pull twice.
                if options.policy != PullPolicy::Always
                    && matches!(self.local_image_id(reference).await, Ok(Some(_)))
                {
                    return Ok(());
                }
                self.fetch(reference, options).await
            })
            .await
            .clone();
        // Done: forget it, so a later pull (say with policy Always) pulls again.
        let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        if in_flight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            in_flight.remove(&key);
        }
        outcome.map_err(|f| f.into_error("pull", reference))
    }

    async fn fetch(&self, reference: &str, options: &PullOptions) -> Outcome {
        let (repo, tag) = split_reference(reference);
        let registry = registry_of(reference);
        let begun = Instant::now();
        tracing::info!(target: "dockhand::image", image = reference, registry, "pulling");
        let create = CreateImageOptions {
            from_image: Some(repo.to_string()),
            tag: (!tag.is_empty()).then(|| tag.to_string()),
            ..Default::default()
        };
        let credentials = resolve(options.auth.as_ref(), registry);
        let stream = self.docker().create_image(Some(create), None, credentials);
        let progress = stream.map(|item| {
            item.map(|info| Progress {
                status: info.status,
                layer: info.id,
                error: info.error_detail.and_then(|d| d.message),
            })
        });
        follow(progress, reference, "pull", options.stall_limit).await?;
        tracing::info!(
            target: "dockhand::image",
            image = reference,
            elapsed_ms = begun.elapsed().as_millis() as u64,
            "pulled"
        );
        Ok(())
    }
}

/// Explicit credentials, else those stored by `docker login`.
fn resolve(auth: Option<&RegistryAuth>, registry: &str) -> Option<DockerCredentials> {
    auth.cloned()
        .or_else(|| RegistryAuth::from_docker_config(registry))
        .map(|a| a.credentials(registry))
}

fn check_reference(reference: &str, operation: &str) -> Result<()> {
    if reference.trim().is_empty() || reference.chars().any(char::is_whitespace) {
        return Err(Error::invalid(
            format!("image {operation}"),
            format!("the image reference {reference:?} is empty or has white space"),
        ));
    }
    Ok(())
}

/// One progress message of a pull or push.
struct Progress {
    status: Option<String>,
    layer: Option<String>,
    error: Option<String>,
}

/// Drains a pull or push stream into `tracing`, failing on an error message
/// or when nothing arrives for `stall_limit`.
async fn follow(
    mut stream: impl Stream<Item = std::result::Result<Progress, bollard::errors::Error>> + Unpin,
    image: &str,
    operation: &str,
    stall_limit: Duration,
) -> Outcome {
    loop {
        let item = match tokio::time::timeout(stall_limit, stream.next()).await {
            Err(_) => return Err(Failure::Stalled(stall_limit)),
            Ok(None) => return Ok(()),
            Ok(Some(item)) => item,
        };
        let progress = item.map_err(|e| Failure::classify(status_of(&e), server_message(e)))?;
        if let Some(message) = progress.error {
            return Err(Failure::classify(None, message));
        }
        let status = progress.status.unwrap_or_default();
        let layer = progress.layer.unwrap_or_default();
        // Byte counts arrive many times a second; they are only worth a trace.
        if status.starts_with("Downloading")
            || status.starts_with("Extracting")
            || status.starts_with("Pushing")
        {
            tracing::trace!(target: "dockhand::image", image, operation, layer, "{status}");
        } else {
            tracing::debug!(target: "dockhand::image", image, operation, layer, "{status}");
        }
    }
}

/// The engine's own words, without bollard's wrapping.
fn server_message(err: bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_messages_become_typed_failures() {
        let auth = Failure::classify(
            Some(500),
            "Head \"http://127.0.0.1:5000/v2/app/manifests/1\": no basic auth credentials".into(),
        );
        assert!(matches!(auth, Failure::Auth(_)));
        assert!(matches!(
            Failure::classify(None, "unauthorized: authentication required".into()),
            Failure::Auth(_)
        ));
        assert!(matches!(
            Failure::classify(
                Some(500),
                "Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused".into()
            ),
            Failure::Unreachable(_)
        ));
        assert!(matches!(
            Failure::classify(
                Some(500),
                "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host"
                    .into()
            ),
            Failure::Unreachable(_)
        ));
        assert!(matches!(
            Failure::classify(
                Some(404),
                "manifest for 127.0.0.1:5000/app:2 not found: manifest unknown".into()
            ),
            Failure::NotFound(_)
        ));
        assert!(matches!(
            Failure::classify(None, "disk full".into()),
            Failure::Other(_)
        ));
    }

    #[test]
    fn errors_name_the_image_and_the_registry() {
        let err = Failure::Unreachable("connection refused".into()).into_error("pull", "127.0.0.1:1/app:1");
        let text = err.to_string();
        assert!(
            text.contains("127.0.0.1:1/app:1") && text.contains("registry 127.0.0.1:1"),
            "{text}"
        );
        let err = Failure::NotFound("manifest unknown".into()).into_error("pull", "postgres:99");
        assert!(err.is_not_found());
        assert!(err.to_string().contains("registry docker.io"), "{err}");
        let err = Failure::Stalled(Duration::from_secs(5)).into_error("pull", "x:1");
        assert!(err.is_timeout());
        let err = Failure::Auth("denied".into()).into_error("push", "ghcr.io/o/app:1");
        assert!(err.is_auth());
        assert!(err.to_string().contains("docker login ghcr.io"), "{err}");
    }
}
