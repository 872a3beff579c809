//! The start of ownership: before this process creates its first object on an
//! engine, the watcher starts and dead processes' objects are swept in the
//! background. Not on connect, so a process that only looks (`dockhand ls`, a
//! dry-run sweep) neither spawns a watcher nor removes anything.
//!
//! It also remembers what this process chose to keep, so that no cleanup of the
//! process's own (watcher, signal handler) removes it.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use crate::engine::Engine;

/// The id shared by every object this process creates (its `dockhand.session`
/// label).
///
/// ```
/// let a = dockhand::session_id();
/// assert_eq!(a, dockhand::session_id());
/// assert_eq!(a.len(), 16);
/// ```
pub fn session_id() -> &'static str {
    crate::labels::session_id()
}

/// Endpoints on which this process has begun to create objects.
static OWNING: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Ids and names of objects a guard was told to keep.
static SPARED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Ids and names of every object this process created, for telling its
/// networks' and volumes' events (which carry no labels) from others'.
static CREATED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Records an object this process created.
pub(crate) fn created(id: &str, name: &str) {
    let mut created = CREATED.lock().unwrap_or_else(|e| e.into_inner());
    let set = created.get_or_insert_with(HashSet::new);
    set.insert(id.to_string());
    set.insert(name.to_string());
}

/// Whether this process created an object with this id or name.
pub(crate) fn owns(id_or_name: &str) -> bool {
    let created = CREATED.lock().unwrap_or_else(|e| e.into_inner());
    created.as_ref().is_some_and(|set| set.contains(id_or_name))
}

/// Called before this process creates an object on `engine`; cheap after the
/// first call per engine.
pub(crate) fn begin_owning(engine: &Engine) {
    let endpoint = engine.endpoint();
    {
        let mut owning = OWNING.lock().unwrap_or_else(|e| e.into_inner());
        if owning.iter().any(|e| e == endpoint) {
            return;
        }
        owning.push(endpoint.to_string());
    }
    crate::watcher::ensure_started(endpoint, crate::labels::session_id());
    if crate::config::background_sweep_enabled() && crate::sweep::background_sweep_due(endpoint) {
        let swept = endpoint.to_string();
        crate::worker::submit(
            endpoint,
            Box::new(move |docker| {
                Box::pin(async move {
                    match crate::sweep::sweep_on(
                        &docker,
                        crate::sweep::Mode::Orphans,
                        crate::sweep::Ages {
                            ttl: Duration::from_secs(3600),
                            grace: Duration::from_secs(60),
                        },
                        false,
                    )
                    .await
                    {
                        Ok(mut report) => {
                            let states = crate::sweep::sweep_states(&docker, false, false, &mut report).await;
                            if let Err(err) = states {
                                tracing::debug!(%err, "sweeping cached start states failed");
                            }
                            if let Err(err) = crate::channel::reap_orphans(&docker, &swept).await {
                                tracing::debug!(%err, "sweeping channel directories failed");
                            }
                            if !report.removed.is_empty() {
                                tracing::info!(
                                    removed = report.removed.len(),
                                    "swept objects of dead processes"
                                )
                            }
                        }
                        Err(err) => tracing::debug!(%err, "background sweep failed"),
                    }
                })
            }),
        );
    }
}

/// Every endpoint on which this process created objects.
pub(crate) fn owning_endpoints() -> Vec<String> {
    OWNING.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Marks an object (by id and by name) as kept: the watcher and the signal
/// cleanup leave it.
pub(crate) fn spare(endpoint: &str, id: &str, name: &str) {
    {
        let mut spared = SPARED.lock().unwrap_or_else(|e| e.into_inner());
        let set = spared.get_or_insert_with(HashSet::new);
        set.insert(id.to_string());
        set.insert(name.to_string());
    }
    crate::watcher::spare(endpoint, id);
    if name != id {
        crate::watcher::spare(endpoint, name);
    }
}

/// Whether an object with this id or name was kept.
pub(crate) fn is_spared(id: &str, name: &str) -> bool {
    let spared = SPARED.lock().unwrap_or_else(|e| e.into_inner());
    spared
        .as_ref()
        .is_some_and(|set| set.contains(id) || set.contains(name))
}
