//! What dockhand created in an engine: listing, existence and removal of managed
//! objects, scoped to dockhand's labels unless the caller asks for more.

use std::collections::HashMap;
use std::fmt;

use bollard::query_parameters::{
    ListContainersOptions, ListImagesOptions, ListNetworksOptions, ListVolumesOptions,
};
use bollard::Docker;
use futures_util::future::join_all;

use crate::engine::Engine;
use crate::error::{status_of, Error, Result};
use crate::labels;
use crate::remove::{remove_patiently, ObjectKind};

/// Which objects a listing covers.
///
/// ```
/// let scope = dockhand::Scope::Session;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// Objects created by this process.
    Session,
    /// Objects created by any dockhand process (`dockhand.managed`), including
    /// other test binaries running right now.
    Managed,
    /// Every object in the engine, dockhand's or not (listing only).
    Everything,
}

/// One object found in the engine.
///
/// ```no_run
/// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
/// for obj in engine.list(dockhand::ObjectKind::Container, dockhand::Scope::Session).await? {
///     println!("{} {} owned by pid {:?}", obj.kind, obj.name, obj.owner_pid());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ManagedObject {
    /// What it is.
    pub kind: ObjectKind,
    /// The engine's id (for volumes, the name).
    pub id: String,
    /// Its name (for images, the first tag or the id).
    pub name: String,
    /// All its labels.
    pub labels: HashMap<String, String>,
    /// For containers, the image; for images, every tag.
    pub detail: String,
    /// For containers, published ports as `127.0.0.1:32768->8080/tcp`.
    pub ports: Vec<String>,
}

impl ManagedObject {
    /// The pid of the process that created it, from its labels.
    ///
    /// ```
    /// # let obj = dockhand::ManagedObject { kind: dockhand::ObjectKind::Volume, id: "v".into(), name: "v".into(), labels: [("dockhand.owner.pid".to_string(), "42".to_string())].into(), detail: String::new(), ports: vec![] };
    /// assert_eq!(obj.owner_pid(), Some(42));
    /// ```
    pub fn owner_pid(&self) -> Option<u32> {
        self.labels.get(labels::OWNER_PID)?.parse().ok()
    }

    /// The session that created it.
    ///
    /// ```
    /// # let obj = dockhand::ManagedObject { kind: dockhand::ObjectKind::Volume, id: "v".into(), name: "v".into(), labels: Default::default(), detail: String::new(), ports: vec![] };
    /// assert_eq!(obj.session(), None);
    /// ```
    pub fn session(&self) -> Option<&str> {
        self.labels.get(labels::SESSION).map(String::as_str)
    }

    /// Unix time of creation, from its labels.
    ///
    /// ```
    /// # let obj = dockhand::ManagedObject { kind: dockhand::ObjectKind::Volume, id: "v".into(), name: "v".into(), labels: [("dockhand.created".to_string(), "1700000000".to_string())].into(), detail: String::new(), ports: vec![] };
    /// assert_eq!(obj.created(), Some(1_700_000_000));
    /// ```
    pub fn created(&self) -> Option<u64> {
        self.labels.get(labels::CREATED)?.parse().ok()
    }

    /// Whether a watcher removes it should its process be killed (`None` for
    /// objects of versions that did not say).
    ///
    /// ```
    /// # let obj = dockhand::ManagedObject { kind: dockhand::ObjectKind::Volume, id: "v".into(), name: "v".into(), labels: [("dockhand.watcher".to_string(), "off".to_string())].into(), detail: String::new(), ports: vec![] };
    /// assert_eq!(obj.watched(), Some(false));
    /// ```
    pub fn watched(&self) -> Option<bool> {
        self.labels.get(labels::WATCHER).map(|v| v == "on")
    }

    /// The replica group it belongs to and its index there, for containers
    /// of a [`Group`](crate::Group).
    ///
    /// ```
    /// # let obj = dockhand::ManagedObject { kind: dockhand::ObjectKind::Container, id: "c".into(), name: "web-1-ab12cd".into(), labels: [("dockhand.group".to_string(), "web".to_string()), ("dockhand.group.replica".to_string(), "1".to_string())].into(), detail: String::new(), ports: vec![] };
    /// assert_eq!(obj.group(), Some(("web", Some(1))));
    /// ```
    pub fn group(&self) -> Option<(&str, Option<usize>)> {
        let group = self.labels.get(labels::GROUP)?;
        let index = self
            .labels
            .get(labels::GROUP_REPLICA)
            .and_then(|i| i.parse().ok());
        Some((group.as_str(), index))
    }

