//! Starting a container: create it under a guard, then bring it up (networks,
//! files, start, ports, waits). Every failure after the engine created it goes
//! through one place that removes it before returning.

use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::CreateContainerOptions;
use tokio::time::Instant;

use super::ContainerBuilder;
use crate::container::files;
use crate::container::Container;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::image::PullPolicy;
use crate::remove::{remove_object, ObjectKind};
use crate::volume::Mount;
use crate::wait::WaitFor;

impl ContainerBuilder {
    /// Creates, starts and waits for the container. Every failure after the
    /// engine created it removes it again before returning.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let c = dockhand::Container::builder("fixtures/busybox:latest")
    ///     .cmd(["sleep", "60"])
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(self) -> Result<Container> {
        if let Some(lifetime) = self.reuse {
            return self.start_reused(lifetime.effective()).await;
        }
        self.start_owned().await
    }

    /// Creates and starts a container of this process's own.
    pub(super) async fn start_owned(mut self) -> Result<Container> {
        if self.cached_state || !self.run_first.is_empty() {
            let engine = crate::owned::engine_for(self.engine.clone()).await?;
            let base = self.resolve_cached_state(&engine, None).await?;
            self.resolve_run_first(&engine, base.as_deref()).await?;
            self.engine = Some(engine);
        }
        let (container, begun) = self.create_guarded().await?;
        match self.bring_up(&container, begun).await {
            Ok(()) => {
                tracing::debug!(container = %container.describe(), elapsed_ms = begun.elapsed().as_millis() as u64, "container ready");
                Ok(container)
            }
            Err(err) => Err(container.fail_removing(err).await),
        }
    }

    /// Creates the container (pulling the image first if the policy or its
    /// absence says so) and wraps it in its guard at once. Returns when the
    /// startup clock began: after any pull, which is not the service's start.
    async fn create_guarded(&self) -> Result<(Container, Instant)> {
        let name = self.resolved_name();
        let mut body = self.to_create_body(&name)?;
        let engine = crate::owned::engine_for(self.engine.clone()).await?;
        if !engine.is_local() {
            body = self.to_create_body_binding(&name, super::create::EVERY_ADDRESS)?;
        }
        let channel = self.attach_channel(&engine, &name, &mut body)?;
        let created = self.create_pulling(&engine, &name, &body).await;
        let (id, begun) = match (created, &channel) {
            (Ok(created), _) => created,
            (Err(err), Some((dir, _))) => {
                crate::channel::remove_dir(dir);
                return Err(err);
            }
            (Err(err), None) => return Err(err),
        };
        let holds = self
            .networks
            .iter()
            .map(|(n, _)| n.hold())
            .chain(self.mounts.iter().filter_map(Mount::hold))
            .collect();
        let published = self.publish.iter().map(|p| p.port).collect();
        let container = Container::new(engine, id, name, self.image.clone(), published, holds);
        if let Some((network, aliases)) = self.networks.first() {
            container.remember_aliases(network, aliases);
        }
        if let Some((dir, socket)) = channel {
            container.open_channel(dir, &socket)?;
        }
        Ok((container, begun))
    }

    /// Creates the container, pulling the image when the policy or its
    /// absence says so; returns its id and when the startup clock began.
    async fn create_pulling(
        &self,
        engine: &Engine,
        name: &str,
        body: &ContainerCreateBody,
    ) -> Result<(String, Instant)> {
        let resource = format!("container {name} (image {})", self.image);
        if self.pull.policy == PullPolicy::Always {
            engine.pull_image(&self.image, &self.pull).await?;
        }
        let begun = Instant::now();
        let limit = self.startup_timeout;
        if let Some(id) = create(engine, name, body, &resource, limit).await? {
            return Ok((id, begun));
        }
        engine.pull_image(&self.image, &self.pull).await?;
        let begun = Instant::now();
        let id = create(engine, name, body, &resource, limit)
            .await?
            .ok_or_else(|| Error::ImageNotFound {
                image: self.image.clone(),
                reason: "the engine still lacks it after pulling".into(),
            })?;
        Ok((id, begun))
    }

    /// Creates the container, with its networks and files, without starting
    /// it; [`Container::start`] starts it later. The builder's waits are not
    /// used.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let c = dockhand::Container::builder("fixtures/busybox:latest")
    ///     .cmd(["sleep", "60"])
    ///     .create()
    ///     .await?;
    /// c.start().await?;
    /// # Ok(()) }
    /// ```
    pub async fn create(self) -> Result<Container> {
        if self.reuse.is_some() {
            return Err(Error::invalid(
                format!("container (image {})", self.image),
                "a reused container is found or started, not created: use start()",
            ));
        }
        self.create_stopped().await
    }

