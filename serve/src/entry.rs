//! One container of the service's, and what replies say about it.

use std::sync::Mutex;
use std::time::SystemTime;

use dockhand::{Container, Port};
use serde_json::{json, Value};

use crate::reply::timestamp;

/// One container of the service's.
pub struct Entry {
    pub container: Container,
    pub image: String,
    pub ports: Vec<Port>,
    pub created: SystemTime,
    pub channel: bool,
    /// The log line that says it is ready again after each start.
    pub wait_log: Option<String>,
    /// The last stats reading, kept by its sampler (`push::sample`).
    pub latest: Mutex<Option<Value>>,
    /// Whether a sampler reads its stats now.
    pub sampling: std::sync::atomic::AtomicBool,
}

/// What `status`, `list` and every lifecycle reply say about a container.
pub async fn summary(
    entry: &Entry,
    inspect: Option<dockhand::bollard::models::ContainerInspectResponse>,
) -> Value {
    let c = &entry.container;
    let state = inspect.as_ref().and_then(|i| i.state.clone());
    let running = state.as_ref().and_then(|s| s.running).unwrap_or(false);
    let started_at = state.as_ref().and_then(|s| s.started_at.clone());
    let ports: serde_json::Map<String, Value> = entry
        .ports
        .iter()
        .filter_map(|p| c.host_port(*p).ok().map(|h| (p.to_string(), json!(h))))
        .collect();
    let mut out = json!({
        "id": c.id(),
        "name": c.name(),
        "image": entry.image,
        "state": state.as_ref().and_then(|s| s.status).map(|s| s.to_string()),
        "exit_code": state.as_ref().and_then(|s| s.exit_code),
        "health": state.as_ref().and_then(|s| s.health.as_ref()).and_then(|h| h.status).map(|s| s.to_string()),
        "started_at": started_at,
        "uptime_s": uptime(running, started_at.as_deref()),
        "created": timestamp(entry.created),
        "host": c.host(),
        "ports": ports,
    });
    if entry.channel {
        out["channel"] = match c.channel_status().await {
            Ok(s) => json!({
                "path": s.path,
                "exists": s.exists,
                "connected": s.accepts,
                "last_communication": s.last_answer.map(timestamp),
            }),
            Err(e) => json!({"error": e.to_string()}),
        };
    }
    if running {
        let latest = entry.latest.lock().unwrap_or_else(|e| e.into_inner()).clone();
        out["resources"] = latest.unwrap_or(Value::Null);
    }
    out
}

/// Seconds since the engine's `StartedAt` (`2026-12-02T20:16:50.123456789Z`).
fn uptime(running: bool, started_at: Option<&str>) -> Option<f64> {
    if !running {
        return None;
    }
    let started = dockhand::engine_time(started_at?)?;
    SystemTime::now()
        .duration_since(started)
        .ok()
        .map(|d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_instants_parse_back() {
        let at = dockhand::engine_time("2026-12-02T20:16:50.123456789Z").unwrap();
        assert_eq!(timestamp(at), "2026-12-02T20:16:50.123Z");
        assert_eq!(
            timestamp(dockhand::engine_time("2000-02-29T00:00:00Z").unwrap()),
            "2000-02-29T00:00:00.000Z"
        );
        assert!(dockhand::engine_time("0001-01-01T00:00:00Z").is_none());
        assert!(dockhand::engine_time("garbage").is_none());
    }
}
