//! `GroupBuilder`: a group's settings, checked in full before anything exists,
//! and its start (clash check, network, first replicas, automatic mode).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, Notify};

use super::{supervise, Desired, DesiredStatus, Group, Shared, LIVE};
use crate::container::ContainerBuilder;
use crate::error::{Error, Result};
use crate::inventory::{OwnerState, Scope};
use crate::labels;
use crate::network::Network;
use crate::remove::ObjectKind;

/// Describes a replica group; [`start`](GroupBuilder::start) creates it.
///
/// ```no_run
/// use dockhand::{Container, DesiredStatus, Group};
/// # async fn demo() -> dockhand::Result<()> {
/// let node = Container::builder("fixtures/busybox:latest").cmd(["sleep", "600"]).init();
/// let group = Group::builder("nodes", node)
///     .replicas(3)
///     .scale_between(1, 5)
///     .max_backoff(std::time::Duration::from_secs(5))
///     .start()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .start().await"]
pub struct GroupBuilder {
    name: String,
    template: ContainerBuilder,
    desired: Desired,
    automatic: bool,
    network: Option<Network>,
    own_network: bool,
    max_backoff: Duration,
}

impl GroupBuilder {
    pub(super) fn new(name: String, template: ContainerBuilder) -> Self {
        GroupBuilder {
            name,
            template,
            desired: Desired {
                count: 1,
                min: 0,
                max: usize::MAX,
                status: DesiredStatus::Running,
            },
            automatic: true,
            network: None,
            own_network: true,
            max_backoff: Duration::from_secs(10),
        }
    }

    /// How many replicas (default 1).
    ///
    /// ```
    /// # let b = dockhand::Group::builder("web", dockhand::Container::builder("busybox"));
    /// let b = b.replicas(3);
    /// ```
    pub fn replicas(mut self, count: usize) -> Self {
        self.desired.count = count;
        self
    }

    /// Bounds the count: [`Group::scale`] outside `min..=max` is refused.
    ///
    /// ```
    /// # let b = dockhand::Group::builder("web", dockhand::Container::builder("busybox"));
    /// let b = b.replicas(2).scale_between(1, 4);
    /// ```
    pub fn scale_between(mut self, min: usize, max: usize) -> Self {
        self.desired.min = min;
        self.desired.max = max;
        self
    }

    /// Creates the replicas without starting them ([`DesiredStatus::Stopped`]).
    ///
    /// ```
    /// # let b = dockhand::Group::builder("web", dockhand::Container::builder("busybox"));
    /// let b = b.stopped();
    /// ```
    pub fn stopped(mut self) -> Self {
        self.desired.status = DesiredStatus::Stopped;
        self
    }

    /// No automatic mode: replicas that die stay dead until
    /// [`Group::reconcile`] is called.
    ///
    /// ```
    /// # let b = dockhand::Group::builder("web", dockhand::Container::builder("busybox"));
    /// let b = b.manual();
    /// ```
    pub fn manual(mut self) -> Self {
        self.automatic = false;
        self
    }

    /// Puts the replicas on this network (with their aliases) instead of one
    /// the group makes.
    ///
    /// ```no_run
    /// # async fn demo(net: &dockhand::Network) {
    /// # let b = dockhand::Group::builder("web", dockhand::Container::builder("busybox"));
    /// let b = b.network(net);
    /// # }
    /// ```
    pub fn network(mut self, network: &Network) -> Self {
        self.network = Some(network.clone());
        self.own_network = false;
        self
    }

    /// No group network: replicas join only the template's networks, with
    /// no aliases from the group.
    ///
    /// ```
    /// # let b = dockhand::Group::builder("web", dockhand::Container::builder("busybox"));
    /// let b = b.no_network();
    /// ```
    pub fn no_network(mut self) -> Self {
        self.network = None;
        self.own_network = false;
        self
    }

    /// The longest wait before the automatic mode replaces a replica that
    /// keeps crashing (default 10 s). The first replacement is immediate; each
    /// crash within 10 s of the last start doubles the wait, from 250 ms.
    ///
    /// ```
    /// # let b = dockhand::Group::builder("web", dockhand::Container::builder("busybox"));
    /// let b = b.max_backoff(std::time::Duration::from_secs(2));
    /// ```
    pub fn max_backoff(mut self, limit: Duration) -> Self {
        self.max_backoff = limit;
        self
    }

