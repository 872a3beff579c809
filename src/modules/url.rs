//! Connection URLs the modules hand out, with user and password percent-encoded
//! so that any character (`@`, `:`, `/`, `%`) survives.

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn escape(part: &str) -> String {
    part.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `scheme://[user][:password]@host:port/path`; the user-info part is left out
/// when both are absent, and an IPv6 host is bracketed.
pub(crate) fn service_url(
    scheme: &str,
    user: Option<&str>,
    password: Option<&str>,
    host: &str,
    port: u16,
    path: &str,
) -> String {
    let userinfo = match (user, password) {
        (None, None) => String::new(),
        (user, password) => format!(
            "{}{}@",
            escape(user.unwrap_or_default()),
            password.map(|p| format!(":{}", escape(p))).unwrap_or_default()
        ),
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("{scheme}://{userinfo}{host}:{port}/{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_password_survive_any_character() {
        assert_eq!(
            service_url(
                "postgres",
                Some("a@b"),
                Some("p:w/d%?#@"),
                "127.0.0.1",
                5432,
                "db"
            ),
            "postgres://a%40b:p%3Aw%2Fd%25%3F%23%40@127.0.0.1:5432/db"
        );
        assert_eq!(
            service_url("redis", None, Some("s@cret"), "127.0.0.1", 6379, "3"),
            "redis://:s%40cret@127.0.0.1:6379/3"
        );
        assert_eq!(
            service_url("redis", None, None, "::1", 6379, "0"),
            "redis://[::1]:6379/0"
        );
        assert_eq!(escape("plain-1.x_~"), "plain-1.x_~");
    }
}
