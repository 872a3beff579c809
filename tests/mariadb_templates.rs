//! MariaDB's migrated databases (feature `mariadb`): templates built once per
//! server and migrations, in any process; copies that hold every kind of
//! object the migrations made, handed out warm; checkpoints; failing
//! migrations named. Checked through mysql_async against the real server.
#![cfg(feature = "mariadb")]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use dockhand::modules::{MariaDb, Migrations, SharedMariaDb};
use dockhand::Error;
use mysql_async::prelude::*;

static DB: SharedMariaDb = SharedMariaDb::new(|| MariaDb::new().image(common::MARIADB));

async fn connect(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url(url).unwrap())
        .await
        .expect("connect")
}

async fn root() -> mysql_async::Conn {
    connect(&DB.server().await.unwrap().root_connection_string()).await
}

/// Database names on the server that start with `prefix`.
async fn databases_like(conn: &mut mysql_async::Conn, prefix: &str) -> Vec<String> {
    conn.exec(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE CONCAT(?, '%')",
        (prefix.replace('_', "\\_"),),
    )
    .await
    .unwrap()
}

fn migrations_dir(files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(common::unique("migrations"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
    }
    dir
}

const SCHEMA: &str = "
CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL UNIQUE);
CREATE TABLE orders (
  id INT AUTO_INCREMENT PRIMARY KEY,
  customer INT NOT NULL,
  qty INT NOT NULL,
  price INT NOT NULL,
  total INT AS (qty * price) STORED,
  CONSTRAINT fk_customer FOREIGN KEY (customer) REFERENCES customers (id)
);
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(80));
CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total >= 10;
CREATE VIEW big_order_count AS SELECT count(*) AS n FROM big_orders;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW
  INSERT INTO audit (what) VALUES (CONCAT('order ', NEW.id));
CREATE PROCEDURE add_customer(IN who VARCHAR(40))
BEGIN
  INSERT INTO customers (name) VALUES (who);
  SELECT LAST_INSERT_ID() AS id;
END;
";

const SEED: &str = "
INSERT INTO customers (name) VALUES ('ada'), ('brian');
INSERT INTO orders (customer, qty, price) VALUES (1, 2, 3), (2, 5, 4);
";

#[tokio::test]
async fn copies_hold_every_object_and_row_are_isolated_and_dropped() -> dockhand::Result<()> {
    common::mariadb().await?;
    let dir = migrations_dir(&[
        ("0001_schema.sql", SCHEMA),
        ("0002_seed.sql", SEED),
        ("notes.txt", "not a migration"),
    ]);
    let migrations = Migrations::dir(&dir);
    let a = DB.migrated_database(&migrations).await?;
    let b = DB.migrated_database(&migrations).await?;
    assert_ne!(a.name(), b.name());
    assert!(
        a.connection_string().starts_with("mysql://test:test@"),
        "{}",
        a.connection_string()
    );
    // As the application user, not root.
    let mut ca = a.conn().await?;
    let mut cb = b.conn().await?;
    let totals: Vec<(i32, i32)> = ca
        .query("SELECT id, total FROM orders ORDER BY id")
        .await
        .unwrap();
    assert_eq!(totals, [(1, 6), (2, 20)], "rows and the generated column");
    let audited: Vec<String> = ca.query("SELECT what FROM audit").await.unwrap();
    assert_eq!(
        audited,
        ["order 1", "order 2"],
        "the copy fired no trigger of its own"
    );
    // The trigger, the counters, the views and the procedure came along.
    ca.query_drop("INSERT INTO orders (customer, qty, price) VALUES (2, 1, 1)")
        .await
        .unwrap();
    let last: Option<String> = ca
        .query_first("SELECT what FROM audit ORDER BY id DESC")
        .await
        .unwrap();
    assert_eq!(
        last.as_deref(),
        Some("order 3"),
        "AUTO_INCREMENT went on from the seed"
    );
    let big: Option<i64> = ca.query_first("SELECT n FROM big_order_count").await.unwrap();
    assert_eq!(big, Some(1));
    let id: Option<i64> = ca.query_first("CALL add_customer('cyd')").await.unwrap();
    assert_eq!(id, Some(3));
    // The foreign key holds.
    let orphan = ca
        .query_drop("INSERT INTO orders (customer, qty, price) VALUES (99, 1, 1)")
        .await;
    assert!(orphan.is_err(), "the foreign key was not copied");
    // The other copy saw none of it.
    let in_b: Option<i64> = cb.query_first("SELECT count(*) FROM orders").await.unwrap();
    assert_eq!(in_b, Some(2), "copies must not share rows");
    let views_read_b: Option<String> = cb
        .query_first(format!(
            "SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = 'big_orders'",
            b.name()
        ))
        .await
        .unwrap();
    let view = views_read_b.unwrap();
    assert!(view.contains(b.name()) && !view.contains("tpl_"), "{view}");

    let name = a.name().to_string();
    ca.disconnect().await.unwrap();
    cb.disconnect().await.unwrap();
    drop(a);
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(30)));
    let mut root = root().await;
    assert!(
        databases_like(&mut root, &name).await.is_empty(),
        "a dropped guard's database is gone"
    );
    let record: Option<String> = root
        .exec_first("SELECT state FROM dockhand_meta.clones WHERE db = ?", (&name,))
        .await
        .unwrap();
    assert_eq!(record, None, "its record went with it");
    std::fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

