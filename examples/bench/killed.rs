//! Cleanup when a process is killed: the watcher after SIGKILL, the signal
//! handler after SIGTERM, the sweeper after both died. Each run starts this
//! bench again as a child (`--hold KIND N`), which creates its objects, prints
//! `READY`, and sleeps until it is killed; the figure is the time from the
//! signal to the last of its objects gone, watched through the engine.
//!
//! The plain side is what a harness without dockhand does at best: the parent
//! lists the dead child's objects by label and removes them with raw calls,
//! in parallel, the moment the child is gone.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, ListVolumesOptions, RemoveContainerOptions,
    RemoveVolumeOptions,
};
use dockhand::{BuildContext, Container, Mount, Network, Volume};
use futures_util::future::join_all;

use crate::{busybox_fixture, median, ms, Bench};

const LABEL: &str = "dockhand-bench-run";

/// Child mode: hold objects labelled `run` until killed.
pub async fn hold(kind: &str, containers: usize, run: &str) -> dockhand::Result<()> {
    if kind == "signal" {
        dockhand::cleanup_on_signals()?;
    }
    let image = busybox_fixture::BUSYBOX;
    let net = Network::builder().label(LABEL, run).create().await?;
    let vol = Volume::builder().label(LABEL, run).create().await?;
    let started = join_all((0..containers).map(|_| {
        Container::builder(image)
            .cmd(["sleep", "600"])
            .label(LABEL, run)
            .network(&net)
            .mount(Mount::volume(&vol, "/data"))
            .start()
    }))
    .await;
    let held: Vec<Container> = started.into_iter().collect::<dockhand::Result<_>>()?;
    let built = match kind {
        "kill" => Some(
            BuildContext::new("FROM scratch\nCOPY run /run\n")
                .file("run", run.as_bytes().to_vec(), 0o644)
                .label(LABEL, run)
                .build(&format!("dockhand-bench/{run}:1"))
                .await?,
        ),
        _ => None,
    };
    println!("READY");
    tokio::time::sleep(Duration::from_secs(600)).await;
    drop((held, net, vol, built));
    Ok(())
}

fn spawn(kind: &str, containers: usize, run: &str, env: &[(&str, &str)]) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(["--hold", kind, &containers.to_string(), run])
        .envs(env.iter().copied())
        .env("DOCKHAND_SWEEP", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child bench");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l == "READY")),
        "the child ended before it was ready"
    );
    child
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status();
    assert!(ok.is_ok_and(|s| s.success()));
}

/// Containers, networks, volumes and images labelled `run` still in the engine.
async fn left(raw: &bollard::Docker, run: &str) -> usize {
    let filters = Some(HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL}={run}")],
    )]));
    let containers = raw
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: filters.clone(),
            ..Default::default()
        }))
        .await
        .map_or(0, |c| c.len());
    let networks = raw
        .list_networks(Some(ListNetworksOptions {
            filters: filters.clone(),
        }))
        .await
        .map_or(0, |n| n.len());
    let volumes = raw
        .list_volumes(Some(ListVolumesOptions {
            filters: filters.clone(),
        }))
        .await
        .map_or(0, |v| v.volumes.unwrap_or_default().len());
    let images = raw
        .list_images(Some(bollard::query_parameters::ListImagesOptions {
            filters,
            ..Default::default()
        }))
        .await
        .map_or(0, |i| i.len());
    containers + networks + volumes + images
}

