//! Migrated databases (the `postgres` feature): a hand-out from the warm pool
//! in a process that already uses the server (`db_handout`) and in a new
//! process, as every test is under nextest (`db_handout_first`).
//!
//! The plain way beside each is what a user hand-builds: a template database
//! migrated once, and per test `CREATE DATABASE ... TEMPLATE` plus a connect,
//! over tokio-postgres. `migrate_each_ms` is the way without templates (an
//! empty database per test and every migration run in it, as `sqlx::test`).

use std::process::Command;
use std::time::{Duration, Instant};

use dockhand::modules::{Postgres, SharedPostgres};
use tokio_postgres::{Client, NoTls};

use crate::{median, ms, percentile, postgres_fixture, schema, Bench};

/// The one server of the bench run, found again by the child processes.
static PG: SharedPostgres = SharedPostgres::new(|| Postgres::new().image(postgres_fixture::POSTGRES));

const RAW_TEMPLATE: &str = "bench_raw_template";

pub async fn handout(bench: &Bench) -> dockhand::Result<()> {
    let (runs, first_runs) = (bench.runs("db_handout", 60), bench.runs("db_handout_first", 10));
    if runs == 0 && first_runs == 0 {
        return Ok(());
    }
    postgres_fixture::postgres().await?;
    let m = schema::migrations();
    // The template is built once per server (untimed, as in a test run).
    drop(PG.migrated_database(&m).await?);
    let server = PG.server().await?;
    let admin = connect(&server.connection_string()).await;
    drop_database(&admin, RAW_TEMPLATE).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {RAW_TEMPLATE}"))
        .await
        .expect("raw template");
    let raw_template = connect(&with_database(&server.connection_string(), RAW_TEMPLATE)).await;
    raw_template
        .batch_execute(&migration_sql())
        .await
        .expect("migrate");
    drop(raw_template);

    let (mut d, mut b, mut each) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let t = Instant::now();
        let db = PG.migrated_database(&m).await?;
        let client = db.client().await?;
        d.push(ms(t));
        drop(client);
        drop(db);
        // A test's body: the pool refills meanwhile, as it does between tests.
        tokio::time::sleep(Duration::from_millis(50)).await;

        let name = format!("bench_raw_{i}");
        let t = Instant::now();
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {RAW_TEMPLATE}"))
            .await
            .expect("clone");
        let client = connect(&with_database(&server.connection_string(), &name)).await;
        b.push(ms(t));
        drop(client);
        drop_database(&admin, &name).await;

        if i % 6 == 0 {
            let name = format!("bench_each_{i}");
            let t = Instant::now();
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create");
            let client = connect(&with_database(&server.connection_string(), &name)).await;
            client.batch_execute(&migration_sql()).await.expect("migrate");
            each.push(ms(t));
            drop(client);
            drop_database(&admin, &name).await;
        }
    }
    if !d.is_empty() {
        let (p50, p95) = (median(&d), percentile(&d, 0.95));
        println!(
            "{{\"workload\":\"db_handout\",\"dockhand_ms\":{p50:.2},\"bollard_ms\":{:.2},\"ratio\":{:.3},\"p50_ms\":{p50:.2},\"p95_ms\":{p95:.2},\"bollard_p95_ms\":{:.2},\"migrate_each_ms\":{:.2},\"tables\":20,\"runs\":{}}}",
            median(&b),
            p50 / median(&b),
            percentile(&b, 0.95),
            median(&each),
            d.len()
        );
    }

    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..first_runs {
        d.push(child(&["--handout-first"]));
        b.push(child(&["--handout-first-raw", &server.connection_string()]));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    crate::report_distribution("db_handout_first", &d, &b);
    drop_database(&admin, RAW_TEMPLATE).await;
    Ok(())
}

/// Runs this bench binary again and reads the milliseconds it printed.
fn child(args: &[&str]) -> f64 {
    let out = Command::new(std::env::current_exe().expect("bench binary"))
        .args(args)
        .output()
        .expect("child");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("milliseconds")
}

/// In a new process: the first migrated database, from the call to a
/// connected client (the process and its runtime already up, as a test's).
pub async fn handout_first() -> dockhand::Result<()> {
    let m = schema::migrations();
    let t = Instant::now();
    let db = PG.migrated_database(&m).await?;
    let client = db.client().await?;
    let took = ms(t);
    client.batch_execute("SELECT 1").await.expect("query");
    println!("{took:.3}");
    Ok(())
}

/// The plain way in a new process: connect to the server, clone the template,
/// connect to the clone.
pub async fn handout_first_raw(url: &str) {
    let t = Instant::now();
    let admin = connect(url).await;
    let name = format!("bench_first_{}", std::process::id());
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {RAW_TEMPLATE}"))
        .await
        .expect("clone");
    let client = connect(&with_database(url, &name)).await;
    let took = ms(t);
    drop(client);
    drop_database(&admin, &name).await;
    println!("{took:.3}");
}

/// The server's URL (for its `postgres` database) naming another database.
fn with_database(url: &str, name: &str) -> String {
    let base = url
        .strip_suffix("/postgres")
        .expect("a URL for the postgres database");
    format!("{base}/{name}")
}

fn migration_sql() -> String {
    schema::statements().concat()
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

async fn drop_database(admin: &Client, name: &str) {
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop");
}
