//! Replies in one format: a success is the operation's JSON, a failure is
//! `{error: true, error_type, message, details: {container_id, operation}, timestamp}`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// A failed operation, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `validation`, `not_found`, `image_not_found`, `registry_auth`, `timeout`, `channel`,
    /// `not_running`, `not_ready`, `conflict`, `unauthorized`,
    /// `engine_unavailable` or `engine`.
    pub error_type: &'static str,
    pub message: String,
    pub operation: &'static str,
    pub container_id: Option<String>,
}

impl Failure {
    pub fn new(error_type: &'static str, operation: &'static str, message: impl Into<String>) -> Self {
        Failure {
            error_type,
            message: message.into(),
            operation,
            container_id: None,
        }
    }

    pub fn on(mut self, container_id: &str) -> Self {
        self.container_id = Some(container_id.to_string());
        self
    }

    /// A dockhand error, typed by what the client can do about it.
    pub fn from_error(operation: &'static str, container_id: Option<&str>, err: &dockhand::Error) -> Self {
        use dockhand::Error as E;
        let error_type = match err {
            // Not in the engine, and no registry gave it: either way the
            // image cannot be had; the message says which.
            E::ImageNotFound { .. } | E::RegistryUnreachable { .. } => "image_not_found",
            E::RegistryAuth { .. } => "registry_auth",
            E::InvalidConfig { .. } | E::PortNotExposed { .. } => "validation",
            E::NotReady(_) => "not_ready",
            E::Channel { .. } => "channel",
            E::NotRunning { .. } => "not_running",
            E::Conflict { .. } => "conflict",
            E::EngineUnavailable { .. } => "engine_unavailable",
            _ if err.is_timeout() => "timeout",
            _ if err.is_not_found() => "not_found",
            _ if err.to_string().contains("409") => "conflict",
            _ => "engine",
        };
        Failure {
            error_type,
            message: err.to_string(),
            operation,
            container_id: container_id.map(str::to_string),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "error": true,
            "error_type": self.error_type,
            "message": self.message,
            "details": {"container_id": self.container_id, "operation": self.operation},
            "timestamp": timestamp(SystemTime::now()),
        })
    }
}

/// What an operation answers.
pub type Reply = Result<Value, Failure>;

/// The reply as sent: the value, or the failure's JSON.
pub fn to_json(reply: &Reply) -> Value {
    match reply {
        Ok(value) => value.clone(),
        Err(failure) => failure.to_json(),
    }
}

/// RFC 3339 in UTC with milliseconds: `2026-12-02T20:16:50.123Z`.
pub fn timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (the
/// algorithm of Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let at = UNIX_EPOCH + Duration::from_millis(1_796_242_610_123);
        assert_eq!(timestamp(at), "2026-12-02T20:16:50.123Z");
        // A leap day.
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn a_failure_has_the_one_format() {
        let failure = Failure::new("not_found", "stop", "no such container").on("abc");
        let value = failure.to_json();
        assert_eq!(value["error"], true);
        assert_eq!(value["error_type"], "not_found");
        assert_eq!(value["details"]["container_id"], "abc");
        assert_eq!(value["details"]["operation"], "stop");
        assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
