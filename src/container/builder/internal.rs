//! What other parts of the crate ask of a builder (a group stamping its
//! replicas), kept apart from the public setters.

use super::ContainerBuilder;
use crate::container::files;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::port::Port;
use crate::reuse::{key, lock, state};
use crate::volume::Mount;

impl ContainerBuilder {
    /// Adds a `dockhand.*` label that the user may not set themselves.
    pub(crate) fn reserved_label(mut self, key: &str, value: impl Into<String>) -> Self {
        self.reserved_labels.insert(key.to_string(), value.into());
        self
    }

    /// Gives the container this name (a replica's), whatever was set.
    pub(crate) fn named(mut self, name: String) -> Self {
        self.name = Some(name);
        self
    }

    /// The name the user gave, if any.
    pub(crate) fn given_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// A container port published on a fixed host port, if any: two replicas
    /// cannot both have it.
    pub(crate) fn fixed_host_port(&self) -> Option<(Port, u16)> {
        self.publish.iter().find_map(|p| Some((p.port, p.host_port?)))
    }

    /// The engine given to the builder, if any.
    pub(crate) fn given_engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// Starts from the newest cached state image of this configuration when
    /// there is one (see [`state`]); either way the container is labelled
    /// with the configuration's key and base image, by which a state of it is
    /// saved.
    pub(crate) fn start_from_cached_state(mut self) -> Self {
        self.cached_state = true;
        self
    }

    /// With [`start_from_cached_state`](Self::start_from_cached_state): labels the
    /// configuration's key and starts from its state, if any; returns the
    /// base image's id when it looked it up. The key is taken before the
    /// state is mounted, so a state saved later in the run does not make
    /// another configuration of it.
    pub(super) async fn resolve_cached_state(
        &mut self,
        engine: &Engine,
        base: Option<&str>,
    ) -> Result<Option<String>> {
        if !self.cached_state {
            return Ok(None);
        }
        self.cached_state = false;
        // A caller that looked the image up already saves an engine call.
        let base = match base {
            Some(id) => id.to_string(),
            None => engine.pull_image(&self.image, &self.pull).await?.id,
        };
        let body = self.to_create_body_binding("cached", super::create::LOOPBACK)?;
        let packed = match self.files.is_empty() {
            true => Vec::new(),
            false => files::pack(&self.files, &format!("container (image {})", self.image))?,
        };
        let key = key::config_key(&body, &base, &packed, lock::uid());
        if let Some(found) = state::find(engine.docker(), &key).await? {
            tracing::debug!(volume = %found.volume, %key, "starting from a cached state");
            self.run_from_state(&found.volume);
        }
        self.reserved_labels.insert(state::OF.to_string(), key);
        self.reserved_labels.insert(state::BASE.to_string(), base.clone());
        Ok(Some(base))
    }

    /// Mounts the state, whose start script runs before anything else.
    fn run_from_state(&mut self, volume: &str) {
        self.run_first.insert(0, state::START.to_string());
        self.mounts
            .push(Mount::named_volume(volume, state::MOUNT).read_only());
    }

    /// Runs `argv` (a program that ends by exec'ing the arguments after it)
    /// before the entrypoint the container would have run.
    pub(crate) fn run_first<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.run_first.extend(argv.into_iter().map(Into::into));
        self
    }

    /// With [`run_first`](Self::run_first) scripts: spells out the image's
    /// entrypoint and command behind them (an entrypoint set at create drops
    /// the image's command, so both are given). `base` is the image's id when
    /// the caller looked it up already.
    pub(super) async fn resolve_run_first(&mut self, engine: &Engine, base: Option<&str>) -> Result<()> {
        if self.run_first.is_empty() {
            return Ok(());
        }
        let base = match base {
            Some(id) => id.to_string(),
            None => engine.pull_image(&self.image, &self.pull).await?.id,
        };
        let image = engine
            .docker()
            .inspect_image(&base)
            .await
            .map_err(|e| Error::engine("inspect", format!("image {}", self.image), e))?;
        let config = image.config.unwrap_or_default();
        let entrypoint = self.entrypoint.clone().or(config.entrypoint).unwrap_or_default();
        if self.cmd.is_none() {
            self.cmd = config.cmd;
        }
        self.entrypoint = Some(
            std::mem::take(&mut self.run_first)
                .into_iter()
                .chain(entrypoint)
                .collect(),
        );
        Ok(())
    }
}
