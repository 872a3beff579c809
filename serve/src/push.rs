//! What the service pushes to every client without being asked: the engine's
//! lifecycle events for every dockhand object, stats once a second to the
//! clients that watch a container, and a line for every operation.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use dockhand::{Engine, Event, Scope, Stats};
use futures_util::StreamExt;
use serde_json::{json, Value};
use socketioxide::SocketIo;

use crate::entry::Entry;
use crate::reply::timestamp;

/// The room of the clients that get the events of every dockhand object.
pub const EVERY_EVENT: &str = "events:all";
/// The room of the clients that get the events of the service's own containers only.
pub const OWN_EVENTS: &str = "events:service";

fn own_pid() -> String {
    std::process::id().to_string()
}

/// The room of the clients that watch a container's stats.
pub fn stats_room(id: &str) -> String {
    format!("stats:{id}")
}

/// Streams the engine's events about dockhand objects to the clients that
/// want them (every object, or the service's own), for as long as the service
/// runs (a dropped stream is asked for again).
pub fn feed(engine: Engine, io: SocketIo) {
    tokio::spawn(async move {
        loop {
            match engine.events().scope(Scope::Managed).stream() {
                Ok(mut events) => {
                    while let Some(event) = events.next().await {
                        match event {
                            Ok(event) => {
                                let json = event_json(&event);
                                let ours = event.attributes.get("dockhand.owner.pid") == Some(&own_pid());
                                let rooms: &[&str] = match ours {
                                    true => &[EVERY_EVENT, OWN_EVENTS],
                                    false => &[EVERY_EVENT],
                                };
                                if let Some(everyone) = io.of("/") {
                                    let _ = everyone.to(rooms.to_vec()).emit("container-event", &json).await;
                                }
                            }
                            Err(err) => {
                                tracing::warn!(%err, "the engine's event stream failed");
                                break;
                            }
                        }
                    }
                }
                Err(err) => tracing::warn!(%err, "could not follow the engine's events"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

fn event_json(event: &Event) -> Value {
    json!({
        "kind": event.kind.map(|k| k.to_string()),
        "action": event.action,
        "verb": event.verb(),
        "id": event.id,
        "name": event.name,
        "image": event.image,
        "exit_code": event.exit_code,
        "owner_pid": event.attributes.get("dockhand.owner.pid"),
        "time": timestamp(event.time),
        "pushed": timestamp(SystemTime::now()),
    })
}

/// Reads a running container's stats once a second: kept as its latest
/// reading and pushed to its room. Ends when the container stops; started
/// again by whatever starts it.
pub fn sample(io: &SocketIo, entry: &Arc<Entry>) {
    if entry.sampling.swap(true, Ordering::SeqCst) {
        return;
    }
    let (io, weak): (SocketIo, Weak<Entry>) = (io.clone(), Arc::downgrade(entry));
    let id = entry.container.id().to_string();
    let container = entry.container.name().to_string();
    tokio::spawn(async move {
        loop {
            let stream = match weak.upgrade() {
                Some(entry) => entry.container.stats_stream().await,
                None => return,
            };
            if let Ok(mut readings) = stream {
                while let Some(Ok(stats)) = readings.next().await {
                    let Some(entry) = weak.upgrade() else { return };
                    let reading = stats_json(&stats);
                    *entry.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(reading.clone());
                    drop(entry);
                    let message = json!({"id": id, "stats": reading, "time": timestamp(SystemTime::now())});
                    if let Some(everyone) = io.of("/") {
                        let _ = everyone.to(stats_room(&id)).emit("stats", &message).await;
                    }
                }
            }
            // Stopped, or restarted under the stream: go on while it runs. A
            // start that came while this one was ending finds it still
            // sampling, so the check is made again after letting go.
            let Some(entry) = weak.upgrade() else { return };
            if !running(&entry).await {
                *entry.latest.lock().unwrap_or_else(|e| e.into_inner()) = None;
                entry.sampling.store(false, Ordering::SeqCst);
                if !running(&entry).await || entry.sampling.swap(true, Ordering::SeqCst) {
                    tracing::debug!(%container, "stats sampling ended");
                    return;
                }
            }
            drop(entry);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

async fn running(entry: &Entry) -> bool {
    let inspect = entry.container.inspect().await.ok();
    inspect.and_then(|i| i.state?.running).unwrap_or(false)
}

fn stats_json(stats: &Stats) -> Value {
    json!({
        "cpu_percent": stats.cpu_percent,
        "memory_used": stats.memory_used,
        "memory_limit": stats.memory_limit,
        "memory_percent": stats.memory_percent(),
        "pids": stats.pids,
        "rx_bytes": stats.rx_bytes(),
        "tx_bytes": stats.tx_bytes(),
    })
}

/// A human-readable line for every operation, to every client.
pub async fn activity(io: &SocketIo, operation: &str, container: Option<&str>, line: String, ok: bool) {
    let message = json!({
        "time": timestamp(SystemTime::now()),
        "operation": operation,
        "container_id": container,
        "ok": ok,
        "line": line,
    });
    broadcast(io, "activity", &message).await;
}

/// To every client; nothing once the service has closed its namespace.
pub async fn broadcast(io: &SocketIo, event: &str, data: &Value) {
    if let Some(everyone) = io.of("/") {
        let _ = everyone.emit(event, data).await;
    }
}
