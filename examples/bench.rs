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
//! `mariadb_isolation` compares eight fresh databases from one MariaDB server
//! (its start included) with eight servers started one after another; both
//! sides use dockhand, as the point is the pattern, not the client.
//!
//! `BENCH_SCALE=0.2` runs a fifth of the iterations (a quick look);
//! `BENCH_ONLY=start_ready,exec` runs only the named workloads.

#[path = "../fixtures/busybox.rs"]
mod busybox_fixture;
#[path = "../fixtures/debian.rs"]
mod debian_fixture;
#[path = "../fixtures/mariadb.rs"]
mod mariadb_fixture;
#[path = "../fixtures/postgres.rs"]
mod postgres_fixture;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{CreateContainerOptions, LogsOptions, RemoveContainerOptions};
use bollard::Docker;
use dockhand::{Container, WaitFor};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const READY_CMD: [&str; 3] = ["sh", "-c", "echo ready; exec sleep 60"];
const HTTPD_CMD: [&str; 4] = ["httpd", "-f", "-p", "8080"];

#[tokio::main]
async fn main() -> dockhand::Result<()> {
    if std::env::args().any(|a| a == "--first-start") {
        return first_start().await;
    }
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let runs = |n: usize| ((n as f64 * scale).round() as usize).max(1);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let runs_of = |w: &str, n: usize| {
        if only.is_empty() || only.split(',').any(|o| o == w) {
            runs(n)
        } else {
            0
        }
    };
    let image = busybox_fixture::busybox().await?;
    let raw = Docker::connect_with_defaults()
        .expect("engine")
        .negotiate_version()
        .await
        .expect("version");

    // Warm both paths once (engine connection, image cache).
    drop(dockhand_start_ready(image).await);
    settle();
    raw_remove(&raw, &raw_start_ready(&raw, image).await).await;

    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs_of("start_ready", 20) {
        let t = Instant::now();
        let c = dockhand_start_ready(image).await;
        d.push(ms(t));
        drop(c);
        settle();
        let t = Instant::now();
        let id = raw_start_ready(&raw, image).await;
        b.push(ms(t));
        raw_remove(&raw, &id).await;
    }
    report("start_ready", &d, &b);

    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs_of("start_total", 20) {
        let t = Instant::now();
        drop(dockhand_start_ready(image).await);
        d.push(ms(t));
        settle();
        let t = Instant::now();
        let id = raw_start_ready(&raw, image).await;
        raw_remove(&raw, &id).await;
        b.push(ms(t));
    }
    report("start_total", &d, &b);

    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs_of("parallel16", 5) {
        let t = Instant::now();
        let started = futures_util::future::join_all((0..16).map(|_| dockhand_start_ready(image))).await;
        drop(started);
        d.push(ms(t));
        settle();
        let t = Instant::now();
        let ids = futures_util::future::join_all((0..16).map(|_| raw_start_ready(&raw, image))).await;
        futures_util::future::join_all(ids.iter().map(|id| raw_remove(&raw, id))).await;
        b.push(ms(t));
    }
    report("parallel16", &d, &b);

    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs_of("port_ready", 20) {
        let t = Instant::now();
        let c = Container::builder(image)
            .cmd(HTTPD_CMD)
            .expose(8080)
            .wait_for(WaitFor::port(8080))
            .start()
            .await?;
        d.push(ms(t));
        drop(c);
        settle();
        let t = Instant::now();
        let id = raw_port_ready(&raw, image).await;
        b.push(ms(t));
        raw_remove(&raw, &id).await;
    }
    report("port_ready", &d, &b);

    let c = Container::builder(image).cmd(["sleep", "60"]).start().await?;
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs_of("exec", 50) {
        let t = Instant::now();
        let out = c.exec(["echo", "hi"]).await?;
        d.push(ms(t));
        assert_eq!(out.stdout_str(), "hi\n");
        let t = Instant::now();
        let (code, stdout) = raw_exec(&raw, c.id()).await;
        b.push(ms(t));
        assert_eq!((code, stdout.as_str()), (0, "hi\n"));
    }
    report("exec", &d, &b);
    c.remove().await?;

    if runs_of("build_cached", 1) > 0 {
        // An unchanged in-memory build: the fixture's context, found by its hash.
        let mut d = Vec::new();
        for _ in 0..runs_of("build_cached", 20) {
            let t = Instant::now();
            let image = busybox_fixture::rebuild().await?;
            d.push(ms(t));
            assert!(image.from_cache());
        }
        // The engine's own layer cache, for comparison: the same build asked of the engine.
        let mut b = Vec::new();
        let ctx = busybox_fixture::context()?;
        for _ in 0..runs_of("build_cached", 5) {
            let t = Instant::now();
            let tar = ctx_tar(&ctx);
            let options = bollard::query_parameters::BuildImageOptions {
                t: Some("dockhand-bench/busybox-raw:latest".into()),
                rm: true,
                ..Default::default()
            };
            let mut out = raw.build_image(options, None, Some(bollard::body_full(tar.into())));
            while let Some(step) = out.next().await {
                step.expect("raw build");
            }
            b.push(ms(t));
        }
        report("build_cached", &d, &b);
        let _ = raw
            .remove_image(
                "dockhand-bench/busybox-raw:latest",
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    }
    if runs_of("postgres_query", 1) > 0 || runs_of("postgres_isolation", 1) > 0 {
        let pg_image = postgres_fixture::postgres().await?;
        let (mut d, mut b) = (Vec::new(), Vec::new());
        for _ in 0..runs_of("postgres_query", 10) {
            let t = Instant::now();
            let pg = dockhand::modules::Postgres::new().image(pg_image).start().await?;
            first_query(&pg.connection_string()).await;
            d.push(ms(t));
            drop(pg);
            settle();
            let t = Instant::now();
            let id = raw_postgres_query(&raw, pg_image).await;
            b.push(ms(t));
            raw_remove(&raw, &id).await;
        }
        report("postgres_query", &d, &b);

        let (mut d, mut b) = (Vec::new(), Vec::new());
        for _ in 0..runs_of("postgres_isolation", 3) {
            // Eight tests' worth, the shared server's own start included.
            let t = Instant::now();
            let pg = dockhand::modules::Postgres::new().image(pg_image).start().await?;
            for _ in 0..8 {
                let db = pg.fresh_database().await?;
                first_query(db.connection_string()).await;
            }
            d.push(ms(t));
            drop(pg);
            settle();
            let t = Instant::now();
            for _ in 0..8 {
                let pg = dockhand::modules::Postgres::new().image(pg_image).start().await?;
                first_query(&pg.connection_string()).await;
                pg.remove().await?;
            }
            b.push(ms(t));
        }
        report("postgres_isolation", &d, &b);
    }
    if runs_of("mariadb_isolation", 1) > 0 {
        let image = mariadb_fixture::mariadb().await?;
        let settings = dockhand::modules::MariaDb::new().image(image);
        let (mut d, mut b) = (Vec::new(), Vec::new());
        for _ in 0..runs_of("mariadb_isolation", 3) {
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
    }
    if runs_of("watcher_first_start", 1) > 0 {
        watcher_cost(runs(10));
    }
    if runs_of("churn", 1) > 0 {
        churn(image, runs(200), 32).await?;
    }
    Ok(())
}

/// Child mode: connect and start one container in a fresh process; print ms.
async fn first_start() -> dockhand::Result<()> {
    let t = Instant::now();
    let image = busybox_fixture::BUSYBOX;
    let c = Container::builder(image).cmd(["sleep", "60"]).start().await?;
    println!("{:.3}", ms(t));
    c.remove().await
}

fn watcher_cost(runs: usize) {
    let exe = std::env::current_exe().expect("own path");
    let sample = |watcher: &str| {
        let out = std::process::Command::new(&exe)
            .arg("--first-start")
            .env("DOCKHAND_WATCHER", watcher)
            .env("DOCKHAND_SWEEP", "0")
            .output()
            .expect("child bench");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<f64>()
            .expect("child figure")
    };
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        on.push(sample("1"));
        off.push(sample("0"));
    }
    let (on, off) = (median(&on), median(&off));
    println!(
        "{{\"workload\":\"watcher_first_start\",\"with_watcher_ms\":{on:.2},\"without_watcher_ms\":{off:.2},\"added_ms\":{:.2},\"runs\":{runs}}}",
        on - off
    );
}

async fn churn(image: &str, cycles: usize, parallel: usize) -> dockhand::Result<()> {
    let t = Instant::now();
    for _ in 0..cycles {
        drop(Container::builder(image).cmd(["sleep", "60"]).start().await?);
    }
    let started = futures_util::future::join_all(
        (0..parallel).map(|_| async { Container::builder(image).cmd(["sleep", "60"]).start().await }),
    )
    .await;
    drop(started);
    settle();
    let elapsed = ms(t);
    let engine = dockhand::Engine::connect().await?;
    let mut left = 0;
    for kind in dockhand::ObjectKind::ALL {
        left += engine.list(kind, dockhand::Scope::Session).await?.len();
    }
    println!(
        "{{\"workload\":\"churn\",\"cycles\":{cycles},\"parallel\":{parallel},\"total_ms\":{elapsed:.0},\"objects_left\":{left}}}"
    );
    assert_eq!(left, 0, "churn left objects behind");
    Ok(())
}

fn ctx_tar(ctx: &dockhand::BuildContext) -> Vec<u8> {
    ctx.to_tar().expect("tar")
}

async fn first_query(url: &str) {
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

/// The same server as the module starts, polled with the same query until it answers.
async fn raw_postgres_query(raw: &Docker, image: &str) -> String {
    let mut body = body(
        image,
        &[
            "postgres",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ],
        Some(5432),
    );
    body.env = Some(
        [
            "POSTGRES_USER=postgres",
            "POSTGRES_PASSWORD=postgres",
            "POSTGRES_DB=postgres",
            "PGDATA=/var/lib/postgresql/data/pgdata",
        ]
        .map(String::from)
        .to_vec(),
    );
    if let Some(hc) = body.host_config.as_mut() {
        hc.tmpfs = Some(HashMap::from([(
            "/var/lib/postgresql/data".to_string(),
            "rw,mode=0777".to_string(),
        )]));
    }
    let id = raw_create_start(raw, body).await;
    let inspected = raw.inspect_container(&id, None).await.expect("inspect");
    let port = inspected.network_settings.unwrap().ports.unwrap()["5432/tcp"]
        .as_ref()
        .unwrap()[0]
        .host_port
        .clone()
        .unwrap();
    let url = format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres");
    loop {
        if let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            let connection = tokio::spawn(connection);
            let ok = client.query_one("SELECT 1", &[]).await.is_ok();
            drop(client);
            let _ = connection.await;
            if ok {
                return id;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

fn body(image: &str, cmd: &[&str], port: Option<u16>) -> ContainerCreateBody {
    let host_config = port.map(|p| HostConfig {
        port_bindings: Some(HashMap::from([(
            format!("{p}/tcp"),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(String::new()),
            }]),
        )])),
        ..Default::default()
    });
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        exposed_ports: port.map(|p| vec![format!("{p}/tcp")]),
        labels: Some(HashMap::from([("dockhand-bench".to_string(), "raw".to_string())])),
        host_config,
        ..Default::default()
    }
}

async fn raw_create_start(raw: &Docker, body: ContainerCreateBody) -> String {
    let name = format!("bench-raw-{}", rand::random::<u64>());
    let options = CreateContainerOptions {
        name: Some(name),
        ..Default::default()
    };
    let id = raw
        .create_container(Some(options), body)
        .await
        .expect("create")
        .id;
    raw.start_container(&id, None).await.expect("start");
    id
}

async fn raw_start_ready(raw: &Docker, image: &str) -> String {
    let id = raw_create_start(raw, body(image, &READY_CMD, None)).await;
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut logs = raw.logs(&id, Some(options));
    let mut seen = String::new();
    while let Some(frame) = logs.next().await {
        seen.push_str(&String::from_utf8_lossy(&frame.expect("logs").into_bytes()));
        if seen.contains("ready") {
            break;
        }
    }
    id
}

async fn raw_port_ready(raw: &Docker, image: &str) -> String {
    let id = raw_create_start(raw, body(image, &HTTPD_CMD, Some(8080))).await;
    let inspected = raw.inspect_container(&id, None).await.expect("inspect");
    let port: u16 = inspected.network_settings.unwrap().ports.unwrap()["8080/tcp"]
        .as_ref()
        .unwrap()[0]
        .host_port
        .as_ref()
        .unwrap()
        .parse()
        .unwrap();
    loop {
        if http_get_answers(port).await {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn http_get_answers(port: u16) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf).await, Ok(n) if n >= 5 && buf.starts_with(b"HTTP/"))
}

async fn raw_exec(raw: &Docker, id: &str) -> (i64, String) {
    let exec = raw
        .create_exec(
            id,
            CreateExecOptions {
                cmd: Some(vec!["echo", "hi"]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("create exec");
    let mut stdout = String::new();
    if let StartExecResults::Attached { mut output, .. } =
        raw.start_exec(&exec.id, None).await.expect("start exec")
    {
        while let Some(Ok(frame)) = output.next().await {
            if let LogOutput::StdOut { message } = frame {
                stdout.push_str(&String::from_utf8_lossy(&message));
            }
        }
    }
    let code = raw
        .inspect_exec(&exec.id)
        .await
        .expect("inspect exec")
        .exit_code
        .unwrap_or(-1);
    (code, stdout)
}

async fn raw_remove(raw: &Docker, id: &str) {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    raw.remove_container(id, Some(options)).await.expect("remove");
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
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
