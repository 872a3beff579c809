//! Single containers: start, ports, exec, cached builds.

use std::time::Instant;

use dockhand::{Container, WaitFor};
use futures_util::future::join_all;
use futures_util::StreamExt;

use crate::{busybox_fixture, dockhand_start_ready, ms, raw, report, settle, Bench, HTTPD_CMD};

pub async fn start_ready(bench: &Bench) {
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs("start_ready", 20) {
        let t = Instant::now();
        let c = dockhand_start_ready(bench.image).await;
        d.push(ms(t));
        drop(c);
        settle();
        let t = Instant::now();
        let id = raw::start_ready(&bench.raw, bench.image).await;
        b.push(ms(t));
        raw::remove(&bench.raw, &id).await;
    }
    report("start_ready", &d, &b);
}

pub async fn start_total(bench: &Bench) {
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs("start_total", 20) {
        let t = Instant::now();
        drop(dockhand_start_ready(bench.image).await);
        d.push(ms(t));
        settle();
        let t = Instant::now();
        let id = raw::start_ready(&bench.raw, bench.image).await;
        raw::remove(&bench.raw, &id).await;
        b.push(ms(t));
    }
    report("start_total", &d, &b);
}

/// Sixteen starts at once to ready, and their removal until all are gone
/// (dockhand's drop returns at once; the figure waits for the worker).
pub async fn parallel16(bench: &Bench) {
    let (mut d, mut b, mut d_rm, mut b_rm) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..bench.runs("parallel16", 5) {
        let t = Instant::now();
        let started = join_all((0..16).map(|_| dockhand_start_ready(bench.image))).await;
        d.push(ms(t));
        let t = Instant::now();
        drop(started);
        settle();
        d_rm.push(ms(t));
        let t = Instant::now();
        let ids = join_all((0..16).map(|_| raw::start_ready(&bench.raw, bench.image))).await;
        b.push(ms(t));
        let t = Instant::now();
        join_all(ids.iter().map(|id| raw::remove(&bench.raw, id))).await;
        b_rm.push(ms(t));
    }
    report("parallel16", &d, &b);
    report("parallel16_remove", &d_rm, &b_rm);
}

pub async fn port_ready(bench: &Bench) -> dockhand::Result<()> {
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs("port_ready", 20) {
        let t = Instant::now();
        let c = Container::builder(bench.image)
            .cmd(HTTPD_CMD)
            .expose(8080)
            .wait_for(WaitFor::port(8080))
            .start()
            .await?;
        d.push(ms(t));
        drop(c);
        settle();
        let t = Instant::now();
        let id = raw::port_ready(&bench.raw, bench.image).await;
        b.push(ms(t));
        raw::remove(&bench.raw, &id).await;
    }
    report("port_ready", &d, &b);
    Ok(())
}

pub async fn exec(bench: &Bench) -> dockhand::Result<()> {
    let runs = bench.runs("exec", 50);
    if runs == 0 {
        return Ok(());
    }
    let c = Container::builder(bench.image)
        .cmd(["sleep", "60"])
        .start()
        .await?;
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let out = c.exec(["echo", "hi"]).await?;
        d.push(ms(t));
        assert_eq!(out.stdout_str(), "hi\n");
        let t = Instant::now();
        let (code, stdout) = raw::exec(&bench.raw, c.id()).await;
        b.push(ms(t));
        assert_eq!((code, stdout.as_str()), (0, "hi\n"));
    }
    report("exec", &d, &b);
    c.remove().await
}

/// An unchanged in-memory build found by its content hash, against the same
/// build asked of the engine (its own layer cache).
pub async fn build_cached(bench: &Bench) -> dockhand::Result<()> {
    if bench.runs("build_cached", 1) == 0 {
        return Ok(());
    }
    let mut d = Vec::new();
    for _ in 0..bench.runs("build_cached", 20) {
        let t = Instant::now();
        let image = busybox_fixture::rebuild().await?;
        d.push(ms(t));
        assert!(image.from_cache());
    }
    let mut b = Vec::new();
    let ctx = busybox_fixture::context()?;
    for _ in 0..bench.runs("build_cached", 5) {
        let t = Instant::now();
        let tar = ctx.to_tar()?;
        let options = bollard::query_parameters::BuildImageOptions {
            t: Some("dockhand-bench/busybox-raw:latest".into()),
            rm: true,
            ..Default::default()
        };
        let mut out = bench
            .raw
            .build_image(options, None, Some(bollard::body_full(tar.into())));
        while let Some(step) = out.next().await {
            step.expect("raw build");
        }
        b.push(ms(t));
    }
    report("build_cached", &d, &b);
    let _ = bench
        .raw
        .remove_image(
            "dockhand-bench/busybox-raw:latest",
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
    Ok(())
}
