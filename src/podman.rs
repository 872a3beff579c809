//! What Podman's Docker-compatible API lacks or says differently, asked of
//! Podman's own (libpod) API over the same connection.
//!
//! bollard has no call for an arbitrary path, so a clone of the client rewrites
//! the path of a plain GET (`/_ping`) on its way out: the transport (unix
//! socket, TCP, TLS), timeouts and error decoding stay bollard's own.

use std::time::Duration;

use bollard::models::{ContainerInspectResponse, HealthStatusEnum, ImageSummary};
use bollard::query_parameters::ListImagesOptions;
use bollard::Docker;
use http::uri::{PathAndQuery, Uri};

/// The libpod API version asked for: the oldest Podman 4 serves it, and every
/// later Podman still answers it.
const LIBPOD: &str = "/v4.0.0/libpod";

/// A GET of `path` (absolute, with any query) on the engine, its body as text.
async fn get(docker: &Docker, path: &str) -> Result<String, bollard::errors::Error> {
    let wanted: PathAndQuery = path.parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{path:?} is not a request path"),
        )
    })?;
    let client = docker.clone().with_request_modifier(move |mut request| {
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = Some(wanted.clone());
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
        request
    });
    client.ping().await
}

/// A client whose calls ask Podman for what it has instead of a stream
/// (`stream=false`): the events call then ends once its past is told.
pub(crate) fn not_streaming(docker: &Docker) -> Docker {
    docker.clone().with_request_modifier(|mut request| {
        let mut parts = request.uri().clone().into_parts();
        let with = parts.path_and_query.as_ref().map(|pq| match pq.query() {
            Some(query) => format!("{}?{query}&stream=false", pq.path()),
            None => format!("{}?stream=false", pq.path()),
        });
        if let Some(pq) = with.and_then(|w| w.parse::<PathAndQuery>().ok()) {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
        request
    })
}

/// Runs the container's healthcheck once, as Podman's systemd timer would
/// (there is none without systemd, so on such hosts it never runs by itself),
/// and returns that one run's result. The container's status, which counts
/// retries and the start period, is in its inspect.
pub(crate) async fn run_healthcheck(docker: &Docker, id: &str) -> Result<HealthStatusEnum, String> {
    let body = get(docker, &format!("{LIBPOD}/containers/{id}/healthcheck"))
        .await
        .map_err(|e| format!("Podman's healthcheck run failed: {e}"))?;
    let answer: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| format!("Podman's healthcheck answer is not JSON ({e}): {body}"))?;
    match answer.get("Status").and_then(|s| s.as_str()) {
        Some("healthy") => Ok(HealthStatusEnum::HEALTHY),
        Some("unhealthy") => Ok(HealthStatusEnum::UNHEALTHY),
        Some("starting") => Ok(HealthStatusEnum::STARTING),
        other => Err(format!(
            "Podman's healthcheck answer has no known Status ({other:?}): {body}"
        )),
    }
}

/// The interval of the container's healthcheck (Podman's default is 30 s).
pub(crate) fn health_interval(inspected: &ContainerInspectResponse) -> Duration {
    inspected
        .config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.interval)
        .filter(|ns| *ns > 0)
        .map(|ns| Duration::from_nanos(ns as u64))
        .unwrap_or(Duration::from_secs(30))
}

/// A container inspected, as bollard reads it or, where bollard's strict enums
/// refuse the answer, leniently: Podman reports states Docker does not have
/// (`stopped`, `configured`, `initialized`).
pub(crate) async fn inspect_container(
    docker: &Docker,
    id: &str,
) -> Result<ContainerInspectResponse, bollard::errors::Error> {
    match docker.inspect_container(id, None).await {
        Err(err) if is_decode_error(&err) => inspect_leniently(docker, id).await,
        answer => answer,
    }
}

async fn inspect_leniently(
    docker: &Docker,
    id: &str,
) -> Result<ContainerInspectResponse, bollard::errors::Error> {
    let body = get(docker, &format!("/containers/{id}/json")).await?;
    let mut value: serde_json::Value = serde_json::from_str(&body).map_err(bollard::errors::Error::from)?;
    if let Some(status) = value.pointer_mut("/State/Status")
        && let Some(docker_word) = status.as_str().and_then(docker_status)
    {
        *status = serde_json::Value::from(docker_word);
    }
    serde_json::from_value(value).map_err(bollard::errors::Error::from)
}

/// The engine's images, listed again when Podman fails the whole list
/// because one image went while it listed ("image not known"). While other
/// processes build and remove images that can happen several times in a row
/// (seen: three), so it is asked for up to twenty times, for about four
/// seconds in all, before the error stands.
pub(crate) async fn list_images(
    docker: &Docker,
    options: ListImagesOptions,
) -> Result<Vec<ImageSummary>, bollard::errors::Error> {
    const ATTEMPTS: u64 = 20;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match docker.list_images(Some(options.clone())).await {
            Err(err) if attempt < ATTEMPTS && err.to_string().contains("image not known") => {
                tokio::time::sleep(Duration::from_millis((25 * attempt).min(250))).await;
            }
            other => return other,
        }
    }
}

/// Docker's word for one of Podman's own container states.
fn docker_status(podman: &str) -> Option<&'static str> {
    match podman {
        "stopped" => Some("exited"),
        "configured" | "initialized" => Some("created"),
        "stopping" => Some("stopping"),
        _ => None,
    }
}

/// Whether a call failed only because bollard could not read the answer.
fn is_decode_error(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::JsonDataError { .. } | bollard::errors::Error::JsonSerdeError { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_states_map_to_docker_words() {
        assert_eq!(docker_status("stopped"), Some("exited"));
        assert_eq!(docker_status("configured"), Some("created"));
        assert_eq!(docker_status("running"), None);
    }

    #[test]
    fn interval_defaults_to_podmans() {
        let none = ContainerInspectResponse::default();
        assert_eq!(health_interval(&none), Duration::from_secs(30));
    }
}
