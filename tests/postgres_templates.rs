//! Migrated databases (feature `postgres`): templates built once per server and
//! migrations, in any process; clones handed out warm; checkpoints; failing
//! migrations named. Checked through tokio-postgres against the real server.
#![cfg(feature = "postgres")]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use dockhand::modules::{Migrations, Postgres, SharedPostgres};
use dockhand::Error;

static PG: SharedPostgres = SharedPostgres::new(|| Postgres::new().image(common::POSTGRES));

fn migrations_dir(files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(common::unique("migrations"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
    }
    dir
}

/// Twenty tables and a seeded row: the shape the bench measures too.
fn twenty_tables(tag: &str) -> Vec<String> {
    let mut sql: Vec<String> = (0..20)
        .map(|i| format!("CREATE TABLE t{i}_{tag} (id serial PRIMARY KEY, body text NOT NULL)"))
        .collect();
    sql.push(format!("INSERT INTO t0_{tag} (body) VALUES ('seed')"));
    sql
}

async fn admin() -> tokio_postgres::Client {
    let server = PG.server().await.unwrap();
    let (client, connection) = tokio_postgres::connect(&server.connection_string(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

async fn databases_like(prefix: &str) -> Vec<String> {
    admin()
        .await
        .query(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
            &[&prefix],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn databases_hold_the_migrations_are_isolated_and_dropped() -> dockhand::Result<()> {
    common::postgres().await?;
    let tag = common::unique("m").replace('-', "_");
    let dir = migrations_dir(&[
        ("0001_orders.sql", &format!("CREATE TABLE orders_{tag} (id serial PRIMARY KEY, item text);")),
        (
            "0002_seed.sql",
            &format!("INSERT INTO orders_{tag} (item) VALUES ('tea'); INSERT INTO orders_{tag} (item) VALUES ('cake');"),
        ),
        ("README.txt", "not a migration"),
    ]);
    let migrations = Migrations::dir(&dir);
    let a = PG.migrated_database(&migrations).await?;
    let b = PG.migrated_database(&migrations).await?;
    assert_ne!(a.name(), b.name());
    let (ca, cb) = (a.client().await?, b.client().await?);
    let count = |rows: Vec<tokio_postgres::Row>| rows[0].get::<_, i64>(0);
    let seeded = ca
        .query(&format!("SELECT count(*) FROM orders_{tag}"), &[])
        .await
        .unwrap();
    assert_eq!(count(seeded), 2, "the migrations' rows are there");
    ca.execute(&format!("INSERT INTO orders_{tag} (item) VALUES ('a only')"), &[])
        .await
        .unwrap();
    let in_b = cb
        .query(&format!("SELECT count(*) FROM orders_{tag}"), &[])
        .await
        .unwrap();
    assert_eq!(count(in_b), 2, "databases must not share rows");

    let name = a.name().to_string();
    drop((ca, a));
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(30)));
    assert!(
        databases_like(&name).await.is_empty(),
        "a dropped guard's database is gone"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

#[tokio::test]
async fn the_pool_fills_itself_and_hands_out_warm_clones() -> dockhand::Result<()> {
    common::postgres().await?;
    let tag = common::unique("p").replace('-', "_");
    let migrations = Migrations::sql(twenty_tables(&tag));
    let first = PG.migrated_database(&migrations).await?;
    // The server keeps four ready clones of this template.
    let mut ready = Vec::new();
    for _ in 0..100 {
        ready = databases_like("pool_").await;
        if ready.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready.len() >= 4, "the pool did not fill: {ready:?}");
    // Warm before anyone connects: each clone was copied with the template's
    // catalog cache file, which a database's first session would build.
    let cold: Vec<String> = admin()
        .await
        .query(
            "SELECT datname FROM pg_database WHERE starts_with(datname, 'pool_') \
             AND pg_stat_file('base/' || oid || '/pg_internal.init', true) IS NULL",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(cold.is_empty(), "clones without a catalog cache: {cold:?}");
    let warm = PG.migrated_database(&migrations).await?;
    let client = warm.client().await?;
    let seed: String = client
        .query_one(&format!("SELECT body FROM t0_{tag}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(seed, "seed");
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 20);
    drop(first);
    Ok(())
}

#[tokio::test]
async fn checkpoints_go_back_in_milliseconds() -> dockhand::Result<()> {
    common::postgres().await?;
    let migrations = Migrations::sql(["CREATE TABLE items (id int)"]);
    let db = PG.migrated_database(&migrations).await?;
    let client = db.client().await?;
    client
        .batch_execute("INSERT INTO items VALUES (1), (2)")
        .await
        .unwrap();
    drop(client);
    db.checkpoint("after-seed").await?;
    let client = db.client().await?;
    client
        .batch_execute("DELETE FROM items; INSERT INTO items VALUES (9)")
        .await
        .unwrap();
    drop(client);
    db.restore("after-seed").await?;
    let client = db.client().await?;
    let ids: Vec<i32> = client
        .query("SELECT id FROM items ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, [1, 2], "restore brings back the checkpoint's rows");
    let err = db.restore("never-taken").await.unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    assert!(err.to_string().contains("never-taken"), "{err}");
    let name = db.name().to_string();
    drop((client, db));
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(30)));
    assert!(
        databases_like(&name).await.is_empty(),
        "checkpoints go with their database"
    );
    Ok(())
}

#[tokio::test]
async fn a_failing_migration_is_named_and_leaves_nothing() -> dockhand::Result<()> {
    common::postgres().await?;
    let tag = common::unique("f").replace('-', "_");
    let dir = migrations_dir(&[
        ("0001_ok.sql", &format!("CREATE TABLE ok_{tag} (id int);")),
        (
            "0002_bad.sql",
            &format!("CREATE TABLE also_{tag} (id int);\nINSERT INTO missing_{tag} VALUES (1);\n"),
        ),
    ]);
    let migrations = Migrations::dir(&dir);
    let err = PG.migrated_database(&migrations).await.unwrap_err();
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
    assert_eq!(statement, &format!("INSERT INTO missing_{tag} VALUES (1)"));
    assert!(message.contains(&format!("missing_{tag}")), "{message}");
    // Other test processes (nextest) may be building templates of their own
    // on the shared server right now: theirs finish, a half-built one stays.
    let mut building = databases_like("tplb_").await;
    for _ in 0..100 {
        if building.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        building = databases_like("tplb_").await;
    }
    assert!(
        building.is_empty(),
        "a half-built template was left: {building:?}"
    );

    // Fixed, the migrations are another template, and it builds.
    std::fs::write(
        dir.join("0002_bad.sql"),
        format!("CREATE TABLE also_{tag} (id int);"),
    )
    .unwrap();
    let db = PG.migrated_database(&migrations).await?;
    db.client()
        .await?
        .batch_execute(&format!("SELECT * FROM also_{tag}"))
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

#[tokio::test]
async fn changed_migrations_get_their_own_template_and_a_dead_server_is_an_error() -> dockhand::Result<()> {
    // A server of this test's own: it is killed at the end.
    let pg = Postgres::new()
        .image(common::postgres().await?)
        .pool_size(2)
        .start()
        .await?;
    let old = Migrations::sql(["CREATE TABLE orders (id int)"]);
    let new = Migrations::sql([
        "CREATE TABLE orders (id int)",
        "ALTER TABLE orders ADD COLUMN item text",
    ]);
    let before = pg.migrated_database(&old).await?;
    // The old pool is live while the migrations change: the new ones are
    // another template, and each hands out its own shape.
    let after = pg.migrated_database(&new).await?;
    let has_item = |db: dockhand::modules::MigratedDatabase| async move {
        let client = db.client().await.unwrap();
        client.query("SELECT item FROM orders", &[]).await.is_ok()
    };
    assert!(has_item(after).await, "the changed migrations were not applied");
    assert!(!has_item(before).await, "the old template changed under its pool");
    assert!(!has_item(pg.migrated_database(&old).await?).await);

    // The server dies under its pools: a typed error naming it, soon, and no
    // hang.
    pg.container().kill("SIGKILL").await?;
    let asked = tokio::time::timeout(Duration::from_secs(20), pg.migrated_database(&new)).await;
    let err = asked.expect("a hand-out from a dead server hung").unwrap_err();
    assert!(matches!(err, Error::Database { .. }), "{err:?}");
    assert!(err.to_string().contains(pg.container().name()), "{err}");
    Ok(())
}

async fn names_on(server: &str, prefix: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
            &[&prefix],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn a_process_that_runs_several_tests_gets_clones_connected_ahead() -> dockhand::Result<()> {
    // A server of this test's own: nothing else of this process uses it.
    let pg = Postgres::new()
        .image(common::postgres().await?)
        .pool_size(2)
        .start()
        .await?;
    let url = pg.connection_string();
    let m = Migrations::sql(["CREATE TABLE orders (id int)"]);
    let mine = format!("test_{}_", std::process::id());
    let (a, b) = (pg.migrated_database(&m).await?, pg.migrated_database(&m).await?);
    for db in [&a, &b] {
        assert!(db.name().starts_with(&mine), "{}", db.name());
    }
    // After the second hand-out, two more are claimed and connected ahead.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let ahead = loop {
        let names = names_on(&url, &mine).await;
        if names.len() == 4 || std::time::Instant::now() > deadline {
            break names;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ahead.len(), 4, "{ahead:?}");
    let c = pg.migrated_database(&m).await?;
    assert!(
        ahead.contains(&c.name().to_string()),
        "{} not claimed ahead: {ahead:?}",
        c.name()
    );
    let sessions = |db: String| {
        let url = url.clone();
        async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let n: i64 = client
                .query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", &[&db])
                .await
                .unwrap()
                .get(0);
            n
        }
    };
    assert_eq!(
        sessions(c.name().to_string()).await,
        1,
        "no session was opened ahead"
    );
    let client = c.client().await?;
    client
        .batch_execute("INSERT INTO orders VALUES (1)")
        .await
        .unwrap();
    // The client handed over is that session: no second one was opened.
    assert_eq!(sessions(c.name().to_string()).await, 1);
    Ok(())
}

/// The child: holds a migrated database until killed.
#[tokio::test]
#[ignore = "child process of the template tests"]
async fn child_holds_a_migrated_database() -> dockhand::Result<()> {
    let tag = std::env::var(BUILDS).expect("started by its parent test");
    let db = PG
        .migrated_database(&Migrations::sql([format!("CREATE TABLE held_{tag} (id int)")]))
        .await?;
    println!("READY {}", db.name());
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[tokio::test]
async fn a_killed_test_process_database_is_dropped_by_the_others() -> dockhand::Result<()> {
    common::postgres().await?;
    let tag = common::unique("h").replace('-', "_");
    // This process uses the server too: its pool's upkeep does the dropping.
    let _own = PG
        .migrated_database(&Migrations::sql([format!("CREATE TABLE held_{tag} (id int)")]))
        .await?;
    let url = PG.server().await?.connection_string();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_a_migrated_database",
            "--ignored",
            "--nocapture",
        ])
        .env(BUILDS, &tag)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let name = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("READY ").map(str::to_string));
    let held = match &name {
        Some(name) => names_on(&url, name).await,
        None => Vec::new(),
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let name = name.expect("the child got a database");
    assert!(name.starts_with(&format!("test_{}_", child.id())), "{name}");
    assert_eq!(held, std::slice::from_ref(&name));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !names_on(&url, &name).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} outlived its killed process"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

const BUILDS: &str = "DOCKHAND_TEST_BUILDS";

/// The child: asks for a database whose migration function notes every build
/// in a file, then prints `READY`.
#[tokio::test]
#[ignore = "child process of the template tests"]
async fn child_asks_for_a_migrated_database() -> dockhand::Result<()> {
    let log = std::env::var(BUILDS).expect("started by its parent test");
    let version = log.clone();
    let migrations = Migrations::function(version, move |client| {
        let log = log.clone();
        Box::pin(async move {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&log)
                .unwrap();
            writeln!(file, "built by {}", std::process::id()).unwrap();
            // Slow enough that the other process asks while this one builds.
            tokio::time::sleep(Duration::from_millis(500)).await;
            client
                .batch_execute("CREATE TABLE built (id int)")
                .await
                .map_err(|e| e.to_string())
        })
    });
    let db = PG.migrated_database(&migrations).await?;
    db.client()
        .await?
        .batch_execute("SELECT * FROM built")
        .await
        .unwrap();
    println!("READY {}", db.name());
    Ok(())
}

#[test]
fn processes_asking_at_once_build_the_template_once() {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { common::postgres().await.map(drop) })
        .unwrap();
    let log = std::env::temp_dir().join(common::unique("builds"));
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_asks_for_a_migrated_database",
                    "--ignored",
                    "--nocapture",
                ])
                .env(BUILDS, &log)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.contains("READY"), "{stdout}");
    }
    let builds = std::fs::read_to_string(&log).unwrap();
    assert_eq!(builds.lines().count(), 1, "three processes, one build: {builds}");
    std::fs::remove_file(&log).unwrap();
}