    fn check(&self) -> Result<()> {
        let bad = |reason: String| Error::invalid(format!("group {}", self.name), reason);
        let name_ok = self
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            && self.name.len() <= 48;
        if !name_ok {
            return Err(bad(format!(
                "the name {:?} is not usable for containers and aliases; use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 48 characters",
                self.name
            )));
        }
        if let Some(given) = self.template.given_name() {
            return Err(bad(format!(
                "the template names its container {given:?}; a group names its replicas itself, so drop .name()"
            )));
        }
        check_bounds(&self.desired).map_err(&bad)?;
        if let Some((port, host_port)) = self.template.fixed_host_port()
            && self.desired.max > 1
        {
            return Err(bad(format!(
                    "port {port} is published on fixed host port {host_port}, which only one replica can have; use .expose({}) for a random host port each, or bound the group to one replica",
                    port.number()
                )));
        }
        if self.max_backoff.is_zero() {
            return Err(bad(
                "the maximum backoff is zero; give it at least a few milliseconds".into(),
            ));
        }
        Ok(())
    }

    /// Creates the group: checks the settings and that no live group has
    /// the name, makes its network, starts the replicas (in parallel) and
    /// waits until they are ready. A failure removes everything it made.
    ///
    /// ```no_run
    /// # async fn demo(template: dockhand::ContainerBuilder) -> dockhand::Result<()> {
    /// let group = dockhand::Group::builder("web", template).replicas(3).start().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(self) -> Result<Group> {
        self.check()?;
        let engine = crate::owned::engine_for(self.template.given_engine().cloned()).await?;
        let resource = format!("group {}", self.name);
        let key = (engine.endpoint().to_string(), self.name.clone());
        if !LIVE.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone()) {
            return Err(Error::Conflict {
                resource,
                existing: format!("group {} of this process", self.name),
                hint: "give each live group its own name".into(),
            });
        }
        let made = self.make(engine).await;
        if made.is_err() {
            LIVE.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        }
        made
    }

    async fn make(self, engine: crate::Engine) -> Result<Group> {
        clash_check(&engine, &self.name, self.own_network).await?;
        let network = match (self.own_network, self.network.clone()) {
            (true, _) => Some(
                Network::builder()
                    .name(self.name.clone())
                    .engine(&engine)
                    .create()
                    .await?,
            ),
            (false, given) => given,
        };
        let template = self
            .template
            .clone()
            .engine(&engine)
            .reserved_label(labels::GROUP, self.name.clone());
        let shared = Arc::new(Shared {
            name: self.name.clone(),
            engine,
            template: Mutex::new(Some(template)),
            network: Mutex::new(network),
            desired: Mutex::new(self.desired),
            slots: Mutex::new(BTreeMap::new()),
            crashes: Mutex::new(HashMap::new()),
            max_backoff: self.max_backoff,
            turn: tokio::sync::Mutex::new(()),
            changes: broadcast::channel(256).0,
            changed: Notify::new(),
        });
        // From here on the group's guard owns everything made.
        let mut group = Group {
            shared: shared.clone(),
            supervisor: None,
        };
        if self.automatic {
            // Opened before the first replica exists, so no death is missed.
            group.supervisor = Some(supervise::spawn(shared.clone())?);
        }
        shared.reconcile(false).await?;
        Ok(group)
    }
}

/// `min <= count <= max`, as every change of the desired state must keep.
pub(super) fn check_bounds(desired: &Desired) -> std::result::Result<(), String> {
    if desired.min > desired.max {
        return Err(format!(
            "the bounds {}..={} are empty: min is above max",
            desired.min, desired.max
        ));
    }
    if desired.count < desired.min || desired.count > desired.max {
        return Err(format!(
            "{} replicas is outside the bounds {}..={}",
            desired.count, desired.min, desired.max
        ));
    }
    Ok(())
}

/// Fails when a live process already runs a group of this name on the engine,
/// or a network of that name exists.
async fn clash_check(engine: &crate::Engine, name: &str, own_network: bool) -> Result<()> {
    let resource = format!("group {name}");
    let containers = engine.list(ObjectKind::Container, Scope::Managed).await?;
    let live = containers.iter().find(|c| {
        c.labels.get(labels::GROUP).map(String::as_str) == Some(name) && c.owner_state() != OwnerState::Dead
    });
    if let Some(other) = live {
        return Err(Error::Conflict {
            resource,
            existing: format!(
                "replica {} of a live group {name} (owner pid {})",
                other.name,
                other
                    .owner_pid()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "unknown".into())
            ),
            hint: "give the group another name, or end the process that runs it".into(),
        });
    }
    if own_network && engine.exists(ObjectKind::Network, name).await? {
        return Err(Error::Conflict {
            resource,
            existing: format!("network {name}"),
            hint: "the group makes a network of its own name: choose another name, remove that network, or give the group a network with .network()".into(),
        });
    }
    Ok(())
}