#[tokio::test]
async fn the_pool_fills_itself_and_hands_out_ready_copies() -> dockhand::Result<()> {
    // A server of this test's own, so that the pool's count is this test's.
    let server = MariaDb::new()
        .image(common::mariadb().await?)
        .pool_size(3)
        .start()
        .await?;
    let mut root = connect(&server.root_connection_string()).await;
    let tables: Vec<String> = (0..20)
        .map(|i| format!("CREATE TABLE t{i} (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL)"))
        .chain(["INSERT INTO t0 (body) VALUES ('seed')".to_string()])
        .collect();
    let migrations = Migrations::sql(tables);
    let first = server.migrated_database(&migrations).await?;
    let mut ready = Vec::new();
    for _ in 0..100 {
        ready = root
            .query("SELECT db FROM dockhand_meta.clones WHERE state = 'ready'")
            .await
            .unwrap();
        if ready.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready.len(), 3, "the pool did not fill: {ready:?}");
    let warm = server.migrated_database(&migrations).await?;
    assert!(
        ready.contains(&warm.name().to_string()),
        "{} was not a ready copy: {ready:?}",
        warm.name()
    );
    let mut conn = warm.conn().await?;
    let seed: Option<String> = conn.query_first("SELECT body FROM t0").await.unwrap();
    assert_eq!(seed.as_deref(), Some("seed"));
    let count: Option<i64> = conn
        .query_first("SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        .await
        .unwrap();
    assert_eq!(count, Some(20));
    conn.disconnect().await.unwrap();
    drop(first);
    Ok(())
}

#[tokio::test]
async fn checkpoints_go_back_with_connections_left_open() -> dockhand::Result<()> {
    common::mariadb().await?;
    let migrations = Migrations::sql(["CREATE TABLE items (id INT PRIMARY KEY)"]);
    let db = DB.migrated_database(&migrations).await?;
    let mut conn = db.conn().await?;
    conn.query_drop("INSERT INTO items VALUES (1), (2)")
        .await
        .unwrap();
    db.checkpoint("after-seed").await?;
    conn.query_drop("DELETE FROM items; INSERT INTO items VALUES (9)")
        .await
        .unwrap();
    db.restore("after-seed").await?;
    let ids: Vec<i32> = conn.query("SELECT id FROM items ORDER BY id").await.unwrap();
    assert_eq!(ids, [1, 2], "restore brings back the checkpoint's rows");
    // Restored twice from the one checkpoint.
    conn.query_drop("DELETE FROM items").await.unwrap();
    db.restore("after-seed").await?;
    let ids: Vec<i32> = conn.query("SELECT id FROM items ORDER BY id").await.unwrap();
    assert_eq!(ids, [1, 2]);
    let err = db.restore("never-taken").await.unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    assert!(err.to_string().contains("never-taken"), "{err}");
    conn.disconnect().await.unwrap();
    let name = db.name().to_string();
    drop(db);
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(30)));
    assert!(
        databases_like(&mut root().await, &name).await.is_empty(),
        "checkpoints go with their database"
    );
    Ok(())
}

