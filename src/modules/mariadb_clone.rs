//! Copies of a MariaDB database, which has no `CREATE DATABASE … TEMPLATE`:
//! the source's tables (as `SHOW CREATE TABLE` gives them, foreign keys and
//! `AUTO_INCREMENT` counters included), their rows, views, routines and
//! triggers, replayed into the copy as one script with foreign key checks off
//! — and the migrations a template is built from.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use super::mariadb_admin::{ident, literal, mysql_error, server_message, Admin};
use super::migrations::{split_statements, Migrations, Step};
use crate::error::{Error, Result};

/// What a copy of one database is made of, read once from its source.
pub(super) struct Plan {
    tables: Vec<Table>,
    /// `SHOW CREATE VIEW` texts, in an order that creates what a view reads
    /// first; they name the source's schema, replaced by the copy's.
    views: Vec<String>,
    /// Routines, then triggers: created after the rows are in, so that no
    /// trigger fires on the copy.
    routines: Vec<String>,
    triggers: Vec<String>,
}

struct Table {
    name: String,
    create: String,
    /// The columns a row copy writes (generated ones are computed anew).
    columns: String,
    /// False when the source was seen empty (a template's never changes).
    has_rows: bool,
}

impl Plan {
    /// Reads `source`'s objects. `check_rows` looks for rows in each table, so
    /// that the copies of a template skip its empty ones.
    pub(super) async fn of(admin: &Admin, source: &str, check_rows: bool) -> Result<Plan> {
        let (tables, views) = tables_and_views(admin, source, check_rows).await?;
        let routines = routines(admin, source).await?;
        let triggers = triggers(admin, source).await?;
        refuse_events(admin, source).await?;
        Ok(Plan {
            tables,
            views: dependency_order(views, source),
            routines,
            triggers,
        })
    }

    /// One script that fills the empty database `to` from `from` (which this
    /// plan was read from, or a copy of it), then grants it to `user`.
    pub(super) fn script(&self, from: &str, to: &str, user: Option<&str>) -> String {
        let (src, dst) = (ident(from), ident(to));
        let mut script = format!("SET FOREIGN_KEY_CHECKS = 0; USE {dst};\n");
        for table in &self.tables {
            script.push_str(&table.create);
            script.push_str(";\n");
        }
        for table in self.tables.iter().filter(|t| t.has_rows && !t.columns.is_empty()) {
            let name = ident(&table.name);
            let cols = &table.columns;
            script.push_str(&format!(
                "INSERT INTO {dst}.{name} ({cols}) SELECT {cols} FROM {src}.{name};\n"
            ));
        }
        let qualified_source = format!("{src}.");
        for view in &self.views {
            script.push_str(&view.replace(&qualified_source, &format!("{dst}.")));
            script.push_str(";\n");
        }
        for statement in self.routines.iter().chain(&self.triggers) {
            script.push_str(statement);
            script.push_str(";\n");
        }
        if let Some(user) = user {
            script.push_str(&format!("GRANT ALL ON {dst}.* TO {}@'%';\n", literal(user)));
        }
        script.push_str("USE dockhand_meta; SET FOREIGN_KEY_CHECKS = 1");
        script
    }
}

/// What [`Plan::of`] reads in every query about `source`.
const READ: &str = "read the objects of a database on";

/// The tables of `source` (with their columns and whether they hold rows)
/// and its views, each with the statement that creates it.
async fn tables_and_views(
    admin: &Admin,
    source: &str,
    check_rows: bool,
) -> Result<(Vec<Table>, Vec<(String, String)>)> {
    let schema = literal(source);
    let objects = admin
        .rows(
            READ,
            format!(
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = {schema} ORDER BY TABLE_NAME"
            ),
        )
        .await?;
    let columns: std::collections::HashMap<String, String> = admin
        .rows(
            READ,
            format!(
                "SELECT TABLE_NAME, GROUP_CONCAT(CONCAT('`', REPLACE(COLUMN_NAME, '`', '``'), '`') ORDER BY ORDINAL_POSITION) \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {schema} AND EXTRA NOT LIKE '%GENERATED%' GROUP BY TABLE_NAME"
            ),
        )
        .await?
        .into_iter()
        .filter_map(|row| match row.as_slice() {
            [Some(table), Some(cols)] => Some((table.clone(), cols.clone())),
            _ => None,
        })
        .collect();
    let mut tables = Vec::new();
    let mut views = Vec::new();
    for row in objects {
        let [Some(name), Some(kind)] = row.as_slice() else {
            continue;
        };
        let qualified = format!("{}.{}", ident(source), ident(name));
        match kind.as_str() {
            "BASE TABLE" | "SYSTEM VERSIONED" => {
                let create = second(admin, &format!("SHOW CREATE TABLE {qualified}"), 1).await?;
                let has_rows = !check_rows
                    || !admin
                        .column(READ, format!("SELECT 1 FROM {qualified} LIMIT 1"))
                        .await?
                        .is_empty();
                tables.push(Table {
                    columns: columns.get(name).cloned().unwrap_or_default(),
                    name: name.clone(),
                    create,
                    has_rows,
                });
            }
            "VIEW" => views.push((
                name.clone(),
                second(admin, &format!("SHOW CREATE VIEW {qualified}"), 1).await?,
            )),
            other => {
                return Err(Error::invalid(
                    format!("{} database {source}", admin.server),
                    format!(
                        "{name} is a {other}, which dockhand does not copy yet; create it in each test instead of in the migrations"
                    ),
                ))
            }
        }
    }
    Ok((tables, views))
}

