//! MariaDB databases copied from a template built from the user's migrations,
//! handed out warm.
//!
//! - The template `tpl_<key>` is built once per server and migrations key,
//!   whichever process asks first, under `GET_LOCK` (a session's lock, let go
//!   if its process dies); `dockhand_meta.templates` records it as finished.
//! - MariaDB can neither rename a database nor copy one, so a copy replays the
//!   template's objects and rows (see `mariadb_clone`), and the pool is a table:
//!   every copy has a row in `dockhand_meta.clones` with its state (`warming`,
//!   `ready`, `claimed`, `checkpoint`) and its owner process. A test claims a
//!   ready copy with one `UPDATE … LIMIT 1`, atomic across processes.
//! - Any process that uses the pool keeps it filled, and drops the copies of
//!   owner processes that are gone (a SIGKILLed test, a filler killed mid-copy).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use once_cell::sync::Lazy;
use tokio::sync::Notify;

use super::mariadb::MariaDb;
use super::mariadb_admin::{ident, literal, Admin};
use super::mariadb_clone::{migrate, Plan};
use super::migrations::{Migrations, Step};
use super::service::{Running, Shared};
use crate::error::{Error, Result};
use crate::labels::random_hex;

/// This process's pools, by server container and key; an async lock, so the
/// first caller builds (or waits for) the template while the others wait.
static POOLS: Lazy<tokio::sync::Mutex<HashMap<String, Arc<Pool>>>> =
    Lazy::new(|| tokio::sync::Mutex::new(HashMap::new()));

const META: &str = "CREATE DATABASE IF NOT EXISTS dockhand_meta;
CREATE TABLE IF NOT EXISTS dockhand_meta.templates (tkey VARCHAR(32) PRIMARY KEY) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS dockhand_meta.clones (
  db VARCHAR(64) PRIMARY KEY, tkey VARCHAR(32) NOT NULL, state VARCHAR(16) NOT NULL,
  pid INT UNSIGNED NOT NULL, start VARCHAR(32) NOT NULL, token VARCHAR(32) NULL,
  KEY (tkey, state)) ENGINE=InnoDB";

/// One server's pool of one template, as this process uses it.
struct Pool {
    admin: Admin,
    endpoint: String,
    url: Box<dyn Fn(&str) -> String + Send + Sync>,
    /// The application user the copies are granted to (none for root).
    grantee: Option<String>,
    key: String,
    /// What a copy of the template is made of: read on the first copy this
    /// process makes, so that a process whose one test claims a ready copy
    /// (each test under nextest) never reads it.
    plan: tokio::sync::OnceCell<Plan>,
    refill: Notify,
    /// Whether this process keeps the pool filled, and so drops the copies
    /// of processes that are gone.
    upkept: bool,
}

