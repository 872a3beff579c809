//! The PostgreSQL module, queried with tokio-postgres as users do, on the
//! `fixtures/postgres:15` image (no registry here).

mod common;

use std::time::Duration;

use common::postgres;
use dockhand::modules::{Postgres, SharedPostgres};
use tokio_postgres::NoTls;

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// Connecting with this URL's (wrong) password over TCP fails on the password.
async fn refuses_a_wrong_password(wrong: &str) {
    let err = tokio_postgres::connect(wrong, NoTls)
        .await
        .err()
        .expect("wrong password refused");
    let message = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("password authentication failed"), "{err:?}");
}

/// The superuser's password is stored as a SCRAM secret of one round, so a
/// debug-built client does not spend tens of milliseconds hashing at every
/// connection.
async fn stores_a_one_round_secret(client: &tokio_postgres::Client) {
    let secret: String = client
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(secret.starts_with("SCRAM-SHA-256$1:"), "{secret}");
}

#[tokio::test]
async fn starts_with_settings_and_init_scripts() -> dockhand::Result<()> {
    let pg = Postgres::new()
        .image(postgres().await?)
        .user("app")
        .password("s3cret")
        .database("orders")
        .init_sql(
            "01-schema.sql",
            "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL);",
        )
        .init_sql("02-seed.sql", "INSERT INTO orders (item) VALUES ('seeded');")
        .start()
        .await?;
    let url = pg.connection_string();
    assert!(
        url.starts_with("postgres://app:s3cret@127.0.0.1:") && url.ends_with("/orders"),
        "{url}"
    );

    let client = connect(&url).await;
    client
        .execute("INSERT INTO orders (item) VALUES ($1)", &[&"widget"])
        .await
        .unwrap();
    let rows = client
        .query("SELECT item FROM orders ORDER BY id", &[])
        .await
        .unwrap();
    let items: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(items, ["seeded", "widget"]);

    // Waited for the real server: its readiness line is on stderr, after init.
    let logs = pg.container().logs().await?;
    assert!(logs
        .stderr()
        .contains("database system is ready to accept connections"));
    assert!(logs.stdout().contains("init process complete"));

    stores_a_one_round_secret(&client).await;
    refuses_a_wrong_password(&url.replace("s3cret", "wrong")).await;
    Ok(())
}

/// With no init scripts and the database `postgres`, the image's temporary
/// server has nothing to do and is skipped: one server start, one readiness
/// line, and the image's own password check for other hosts.
#[tokio::test]
async fn a_plain_server_starts_once_and_checks_passwords() -> dockhand::Result<()> {
    let pg = Postgres::new()
        .image(postgres().await?)
        .user("app")
        .password("s3cret")
        .start()
        .await?;
    let client = connect(&pg.connection_string()).await;
    let row = client
        .query_one("SELECT current_user::text, current_setting('TimeZone')", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "app");
    assert_eq!(row.get::<_, String>(1), "Etc/UTC");
    stores_a_one_round_secret(&client).await;

    let logs = pg.container().logs().await?;
    let starts = logs
        .stderr()
        .matches("database system is ready to accept connections")
        .count();
    assert_eq!(starts, 1, "the temporary server ran:\n{}", logs.stderr());
    assert!(
        !logs.stdout().contains("init process complete"),
        "{}",
        logs.stdout()
    );

    refuses_a_wrong_password(&pg.connection_string().replace("s3cret", "wrong")).await;
    Ok(())
}

#[tokio::test]
async fn ready_again_after_a_restart_with_existing_data() -> dockhand::Result<()> {
    let pg = Postgres::new().image(postgres().await?).durable().start().await?;
    connect(&pg.connection_string())
        .await
        .execute("CREATE TABLE kept (x int)", &[])
        .await
        .unwrap();
    pg.container().restart().await?;
    // Only the real server starts now: one readiness line, on stderr, and the
    // wait counts only what this run logged.
    pg.container()
        .wait_until(
            dockhand::WaitFor::log("database system is ready to accept connections").on_stderr(),
            Duration::from_secs(30),
        )
        .await?;
    pg.container()
        .wait_until(dockhand::WaitFor::port(5432), Duration::from_secs(30))
        .await?;
    let client = connect(&pg.connection_string()).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    Ok(())
}

