//! PostgreSQL: a typed module, and fresh databases per test from one shared server.

use std::time::Duration;

use super::database::TestDatabase;
use super::postgres_init;
use super::scram;
use super::service::{Running, Service, Shared};
use super::url::service_url;
use crate::container::{Container, ContainerBuilder};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::labels;
use crate::wait::WaitFor;

/// The official image by default; swap it with [`Postgres::image`].
pub const DEFAULT_IMAGE: &str = "postgres:16-alpine";
const PORT: u16 = 5432;

/// A PostgreSQL server to start: user, password, database, init scripts, and
/// whether the data lives on a tmpfs with `fsync=off` (the default: fast and
/// disposable, as tests want).
///
/// ```no_run
/// use dockhand::modules::Postgres;
/// # async fn demo() -> dockhand::Result<()> {
/// let pg = Postgres::new()
///     .user("app")
///     .password("secret")
///     .database("orders")
///     .init_sql("schema.sql", "CREATE TABLE orders (id serial PRIMARY KEY);")
///     .start()
///     .await?;
/// let url = pg.connection_string(); // postgres://app:secret@127.0.0.1:<port>/orders
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "nothing starts until .start().await"]
pub struct Postgres {
    image: String,
    user: String,
    password: String,
    database: String,
    init: Vec<(String, String)>,
    ephemeral: bool,
    startup_timeout: Duration,
    pool_size: usize,
    warm_start: bool,
}

impl Default for Postgres {
    fn default() -> Self {
        Postgres {
            image: DEFAULT_IMAGE.into(),
            user: "postgres".into(),
            password: "postgres".into(),
            database: "postgres".into(),
            init: Vec::new(),
            ephemeral: true,
            startup_timeout: Duration::from_secs(60),
            pool_size: 4,
            warm_start: false,
        }
    }
}

impl Postgres {
    /// `postgres:16-alpine`, user/password `postgres`, database `postgres`.
    ///
    /// ```
    /// let pg = dockhand::modules::Postgres::new();
    /// ```
    pub fn new() -> Self {
        Postgres::default()
    }

