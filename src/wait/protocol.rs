//! Readiness by the service's own protocol: the server answers a real
//! request, which no port proxy, init server or half-started daemon can fake.
//!
//! Each probe is what the service's own "is it up" tool does: PostgreSQL's
//! startup message (as `pg_isready`), Redis's `PING`, the MySQL handshake the
//! server sends first. An answer that says "starting up" or "loading" is not
//! ready; any other answer from the server is (it accepts connections; whether
//! a client's password is right is the client's business).

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::port::Port;

/// How long one probe may take before it counts as "not yet". A server that
/// is up answers in about a millisecond; a loaded one forks its backend in
/// tens.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Waits until a server answers its protocol on a port; made by
/// [`WaitFor::postgres`](crate::WaitFor::postgres),
/// [`WaitFor::redis`](crate::WaitFor::redis) and
/// [`WaitFor::mysql`](crate::WaitFor::mysql).
///
/// ```
/// use dockhand::WaitFor;
/// let w = WaitFor::postgres(5432).user("app").database("orders");
/// assert_eq!(w.to_string(), "PostgreSQL to answer on port 5432/tcp");
/// ```
#[derive(Debug, Clone)]
pub struct ProtocolWait {
    pub(crate) port: Port,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Postgres { user: String, database: String },
    Redis,
    MySql,
}

/// What one probe found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Ready,
    /// Why not, for the trace.
    NotYet(String),
}

impl ProtocolWait {
    pub(crate) fn postgres(port: Port) -> Self {
        ProtocolWait {
            port,
            kind: Kind::Postgres {
                user: "postgres".into(),
                database: "postgres".into(),
            },
        }
    }

    pub(crate) fn redis(port: Port) -> Self {
        ProtocolWait {
            port,
            kind: Kind::Redis,
        }
    }

    pub(crate) fn mysql(port: Port) -> Self {
        ProtocolWait {
            port,
            kind: Kind::MySql,
        }
    }

    /// The user a PostgreSQL probe names (default `postgres`): the server
    /// answers any user, but naming one that exists keeps its log free of
    /// "role does not exist".
    ///
    /// ```
    /// let w = dockhand::WaitFor::postgres(5432).user("app");
    /// ```
    pub fn user(mut self, name: impl Into<String>) -> Self {
        if let Kind::Postgres { user, .. } = &mut self.kind {
            *user = name.into();
        }
        self
    }

    /// The database a PostgreSQL probe names (default `postgres`).
    ///
    /// ```
    /// let w = dockhand::WaitFor::postgres(5432).database("orders");
    /// ```
    pub fn database(mut self, name: impl Into<String>) -> Self {
        if let Kind::Postgres { database, .. } = &mut self.kind {
            *database = name.into();
        }
        self
    }

    /// Asks the server once.
    pub(crate) async fn ask(&self, host: &str, port: u16) -> Answer {
        let attempt = async {
            let mut stream = TcpStream::connect((host, port)).await?;
            stream.set_nodelay(true)?;
            match &self.kind {
                Kind::Postgres { user, database } => {
                    stream.write_all(&startup_message(user, database)).await?;
                }
                Kind::Redis => stream.write_all(b"PING\r\n").await?,
                // The server speaks first.
                Kind::MySql => {}
            }
            let mut reply = vec![0u8; 512];
            let mut len = 0;
            // Enough of the reply to judge it: a whole line or packet head.
            while len < reply.len() {
                let n = stream.read(&mut reply[len..]).await?;
                if n == 0 {
                    break;
                }
                len += n;
                if self.judge(&reply[..len]).is_some() {
                    break;
                }
            }
            reply.truncate(len);
            Ok::<_, std::io::Error>(reply)
        };
        match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
            Err(_) => Answer::NotYet("no answer within a second".into()),
            Ok(Err(err)) => Answer::NotYet(err.to_string()),
            Ok(Ok(reply)) => self
                .judge(&reply)
                .unwrap_or_else(|| Answer::NotYet(format!("{} bytes, not an answer yet", reply.len()))),
        }
    }

    /// The verdict on a reply, `None` while it is too short to tell.
    fn judge(&self, reply: &[u8]) -> Option<Answer> {
        match self.kind {
            Kind::Postgres { .. } => judge_postgres(reply),
            Kind::Redis => judge_redis(reply),
            Kind::MySql => judge_mysql(reply),
        }
    }
}

impl fmt::Display for ProtocolWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.kind {
            Kind::Postgres { .. } => "PostgreSQL",
            Kind::Redis => "Redis",
            Kind::MySql => "MySQL",
        };
        write!(f, "{name} to answer on port {}", self.port)
    }
}