impl Running<MariaDb> {
    /// A database of its own for one test, holding everything `migrations`
    /// create: copied from a template built once per server and migrations (by
    /// whichever process asks first) and handed out from a warm pool the server
    /// keeps, so most hand-outs are one `UPDATE`. Open to the application user;
    /// dropped, in the background, with the guard.
    ///
    /// ```no_run
    /// use dockhand::modules::{MariaDb, Migrations};
    /// # async fn demo() -> dockhand::Result<()> {
    /// let server = MariaDb::new().start().await?;
    /// let db = server.migrated_database(&Migrations::dir("migrations")).await?;
    /// let conn = db.conn().await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrated_database(&self, migrations: &Migrations) -> Result<MigratedMariaDb> {
        migrations.refuse_foreign_function(&self.container().describe(), "mariadb")?;
        let steps = migrations.steps()?;
        let key = migrations.key(&steps);
        let pool = self.pool(migrations, &steps, &key).await?;
        let name = pool.claim().await?;
        Ok(MigratedMariaDb {
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
        let root = self.settings().root_login().to_string();
        let admin = Admin::connect(self.url_for("root", &root, ""), &server).await?;
        admin.run("prepare the pool tables on", META).await?;
        let template = format!("tpl_{key}");
        build_template(
            &admin,
            &self.url_for("root", &root, &template),
            migrations,
            steps,
            key,
        )
        .await?;
        let (user, password) = (self.user().to_string(), self.password().to_string());
        let (host, port) = (self.host().to_string(), self.port());
        let size = self.settings().ready_pool_size();
        let pool = Arc::new(Pool {
            admin,
            endpoint: self.container().engine().endpoint().to_string(),
            grantee: (user != "root").then(|| user.clone()),
            url: Box::new(move |db| {
                super::url::service_url("mysql", Some(&user), Some(&password), &host, port, db)
            }),
            key: key.to_string(),
            plan: tokio::sync::OnceCell::new(),
            refill: Notify::new(),
            upkept: size > 0,
        });
        if size > 0 {
            let filler = pool.clone();
            crate::worker::spawn_task(Box::pin(keep_filled(filler, size)));
        }
        pools.insert(id, pool.clone());
        Ok(pool)
    }
}

impl Shared<MariaDb> {
    /// A migrated database of its own on the run's shared server (see
    /// [`Running::migrated_database`]).
    ///
    /// ```no_run
    /// use dockhand::modules::{MariaDb, Migrations, SharedMariaDb};
    /// static DB: SharedMariaDb = SharedMariaDb::new(MariaDb::new);
    ///
    /// #[tokio::test]
    /// async fn orders() -> dockhand::Result<()> {
    ///     let db = DB.migrated_database(&Migrations::dir("migrations")).await?;
    ///     let conn = db.conn().await?;
    ///     Ok(())
    /// }
    /// ```
    pub async fn migrated_database(&'static self, migrations: &Migrations) -> Result<MigratedMariaDb> {
        self.server().await?.migrated_database(migrations).await
    }
}

/// Builds `tpl_<key>` unless `dockhand_meta.templates` says it is built, under
/// a lock every process of every run on this server respects.
async fn build_template(
    admin: &Admin,
    url: &str,
    migrations: &Migrations,
    steps: &[Step],
    key: &str,
) -> Result<()> {
    let built = || async {
        let found = admin
            .column(
                "look for the template on",
                format!(
                    "SELECT tkey FROM dockhand_meta.templates WHERE tkey = {}",
                    literal(key)
                ),
            )
            .await?;
        Ok::<bool, Error>(!found.is_empty())
    };
    if built().await? {
        return Ok(());
    }
    let lock = literal(&format!("dockhand_tpl_{key}"));
    let got = admin
        .column("lock the template of", format!("SELECT GET_LOCK({lock}, 300)"))
        .await?;
    if got.first().map(String::as_str) != Some("1") {
        return Err(super::database::db_error(
            "lock the template of",
            &admin.server,
            "another process held the template's lock for 300 s",
        ));
    }
    let outcome = async {
        if built().await? {
            return Ok(());
        }
        let template = ident(&format!("tpl_{key}"));
        // A process killed mid-build leaves a half-built one, unrecorded.
        admin
            .run(
                "create the template on",
                format!("DROP DATABASE IF EXISTS {template}; CREATE DATABASE {template}"),
            )
            .await?;
        if let Err(err) = migrate(url, &admin.server, migrations, steps).await {
            admin
                .run_quietly(format!("DROP DATABASE IF EXISTS {template}"))
                .await;
            return Err(err);
        }
        admin
            .run(
                "finish the template on",
                format!("INSERT INTO dockhand_meta.templates VALUES ({})", literal(key)),
            )
            .await
    }
    .await;
    admin.run_quietly(format!("DO RELEASE_LOCK({lock})")).await;
    outcome
}

/// This process and its start time, which tell a reused pid apart.
fn me() -> (u32, String) {
    let pid = std::process::id();
    (
        pid,
        crate::labels::process_start_time(pid).unwrap_or_else(|| "0".into()),
    )
}

impl Pool {
    fn describe(&self) -> &str {
        &self.admin.server
    }

    /// A copy of the template for one test: a ready one claimed, else one made
    /// now.
    async fn claim(&self) -> Result<String> {
        let (pid, start) = me();
        let token = random_hex(16);
        let claimed = self
            .admin
            .affected(
                "claim a copy on",
                format!(
                    "UPDATE dockhand_meta.clones SET state = 'claimed', pid = {pid}, start = {}, token = '{token}' \
                     WHERE tkey = {} AND state = 'ready' LIMIT 1",
                    literal(&start),
                    literal(&self.key)
                ),
            )
            .await?;
        self.refill.notify_one();
        if claimed == 1 {
            let name = self
                .admin
                .column(
                    "claim a copy on",
                    format!("SELECT db FROM dockhand_meta.clones WHERE token = '{token}'"),
                )
                .await?;
            if let Some(name) = name.into_iter().next() {
                return Ok(name);
            }
        }
        let name = self.new_name();
        self.copy_template(&name, "claimed").await?;
        Ok(name)
    }

