//! Prepares every test fixture image once per machine (the Debian base takes about
//! a minute the first time; afterwards this returns at once):
//! `cargo run --example fixtures` (`-- busybox` for the busybox image alone).
//! The test setup runs it before the suite.

#[path = "../fixtures/busybox.rs"]
mod busybox_fixture;
#[path = "../fixtures/debian.rs"]
mod debian_fixture;
#[path = "../fixtures/mariadb.rs"]
mod mariadb_fixture;
#[path = "../fixtures/nats.rs"]
mod nats_fixture;
#[path = "../fixtures/postgres.rs"]
mod postgres_fixture;
#[path = "../fixtures/redis.rs"]
mod redis_fixture;

use std::time::Instant;

#[tokio::main]
async fn main() -> dockhand::Result<()> {
    let t = Instant::now();
    println!(
        "{} ready ({:.1}s)",
        busybox_fixture::busybox().await?,
        t.elapsed().as_secs_f64()
    );
    // `-- busybox`: only the image the engine-agnostic core of the suite needs
    // (what CI builds on its second engine).
    if std::env::args().any(|a| a == "busybox") {
        return Ok(());
    }
    let t = Instant::now();
    println!(
        "{} ready ({:.1}s)",
        debian_fixture::debian().await?,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    println!(
        "{} ready ({:.1}s)",
        postgres_fixture::postgres().await?,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    println!(
        "{} ready ({:.1}s)",
        redis_fixture::redis().await?,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    println!(
        "{} ready ({:.1}s)",
        mariadb_fixture::mariadb().await?,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    println!(
        "{} ready ({:.1}s)",
        nats_fixture::nats().await?,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