async fn until_gone(raw: &bollard::Docker, run: &str, begun: Instant) -> f64 {
    while left(raw, run).await > 0 {
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "run {run}: objects left after a minute"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ms(begun)
}

/// Removes a dead child's objects the plain way: list by label, remove all,
/// containers first.
async fn plain_remove(raw: &bollard::Docker, run: &str) {
    let filters = Some(HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL}={run}")],
    )]));
    let containers = raw
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: filters.clone(),
            ..Default::default()
        }))
        .await
        .expect("list");
    let force = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    join_all(
        containers
            .iter()
            .map(|c| raw.remove_container(c.id.as_deref().unwrap(), Some(force.clone()))),
    )
    .await;
    let networks = raw
        .list_networks(Some(ListNetworksOptions {
            filters: filters.clone(),
        }))
        .await
        .expect("list");
    join_all(
        networks
            .iter()
            .map(|n| raw.remove_network(n.id.as_deref().unwrap())),
    )
    .await;
    let volumes = raw
        .list_volumes(Some(ListVolumesOptions {
            filters: filters.clone(),
        }))
        .await
        .expect("list");
    join_all(
        volumes
            .volumes
            .unwrap_or_default()
            .iter()
            .map(|v| raw.remove_volume(&v.name, None::<RemoveVolumeOptions>)),
    )
    .await;
    let images = raw
        .list_images(Some(bollard::query_parameters::ListImagesOptions {
            filters,
            ..Default::default()
        }))
        .await
        .expect("list");
    join_all(
        images
            .iter()
            .map(|i| raw.remove_image(&i.id, None::<bollard::query_parameters::RemoveImageOptions>, None)),
    )
    .await;
}

/// One line: median and max of both sides.
fn report(workload: &str, dockhand: &[f64], plain: &[f64]) {
    if dockhand.is_empty() {
        return;
    }
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (d, b) = (median(dockhand), median(plain));
    println!(
        "{{\"workload\":\"{workload}\",\"dockhand_ms\":{d:.1},\"bollard_ms\":{b:.1},\"ratio\":{:.3},\"dockhand_max_ms\":{:.1},\"bollard_max_ms\":{:.1},\"runs\":{}}}",
        d / b,
        max(dockhand),
        max(plain),
        dockhand.len()
    );
}

/// A container, a network, a volume and an image, SIGKILLed: the watcher.
pub async fn kill_cleanup(bench: &Bench) {
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for i in 0..bench.runs("kill_cleanup", 10) {
        let run = format!("kill-{}-{i}", std::process::id());
        let mut child = spawn("kill", 1, &run, &[]);
        let begun = Instant::now();
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        d.push(until_gone(&bench.raw, &run, begun).await);

        let run = format!("kill-plain-{}-{i}", std::process::id());
        let mut child = spawn("kill", 1, &run, &[("DOCKHAND_WATCHER", "0")]);
        let begun = Instant::now();
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        plain_remove(&bench.raw, &run).await;
        b.push(until_gone(&bench.raw, &run, begun).await);
    }
    report("kill_cleanup", &d, &b);
}

/// Ten containers, a network and a volume, SIGTERMed: the signal handler (no
/// watcher, so it is the handler that does it).
pub async fn signal_cleanup(bench: &Bench) {
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for i in 0..bench.runs("signal_cleanup", 5) {
        let run = format!("term-{}-{i}", std::process::id());
        let mut child = spawn("signal", 10, &run, &[("DOCKHAND_WATCHER", "0")]);
        let begun = Instant::now();
        signal(&child, "TERM");
        child.wait().expect("reap");
        d.push(until_gone(&bench.raw, &run, begun).await);

        let run = format!("term-plain-{}-{i}", std::process::id());
        let mut child = spawn("plain", 10, &run, &[("DOCKHAND_WATCHER", "0")]);
        let begun = Instant::now();
        signal(&child, "TERM");
        child.wait().expect("reap");
        plain_remove(&bench.raw, &run).await;
        b.push(until_gone(&bench.raw, &run, begun).await);
    }
    report("signal_cleanup", &d, &b);
}

/// Fifty containers of a process that died with its watcher: one sweep.
pub async fn sweep_orphans(bench: &Bench) {
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for i in 0..bench.runs("sweep_orphans", 3) {
        for plain in [false, true] {
            let run = format!("orphans-{}-{i}-{plain}", std::process::id());
            let mut child = spawn("plain", 50, &run, &[("DOCKHAND_WATCHER", "0")]);
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
            let begun = Instant::now();
            if plain {
                plain_remove(&bench.raw, &run).await;
                b.push(until_gone(&bench.raw, &run, begun).await);
            } else {
                dockhand::Sweeper::new().run().await.expect("sweep");
                d.push(until_gone(&bench.raw, &run, begun).await);
            }
        }
    }
    report("sweep_orphans", &d, &b);
}
