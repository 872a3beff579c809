//! Redis: a typed module, and a private logical database per test from one
//! shared server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::service::{ExecOnDrop, Running, Service, Shared};
use super::url::service_url;
use crate::container::{Container, ContainerBuilder};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::reuse::lock;
use crate::wait::WaitFor;

/// The official image by default; swap it with [`Redis::image`].
pub const DEFAULT_IMAGE: &str = "redis:7-alpine";
const PORT: u16 = 6379;
/// Logical databases a server offers to hand out one per test.
const DATABASES: u32 = 256;

/// A Redis server to start: optional password, no persistence (tests want it
/// fast and disposable).
///
/// ```no_run
/// use dockhand::modules::Redis;
/// # async fn demo() -> dockhand::Result<()> {
/// let redis = Redis::new().password("s3cret").start().await?;
/// let url = redis.connection_string(); // redis://:s3cret@127.0.0.1:<port>/0
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "nothing starts until .start().await"]
pub struct Redis {
    image: String,
    password: Option<String>,
    startup_timeout: Duration,
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            image: DEFAULT_IMAGE.into(),
            password: None,
            startup_timeout: Duration::from_secs(60),
        }
    }
}

impl Redis {
    /// `redis:7-alpine`, no password.
    ///
    /// ```
    /// let r = dockhand::modules::Redis::new();
    /// ```
    pub fn new() -> Self {
        Redis::default()
    }

    /// Another image that runs `redis-server`.
    ///
    /// ```
    /// let r = dockhand::modules::Redis::new().image("redis:6");
    /// ```
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = image.into();
        self
    }

    /// Requires this password (`AUTH`).
    ///
    /// ```
    /// let r = dockhand::modules::Redis::new().password("s3cret");
    /// ```
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The deadline for the whole start (default 60 s).
    ///
    /// ```
    /// let r = dockhand::modules::Redis::new().startup_timeout(std::time::Duration::from_secs(10));
    /// ```
    pub fn startup_timeout(mut self, limit: Duration) -> Self {
        self.startup_timeout = limit;
        self
    }

    /// The container builder this module would start, to add anything else.
    ///
    /// ```
    /// let b = dockhand::modules::Redis::new().builder().label("team", "cache");
    /// ```
    pub fn builder(&self) -> ContainerBuilder {
        let databases = DATABASES.to_string();
        let mut cmd = vec![
            "redis-server",
            // Clients come through a published port, which protected mode refuses.
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--databases",
            &databases,
        ];
        if let Some(password) = &self.password {
            cmd.extend(["--requirepass", password.as_str()]);
        }
        Container::builder(&self.image)
            .cmd(cmd)
            .expose(PORT)
            .startup_timeout(self.startup_timeout)
            .wait_for(WaitFor::redis(PORT))
    }

    /// Starts the server and waits until it accepts connections.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let redis = dockhand::modules::Redis::new().start().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(&self) -> Result<RedisContainer> {
        Service::start(self).await
    }
}

/// A running Redis server; removed when dropped.
///
/// ```no_run
/// # async fn demo() -> dockhand::Result<()> {
/// let redis = dockhand::modules::Redis::new().start().await?;
/// let db = redis.fresh_database()?; // a logical database of its own
/// println!("{}", db.connection_string());
/// # Ok(()) }
/// ```
pub type RedisContainer = Running<Redis>;

/// Logical databases of a server not handed out (0 stays the server's default).
#[derive(Debug, Clone)]
pub struct FreeDatabases(Arc<Mutex<Vec<u32>>>);

impl Default for FreeDatabases {
    fn default() -> Self {
        FreeDatabases(Arc::new(Mutex::new((1..DATABASES).rev().collect())))
    }
}

impl Service for Redis {
    type State = FreeDatabases;
    const NAME: &'static str = "redis";
    const PORT: u16 = PORT;

    fn builder(&self) -> ContainerBuilder {
        Redis::builder(self)
    }
}

impl Running<Redis> {
    /// `redis://[:password@]host:port/0`.
    ///
    /// ```no_run
    /// # fn demo(r: &dockhand::modules::RedisContainer) { println!("{}", r.connection_string()); }
    /// ```
    pub fn connection_string(&self) -> String {
        self.url_for(0)
    }

    fn url_for(&self, database: u32) -> String {
        let password = self.settings().password.as_deref();
        service_url(
            "redis",
            None,
            password,
            self.host(),
            self.port(),
            &database.to_string(),
        )
    }

