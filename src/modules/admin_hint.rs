//! Where a run's shared PostgreSQL server was last found, so that a new
//! process (every test, under nextest) opens its admin session while it finds
//! the server again. A PostgreSQL session takes about 9 ms to begin here (the
//! server forks a backend and checks the password), as long as the engine
//! calls that find the server. The hint only ever gives a head start: its
//! session is used only when the server found has the very URL it was opened
//! to, and a wrong or stale hint costs nothing but a refused connect.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

use once_cell::sync::Lazy;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio_postgres::Client;

use super::pool::connect_lasting;
use super::postgres::Postgres;
use crate::error::Result;

/// How long a hint is kept without being written again.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The fingerprints this process has made its head start for.
static STARTED: Lazy<Mutex<HashSet<String>>> = Lazy::new(Default::default);

/// Sessions being opened ahead, by the URL they are opened to.
type Opening = oneshot::Receiver<Result<Client>>;
static EARLY: Lazy<Mutex<HashMap<String, Opening>>> = Lazy::new(Default::default);

/// What a shared server is found again by: its settings, on its engine.
pub(super) fn fingerprint(settings: &Postgres) -> String {
    let engine = std::env::var("DOCKER_HOST").unwrap_or_default();
    let digest = Sha256::digest(format!("{settings:?} {engine}").as_bytes());
    crate::user_dir::hex::short(&digest, 16)
}

fn path(fingerprint: &str) -> PathBuf {
    crate::user_dir::dir().join(format!("pg-{fingerprint}.admin"))
}

/// Begins opening an admin session to where the server of `fingerprint` was,
/// once per process. True the first time.
pub(super) fn head_start(fingerprint: &str) -> bool {
    if !STARTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(fingerprint.to_string())
    {
        return false;
    }
    let Ok(url) = std::fs::read_to_string(path(fingerprint)) else {
        return true;
    };
    let (tx, rx) = oneshot::channel();
    let target = url.clone();
    let spawned = crate::worker::spawn_task(Box::pin(async move {
        let _ = tx.send(connect_lasting(target, "the run's PostgreSQL server (as last seen)").await);
    }));
    if spawned {
        EARLY.lock().unwrap_or_else(|e| e.into_inner()).insert(url, rx);
    }
    true
}

/// The session opened ahead to `url`, if one was and it is open. Sessions
/// opened to anywhere else are closed.
pub(super) async fn take(url: &str) -> Option<Client> {
    let opening = {
        let mut early = EARLY.lock().unwrap_or_else(|e| e.into_inner());
        let opening = early.remove(url);
        early.clear();
        opening
    }?;
    match opening.await {
        Ok(Ok(client)) if !client.is_closed() => Some(client),
        _ => None,
    }
}

/// Remembers where the server of `fingerprint` is, for the run's next
/// processes. Only this user may read it: the URL holds the password.
pub(super) fn remember(fingerprint: &str, url: &str) {
    let path = path(fingerprint);
    if std::fs::read_to_string(&path).ok().as_deref() == Some(url) {
        return;
    }
    // Hints of servers of other settings (one per test that sets its own)
    // not rewritten for a day: at worst a server kept across runs loses one
    // head start.
    crate::user_dir::forget_older(&crate::user_dir::dir(), "pg-", ".admin", STALE_AFTER);
    let _ = crate::user_dir::write_whole(&path, url.as_bytes(), 0o600);
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn servers_of_other_settings_are_remembered_apart() {
        let a = fingerprint(&Postgres::new());
        assert_eq!(a, fingerprint(&Postgres::new()));
        assert_ne!(a, fingerprint(&Postgres::new().password("other")));
    }

    #[test]
    fn a_remembered_url_is_for_this_user_only() {
        let print = format!("unit{}", crate::labels::random_hex(12));
        remember(&print, "postgres://u:secret@127.0.0.1:1/postgres");
        let meta = std::fs::metadata(path(&print)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(path(&print)).unwrap(),
            "postgres://u:secret@127.0.0.1:1/postgres"
        );
        std::fs::remove_file(path(&print)).unwrap();
    }

    #[tokio::test]
    async fn a_stale_hint_gives_no_session_and_another_url_none_either() {
        let print = format!("unit{}", crate::labels::random_hex(12));
        // Nothing listens on a port just let go of.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgres://u:p@127.0.0.1:{port}/postgres");
        remember(&print, &url);
        assert!(head_start(&print));
        assert!(!head_start(&print), "once per process");
        assert!(take(&url).await.is_none());
        std::fs::remove_file(path(&print)).unwrap();
    }
}
