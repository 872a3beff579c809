//! The per-test database guard the SQL modules hand out.

use super::service::ExecOnDrop;
use crate::container::Container;
use crate::error::Error;
use crate::exec::Exec;

/// A database server's refusal or failure as the crate's error.
#[cfg_attr(not(any(feature = "postgres", feature = "mariadb")), allow(dead_code))]
pub(super) fn db_error(
    operation: &'static str,
    resource: impl Into<String>,
    message: impl std::fmt::Display,
) -> Error {
    Error::Database {
        operation,
        resource: resource.into(),
        message: message.to_string(),
    }
}

/// A database created for one test on a shared server; dropped (in the
/// background) with the guard.
///
/// ```no_run
/// # async fn demo(pg: &dockhand::modules::PostgresContainer) -> dockhand::Result<()> {
/// let db = pg.fresh_database().await?;
/// println!("{} at {}", db.name(), db.connection_string());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    _drop: ExecOnDrop,
}

impl TestDatabase {
    /// `drop_command` runs in the server's container when the guard drops.
    pub(crate) fn new(server: &Container, url: String, name: String, drop_command: Exec) -> Self {
        TestDatabase {
            name,
            url,
            _drop: ExecOnDrop::new(server, drop_command),
        }
    }

    /// The database's name.
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::TestDatabase) { assert!(db.name().starts_with("test_")); }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection string for it.
    ///
    /// ```no_run
    /// # fn demo(db: &dockhand::modules::TestDatabase) { println!("{}", db.connection_string()); }
    /// ```
    pub fn connection_string(&self) -> &str {
        &self.url
    }
}