static PG: SharedPostgres = SharedPostgres::new(|| Postgres::new().image(common::POSTGRES));

#[tokio::test]
async fn shared_server_hands_out_fresh_databases() -> dockhand::Result<()> {
    postgres().await?; // the fixture image exists before the shared server starts
    let (a, b) = tokio::try_join!(PG.fresh_database(), PG.fresh_database())?;
    let server = PG.server().await?;
    assert_eq!(
        server.container().id(),
        PG.server().await?.container().id(),
        "one server per process"
    );
    // What one test writes, the other does not see: its database is its own.
    let first = connect(a.connection_string()).await;
    first
        .batch_execute("CREATE TABLE mine (x int); INSERT INTO mine VALUES (1)")
        .await
        .unwrap();
    let second = connect(b.connection_string()).await;
    let seen: Option<String> = second
        .query_one("SELECT to_regclass('mine')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(seen, None, "the second database sees the first one's table");
    let n: i64 = first
        .query_one("SELECT count(*) FROM mine", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    Ok(())
}

#[tokio::test]
async fn fresh_databases_are_isolated_and_dropped() -> dockhand::Result<()> {
    let pg = Postgres::new().image(postgres().await?).start().await?;
    let (a, b) = (pg.fresh_database().await?, pg.fresh_database().await?);
    assert_ne!(a.name(), b.name());
    let ca = connect(a.connection_string()).await;
    ca.execute("CREATE TABLE t (x int)", &[]).await.unwrap();
    let cb = connect(b.connection_string()).await;
    // The other database is empty: the table exists only in A.
    assert!(cb.query("SELECT * FROM t", &[]).await.is_err());

    let name = a.name().to_string();
    drop(ca);
    drop(a);
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(30)));
    let listed = pg.psql("postgres", "SELECT datname FROM pg_database").await?;
    assert!(!listed.contains(&name), "{name} still exists: {listed}");
    assert!(listed.contains(b.name()));
    Ok(())
}

#[tokio::test]
async fn any_user_and_password_survive_the_connection_string() -> dockhand::Result<()> {
    // Characters that end the user-info part of a URL when not encoded, and
    // one outside ASCII (stored by the server's own hashing).
    let (user, password) = ("app@team", "p@ss:w/rd%#?é");
    let pg = Postgres::new()
        .image(postgres().await?)
        .user(user)
        .password(password)
        .start()
        .await?;
    let client = connect(&pg.connection_string()).await;
    let row = client.query_one("SELECT current_user", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), user);
    let db = pg.fresh_database().await?;
    let client = connect(db.connection_string()).await;
    let row = client.query_one("SELECT current_database()", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), db.name());
    Ok(())
}

#[tokio::test]
async fn a_database_named_by_the_test_that_exists_is_a_conflict() -> dockhand::Result<()> {
    let pg = Postgres::new()
        .image(postgres().await?)
        .database("orders")
        .start()
        .await?;
    let db = pg.database_named("orders_test").await?;
    assert_eq!(db.name(), "orders_test");
    let client = connect(db.connection_string()).await;
    let row = client.query_one("SELECT current_database()", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "orders_test");
    client.execute("CREATE TABLE kept (x int)", &[]).await.unwrap();

    // The server's own database and the one just made: each refused, named,
    // and left as it was.
    for taken in ["orders", "orders_test"] {
        let err = pg.database_named(taken).await.unwrap_err();
        assert!(matches!(err, dockhand::Error::Conflict { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!("database \"{taken}\"")),
            "{err}"
        );
    }
    assert!(client.query("SELECT * FROM kept", &[]).await.is_ok());
    let err = pg.database_named(&"x".repeat(64)).await.unwrap_err();
    assert!(matches!(err, dockhand::Error::InvalidConfig { .. }), "{err:?}");
    let err = pg.database_named("a\"b").await.unwrap_err();
    assert!(matches!(err, dockhand::Error::InvalidConfig { .. }), "{err:?}");

    drop(client);
    drop(db);
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(30)));
    let listed = pg.psql("postgres", "SELECT datname FROM pg_database").await?;
    assert!(
        !listed.contains("orders_test") && listed.contains("orders"),
        "{listed}"
    );
    Ok(())
}
