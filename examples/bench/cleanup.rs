//! What cleanup costs: the watcher's share of a first start, and churn.

use std::time::Instant;

use dockhand::Container;

use crate::{busybox_fixture, median, ms, settle, Bench};

/// Child mode: connect and start one container in a fresh process; print ms.
pub async fn first_start() -> dockhand::Result<()> {
    let t = Instant::now();
    let c = Container::builder(busybox_fixture::BUSYBOX)
        .cmd(["sleep", "60"])
        .start()
        .await?;
    println!("{:.3}", ms(t));
    c.remove().await
}

pub fn watcher_first_start(bench: &Bench) {
    let runs = bench.runs("watcher_first_start", 10);
    if runs == 0 {
        return;
    }
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

pub async fn churn(bench: &Bench) -> dockhand::Result<()> {
    let cycles = bench.runs("churn", 200);
    if cycles == 0 {
        return Ok(());
    }
    let (image, parallel) = (bench.image, 32);
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
