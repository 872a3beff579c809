//! Benchmarks dockhand against raw bollard calls doing the same work, in one run,
//! on the same engine and image. Prints one JSON line per workload with the
//! medians: `cargo run --release --example bench`.
//!
//! The raw side is what a careful hand-written test does: create, start, follow
//! the logs or poll the port, and remove synchronously (forced). dockhand's drop
//! returns at once and removes in the background; between runs the bench waits
//! for that background work (untimed) so runs do not overlap.
//!
//! Two more lines measure cleanup: `watcher_first_start` (what starting the
//! watcher adds to a process's first container, from fresh processes with the
//! watcher on and off) and `churn` (200 sequential start/drop cycles and 32
//! parallel ones, then the managed objects left in the engine).
//!
//! `postgres_isolation` and `mariadb_isolation` compare eight fresh databases
//! from one server (its start included) with eight servers started one after
//! another; both sides use dockhand, as the point is the pattern, not the client.
//! `mariadb_handout` hands out MariaDB databases of twenty migrated tables,
//! beside an empty database per test with the migrations run in it.
//!
//! `pg_warm_start` starts PostgreSQL from a saved state volume (`warm_start`),
//! beside the same image started with bollard calls.
//!
//! `db_handout` and `db_handout_first` hand out migrated databases (20
//! tables) from the warm pool, beside a hand-built template clone.
//!
//! `serve_status` and `serve_die_push` measure the management service
//! (`serve/`) from a Socket.IO client: a status round trip, and a `die`
//! reaching the client (see `serve.rs`).
//!
//! `suite_nextest` runs `tests/suite_bench.rs` with both runners (see
//! `suite.rs`); `bollard_ms` there is a server per test, the way
//! testcontainers users write it.
//!
//! `BENCH_SCALE=0.2` runs a fifth of the iterations (a quick look);
//! `BENCH_ONLY=start_ready,exec` runs only the named workloads.

#[path = "../../fixtures/busybox.rs"]
mod busybox_fixture;
#[path = "../../fixtures/debian.rs"]
mod debian_fixture;
#[path = "../../fixtures/mariadb.rs"]
mod mariadb_fixture;
#[path = "../../fixtures/postgres.rs"]
mod postgres_fixture;
#[path = "../../fixtures/schema.rs"]
mod schema;

mod cleanup;
mod containers;
mod databases;
mod events;
mod killed;
mod mariadb_templates;
mod raw;
mod serve;
mod suite;
mod templates;
mod waits;

use std::time::{Duration, Instant};

use bollard::Docker;
use dockhand::{Container, WaitFor};

const READY_CMD: [&str; 3] = ["sh", "-c", "echo ready; exec sleep 60"];
const HTTPD_CMD: [&str; 4] = ["httpd", "-f", "-p", "8080"];

/// What every workload gets: the image, a raw client, and how often to run.
pub struct Bench {
    image: &'static str,
    raw: Docker,
    scale: f64,
    only: String,
}

impl Bench {
    /// How many runs of `workload`: `n` scaled, or 0 when BENCH_ONLY leaves it out.
    fn runs(&self, workload: &str, n: usize) -> usize {
        if !self.only.is_empty() && !self.only.split(',').any(|o| o == workload) {
            return 0;
        }
        ((n as f64 * self.scale).round() as usize).max(1)
    }
}

#[tokio::main]
async fn main() -> dockhand::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--first-start") {
        return cleanup::first_start().await;
    }
    if args.iter().any(|a| a == "--handout-first") {
        return templates::handout_first().await;
    }
    if let [_, flag, url] = args.as_slice()
        && flag == "--handout-first-raw"
    {
        templates::handout_first_raw(url).await;
        return Ok(());
    }
    if let [_, flag, kind, containers, run] = args.as_slice()
        && flag == "--hold"
    {
        return killed::hold(kind, containers.parse().expect("count"), run).await;
    }
    let raw = Docker::connect_with_defaults()
        .expect("engine")
        .negotiate_version()
        .await
        .expect("version");
    let bench = Bench {
        image: busybox_fixture::busybox().await?,
        raw,
        scale: std::env::var("BENCH_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0),
        only: std::env::var("BENCH_ONLY").unwrap_or_default(),
    };
    // Warm both paths once (engine connection, image cache).
    drop(dockhand_start_ready(bench.image).await);
    settle();
    raw::remove(&bench.raw, &raw::start_ready(&bench.raw, bench.image).await).await;

    containers::start_ready(&bench).await;
    containers::start_total(&bench).await;
    containers::parallel16(&bench).await;
    containers::port_ready(&bench).await?;
    containers::exec(&bench).await?;
    waits::detect(&bench).await?;
    events::event_latency(&bench).await?;
    events::replica_replace(&bench).await?;
    serve::serve_workloads(&bench).await;
    containers::build_cached(&bench).await?;
    databases::postgres(&bench).await?;
    databases::pg_warm_start(&bench).await?;
    templates::handout(&bench).await?;
    suite::suite_nextest(&bench);
    databases::mariadb_isolation(&bench).await?;
    mariadb_templates::handout(&bench).await?;
    cleanup::watcher_first_start(&bench);
    cleanup::churn(&bench).await?;
    killed::kill_cleanup(&bench).await;
    killed::signal_cleanup(&bench).await;
    killed::sweep_orphans(&bench).await;
    Ok(())
}

async fn dockhand_start_ready(image: &str) -> Container {
    Container::builder(image)
        .cmd(READY_CMD)
        .wait_for(WaitFor::log("ready"))
        .start()
        .await
        .expect("dockhand start")
}

fn settle() {
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(60)));
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// As [`report`], with the distribution of both sides.
fn report_distribution(workload: &str, dockhand: &[f64], bollard: &[f64]) {
    if dockhand.is_empty() {
        return;
    }
    let (d, b) = (median(dockhand), median(bollard));
    println!(
        "{{\"workload\":\"{workload}\",\"dockhand_ms\":{d:.2},\"bollard_ms\":{b:.2},\"ratio\":{:.3},\"p50_ms\":{d:.2},\"p95_ms\":{:.2},\"bollard_p95_ms\":{:.2},\"runs\":{}}}",
        d / b,
        percentile(dockhand, 0.95),
        percentile(bollard, 0.95),
        dockhand.len()
    );
}

fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

fn report(workload: &str, dockhand: &[f64], bollard: &[f64]) {
    if dockhand.is_empty() {
        return;
    }
    let (d, b) = (median(dockhand), median(bollard));
    println!(
        "{{\"workload\":\"{workload}\",\"dockhand_ms\":{d:.2},\"bollard_ms\":{b:.2},\"ratio\":{:.3},\"runs\":{}}}",
        d / b,
        dockhand.len()
    );
}
