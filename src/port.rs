//! Container ports and what the engine published them on.

use std::collections::HashMap;
use std::fmt;

use bollard::models::PortMap;

/// Transport protocol of a container port.
///
/// ```
/// assert_eq!(dockhand::Protocol::Udp.to_string(), "udp");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP, the default.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A port inside a container: a number and a protocol. A bare `u16` is TCP.
///
/// ```
/// use dockhand::Port;
/// assert_eq!(Port::from(8080).to_string(), "8080/tcp");
/// assert_eq!(Port::udp(53).to_string(), "53/udp");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Port {
    number: u16,
    protocol: Protocol,
}

impl Port {
    /// A TCP port.
    ///
    /// ```
    /// assert_eq!(dockhand::Port::tcp(80).number(), 80);
    /// ```
    pub fn tcp(number: u16) -> Self {
        Port {
            number,
            protocol: Protocol::Tcp,
        }
    }

    /// A UDP port.
    ///
    /// ```
    /// assert_eq!(dockhand::Port::udp(53).protocol(), dockhand::Protocol::Udp);
    /// ```
    pub fn udp(number: u16) -> Self {
        Port {
            number,
            protocol: Protocol::Udp,
        }
    }

    /// The port number.
    ///
    /// ```
    /// assert_eq!(dockhand::Port::from(5432).number(), 5432);
    /// ```
    pub fn number(&self) -> u16 {
        self.number
    }

    /// The protocol.
    ///
    /// ```
    /// assert_eq!(dockhand::Port::from(5432).protocol(), dockhand::Protocol::Tcp);
    /// ```
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
}

impl From<u16> for Port {
    fn from(number: u16) -> Self {
        Port::tcp(number)
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.number, self.protocol)
    }
}

/// One port to publish: which host address and port it binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publish {
    pub port: Port,
    /// `None`: the engine's default, 127.0.0.1 on a local engine and every
    /// address on a remote one.
    pub host_ip: Option<String>,
    pub host_port: Option<u16>,
}

/// Host ports per container port, as the engine reported them after start.
pub(crate) fn host_ports(map: Option<&PortMap>) -> HashMap<Port, u16> {
    let mut out = HashMap::new();
    for (key, bindings) in map.into_iter().flatten() {
        let Some(port) = parse_key(key) else { continue };
        let bindings = bindings.as_deref().unwrap_or_default();
        // Prefer an IPv4 binding: 127.0.0.1 is what tests connect to.
        let chosen = bindings
            .iter()
            .find(|b| !b.host_ip.as_deref().unwrap_or("").contains(':'))
            .or_else(|| bindings.first());
        if let Some(host_port) = chosen
            .and_then(|b| b.host_port.as_deref())
            .and_then(|p| p.parse().ok())
        {
            out.insert(port, host_port);
        }
    }
    out
}

fn parse_key(key: &str) -> Option<Port> {
    let (number, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let number = number.parse().ok()?;
    match proto {
        "tcp" => Some(Port::tcp(number)),
        "udp" => Some(Port::udp(number)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::PortBinding;

    fn binding(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: Some(ip.into()),
            host_port: Some(port.into()),
        }
    }

    #[test]
    fn reads_engine_port_map_preferring_ipv4() {
        let mut map = PortMap::new();
        map.insert(
            "8080/tcp".into(),
            Some(vec![binding("::", "32770"), binding("0.0.0.0", "32769")]),
        );
        map.insert("53/udp".into(), Some(vec![binding("127.0.0.1", "32771")]));
        map.insert("9999/tcp".into(), None);
        let ports = host_ports(Some(&map));
        assert_eq!(ports[&Port::tcp(8080)], 32769);
        assert_eq!(ports[&Port::udp(53)], 32771);
        assert!(!ports.contains_key(&Port::tcp(9999)));
        assert!(host_ports(None).is_empty());
    }
}
