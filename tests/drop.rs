//! Dropping a guard removes the container under every runtime flavour, outside a
//! runtime, and during a panic (which prints the container's last logs first).

mod common;

use std::process::Command;

use common::{busybox, container_exists, containers_labelled, gone_after_cleanup, unique};
use dockhand::{Container, Engine, ObjectKind};
use futures_util::StreamExt;

async fn sleeper() -> Container {
    Container::builder(busybox().await.unwrap())
        .cmd(["sleep", "60"])
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn drop_in_current_thread_runtime() {
    let c = sleeper().await;
    let id = c.id().to_string();
    drop(c);
    assert!(gone_after_cleanup(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_in_multi_thread_runtime() {
    let c = sleeper().await;
    let id = c.id().to_string();
    drop(c);
    assert!(gone_after_cleanup(&id));
}

#[test]
fn drop_outside_any_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = rt.block_on(sleeper());
    // The runtime that started it is gone before the guard drops.
    drop(rt);
    let id = c.id().to_string();
    drop(c);
    assert!(gone_after_cleanup(&id));
}

#[tokio::test]
async fn many_drops_are_removed_in_parallel() {
    let tag = unique("parallel");
    let image = busybox().await.unwrap();
    let started = futures_util::future::join_all((0..8).map(|_| {
        Container::builder(image)
            .cmd(["sleep", "60"])
            .label("dockhand-test", &tag)
            .start()
    }))
    .await;
    let started: Vec<Container> = started.into_iter().map(Result::unwrap).collect();
    let ids: Vec<String> = started.iter().map(|c| c.id().to_string()).collect();
    let mut events = Engine::connect()
        .await
        .unwrap()
        .events()
        .kind(ObjectKind::Container)
        .label("dockhand-test", &tag)
        .stream()
        .unwrap();
    drop(started);
    assert!(dockhand::wait_for_cleanup(std::time::Duration::from_secs(30)));
    assert!(ids.iter().all(|id| !container_exists(id)));
    // In parallel: a forced removal is (kill,) die, destroy; removals one after
    // another never have two containers dead and not yet destroyed at once.
    // The first removal may well finish before the second container dies, so
    // the most in flight at any point is what tells. (Podman sends no kill
    // event for it, so deaths are counted.)
    let mut actions = Vec::new();
    while actions.iter().filter(|a| *a == "destroy").count() < ids.len() {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), events.next()).await;
        match next {
            Ok(Some(Ok(event))) => actions.push(event.action),
            other => panic!("the events stream ended or went quiet: {other:?}; so far {actions:?}"),
        }
    }
    let in_flight = actions.iter().scan(0i32, |dead, a| {
        match a.as_str() {
            "die" => *dead += 1,
            "destroy" => *dead -= 1,
            _ => {}
        }
        Some(*dead)
    });
    let most = in_flight.max().unwrap_or(0);
    assert!(most >= 2, "removed one after another: {actions:?}");
}

/// Run by `drop_during_panic_prints_logs_and_removes` in a child process.
#[tokio::test]
#[ignore = "run as a child process by drop_during_panic_prints_logs_and_removes"]
async fn child_panics_holding_a_container() {
    let tag =
        std::env::var("DOCKHAND_TEST_TAG").expect("started by its parent test, which sets DOCKHAND_TEST_TAG");
    let c = Container::builder(busybox().await.unwrap())
        .cmd(["sh", "-c", "echo last words before the panic; sleep 60"])
        .label("dockhand-test", &tag)
        .wait_for(dockhand::WaitFor::log("last words"))
        .start()
        .await
        .unwrap();
    let _keep_alive = &c;
    panic!("the test failed on purpose");
}

#[test]
fn drop_during_panic_prints_logs_and_removes() {
    let tag = unique("panic");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_panics_holding_a_container",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DOCKHAND_TEST_TAG", &tag)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child should have failed");
    assert!(stderr.contains("the test failed on purpose"), "{stderr}");
    assert!(stderr.contains("log lines of container"), "{stderr}");
    assert!(stderr.contains("stdout: last words before the panic"), "{stderr}");
    // The child has exited: its exit hook finished the removal.
    assert!(
        containers_labelled("dockhand-test", &tag).is_empty(),
        "container left after panic"
    );
}

/// Run by `dockhand_keep_leaves_containers_for_debugging` with DOCKHAND_KEEP=1.
#[tokio::test]
#[ignore = "run as a child process by dockhand_keep_leaves_containers_for_debugging"]
async fn child_drops_with_keep_set() {
    let tag =
        std::env::var("DOCKHAND_TEST_TAG").expect("started by its parent test, which sets DOCKHAND_TEST_TAG");
    let c = Container::builder(busybox().await.unwrap())
        .cmd(["sleep", "60"])
        .label("dockhand-test", &tag)
        .start()
        .await
        .unwrap();
    drop(c);
}

#[test]
fn dockhand_keep_leaves_containers_for_debugging() {
    let tag = unique("keep");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_drops_with_keep_set", "--ignored", "--nocapture"])
        .env("DOCKHAND_TEST_TAG", &tag)
        .env("DOCKHAND_KEEP", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("keeping container"), "{stderr}");
    let kept = containers_labelled("dockhand-test", &tag);
    assert_eq!(kept.len(), 1, "DOCKHAND_KEEP=1 should have kept the container");
    Command::new("docker")
        .args(["rm", "-f", &kept[0]])
        .output()
        .unwrap();
    assert!(!container_exists(&kept[0]));
}
