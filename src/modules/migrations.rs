//! Migrations as users keep them — a directory of `.sql` files applied in name
//! order (as sqlx and refinery lay them out), a list of SQL strings, or an
//! async function given a connection — and the key a template is built by.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The function form: gets a client connected to the database being migrated.
type MigrateFn =
    Arc<dyn Fn(&tokio_postgres::Client) -> BoxFuture<'_, std::result::Result<(), String>> + Send + Sync>;

/// A schema to build a template database from, once per server and content.
///
/// ```
/// use dockhand::modules::Migrations;
/// let from_files = Migrations::dir("migrations");
/// let inline = Migrations::sql(["CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)"]);
/// let by_code = Migrations::function("seed-v1", |client| {
///     Box::pin(async move {
///         client.batch_execute("CREATE TABLE t (id int)").await.map_err(|e| e.to_string())
///     })
/// });
/// ```
#[derive(Clone)]
pub struct Migrations {
    source: Source,
}

#[derive(Clone)]
enum Source {
    Dir(PathBuf),
    Sql(Vec<String>),
    Function { version: String, run: MigrateFn },
}

impl std::fmt::Debug for Migrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Dir(dir) => write!(f, "Migrations::dir({})", dir.display()),
            Source::Sql(list) => write!(f, "Migrations::sql({} statements)", list.len()),
            Source::Function { version, .. } => write!(f, "Migrations::function({version:?})"),
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

    /// An async function that migrates through the client it is given. Code
    /// cannot be hashed: `version` names what it does, and a new version builds
    /// a new template.
    ///
    /// ```
    /// let m = dockhand::modules::Migrations::function("v2", |client| {
    ///     Box::pin(async move { client.batch_execute("CREATE TABLE t (id int)").await.map_err(|e| e.to_string()) })
    /// });
    /// ```
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
            Source::Function { .. } => Ok(Vec::new()),
        }
    }

    /// The function form's version and code, if that is the form.
    pub(crate) fn function_form(&self) -> Option<(&str, &MigrateFn)> {
        match &self.source {
            Source::Function { version, run } => Some((version, run)),
            _ => None,
        }
    }

    /// Sixteen hex digits naming this content: the template's key.
    pub(crate) fn key(&self, steps: &[Step]) -> String {
        let mut hasher = Sha256::new();
        if let Source::Function { version, .. } = &self.source {
            hasher.update(b"function\0");
            hasher.update(version.as_bytes());
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

    #[test]
    fn the_failing_statement_is_found_by_position() {
        let sql = "CREATE TABLE a (id int);\nINSERT INTO nope VALUES (1);\nSELECT 1;";
        let at = sql.find("nope").unwrap() + 1;
        assert_eq!(statement_at(sql, Some(at)), "INSERT INTO nope VALUES (1)");
        assert_eq!(statement_at("SELECT x", None), "SELECT x");
    }
}