/// A protocol 3.0 startup message naming `user` and `database`.
fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (key, value) in [("user", user), ("database", database)] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    message.extend(body);
    message
}

/// `R` (an authentication request, or OK): the server accepts connections.
/// `E` with SQLSTATE 57P03: it is starting up (or shutting down).
fn judge_postgres(reply: &[u8]) -> Option<Answer> {
    match reply.first()? {
        b'R' => Some(Answer::Ready),
        b'E' => {
            // Fields after the 5-byte header: a type byte, a C string, ...
            let body = reply.get(5..)?;
            if !body.contains(&0) {
                return None;
            }
            let code = body
                .split(|&b| b == 0)
                .find_map(|field| field.strip_prefix(b"C"))
                .map(|c| String::from_utf8_lossy(c).into_owned());
            match code.as_deref() {
                Some("57P03") => Some(Answer::NotYet("the database system is starting up".into())),
                // Any other refusal comes from a server that runs.
                _ => Some(Answer::Ready),
            }
        }
        other => Some(Answer::NotYet(format!("unexpected first byte {other:#04x}"))),
    }
}

/// `+PONG`, or an error other than `-LOADING` (`-NOAUTH`: up, wants a
/// password).
fn judge_redis(reply: &[u8]) -> Option<Answer> {
    let end = reply.windows(2).position(|w| w == b"\r\n")?;
    let line = String::from_utf8_lossy(&reply[..end]);
    Some(if line.starts_with("-LOADING") || line.starts_with("-BUSY") {
        Answer::NotYet(line.into_owned())
    } else if line.starts_with('+') || line.starts_with('-') {
        Answer::Ready
    } else {
        Answer::NotYet(format!("unexpected reply {line:?}"))
    })
}

/// The server's first packet: a handshake (protocol version 10) or an error
/// packet (0xff) from a server that runs but refuses this host.
fn judge_mysql(reply: &[u8]) -> Option<Answer> {
    // Three bytes of length, one of sequence, then the payload.
    match reply.get(4)? {
        10 | 0xff => Some(Answer::Ready),
        other => Some(Answer::NotYet(format!("unexpected packet {other:#04x}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_message_is_length_prefixed_and_terminated() {
        let m = startup_message("app", "db");
        assert_eq!(u32::from_be_bytes(m[..4].try_into().unwrap()) as usize, m.len());
        assert_eq!(&m[4..8], &[0, 3, 0, 0]);
        assert_eq!(&m[8..], b"user\0app\0database\0db\0\0");
    }

    #[test]
    fn postgres_starting_up_is_not_ready_and_other_answers_are() {
        let error = |code: &str| {
            let mut body = b"SFATAL\0C".to_vec();
            body.extend_from_slice(code.as_bytes());
            body.extend_from_slice(b"\0Mthe database system is starting up\0\0");
            let mut m = vec![b'E'];
            m.extend(((body.len() + 4) as u32).to_be_bytes());
            m.extend(body);
            m
        };
        assert!(matches!(judge_postgres(&error("57P03")), Some(Answer::NotYet(_))));
        assert_eq!(judge_postgres(&error("28000")), Some(Answer::Ready));
        assert_eq!(judge_postgres(b"R\0\0\0\x08\0\0\0\0"), Some(Answer::Ready));
        assert_eq!(judge_postgres(b"E\0\0"), None);
        assert_eq!(judge_postgres(b""), None);
        assert!(matches!(judge_postgres(b"HTTP/1.1"), Some(Answer::NotYet(_))));
    }

    #[test]
    fn redis_loading_is_not_ready() {
        assert_eq!(judge_redis(b"+PONG\r\n"), Some(Answer::Ready));
        assert_eq!(
            judge_redis(b"-NOAUTH Authentication required.\r\n"),
            Some(Answer::Ready)
        );
        assert!(matches!(
            judge_redis(b"-LOADING Redis is loading the dataset in memory\r\n"),
            Some(Answer::NotYet(_))
        ));
        assert_eq!(judge_redis(b"+PO"), None);
    }

    #[test]
    fn mysql_handshake_or_refusal_is_ready() {
        assert_eq!(judge_mysql(b"\x4a\0\0\0\x0a5.5.5-10.11"), Some(Answer::Ready));
        assert_eq!(judge_mysql(b"\x17\0\0\0\xffj\x04Host"), Some(Answer::Ready));
        assert_eq!(judge_mysql(b"\x4a\0"), None);
    }
}
