//! Event latency: from a kill returning to the container's `die` event in
//! hand, through dockhand's typed stream and through bollard's raw one.

use std::collections::HashMap;
use std::time::Instant;

use bollard::query_parameters::{EventsOptions, KillContainerOptions};
use dockhand::Container;
use futures_util::StreamExt;

use crate::{ms, raw, report_distribution, settle, Bench};

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
        let filters = HashMap::from([
            ("container".to_string(), vec![id.clone()]),
            ("event".to_string(), vec!["die".to_string()]),
        ]);
        // The stream is sent when first polled, after the kill: ask from now.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let options = EventsOptions {
            since: Some(format!("{now:.9}")),
            filters: Some(filters),
            ..Default::default()
        };
        let mut events = bench.raw.events(Some(options));
        let kill = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        bench.raw.kill_container(&id, Some(kill)).await.expect("kill");
        let t = Instant::now();
        events.next().await.expect("a die event").expect("event");
        b.push(ms(t));
        raw::remove(&bench.raw, &id).await;
    }
    report_distribution("event_latency", &d, &b);
    Ok(())
}
