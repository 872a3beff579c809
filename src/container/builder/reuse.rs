//! Starting a reused container: found by the key of its configuration under a
//! name derived from it (the engine's name uniqueness makes two processes that
//! create it at once end with one container), or created; either way this
//! process counts as a user until it exits.

use std::path::Path;
use std::time::Duration;

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};
use tokio::time::Instant;

use super::ContainerBuilder;
use crate::container::{files, Container};
use crate::engine::Engine;
use crate::error::{status_of, Error, Result};
use crate::labels;
use crate::remove::{remove_object, remove_patiently, ObjectKind};
use crate::reuse::{key, lock, reap, Reuse};

/// How often a process that waits for another's create looks again.
const LOOK_AGAIN: Duration = Duration::from_millis(50);

impl ContainerBuilder {
    /// [`start`](Self::start) for a builder with [`reuse`](Self::reuse).
    pub(super) async fn start_reused(mut self, lifetime: Reuse) -> Result<Container> {
        let resource = format!("reused container (image {})", self.image);
        if !self.networks.is_empty() || self.mounts.iter().any(|m| m.hold().is_some()) {
            return Err(Error::invalid(
                resource,
                "a reused container outlives this process, so it cannot join a network or mount a volume \
                 that this process owns; reach it through its published ports, or do not reuse it",
            ));
        }
        let engine = crate::owned::engine_for(self.engine.clone()).await?;
        let image_id = engine.pull_image(&self.image, &self.pull).await?.id;
        let bind = match engine.is_local() {
            true => super::create::LOOPBACK,
            false => super::create::EVERY_ADDRESS,
        };
        let body = self.to_create_body_binding("reused", bind)?;
        let files = match self.files.is_empty() {
            true => Vec::new(),
            false => files::pack(&self.files, &resource)?,
        };
        let key = key::config_key(&body, &image_id, &files, lock::uid());
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("dockhand-shared-{key}"));
        let lock_path = lock::path_for(engine.endpoint(), &key);
        let first = lock::begin_using(&lock_path).await.map_err(|source| Error::Io {
            operation: "lock",
            resource: format!("{} (the users of reused container {name})", lock_path.display()),
            source,
        })?;
        if first && lifetime == Reuse::Run {
            register(engine.endpoint(), &name, &lock_path);
        }
        self.reuse = None;
        self.engine = Some(engine.clone());
        let mut builder = self
            .named(name)
            // No process's session: no process's cleanup removes it.
            .reserved_label(labels::SESSION, format!("shared-{key}"))
            .reserved_label(labels::REUSE, lifetime.label())
            .reserved_label(labels::REUSE_KEY, key.clone())
            .reserved_label(labels::REUSE_LOCK, lock_path.display().to_string());
        let container = match builder.adopt_running(&engine, &key, &lock_path).await? {
            Some(container) => container,
            None => {
                // Only a create starts from a cached state.
                builder.resolve_cached_state(&engine, Some(&image_id)).await?;
                builder.resolve_run_first(&engine, Some(&image_id)).await?;
                builder.find_or_create(&engine, &key, &lock_path).await?
            }
        };
        container.mark_reused(lock_path);
        Ok(container)
    }

    /// Adopts the running container of this name, or creates it, until the
    /// startup timeout.
    async fn find_or_create(&self, engine: &Engine, key: &str, lock_path: &Path) -> Result<Container> {
        let name = self.name.clone().unwrap_or_default();
        let resource = format!("reused container {name} (image {})", self.image);
        let begun = Instant::now();
        loop {
            match crate::podman::inspect_container(engine.docker(), &name).await {
                Err(err) if status_of(&err) == Some(404) => match self.clone().start_owned().await {
                    Ok(container) => {
                        container.disown();
                        if let Ok(info) = container.inspect().await {
                            mark_ready(lock_path, &info);
                        }
                        return Ok(container);
                    }
                    // Another process created it first: adopt it.
                    Err(Error::Engine {
                        operation: "create",
                        source,
                        ..
                    }) if name_taken(&source) => {}
                    Err(err) => return Err(err),
                },
                Err(err) => return Err(Error::engine("inspect", &resource, err)),
                Ok(info) => {
                    let theirs = info.config.as_ref().and_then(|c| c.labels.as_ref());
                    let their_key = theirs.and_then(|l| l.get(labels::REUSE_KEY));
                    if their_key.map(String::as_str) != Some(key) {
                        return Err(Error::Conflict {
                            resource,
                            existing: format!("container {name}, which is not this configuration's"),
                            hint:
                                "give the reused container another name (or none), or remove that container"
                                    .into(),
                        });
                    }
                    let adopted = self
                        .adopt_if_running(engine, &name, info, begun, lock_path)
                        .await?;
                    if let Some(container) = adopted {
                        return Ok(container);
                    }
                }
            }
            if begun.elapsed() >= self.startup_timeout {
                return Err(Error::Timeout {
                    operation: "start",
                    resource,
                    after: self.startup_timeout,
                });
            }
            tokio::time::sleep(LOOK_AGAIN).await;
        }
    }

    /// The container, if it runs already as this configuration: what every
    /// process of a run after the first finds, and adopts without the lookups
    /// a create needs. Anything else is left to [`find_or_create`](Self::find_or_create).
    async fn adopt_running(&self, engine: &Engine, key: &str, lock_path: &Path) -> Result<Option<Container>> {
        let name = self.name.clone().unwrap_or_default();
        let Ok(info) = crate::podman::inspect_container(engine.docker(), &name).await else {
            return Ok(None);
        };
        let running = info.state.as_ref().and_then(|s| s.status) == Some(ContainerStateStatusEnum::RUNNING);
        let theirs = info.config.as_ref().and_then(|c| c.labels.as_ref());
        let ours = theirs.and_then(|l| l.get(labels::REUSE_KEY)).map(String::as_str) == Some(key);
        if !(running && ours) {
            return Ok(None);
        }
        self.adopt_if_running(engine, &name, info, Instant::now(), lock_path)
            .await
    }

    /// The container, ready, if it runs; `None` while another process creates
    /// or removes it. A dead one is removed so that the next look creates it.
    async fn adopt_if_running(
        &self,
        engine: &Engine,
        name: &str,
        info: ContainerInspectResponse,
        begun: Instant,
        lock_path: &Path,
    ) -> Result<Option<Container>> {
        let status = info.state.as_ref().and_then(|s| s.status);
        match status {
            Some(ContainerStateStatusEnum::RUNNING) => {}
            Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
                let id = info.id.unwrap_or_default();
                if let Err(err) = remove_object(engine.docker(), ObjectKind::Container, &id).await {
                    tracing::debug!(container = %name, %err, "removing a dead reused container failed");
                }
                return Ok(None);
            }
            _ => return Ok(None),
        }
        let published = self.publish.iter().map(|p| p.port).collect();
        let id = info.id.clone().unwrap_or_default();
        let container = Container::new(
            engine.clone(),
            id,
            name.to_string(),
            self.image.clone(),
            published,
            Vec::new(),
        );
        container.disown();
        container.take_ports_from(&info);
        // A process of the run saw this start of it ready: under nextest every
        // test is a process, and each would probe it again.
        if std::fs::read_to_string(ready_path(lock_path)).ok() == ready_mark(&info) {
            return Ok(Some(container));
        }
        // Its creator may have restarted it: only the current run's lines count.
        self.wait_ready(&container, begun, true).await?;
        mark_ready(lock_path, &info);
        Ok(Some(container))
    }
}