/// The statements that create `source`'s procedures and functions.
async fn routines(admin: &Admin, source: &str) -> Result<Vec<String>> {
    let schema = literal(source);
    let routines = admin
        .rows(
            READ,
            format!("SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {schema}"),
        )
        .await?;
    let mut creates = Vec::new();
    for row in routines {
        let [Some(name), Some(kind)] = row.as_slice() else {
            continue;
        };
        let sql = format!("SHOW CREATE {kind} {}.{}", ident(source), ident(name));
        creates.push(second(admin, &sql, 2).await?);
    }
    Ok(creates)
}

/// The statements that create `source`'s triggers, in the order they fire.
async fn triggers(admin: &Admin, source: &str) -> Result<Vec<String>> {
    let schema = literal(source);
    let triggers = admin
        .column(
            READ,
            format!(
                "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {schema} ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER"
            ),
        )
        .await?;
    let mut creates = Vec::new();
    for name in triggers {
        let sql = format!("SHOW CREATE TRIGGER {}.{}", ident(source), ident(&name));
        creates.push(second(admin, &sql, 2).await?);
    }
    Ok(creates)
}

/// Scheduled events are not copied: a template holding one is refused.
async fn refuse_events(admin: &Admin, source: &str) -> Result<()> {
    let schema = literal(source);
    let events = admin
        .column(
            READ,
            format!("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {schema}"),
        )
        .await?;
    if events.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(
        format!("{} database {source}", admin.server),
        format!("it holds scheduled events ({events:?}), which dockhand does not copy; leave them out of the migrations"),
    ))
}

/// Column `index` of a `SHOW CREATE …`'s one row.
async fn second(admin: &Admin, sql: &str, index: usize) -> Result<String> {
    let rows = admin.rows("read the definition of an object on", sql).await?;
    rows.into_iter()
        .next()
        .and_then(|row| row.into_iter().nth(index).flatten())
        .ok_or_else(|| {
            super::database::db_error(
                "read the definition of an object on",
                &admin.server,
                format!("{sql} returned no definition"),
            )
        })
}

/// Views that read other views come after them.
fn dependency_order(mut views: Vec<(String, String)>, source: &str) -> Vec<String> {
    let mut ordered = Vec::new();
    while !views.is_empty() {
        let waiting: Vec<String> = views.iter().map(|(name, _)| name.clone()).collect();
        let ready = views.iter().position(|(name, text)| {
            !waiting
                .iter()
                .any(|other| other != name && text.contains(&format!("{}.{}", ident(source), ident(other))))
        });
        // A cycle cannot be created; should one show, keep the server's order.
        let (_, text) = views.remove(ready.unwrap_or(0));
        ordered.push(text);
    }
    ordered
}

/// Applies the migrations on a connection of their own (to `url`, the
/// database being built), closed before return; a failure names the file and
/// the statement the server refused.
pub(super) async fn migrate(url: &str, server: &str, migrations: &Migrations, steps: &[Step]) -> Result<()> {
    let opts = Opts::from_url(url).map_err(|e| super::database::db_error("connect to", server, e))?;
    let mut conn = Conn::new(opts)
        .await
        .map_err(|e| mysql_error("connect to", server, &e))?;
    let failed = |migration: &str, statement: String, message: String| Error::Migration {
        server: server.to_string(),
        migration: migration.to_string(),
        statement,
        message,
    };
    let mut outcome = Ok(());
    for step in steps {
        let whole = || vec![step.sql.clone()];
        for statement in split_statements(&step.sql).unwrap_or_else(whole) {
            if let Err(err) = conn.query_drop(&statement).await {
                let shown = statement.trim().chars().take(200).collect();
                outcome = Err(failed(&step.name, shown, server_message(&err)));
                break;
            }
        }
        if outcome.is_err() {
            break;
        }
    }
    if let (Ok(()), Some((version, run))) = (&outcome, migrations.mariadb_function_form())
        && let Err(message) = run(&mut conn).await
    {
        outcome = Err(failed(&format!("function {version:?}"), "(code)".into(), message));
    }
    let _ = conn.disconnect().await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_that_read_views_come_after_them() {
        let v = |name: &str, reads: &str| {
            (
                name.to_string(),
                format!("CREATE VIEW `{name}` AS select * from `src`.`{reads}`"),
            )
        };
        let ordered = dependency_order(vec![v("a", "b"), v("b", "c"), v("c", "t")], "src");
        let names: Vec<char> = ordered.iter().map(|t| t.chars().nth(13).unwrap()).collect();
        assert_eq!(names, ['c', 'b', 'a']);
    }
}
