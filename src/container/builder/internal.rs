//! What other parts of the crate ask of a builder (a group stamping its
//! replicas), kept apart from the public setters.

use super::ContainerBuilder;
use crate::engine::Engine;
use crate::port::Port;

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
}
