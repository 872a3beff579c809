//! What other parts of the crate ask of a builder (a group stamping its
//! replicas), kept apart from the public setters.

use super::ContainerBuilder;
use crate::container::files;
use crate::engine::Engine;
use crate::error::Result;
use crate::port::Port;
use crate::reuse::{key, lock, state};

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
    /// configuration's key and swaps the image for its state image, if any.
    /// The key is taken before the swap, so a state saved later in the run
    /// does not make another configuration of it.
    pub(super) async fn resolve_cached_state(&mut self, engine: &Engine) -> Result<()> {
        if !self.cached_state {
            return Ok(());
        }
        self.cached_state = false;
        let base = engine.pull_image(&self.image, &self.pull).await?.id;
        let body = self.to_create_body_binding("cached", super::create::LOOPBACK)?;
        let packed = match self.files.is_empty() {
            true => Vec::new(),
            false => files::pack(&self.files, &format!("container (image {})", self.image))?,
        };
        let key = key::config_key(&body, &base, &packed, lock::uid());
        if let Some(found) = state::find(engine.docker(), &key).await? {
            tracing::debug!(image = %found.image, %key, "starting from a cached state");
            self.image = found.image;
        }
        self.reserved_labels.insert(state::OF.to_string(), key);
        self.reserved_labels.insert(state::BASE.to_string(), base);
        Ok(())
    }
}