    /// `t_<key>_<random>`: the template it is a copy of, in MariaDB's 64 bytes
    /// with room for a checkpoint's suffix.
    fn new_name(&self) -> String {
        format!("t_{}_{}", self.key, random_hex(12))
    }

    /// Records `name` as this process's, in `state`, then makes it a copy of
    /// the template; a failed copy is dropped with its record.
    async fn copy_template(&self, name: &str, state: &str) -> Result<()> {
        let template = format!("tpl_{}", self.key);
        let plan = self
            .plan
            .get_or_try_init(|| Plan::of(&self.admin, &template, true))
            .await?;
        self.record(name, state).await?;
        let script = format!(
            "CREATE DATABASE {};\n{}",
            ident(name),
            plan.script(&template, name, self.grantee.as_deref())
        );
        if let Err(err) = self.admin.run("copy the template on", script).await {
            self.forget(name).await;
            return Err(err);
        }
        Ok(())
    }

    async fn record(&self, name: &str, state: &str) -> Result<()> {
        let (pid, start) = me();
        self.admin
            .run(
                "record a copy on",
                format!(
                    "INSERT INTO dockhand_meta.clones (db, tkey, state, pid, start) VALUES ({}, {}, '{state}', {pid}, {})",
                    literal(name),
                    literal(&self.key),
                    literal(&start)
                ),
            )
            .await
    }

    /// Drops a database and its record, ignoring failure.
    async fn forget(&self, name: &str) {
        self.admin
            .run_quietly(format!(
                "DROP DATABASE IF EXISTS {}; DELETE FROM dockhand_meta.clones WHERE db = {}",
                ident(name),
                literal(name)
            ))
            .await;
    }

    /// Adds a ready copy: made under the `warming` state no claim looks at.
    async fn add_ready(&self) -> Result<()> {
        let name = self.new_name();
        self.copy_template(&name, "warming").await?;
        self.admin
            .run(
                "add a copy to the pool of",
                format!(
                    "UPDATE dockhand_meta.clones SET state = 'ready' WHERE db = {}",
                    literal(&name)
                ),
            )
            .await
    }

