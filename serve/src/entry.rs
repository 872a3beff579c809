//! One container of the service's, and what replies say about it.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

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
    let started = parse_rfc3339(started_at?)?;
    SystemTime::now()
        .duration_since(started)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// The UTC instants the engine writes, to the microsecond.
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let (date, time) = text.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    let micros: u64 = format!("{:0<6}", &frac[..frac.len().min(6)]).parse().ok()?;
    // Days from the civil date (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + min * 60 + s;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_instants_parse_back() {
        let at = parse_rfc3339("2026-12-02T20:16:50.123456789Z").unwrap();
        assert_eq!(timestamp(at), "2026-12-02T20:16:50.123Z");
        assert_eq!(
            timestamp(parse_rfc3339("2000-02-29T00:00:00Z").unwrap()),
            "2000-02-29T00:00:00.000Z"
        );
        assert!(parse_rfc3339("0001-01-01T00:00:00Z").is_none());
        assert!(parse_rfc3339("garbage").is_none());
    }
}
