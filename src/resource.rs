//! The shared core of the network and volume guards: an engine object that is
//! removed when the last holder lets go. Containers hold the networks and volumes
//! they use, so those outlive every container attached to them, whatever order
//! the user drops things in.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::collections::HashMap;

use crate::cleanup;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::labels;

/// Which kind of object it is, for removal and for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Network,
    Volume,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Network => "network",
            Kind::Volume => "volume",
        })
    }
}

/// An engine object owned by this process.
pub(crate) struct Owned {
    pub engine: Engine,
    pub kind: Kind,
    pub id: String,
    pub name: String,
    armed: AtomicBool,
}

/// A shared hold on an owned object.
pub(crate) type Hold = Arc<Owned>;

impl Owned {
    pub(crate) fn new(engine: Engine, kind: Kind, id: String, name: String) -> Hold {
        Arc::new(Owned {
            engine,
            kind,
            id,
            name,
            armed: AtomicBool::new(true),
        })
    }

    /// After this, dropping the last hold leaves the object in the engine.
    pub(crate) fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        if cleanup::keep_all() {
            eprintln!("dockhand: keeping {} (DOCKHAND_KEEP is set)", self.describe());
            return;
        }
        let job = match self.kind {
            Kind::Network => cleanup::remove_network_job(self.id.clone()),
            Kind::Volume => cleanup::remove_volume_job(self.name.clone()),
        };
        cleanup::submit(self.engine.endpoint(), job);
    }
}

/// What every create of a network or volume starts from: its name (given or
/// fresh), how errors name it, its stamped labels, and the engine to use.
pub(crate) struct Prepared {
    pub name: String,
    pub resource: String,
    pub labels: HashMap<String, String>,
    pub engine: Engine,
}

pub(crate) async fn prepare(
    kind: Kind,
    name: Option<String>,
    user_labels: &HashMap<String, String>,
    engine: Option<Engine>,
) -> Result<Prepared> {
    let short = match kind {
        Kind::Network => "net",
        Kind::Volume => "vol",
    };
    let name = name.unwrap_or_else(|| format!("dockhand-{short}-{}", labels::random_hex(12)));
    let resource = format!("{kind} {name}");
    if name.trim().is_empty() {
        return Err(Error::invalid(resource, format!("the {kind} name is empty")));
    }
    let labels = labels::stamp(&resource, user_labels)?;
    let engine = match engine {
        Some(e) => e,
        None => Engine::connect().await?,
    };
    engine.begin_owning();
    Ok(Prepared {
        name,
        resource,
        labels,
        engine,
    })
}