    /// Drops the copies (and checkpoints) whose owner process is gone.
    async fn reap_dead_owners(&self) {
        let Ok(rows) = self
            .admin
            .rows(
                "list the copies on",
                "SELECT db, pid, start FROM dockhand_meta.clones WHERE state <> 'ready'",
            )
            .await
        else {
            return;
        };
        for row in rows {
            let [Some(db), Some(pid), Some(start)] = row.as_slice() else {
                continue;
            };
            let alive = pid
                .parse()
                .is_ok_and(|pid| crate::labels::process_alive(pid, start));
            if !alive {
                tracing::debug!(database = %db, "dropping a dead process's database");
                self.forget(db).await;
            }
        }
    }
}

/// Keeps `size` copies ready (or being made), on the worker's runtime, until
/// the server goes.
async fn keep_filled(pool: Arc<Pool>, size: usize) {
    loop {
        let count = pool
            .admin
            .column(
                "count the pool of",
                format!(
                    "SELECT count(*) FROM dockhand_meta.clones WHERE tkey = {} AND state IN ('ready', 'warming')",
                    literal(&pool.key)
                ),
            )
            .await;
        let Ok(count) = count else {
            return; // the server is gone
        };
        let have: usize = count.first().and_then(|c| c.parse().ok()).unwrap_or(size);
        pool.reap_dead_owners().await;
        for _ in have..size {
            if let Err(err) = pool.add_ready().await {
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

/// A MariaDB database of one test's own, migrated, from
/// [`Running::migrated_database`]; dropped (in the background) with the guard,
/// its checkpoints with it.
///
/// ```no_run
/// use mysql_async::prelude::Queryable;
/// # async fn demo(db: dockhand::modules::MigratedMariaDb) -> dockhand::Result<()> {
/// let mut conn = db.conn().await?;
/// conn.query_drop("INSERT INTO orders (item) VALUES ('tea')").await.unwrap();
/// db.checkpoint("one order").await?;
/// conn.query_drop("DELETE FROM orders").await.unwrap();
/// db.restore("one order").await?;
/// # Ok(()) }
/// ```
pub struct MigratedMariaDb {
    name: String,
    url: String,
    pool: Arc<Pool>,
    /// Checkpoint name to the database that holds it.
    checkpoints: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for MigratedMariaDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigratedMariaDb")
            .field("name", &self.name)
            .field("server", &self.pool.describe())
            .finish()
    }
}

impl MigratedMariaDb {
    /// Its name, `t_<template key>_<random>`.
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::MigratedMariaDb) { assert!(db.name().starts_with("t_")); }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `mysql://user:password@host:port/<name>`, for the application user.
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::MigratedMariaDb) { println!("{}", db.connection_string()); }
    /// ```
    pub fn connection_string(&self) -> &str {
        &self.url
    }

    /// A connection (mysql_async's) as the application user, made on the
    /// calling runtime: it ends with the test's.
    ///
    /// ```no_run
    /// use mysql_async::prelude::Queryable;
    /// # async fn demo(db: &dockhand::modules::MigratedMariaDb) -> dockhand::Result<()> {
    /// let mut conn = db.conn().await?;
    /// let one: Option<i32> = conn.query_first("SELECT 1").await.unwrap();
    /// # Ok(()) }
    /// ```
    pub async fn conn(&self) -> Result<mysql_async::Conn> {
        let describe = self.describe();
        let opts = mysql_async::Opts::from_url(&self.url)
            .map_err(|e| super::database::db_error("connect to", &describe, e))?;
        mysql_async::Conn::new(opts)
            .await
            .map_err(|e| super::mariadb_admin::mysql_error("connect to", &describe, &e))
    }

    fn describe(&self) -> String {
        format!("{} database {}", self.pool.describe(), self.name)
    }

    /// Saves the database as it is now under `name`, to go back to with
    /// [`restore`](Self::restore). Connections stay open; a transaction left
    /// open on the database holds the copy up (at most 10 s, then an error).
    /// Taking a checkpoint again under a name replaces it.
    ///
    /// ```no_run
    /// # async fn demo(db: &dockhand::modules::MigratedMariaDb) -> dockhand::Result<()> {
    /// db.checkpoint("after-seed").await?;
    /// # Ok(()) }
    /// ```
    pub async fn checkpoint(&self, name: &str) -> Result<()> {
        let copy = format!("{}_cp_{}", self.name, random_hex(8));
        self.pool.record(&copy, "checkpoint").await?;
        if let Err(err) = self.copy_into(&self.name, &copy).await {
            self.pool.forget(&copy).await;
            return Err(err);
        }
        let old = self.checkpoints().insert(name.to_string(), copy);
        if let Some(old) = old {
            self.pool.forget(&old).await;
        }
        Ok(())
    }

    /// Puts the database back as it was at checkpoint `name`; connections to
    /// it stay open and see the restored tables. The checkpoint stays for
    /// another restore.
    ///
    /// ```no_run
    /// # async fn demo(db: &dockhand::modules::MigratedMariaDb) -> dockhand::Result<()> {
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
            .run("restore", format!("DROP DATABASE {}", ident(&self.name)))
            .await?;
        self.copy_into(&copy, &self.name).await
    }

    /// Creates `to` as a copy of `from` as it is now.
    async fn copy_into(&self, from: &str, to: &str) -> Result<()> {
        let plan = Plan::of(&self.pool.admin, from, false).await?;
        let script = format!(
            "CREATE DATABASE {};\n{}",
            ident(to),
            plan.script(from, to, self.pool.grantee.as_deref())
        );
        self.pool.admin.run("copy a database on", script).await
    }

    fn checkpoints(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.checkpoints.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for MigratedMariaDb {
    fn drop(&mut self) {
        let mut doomed = vec![self.name.clone()];
        doomed.extend(self.checkpoints().values().cloned());
        let pool = self.pool.clone();
        let (endpoint, upkept) = (pool.endpoint.clone(), pool.upkept);
        let job: crate::worker::Job = Box::new(move |_docker| {
            Box::pin(async move {
                for database in doomed {
                    pool.forget(&database).await;
                }
            })
        });
        // As for PostgreSQL: what an exiting process does not send, a live
        // process's upkeep drops (the copy's record names its owner).
        crate::worker::hand_over(&endpoint, job, upkept);
    }
}
