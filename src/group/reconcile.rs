//! Comparing what runs with what is desired, and acting on the difference:
//! one code path for a manual call and for the automatic mode.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::{Crashes, DesiredStatus, Shared, Slot};
use crate::container::Container;
use crate::error::{Error, Result};
use crate::labels;

/// A crash within this long of a start counts towards the backoff.
const CRASH_WINDOW: Duration = Duration::from_secs(10);
/// The wait before the second replacement of a crashing replica.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// What happened to a replica.
///
/// ```
/// assert_eq!(dockhand::Change::Created, dockhand::Change::Created);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The group created it.
    Created,
    /// The group started it, and it passed the builder's waits.
    Started,
    /// The group stopped it (desired status stopped).
    Stopped,
    /// The engine reports it died, without the group asking.
    Died {
        /// Its exit code, when the engine said.
        exit_code: Option<i64>,
    },
    /// It is gone: removed by the group, or behind its back.
    Removed,
}

/// One thing a reconcile did.
///
/// ```no_run
/// # async fn demo(g: &dockhand::Group) -> dockhand::Result<()> {
/// for action in g.scale(2).await?.actions {
///     println!("{:?} replica {} ({})", action.change, action.index, action.id);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Created, Started, Stopped or Removed.
    pub change: Change,
    /// The replica's index.
    pub index: usize,
    /// The container's id.
    pub id: String,
    /// The container's name.
    pub name: String,
}

/// What a reconcile did, in order.
///
/// ```no_run
/// # async fn demo(g: &dockhand::Group) -> dockhand::Result<()> {
/// let report = g.reconcile().await?;
/// assert_eq!(report.created().count(), 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Every action, in the order taken.
    pub actions: Vec<Action>,
    /// When the automatic mode should look again (a replica in backoff).
    pub(super) retry_at: Option<Instant>,
}

impl Reconciled {
    /// The actions that created a replica.
    ///
    /// ```
    /// assert_eq!(dockhand::Reconciled::default().created().count(), 0);
    /// ```
    pub fn created(&self) -> impl Iterator<Item = &Action> {
        self.of(Change::Created)
    }

    /// The actions that removed a replica.
    ///
    /// ```
    /// assert_eq!(dockhand::Reconciled::default().removed().count(), 0);
    /// ```
    pub fn removed(&self) -> impl Iterator<Item = &Action> {
        self.of(Change::Removed)
    }

    /// The actions that started a replica.
    ///
    /// ```
    /// assert_eq!(dockhand::Reconciled::default().started().count(), 0);
    /// ```
    pub fn started(&self) -> impl Iterator<Item = &Action> {
        self.of(Change::Started)
    }

    fn of(&self, change: Change) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(move |a| a.change == change)
    }

    fn push(&mut self, change: Change, index: usize, container: &Container) {
        self.actions.push(Action {
            change,
            index,
            id: container.id().to_string(),
            name: container.name().to_string(),
        });
    }
}

/// What a replica is doing, as the engine says.
enum Seen {
    Gone,
    Alive,
    Down,
}

