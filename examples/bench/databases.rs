//! Database modules: time to the first query, and per-test isolation.

use std::time::Instant;

use crate::{mariadb_fixture, ms, postgres_fixture, raw, report, settle, Bench};

pub async fn postgres(bench: &Bench) -> dockhand::Result<()> {
    if bench.runs("pg_cold_start", 1) == 0 && bench.runs("postgres_isolation", 1) == 0 {
        return Ok(());
    }
    let image = postgres_fixture::postgres().await?;
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs("pg_cold_start", 10) {
        let t = Instant::now();
        let pg = dockhand::modules::Postgres::new().image(image).start().await?;
        first_query(&pg.connection_string()).await;
        d.push(ms(t));
        drop(pg);
        settle();
        let t = Instant::now();
        let id = raw::postgres_query(&bench.raw, image).await;
        b.push(ms(t));
        raw::remove(&bench.raw, &id).await;
    }
    report("pg_cold_start", &d, &b);

    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs("postgres_isolation", 3) {
        // Eight tests' worth, the shared server's own start included.
        let t = Instant::now();
        let pg = dockhand::modules::Postgres::new().image(image).start().await?;
        for _ in 0..8 {
            let db = pg.fresh_database().await?;
            first_query(db.connection_string()).await;
        }
        d.push(ms(t));
        drop(pg);
        settle();
        let t = Instant::now();
        for _ in 0..8 {
            let pg = dockhand::modules::Postgres::new().image(image).start().await?;
            first_query(&pg.connection_string()).await;
            pg.remove().await?;
        }
        b.push(ms(t));
    }
    report("postgres_isolation", &d, &b);
    Ok(())
}

/// A server of a configuration whose state was saved once (its templates
/// migrated): started from the state volume, to the first query. The plain
/// way starts the same image, volume and start script with bollard calls.
pub async fn pg_warm_start(bench: &Bench) -> dockhand::Result<()> {
    if bench.runs("pg_warm_start", 1) == 0 {
        return Ok(());
    }
    let image = postgres_fixture::postgres().await?;
    let seed = format!("SELECT '{}'", std::process::id());
    let settings = || {
        dockhand::modules::Postgres::new()
            .image(image)
            .init_sql("bench-warm.sql", seed.clone())
            .warm_start()
    };
    // Untimed: the first run saves the state.
    let first = settings().start().await?;
    drop(first.migrated_database(&crate::schema::migrations()).await?);
    dockhand::wait_for_cleanup(std::time::Duration::from_secs(60));
    let state =
        first.container().inspect().await?.config.unwrap().labels.unwrap()["dockhand.cache.of"].clone();
    drop(first);
    settle();
    let (mut d, mut b) = (Vec::new(), Vec::new());
    let mut volume = String::new();
    for _ in 0..bench.runs("pg_warm_start", 10) {
        let t = Instant::now();
        let pg = settings().start().await?;
        first_query(&pg.connection_string()).await;
        d.push(ms(t));
        let inspected = pg.container().inspect().await?;
        let mount = inspected
            .mounts
            .unwrap_or_default()
            .into_iter()
            .find_map(|m| m.name);
        volume = mount.expect("started from a state volume");
        let config = inspected.config.unwrap_or_default();
        drop(pg);
        settle();
        // The plain way: the same volume, start script and command.
        let t = Instant::now();
        let id = raw::postgres_query_with(&bench.raw, image, |body| {
            body.entrypoint = config.entrypoint.clone();
            let host = body.host_config.get_or_insert_with(Default::default);
            host.binds = Some(vec![format!("{volume}:/dockhand-state:ro")]);
        })
        .await;
        b.push(ms(t));
        raw::remove(&bench.raw, &id).await;
    }
    report("pg_warm_start", &d, &b);
    let leftover = dockhand::Sweeper::new()
        .cache()
        .grace(std::time::Duration::from_secs(3600))
        .run()
        .await?;
    let removed = leftover.removed.iter().any(|(o, _)| o.id == volume);
    if !removed {
        eprintln!("bench: the state volume {volume} (of {state}) was not removed");
    }
    Ok(())
}

pub async fn mariadb_isolation(bench: &Bench) -> dockhand::Result<()> {
    if bench.runs("mariadb_isolation", 1) == 0 {
        return Ok(());
    }
    let image = mariadb_fixture::mariadb().await?;
    let settings = dockhand::modules::MariaDb::new().image(image);
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs("mariadb_isolation", 3) {
        // As postgres_isolation: eight tests' worth, the shared server's start included.
        let t = Instant::now();
        let server = settings.start().await?;
        for _ in 0..8 {
            let db = server.fresh_database().await?;
            first_mysql_query(db.connection_string()).await;
        }
        d.push(ms(t));
        drop(server);
        settle();
        let t = Instant::now();
        for _ in 0..8 {
            let server = settings.start().await?;
            first_mysql_query(&server.connection_string()).await;
            server.remove().await?;
        }
        b.push(ms(t));
    }
    report("mariadb_isolation", &d, &b);
    Ok(())
}

pub async fn first_query(url: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let connection = tokio::spawn(connection);
    let one: i32 = client.query_one("SELECT 1", &[]).await.expect("query").get(0);
    assert_eq!(one, 1);
    drop(client);
    let _ = connection.await;
}

async fn first_mysql_query(url: &str) {
    use mysql_async::prelude::Queryable;
    let mut conn = mysql_async::Conn::from_url(url).await.expect("connect");
    let one: Option<i32> = conn.query_first("SELECT 1").await.expect("query");
    assert_eq!(one, Some(1));
    conn.disconnect().await.expect("disconnect");
}
