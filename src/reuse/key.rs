//! The key a reused container is found by: a hash of its whole configuration,
//! with the image by id (a rebuilt tag is another configuration) and without
//! dockhand's own labels (which name the creating process).

use bollard::models::ContainerCreateBody;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::lock::hex;
use crate::labels::PREFIX;

/// Twenty hex digits of SHA-256 over the configuration, the image id, the
/// files copied in before start and the user: two processes asking for the
/// same container get the same key, any difference gives another.
pub(crate) fn config_key(body: &ContainerCreateBody, image_id: &str, files: &[u8], uid: u32) -> String {
    let mut body = body.clone();
    body.image = Some(image_id.to_string());
    if let Some(labels) = body.labels.as_mut() {
        labels.retain(|k, _| !k.starts_with(PREFIX));
    }
    let value = serde_json::to_value(&body).unwrap_or(Value::Null);
    let mut hasher = Sha256::new();
    hasher.update(canonical(&value).as_bytes());
    hasher.update([0]);
    hasher.update(Sha256::digest(files));
    hasher.update(uid.to_be_bytes());
    hex::short(&hasher.finalize(), 20)
}

/// JSON with every object's keys sorted: maps (labels, tmpfs, ports) come out
/// of a `HashMap` in any order, and serde_json keeps insertion order when some
/// crate in the build turns on its `preserve_order` feature.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .filter(|k| !map[*k].is_null())
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn body(labels: &[(&str, &str)], cmd: &[&str]) -> ContainerCreateBody {
        ContainerCreateBody {
            image: Some("busybox:latest".into()),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<HashMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn owner_labels_and_map_order_do_not_change_the_key() {
        let a = body(
            &[("team", "db"), ("dockhand.owner.pid", "1"), ("x", "1")],
            &["sleep", "9"],
        );
        let b = body(
            &[("x", "1"), ("dockhand.owner.pid", "2"), ("team", "db")],
            &["sleep", "9"],
        );
        assert_eq!(
            config_key(&a, "sha256:1", b"", 0),
            config_key(&b, "sha256:1", b"", 0)
        );
    }

    #[test]
    fn everything_else_does() {
        let a = body(&[("team", "db")], &["sleep", "9"]);
        let key = config_key(&a, "sha256:1", b"", 0);
        assert_eq!(key.len(), 20);
        assert_ne!(key, config_key(&a, "sha256:2", b"", 0), "image id");
        assert_ne!(key, config_key(&a, "sha256:1", b"file", 0), "files");
        assert_ne!(key, config_key(&a, "sha256:1", b"", 1000), "user");
        let other_cmd = body(&[("team", "db")], &["sleep", "10"]);
        assert_ne!(key, config_key(&other_cmd, "sha256:1", b"", 0), "cmd");
        let other_label = body(&[("team", "web")], &["sleep", "9"]);
        assert_ne!(key, config_key(&other_label, "sha256:1", b"", 0), "user label");
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_nulls() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":[{"d":null,"c":"x"}]}"#).unwrap();
        assert_eq!(canonical(&v), r#"{"a":[{"c":"x"}],"b":1}"#);
    }
}
