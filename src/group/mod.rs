//! Replica groups: N copies of one container builder, held to a desired state
//! the way an orchestrator's container manager holds them.
//!
//! - [`reconcile`](Group::reconcile) compares what runs with what is desired and
//!   acts; the automatic mode does the same whenever the engine reports a
//!   replica dying or vanishing, with a bounded backoff for crash loops.
//! - Every replica has its own host ports and, on the group's network, the
//!   stable alias `<group>-<index>`, which its replacement takes over.
//! - The group is one guard: dropping it removes every replica and the
//!   network it made.

mod builder;
mod reconcile;
mod supervise;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use once_cell::sync::Lazy;
use tokio::sync::{broadcast, Notify};
use tokio::time::Instant;

pub use builder::GroupBuilder;
pub use reconcile::{Action, Change, Reconciled};

use crate::container::{Container, ContainerBuilder};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::network::Network;
use crate::port::Port;

/// What a group's replicas should be doing.
///
/// ```
/// let status = dockhand::DesiredStatus::Stopped;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DesiredStatus {
    /// Created, started and ready (the default).
    Running,
    /// Created but not running: they exist, keep their data, and start again
    /// when the group is set running.
    Stopped,
}

/// N replicas of one [`ContainerBuilder`], held to a desired count and
/// status. Dropping the group removes every replica and its network.
///
/// ```no_run
/// use dockhand::{Container, Group, WaitFor};
/// # async fn demo() -> dockhand::Result<()> {
/// let web = Container::builder("fixtures/busybox:latest")
///     .cmd(["sh", "-c", "echo ready; exec httpd -f -p 8080"])
///     .expose(8080)
///     .wait_for(WaitFor::log("ready"));
/// let group = Group::builder("web", web).replicas(3).start().await?;
/// for replica in group.replicas() {
///     println!("{} at {}:{:?}", replica.alias, replica.host, replica.ports);
/// }
/// let report = group.scale(5).await?;      // two created and started
/// group.scale(1).await?;                   // four removed, highest first
/// # Ok(()) }
/// ```
pub struct Group {
    shared: Arc<Shared>,
    supervisor: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let desired = self.shared.desired();
        f.debug_struct("Group")
            .field("name", &self.shared.name)
            .field("replicas", &desired.count)
            .field("status", &desired.status)
            .field("automatic", &self.supervisor.is_some())
            .finish()
    }
}

/// One replica as it is now.
///
/// ```no_run
/// # fn demo(group: &dockhand::Group) -> dockhand::Result<()> {
/// let first = &group.replicas()[0];
/// assert_eq!(first.alias, format!("{}-0", group.name()));
/// let addr = (first.host.as_str(), first.ports[&8080.into()]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// Its index in the group; a replacement keeps it.
    pub index: usize,
    /// The container's id.
    pub id: String,
    /// The container's name (`<group>-<index>-<suffix>`).
    pub name: String,
    /// Its stable alias on the group's network, `<group>-<index>`.
    pub alias: String,
    /// The host to reach its published ports on.
    pub host: String,
    /// Host port of each published container port.
    pub ports: HashMap<Port, u16>,
}

/// A lifecycle change of one replica, pushed to every
/// [`events`](Group::events) stream: for discovery, dashboards, assertions.
///
/// ```no_run
/// # async fn demo(group: &dockhand::Group) {
/// use futures_util::StreamExt;
/// let mut changes = group.events();
/// while let Some(change) = changes.next().await {
///     println!("{}[{}] {:?}: {}", change.group, change.replica.index, change.change, change.replica.id);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaEvent {
    /// The group's name.
    pub group: String,
    /// The replica, as it was when this happened.
    pub replica: Replica,
    /// What happened.
    pub change: Change,
}

/// The shared state of a group: what the handle, the automatic mode and the
/// reconcile all work on.
pub(crate) struct Shared {
    name: String,
    engine: Engine,
    /// The builder every replica starts from: the group's labels and engine
    /// already set. `None` once the group is gone, which lets its network go.
    template: Mutex<Option<ContainerBuilder>>,
    network: Mutex<Option<Network>>,
    desired: Mutex<Desired>,
    slots: Mutex<BTreeMap<usize, Slot>>,
    /// Crash history per index, kept across replacements.
    crashes: Mutex<HashMap<usize, Crashes>>,
    max_backoff: Duration,
    /// One reconcile at a time, manual or automatic.
    turn: tokio::sync::Mutex<()>,
    changes: broadcast::Sender<ReplicaEvent>,
    changed: Notify,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Desired {
    count: usize,
    min: usize,
    max: usize,
    status: DesiredStatus,
}

/// A replica the group holds.
#[derive(Clone)]
struct Slot {
    container: Arc<Container>,
    /// Passed the builder's waits in its current run.
    ready: bool,
    /// Stopped by the group (desired stopped), not dead.
    held_stopped: bool,
    /// Killed through the engine (`docker kill`, `rm -f`): a fault from
    /// outside, not a crash of its own, so no backoff.
    killed: bool,
    since: Instant,
}

#[derive(Debug, Clone, Copy, Default)]
struct Crashes {
    count: u32,
    retry_at: Option<Instant>,
}

/// Names of the groups alive in this process, per engine: a second group of
/// the same name clashes even while neither has a replica.
static LIVE: Lazy<Mutex<HashSet<(String, String)>>> = Lazy::new(|| Mutex::new(HashSet::new()));

impl Group {
    /// Starts describing a group named `name` (used for its network, its
    /// replicas' names and aliases) of replicas of `template`.
    ///
    /// ```
    /// let b = dockhand::Group::builder("web", dockhand::Container::builder("fixtures/busybox:latest"));
    /// ```
    pub fn builder(name: impl Into<String>, template: ContainerBuilder) -> GroupBuilder {
        GroupBuilder::new(name.into(), template)
    }