    /// `run` or `persistent` for a container reused by configuration
    /// ([`Reuse`](crate::Reuse)), which any number of processes use; its
    /// owner labels name only the process that created it.
    ///
    /// ```
    /// # let obj = dockhand::ManagedObject { kind: dockhand::ObjectKind::Container, id: "c".into(), name: "dockhand-shared-ab".into(), labels: [("dockhand.reuse".to_string(), "run".to_string())].into(), detail: String::new(), ports: vec![] };
    /// assert_eq!(obj.reused(), Some("run"));
    /// ```
    pub fn reused(&self) -> Option<&str> {
        self.labels.get(labels::REUSE).map(String::as_str)
    }

    /// Whether the process that created it still runs: checked by pid *and*
    /// start time for owners on this host; `Remote` for other hosts.
    ///
    /// ```
    /// # let obj = dockhand::ManagedObject { kind: dockhand::ObjectKind::Volume, id: "v".into(), name: "v".into(), labels: Default::default(), detail: String::new(), ports: vec![] };
    /// assert_eq!(obj.owner_state(), dockhand::OwnerState::Unknown);
    /// ```
    pub fn owner_state(&self) -> OwnerState {
        let (Some(host), Some(pid), Some(start)) = (
            self.labels.get(labels::OWNER_HOST),
            self.owner_pid(),
            self.labels.get(labels::OWNER_START),
        ) else {
            return OwnerState::Unknown;
        };
        if *host != labels::owner().host {
            OwnerState::Remote
        } else if labels::process_alive(pid, start) {
            OwnerState::Alive
        } else {
            OwnerState::Dead
        }
    }
}

/// Whether an object's owner process still runs.
///
/// ```
/// assert_eq!(dockhand::OwnerState::Dead.to_string(), "dead");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OwnerState {
    /// Its owner runs on this host.
    Alive,
    /// Its owner was on this host and is gone: the sweeper removes it.
    Dead,
    /// Its owner is on another host (a shared remote engine): not checkable.
    Remote,
    /// It carries no owner labels (kept objects of old versions, or not ours).
    Unknown,
}

impl fmt::Display for OwnerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OwnerState::Alive => "alive",
            OwnerState::Dead => "dead",
            OwnerState::Remote => "remote",
            OwnerState::Unknown => "unknown",
        })
    }
}

/// What a removal did, per object.
///
/// ```
/// let report = dockhand::RemovalReport::default();
/// assert!(report.removed.is_empty() && report.failed.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct RemovalReport {
    /// Objects removed (or already gone).
    pub removed: Vec<ManagedObject>,
    /// Objects that could not be removed, with why.
    pub failed: Vec<(ManagedObject, String)>,
}

fn label_filter(scope: Scope, session: &str) -> Filters {
    let value = match scope {
        Scope::Session => format!("{}={session}", labels::SESSION),
        Scope::Managed => format!("{}=true", labels::MANAGED),
        Scope::Everything => return None,
    };
    Some(HashMap::from([("label".to_string(), vec![value])]))
}

impl Engine {
    /// Lists objects of one kind in a scope.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let engine = dockhand::Engine::connect().await?;
    /// let mine = engine.list(dockhand::ObjectKind::Network, dockhand::Scope::Session).await?;
    /// # Ok(()) }
    /// ```
    pub async fn list(&self, kind: ObjectKind, scope: Scope) -> Result<Vec<ManagedObject>> {
        list_on(self.docker(), kind, scope, labels::session_id()).await
    }

    /// Whether an object of this kind exists under this id or name.
    ///
    /// ```no_run
    /// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
    /// assert!(!engine.exists(dockhand::ObjectKind::Volume, "no-such-volume").await?);
    /// # Ok(()) }
    /// ```
    pub async fn exists(&self, kind: ObjectKind, id_or_name: &str) -> Result<bool> {
        let docker = self.docker();
        let answer = match kind {
            ObjectKind::Container => crate::podman::inspect_container(docker, id_or_name)
                .await
                .map(|_| ()),
            ObjectKind::Network => docker.inspect_network(id_or_name, None).await.map(|_| ()),
            ObjectKind::Volume => docker.inspect_volume(id_or_name).await.map(|_| ()),
            ObjectKind::Image => docker.inspect_image(id_or_name).await.map(|_| ()),
        };
        match answer {
            Ok(()) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(false),
            Err(e) => Err(Error::engine("inspect", format!("{kind} {id_or_name}"), e)),
        }
    }

    /// Removes these objects: containers first (forced), then networks, volumes
    /// and images, each kind in parallel. Already-gone objects count as removed.
    ///
    /// ```no_run
    /// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
    /// let mine = engine.list(dockhand::ObjectKind::Container, dockhand::Scope::Session).await?;
    /// let report = engine.remove_objects(mine).await;
    /// # Ok(()) }
    /// ```
    pub async fn remove_objects(&self, objects: Vec<ManagedObject>) -> RemovalReport {
        remove_on(self.docker(), objects).await
    }

