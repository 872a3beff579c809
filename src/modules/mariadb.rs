//! MariaDB: a typed module, and fresh databases per test from one shared server.

use std::time::Duration;

use super::database::TestDatabase;
use super::service::{Running, Service, Shared};
use super::url::service_url;
use crate::container::{Container, ContainerBuilder};
use crate::error::Result;
use crate::exec::Exec;
use crate::labels;
use crate::wait::WaitFor;

/// The official image by default; swap it with [`MariaDb::image`].
pub const DEFAULT_IMAGE: &str = "mariadb:11";
const PORT: u16 = 3306;

/// A MariaDB server to start: root password, database, an application user,
/// init scripts, and whether the data lives on a tmpfs with relaxed flushing
/// (the default: fast and disposable, as tests want).
///
/// ```no_run
/// use dockhand::modules::MariaDb;
/// # async fn demo() -> dockhand::Result<()> {
/// let db = MariaDb::new()
///     .database("shop")
///     .user("app")
///     .password("secret")
///     .init_sql("schema.sql", "CREATE TABLE items (id INT PRIMARY KEY);")
///     .start()
///     .await?;
/// let url = db.connection_string(); // mysql://app:secret@127.0.0.1:<port>/shop
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "nothing starts until .start().await"]
pub struct MariaDb {
    image: String,
    root_password: String,
    database: String,
    user: String,
    password: String,
    init: Vec<(String, String)>,
    ephemeral: bool,
    startup_timeout: Duration,
    pool_size: usize,
}

impl Default for MariaDb {
    fn default() -> Self {
        MariaDb {
            image: DEFAULT_IMAGE.into(),
            root_password: "root".into(),
            database: "test".into(),
            user: "test".into(),
            password: "test".into(),
            init: Vec::new(),
            ephemeral: true,
            startup_timeout: Duration::from_secs(90),
            pool_size: 4,
        }
    }
}

impl MariaDb {
    /// `mariadb:11`, database `test`, user/password `test`, root password `root`.
    ///
    /// ```
    /// let db = dockhand::modules::MariaDb::new();
    /// ```
    pub fn new() -> Self {
        MariaDb::default()
    }