    /// The group's name.
    ///
    /// ```no_run
    /// # fn demo(g: &dockhand::Group) { println!("{}", g.name()); }
    /// ```
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The network the group made (or was given), where replicas find each
    /// other as `<group>-<index>`.
    ///
    /// ```no_run
    /// # fn demo(g: &dockhand::Group) { let net = g.network().expect("a group network"); }
    /// ```
    pub fn network(&self) -> Option<Network> {
        self.shared
            .network
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The desired count and status.
    ///
    /// ```no_run
    /// # fn demo(g: &dockhand::Group) { let (count, status) = g.desired(); }
    /// ```
    pub fn desired(&self) -> (usize, DesiredStatus) {
        let desired = self.shared.desired();
        (desired.count, desired.status)
    }

    /// The replicas the group holds now, by index.
    ///
    /// ```no_run
    /// # fn demo(g: &dockhand::Group) { assert_eq!(g.replicas().len(), 3); }
    /// ```
    pub fn replicas(&self) -> Vec<Replica> {
        let slots = self.shared.slots();
        slots
            .iter()
            .map(|(i, s)| self.shared.replica(*i, &s.container))
            .collect()
    }

    /// The container of replica `index`, to exec into, read logs of or break.
    /// It stays the group's: it is removed with the group (or when the group
    /// replaces it) even while this handle is held.
    ///
    /// ```no_run
    /// # async fn demo(g: &dockhand::Group) -> dockhand::Result<()> {
    /// let first = g.replica(0).expect("replica 0");
    /// first.kill("SIGKILL").await?;          // the automatic mode replaces it
    /// # Ok(()) }
    /// ```
    pub fn replica(&self, index: usize) -> Option<Arc<Container>> {
        self.shared.slots().get(&index).map(|s| s.container.clone())
    }

    /// Sets the desired count and acts on it: replicas are created (and
    /// started) at the lowest free indexes, removed from the highest.
    ///
    /// ```no_run
    /// # async fn demo(g: &dockhand::Group) -> dockhand::Result<()> {
    /// let report = g.scale(5).await?;
    /// println!("{} actions", report.actions.len());
    /// # Ok(()) }
    /// ```
    pub async fn scale(&self, count: usize) -> Result<Reconciled> {
        self.shared.set_desired(|d| {
            if count < d.min || count > d.max {
                return Err(format!(
                    "cannot scale to {count}: the group is bounded to {}..={}; widen it with scale_between",
                    d.min, d.max
                ));
            }
            d.count = count;
            Ok(())
        })?;
        self.reconcile().await
    }

    /// Bounds the count to `min..=max` (the current count is moved inside the
    /// bounds) and acts on it.
    ///
    /// ```no_run
    /// # async fn demo(g: &dockhand::Group) -> dockhand::Result<()> {
    /// g.scale_between(2, 4).await?;
    /// # Ok(()) }
    /// ```
    pub async fn scale_between(&self, min: usize, max: usize) -> Result<Reconciled> {
        self.shared.set_desired(|d| {
            d.min = min;
            d.max = max;
            d.count = d.count.clamp(min, max.max(min));
            Ok(())
        })?;
        self.reconcile().await
    }

    /// Sets whether the replicas should run and acts on it: stopping keeps
    /// them (and their data), running starts them again and waits for them.
    ///
    /// ```no_run
    /// # async fn demo(g: &dockhand::Group) -> dockhand::Result<()> {
    /// g.set_status(dockhand::DesiredStatus::Stopped).await?;
    /// g.set_status(dockhand::DesiredStatus::Running).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_status(&self, status: DesiredStatus) -> Result<Reconciled> {
        self.shared.set_desired(|d| {
            d.status = status;
            Ok(())
        })?;
        self.reconcile().await
    }

