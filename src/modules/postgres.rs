//! PostgreSQL: a typed module, and fresh databases per test from one shared server.

use std::time::Duration;

use super::database::TestDatabase;
use crate::container::{Container, ContainerBuilder};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::labels;
use crate::wait::WaitFor;

/// The official image by default; swap it with [`Postgres::image`].
pub const DEFAULT_IMAGE: &str = "postgres:16-alpine";
const PORT: u16 = 5432;
/// Logged by the server that accepts connections; the official image's temporary
/// init server logs the same line on stdout, the real server on stderr.
const READY_LINE: &str = "database system is ready to accept connections";

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

    /// The superuser's password.
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

    /// The container builder this module would start, to add anything else
    /// (networks, labels, memory limits) before [`start`](ContainerBuilder::start);
    /// wrap the result with [`PostgresContainer::from_container`].
    ///
    /// ```
    /// let builder = dockhand::modules::Postgres::new().builder().label("team", "db");
    /// ```
    pub fn builder(&self) -> ContainerBuilder {
        let mut builder = Container::builder(&self.image)
            .env("POSTGRES_USER", &self.user)
            .env("POSTGRES_PASSWORD", &self.password)
            .env("POSTGRES_DB", &self.database)
            .expose(PORT)
            .startup_timeout(self.startup_timeout)
            // The real server logs readiness on stderr (the init server on
            // stdout), also when the data directory already holds a database.
            .wait_for(WaitFor::log(READY_LINE).on_stderr())
            .wait_for(WaitFor::port(PORT));
        if self.ephemeral {
            builder = builder
                .env("PGDATA", "/var/lib/postgresql/data/pgdata")
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
        let container = self.builder().start().await?;
        Ok(PostgresContainer::from_container(container, self))
    }
}

/// A running PostgreSQL server; removed when dropped.
///
/// ```no_run
/// # async fn demo() -> dockhand::Result<()> {
/// let pg = dockhand::modules::Postgres::new().start().await?;
/// println!("{}", pg.connection_string());
/// let db = pg.fresh_database().await?; // an empty database of its own
/// println!("{}", db.connection_string());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PostgresContainer {
    container: Container,
    user: String,
    password: String,
    database: String,
}

impl PostgresContainer {
    /// Wraps a container started from [`Postgres::builder`].
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// use dockhand::modules::{Postgres, PostgresContainer};
    /// let settings = Postgres::new();
    /// let c = settings.builder().label("x", "y").start().await?;
    /// let pg = PostgresContainer::from_container(c, &settings);
    /// # Ok(()) }
    /// ```
    pub fn from_container(container: Container, settings: &Postgres) -> Self {
        PostgresContainer {
            container,
            user: settings.user.clone(),
            password: settings.password.clone(),
            database: settings.database.clone(),
        }
    }

    /// The container, for exec, logs and the rest.
    ///
    /// ```no_run
    /// # async fn demo(pg: &dockhand::modules::PostgresContainer) -> dockhand::Result<()> {
    /// let logs = pg.container().logs().await?;
    /// # Ok(()) }
    /// ```
    pub fn container(&self) -> &Container {
        &self.container
    }

    /// Removes the server now and reports errors (dropping it removes it in the
    /// background).
    ///
    /// ```no_run
    /// # async fn demo(pg: dockhand::modules::PostgresContainer) -> dockhand::Result<()> {
    /// pg.remove().await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove(self) -> Result<()> {
        self.container.remove().await
    }

    /// Host to connect to.
    ///
    /// ```no_run
    /// # fn demo(pg: &dockhand::modules::PostgresContainer) { assert_eq!(pg.host(), "127.0.0.1"); }
    /// ```
    pub fn host(&self) -> &str {
        self.container.host()
    }

    /// Host port of the server.
    ///
    /// ```no_run
    /// # fn demo(pg: &dockhand::modules::PostgresContainer) { let port = pg.port(); }
    /// ```
    pub fn port(&self) -> u16 {
        // Published by construction: the builder always exposes 5432.
        self.container.host_port(PORT).unwrap_or(0)
    }

    /// The superuser's name.
    ///
    /// ```no_run
    /// # fn demo(pg: &dockhand::modules::PostgresContainer) { println!("{}", pg.user()); }
    /// ```
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The superuser's password.
    ///
    /// ```no_run
    /// # fn demo(pg: &dockhand::modules::PostgresContainer) { println!("{}", pg.password()); }
    /// ```
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `postgres://user:password@host:port/database` for the configured database.
    ///
    /// ```no_run
    /// # fn demo(pg: &dockhand::modules::PostgresContainer) { println!("{}", pg.connection_string()); }
    /// ```
    pub fn connection_string(&self) -> String {
        self.url_for(&self.database)
    }

    fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{database}",
            self.user,
            self.password,
            self.host(),
            self.port()
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
            .container
            .exec(psql_command(&self.user, database, sql))
            .await?;
        if out.success() {
            Ok(out.stdout_str().into_owned())
        } else {
            Err(Error::invalid(
                format!("SQL on {}", self.container.name()),
                format!("psql exited with {}: {}", out.exit_code, out.stderr_str().trim()),
            ))
        }
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
        let name = format!("test_{}", labels::random_hex(16));
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .await?;
        let drop_sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        Ok(TestDatabase::new(
            &self.container,
            self.url_for(&name),
            name,
            psql_command(&self.user, "postgres", &drop_sql),
        ))
    }
}

/// One PostgreSQL server per test process, started on first use and removed at
/// exit, handing each test a fresh database in milliseconds — the pattern for a
/// database test suite, instead of a server per test.
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
pub struct SharedPostgres {
    settings: fn() -> Postgres,
    server: tokio::sync::OnceCell<std::sync::Arc<PostgresContainer>>,
}

impl SharedPostgres {
    /// Describes the server; nothing starts until first use.
    ///
    /// ```
    /// static PG: dockhand::modules::SharedPostgres =
    ///     dockhand::modules::SharedPostgres::new(dockhand::modules::Postgres::new);
    /// ```
    pub const fn new(settings: fn() -> Postgres) -> Self {
        SharedPostgres {
            settings,
            server: tokio::sync::OnceCell::const_new(),
        }
    }

    /// The server, started by the first caller.
    ///
    /// ```no_run
    /// # static PG: dockhand::modules::SharedPostgres = dockhand::modules::SharedPostgres::new(dockhand::modules::Postgres::new);
    /// # async fn demo() -> dockhand::Result<()> {
    /// let server = PG.server().await?;
    /// println!("{}", server.connection_string());
    /// # Ok(()) }
    /// ```
    pub async fn server(&'static self) -> Result<std::sync::Arc<PostgresContainer>> {
        let settings = self.settings;
        crate::shared::start_once(&self.server, move || {
            Box::pin(async move { settings().start().await })
        })
        .await
    }

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

impl crate::shared::HoldsContainer for PostgresContainer {
    fn held_container(&self) -> &Container {
        &self.container
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
