//! The one removal policy, for every kind of engine object: already gone (404) is
//! done, "in use" is retried for a bounded time (a container that held it may
//! still be leaving), anything else is the engine's answer.

use std::fmt;
use std::time::{Duration, Instant};

use bollard::query_parameters::{RemoveContainerOptions, RemoveImageOptions, RemoveVolumeOptions};
use bollard::Docker;

use crate::error::status_of;

/// The kinds of engine objects dockhand manages.
///
/// ```
/// assert_eq!(dockhand::ObjectKind::Volume.to_string(), "volume");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A container.
    Container,
    /// A network.
    Network,
    /// A volume.
    Volume,
    /// An image.
    Image,
}

impl ObjectKind {
    /// Every kind, in removal order: containers first, since they hold the rest.
    pub const ALL: [ObjectKind; 4] = [
        ObjectKind::Container,
        ObjectKind::Network,
        ObjectKind::Volume,
        ObjectKind::Image,
    ];
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Container => "container",
            ObjectKind::Network => "network",
            ObjectKind::Volume => "volume",
            ObjectKind::Image => "image",
        })
    }
}

/// How long a removal waits for an object to stop being in use.
const IN_USE_PATIENCE: Duration = Duration::from_secs(10);

/// How long background cleanup keeps trying while the engine cannot be
/// reached (restarting, or a proxy in front of it cut for a moment).
pub(crate) const ENGINE_PATIENCE: Duration = Duration::from_secs(30);

/// True when the engine was not reached at all (no socket, refused, reset,
/// timed out), as opposed to an answer from it.
pub(crate) fn unreachable(err: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    matches!(
        err,
        E::IOError { .. }
            | E::HyperResponseError { .. }
            | E::HyperLegacyError { .. }
            | E::SocketNotFoundError(_)
            | E::RequestTimeoutError
    )
}

/// [`remove_object`] that waits out an unreachable engine for up to
/// [`ENGINE_PATIENCE`]: what background cleanup uses.
pub(crate) async fn remove_patiently(
    docker: &Docker,
    kind: ObjectKind,
    id: &str,
) -> Result<(), bollard::errors::Error> {
    let deadline = Instant::now() + ENGINE_PATIENCE;
    loop {
        match remove_object(docker, kind, id).await {
            Err(err) if unreachable(&err) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => return other,
        }
    }
}

/// Removes one object (`id`: for volumes, the name). Containers go forced, with
/// their anonymous volumes; images forced. Returns when it is gone.
pub(crate) async fn remove_object(
    docker: &Docker,
    kind: ObjectKind,
    id: &str,
) -> Result<(), bollard::errors::Error> {
    match kind {
        ObjectKind::Container => {
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            match docker.remove_container(id, Some(options)).await {
                // 409: another removal of it is under way, which will finish it.
                Err(err) if status_of(&err) == Some(409) && removal_in_progress(&err) => Ok(()),
                other => done_if_gone(other),
            }
        }
        ObjectKind::Network => retry_while_in_use(|| docker.remove_network(id)).await,
        ObjectKind::Volume => {
            retry_while_in_use(|| docker.remove_volume(id, None::<RemoveVolumeOptions>)).await
        }
        ObjectKind::Image => remove_image(docker, id).await,
    }
}

fn done_if_gone(result: Result<(), bollard::errors::Error>) -> Result<(), bollard::errors::Error> {
    match result {
        Err(err) if status_of(&err) == Some(404) => Ok(()),
        other => other,
    }
}

async fn remove_image(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    let remove = |force: bool| {
        let options = RemoveImageOptions {
            force,
            ..Default::default()
        };
        async move { docker.remove_image(id, Some(options), None).await.map(|_| ()) }
    };
    // Concurrent deletes of one image (two sweeps) can both answer success while
    // it stays, and a forced delete while a container being removed still uses
    // it only untags it: check, and go again soon (the container goes within
    // tens of milliseconds).
    let mut pause = Duration::from_millis(25);
    for _ in 0..8 {
        // Unforced first: Podman's force also removes the containers that use
        // the image, running ones included. Forced only where the engine asks
        // for it (several tags; on Docker a container using it, which force
        // keeps, and refuses still while it runs).
        retry_while_in_use(|| async {
            match remove(false).await {
                Err(err) if must_be_forced(&err) => remove(true).await,
                other => other,
            }
        })
        .await?;
        match docker.inspect_image(id).await {
            Err(e) if status_of(&e) == Some(404) => return Ok(()),
            _ => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(400));
            }
        }
    }
    Ok(())
}

async fn retry_while_in_use<F, Fut>(mut remove: F) -> Result<(), bollard::errors::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), bollard::errors::Error>>,
{
    let mut pause = Duration::from_millis(50);
    let deadline = Instant::now() + IN_USE_PATIENCE;
    loop {
        match done_if_gone(remove().await) {
            Err(err) if in_use(&err) && Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// Docker: "(must be forced) - image is referenced in multiple
/// repositories", "(must force) - container ... is using its referenced
/// image" (forced, Docker still refuses a running container's image);
/// Podman: "by ID with more than one tag (...): please force removal".
fn must_be_forced(err: &bollard::errors::Error) -> bool {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            message.contains("must be forced")
                || message.contains("(must force)")
                || message.contains("please force removal")
        }
        _ => false,
    }
}

fn in_use(err: &bollard::errors::Error) -> bool {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, message } => {
            matches!(status_code, 403 | 409)
                || message.contains("in use")
                || message.contains("active endpoints")
        }
        _ => false,
    }
}

fn removal_in_progress(err: &bollard::errors::Error) -> bool {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            message.contains("already in progress")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status_code: u16, message: &str) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: message.into(),
        }
    }

    #[test]
    fn gone_is_done_and_in_use_is_recognised() {
        assert!(done_if_gone(Err(answer(404, "No such network"))).is_ok());
        assert!(done_if_gone(Err(answer(500, "boom"))).is_err());
        assert!(in_use(&answer(409, "volume is in use")));
        assert!(in_use(&answer(
            403,
            "error while removing network: network x has active endpoints"
        )));
        assert!(!in_use(&answer(500, "boom")));
        assert!(removal_in_progress(&answer(
            409,
            "removal of container x is already in progress"
        )));
    }

    #[test]
    fn kinds_in_removal_order() {
        assert_eq!(ObjectKind::ALL[0], ObjectKind::Container);
        assert_eq!(ObjectKind::Image.to_string(), "image");
    }
}