    /// Compares what runs with what is desired and acts: a replica that died
    /// or vanished is replaced (under its index and alias), missing ones are
    /// created, extra ones removed. Returns what it did; the automatic mode
    /// does the same on every engine event about a replica.
    ///
    /// ```no_run
    /// # async fn demo(g: &dockhand::Group) -> dockhand::Result<()> {
    /// let report = g.reconcile().await?;
    /// assert!(report.actions.is_empty(), "nothing to do: {report:?}");
    /// # Ok(()) }
    /// ```
    pub async fn reconcile(&self) -> Result<Reconciled> {
        self.shared.reconcile(false).await
    }

    /// Waits until every desired replica exists and, when running, has passed
    /// the builder's waits in its current run (after a scale or a
    /// replacement). Fails with a timeout naming the replicas not ready.
    ///
    /// ```no_run
    /// # async fn demo(g: &dockhand::Group) -> dockhand::Result<()> {
    /// g.ready(std::time::Duration::from_secs(30)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn ready(&self, timeout: Duration) -> Result<()> {
        self.shared.ready(timeout).await
    }

    /// The replicas' lifecycle changes from now on: created, started,
    /// stopped, died (seen by the engine), removed.
    ///
    /// ```no_run
    /// # async fn demo(g: &dockhand::Group) {
    /// use futures_util::StreamExt;
    /// let mut changes = g.events();
    /// let next = changes.next().await;
    /// # }
    /// ```
    pub fn events(&self) -> ReplicaEvents {
        let receiver = self.shared.changes.subscribe();
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => return Some((event, receiver)),
                    // A slow reader misses what it could not keep up with.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        ReplicaEvents {
            inner: stream.boxed(),
        }
    }

    /// Removes every replica and the group's network now, and reports
    /// whether that worked. (Dropping the group does the same in the
    /// background; a replacement the automatic mode was starting at that
    /// moment goes when the runtime next runs the cancelled task.)
    ///
    /// ```no_run
    /// # async fn demo(g: dockhand::Group) -> dockhand::Result<()> {
    /// g.remove().await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove(mut self) -> Result<()> {
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.abort();
            // Once it is gone, a replica it was starting has been handed to
            // the worker for removal.
            let _ = supervisor.await;
        }
        let _turn = self.shared.turn.lock().await;
        let slots = std::mem::take(&mut *self.shared.slots.lock().unwrap_or_else(|e| e.into_inner()));
        let removals = slots.values().map(|s| s.container.remove_shared());
        for result in futures_util::future::join_all(removals).await {
            result?;
        }
        self.shared
            .template
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let network = self
            .shared
            .network
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match network {
            Some(network) => network.remove().await,
            None => Ok(()),
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.abort();
        }
        self.shared.release();
    }
}

/// A group's lifecycle changes; from [`Group::events`].
pub struct ReplicaEvents {
    inner: BoxStream<'static, ReplicaEvent>,
}

impl std::fmt::Debug for ReplicaEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplicaEvents")
    }
}

impl Stream for ReplicaEvents {
    type Item = ReplicaEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<ReplicaEvent>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl Shared {
    fn desired(&self) -> Desired {
        *self.desired.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_desired(
        &self,
        change: impl FnOnce(&mut Desired) -> std::result::Result<(), String>,
    ) -> Result<()> {
        let mut desired = self.desired.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = *desired;
        change(&mut next).map_err(|reason| Error::invalid(self.describe(), reason))?;
        builder::check_bounds(&next).map_err(|reason| Error::invalid(self.describe(), reason))?;
        *desired = next;
        Ok(())
    }

    fn slots(&self) -> BTreeMap<usize, Slot> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn describe(&self) -> String {
        format!("group {}", self.name)
    }

    fn alias(&self, index: usize) -> String {
        format!("{}-{index}", self.name)
    }

    fn replica(&self, index: usize, container: &Container) -> Replica {
        Replica {
            index,
            id: container.id().to_string(),
            name: container.name().to_string(),
            alias: self.alias(index),
            host: container.host().to_string(),
            ports: container.ports_snapshot(),
        }
    }

    fn announce(&self, index: usize, container: &Container, change: Change) {
        let _ = self.changes.send(ReplicaEvent {
            group: self.name.clone(),
            replica: self.replica(index, container),
            change,
        });
        self.changed.notify_waiters();
    }

    /// Hands every replica's removal to the worker now and lets the network
    /// go after them: the guard's drop.
    fn release(&self) {
        let slots = std::mem::take(&mut *self.slots.lock().unwrap_or_else(|e| e.into_inner()));
        for slot in slots.values() {
            slot.container.release_at_exit();
        }
        self.template.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.network.lock().unwrap_or_else(|e| e.into_inner()).take();
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(self.engine.endpoint().to_string(), self.name.clone()));
    }
}
