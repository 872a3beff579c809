//! PostgreSQL databases cloned from a template built from the user's
//! migrations, handed out warm.
//!
//! - The template `tpl_<key>` is built once per server and migrations key,
//!   whichever process asks first: a PostgreSQL advisory lock (held by a
//!   session, so let go if its process dies) makes the others wait for it.
//! - The pool belongs to the server: ready clones are databases named
//!   `pool_<key>_<random>`, and a test claims one by renaming it to its own
//!   name — atomic, so two processes never get the same clone. Every process
//!   that uses the pool keeps it filled in the background; a claim that finds
//!   it empty clones at once.
//! - Everything is spoken over the protocol (tokio-postgres), on connections
//!   that live on the cleanup worker's runtime, so they outlive each test's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use once_cell::sync::Lazy;
use tokio::sync::Notify;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use super::migrations::{statement_at, Migrations, Step};
use super::postgres::Postgres;
use super::service::{Running, Shared};
use crate::error::{Error, Result};
use crate::labels::random_hex;

/// One server's pool of one template, as this process uses it.
struct Pool {
    admin: Client,
    server: String,
    endpoint: String,
    url: Box<dyn Fn(&str) -> String + Send + Sync>,
    key: String,
    refill: Notify,
}

/// This process's pools, by server container and key. An async lock: the
/// first caller builds (or waits for) the template while the others wait.
static POOLS: Lazy<tokio::sync::Mutex<HashMap<String, Arc<Pool>>>> =
    Lazy::new(|| tokio::sync::Mutex::new(HashMap::new()));

fn db_error(operation: &'static str, resource: impl Into<String>, message: impl std::fmt::Display) -> Error {
    Error::Database {
        operation,
        resource: resource.into(),
        message: message.to_string(),
    }
}

/// The server's own words for an error, when it sent any.
fn server_message(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => db.message().to_string(),
        None => err.to_string(),
    }
}

/// Connects on the cleanup worker's runtime, where the connection can live as
/// long as the process.
async fn connect_lasting(url: String, resource: &str) -> Result<Client> {
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

impl Running<Postgres> {
    /// A database of its own for one test, holding everything `migrations`
    /// create: cloned from a template built once per server and migrations
    /// (by whichever process asks first), and handed out from a warm pool the
    /// server keeps, so most hand-outs take a rename. Dropped, in the
    /// background, with the guard.
    ///
    /// ```no_run
    /// use dockhand::modules::{Migrations, Postgres};
    /// # async fn demo() -> dockhand::Result<()> {
    /// let pg = Postgres::new().start().await?;
    /// let db = pg.migrated_database(&Migrations::dir("migrations")).await?;
    /// let client = db.client().await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrated_database(&self, migrations: &Migrations) -> Result<MigratedDatabase> {
        let steps = migrations.steps()?;
        let key = migrations.key(&steps);
        let pool = self.pool(migrations, &steps, &key).await?;
        let name = pool.claim().await?;
        Ok(MigratedDatabase {
            url: (pool.url)(&name),
            name,
            pool,
            checkpoints: Mutex::new(HashMap::new()),
        })
    }

    async fn pool(&self, migrations: &Migrations, steps: &[Step], key: &str) -> Result<Arc<Pool>> {
        let mut pools = POOLS.lock().await;
        let id = format!("{}:{key}", self.container().id());
        if let Some(pool) = pools.get(&id) {
            return Ok(pool.clone());
        }
        let server = self.container().describe();
        let admin = connect_lasting(self.url_for("postgres"), &server).await?;
        build_template(&admin, self, migrations, steps, key).await?;
        let (user, password) = (self.user().to_string(), self.password().to_string());
        let (host, port) = (self.host().to_string(), self.port());
        let pool = Arc::new(Pool {
            admin,
            server,
            endpoint: self.container().engine().endpoint().to_string(),
            url: Box::new(move |db| {
                super::url::service_url("postgres", Some(&user), Some(&password), &host, port, db)
            }),
            key: key.to_string(),
            refill: Notify::new(),
        });
        let size = self.settings().ready_pool_size();
        if size > 0 {
            crate::worker::spawn_task(Box::pin(keep_filled(pool.clone(), size)));
        }
        pools.insert(id, pool.clone());
        Ok(pool)
    }
}