    /// Hands out an empty logical database of its own for one test; dropping
    /// the guard flushes it and returns it to the pool. No round trip: databases
    /// are handed out empty.
    ///
    /// ```no_run
    /// # fn demo(r: &dockhand::modules::RedisContainer) -> dockhand::Result<()> {
    /// let db = r.fresh_database()?;
    /// # Ok(()) }
    /// ```
    pub fn fresh_database(&self) -> Result<RedisDatabase> {
        if let Some(lock) = self.container().reuse_lock() {
            return self.claim_across_processes(lock);
        }
        let index = self
            .state
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .ok_or_else(|| self.all_in_use())?;
        let free = self.state.clone();
        // Only a flushed database goes back: a later test must find it empty.
        let drop = ExecOnDrop::new(self.container(), self.flush_command(index)).then(move |flushed| {
            if flushed {
                free.0.lock().unwrap_or_else(|e| e.into_inner()).push(index);
            }
        });
        Ok(RedisDatabase {
            index,
            url: self.url_for(index),
            _flush: drop,
        })
    }

    /// On a server other processes use too, a logical database is claimed by
    /// an exclusive lock on a file of its own beside the server's lock file,
    /// which the kernel lets go however the process ends. The file says
    /// whether the database may hold data (its user was killed before the
    /// flush): then it is flushed before it is handed out.
    fn claim_across_processes(&self, server_lock: &std::path::Path) -> Result<RedisDatabase> {
        for index in 1..DATABASES {
            let path = lock::beside(server_lock, &format!("db{index}"));
            let Ok(Some(mut claim)) = lock::try_exclusive(&path) else {
                continue;
            };
            let dirty = claim.metadata().map(|m| m.len() > 0).unwrap_or(true);
            if dirty && !self.flush_now(index) {
                continue;
            }
            if std::io::Write::write_all(&mut claim, b"in use").is_err() {
                continue;
            }
            let drop = ExecOnDrop::new(self.container(), self.flush_command(index)).then(move |flushed| {
                if flushed {
                    let _ = claim.set_len(0);
                }
                drop(claim);
            });
            return Ok(RedisDatabase {
                index,
                url: self.url_for(index),
                _flush: drop,
            });
        }
        Err(self.all_in_use())
    }

    /// Flushes a database left dirty by a killed process, waiting for it (a
    /// rare path: one exec).
    fn flush_now(&self, index: u32) -> bool {
        let command = self.flush_command(index);
        let id = self.container().id().to_string();
        let endpoint = self.container().engine().endpoint().to_string();
        crate::worker::run_blocking(&endpoint, Duration::from_secs(10), move |docker| {
            Box::pin(async move {
                crate::exec::run(&docker, &id, &id, command)
                    .await
                    .is_ok_and(|out| out.success())
            })
        })
        .unwrap_or(false)
    }

    fn flush_command(&self, index: u32) -> Exec {
        let mut flush = vec!["redis-cli".to_string(), "-n".into(), index.to_string()];
        if let Some(password) = &self.settings().password {
            flush.extend(["--no-auth-warning".into(), "-a".into(), password.clone()]);
        }
        flush.push("FLUSHDB".into());
        Exec::new(flush)
    }

    fn all_in_use(&self) -> Error {
        Error::invalid(
            format!("redis {}", self.container().name()),
            format!(
                "all {} logical databases are in use; drop some first",
                DATABASES - 1
            ),
        )
    }
}

/// One Redis server for every process of the test run (see [`Shared`]),
/// handing each test a private logical database — private across processes too.
///
/// ```no_run
/// use dockhand::modules::{Redis, SharedRedis};
///
/// static REDIS: SharedRedis = SharedRedis::new(Redis::new);
///
/// #[tokio::test]
/// async fn caches() -> dockhand::Result<()> {
///     let db = REDIS.fresh_database().await?; // empty, this test's own
///     let url = db.connection_string();
///     Ok(())
/// }                                          // flushed here
/// ```
pub type SharedRedis = Shared<Redis>;

impl Shared<Redis> {
    /// A private, empty logical database on the shared server.
    ///
    /// ```no_run
    /// # static R: dockhand::modules::SharedRedis = dockhand::modules::SharedRedis::new(dockhand::modules::Redis::new);
    /// # async fn demo() -> dockhand::Result<()> {
    /// let db = R.fresh_database().await?;
    /// # Ok(()) }
    /// ```
    pub async fn fresh_database(&'static self) -> Result<RedisDatabase> {
        self.server().await?.fresh_database()
    }
}

/// A logical database handed to one test; flushed and returned when dropped.
///
/// ```no_run
/// # fn demo(r: &dockhand::modules::RedisContainer) -> dockhand::Result<()> {
/// let db = r.fresh_database()?;
/// println!("database {} at {}", db.index(), db.connection_string());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RedisDatabase {
    index: u32,
    url: String,
    _flush: ExecOnDrop,
}

impl RedisDatabase {
    /// The logical database number (`SELECT n`).
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::RedisDatabase) { assert!(db.index() > 0); }
    /// ```
    pub fn index(&self) -> u32 {
        self.index
    }

    /// A connection string selecting it.
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::RedisDatabase) { println!("{}", db.connection_string()); }
    /// ```
    pub fn connection_string(&self) -> &str {
        &self.url
    }
}
