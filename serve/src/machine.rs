//! The read-only view: every object that any dockhand process on this
//! machine owns in the engine, with its owner and whether that owner lives.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dockhand::{Engine, LogStream, ObjectKind, Scope};
use serde_json::{json, Value};

use crate::reply::{Failure, Reply};
use crate::requests;

/// How long a log read of another process's container may take.
const LOG_LIMIT: Duration = Duration::from_secs(5);

pub async fn objects(engine: &Engine, ours: &[String]) -> Reply {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut out = Vec::new();
    for kind in ObjectKind::ALL {
        let listed = engine
            .list(kind, Scope::Managed)
            .await
            .map_err(|e| Failure::from_error("machine", None, &e))?;
        for object in listed {
            out.push(json!({
                "kind": kind.to_string(),
                "id": object.id,
                "name": object.name,
                "detail": object.detail,
                "owner_pid": object.owner_pid(),
                "owner": object.owner_state().to_string(),
                "group": object.group().map(|(g, _)| g.to_string()),
                "age_s": object.created().map(|at| now.saturating_sub(at)),
                "ports": object.ports,
                "this_service": ours.contains(&object.id),
            }));
        }
    }
    Ok(json!({"objects": out}))
}

/// The last lines of any dockhand container on the engine.
pub async fn logs(engine: &Engine, data: Value) -> Reply {
    let request: requests::LogTail = requests::parse("machine-logs", data)?;
    let managed = engine
        .list(ObjectKind::Container, Scope::Managed)
        .await
        .map_err(|e| Failure::from_error("machine-logs", Some(&request.id), &e))?;
    let Some(object) = managed.iter().find(|o| {
        o.id == request.id || o.name == request.id || (request.id.len() >= 4 && o.id.starts_with(&request.id))
    }) else {
        return Err(Failure::new(
            "not_found",
            "machine-logs",
            format!(
                "no dockhand container {:?} on the engine (`machine` lists them)",
                request.id
            ),
        )
        .on(&request.id));
    };
    let mut stream = LogStream::attach(engine, &object.id, false);
    let mut lines = Vec::new();
    let read = tokio::time::timeout(LOG_LIMIT, async {
        while let Some(line) = stream.next_line().await {
            match line {
                Ok(line) => lines.push(json!({"stream": line.source.to_string(), "text": line.text})),
                Err(err) => return Err(err),
            }
        }
        Ok(())
    })
    .await;
    match read {
        Err(_) => {}
        Ok(Err(err)) => return Err(Failure::from_error("machine-logs", Some(&object.id), &err)),
        Ok(Ok(())) => {}
    }
    let skip = lines.len().saturating_sub(request.tail);
    Ok(json!({"id": object.id, "name": object.name, "lines": lines.split_off(skip)}))
}