    /// Another image that behaves like the official one.
    ///
    /// ```
    /// let db = dockhand::modules::MariaDb::new().image("mariadb:10.11");
    /// ```
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = image.into();
        self
    }

    /// The root password (`MARIADB_ROOT_PASSWORD`); root may log in from anywhere.
    ///
    /// ```
    /// let db = dockhand::modules::MariaDb::new().root_password("hunter2");
    /// ```
    pub fn root_password(mut self, password: impl Into<String>) -> Self {
        self.root_password = password.into();
        self
    }

    /// The database created at start (`MARIADB_DATABASE`).
    ///
    /// ```
    /// let db = dockhand::modules::MariaDb::new().database("shop");
    /// ```
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// The application user (`MARIADB_USER`), granted everything on the database.
    ///
    /// ```
    /// let db = dockhand::modules::MariaDb::new().user("app");
    /// ```
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// The application user's password (`MARIADB_PASSWORD`).
    ///
    /// ```
    /// let db = dockhand::modules::MariaDb::new().password("secret");
    /// ```
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = password.into();
        self
    }

    /// An SQL script run once at initialisation in the database, in name order
    /// (copied into `/docker-entrypoint-initdb.d` before start).
    ///
    /// ```
    /// let db = dockhand::modules::MariaDb::new().init_sql("01-schema.sql", "CREATE TABLE t (x INT);");
    /// ```
    pub fn init_sql(mut self, name: impl Into<String>, sql: impl Into<String>) -> Self {
        self.init.push((name.into(), sql.into()));
        self
    }

    /// Keep the data on the container's disk with the server's normal flushing,
    /// instead of the default tmpfs with flushing relaxed.
    ///
    /// ```
    /// let db = dockhand::modules::MariaDb::new().durable();
    /// ```
    pub fn durable(mut self) -> Self {
        self.ephemeral = false;
        self
    }

    /// The deadline for the whole start (default 90 s: MariaDB initialises its
    /// system tables on first start).
    ///
    /// ```
    /// let db = dockhand::modules::MariaDb::new().startup_timeout(std::time::Duration::from_secs(60));
    /// ```
    pub fn startup_timeout(mut self, limit: Duration) -> Self {
        self.startup_timeout = limit;
        self
    }

    /// How many migrated clones the server keeps ready for
    /// `migrated_database` (feature `mariadb`); 4 by default, 0 to clone on
    /// each call.
    ///
    /// ```
    /// let db = dockhand::modules::MariaDb::new().pool_size(8);
    /// ```
    pub fn pool_size(mut self, ready: usize) -> Self {
        self.pool_size = ready;
        self
    }

    #[cfg_attr(not(feature = "mariadb"), allow(dead_code))]
    pub(super) fn ready_pool_size(&self) -> usize {
        self.pool_size
    }

    #[cfg_attr(not(feature = "mariadb"), allow(dead_code))]
    pub(super) fn root_login(&self) -> &str {
        &self.root_password
    }

    /// The container builder this module would start, to add anything else
    /// before [`start`](ContainerBuilder::start); wrap the result with
    /// [`Running::new`].
    ///
    /// ```
    /// let builder = dockhand::modules::MariaDb::new().builder().label("team", "db");
    /// ```
    pub fn builder(&self) -> ContainerBuilder {
        let mut builder = Container::builder(&self.image)
            .env("MARIADB_ROOT_PASSWORD", &self.root_password)
            .env("MARIADB_DATABASE", &self.database)
            .expose(PORT)
            .startup_timeout(self.startup_timeout)
            // Only the real server listens on TCP: the image's init server
            // runs with --skip-networking.
            .wait_for(WaitFor::mysql(PORT));
        if self.root_password.is_empty() {
            builder = builder.env("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1");
        }
        if self.user != "root" {
            builder = builder
                .env("MARIADB_USER", &self.user)
                .env("MARIADB_PASSWORD", &self.password);
        }
        if self.ephemeral {
            builder = builder.tmpfs("/var/lib/mysql", "rw,mode=0777").cmd([
                "mariadbd",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--skip-name-resolve",
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

    /// Starts the server and waits until the real server (not the temporary
    /// one of the initialisation) accepts connections.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let db = dockhand::modules::MariaDb::new().start().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(&self) -> Result<MariaDbContainer> {
        Service::start(self).await
    }
}

/// A running MariaDB server; removed when dropped.
///
/// ```no_run
/// # async fn demo() -> dockhand::Result<()> {
/// let server = dockhand::modules::MariaDb::new().start().await?;
/// println!("{}", server.connection_string());
/// let db = server.fresh_database().await?; // an empty database of its own
/// println!("{}", db.connection_string());
/// # Ok(()) }
/// ```
pub type MariaDbContainer = Running<MariaDb>;

impl Service for MariaDb {
    type State = ();
    const NAME: &'static str = "mariadb";
    const PORT: u16 = PORT;

    fn builder(&self) -> ContainerBuilder {
        MariaDb::builder(self)
    }
}

impl MariaDb {
    /// The application user's password (root's, when the user is root).
    fn login_password(&self) -> &str {
        if self.user == "root" {
            &self.root_password
        } else {
            &self.password
        }
    }
}

impl Running<MariaDb> {
    /// The application user's name.
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::MariaDbContainer) { println!("{}", db.user()); }
    /// ```
    pub fn user(&self) -> &str {
        &self.settings().user
    }

    /// The application user's password.
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::MariaDbContainer) { println!("{}", db.password()); }
    /// ```
    pub fn password(&self) -> &str {
        self.settings().login_password()
    }

    /// The database created at start.
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::MariaDbContainer) { println!("{}", db.database()); }
    /// ```
    pub fn database(&self) -> &str {
        &self.settings().database
    }

    /// `mysql://user:password@host:port/database` for the application user.
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::MariaDbContainer) { println!("{}", db.connection_string()); }
    /// ```
    pub fn connection_string(&self) -> String {
        self.url_for(self.user(), self.password(), &self.settings().database)
    }

    /// `mysql://root:password@host:port/database`, for what needs root.
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::MariaDbContainer) { println!("{}", db.root_connection_string()); }
    /// ```
    pub fn root_connection_string(&self) -> String {
        self.url_for("root", &self.settings().root_password, &self.settings().database)
    }

    pub(super) fn url_for(&self, user: &str, password: &str, database: &str) -> String {
        service_url(
            "mysql",
            Some(user),
            Some(password),
            self.host(),
            self.port(),
            database,
        )
    }

    /// Runs SQL as root with the `mariadb` client inside the container; returns
    /// its output (tab-separated rows, no headers).
    ///
    /// ```no_run
    /// # async fn demo(db: &dockhand::modules::MariaDbContainer) -> dockhand::Result<()> {
    /// let out = db.sql("SELECT 1").await?;
    /// assert_eq!(out.trim(), "1");
    /// # Ok(()) }
    /// ```
    pub async fn sql(&self, sql: &str) -> Result<String> {
        let out = self
            .container()
            .exec(client_command(&self.settings().root_password, sql))
            .await?
            .checked(&self.container().describe(), "mariadb")?;
        Ok(out.stdout_str().into_owned())
    }

    /// Creates an empty database of its own for one test, open to the
    /// application user, and returns its guard; dropping the guard drops the
    /// database (in the background). Milliseconds, against seconds for a server
    /// of its own.
    ///
    /// ```no_run
    /// # async fn demo(db: &dockhand::modules::MariaDbContainer) -> dockhand::Result<()> {
    /// let test_db = db.fresh_database().await?;
    /// let url = test_db.connection_string();
    /// # Ok(()) }
    /// ```
    pub async fn fresh_database(&self) -> Result<TestDatabase> {
        let name = format!("test_{}", labels::random_hex(16));
        let grant = if self.user() == "root" {
            String::new()
        } else {
            format!(
                " GRANT ALL ON `{name}`.* TO '{}'@'%';",
                self.user().replace('\\', "\\\\").replace('\'', "\\'")
            )
        };
        self.sql(&format!("CREATE DATABASE `{name}`;{grant}")).await?;
        let drop = client_command(
            &self.settings().root_password,
            &format!("DROP DATABASE IF EXISTS `{name}`"),
        );
        Ok(TestDatabase::new(
            self.container(),
            self.url_for(self.user(), self.password(), &name),
            name,
            drop,
        ))
    }
}

