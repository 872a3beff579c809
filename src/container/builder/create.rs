//! From a builder to the engine's create request: every check that needs no
//! engine, then the request itself.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, Mount as EngineMount, NetworkingConfig, PortBinding,
};

use super::ContainerBuilder;
use crate::container::config::{Healthcheck, RestartPolicy};
use crate::error::{Error, Result};
use crate::labels;
use crate::port::{Port, Protocol};
use crate::units::{parse_cpus, parse_memory};
use crate::volume::Mount;
use crate::wait::WaitFor;

/// Where a local engine binds published ports.
pub(crate) const LOOPBACK: &str = "127.0.0.1";
/// Where a remote engine binds them: this machine must reach them.
pub(crate) const EVERY_ADDRESS: &str = "0.0.0.0";

/// What the checks produced for the request.
struct Checked {
    labels: HashMap<String, String>,
    mounts: Vec<EngineMount>,
    memory: Option<i64>,
    nano_cpus: Option<i64>,
}

impl ContainerBuilder {
    /// The container's name: the given one, or a fresh unique one.
    pub(super) fn resolved_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("dockhand-{}", labels::random_hex(12)))
    }

    fn check_condition(&self, condition: &WaitFor) -> std::result::Result<(), String> {
        let published = |port: &Port| self.publish.iter().any(|p| p.port == *port);
        match condition {
            WaitFor::Log(log) => log.matcher().map(|_| ()),
            WaitFor::Port(port) if port.protocol() == Protocol::Udp => Err(format!(
                "cannot wait for UDP port {port}: nothing tells when a UDP service listens; wait for a log line instead"
            )),
            WaitFor::Port(port) if !published(port) => Err(format!(
                "waiting for port {port}, which is not exposed; add .expose({})",
                port.number()
            )),
            WaitFor::Http(http) if !published(&http.port) => Err(format!(
                "waiting for HTTP on port {}, which is not exposed; add .expose({})",
                http.port,
                http.port.number()
            )),
            WaitFor::Protocol(wait) if !published(&wait.port) => Err(format!(
                "waiting for {wait}, which is not exposed; add .expose({})",
                wait.port.number()
            )),
            WaitFor::Healthy if self.healthcheck.is_none() => Ok(()), // the image may define one
            WaitFor::Command(cmd) if cmd.is_empty() => Err("the wait command is empty".into()),
            _ => Ok(()),
        }
    }

    /// Checks everything that can be checked without the engine, and converts
    /// what needs converting.
    fn checked(&self, resource: &str) -> Result<Checked> {
        let bad = |reason: String| Error::invalid(resource, reason);
        if self.image.trim().is_empty() {
            return Err(bad("the image name is empty".into()));
        }
        if self.image.chars().any(char::is_whitespace) {
            return Err(bad(format!(
                "the image name {:?} contains white space",
                self.image
            )));
        }
        if self.startup_timeout.is_zero() {
            return Err(bad("the startup timeout is zero".into()));
        }
        for p in &self.publish {
            if p.port.number() == 0 {
                return Err(bad(
                    "port 0 cannot be exposed; give the port the service listens on".into(),
                ));
            }
            if let Some(ip) = p
                .host_ip
                .as_deref()
                .filter(|ip| ip.parse::<std::net::IpAddr>().is_err())
            {
                return Err(bad(format!(
                    "host address {ip:?} for port {} is not an IP address",
                    p.port
                )));
            }
        }
        for (key, _) in &self.env {
            if key.is_empty() || key.contains('=') {
                return Err(bad(format!(
                    "environment variable name {key:?} is empty or contains '='"
                )));
            }
        }
        if let Some(problem) = self.channel_problem() {
            return Err(bad(problem));
        }
        for file in &self.files {
            file.dest().map_err(|e| bad(format!("file to copy: {e}")))?;
        }
        let mounts = self
            .mounts
            .iter()
            .map(Mount::to_engine)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(&bad)?;
        if let Some(problem) = self.healthcheck.as_ref().and_then(Healthcheck::problem) {
            return Err(bad(problem));
        }
        let memory = self
            .memory
            .as_deref()
            .map(parse_memory)
            .transpose()
            .map_err(bad)?;
        let nano_cpus = self.cpus.as_deref().map(parse_cpus).transpose().map_err(bad)?;
        for condition in self.waits.iter().flat_map(WaitFor::walk) {
            self.check_condition(condition).map_err(&bad)?;
        }
        let mut labels = labels::stamp(resource, &self.labels)?;
        labels.extend(self.reserved_labels.clone());
        Ok(Checked {
            labels,
            mounts,
            memory,
            nano_cpus,
        })
    }

    fn host_config(
        &self,
        bind: &str,
        mounts: Vec<EngineMount>,
        memory: Option<i64>,
        nano_cpus: Option<i64>,
    ) -> HostConfig {
        let port_bindings = (!self.publish.is_empty()).then(|| {
            self.publish
                .iter()
                .map(|p| {
                    let binding = PortBinding {
                        host_ip: Some(p.host_ip.clone().unwrap_or_else(|| bind.to_string())),
                        host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
                    };
                    (p.port.to_string(), Some(vec![binding]))
                })
                .collect::<HashMap<_, _>>()
        });
        HostConfig {
            port_bindings,
            memory,
            nano_cpus,
            privileged: self.privileged.then_some(true),
            init: self.init.then_some(true),
            cap_add: (!self.cap_add.is_empty()).then(|| self.cap_add.clone()),
            cap_drop: (!self.cap_drop.is_empty()).then(|| self.cap_drop.clone()),
            restart_policy: self.restart.map(RestartPolicy::to_engine),
            tmpfs: (!self.tmpfs.is_empty()).then(|| self.tmpfs.iter().cloned().collect()),
            mounts: (!mounts.is_empty()).then_some(mounts),
            // The first network is joined at create time; engines before API 1.44
            // take only one there, so the others are connected before start.
            network_mode: self.networks.first().map(|(n, _)| n.name().to_string()),
            ..Default::default()
        }
    }

    /// Checks the builder and produces the engine's create request, for a
    /// local engine.
    pub(crate) fn to_create_body(&self, name: &str) -> Result<ContainerCreateBody> {
        self.to_create_body_binding(name, LOOPBACK)
    }

    /// The create request, ports published without an address of their own
    /// bound to `bind`.
    pub(crate) fn to_create_body_binding(&self, name: &str, bind: &str) -> Result<ContainerCreateBody> {
        let resource = format!("container {name} (image {:?})", self.image);
        let Checked {
            labels,
            mounts,
            memory,
            nano_cpus,
        } = self.checked(&resource)?;
        let networking_config = self.networks.first().map(|(network, aliases)| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.name().to_string(), endpoint(aliases))])),
        });
        Ok(ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: self.cmd.clone(),
            entrypoint: self.entrypoint.clone(),
            env: (!self.env.is_empty()).then(|| self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            exposed_ports: (!self.publish.is_empty())
                .then(|| self.publish.iter().map(|p| p.port.to_string()).collect()),
            hostname: self.hostname.clone(),
            user: self.user.clone(),
            working_dir: self.workdir.clone(),
            labels: Some(labels),
            healthcheck: self.healthcheck.as_ref().map(Healthcheck::to_engine),
            stop_timeout: self.stop_timeout.map(|d| d.as_secs() as i64),
            host_config: Some(self.host_config(bind, mounts, memory, nano_cpus)),
            networking_config,
            ..Default::default()
        })
    }
}

