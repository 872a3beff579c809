//! The automatic mode: a task on the group's runtime that follows the engine's
//! events about the group's replicas and reconciles when one dies or vanishes.
//! It ends with the group (aborted by its drop) or with the runtime.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio::time::Instant;

use super::{Change, Shared};
use crate::error::Result;
use crate::events::{Event, EventStream};
use crate::labels;
use crate::remove::ObjectKind;

/// How long to wait before reopening an event stream the engine dropped.
const REOPEN_PAUSE: Duration = Duration::from_millis(200);

/// Opens the event stream now (so nothing after this call is missed) and
/// starts following it.
pub(super) fn spawn(shared: Arc<Shared>) -> Result<tokio::task::JoinHandle<()>> {
    let events = open(&shared, None)?;
    Ok(tokio::spawn(run(shared, events)))
}

fn open(shared: &Shared, since: Option<SystemTime>) -> Result<EventStream> {
    let mut builder = shared
        .engine
        .events()
        .kind(ObjectKind::Container)
        .label(labels::GROUP, shared.name.clone())
        .action("kill")
        .action("die")
        .action("destroy")
        .action("oom");
    if let Some(since) = since {
        builder = builder.since(since);
    }
    builder.stream()
}

async fn run(shared: Arc<Shared>, mut events: EventStream) {
    let mut retry_at: Option<Instant> = None;
    let mut last_seen = SystemTime::now();
    loop {
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => {
                    last_seen = event.time;
                    if !shared.noticed(&event) {
                        continue;
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!(group = %shared.name, %err, "the engine dropped the event stream; reopening it");
                    tokio::time::sleep(REOPEN_PAUSE).await;
                    match open(&shared, Some(last_seen)) {
                        Ok(reopened) => events = reopened,
                        Err(err) => tracing::warn!(group = %shared.name, %err, "reopening the event stream failed"),
                    }
                }
                None => {
                    tokio::time::sleep(REOPEN_PAUSE).await;
                    if let Ok(reopened) = open(&shared, Some(last_seen)) {
                        events = reopened;
                    }
                }
            },
            _ = retry => {}
        }
        retry_at = match shared.reconcile(true).await {
            Ok(report) => report.retry_at,
            Err(err) => {
                tracing::warn!(group = %shared.name, %err, "reconciling the group failed; trying again");
                Some(Instant::now() + shared.max_backoff.min(Duration::from_secs(1)))
            }
        };
    }
}

impl Shared {
    /// Takes note of an engine event about a replica; true when it calls for
    /// a reconcile (a replica the group holds died or vanished without the
    /// group asking).
    fn noticed(&self, event: &Event) -> bool {
        let held = self
            .slots()
            .into_iter()
            .find(|(_, slot)| slot.container.id() == event.id);
        let Some((index, slot)) = held else {
            return false; // removed by the group itself, or not ours
        };
        match event.verb() {
            "kill" => {
                self.mark(index, |s| s.killed = true);
                false
            }
            "die" if slot.held_stopped => false,
            "die" | "oom" => {
                self.mark(index, |s| s.ready = false);
                if event.verb() == "die" {
                    let exit_code = event.exit_code;
                    self.announce(index, &slot.container, Change::Died { exit_code });
                }
                true
            }
            "destroy" => {
                self.vanished(index);
                true
            }
            _ => false,
        }
    }
}
