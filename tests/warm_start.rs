//! Warm starts (feature `postgres`): a server's state saved as a volume once
//! it has built a template, the next start of the same configuration from it,
//! a changed set of migrations saving a new state, and the sweep of states.
#![cfg(feature = "postgres")]

mod common;

use std::process::Command;
use std::time::Duration;

use dockhand::modules::{Migrations, Postgres};
use tokio_postgres::NoTls;

/// Removes the states of one configuration however the test ends: they are
/// meant to outlive a run, this test's must not.
struct States(String);

impl States {
    fn volumes(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args(["volume", "ls", "-q", "--filter"])
            .arg(format!("label=dockhand.cache.of={}", self.0))
            .output()
            .expect("docker volume ls");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn label(&self, volume: &str, label: &str) -> String {
        let out = Command::new("docker")
            .args(["volume", "inspect", "--format"])
            .arg(format!("{{{{index .Labels \"{label}\"}}}}"))
            .arg(volume)
            .output()
            .expect("docker volume inspect");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for States {
    fn drop(&mut self) {
        dockhand::wait_for_cleanup(Duration::from_secs(30));
        for volume in self.volumes() {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", &volume])
                .output();
        }
    }
}

async fn query_one(url: &str, sql: &str) -> String {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    let row = client.query_one(sql, &[]).await.expect(sql);
    row.get(0)
}

#[tokio::test]
async fn a_second_start_comes_from_the_state_the_first_saved() -> dockhand::Result<()> {
    let seed = common::unique("warm");
    let settings = || {
        Postgres::new()
            .image(common::POSTGRES)
            .init_sql(
                "01-seed.sql",
                format!("CREATE TABLE seeded AS SELECT '{seed}'::text AS tag"),
            )
            .warm_start()
    };
    let migrations = Migrations::sql(["CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)"]);

    let first = settings().start().await?;
    let labels = first.container().inspect().await?.config.unwrap().labels.unwrap();
    let states = States(labels["dockhand.cache.of"].clone());
    assert!(
        states.volumes().is_empty(),
        "a new configuration has no state yet"
    );
    let db = first.migrated_database(&migrations).await?;
    drop(db);
    // The save runs in the background, as removals do.
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(60)));
    let saved = states.volumes();
    assert_eq!(saved.len(), 1, "one state saved: {saved:?}");
    let template_key = states.label(&saved[0], "dockhand.cache.holds");
    assert!(
        !template_key.is_empty() && !template_key.contains(','),
        "{template_key}"
    );
    drop(first);

    let second = settings().start().await?;
    let mounts = second.container().inspect().await?.mounts.unwrap_or_default();
    let mounted: Vec<_> = mounts.iter().filter_map(|m| m.name.clone()).collect();
    assert_eq!(
        mounted,
        [saved[0].clone()],
        "the second start uses the saved state"
    );
    // The template and the init script's table came with it: nothing ran again.
    let admin = second.connection_string();
    let template = format!("tpl_{template_key}");
    let found = query_one(
        &admin,
        &format!("SELECT datname::text FROM pg_database WHERE datname = '{template}'"),
    )
    .await;
    assert_eq!(found, template);
    assert_eq!(query_one(&admin, "SELECT tag FROM seeded").await, seed);
    // The first server's pool filled only after its data was taken: a state
    // that carried the clones would make every start copy them.
    let clones = "SELECT count(*)::text FROM pg_database WHERE starts_with(datname, 'pool_')";
    assert_eq!(query_one(&admin, clones).await, "0");
    let db = second.migrated_database(&migrations).await?;
    let client = db.client().await?;
    client
        .execute("INSERT INTO orders (item) VALUES ('tea')", &[])
        .await
        .expect("the migrated table is there");

    // Changed migrations: a new template, so a new state that holds both.
    let changed = Migrations::sql([
        "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)",
        "CREATE TABLE refunds (id serial PRIMARY KEY)",
    ]);
    drop(second.migrated_database(&changed).await?);
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(60)));
    let newest = states
        .volumes()
        .into_iter()
        .find(|i| *i != saved[0])
        .expect("a second state saved");
    assert_eq!(
        states.label(&newest, "dockhand.cache.holds").split(',').count(),
        2
    );
    drop((client, db, second));

    // Once no container uses them, a cache sweep removes every state. (The
    // grace leaves alone what the cleanup tests' killed processes leave.)
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(30)));
    let report = dockhand::Sweeper::new()
        .cache()
        .grace(Duration::from_secs(3600))
        .run()
        .await?;
    assert!(
        report.removed.iter().any(|(o, _)| o.id == newest),
        "{:?}",
        report.removed
    );
    assert!(states.volumes().is_empty(), "left: {:?}", states.volumes());
    Ok(())
}
