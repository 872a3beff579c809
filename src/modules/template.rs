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
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use once_cell::sync::Lazy;
use tokio::sync::Notify;
use tokio_postgres::{Client, NoTls};

use super::migrations::{statement_at, Migrations, Step};
use super::pool::{
    connect_lasting, copy_database, db_error, drop_quietly, keep_filled, server_message, Pool,
};
use super::postgres::Postgres;
use super::service::{Running, Shared};
use crate::error::{Error, Result};
use crate::labels::random_hex;

/// This process's pools, by server container and key. An async lock: the
/// first caller builds (or waits for) the template while the others wait.
static POOLS: Lazy<tokio::sync::Mutex<HashMap<String, Arc<Pool>>>> =
    Lazy::new(|| tokio::sync::Mutex::new(HashMap::new()));

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
        migrations.refuse_foreign_function(&self.container().describe(), "postgres")?;
        let steps = migrations.steps()?;
        let key = migrations.key(&steps);
        let pool = self.pool(migrations, &steps, &key).await?;
        let (name, session) = match pool.take_local() {
            Some((name, client)) => (name, Some(client)),
            None => (pool.claim().await?, None),
        };
        pool.handed_out();
        Ok(MigratedDatabase {
            url: (pool.url)(&name),
            name,
            pool,
            session: Mutex::new(session),
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
        let url = self.url_for("postgres");
        let admin = match super::admin_hint::take(&url).await {
            Some(admin) => admin,
            None => connect_lasting(url, &server).await?,
        };
        // A file copy checkpoints twice, which is nothing with fsync off and
        // may be seconds on a durable server's disk.
        let file_copy = AtomicBool::new(self.settings().is_ephemeral());
        build_template(&admin, self, migrations, steps, key, &file_copy).await?;
        let state_taken = super::warm::save_if_missing(self, key);
        let (user, password) = (self.user().to_string(), self.password().to_string());
        let (host, port) = (self.host().to_string(), self.port());
        let size = self.settings().ready_pool_size();
        let pool = Arc::new(Pool {
            admin,
            server,
            endpoint: self.container().engine().endpoint().to_string(),
            url: Box::new(move |db| {
                super::url::service_url("postgres", Some(&user), Some(&password), &host, port, db)
            }),
            key: key.to_string(),
            refill: Notify::new(),
            local: Mutex::new(Vec::new()),
            handed: Default::default(),
            filling_local: Default::default(),
            file_copy,
            upkept: size > 0,
        });
        if size > 0 {
            let pool = pool.clone();
            crate::worker::spawn_task(Box::pin(async move {
                if let Some(taken) = state_taken {
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), taken).await;
                }
                keep_filled(pool, size).await
            }));
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
        if self.has_server() {
            return self.server().await?.migrated_database(migrations).await;
        }
        // A process's first hand-out: the admin session gets a head start.
        let fingerprint = super::admin_hint::fingerprint(&self.settings_now());
        let first = super::admin_hint::head_start(&fingerprint);
        let server = self.server().await?;
        let database = server.migrated_database(migrations).await?;
        if first {
            super::admin_hint::remember(&fingerprint, &server.url_for("postgres"));
        }
        Ok(database)
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
    file_copy: &AtomicBool,
) -> Result<()> {
    let resource = server.container().describe();
    let resource = resource.as_str();
    let sql = |op: &'static str| move |e: tokio_postgres::Error| db_error(op, resource, server_message(&e));
    let template = format!("tpl_{key}");
    // Built already (the common case after a run's first process): no lock.
    if template_exists(admin, &template)
        .await
        .map_err(sql("look for the template on"))?
    {
        return Ok(());
    }
    let lock = i64::from_str_radix(&key[..15], 16).unwrap_or(0);
    admin
        .batch_execute(&format!("SELECT pg_advisory_lock({lock})"))
        .await
        .map_err(sql("lock the template of"))?;
    let built = async {
        if template_exists(admin, &template)
            .await
            .map_err(sql("look for the template on"))?
        {
            return Ok(());
        }
        let building = format!("tplb_{key}");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"))
            .await
            .map_err(sql("clear a half-built template on"))?;
        // A file copy: the catalog cache file comes along, and the
        // migrations' session starts quicker.
        copy_database(admin, "template1", &building, resource, file_copy).await?;
        if let Err(err) = migrate(server, &building, migrations, steps).await {
            drop_quietly(admin, &building).await;
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

async fn template_exists(admin: &Client, template: &str) -> std::result::Result<bool, tokio_postgres::Error> {
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await
        .map(|row| row.is_some())
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
    /// A session opened ahead, for the first `client()`.
    session: Mutex<Option<Client>>,
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
    /// Its name, `test_<pid>_<start>_<random>`: the process it was handed to
    /// (and that process's start time), so that any process can drop the
    /// databases of a test process that was killed.
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

    /// A connected client. The first call may return a session opened ahead
    /// (in a process that has run tests before, clones are claimed and
    /// connected ahead of its next tests); later calls connect on the calling
    /// runtime (the test's), and that connection ends with it.
    ///
    /// ```no_run
    /// # async fn demo(db: &dockhand::modules::MigratedDatabase) -> dockhand::Result<()> {
    /// let client = db.client().await?;
    /// let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    /// # Ok(()) }
    /// ```
    pub async fn client(&self) -> Result<Client> {
        let ahead = self.session.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(client) = ahead.filter(|c| !c.is_closed()) {
            return Ok(client);
        }
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
        self.pool.copy_database(&self.name, &copy).await?;
        let old = self.checkpoints().insert(name.to_string(), copy);
        if let Some(old) = old {
            drop_quietly(&self.pool.admin, &old).await;
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
        self.pool.copy_database(&copy, &self.name).await
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
}

impl Drop for MigratedDatabase {
    fn drop(&mut self) {
        let mut doomed = vec![self.name.clone()];
        doomed.extend(self.checkpoints().values().cloned());
        let pool = self.pool.clone();
        let endpoint = pool.endpoint.clone();
        let upkept = pool.upkept;
        let job: crate::worker::Job = Box::new(move |_docker| {
            Box::pin(async move {
                for database in doomed {
                    drop_quietly(&pool.admin, &database).await;
                }
            })
        });
        // Named for this process, so a live process's upkeep drops what an
        // exiting one did not get to: under nextest, waiting for the drop
        // was a third of a test process's life.
        crate::worker::hand_over(&endpoint, job, upkept);
    }
}