    /// Another image that behaves like the official one.
    ///
    /// ```
    /// let pg = dockhand::modules::Postgres::new().image("postgres:15");
    /// ```
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = image.into();
        self
    }

    /// The superuser's name.
    ///
    /// ```
    /// let pg = dockhand::modules::Postgres::new().user("app");
    /// ```
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// The superuser's password. An ASCII one is stored as a SCRAM-SHA-256
    /// secret of one round rather than the server's 4096 (the container's
    /// `POSTGRES_PASSWORD` holds that secret, which PostgreSQL 10 and later
    /// take as it is): a wrong password is still refused, and a client built
    /// without optimisation, as tests are, connects in about 4 ms instead of
    /// 40 here.
    ///
    /// ```
    /// let pg = dockhand::modules::Postgres::new().password("secret");
    /// ```
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = password.into();
        self
    }

    /// The database created at start.
    ///
    /// ```
    /// let pg = dockhand::modules::Postgres::new().database("orders");
    /// ```
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// An SQL script run once at initialisation, in name order (copied into
    /// `/docker-entrypoint-initdb.d` before start).
    ///
    /// ```
    /// let pg = dockhand::modules::Postgres::new().init_sql("01-schema.sql", "CREATE TABLE t (x int);");
    /// ```
    pub fn init_sql(mut self, name: impl Into<String>, sql: impl Into<String>) -> Self {
        self.init.push((name.into(), sql.into()));
        self
    }

    /// Keep the data on the container's disk with `fsync` on, instead of the
    /// default tmpfs with `fsync=off`.
    ///
    /// ```
    /// let pg = dockhand::modules::Postgres::new().durable();
    /// ```
    pub fn durable(mut self) -> Self {
        self.ephemeral = false;
        self
    }

    /// The deadline for the whole start (default 60 s).
    ///
    /// ```
    /// let pg = dockhand::modules::Postgres::new().startup_timeout(std::time::Duration::from_secs(30));
    /// ```
    pub fn startup_timeout(mut self, limit: Duration) -> Self {
        self.startup_timeout = limit;
        self
    }

    /// How many migrated databases the server keeps ready per set of
    /// migrations (default 4; 0: clone each when asked). Used with the
    /// `postgres` feature's `migrated_database`.
    ///
    /// ```
    /// let pg = dockhand::modules::Postgres::new().pool_size(8);
    /// ```
    pub fn pool_size(mut self, ready: usize) -> Self {
        self.pool_size = ready;
        self
    }

    /// Starts from a saved state of this configuration when there is one: its
    /// data directory as it was once `migrated_database` had built its
    /// templates, copied into place instead of running `initdb`, the init
    /// scripts and the migrations. The state (a volume labelled
    /// `dockhand.cache.of`) is saved in the background the first time a
    /// server of this configuration builds a template its state lacks; it
    /// outlives the run, is replaced when the migrations change, and is
    /// removed by a sweep a week after it was saved (`dockhand sweep --cache`:
    /// at once). Also on for `DOCKHAND_REUSE=1`.
    ///
    /// ```
    /// let pg = dockhand::modules::Postgres::new().warm_start();
    /// ```
    #[cfg(feature = "postgres")]
    pub fn warm_start(mut self) -> Self {
        self.warm_start = true;
        self
    }

    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(super) fn warm_start_enabled(&self) -> bool {
        cfg!(feature = "postgres") && (self.warm_start || crate::config::reuse_across_runs())
    }

    /// Whether the data is on a tmpfs with `fsync=off` (see [`durable`](Self::durable)).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(super) fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(super) fn ready_pool_size(&self) -> usize {
        self.pool_size
    }

    /// The container builder this module would start, to add anything else
    /// (networks, labels, memory limits) before [`start`](ContainerBuilder::start);
    /// wrap the result with [`Running::new`].
    ///
    /// ```
    /// let builder = dockhand::modules::Postgres::new().builder().label("team", "db");
    /// ```
    pub fn builder(&self) -> ContainerBuilder {
        let mut builder = Container::builder(&self.image)
            .env("POSTGRES_USER", &self.user)
            // Connections from debug-built tests hash a tenth as long (see scram.rs).
            .env(
                "POSTGRES_PASSWORD",
                scram::quick_secret(&self.user, &self.password).unwrap_or_else(|| self.password.clone()),
            )
            .env("POSTGRES_DB", &self.database)
            // The images' own zone: with TZ unset, initdb finds it by reading
            // every file of the zone database (1.3-1.8 s of its 2-3 s here).
            .env("TZ", "Etc/UTC")
            .expose(PORT)
            .startup_timeout(self.startup_timeout)
            // Only the real server answers on TCP: the image's init server
            // listens on its unix socket alone.
            .wait_for(WaitFor::postgres(PORT).user(&self.user).database(&self.database));
        if self.init.is_empty() && self.database == "postgres" {
            // Given inline: copying a file into a created container costs
            // 60-70 ms here (the engine mounts its file system for it).
            builder = builder.run_first(["/bin/sh", "-c", postgres_init::SCRIPT, "dockhand-postgres-init"]);
        }
        if self.ephemeral {
            builder = builder
                .env("PGDATA", "/var/lib/postgresql/data/pgdata")
                // Nothing on a tmpfs needs syncing: a tenth of initdb's time.
                .env("POSTGRES_INITDB_ARGS", "--no-sync")
                .tmpfs("/var/lib/postgresql/data", "rw,mode=0777")
                .cmd([
                    "postgres",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ]);
        }
        if self.warm_start_enabled() {
            builder = builder.start_from_cached_state();
        }
        for (name, sql) in &self.init {
            builder = builder.copy_file(
                format!("/docker-entrypoint-initdb.d/{name}"),
                sql.clone().into_bytes(),
                0o644,
            );
        }
        builder
    }

    /// Starts the server and waits until the real server accepts connections.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let pg = dockhand::modules::Postgres::new().start().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(&self) -> Result<PostgresContainer> {
        Service::start(self).await
    }
}

/// A running PostgreSQL server ([`Running`] with PostgreSQL's own methods);
/// removed when dropped.
///
/// ```no_run
/// # async fn demo() -> dockhand::Result<()> {
/// let pg = dockhand::modules::Postgres::new().start().await?;
/// println!("{}", pg.connection_string());
/// let db = pg.fresh_database().await?; // an empty database of its own
/// println!("{}", db.connection_string());
/// # Ok(()) }
/// ```
pub type PostgresContainer = Running<Postgres>;

impl Service for Postgres {
    type State = ();
    const NAME: &'static str = "postgres";
    const PORT: u16 = PORT;

    fn builder(&self) -> ContainerBuilder {
        Postgres::builder(self)
    }
}

impl Running<Postgres> {
    /// The superuser's name.
    ///
    /// ```no_run
    /// # fn demo(pg: &dockhand::modules::PostgresContainer) { println!("{}", pg.user()); }
    /// ```
    pub fn user(&self) -> &str {
        &self.settings().user
    }

    /// The superuser's password.
    ///
    /// ```no_run
    /// # fn demo(pg: &dockhand::modules::PostgresContainer) { println!("{}", pg.password()); }
    /// ```
    pub fn password(&self) -> &str {
        &self.settings().password
    }

    /// `postgres://user:password@host:port/database` for the configured database.
    ///
    /// ```no_run
    /// # fn demo(pg: &dockhand::modules::PostgresContainer) { println!("{}", pg.connection_string()); }
    /// ```
    pub fn connection_string(&self) -> String {
        self.url_for(&self.settings().database)
    }