    /// Removes every object of this process (`Scope::Session`) or of every
    /// dockhand process (`Scope::Managed` — careful: that includes test binaries
    /// running right now; the sweeper is the safe way to clean up after dead
    /// ones). `Scope::Everything` is refused.
    ///
    /// ```no_run
    /// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
    /// let report = engine.prune(dockhand::Scope::Session).await?;
    /// println!("removed {}", report.removed.len());
    /// # Ok(()) }
    /// ```
    pub async fn prune(&self, scope: Scope) -> Result<RemovalReport> {
        if scope == Scope::Everything {
            return Err(Error::invalid(
                "prune",
                "pruning every object in the engine is refused; use Scope::Session or Scope::Managed",
            ));
        }
        let mut all = Vec::new();
        for kind in ObjectKind::ALL {
            all.extend(self.list(kind, scope).await?);
        }
        Ok(self.remove_objects(all).await)
    }
}

/// Lists objects of one kind; `session` is the session `Scope::Session` means.
pub(crate) async fn list_on(
    docker: &Docker,
    kind: ObjectKind,
    scope: Scope,
    session: &str,
) -> Result<Vec<ManagedObject>> {
    let filters = label_filter(scope, session);
    let listed = match kind {
        ObjectKind::Container => list_containers(docker, filters).await,
        ObjectKind::Network => list_networks(docker, filters).await,
        ObjectKind::Volume => list_volumes(docker, filters).await,
        ObjectKind::Image => list_images(docker, filters).await,
    };
    listed.map_err(|e| Error::engine("list", format!("{kind}s"), e))
}

type Filters = Option<HashMap<String, Vec<String>>>;
type Listed = std::result::Result<Vec<ManagedObject>, bollard::errors::Error>;

async fn list_containers(docker: &Docker, filters: Filters) -> Listed {
    let options = ListContainersOptions {
        all: true,
        filters,
        ..Default::default()
    };
    let found = docker.list_containers(Some(options)).await?;
    Ok(found
        .into_iter()
        .map(|c| {
            let id = c.id.unwrap_or_default();
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_else(|| id.clone());
            ManagedObject {
                kind: ObjectKind::Container,
                id,
                name,
                labels: c.labels.unwrap_or_default(),
                detail: c.image.unwrap_or_default(),
                ports: c.ports.unwrap_or_default().into_iter().map(port_text).collect(),
            }
        })
        .collect())
}

/// `127.0.0.1:32768->8080/tcp`, or `8080/tcp` when not published.
fn port_text(p: bollard::models::PortSummary) -> String {
    let protocol = p.typ.map(|t| t.to_string()).unwrap_or_default();
    match (p.ip, p.public_port) {
        (Some(ip), Some(public)) => format!("{ip}:{public}->{}/{protocol}", p.private_port),
        _ => format!("{}/{protocol}", p.private_port),
    }
}

async fn list_networks(docker: &Docker, filters: Filters) -> Listed {
    let found = docker
        .list_networks(Some(ListNetworksOptions { filters }))
        .await?;
    Ok(found
        .into_iter()
        .map(|n| ManagedObject {
            kind: ObjectKind::Network,
            id: n.id.unwrap_or_default(),
            name: n.name.unwrap_or_default(),
            labels: n.labels.unwrap_or_default(),
            detail: n.driver.unwrap_or_default(),
            ports: Vec::new(),
        })
        .collect())
}

async fn list_volumes(docker: &Docker, filters: Filters) -> Listed {
    let found = docker.list_volumes(Some(ListVolumesOptions { filters })).await?;
    Ok(found
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| ManagedObject {
            kind: ObjectKind::Volume,
            id: v.name.clone(),
            name: v.name,
            labels: v.labels,
            detail: v.driver,
            ports: Vec::new(),
        })
        .collect())
}

async fn list_images(docker: &Docker, filters: Filters) -> Listed {
    let options = ListImagesOptions {
        filters,
        ..Default::default()
    };
    let found = crate::podman::list_images(docker, options).await?;
    Ok(found
        .into_iter()
        .map(|i| ManagedObject {
            kind: ObjectKind::Image,
            name: i.repo_tags.first().cloned().unwrap_or_else(|| i.id.clone()),
            id: i.id,
            labels: i.labels,
            detail: i.repo_tags.join(","),
            ports: Vec::new(),
        })
        .collect())
}

/// Removes objects: containers first (forced), then networks, volumes and
/// images, each kind in parallel.
pub(crate) async fn remove_on(docker: &Docker, objects: Vec<ManagedObject>) -> RemovalReport {
    let mut report = RemovalReport::default();
    for kind in ObjectKind::ALL {
        let batch: Vec<ManagedObject> = objects.iter().filter(|o| o.kind == kind).cloned().collect();
        let results = join_all(batch.iter().map(|o| remove_patiently(docker, o.kind, &o.id))).await;
        for (object, result) in batch.into_iter().zip(results) {
            match result {
                Ok(()) => report.removed.push(object),
                Err(e) => report.failed.push((object, e.to_string())),
            }
        }
    }
    report
}
