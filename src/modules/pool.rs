//! The warm pool of one server's template: ready clones the server keeps
//! (named `pool_<key>_<random>`, claimed by an atomic rename), filled by every
//! process that uses it; clones claimed ahead for this process, already
//! connected; and the databases of test processes that died, dropped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

pub(super) use super::database::db_error;
use crate::error::Result;
use crate::labels::random_hex;

/// One server's pool of one template, as this process uses it.
pub(super) struct Pool {
    pub(super) admin: Client,
    pub(super) server: String,
    pub(super) endpoint: String,
    pub(super) url: Box<dyn Fn(&str) -> String + Send + Sync>,
    pub(super) key: String,
    pub(super) refill: Notify,
    /// Clones claimed ahead for this process, each with a session open.
    pub(super) local: Mutex<Vec<(String, Client)>>,
    /// Hand-outs in this process so far: claiming ahead starts at the second.
    pub(super) handed: AtomicUsize,
    pub(super) filling_local: AtomicBool,
    /// Whether copies say `STRATEGY FILE_COPY`: on a server with `fsync`
    /// off, until it refuses the word, as servers before 15 do.
    pub(super) file_copy: AtomicBool,
    /// Whether this process keeps the pool filled, and so drops the
    /// databases of processes that are gone.
    pub(super) upkept: bool,
}

/// The server's own words for an error, when it sent any.
pub(super) fn server_message(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => db.message().to_string(),
        None => err.to_string(),
    }
}

/// Connects on the cleanup worker's runtime, where the connection can live as
/// long as the process.
pub(super) async fn connect_lasting(url: String, resource: &str) -> Result<Client> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = crate::worker::spawn_task(Box::pin(async move {
        match tokio_postgres::connect(&url, NoTls).await {
            Ok((client, connection)) => {
                let _ = tx.send(Ok(client));
                let _ = connection.await;
            }
            Err(err) => {
                let _ = tx.send(Err(err.to_string()));
            }
        }
    }));
    if !spawned {
        return Err(db_error(
            "connect to",
            resource,
            "the background worker is not running",
        ));
    }
    rx.await
        .map_err(|_| db_error("connect to", resource, "the connection task ended"))?
        .map_err(|message| db_error("connect to", resource, message))
}

impl Pool {
    pub(super) fn prefix(&self) -> String {
        format!("pool_{}_", self.key)
    }

    /// A clone of the template for one test: a ready one renamed to a name of
    /// its own, else one made now.
    pub(super) async fn claim(&self) -> Result<String> {
        let mine = own_name();
        let prefix = self.prefix();
        let ready = self
            .admin
            .query(
                "SELECT datname FROM pg_database WHERE left(datname, $2) = $1",
                &[&prefix, &(prefix.len() as i32)],
            )
            .await
            .map_err(|e| db_error("list the warm pool of", &self.server, server_message(&e)))?;
        for row in ready {
            let clone: String = row.get(0);
            let renamed = self
                .admin
                .batch_execute(&format!("ALTER DATABASE \"{clone}\" RENAME TO \"{mine}\""))
                .await;
            match renamed {
                Ok(()) => {
                    self.refill.notify_one();
                    return Ok(mine);
                }
                // Another process claimed it first.
                Err(e) if e.code() == Some(&SqlState::UNDEFINED_DATABASE) => continue,
                Err(e) if e.code() == Some(&SqlState::OBJECT_IN_USE) => continue,
                Err(e) => return Err(db_error("claim a clone on", &self.server, server_message(&e))),
            }
        }
        self.clone_template(&mine).await?;
        self.refill.notify_one();
        Ok(mine)
    }

    /// Adds a clone to the pool: one statement, under its pool name at once.
    /// `CREATE DATABASE` is atomic, so a claim never sees a half-made clone;
    /// and a filler that exits or is killed once it has sent the statement
    /// still leaves a whole clone, since the server finishes what it was
    /// sent. A file copy (see [`Pool::file_copy`]) brings the template's
    /// catalog cache file along, which WAL_LOG, the default from 15 on, does
    /// not: the clone's first session then starts as quickly as any later one.
    async fn add_warm_clone(&self) -> Result<()> {
        let ready = format!("{}{}", self.prefix(), random_hex(12));
        self.clone_template(&ready).await
    }

    /// `CREATE DATABASE name TEMPLATE tpl_<key>`.
    pub(super) async fn clone_template(&self, name: &str) -> Result<()> {
        self.copy_database(&format!("tpl_{}", self.key), name).await
    }

    /// [`copy_database`] on this pool's server.
    pub(super) async fn copy_database(&self, from: &str, to: &str) -> Result<()> {
        copy_database(&self.admin, from, to, &self.server, &self.file_copy).await
    }
}

/// Creates `to` as a copy of `from`, files and all (see
/// [`Pool::add_warm_clone`]), clearing `file_copy` for a server older than
/// 15; the source may have no other session, so a busy one is tried again
/// for a few seconds.
pub(super) async fn copy_database(
    admin: &Client,
    from: &str,
    to: &str,
    server: &str,
    file_copy: &AtomicBool,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let files = file_copy.load(Ordering::Relaxed);
        let strategy = if files { " STRATEGY FILE_COPY" } else { "" };
        let created = admin
            .batch_execute(&format!("CREATE DATABASE \"{to}\" TEMPLATE \"{from}\"{strategy}"))
            .await;
        match created {
            Ok(()) => return Ok(()),
            // Before 15 there is no STRATEGY, and a file copy is all there is.
            Err(e) if files && e.code() == Some(&SqlState::SYNTAX_ERROR) => {
                file_copy.store(false, Ordering::Relaxed);
            }
            Err(e)
                if e.code() == Some(&SqlState::OBJECT_IN_USE) && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => {
                return Err(db_error(
                    "copy database",
                    format!("{server} ({from} to {to})"),
                    server_message(&e),
                ))
            }
        }
    }
}