impl Shared<Postgres> {
    /// A migrated database of its own on the run's shared server (see
    /// [`Running::migrated_database`]); under `cargo nextest run` too, a
    /// process's first hand-out comes from the server's warm pool.
    ///
    /// ```no_run
    /// use dockhand::modules::{Migrations, Postgres, SharedPostgres};
    /// static PG: SharedPostgres = SharedPostgres::new(Postgres::new);
    ///
    /// #[tokio::test]
    /// async fn orders() -> dockhand::Result<()> {
    ///     let db = PG.migrated_database(&Migrations::dir("migrations")).await?;
    ///     let client = db.client().await?;
    ///     client.execute("INSERT INTO orders (item) VALUES ('tea')", &[]).await.unwrap();
    ///     Ok(())
    /// }
    /// ```
    pub async fn migrated_database(&'static self, migrations: &Migrations) -> Result<MigratedDatabase> {
        self.server().await?.migrated_database(migrations).await
    }
}

/// Builds `tpl_<key>` unless it exists, under an advisory lock every process
/// of every run on this server respects.
async fn build_template(
    admin: &Client,
    server: &Running<Postgres>,
    migrations: &Migrations,
    steps: &[Step],
    key: &str,
) -> Result<()> {
    let resource = server.container().describe();
    let resource = resource.as_str();
    let sql = |op: &'static str| move |e: tokio_postgres::Error| db_error(op, resource, server_message(&e));
    let lock = i64::from_str_radix(&key[..15], 16).unwrap_or(0);
    admin
        .batch_execute(&format!("SELECT pg_advisory_lock({lock})"))
        .await
        .map_err(sql("lock the template of"))?;
    let built = async {
        let template = format!("tpl_{key}");
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
            .await
            .map_err(sql("look for the template on"))?;
        if exists.is_some() {
            return Ok(());
        }
        let building = format!("tplb_{key}");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"))
            .await
            .map_err(sql("clear a half-built template on"))?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{building}\""))
            .await
            .map_err(sql("create the template on"))?;
        if let Err(err) = migrate(server, &building, migrations, steps).await {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"))
                .await;
            return Err(err);
        }
        admin
            .batch_execute(&format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""))
            .await
            .map_err(sql("finish the template on"))
    }
    .await;
    let _ = admin
        .batch_execute(&format!("SELECT pg_advisory_unlock({lock})"))
        .await;
    built
}

/// Applies the migrations to `database`, on a connection closed before return.
async fn migrate(
    server: &Running<Postgres>,
    database: &str,
    migrations: &Migrations,
    steps: &[Step],
) -> Result<()> {
    let resource = server.container().describe();
    let (client, connection) = tokio_postgres::connect(&server.url_for(database), NoTls)
        .await
        .map_err(|e| db_error("connect to", format!("{resource} database {database}"), e))?;
    let connection = tokio::spawn(connection);
    let failed = |migration: &str, statement: String, message: String| Error::Migration {
        server: resource.clone(),
        migration: migration.to_string(),
        statement,
        message,
    };
    let mut outcome = Ok(());
    for step in steps {
        if let Err(err) = client.batch_execute(&step.sql).await {
            let position = err.as_db_error().and_then(|d| match d.position() {
                Some(tokio_postgres::error::ErrorPosition::Original(at)) => Some(*at as usize),
                _ => None,
            });
            outcome = Err(failed(
                &step.name,
                statement_at(&step.sql, position),
                server_message(&err),
            ));
            break;
        }
    }
    if let (Ok(()), Some((version, run))) = (&outcome, migrations.function_form())
        && let Err(message) = run(&client).await
    {
        outcome = Err(failed(&format!("function {version:?}"), "(code)".into(), message));
    }
    // The template cannot be renamed or cloned while this session lasts.
    drop(client);
    let _ = connection.await;
    outcome
}

