//! The MariaDB module, queried with mysql_async as users do, on the
//! `fixtures/mariadb:10.11` image (no registry here).

mod common;

use std::time::Duration;

use common::{mariadb, settle};
use dockhand::modules::{MariaDb, SharedMariaDb};
use dockhand::WaitFor;
use mysql_async::prelude::*;

async fn connect(url: &str) -> mysql_async::Conn {
    let opts = mysql_async::Opts::from_url(url).expect("a valid URL");
    mysql_async::Conn::new(opts).await.expect("connect")
}

#[tokio::test]
async fn starts_with_settings_and_init_scripts() -> dockhand::Result<()> {
    let db = MariaDb::new()
        .image(mariadb().await?)
        .root_password("r00t")
        .database("shop")
        .user("app")
        .password("s3cret")
        .init_sql(
            "01-schema.sql",
            "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT NOT NULL);",
        )
        .init_sql("02-seed.sql", "INSERT INTO items (name) VALUES ('seeded');")
        .start()
        .await?;
    let url = db.connection_string();
    assert!(
        url.starts_with("mysql://app:s3cret@127.0.0.1:") && url.ends_with("/shop"),
        "{url}"
    );

    let mut conn = connect(&url).await;
    conn.exec_drop("INSERT INTO items (name) VALUES (?)", ("widget",))
        .await
        .unwrap();
    let names: Vec<String> = conn.query("SELECT name FROM items ORDER BY id").await.unwrap();
    assert_eq!(names, ["seeded", "widget"]);
    conn.disconnect().await.unwrap();

    // Waited for the real server, not the init's temporary one (port 0).
    let logs = db.container().logs().await?;
    assert!(logs.stderr().contains("port: 0"), "{}", logs.stderr());
    assert!(logs.stderr().contains("port: 3306"), "{}", logs.stderr());

    // Root from outside, with its own password.
    let mut root = connect(&db.root_connection_string()).await;
    let user: String = root.query_first("SELECT CURRENT_USER()").await.unwrap().unwrap();
    assert_eq!(user, "root@%");
    root.disconnect().await.unwrap();

    let wrong = url.replace("s3cret", "wrong");
    let opts = mysql_async::Opts::from_url(&wrong).unwrap();
    match mysql_async::Conn::new(opts).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045, "{e}"),
        other => panic!("a wrong password was not refused: {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn ready_again_after_a_restart_with_existing_data() -> dockhand::Result<()> {
    let db = MariaDb::new().image(mariadb().await?).durable().start().await?;
    let mut conn = connect(&db.connection_string()).await;
    conn.query_drop("CREATE TABLE kept (x INT)").await.unwrap();
    conn.query_drop("INSERT INTO kept VALUES (7)").await.unwrap();
    conn.disconnect().await.unwrap();

    db.container().restart().await?;
    // No initialisation this time: the real server's line comes once, and
    // the wait counts only what this run logged.
    db.container()
        .wait_until(WaitFor::log("port: 3306").on_stderr(), Duration::from_secs(60))
        .await?;
    db.container()
        .wait_until(WaitFor::port(3306), Duration::from_secs(30))
        .await?;
    let logs = db.container().logs().await?;
    assert_eq!(logs.stdout().matches("Initializing database files").count(), 1);
    let mut conn = connect(&db.connection_string()).await;
    let x: Option<i32> = conn.query_first("SELECT x FROM kept").await.unwrap();
    assert_eq!(x, Some(7));
    conn.disconnect().await.unwrap();
    Ok(())
}

static DB: SharedMariaDb = SharedMariaDb::new(|| MariaDb::new().image(common::MARIADB));

#[tokio::test]
async fn shared_server_hands_out_fresh_databases() -> dockhand::Result<()> {
    mariadb().await?; // the fixture image exists before the shared server starts
    let (a, b) = tokio::try_join!(DB.fresh_database(), DB.fresh_database())?;
    let server = DB.server().await?;
    assert_ne!(a.name(), b.name());
    for (db, value) in [(&a, 1), (&b, 2)] {
        // The application user, not root: it was granted its database.
        assert!(db.connection_string().starts_with("mysql://test:test@"));
        let mut conn = connect(db.connection_string()).await;
        conn.query_drop("CREATE TABLE mine (x INT)").await.unwrap();
        conn.exec_drop("INSERT INTO mine VALUES (?)", (value,))
            .await
            .unwrap();
        let all: Vec<i32> = conn.query("SELECT x FROM mine").await.unwrap();
        assert_eq!(all, [value], "each test sees only its own rows");
        conn.disconnect().await.unwrap();
    }
    let names = server.sql("SHOW DATABASES").await?;
    assert!(names.contains(a.name()) && names.contains(b.name()), "{names}");
    let dropped = a.name().to_string();
    drop(a);
    settle();
    let names = server.sql("SHOW DATABASES").await?;
    assert!(!names.contains(&dropped), "dropped with its guard: {names}");
    assert!(names.contains(b.name()));
    Ok(())
}
