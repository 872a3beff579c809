//! The README's first command: start PostgreSQL in a container, query it with
//! tokio-postgres on its random host port, and clean up. Run with
//! `bash scripts/setup.sh && cargo run --example quickstart`.
//!
//! Elsewhere, `Postgres::new()` uses the official `postgres:16-alpine`; here there
//! is no registry, so the example uses the locally built fixture image.

#[path = "../fixtures/debian.rs"]
mod debian_fixture;
#[path = "../fixtures/postgres.rs"]
mod postgres_fixture;

use std::time::Instant;

use dockhand::modules::{Migrations, Postgres};
use tokio_postgres::NoTls;

#[tokio::main]
async fn main() -> dockhand::Result<()> {
    let image = postgres_fixture::postgres().await?;
    let begun = Instant::now();
    let pg = Postgres::new()
        .image(image)
        .user("app")
        .password("secret")
        .database("shop")
        .start()
        .await?;
    println!(
        "PostgreSQL ready at {} in {:?}",
        pg.connection_string(),
        begun.elapsed()
    );

    let (client, connection) = tokio_postgres::connect(&pg.connection_string(), NoTls)
        .await
        .expect("connect to PostgreSQL");
    let connection = tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)")
        .await
        .expect("create table");
    for name in ["anchor", "rope", "sail"] {
        client
            .execute("INSERT INTO items (name) VALUES ($1)", &[&name])
            .await
            .expect("insert");
    }
    let rows = client
        .query("SELECT id, name FROM items ORDER BY id", &[])
        .await
        .expect("select");
    for row in &rows {
        let (id, name): (i32, &str) = (row.get(0), row.get(1));
        println!("  item {id}: {name}");
    }
    assert_eq!(rows.len(), 3);

    // A fresh database for one test, in milliseconds instead of a server start.
    let t = Instant::now();
    let db = pg.fresh_database().await?;
    println!("fresh database {} in {:?}", db.name(), t.elapsed());
    drop(db);

    // A database with the migrations applied: the template is built once per
    // server, then each test gets a clone from a warm pool.
    let migrations = Migrations::sql([
        "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)",
        "CREATE INDEX orders_item ON orders (item)",
    ]);
    let t = Instant::now();
    drop(pg.migrated_database(&migrations).await?);
    println!("template built in {:?}", t.elapsed());
    // The pool fills in the background; a test's hand-out takes one ready.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let t = Instant::now();
    let db = pg.migrated_database(&migrations).await?;
    let orders = db.client().await?;
    println!("migrated database {} connected in {:?}", db.name(), t.elapsed());
    orders
        .execute("INSERT INTO orders (item) VALUES ('tea')", &[])
        .await
        .expect("insert");
    drop(orders);
    drop(db);

    drop(client);
    let _ = connection.await;
    let name = pg.container().name().to_string();
    pg.remove().await?;
    println!("removed {name}");
    Ok(())
}