#[tokio::test]
async fn a_failing_migration_is_named_and_leaves_nothing() -> dockhand::Result<()> {
    common::mariadb().await?;
    let tag = common::unique("f").replace('-', "_");
    let dir = migrations_dir(&[
        ("0001_ok.sql", &format!("CREATE TABLE ok_{tag} (id INT);")),
        (
            "0002_bad.sql",
            &format!("CREATE TABLE also_{tag} (id INT);\n-- the next one; fails\nINSERT INTO missing_{tag} VALUES (1);\nSELECT 1;\n"),
        ),
    ]);
    let migrations = Migrations::dir(&dir);
    let mut root = root().await;
    let before = databases_like(&mut root, "tpl_").await;
    let err = DB.migrated_database(&migrations).await.unwrap_err();
    let Error::Migration {
        migration,
        statement,
        message,
        ..
    } = &err
    else {
        panic!("expected a migration error, got {err:?}");
    };
    assert_eq!(migration, "0002_bad.sql");
    assert_eq!(
        statement,
        &format!("-- the next one; fails\nINSERT INTO missing_{tag} VALUES (1)")
    );
    assert!(message.contains(&format!("missing_{tag}")), "{message}");
    let after = databases_like(&mut root, "tpl_").await;
    let left: Vec<_> = after.iter().filter(|d| !before.contains(d)).collect();
    assert!(left.is_empty(), "a half-built template was left: {left:?}");

    // Fixed, the migrations are another template, and it builds.
    std::fs::write(
        dir.join("0002_bad.sql"),
        format!("CREATE TABLE also_{tag} (id INT);"),
    )
    .unwrap();
    let db = DB.migrated_database(&migrations).await?;
    let mut conn = db.conn().await?;
    conn.query_drop(format!("SELECT * FROM also_{tag}"))
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

#[tokio::test]
async fn changed_migrations_get_their_own_template_and_a_dead_server_is_an_error() -> dockhand::Result<()> {
    let server = MariaDb::new()
        .image(common::mariadb().await?)
        .pool_size(1)
        .start()
        .await?;
    // PostgreSQL's function form cannot migrate MariaDB: said, not skipped.
    #[cfg(feature = "postgres")]
    {
        let foreign = Migrations::function("pg-only", |_client| Box::pin(async { Ok(()) }));
        let err = server.migrated_database(&foreign).await.unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
        assert!(err.to_string().contains("mariadb_function"), "{err}");
    }

    let old = Migrations::sql(["CREATE TABLE orders (id INT)"]);
    let new = Migrations::mariadb_function("orders-v2", |conn| {
        Box::pin(async move {
            conn.query_drop("CREATE TABLE orders (id INT, item TEXT)")
                .await
                .map_err(|e| e.to_string())
        })
    });
    let before = server.migrated_database(&old).await?;
    let after = server.migrated_database(&new).await?;
    async fn has_item(db: dockhand::modules::MigratedMariaDb) -> bool {
        let mut conn = db.conn().await.unwrap();
        conn.query_drop("SELECT item FROM orders").await.is_ok()
    }
    assert!(has_item(after).await, "the changed migrations were not applied");
    assert!(!has_item(before).await, "the old template changed under its pool");
    assert!(!has_item(server.migrated_database(&old).await?).await);

    server.container().kill("SIGKILL").await?;
    let asked = tokio::time::timeout(Duration::from_secs(30), server.migrated_database(&new)).await;
    let err = asked.expect("a hand-out from a dead server hung").unwrap_err();
    assert!(matches!(err, Error::Database { .. }), "{err:?}");
    assert!(err.to_string().contains(server.container().name()), "{err}");
    Ok(())
}

const CHILD: &str = "DOCKHAND_TEST_MARIADB_CHILD";

/// The child: asks for a database whose migration function notes every build
/// in a file, prints `READY <name>`, then holds it until killed.
#[tokio::test]
#[ignore = "child process of the MariaDB template tests"]
async fn child_holds_a_migrated_mariadb_database() -> dockhand::Result<()> {
    let log = std::env::var(CHILD).expect("started by its parent test");
    let version = log.clone();
    let migrations = Migrations::mariadb_function(version, move |conn| {
        let log = log.clone();
        Box::pin(async move {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&log)
                .unwrap();
            writeln!(file, "built by {}", std::process::id()).unwrap();
            // Slow enough that the other processes ask while this one builds.
            tokio::time::sleep(Duration::from_millis(500)).await;
            conn.query_drop("CREATE TABLE built (id INT)")
                .await
                .map_err(|e| e.to_string())
        })
    });
    let db = DB.migrated_database(&migrations).await?;
    db.conn().await?.query_drop("SELECT * FROM built").await.unwrap();
    println!("READY {}", db.name());
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[tokio::test]
async fn processes_build_the_template_once_and_a_killed_ones_copy_is_dropped() -> dockhand::Result<()> {
    common::mariadb().await?;
    // This process uses the server too: its pool's upkeep does the dropping.
    let _own = DB
        .migrated_database(&Migrations::sql(["CREATE TABLE mine (id INT)"]))
        .await?;
    let log = std::env::temp_dir().join(common::unique("mariadb-builds"));
    let mut children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_holds_a_migrated_mariadb_database",
                    "--ignored",
                    "--nocapture",
                ])
                .env(CHILD, &log)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut names = Vec::new();
    for child in &mut children {
        let lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        let name = lines
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("READY ").map(str::to_string));
        names.push(name);
    }
    let mut root = root().await;
    let mut held = Vec::new();
    for name in names.iter().flatten() {
        held.extend(databases_like(&mut root, name).await);
    }
    for child in &mut children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let names: Vec<String> = names
        .into_iter()
        .map(|n| n.expect("each child got a database"))
        .collect();
    assert_eq!(held, names, "each child held its own");
    let builds = std::fs::read_to_string(&log).unwrap();
    assert_eq!(builds.lines().count(), 1, "three processes, one build: {builds}");
    std::fs::remove_file(&log).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for name in &names {
        while !databases_like(&mut root, name).await.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "{name} outlived its killed process"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    root.disconnect().await.unwrap();
    Ok(())
}
