//! A three-replica group held to its desired state: one replica is killed,
//! the group replaces it under the same alias, and every replica's resource
//! use is printed.
//!
//! ```sh
//! bash scripts/setup.sh && cargo run --example cluster
//! ```

#[path = "../fixtures/busybox.rs"]
mod busybox_fixture;

use std::time::{Duration, Instant};

use dockhand::{Change, Container, Group, WaitFor};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> dockhand::Result<()> {
    let image = busybox_fixture::busybox().await?;
    let node = Container::builder(image)
        .cmd([
            "sh",
            "-c",
            "hostname > /tmp/id; echo ready; exec httpd -f -p 8080 -h /tmp",
        ])
        .expose(8080)
        .wait_for(WaitFor::log("ready"))
        .wait_for(WaitFor::port(8080));
    let name = format!("cluster-{}", std::process::id());
    let group = Group::builder(&name, node).replicas(3).start().await?;
    for r in group.replicas() {
        println!(
            "replica {} {} as {} on 127.0.0.1:{}",
            r.index,
            &r.id[..12],
            r.alias,
            r.ports[&8080.into()]
        );
    }

    let mut changes = group.events();
    let victim = group.replica(1).expect("replica 1");
    println!("\nkilling replica 1 ({})", &victim.id()[..12]);
    let killed_at = Instant::now();
    victim.kill("SIGKILL").await?;
    while let Some(event) = changes.next().await {
        println!(
            "  {:>7.1} ms  {}[{}] {:?} {}",
            killed_at.elapsed().as_secs_f64() * 1000.0,
            event.group,
            event.replica.index,
            event.change,
            &event.replica.id[..12]
        );
        if event.change == Change::Started {
            break;
        }
    }
    group.ready(Duration::from_secs(30)).await?;

    // Peers reach the replacement under the old alias.
    let peer = group.replica(0).expect("replica 0");
    let url = format!("http://{name}-1:8080/id");
    let answer = peer.exec(["timeout", "5", "wget", "-q", "-O", "-", &url]).await?;
    println!("\nreplica 0 asks {url}: {}", answer.stdout_str().trim());

    println!();
    let replicas: Vec<_> = group
        .replicas()
        .iter()
        .filter_map(|r| group.replica(r.index))
        .collect();
    let readings = futures_util::future::join_all(replicas.iter().map(|c| c.stats())).await;
    for (index, stats) in readings.into_iter().enumerate() {
        let stats = stats?;
        println!(
            "replica {} cpu {:>5.1} %  memory {:>6.1} MiB of {:.0} MiB  rx {} B  tx {} B  pids {}",
            index,
            stats.cpu_percent,
            stats.memory_used as f64 / 1048576.0,
            stats.memory_limit as f64 / 1048576.0,
            stats.rx_bytes(),
            stats.tx_bytes(),
            stats.pids
        );
    }
    group.remove().await
}
