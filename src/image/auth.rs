//! Registry credentials: given explicitly or read from the Docker CLI's
//! `config.json`, so a user logged in with `docker login` needs nothing more.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use bollard::auth::DockerCredentials;

/// Credentials for one registry.
///
/// The password never appears in `Debug` output or errors.
///
/// ```
/// let auth = dockhand::RegistryAuth::basic("ci", "s3cret");
/// assert!(!format!("{auth:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    username: String,
    password: String,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl RegistryAuth {
    /// A user name and password (or access token).
    ///
    /// ```
    /// let auth = dockhand::RegistryAuth::basic("ci", "token");
    /// assert_eq!(auth.username(), "ci");
    /// ```
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        RegistryAuth {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The user name.
    ///
    /// ```
    /// assert_eq!(dockhand::RegistryAuth::basic("ci", "x").username(), "ci");
    /// ```
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The credentials `docker login` stored for `registry` (a host such as
    /// `ghcr.io` or `127.0.0.1:5000`; `docker.io` for Docker Hub) in the `auths`
    /// of `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. `None` when
    /// there are none; credential helpers (`credsStore`) are not run.
    ///
    /// ```
    /// let auth = dockhand::RegistryAuth::from_docker_config("registry.invalid");
    /// assert!(auth.is_none());
    /// ```
    pub fn from_docker_config(registry: &str) -> Option<Self> {
        let text = std::fs::read_to_string(docker_config_path()?).ok()?;
        from_config_text(&text, registry)
    }

    /// Every registry's credentials in the Docker config, keyed by host, as
    /// the engine wants them for the base images of a build.
    pub(crate) fn all_from_docker_config() -> HashMap<String, RegistryAuth> {
        docker_config_path()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .map(|text| all_from_config_text(&text))
            .unwrap_or_default()
    }

    pub(crate) fn credentials(&self, registry: &str) -> DockerCredentials {
        DockerCredentials {
            username: Some(self.username.clone()),
            password: Some(self.password.clone()),
            serveraddress: Some(registry.to_string()),
            ..Default::default()
        }
    }
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".docker").join("config.json"))
}

/// The host a `config.json` key names: keys may carry a scheme and a path
/// (`https://index.docker.io/v1/`).
fn normalize_server(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        other => other,
    }
}

fn from_config_text(text: &str, registry: &str) -> Option<RegistryAuth> {
    let config: serde_json::Value = serde_json::from_str(text).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let wanted = normalize_server(registry);
    let entry = auths
        .iter()
        .find(|(key, _)| normalize_server(key) == wanted)
        .map(|(_, v)| v)?;
    from_entry(entry)
}

fn all_from_config_text(text: &str) -> HashMap<String, RegistryAuth> {
    let Ok(config) = serde_json::from_str::<serde_json::Value>(text) else {
        return HashMap::new();
    };
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return HashMap::new();
    };
    auths
        .iter()
        .filter_map(|(key, entry)| Some((normalize_server(key).to_string(), from_entry(entry)?)))
        .collect()
}

fn from_entry(entry: &serde_json::Value) -> Option<RegistryAuth> {
    if let (Some(user), Some(pass)) = (
        entry.get("username").and_then(|v| v.as_str()),
        entry.get("password").and_then(|v| v.as_str()),
    ) {
        return Some(RegistryAuth::basic(user, pass));
    }
    let decoded = base64_decode(entry.get("auth")?.as_str()?)?;
    let (user, pass) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(RegistryAuth::basic(user, pass))
}

/// Standard base64 with or without padding; `None` on anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_auths_in_both_forms() {
        // "ci:pa:ss" in base64; a colon in the password survives.
        let text = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "Y2k6cGE6c3M="},
            "127.0.0.1:5000": {"username": "u", "password": "p"},
            "broken.example": {"auth": "!!"}
        }, "credsStore": "desktop"}"#;
        assert_eq!(
            from_config_text(text, "docker.io"),
            Some(RegistryAuth::basic("ci", "pa:ss"))
        );
        assert_eq!(
            from_config_text(text, "127.0.0.1:5000"),
            Some(RegistryAuth::basic("u", "p"))
        );
        assert_eq!(from_config_text(text, "broken.example"), None);
        assert_eq!(from_config_text(text, "other.example"), None);
        assert_eq!(from_config_text("not json", "docker.io"), None);
        let all = all_from_config_text(text);
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all["docker.io"].username(), "ci");
        assert_eq!(all["127.0.0.1:5000"].username(), "u");
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("a b").is_none());
    }
}
