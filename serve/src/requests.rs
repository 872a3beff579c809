//! What clients send with each event, checked by type: a missing field or a
//! wrong type is a validation error naming it, never a crash.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::reply::Failure;

/// `create`: a container described as the docker CLI would.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Create {
    pub image: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `{"KEY": "value"}` or `["KEY=value"]`.
    #[serde(default)]
    pub env: Option<Env>,
    /// `"/host/path:/in/container[:ro]"` binds a host path, `"name:/path"` a
    /// named volume.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Container ports to publish on random host ports: `8080` or `"53/udp"`.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// `["sh", "-c", "..."]`, or one string run by `sh -c`.
    #[serde(default)]
    pub command: Option<Command>,
    #[serde(default)]
    pub workdir: Option<String>,
    /// A unix-socket channel: `true` for the default socket path, or a path.
    #[serde(default)]
    pub channel: Option<ChannelSpec>,
    /// Run an init process as PID 1, which passes signals on (a stop then
    /// takes no grace period for a process that ignores SIGTERM as PID 1).
    #[serde(default)]
    pub init: bool,
    /// Seconds a stop waits before it kills (the engine's default: 10).
    #[serde(default)]
    pub stop_timeout_s: Option<u64>,
    /// Wait for this log line before replying, to this and to every later
    /// `start`, `restart` and `update`.
    #[serde(default)]
    pub wait_log: Option<String>,
    /// Start it (default) or only create it.
    #[serde(default = "yes")]
    pub start: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Env {
    Map(BTreeMap<String, String>),
    List(Vec<String>),
}

impl Env {
    /// The pairs, or what is wrong with one.
    pub fn pairs(&self) -> Result<Vec<(String, String)>, String> {
        match self {
            Env::Map(map) => Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            Env::List(list) => list
                .iter()
                .map(|entry| match entry.split_once('=') {
                    Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                    _ => Err(format!("env entry {entry:?} is not KEY=value")),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PortSpec {
    Number(u16),
    Text(String),
}

impl PortSpec {
    pub fn port(&self) -> Result<dockhand::Port, String> {
        let (number, protocol) = match self {
            PortSpec::Number(n) => (n.to_string(), "tcp"),
            PortSpec::Text(t) => match t.split_once('/') {
                Some((n, p)) => (n.to_string(), p),
                None => (t.clone(), "tcp"),
            },
        };
        let number: u16 = number
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("port {number:?} is not a port number (1-65535)"))?;
        match protocol {
            "tcp" => Ok(dockhand::Port::tcp(number)),
            "udp" => Ok(dockhand::Port::udp(number)),
            other => Err(format!("port protocol {other:?} is neither tcp nor udp")),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Command {
    Shell(String),
    Argv(Vec<String>),
}

impl Command {
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Shell(line) => vec!["sh".into(), "-c".into(), line.clone()],
            Command::Argv(argv) => argv.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ChannelSpec {
    On(bool),
    At(String),
}

/// Every event about one container.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub id: String,
}

/// `update`: new files copied in, then a restart.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    pub id: String,
    pub files: Vec<NewFile>,
    #[serde(default = "yes")]
    pub restart: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFile {
    pub path: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub content_base64: Option<String>,
    #[serde(default = "file_mode")]
    pub mode: u32,
}

fn file_mode() -> u32 {
    0o644
}

/// `send-message`: one JSON message over the container's channel.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub id: String,
    pub message: Value,
    #[serde(default = "message_timeout")]
    pub timeout_ms: u64,
}

fn message_timeout() -> u64 {
    5000
}

/// `logs`: the last lines.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogTail {
    pub id: String,
    #[serde(default = "tail")]
    pub tail: usize,
}

fn tail() -> usize {
    100
}

/// Reads an event's data as `T`; events without data count as `{}`.
pub fn parse<T: serde::de::DeserializeOwned>(operation: &'static str, data: Value) -> Result<T, Failure> {
    let data = match data {
        Value::Null => Value::Object(Default::default()),
        other => other,
    };
    let id = data.get("id").and_then(Value::as_str).map(str::to_string);
    serde_json::from_value(data).map_err(|e| Failure {
        error_type: "validation",
        message: format!("bad data for {operation}: {e}"),
        operation,
        container_id: id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_create_needs_an_image_and_the_right_types() {
        let err = parse::<Create>("create", json!({"name": "x"})).unwrap_err();
        assert_eq!(err.error_type, "validation");
        assert!(err.message.contains("missing field `image`"), "{}", err.message);
        let err = parse::<Create>("create", json!({"image": 5})).unwrap_err();
        assert!(err.message.contains("invalid type"), "{}", err.message);
        let err = parse::<Create>("create", json!({"image": "i", "colour": "red"})).unwrap_err();
        assert!(err.message.contains("unknown field `colour`"), "{}", err.message);
        let ok = parse::<Create>(
            "create",
            json!({"image": "i", "ports": [80, "53/udp"], "command": "echo hi"}),
        )
        .unwrap();
        assert!(ok.start);
        assert_eq!(ok.ports[1].port().unwrap(), dockhand::Port::udp(53));
        assert_eq!(ok.command.unwrap().argv(), ["sh", "-c", "echo hi"]);
    }

    #[test]
    fn ports_and_env_entries_are_checked() {
        assert!(PortSpec::Number(0).port().is_err());
        assert!(PortSpec::Text("80/sctp".into())
            .port()
            .unwrap_err()
            .contains("sctp"));
        assert!(Env::List(vec!["NOEQUALS".into()]).pairs().is_err());
        assert_eq!(
            Env::List(vec!["A=b=c".into()]).pairs().unwrap(),
            [("A".into(), "b=c".into())]
        );
    }

    #[test]
    fn no_data_is_an_empty_object_and_a_target_needs_an_id() {
        let err = parse::<Target>("stop", Value::Null).unwrap_err();
        assert!(err.message.contains("missing field `id`"), "{}", err.message);
        let err = parse::<Target>("stop", json!({"id": 7})).unwrap_err();
        assert_eq!(err.container_id, None);
    }
}