    /// Creates the container with its networks and files, without starting
    /// it (a replica of a group held stopped).
    pub(crate) async fn create_stopped(&self) -> Result<Container> {
        let (container, _) = self.create_guarded().await?;
        match self.prepare(&container).await {
            Ok(()) => Ok(container),
            Err(err) => Err(container.fail_removing(err).await),
        }
    }

    /// Everything between create and ready; the caller removes the container
    /// when this fails.
    async fn bring_up(&self, container: &Container, begun: Instant) -> Result<()> {
        self.prepare(container).await?;
        self.start_and_wait(container, begun, false).await
    }

    /// What a created container needs before its first start.
    async fn prepare(&self, container: &Container) -> Result<()> {
        for (network, aliases) in self.networks.iter().skip(1) {
            container.connect_endpoint(network, aliases).await?;
        }
        if !self.files.is_empty() {
            let tar = files::pack(&self.files, &container.describe())?;
            files::upload(container.docker(), container.id(), tar, &container.describe()).await?;
        }
        Ok(())
    }

    /// Starts a created (or, `again`, a stopped) container and waits for the
    /// builder's conditions, the startup clock running from `begun`. Started
    /// again, its log conditions count only the new run's lines.
    pub(crate) async fn start_and_wait(
        &self,
        container: &Container,
        begun: Instant,
        again: bool,
    ) -> Result<()> {
        container
            .docker()
            .start_container(container.id(), None)
            .await
            .map_err(|e| Error::engine("start", container.describe(), e))?;
        container.refresh_ports().await?;
        self.wait_ready(container, begun, again).await
    }

    /// Waits for the builder's conditions on a running container; `again`: its
    /// log conditions count only the current run's lines.
    pub(super) async fn wait_ready(&self, container: &Container, begun: Instant, again: bool) -> Result<()> {
        if self.waits.is_empty() {
            return Ok(());
        }
        let condition = match self.waits.as_slice() {
            [one] => one.clone(),
            all => WaitFor::All(all.to_vec()),
        };
        let logs_matter = condition.walk().iter().any(|c| matches!(c, WaitFor::Log(_)));
        let since = match again && logs_matter {
            true => container.current_run_since().await?,
            false => None,
        };
        match container
            .wait_for(&condition, begun + self.startup_timeout, since.as_deref())
            .await
        {
            Ok(()) => Ok(()),
            Err(reason) => Err(container.not_ready(&condition, begun.elapsed(), reason).await),
        }
    }
}

/// Creates the container; `None` when the engine lacks the image.
async fn create(
    engine: &Engine,
    name: &str,
    body: &ContainerCreateBody,
    resource: &str,
    limit: Duration,
) -> Result<Option<String>> {
    let options = CreateContainerOptions {
        name: Some(name.to_string()),
        ..Default::default()
    };
    let created = engine.docker().create_container(Some(options), body.clone());
    // Until the engine answers, no guard holds what it may be creating: if
    // this future is dropped (a caller's timeout, a group's cancelled
    // replacement) or times out, the container is removed by its name.
    let mut pending = PendingCreate {
        engine,
        name,
        answered: false,
    };
    let answer = tokio::time::timeout(limit, created).await;
    pending.answered = answer.is_ok();
    match answer {
        Err(_) => Err(Error::Timeout {
            operation: "create",
            resource: resource.to_string(),
            after: limit,
        }),
        Ok(Ok(created)) => Ok(Some(created.id)),
        Ok(Err(err)) if is_missing_image(&err) => Ok(None),
        Ok(Err(err)) => Err(Error::engine("create", resource, err)),
    }
}

/// A 404 can also mean a network that is gone; only a missing image is pulled.
fn is_missing_image(err: &bollard::errors::Error) -> bool {
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message,
        } => message.to_lowercase().contains("no such image"),
        _ => false,
    }
}

/// A create request the engine has not answered yet.
struct PendingCreate<'a> {
    engine: &'a Engine,
    name: &'a str,
    answered: bool,
}

impl Drop for PendingCreate<'_> {
    fn drop(&mut self) {
        if !self.answered {
            remove_late_create(self.engine, self.name);
        }
    }
}

/// A create that timed out or was abandoned may still finish in the engine,
/// leaving a container no guard holds: remove it by its name, now and once
/// more when a late create would have landed.
fn remove_late_create(engine: &Engine, name: &str) {
    let name = name.to_string();
    crate::worker::submit(
        engine.endpoint(),
        Box::new(move |docker| {
            Box::pin(async move {
                for pause in [Duration::ZERO, Duration::from_secs(2), Duration::from_secs(10)] {
                    tokio::time::sleep(pause).await;
                    if let Err(err) = remove_object(&docker, ObjectKind::Container, &name).await {
                        tracing::warn!(container = %name, %err, "removing a container whose create timed out failed");
                    }
                }
            })
        }),
    );
}
