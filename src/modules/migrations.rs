//! Migrations as users keep them — a directory of `.sql` files applied in name
//! order (as sqlx and refinery lay them out), a list of SQL strings, or an
//! async function given a connection — and the key a template is built by.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The function form: gets a client connected to the database being migrated.
#[cfg(feature = "postgres")]
pub(crate) type MigrateFn =
    Arc<dyn Fn(&tokio_postgres::Client) -> BoxFuture<'_, std::result::Result<(), String>> + Send + Sync>;

/// MariaDB's function form: gets a connection to the database being migrated.
#[cfg(feature = "mariadb")]
pub(crate) type MariaDbMigrateFn =
    Arc<dyn Fn(&mut mysql_async::Conn) -> BoxFuture<'_, std::result::Result<(), String>> + Send + Sync>;

/// A schema to build a template database from, once per server and content:
/// for PostgreSQL (feature `postgres`) and MariaDB (feature `mariadb`) alike,
/// but for the function forms, which get each server's own client.
///
/// ```
/// # #[cfg(feature = "postgres")] {
/// use dockhand::modules::Migrations;
/// let from_files = Migrations::dir("migrations");
/// let inline = Migrations::sql(["CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)"]);
/// let by_code = Migrations::function("seed-v1", |client| {
///     Box::pin(async move {
///         client.batch_execute("CREATE TABLE t (id int)").await.map_err(|e| e.to_string())
///     })
/// });
/// # }
/// ```
#[derive(Clone)]
pub struct Migrations {
    source: Source,
}

#[derive(Clone)]
enum Source {
    Dir(PathBuf),
    Sql(Vec<String>),
    #[cfg(feature = "postgres")]
    Function {
        version: String,
        run: MigrateFn,
    },
    #[cfg(feature = "mariadb")]
    MariaDbFunction {
        version: String,
        run: MariaDbMigrateFn,
    },
}

impl std::fmt::Debug for Migrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Dir(dir) => write!(f, "Migrations::dir({})", dir.display()),
            Source::Sql(list) => write!(f, "Migrations::sql({} statements)", list.len()),
            #[cfg(feature = "postgres")]
            Source::Function { version, .. } => write!(f, "Migrations::function({version:?})"),
            #[cfg(feature = "mariadb")]
            Source::MariaDbFunction { version, .. } => {
                write!(f, "Migrations::mariadb_function({version:?})")
            }
        }
    }
}

/// One migration as applied: its name (the file's) and its SQL.
pub(crate) struct Step {
    pub name: String,
    pub sql: String,
}

impl Migrations {
    /// Every `*.sql` file of the directory (not its subdirectories), applied in
    /// name order, each as one batch. A relative path is taken from the current
    /// directory, which under `cargo test` is the package's.
    ///
    /// ```
    /// let m = dockhand::modules::Migrations::dir("migrations");
    /// ```
    pub fn dir(path: impl Into<PathBuf>) -> Self {
        Migrations {
            source: Source::Dir(path.into()),
        }
    }

    /// These SQL strings, applied in order.
    ///
    /// ```
    /// let m = dockhand::modules::Migrations::sql(["CREATE TABLE t (id int)"]);
    /// ```
    pub fn sql<I, S>(statements: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Migrations {
            source: Source::Sql(statements.into_iter().map(Into::into).collect()),
        }
    }

    /// An async function that migrates a PostgreSQL template through the
    /// client it is given. Code cannot be hashed: `version` names what it does,
    /// and a new version builds a new template.
    ///
    /// ```
    /// let m = dockhand::modules::Migrations::function("v2", |client| {
    ///     Box::pin(async move { client.batch_execute("CREATE TABLE t (id int)").await.map_err(|e| e.to_string()) })
    /// });
    /// ```
    #[cfg(feature = "postgres")]
    pub fn function<F>(version: impl Into<String>, run: F) -> Self
    where
        F: Fn(&tokio_postgres::Client) -> BoxFuture<'_, std::result::Result<(), String>>
            + Send
            + Sync
            + 'static,
    {
        Migrations {
            source: Source::Function {
                version: version.into(),
                run: Arc::new(run),
            },
        }
    }