fn client_command(root_password: &str, sql: &str) -> Exec {
    Exec::new(["mariadb", "-uroot", "--batch", "--skip-column-names", "-e", sql])
        .env("MYSQL_PWD", root_password)
}

/// One MariaDB server for the whole test run, every process of it (see
/// [`Shared`]), handing each test a fresh database in milliseconds.
///
/// ```no_run
/// use dockhand::modules::{MariaDb, SharedMariaDb};
///
/// static DB: SharedMariaDb = SharedMariaDb::new(MariaDb::new);
///
/// #[tokio::test]
/// async fn items_table() -> dockhand::Result<()> {
///     let db = DB.fresh_database().await?; // empty, this test's own
///     let url = db.connection_string();
///     // ... connect with your client ...
///     Ok(())
/// }                                       // the database is dropped here
/// ```
pub type SharedMariaDb = Shared<MariaDb>;

impl Shared<MariaDb> {
    /// A fresh, empty database on the shared server, granted to the
    /// application user and dropped with the guard.
    ///
    /// ```no_run
    /// # static DB: dockhand::modules::SharedMariaDb = dockhand::modules::SharedMariaDb::new(dockhand::modules::MariaDb::new);
    /// # async fn demo() -> dockhand::Result<()> {
    /// let db = DB.fresh_database().await?;
    /// # Ok(()) }
    /// ```
    pub async fn fresh_database(&'static self) -> Result<TestDatabase> {
        self.server().await?.fresh_database().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_reach_the_environment() {
        let body = MariaDb::new()
            .root_password("")
            .user("app")
            .password("p")
            .database("shop")
            .builder()
            .to_create_body("c")
            .unwrap();
        let env = body.env.unwrap();
        for expected in [
            "MARIADB_ROOT_PASSWORD=",
            "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1",
            "MARIADB_USER=app",
            "MARIADB_PASSWORD=p",
            "MARIADB_DATABASE=shop",
        ] {
            assert!(env.iter().any(|e| e == expected), "{expected} in {env:?}");
        }
    }
}
