//! The suite the bench's `suite_nextest` runs under `cargo nextest run` and
//! `cargo test` (ignored otherwise): sixteen tests, each needing an isolated
//! database with the schema migrated — once from dockhand's shared server
//! (`shared_*`), once with a server per test as testcontainers users write it
//! (`own_*`: the image as it comes, not dockhand's PostgreSQL module).

mod common;

#[path = "../fixtures/schema.rs"]
mod schema;

use dockhand::modules::{Postgres, SharedPostgres};
use tokio_postgres::{Client, NoTls};

static PG: SharedPostgres = SharedPostgres::new(|| Postgres::new().image(common::POSTGRES));

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// What each test does with its database: write a row, read it back.
async fn body(client: &Client) {
    client
        .execute("INSERT INTO t7 (name) VALUES ('tea')", &[])
        .await
        .expect("insert");
    let n: i64 = client
        .query_one("SELECT count(*) FROM t7", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 1, "another test's row is visible");
}

async fn shared() {
    common::postgres().await.expect("fixture");
    let db = PG
        .migrated_database(&schema::migrations())
        .await
        .expect("database");
    body(&db.client().await.expect("client")).await;
}

/// A server per test as testcontainers users start one: the image's own
/// entrypoint and environment (data on a tmpfs with `fsync=off`, as careful
/// users set), ready when the protocol answers; nothing of dockhand's
/// PostgreSQL module, whose quicker initialisation they do not have.
async fn own() {
    let image = common::postgres().await.expect("fixture");
    let pg = dockhand::Container::builder(image)
        .env("POSTGRES_PASSWORD", "postgres")
        .env("PGDATA", "/var/lib/postgresql/data/pgdata")
        .tmpfs("/var/lib/postgresql/data", "rw,mode=0777")
        .cmd(["postgres", "-c", "fsync=off", "-c", "synchronous_commit=off"])
        .expose(5432)
        .wait_for(
            dockhand::WaitFor::postgres(5432)
                .user("postgres")
                .database("postgres"),
        )
        .start()
        .await
        .expect("server");
    let port = pg.host_port(5432).expect("port");
    let client = connect(&format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres")).await;
    client
        .batch_execute(&schema::statements().concat())
        .await
        .expect("migrate");
    body(&client).await;
}

macro_rules! suite {
    ($($shared:ident $own:ident),*) => {$(
        #[tokio::test]
        #[ignore = "run by the bench (suite_nextest)"]
        async fn $shared() { shared().await }
        #[tokio::test]
        #[ignore = "run by the bench (suite_nextest)"]
        async fn $own() { own().await }
    )*};
}

suite!(
    shared_01 own_01, shared_02 own_02, shared_03 own_03, shared_04 own_04,
    shared_05 own_05, shared_06 own_06, shared_07 own_07, shared_08 own_08,
    shared_09 own_09, shared_10 own_10, shared_11 own_11, shared_12 own_12,
    shared_13 own_13, shared_14 own_14, shared_15 own_15, shared_16 own_16
);
