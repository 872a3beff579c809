//! One root session on a MariaDB server that lives as long as the process: a
//! task on the cleanup worker's runtime owns the connection (mysql_async does
//! its I/O in the caller's future, so a connection made on a test's runtime
//! would die with that test), and every other runtime sends it SQL.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row, Value};
use tokio::sync::{mpsc, oneshot};

use super::database::db_error;
use crate::error::{Error, Result};

/// What one request wants back.
enum Want {
    /// Every result set consumed, nothing returned (a script of several).
    Nothing,
    /// The rows of one statement, as text.
    Rows,
    /// How many rows one statement changed.
    Affected,
}

/// The answer: rows (text; `None` for NULL) or a count.
#[derive(Default)]
pub(super) struct Answer {
    pub(super) rows: Vec<Vec<Option<String>>>,
    pub(super) affected: u64,
}

type Request = (String, Want, oneshot::Sender<std::result::Result<Answer, String>>);

/// A handle on the session; cheap to share, requests run one at a time in the
/// order sent, so a script (`USE`, then what it creates) is never interleaved
/// with another caller's.
pub(super) struct Admin {
    tx: mpsc::UnboundedSender<Request>,
    pub(super) server: String,
}

/// The server's own words for an error, when it sent any.
pub(super) fn server_message(err: &mysql_async::Error) -> String {
    match err {
        mysql_async::Error::Server(server) => server.message.clone(),
        other => other.to_string(),
    }
}

impl Admin {
    /// Connects as `url` (root's) on the worker's runtime.
    pub(super) async fn connect(url: String, server: &str) -> Result<Admin> {
        let opts = Opts::from_url(&url).map_err(|e| db_error("connect to", server, e))?;
        let (ready_tx, ready_rx) = oneshot::channel();
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        let spawned = crate::worker::spawn_task(Box::pin(async move {
            let mut conn = match Conn::new(opts).await {
                Ok(conn) => conn,
                Err(err) => {
                    let _ = ready_tx.send(Err(server_message(&err)));
                    return;
                }
            };
            // A test's transaction left open must not hang a drop or a clone.
            let _ = conn.query_drop("SET SESSION lock_wait_timeout = 10").await;
            let _ = ready_tx.send(Ok(()));
            while let Some((sql, want, answer)) = rx.recv().await {
                let _ = answer.send(run(&mut conn, &sql, want).await.map_err(|e| server_message(&e)));
            }
            let _ = conn.disconnect().await;
        }));
        if !spawned {
            return Err(db_error(
                "connect to",
                server,
                "the background worker is not running",
            ));
        }
        ready_rx
            .await
            .map_err(|_| db_error("connect to", server, "the connection task ended"))?
            .map_err(|message| db_error("connect to", server, message))?;
        Ok(Admin {
            tx,
            server: server.to_string(),
        })
    }

    async fn ask(&self, operation: &'static str, sql: String, want: Want) -> Result<Answer> {
        let (answer_tx, answer_rx) = oneshot::channel();
        let gone = || db_error(operation, &self.server, "the server's session has ended");
        self.tx.send((sql, want, answer_tx)).map_err(|_| gone())?;
        answer_rx
            .await
            .map_err(|_| gone())?
            .map_err(|message| db_error(operation, &self.server, message))
    }

    /// Runs a script of one or more statements.
    pub(super) async fn run(&self, operation: &'static str, sql: impl Into<String>) -> Result<()> {
        self.ask(operation, sql.into(), Want::Nothing).await.map(drop)
    }

    /// The rows of one statement.
    pub(super) async fn rows(
        &self,
        operation: &'static str,
        sql: impl Into<String>,
    ) -> Result<Vec<Vec<Option<String>>>> {
        Ok(self.ask(operation, sql.into(), Want::Rows).await?.rows)
    }

    /// The first column of each row, NULLs left out.
    pub(super) async fn column(
        &self,
        operation: &'static str,
        sql: impl Into<String>,
    ) -> Result<Vec<String>> {
        let rows = self.rows(operation, sql).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect())
    }

    /// How many rows one statement changed.
    pub(super) async fn affected(&self, operation: &'static str, sql: impl Into<String>) -> Result<u64> {
        Ok(self.ask(operation, sql.into(), Want::Affected).await?.affected)
    }

    /// Runs a script, ignoring failure: for drops of what may be gone already.
    pub(super) async fn run_quietly(&self, sql: impl Into<String>) {
        let _ = self.ask("clean up on", sql.into(), Want::Nothing).await;
    }

    /// False once the session has ended (the server went away).
    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

async fn run(conn: &mut Conn, sql: &str, want: Want) -> mysql_async::Result<Answer> {
    match want {
        Want::Nothing => conn.query_drop(sql).await.map(|()| Answer::default()),
        Want::Affected => {
            conn.query_drop(sql).await?;
            Ok(Answer {
                rows: Vec::new(),
                affected: conn.affected_rows(),
            })
        }
        Want::Rows => {
            let rows: Vec<Row> = conn.query(sql).await?;
            Ok(Answer {
                rows: rows.into_iter().map(text_row).collect(),
                affected: 0,
            })
        }
    }
}

fn text_row(row: Row) -> Vec<Option<String>> {
    row.unwrap()
        .into_iter()
        .map(|value| match value {
            Value::NULL => None,
            Value::Bytes(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            other => Some(other.as_sql(true)),
        })
        .collect()
}

/// Quotes an identifier for MariaDB.
pub(super) fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Quotes a string literal for MariaDB.
pub(super) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A mysql_async failure as the crate's error.
pub(super) fn mysql_error(operation: &'static str, resource: &str, err: &mysql_async::Error) -> Error {
    db_error(operation, resource, server_message(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_text_are_quoted() {
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(literal("it's a \\ test"), "'it\\'s a \\\\ test'");
    }
}