/// An endpoint on a network with these aliases.
pub(crate) fn endpoint(aliases: &[String]) -> EndpointSettings {
    EndpointSettings {
        aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Container;
    use std::time::Duration;

    #[test]
    fn a_remote_engine_binds_default_ports_everywhere_and_keeps_explicit_ones() {
        let body = Container::builder("busybox")
            .expose(8080)
            .publish_on(9090, "127.0.0.1", None)
            .to_create_body_binding("c", EVERY_ADDRESS)
            .unwrap();
        let bindings = body.host_config.unwrap().port_bindings.unwrap();
        let ip = |key: &str| bindings[key].as_ref().unwrap()[0].host_ip.clone();
        assert_eq!(ip("8080/tcp").as_deref(), Some("0.0.0.0"));
        assert_eq!(ip("9090/tcp").as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn defaults_bind_loopback_and_stamp_labels() {
        let body = Container::builder("busybox")
            .expose(8080)
            .label("team", "a")
            .to_create_body("c1")
            .unwrap();
        let bindings = body.host_config.unwrap().port_bindings.unwrap();
        let b = bindings["8080/tcp"].as_ref().unwrap()[0].clone();
        assert_eq!(b.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(b.host_port.as_deref(), Some(""));
        let labels = body.labels.unwrap();
        assert_eq!(labels["team"], "a");
        assert_eq!(labels[labels::MANAGED], "true");
    }

    #[test]
    fn limits_and_options_reach_the_engine() {
        let body = Container::builder("busybox")
            .memory("64m")
            .cpus("500m")
            .env("A", "1")
            .init()
            .restart(RestartPolicy::UnlessStopped)
            .stop_timeout(Duration::from_secs(3))
            .expose_fixed(Port::udp(53), 5353)
            .to_create_body("c2")
            .unwrap();
        let hc = body.host_config.unwrap();
        assert_eq!(hc.memory, Some(64 << 20));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.init, Some(true));
        assert_eq!(body.env.unwrap(), ["A=1"]);
        assert_eq!(body.stop_timeout, Some(3));
        assert_eq!(body.exposed_ports.unwrap(), ["53/udp"]);
        let b = hc.port_bindings.unwrap()["53/udp"].as_ref().unwrap()[0].clone();
        assert_eq!(b.host_port.as_deref(), Some("5353"));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let reason = |b: ContainerBuilder| b.to_create_body("c").unwrap_err().to_string();
        assert!(reason(Container::builder("")).contains("image name is empty"));
        assert!(reason(Container::builder("busybox").expose(0)).contains("port 0"));
        assert!(reason(Container::builder("busybox").memory("lots")).contains("\"lots\""));
        assert!(reason(Container::builder("busybox").cpus("x")).contains("cpus"));
        assert!(reason(Container::builder("busybox").env("A=B", "c")).contains("'='"));
        assert!(reason(Container::builder("busybox").label("dockhand.owner.pid", "1")).contains("reserved"));
        assert!(reason(Container::builder("busybox").wait_for(WaitFor::port(80))).contains(".expose(80)"));
        assert!(reason(Container::builder("busybox").wait_for(WaitFor::http(80))).contains(".expose(80)"));
        assert!(reason(Container::builder("busybox").wait_for(WaitFor::log_regex("("))).contains("regex"));
        assert!(reason(Container::builder("busybox").copy_file("../x", vec![], 0o644)).contains(".."));
        assert!(
            reason(Container::builder("busybox").publish_on(80, "localhost", None)).contains("IP address")
        );
        let udp = Container::builder("busybox")
            .expose(Port::udp(53))
            .wait_for(WaitFor::port(Port::udp(53)));
        assert!(reason(udp).contains("UDP"));
    }
}