    pub(super) fn url_for(&self, database: &str) -> String {
        let settings = self.settings();
        service_url(
            "postgres",
            Some(&settings.user),
            Some(&settings.password),
            self.host(),
            self.port(),
            database,
        )
    }

    /// Runs SQL as the superuser with `psql` inside the container.
    ///
    /// ```no_run
    /// # async fn demo(pg: &dockhand::modules::PostgresContainer) -> dockhand::Result<()> {
    /// let out = pg.psql("postgres", "SELECT 1").await?;
    /// # Ok(()) }
    /// ```
    pub async fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let out = self
            .container()
            .exec(psql_command(self.user(), database, sql))
            .await?;
        let out = out.checked(&self.container().describe(), "psql")?;
        Ok(out.stdout_str().into_owned())
    }

    /// Creates an empty database of its own for one test and returns its guard;
    /// dropping the guard drops the database (in the background). Takes
    /// milliseconds, against seconds for a server of its own.
    ///
    /// ```no_run
    /// # async fn demo(pg: &dockhand::modules::PostgresContainer) -> dockhand::Result<()> {
    /// let db = pg.fresh_database().await?;
    /// let url = db.connection_string();
    /// # Ok(()) }
    /// ```
    pub async fn fresh_database(&self) -> Result<TestDatabase> {
        self.create_database(format!("test_{}", labels::random_hex(16)))
            .await
    }

    /// Creates an empty database under a name of the test's choosing, dropped
    /// with the guard. A name that exists on the server is
    /// [`Error::Conflict`](crate::Error::Conflict) and leaves that database
    /// alone; a name PostgreSQL cannot take is
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig).
    ///
    /// ```no_run
    /// # async fn demo(pg: &dockhand::modules::PostgresContainer) -> dockhand::Result<()> {
    /// let db = pg.database_named("orders_test").await?;
    /// assert_eq!(db.name(), "orders_test");
    /// # Ok(()) }
    /// ```
    pub async fn database_named(&self, name: &str) -> Result<TestDatabase> {
        let resource = format!("database {name:?} on {}", self.container().describe());
        // 63 bytes is PostgreSQL's identifier limit: a longer name would be
        // cut, and the guard would then drop another database.
        if name.is_empty() || name.len() > 63 || name.contains(['"', '\0']) {
            return Err(Error::invalid(
                resource,
                "a database name is 1 to 63 bytes without double quotes or NUL",
            ));
        }
        self.create_database(name.to_string()).await
    }

    async fn create_database(&self, name: String) -> Result<TestDatabase> {
        let created = self
            .container()
            .exec(psql_command(
                self.user(),
                "postgres",
                &format!("CREATE DATABASE \"{name}\""),
            ))
            .await?;
        if !created.success() && created.stderr_str().contains("already exists") {
            return Err(Error::Conflict {
                resource: format!("database {name:?} on {}", self.container().describe()),
                existing: format!("the database {name:?} that the server already holds"),
                hint: "choose another name, or fresh_database() for a unique one".into(),
            });
        }
        created.checked(&self.container().describe(), "psql")?;
        let drop_sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        Ok(TestDatabase::new(
            self.container(),
            self.url_for(&name),
            name,
            psql_command(self.user(), "postgres", &drop_sql),
        ))
    }
}

/// One PostgreSQL server for the whole test run — every process of it, so one
/// under `cargo nextest run` too (see [`Shared`]) — handing each test a fresh
/// database in milliseconds: the pattern for a database test suite, instead
/// of a server per test.
///
/// ```no_run
/// use dockhand::modules::{Postgres, SharedPostgres};
///
/// static PG: SharedPostgres = SharedPostgres::new(|| Postgres::new().user("app"));
///
/// #[tokio::test]
/// async fn orders_table() -> dockhand::Result<()> {
///     let db = PG.fresh_database().await?; // empty, this test's own
///     let url = db.connection_string();
///     // ... connect with your client ...
///     Ok(())
/// }                                       // the database is dropped here
/// ```
pub type SharedPostgres = Shared<Postgres>;

impl Shared<Postgres> {
    /// A fresh, empty database on the shared server, dropped with the guard.
    ///
    /// ```no_run
    /// # static PG: dockhand::modules::SharedPostgres = dockhand::modules::SharedPostgres::new(dockhand::modules::Postgres::new);
    /// # async fn demo() -> dockhand::Result<()> {
    /// let db = PG.fresh_database().await?;
    /// # Ok(()) }
    /// ```
    pub async fn fresh_database(&'static self) -> Result<TestDatabase> {
        self.server().await?.fresh_database().await
    }
}

fn psql_command(user: &str, database: &str, sql: &str) -> Exec {
    Exec::new([
        "psql",
        "-v",
        "ON_ERROR_STOP=1",
        "-qAt",
        "-U",
        user,
        "-d",
        database,
        "-c",
        sql,
    ])
}
