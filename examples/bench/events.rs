//! Event latency: from a kill returning to the container's `die` event in
//! hand, through dockhand's typed stream and through bollard's raw one. And
//! replica replacement: from the SIGKILL of a replica to its replacement
//! passing the wait, through a group and through a hand-written supervisor.

use std::collections::HashMap;
use std::time::Instant;

use bollard::query_parameters::{EventsOptions, KillContainerOptions};
use dockhand::{Change, Container, Group, WaitFor};
use futures_util::StreamExt;

use crate::{ms, raw, report_distribution, settle, Bench, READY_CMD};

pub async fn event_latency(bench: &Bench) -> dockhand::Result<()> {
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs("event_latency", 20) {
        let c = Container::builder(bench.image)
            .cmd(["sleep", "60"])
            .start()
            .await?;
        let mut events = c.events()?;
        c.kill("SIGKILL").await?;
        let t = Instant::now();
        while let Some(event) = events.next().await {
            if event?.action == "die" {
                break;
            }
        }
        d.push(ms(t));
        drop(c);
        settle();

        let id = raw::create_start(&bench.raw, raw::body(bench.image, &["sleep", "60"], None)).await;
        // The stream is sent when first polled, after the kill: ask from now.
        let mut events = die_events(bench, &id);
        kill(bench, &id).await;
        let t = Instant::now();
        events.next().await.expect("a die event").expect("event");
        b.push(ms(t));
        raw::remove(&bench.raw, &id).await;
    }
    report_distribution("event_latency", &d, &b);
    Ok(())
}

/// `replica_replace`: a group of three busybox replicas, one SIGKILLed; the
/// plain side follows the engine's events itself, removes the dead
/// container, then creates one on the same network under the same alias,
/// starts it and waits for its ready line.
pub async fn replica_replace(bench: &Bench) -> dockhand::Result<()> {
    let runs = bench.runs("replica_replace", 10);
    if runs == 0 {
        return Ok(());
    }
    let template = Container::builder(bench.image)
        .cmd(READY_CMD)
        .wait_for(WaitFor::log("ready"));
    let name = format!("bench-{}", std::process::id());
    let group = Group::builder(&name, template).replicas(3).start().await?;
    let network = format!("bench-raw-{}", std::process::id());
    let request = bollard::models::NetworkCreateRequest {
        name: network.clone(),
        ..Default::default()
    };
    bench.raw.create_network(request).await.expect("network");
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let victim = group.replicas()[1].id.clone();
        let mut changes = group.events();
        kill(bench, &victim).await;
        let t = Instant::now();
        while let Some(change) = changes.next().await {
            if change.change == Change::Started && change.replica.index == 1 {
                break;
            }
        }
        d.push(ms(t));

        // The plain way: the same replica on a network under an alias.
        let replica = || raw::on_network(bench.image, &network, "replica-1");
        let id = raw::start_ready_with(&bench.raw, replica()).await;
        let mut events = die_events(bench, &id);
        kill(bench, &id).await;
        let t = Instant::now();
        events.next().await.expect("a die event").expect("event");
        raw::remove(&bench.raw, &id).await;
        let replacement = raw::start_ready_with(&bench.raw, replica()).await;
        b.push(ms(t));
        raw::remove(&bench.raw, &replacement).await;
    }
    group.remove().await?;
    bench.raw.remove_network(&network).await.expect("remove network");
    report_distribution("replica_replace", &d, &b);
    Ok(())
}

pub(crate) async fn kill(bench: &Bench, id: &str) {
    let kill = KillContainerOptions {
        signal: "SIGKILL".into(),
    };
    bench.raw.kill_container(id, Some(kill)).await.expect("kill");
}

pub(crate) fn die_events(
    bench: &Bench,
    id: &str,
) -> impl futures_util::Stream<Item = Result<bollard::models::EventMessage, bollard::errors::Error>> {
    let filters = HashMap::from([
        ("container".to_string(), vec![id.to_string()]),
        ("event".to_string(), vec!["die".to_string()]),
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let options = EventsOptions {
        since: Some(format!("{now:.9}")),
        filters: Some(filters),
        ..Default::default()
    };
    bench.raw.events(Some(options))
}