/// Beside the users' lock: which start of the container was seen ready.
fn ready_path(lock_path: &Path) -> std::path::PathBuf {
    lock::beside(lock_path, "ready")
}

/// One start of one container: its id and when that start began.
fn ready_mark(info: &ContainerInspectResponse) -> Option<String> {
    let started = info.state.as_ref()?.started_at.as_deref()?;
    Some(format!("{} {started}", info.id.as_deref()?))
}

fn mark_ready(lock_path: &Path, info: &ContainerInspectResponse) {
    if let Some(mark) = ready_mark(info) {
        let _ = crate::user_dir::write_whole(&ready_path(lock_path), mark.as_bytes(), 0o644);
    }
}

/// This process uses `container` for the run: its watcher removes it after
/// the run; without a watcher, the exit hook removes it if nobody else uses it.
fn register(endpoint: &str, container: &str, lock_path: &Path) {
    let (run_pid, run_start) = reap::run_root();
    let reap = reap::Reap {
        run_pid,
        run_start,
        container: container.to_string(),
        lock: lock_path.to_path_buf(),
    };
    if crate::watcher::tell(endpoint, &reap.line()) {
        return;
    }
    let endpoint = endpoint.to_string();
    crate::worker::release_at_exit(Box::new(move || {
        lock::end_using(&reap.lock);
        if lock::held(&lock::reaper_path(&reap.lock)).unwrap_or(true) {
            return; // another process's watcher removes it after the run
        }
        let Ok(Some(users)) = lock::try_exclusive(&reap.lock) else {
            return; // in use elsewhere
        };
        let name = reap.container;
        crate::worker::submit(
            &endpoint,
            Box::new(move |docker| {
                Box::pin(async move {
                    match remove_patiently(&docker, ObjectKind::Container, &name).await {
                        Ok(()) => lock::forget(&reap.lock, users),
                        Err(err) => {
                            tracing::warn!(container = %name, %err, "removing a reused container failed");
                        }
                    }
                })
            }),
        );
    }));
}

/// The engine refused a create because the name is taken: Docker says 409;
/// Podman says 409 too, unless two creates race in its storage layer, where
/// it answers 500 "... is already in use".
fn name_taken(err: &bollard::errors::Error) -> bool {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code: 409, .. } => true,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 500,
            message,
        } => message.contains("already in use"),
        _ => false,
    }
}
