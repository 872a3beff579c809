//! MariaDB's migrated databases (the `mariadb` feature): `mariadb_handout`,
//! from asking for a database of twenty migrated tables to holding a
//! connection, in a process that already uses the server. MariaDB has no
//! template databases, so the plain way beside it is the one users write: an
//! empty database per test with every migration run in it (as `sqlx::test`).

use std::time::{Duration, Instant};

use dockhand::modules::{MariaDb, Migrations};
use mysql_async::prelude::Queryable;

use crate::{mariadb_fixture, median, ms, percentile, Bench};

/// The schema of `fixtures/schema.rs` in MariaDB's words.
fn statements() -> Vec<String> {
    (0..20)
        .map(|i| {
            format!(
                "CREATE TABLE t{i} (id BIGINT AUTO_INCREMENT PRIMARY KEY, name TEXT NOT NULL, created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP); \
                 CREATE INDEX t{i}_name ON t{i} (name(32));"
            )
        })
        .collect()
}

async fn connect(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url(url).expect("url"))
        .await
        .expect("connect")
}

pub async fn handout(bench: &Bench) -> dockhand::Result<()> {
    let runs = bench.runs("mariadb_handout", 40);
    if runs == 0 {
        return Ok(());
    }
    let image = mariadb_fixture::mariadb().await?;
    let server = MariaDb::new().image(image).start().await?;
    let m = Migrations::sql(statements());
    // The template is built once per server (untimed, as in a test run).
    drop(server.migrated_database(&m).await?);
    let mut admin = connect(&server.root_connection_string()).await;
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let t = Instant::now();
        let db = server.migrated_database(&m).await?;
        let conn = db.conn().await?;
        d.push(ms(t));
        drop(conn);
        drop(db);
        // A test's body: the pool refills meanwhile, as it does between tests.
        tokio::time::sleep(Duration::from_millis(100)).await;

        let name = format!("bench_raw_{i}");
        let t = Instant::now();
        admin
            .query_drop(format!("CREATE DATABASE {name}"))
            .await
            .expect("create");
        let url = server.root_connection_string();
        let base = url.rsplit_once('/').expect("a database in the URL").0;
        let mut conn = connect(&format!("{base}/{name}")).await;
        conn.query_drop(statements().concat()).await.expect("migrate");
        b.push(ms(t));
        drop(conn);
        admin
            .query_drop(format!("DROP DATABASE {name}"))
            .await
            .expect("drop");
    }
    let (p50, p95) = (median(&d), percentile(&d, 0.95));
    println!(
        "{{\"workload\":\"mariadb_handout\",\"dockhand_ms\":{p50:.2},\"bollard_ms\":{:.2},\"ratio\":{:.3},\"p50_ms\":{p50:.2},\"p95_ms\":{p95:.2},\"bollard_p95_ms\":{:.2},\"tables\":20,\"runs\":{}}}",
        median(&b),
        p50 / median(&b),
        percentile(&b, 0.95),
        d.len()
    );
    let _ = admin.disconnect().await;
    Ok(())
}