impl Shared {
    /// One reconcile. `automatic` respects the crash backoff (a manual call
    /// acts at once). Dead and extra replicas are removed while their
    /// replacements are created: an exited container no longer holds its
    /// alias.
    pub(super) async fn reconcile(self: &Arc<Self>, automatic: bool) -> Result<Reconciled> {
        let _turn = self.turn.lock().await;
        let desired = self.desired();
        let mut report = Reconciled::default();
        let doomed = self.survey(desired, &mut report).await?;
        let now = Instant::now();
        let held = self.slots();
        let mut missing = Vec::new();
        for index in (0..desired.count).filter(|i| !held.contains_key(i)) {
            match self.crashes(index).retry_at.filter(|at| automatic && *at > now) {
                Some(at) => report.retry_at = Some(report.retry_at.map_or(at, |r| r.min(at))),
                None => missing.push(index),
            }
        }
        let running = desired.status == DesiredStatus::Running;
        let removals = join_all(doomed.iter().map(|(_, slot)| slot.container.remove_shared()));
        let creations = join_all(missing.iter().map(|i| self.create(*i, running)));
        let (removed, made) = tokio::join!(removals, creations);
        let mut first_error = None;
        for ((index, slot), removed) in doomed.iter().zip(removed) {
            match removed {
                Ok(()) => self.record(&mut report, Change::Removed, *index, &slot.container),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        for (index, made) in missing.into_iter().zip(made) {
            match made {
                Ok(container) => self.hold(index, container, running, &mut report),
                Err(err) => {
                    let retry_at = self.note_crash(index, Instant::now());
                    report.retry_at = Some(report.retry_at.map_or(retry_at, |r| r.min(retry_at)));
                    first_error.get_or_insert(err);
                }
            }
        }
        self.changed.notify_waiters();
        match first_error {
            Some(err) if !automatic => Err(err),
            Some(err) => {
                tracing::warn!(group = %self.name, %err, "a replica failed to start or go; retrying after a backoff");
                Ok(report)
            }
            None => Ok(report),
        }
    }

    /// Looks at every replica the group holds and does what needs no new
    /// container (start again, stop); returns the replicas to remove (dead
    /// ones, and those above the count, highest first), already out of the
    /// slots so their deaths are not taken for crashes.
    async fn survey(&self, desired: super::Desired, report: &mut Reconciled) -> Result<Vec<(usize, Slot)>> {
        let slots = self.slots();
        let seen = join_all(slots.values().map(|s| seen(&s.container))).await;
        let mut doomed = Vec::new();
        for ((&index, slot), seen) in slots.iter().zip(seen) {
            match (seen?, desired.status) {
                // Removed behind the group's back (unless its destroy event
                // was handled first, which vacated the slot).
                (Seen::Gone, _) => self.vanished(index),
                (Seen::Down, DesiredStatus::Running) if slot.held_stopped => {
                    self.start_again(index, slot, report).await?;
                }
                (Seen::Down, DesiredStatus::Running) => {
                    if let Some(vacated) = self.vacate(index) {
                        if !vacated.killed {
                            self.note_crash(index, slot.since);
                        }
                        doomed.push((index, vacated));
                    }
                }
                (Seen::Alive, DesiredStatus::Stopped) => {
                    self.mark(index, |s| s.held_stopped = true);
                    slot.container.stop().await?;
                    self.mark(index, |s| s.ready = false);
                    self.record(report, Change::Stopped, index, &slot.container);
                }
                _ => {}
            }
        }
        for &index in slots.keys().rev().filter(|i| **i >= desired.count) {
            if let Some(vacated) = self.vacate(index) {
                doomed.push((index, vacated));
            }
        }
        Ok(doomed)
    }

    /// Takes a new replica into its slot and reports it.
    fn hold(&self, index: usize, container: Container, running: bool, report: &mut Reconciled) {
        let container = Arc::new(container);
        self.record(report, Change::Created, index, &container);
        if running {
            self.record(report, Change::Started, index, &container);
        }
        let slot = Slot {
            container,
            ready: running,
            held_stopped: !running,
            killed: false,
            since: Instant::now(),
        };
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(index, slot);
    }

    /// Creates replica `index` from the template (and starts it, waiting for
    /// the builder's conditions, when `running`).
    async fn create(&self, index: usize, running: bool) -> Result<Container> {
        let template = self.template.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(template) = template else {
            return Err(Error::invalid(self.describe(), "the group is being removed"));
        };
        let name = format!("{}-{index}-{}", self.name, labels::random_hex(6));
        let mut builder = template
            .named(name)
            .reserved_label(labels::GROUP_REPLICA, index.to_string());
        if let Some(network) = self.network.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            builder = builder.network_alias(&network, self.alias(index));
        }
        match running {
            true => builder.start().await,
            false => builder.create_stopped().await,
        }
    }

    async fn start_again(&self, index: usize, slot: &Slot, report: &mut Reconciled) -> Result<()> {
        let template = self.template.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(template) = template else {
            return Ok(());
        };
        self.mark(index, |s| s.held_stopped = false);
        template
            .start_and_wait(&slot.container, Instant::now(), true)
            .await?;
        self.mark(index, |s| {
            s.ready = true;
            s.since = Instant::now();
        });
        self.record(report, Change::Started, index, &slot.container);
        Ok(())
    }

    fn record(&self, report: &mut Reconciled, change: Change, index: usize, container: &Container) {
        report.push(change.clone(), index, container);
        self.announce(index, container, change);
    }

    /// A replica removed from outside: out of its slot, and said so once.
    pub(super) fn vanished(&self, index: usize) {
        if let Some(slot) = self.vacate(index) {
            self.announce(index, &slot.container, Change::Removed);
        }
    }

    fn vacate(&self, index: usize) -> Option<Slot> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&index)
    }

    pub(super) fn mark(&self, index: usize, change: impl FnOnce(&mut Slot)) {
        if let Some(slot) = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&index)
        {
            change(slot);
        }
    }

    fn crashes(&self, index: usize) -> Crashes {
        self.crashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&index)
            .copied()
            .unwrap_or_default()
    }

    /// Counts a replica's death after `since`: the first replacement is
    /// immediate, each quick crash after it doubles the wait, up to the limit.
    fn note_crash(&self, index: usize, since: Instant) -> Instant {
        let mut crashes = self.crashes.lock().unwrap_or_else(|e| e.into_inner());
        let entry = crashes.entry(index).or_default();
        entry.count = if since.elapsed() < CRASH_WINDOW {
            entry.count + 1
        } else {
            1
        };
        let wait = backoff(entry.count, self.max_backoff);
        let at = Instant::now() + wait;
        entry.retry_at = Some(at);
        at
    }

    /// Waits until every desired replica is there and ready.
    pub(super) async fn ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let missing = {
                let _turn = self.turn.lock().await;
                self.not_ready().await?
            };
            if missing.is_empty() {
                return Ok(());
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(Error::Timeout {
                        operation: "wait for readiness of",
                        resource: format!("{} (replicas not ready: {missing:?})", self.describe()),
                        after: timeout,
                    });
                }
            }
        }
    }

    /// The indexes of desired replicas that are missing, or not in the
    /// desired state.
    async fn not_ready(&self) -> Result<Vec<usize>> {
        let desired = self.desired();
        let slots = self.slots();
        let mut missing: Vec<usize> = (0..desired.count).filter(|i| !slots.contains_key(i)).collect();
        let wanted: Vec<(&usize, &Slot)> = slots.iter().filter(|(i, _)| **i < desired.count).collect();
        let seen = join_all(wanted.iter().map(|(_, s)| seen(&s.container))).await;
        for ((index, slot), seen) in wanted.into_iter().zip(seen) {
            let fine = match (seen?, desired.status) {
                (Seen::Alive, DesiredStatus::Running) => slot.ready,
                (Seen::Down, DesiredStatus::Stopped) => true,
                _ => false,
            };
            if !fine {
                missing.push(*index);
            }
        }
        missing.sort_unstable();
        Ok(missing)
    }
}

/// The wait before replacing a replica after its `crashes`-th quick crash.
fn backoff(crashes: u32, limit: Duration) -> Duration {
    match crashes {
        0 | 1 => Duration::ZERO,
        n => FIRST_BACKOFF.saturating_mul(1 << (n - 2).min(16)).min(limit),
    }
}

async fn seen(container: &Container) -> Result<Seen> {
    match container.inspect().await {
        Ok(inspected) => {
            let state = inspected.state.unwrap_or_default();
            Ok(
                match state.running == Some(true) || state.restarting == Some(true) {
                    true => Seen::Alive,
                    false => Seen::Down,
                },
            )
        }
        Err(err) if err.is_not_found() => Ok(Seen::Gone),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_immediate_then_doubles_to_its_limit() {
        let limit = Duration::from_secs(2);
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n, limit).as_millis() as u64).collect();
        assert_eq!(waits, [0, 250, 500, 1000, 2000, 2000, 2000]);
        assert_eq!(backoff(60, limit), limit, "no overflow");
    }
}