impl Pool {
    fn prefix(&self) -> String {
        format!("pool_{}_", self.key)
    }

    /// A clone of the template for one test: a ready one renamed to a name of
    /// its own, else one made now.
    async fn claim(&self) -> Result<String> {
        let mine = format!("test_{}", random_hex(16));
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

    /// Adds a clone to the pool, warm: made under a name no claim looks at,
    /// connected to once (a database's first session builds and saves its
    /// catalog cache, a third of a first connect's time), then renamed into
    /// the pool.
    async fn add_warm_clone(&self) -> Result<()> {
        let suffix = random_hex(12);
        let staging = format!("warming_{}_{suffix}", self.key);
        self.clone_template(&staging).await?;
        match tokio_postgres::connect(&(self.url)(&staging), NoTls).await {
            Ok((client, connection)) => {
                let session = tokio::spawn(connection);
                let _ = client.batch_execute("SELECT 1").await;
                drop(client);
                // The rename needs the session gone, not only closed here.
                let _ = session.await;
            }
            Err(err) => tracing::debug!(%err, "warming a pool clone failed"),
        }
        let ready = format!("{}{suffix}", self.prefix());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let renamed = self
                .admin
                .batch_execute(&format!("ALTER DATABASE \"{staging}\" RENAME TO \"{ready}\""))
                .await;
            match renamed {
                Ok(()) => return Ok(()),
                // The warming session's backend has not quite exited yet.
                Err(e)
                    if e.code() == Some(&SqlState::OBJECT_IN_USE)
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => {
                    return Err(db_error(
                        "add a clone to the warm pool of",
                        &self.server,
                        server_message(&e),
                    ))
                }
            }
        }
    }

    /// `CREATE DATABASE name TEMPLATE tpl_<key>`, waiting out the moments when
    /// a session still holds the source.
    async fn clone_template(&self, name: &str) -> Result<()> {
        copy_database(&self.admin, &format!("tpl_{}", self.key), name, &self.server).await
    }
}

/// Creates `to` as a copy of `from`; the source may have no other session, so
/// a busy one is tried again for a few seconds.
async fn copy_database(admin: &Client, from: &str, to: &str, server: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match admin
            .batch_execute(&format!("CREATE DATABASE \"{to}\" TEMPLATE \"{from}\""))
            .await
        {
            Ok(()) => return Ok(()),
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
async fn keep_filled(pool: Arc<Pool>, size: usize) {
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
        // Woken by a claim, or every few seconds for other processes' claims.
        let _ = tokio::time::timeout(Duration::from_secs(2), pool.refill.notified()).await;
    }
}

/// A database of one test's own, migrated, from [`Running::migrated_database`];
/// dropped (in the background) with the guard, its checkpoints with it.
///
/// ```no_run
/// # async fn demo(db: dockhand::modules::MigratedDatabase) -> dockhand::Result<()> {
/// let client = db.client().await?;
/// client.batch_execute("INSERT INTO orders (item) VALUES ('tea')").await.unwrap();
/// db.checkpoint("one order").await?;
/// client.batch_execute("DELETE FROM orders").await.ok(); // the checkpoint closed it: reconnect
/// db.restore("one order").await?;
/// # Ok(()) }
/// ```
pub struct MigratedDatabase {
    name: String,
    url: String,
    pool: Arc<Pool>,
    /// Checkpoint name to the database that holds it.
    checkpoints: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for MigratedDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigratedDatabase")
            .field("name", &self.name)
            .field("server", &self.pool.server)
            .finish()
    }
}