/// Keeps `size` ready clones, on the worker's runtime, until the server goes.
pub(super) async fn keep_filled(pool: Arc<Pool>, size: usize) {
    let prefix = pool.prefix();
    loop {
        let count = pool
            .admin
            .query_one(
                "SELECT count(*) FROM pg_database WHERE left(datname, $2) = $1",
                &[&prefix, &(prefix.len() as i32)],
            )
            .await;
        let Ok(count) = count else {
            return; // the server is gone
        };
        let have = count.get::<_, i64>(0).max(0) as usize;
        for _ in have..size {
            if let Err(err) = pool.add_warm_clone().await {
                tracing::debug!(%err, "filling the warm pool failed");
                if pool.admin.is_closed() {
                    return;
                }
            }
        }
        // After the filling: a test process under nextest lives for one
        // claim, and what it sends first is what the next one gets.
        reap_dead_owners(&pool).await;
        // Woken by a claim, or every few seconds for other processes' claims.
        let _ = tokio::time::timeout(Duration::from_secs(2), pool.refill.notified()).await;
    }
}

/// Drops a database whatever its sessions, ignoring failure: it may be gone
/// already, with its server.
pub(super) async fn drop_quietly(admin: &Client, database: &str) {
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"))
        .await;
}

/// How many clones a process claims ahead of its tests.
const LOCAL: usize = 2;

/// A claimed database's name says whose it is: `test_<pid>_<start>_<random>`
/// (the process's start time tells a reused pid apart), so any process can
/// drop what a killed one held.
fn own_name() -> String {
    format!("test_{}_{}", owner_tag(), random_hex(8))
}

/// `<pid>_<start>`: this process, told apart from a later one with its pid.
fn owner_tag() -> String {
    let pid = std::process::id();
    let start = crate::labels::process_start_time(pid).unwrap_or_else(|| "0".into());
    format!("{pid}_{start}")
}

/// The owner of a database named by [`own_name`] (or a checkpoint of one):
/// `test_<pid>_<start>_<random>[_…]`.
fn owner_of(name: &str) -> Option<(u32, &str)> {
    let mut parts = name.strip_prefix("test_")?.split('_');
    let pid = parts.next()?.parse().ok()?;
    let start = parts
        .next()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))?;
    parts.next()?;
    Some((pid, start))
}

/// Drops the databases (and checkpoints) of processes on this machine that
/// are gone: a SIGKILLed test never drops its own, one that exits leaves the
/// drop it did not send, and a server kept across runs would collect them.
async fn reap_dead_owners(pool: &Pool) {
    let Ok(rows) = pool
        .admin
        .query(
            "SELECT datname FROM pg_database WHERE starts_with(datname, 'test_')",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let dead = owner_of(&name).is_some_and(|(pid, start)| !crate::labels::process_alive(pid, start));
        if dead {
            tracing::debug!(database = %name, "dropping a dead test process's database");
            drop_quietly(&pool.admin, &name).await;
        }
    }
}

impl Pool {
    /// A clone claimed ahead, with its session, if one is ready.
    pub(super) fn take_local(&self) -> Option<(String, Client)> {
        self.local.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Counts a hand-out. From the second on, this process is one that runs
    /// several tests (`cargo test`), so clones are claimed and connected
    /// ahead; a process with one test (nextest) claims nothing it will not use.
    pub(super) fn handed_out(self: &Arc<Self>) {
        let n = self.handed.fetch_add(1, Ordering::Relaxed) + 1;
        if n < 2 || self.filling_local.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = self.clone();
        let spawned = crate::worker::spawn_task(Box::pin(async move {
            while pool.local.lock().unwrap_or_else(|e| e.into_inner()).len() < LOCAL {
                let Ok(name) = pool.claim().await else { break };
                match tokio_postgres::connect(&(pool.url)(&name), NoTls).await {
                    Ok((client, connection)) => {
                        tokio::spawn(connection);
                        pool.local
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((name, client));
                    }
                    Err(err) => {
                        tracing::debug!(%err, "connecting a clone ahead failed");
                        drop_quietly(&pool.admin, &name).await;
                        break;
                    }
                }
            }
            pool.filling_local.store(false, Ordering::Release);
        }));
        if !spawned {
            self.filling_local.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_names_say_whose_they_are() {
        let name = own_name();
        assert!(name.len() <= 63 - "_cp_12345678".len(), "{name}");
        let (pid, start) = owner_of(&name).unwrap();
        assert_eq!(pid, std::process::id());
        assert!(crate::labels::process_alive(pid, start));
        assert_eq!(owner_of(&format!("{name}_cp_0123abcd")), Some((pid, start)));
        assert_eq!(owner_of("test_0123456789abcdef"), None);
        assert_eq!(owner_of("pool_abc_def"), None);
        assert_eq!(owner_of("test_12_x_y"), None);
    }
}