    /// An async function that migrates a MariaDB template through the
    /// connection it is given (mysql_async's); `version` names what it does,
    /// as for [`function`](Self::function)'s PostgreSQL form.
    ///
    /// ```
    /// use mysql_async::prelude::Queryable;
    /// let m = dockhand::modules::Migrations::mariadb_function("v2", |conn| {
    ///     Box::pin(async move { conn.query_drop("CREATE TABLE t (id int)").await.map_err(|e| e.to_string()) })
    /// });
    /// ```
    #[cfg(feature = "mariadb")]
    pub fn mariadb_function<F>(version: impl Into<String>, run: F) -> Self
    where
        F: Fn(&mut mysql_async::Conn) -> BoxFuture<'_, std::result::Result<(), String>>
            + Send
            + Sync
            + 'static,
    {
        Migrations {
            source: Source::MariaDbFunction {
                version: version.into(),
                run: Arc::new(run),
            },
        }
    }

    /// The steps, read now (a directory's files as they are at this moment).
    pub(crate) fn steps(&self) -> Result<Vec<Step>> {
        match &self.source {
            Source::Dir(dir) => read_dir(dir),
            Source::Sql(list) => Ok(list
                .iter()
                .enumerate()
                .map(|(i, sql)| Step {
                    name: format!("statement {}", i + 1),
                    sql: sql.clone(),
                })
                .collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// The PostgreSQL function form's version and code, if that is the form.
    #[cfg(feature = "postgres")]
    pub(crate) fn function_form(&self) -> Option<(&str, &MigrateFn)> {
        match &self.source {
            Source::Function { version, run } => Some((version, run)),
            _ => None,
        }
    }

    /// The MariaDB function form's version and code, if that is the form.
    #[cfg(feature = "mariadb")]
    pub(crate) fn mariadb_function_form(&self) -> Option<(&str, &MariaDbMigrateFn)> {
        match &self.source {
            Source::MariaDbFunction { version, run } => Some((version, run)),
            _ => None,
        }
    }

    /// The other server's function form, which `server` cannot run: a typed
    /// error naming the form to use, rather than a template built without it.
    pub(crate) fn refuse_foreign_function(&self, server: &str, kind: &str) -> Result<()> {
        let (version, form, wanted) = match &self.source {
            #[cfg(feature = "postgres")]
            Source::Function { version, .. } if kind != "postgres" => (
                version,
                "Migrations::function (a PostgreSQL client)",
                "Migrations::mariadb_function",
            ),
            #[cfg(feature = "mariadb")]
            Source::MariaDbFunction { version, .. } if kind != "mariadb" => (
                version,
                "Migrations::mariadb_function (a MariaDB connection)",
                "Migrations::function",
            ),
            _ => return Ok(()),
        };
        Err(Error::invalid(
            format!("migrations {version:?} for {server}"),
            format!("{form} cannot migrate a {kind} server; give it {wanted}"),
        ))
    }

    /// Sixteen hex digits naming this content: the template's key.
    pub(crate) fn key(&self, steps: &[Step]) -> String {
        let mut hasher = Sha256::new();
        match &self.source {
            #[cfg(feature = "postgres")]
            Source::Function { version, .. } => {
                hasher.update(b"function\0");
                hasher.update(version.as_bytes());
            }
            #[cfg(feature = "mariadb")]
            Source::MariaDbFunction { version, .. } => {
                hasher.update(b"mariadb function\0");
                hasher.update(version.as_bytes());
            }
            _ => {}
        }
        for step in steps {
            hasher.update(step.name.as_bytes());
            hasher.update([0]);
            hasher.update(step.sql.as_bytes());
            hasher.update([0]);
        }
        crate::reuse::lock::hex::short(&hasher.finalize(), 16)
    }
}

fn read_dir(dir: &std::path::Path) -> Result<Vec<Step>> {
    let io = |source| Error::Io {
        operation: "read migrations",
        resource: dir.display().to_string(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::invalid(
            format!("migrations {}", dir.display()),
            "the directory holds no .sql file; give the directory your migrations are in",
        ));
    }
    files
        .into_iter()
        .map(|path| {
            let sql = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                operation: "read migration",
                resource: path.display().to_string(),
                source,
            })?;
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Ok(Step { name, sql })
        })
        .collect()
}

/// The statement of `sql` around a 1-based character position the server
/// reported, trimmed: what a migration error names.
#[cfg(feature = "postgres")]
pub(crate) fn statement_at(sql: &str, position: Option<usize>) -> String {
    let Some(position) = position else {
        return sql.trim().chars().take(200).collect();
    };
    let chars: Vec<char> = sql.chars().collect();
    let at = position.saturating_sub(1).min(chars.len());
    let start = chars[..at].iter().rposition(|c| *c == ';').map_or(0, |i| i + 1);
    let end = chars[at..]
        .iter()
        .position(|c| *c == ';')
        .map_or(chars.len(), |i| at + i);
    chars[start..end].iter().collect::<String>().trim().to_string()
}

/// A script's statements, split at the semicolons outside quotes and comments
/// and trimmed, so that a MariaDB migration runs them one at a time and an
/// error names the one refused. `None` for a script with a compound statement
/// (a `BEGIN … END` body holds semicolons of its own): it runs whole.
#[cfg(feature = "mariadb")]
pub(crate) fn split_statements(sql: &str) -> Option<Vec<String>> {
    let bytes = sql.as_bytes();
    let (mut statements, mut start, mut i) = (Vec::new(), 0, 0);
    let word_at = |i: usize, word: &str| {
        bytes.len() >= i + word.len()
            && bytes[i..i + word.len()].eq_ignore_ascii_case(word.as_bytes())
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric() && bytes[i - 1] != b'_')
            && bytes
                .get(i + word.len())
                .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'_')
    };
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' && quote != b'`' { 2 } else { 1 };
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                statements.push(&sql[start..i]);
                start = i + 1;
            }
            b'b' | b'B' if word_at(i, "begin") => {
                // `BEGIN;` and `BEGIN WORK` start a transaction; any other
                // BEGIN opens a compound statement.
                let rest = sql[i + 5..].trim_start();
                let transaction = rest.is_empty()
                    || rest.starts_with(';')
                    || rest.get(..4).is_some_and(|w| w.eq_ignore_ascii_case("work"));
                if !transaction {
                    return None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    statements.push(&sql[start.min(sql.len())..]);
    Some(
        statements
            .into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_in_name_order_and_the_key_follows_content() {
        let dir = std::env::temp_dir().join(format!("mig-{}", crate::labels::random_hex(8)));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("0002_b.sql"), "CREATE TABLE b ();").unwrap();
        std::fs::write(dir.join("0001_a.sql"), "CREATE TABLE a ();").unwrap();
        std::fs::write(dir.join("notes.txt"), "not sql").unwrap();
        let m = Migrations::dir(&dir);
        let steps = m.steps().unwrap();
        let names: Vec<_> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["0001_a.sql", "0002_b.sql"]);
        let key = m.key(&steps);
        std::fs::write(dir.join("0002_b.sql"), "CREATE TABLE b (x int);").unwrap();
        assert_ne!(
            key,
            m.key(&m.steps().unwrap()),
            "changed content, another template"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let empty = Migrations::dir(std::env::temp_dir().join("no-such-migrations-dir"));
        assert!(empty.steps().is_err());
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn function_versions_name_their_template() {
        let f = |v: &str| Migrations::function(v, |_c| Box::pin(async { Ok(()) })).key(&[]);
        assert_eq!(f("v1"), f("v1"));
        assert_ne!(f("v1"), f("v2"));
        assert_ne!(
            f("v1"),
            Migrations::sql(["v1"]).key(&Migrations::sql(["v1"]).steps().unwrap())
        );
    }

    #[cfg(feature = "mariadb")]
    #[test]
    fn statements_split_outside_quotes_and_comments() {
        let sql = "CREATE TABLE a (s text DEFAULT ';');\n-- a; comment\nINSERT INTO a VALUES ('x\\';y');\n/* ; */ SELECT `;`;\n";
        let split = split_statements(sql).unwrap();
        assert_eq!(
            split,
            [
                "CREATE TABLE a (s text DEFAULT ';')",
                "-- a; comment\nINSERT INTO a VALUES ('x\\';y')",
                "/* ; */ SELECT `;`"
            ]
        );
        assert_eq!(split_statements("SELECT 1").unwrap(), ["SELECT 1"]);
        let transaction = "BEGIN; INSERT INTO a VALUES (1); COMMIT; begin work; COMMIT";
        assert_eq!(split_statements(transaction).unwrap().len(), 5);
        let compound = "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END; SELECT 'begin x'";
        assert_eq!(split_statements(compound), None);
        assert_eq!(
            split_statements("SELECT began, beginning FROM t").unwrap().len(),
            1
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn the_failing_statement_is_found_by_position() {
        let sql = "CREATE TABLE a (id int);\nINSERT INTO nope VALUES (1);\nSELECT 1;";
        let at = sql.find("nope").unwrap() + 1;
        assert_eq!(statement_at(sql, Some(at)), "INSERT INTO nope VALUES (1)");
        assert_eq!(statement_at("SELECT x", None), "SELECT x");
    }
}