impl MigratedDatabase {
    /// Its name (`test_<random>`).
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::MigratedDatabase) { assert!(db.name().starts_with("test_")); }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `postgres://user:password@host:port/<name>`.
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::MigratedDatabase) { println!("{}", db.connection_string()); }
    /// ```
    pub fn connection_string(&self) -> &str {
        &self.url
    }

    /// A connected client; its connection runs on the calling runtime (the
    /// test's) and ends with it.
    ///
    /// ```no_run
    /// # async fn demo(db: &dockhand::modules::MigratedDatabase) -> dockhand::Result<()> {
    /// let client = db.client().await?;
    /// let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    /// # Ok(()) }
    /// ```
    pub async fn client(&self) -> Result<Client> {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .map_err(|e| db_error("connect to", self.describe(), server_message(&e)))?;
        tokio::spawn(connection);
        Ok(client)
    }

    fn describe(&self) -> String {
        format!("{} database {}", self.pool.server, self.name)
    }

    /// Saves the database as it is now under `name`, to go back to with
    /// [`restore`](Self::restore) in milliseconds. PostgreSQL copies only a
    /// database nobody is connected to: open connections to it are closed, so
    /// reconnect afterwards. Taking a checkpoint again under a name replaces it.
    ///
    /// ```no_run
    /// # async fn demo(db: &dockhand::modules::MigratedDatabase) -> dockhand::Result<()> {
    /// db.checkpoint("after-seed").await?;
    /// # Ok(()) }
    /// ```
    pub async fn checkpoint(&self, name: &str) -> Result<()> {
        let copy = format!("{}_cp_{}", self.name, random_hex(8));
        self.close_sessions().await?;
        copy_database(&self.pool.admin, &self.name, &copy, &self.pool.server).await?;
        let old = self.checkpoints().insert(name.to_string(), copy);
        if let Some(old) = old {
            self.drop_quietly(&old).await;
        }
        Ok(())
    }

    /// Puts the database back as it was at checkpoint `name` (closing the
    /// connections to it); the checkpoint stays for another restore.
    ///
    /// ```no_run
    /// # async fn demo(db: &dockhand::modules::MigratedDatabase) -> dockhand::Result<()> {
    /// db.checkpoint("after-seed").await?;
    /// // ... the test changes things ...
    /// db.restore("after-seed").await?;
    /// # Ok(()) }
    /// ```
    pub async fn restore(&self, name: &str) -> Result<()> {
        let Some(copy) = self.checkpoints().get(name).cloned() else {
            let known: Vec<String> = self.checkpoints().keys().cloned().collect();
            return Err(Error::invalid(
                self.describe(),
                format!("no checkpoint named {name:?} (taken: {known:?}); take it with checkpoint() first"),
            ));
        };
        self.pool
            .admin
            .batch_execute(&format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name))
            .await
            .map_err(|e| db_error("restore", self.describe(), server_message(&e)))?;
        copy_database(&self.pool.admin, &copy, &self.name, &self.pool.server).await
    }

    fn checkpoints(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.checkpoints.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn close_sessions(&self) -> Result<()> {
        self.pool
            .admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .await
            .map(drop)
            .map_err(|e| db_error("close the sessions of", self.describe(), server_message(&e)))
    }

    async fn drop_quietly(&self, database: &str) {
        let _ = self
            .pool
            .admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"))
            .await;
    }
}

impl Drop for MigratedDatabase {
    fn drop(&mut self) {
        let mut doomed = vec![self.name.clone()];
        doomed.extend(self.checkpoints().values().cloned());
        let pool = self.pool.clone();
        crate::worker::submit(
            &pool.endpoint.clone(),
            Box::new(move |_docker| {
                Box::pin(async move {
                    for database in doomed {
                        // The server may be gone first; then so is the database.
                        let _ = pool
                            .admin
                            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"))
                            .await;
                    }
                })
            }),
        );
    }
}
