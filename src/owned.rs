//! The one guard core: an engine object this process owns until its guard lets
//! go. Every guard (`Container`, `Network`, `Volume`, `Image`) sits on it, so
//! keeping, removing and dropping mean the same for every kind:
//!
//! - `keep()` disarms the object and tells the watcher and the signal cleanup
//!   to spare it (and everything it holds);
//! - `remove()` removes it now under the one removal policy;
//! - the last `Drop` hands the removal to the worker, then lets go of the objects
//!   it held (a container's networks and volumes), which therefore outlive every
//!   container attached to them, whatever order the user drops things in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::remove::{remove_object, remove_patiently, ObjectKind};
use crate::{channel, config, labels, session, worker};

/// An engine object owned by this process.
pub(crate) struct Owned {
    engine: Engine,
    kind: ObjectKind,
    /// The engine's id (for volumes, the name).
    id: String,
    name: String,
    armed: AtomicBool,
    /// Objects kept alive until this one is gone.
    holds: Mutex<Vec<Hold>>,
    /// Host directories that go with it (a container's channel).
    dirs: Mutex<Vec<std::path::PathBuf>>,
}

/// A shared hold on an owned object.
pub(crate) type Hold = Arc<Owned>;

impl Owned {
    /// Wraps an object the engine just created: from here on any early return
    /// removes it.
    pub(crate) fn new(engine: Engine, kind: ObjectKind, id: String, name: String, holds: Vec<Hold>) -> Hold {
        session::created(&id, &name);
        Arc::new(Owned {
            engine,
            kind,
            id,
            name,
            armed: AtomicBool::new(true),
            holds: Mutex::new(holds),
            dirs: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `container web (0123456789ab)`, `network dockhand-net-…`: how messages
    /// name it.
    pub(crate) fn describe(&self) -> String {
        match self.kind {
            ObjectKind::Container | ObjectKind::Image if self.id != self.name => {
                let id = self.id.trim_start_matches("sha256:");
                format!("{} {} ({})", self.kind, self.name, &id[..id.len().min(12)])
            }
            _ => format!("{} {}", self.kind, self.name),
        }
    }

    pub(crate) fn is_armed(&self) -> bool {
        self.armed.load(Ordering::SeqCst)
    }

    /// Keeps `other` alive until this object is gone (once per object).
    pub(crate) fn hold(&self, other: &Hold) {
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        if !holds.iter().any(|h| h.id == other.id) {
            holds.push(other.clone());
        }
    }

    fn take_holds(&self) -> Vec<Hold> {
        std::mem::take(&mut *self.holds.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Removes the host directory `dir` once this object is removed, and
    /// leaves it when the object is kept or let go.
    pub(crate) fn remove_dir_with(&self, dir: std::path::PathBuf) {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner()).push(dir);
    }

    fn take_dirs(&self) -> Vec<std::path::PathBuf> {
        std::mem::take(&mut *self.dirs.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Leaves the object, and what it holds, in the engine for good.
    pub(crate) fn keep(&self) {
        self.armed.store(false, Ordering::SeqCst);
        session::spare(self.engine.endpoint(), &self.id, &self.name);
        self.take_dirs();
        for held in self.take_holds() {
            held.keep();
        }
    }

    /// Lets go of an object other processes use too (a reused container):
    /// nothing of this process removes it, and no watcher is told to spare it.
    pub(crate) fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
        self.take_dirs();
        drop(self.take_holds());
    }

    /// Removes the object now. On failure it stays armed, so its drop tries again.
    pub(crate) async fn remove(&self) -> Result<()> {
        remove_object(self.engine.docker(), self.kind, &self.id)
            .await
            .map_err(|e| Error::engine("remove", self.describe(), e))?;
        self.armed.store(false, Ordering::SeqCst);
        self.take_dirs().iter().for_each(|d| channel::remove_dir(d));
        drop(self.take_holds());
        Ok(())
    }

    /// Hands the removal to the worker now, for an object that lives in a static
    /// and never drops (the exit hook calls this).
    pub(crate) fn release(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.submit_removal();
        }
    }

    fn submit_removal(&self) {
        if config::keep_all() {
            eprintln!("dockhand: keeping {} (DOCKHAND_KEEP is set)", self.describe());
            return;
        }
        let (kind, id, what) = (self.kind, self.id.clone(), self.describe());
        let holds = self.take_holds();
        let dirs = self.take_dirs();
        worker::submit(
            self.engine.endpoint(),
            Box::new(move |docker| {
                Box::pin(async move {
                    if let Err(err) = remove_patiently(&docker, kind, &id).await {
                        tracing::warn!(object = %what, %err, "removal failed; the sweeper will retry");
                    }
                    dirs.iter().for_each(|d| channel::remove_dir(d));
                    // Only now may the networks and volumes it used go.
                    drop(holds);
                })
            }),
        );
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        if config::keep_failed() && std::thread::panicking() {
            self.keep();
            eprintln!(
                "dockhand: keeping {} because its test failed (DOCKHAND_KEEP=failed); `dockhand sweep --kept` removes it",
                self.describe()
            );
            return;
        }
        self.submit_removal();
    }
}

/// The engine to create on (given, or the process-wide one), with ownership
/// begun on it: the watcher runs before the first object exists.
pub(crate) async fn engine_for(engine: Option<Engine>) -> Result<Engine> {
    let engine = match engine {
        Some(engine) => engine,
        None => Engine::connect().await?,
    };
    session::begin_owning(&engine);
    Ok(engine)
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
    kind: ObjectKind,
    name: Option<String>,
    user_labels: &HashMap<String, String>,
    engine: Option<Engine>,
) -> Result<Prepared> {
    let short = match kind {
        ObjectKind::Network => "net-",
        ObjectKind::Volume => "vol-",
        ObjectKind::Container | ObjectKind::Image => "",
    };
    let name = name.unwrap_or_else(|| format!("dockhand-{short}{}", labels::random_hex(12)));
    let resource = format!("{kind} {name}");
    if name.trim().is_empty() {
        return Err(Error::invalid(resource, format!("the {kind} name is empty")));
    }
    let labels = labels::stamp(&resource, user_labels)?;
    let engine = engine_for(engine).await?;
    Ok(Prepared {
        name,
        resource,
        labels,
        engine,
    })
}
