//! Engine events as a typed stream, against the real engine.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{busybox, unique};
use dockhand::{Container, Engine, Event, EventStream, Network, ObjectKind, Scope};
use futures_util::StreamExt;

/// Reads events until `done` says so (or 20 s pass).
async fn collect_until(stream: &mut EventStream, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let reading = async {
        while let Some(event) = stream.next().await {
            seen.push(event.expect("event"));
            if done(&seen) {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), reading).await;
    seen
}

fn actions(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.verb()).collect()
}

#[tokio::test]
async fn a_container_start_kill_remove_is_seen_in_order() -> dockhand::Result<()> {
    let image = busybox().await?;
    let tag = unique("events");
    let engine = Engine::connect().await?;
    let mut stream = engine
        .events()
        .kind(ObjectKind::Container)
        .label("dockhand-test", &tag)
        .stream()?;
    let c = Container::builder(image)
        .cmd(["sleep", "60"])
        .label("dockhand-test", &tag)
        .start()
        .await?;
    let id = c.id().to_string();
    c.kill("SIGKILL").await?;
    c.remove().await?;
    let seen = collect_until(&mut stream, |s| s.iter().any(|e| e.action == "destroy")).await;
    let order: Vec<&str> = actions(&seen)
        .into_iter()
        .filter(|a| ["create", "start", "kill", "die", "destroy"].contains(a))
        .collect();
    assert_eq!(order, ["create", "start", "kill", "die", "destroy"], "{seen:#?}");
    let die = seen.iter().find(|e| e.action == "die").unwrap();
    assert_eq!((die.id.as_str(), die.exit_code), (id.as_str(), Some(137)));
    assert_eq!(die.image.as_deref(), Some(image));
    assert_eq!(die.attributes["dockhand-test"], tag);
    Ok(())
}

#[tokio::test]
async fn network_events_of_this_process_only_by_default() -> dockhand::Result<()> {
    let image = busybox().await?;
    let engine = Engine::connect().await?;
    let since = SystemTime::now();
    let mut ours = engine.events().kind(ObjectKind::Network).stream()?;
    let mut everything = engine
        .events()
        .kind(ObjectKind::Network)
        .scope(Scope::Everything)
        .stream()?;
    // Another process's network (the docker CLI's): not ours.
    let theirs = unique("not-ours");
    let made = Command::new("docker")
        .args(["network", "create", &theirs])
        .output()
        .unwrap();
    assert!(made.status.success());
    let net = Network::builder().create().await?;
    let c = Container::builder(image)
        .cmd(["sleep", "60"])
        .network(&net)
        .start()
        .await?;
    c.disconnect(&net).await?;
    c.remove().await?;
    let name = net.name().to_string();
    net.remove().await?;
    Command::new("docker")
        .args(["network", "rm", &theirs])
        .output()
        .unwrap();

    let mine = collect_until(&mut ours, |s| s.iter().any(|e| e.action == "destroy")).await;
    assert!(
        mine.iter().all(|e| e.name == name),
        "another process's network shown: {mine:#?}"
    );
    // The engine repeats `disconnect` when the container goes as well.
    let mut order: Vec<&str> = actions(&mine);
    order.dedup();
    assert_eq!(order, ["create", "connect", "disconnect", "destroy"], "{mine:#?}");
    let all = collect_until(&mut everything, |s| {
        s.iter().any(|e| e.name == theirs && e.action == "destroy")
    })
    .await;
    assert!(
        all.iter().any(|e| e.name == theirs),
        "Scope::Everything misses it: {all:#?}"
    );
    assert!(mine.iter().all(|e| e.time >= since - Duration::from_secs(1)));
    Ok(())
}

#[tokio::test]
async fn container_events_report_the_exit_code() -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .cmd(["sleep", "60"])
        .start()
        .await?;
    let mut events = c.events()?;
    c.kill("SIGKILL").await?;
    let seen = collect_until(&mut events, |s| s.iter().any(|e| e.action == "die")).await;
    let die = seen.iter().find(|e| e.action == "die").expect("a die event");
    assert_eq!(die.exit_code, Some(137));
    assert!(seen.iter().all(|e| e.id == c.id()));
    Ok(())
}

#[tokio::test]
async fn until_before_since_is_refused() -> dockhand::Result<()> {
    let engine = Engine::connect().await?;
    let now = SystemTime::now();
    let err = engine
        .events()
        .since(now)
        .until(now - Duration::from_secs(1))
        .stream()
        .expect_err("until before since");
    assert!(matches!(err, dockhand::Error::InvalidConfig { .. }), "{err:?}");
    assert!(err.to_string().contains("until"), "{err}");
    // A bounded window ends by itself.
    let mut past = engine
        .events()
        .scope(Scope::Everything)
        .since(now - Duration::from_secs(2))
        .until(now)
        .stream()?;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while past.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "a stream with until did not end");
    Ok(())
}

#[tokio::test]
async fn container_events_of_a_past_window_are_told_and_the_stream_ends() -> dockhand::Result<()> {
    let image = busybox().await?;
    let tag = unique("window");
    let engine = Engine::connect().await?;
    let run = || {
        Container::builder(image)
            .cmd(["sleep", "60"])
            .label("dockhand-test", &tag)
            .start()
    };
    let since = SystemTime::now();
    let inside = run().await?;
    let inside_id = inside.id().to_string();
    inside.remove().await?;
    let until = SystemTime::now();
    let after = run().await?;
    let after_id = after.id().to_string();
    after.remove().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut window = engine
        .events()
        .kind(ObjectKind::Container)
        .label("dockhand-test", &tag)
        .since(since)
        .until(until)
        .stream()?;
    let mut seen = Vec::new();
    let told = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = window.next().await {
            seen.push(event?);
        }
        Ok::<_, dockhand::Error>(())
    })
    .await;
    assert!(told.is_ok(), "the stream of a past window did not end: {seen:#?}");
    told.unwrap()?;
    assert!(
        seen.iter().any(|e| e.id == inside_id && e.action == "destroy"),
        "{seen:#?}"
    );
    assert!(seen.iter().all(|e| e.id != after_id), "{seen:#?}");
    Ok(())
}
