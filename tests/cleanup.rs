//! Nothing leaks, whatever ends the test process: SIGKILL (the watcher), SIGKILL
//! of the watcher too (the sweeper), SIGINT/SIGTERM (signal cleanup), and normal
//! exit with a container held in a static (the exit hook).
//!
//! Each scenario runs this test binary again as a child (an `#[ignore]`d test
//! selected with `--exact --ignored`), which prints `READY <session>` once its
//! objects exist.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{busybox, unique, watcher_pid};
use dockhand::{BuildContext, Container, Mount, Network, SharedContainer, Sweeper, Volume, WaitFor};

const TAG: &str = "DOCKHAND_TEST_TAG";

/// The objects of each kind labelled `dockhand-test=<tag>`, via the docker CLI.
fn labelled(tag: &str) -> [usize; 4] {
    let filter = format!("label=dockhand-test={tag}");
    let count = |args: &[&str]| {
        let out = Command::new("docker")
            .args(args)
            .args(["--filter", &filter])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).split_whitespace().count()
    };
    [
        count(&["ps", "-aq"]),
        count(&["network", "ls", "-q"]),
        count(&["volume", "ls", "-q"]),
        count(&["images", "-q"]),
    ]
}

fn wait_until_gone(tag: &str, limit: Duration) -> Option<Duration> {
    let begun = Instant::now();
    while begun.elapsed() < limit {
        if labelled(tag) == [0; 4] {
            return Some(begun.elapsed());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

/// Starts a child test and waits for its `READY <session>` line.
fn spawn_child(test: &str, tag: &str, env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--ignored", "--nocapture", "--test-threads=1"])
        .env(TAG, tag)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut session = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        // libtest may have printed `test name ... ` on the same line first.
        if let Some((_, s)) = line.split_once("READY ") {
            session = Some(s.trim().to_string());
            break;
        }
    }
    let session =
        session.unwrap_or_else(|| panic!("child {test} ended before it was ready: {:?}", child.wait()));
    // Keep reading: a child writing into a closed pipe would fail its own run.
    std::thread::spawn(move || lines.for_each(drop));
    (child, session)
}

fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// The child: a container, a network, a volume and a built image (or, with
/// `DOCKHAND_TEST_CONTAINERS`, that many containers and no image), then sleep.
#[tokio::test]
#[ignore = "child process of the cleanup tests"]
async fn child_holds_objects() -> dockhand::Result<()> {
    let tag = std::env::var(TAG).expect("started by its parent test, which sets DOCKHAND_TEST_TAG");
    if std::env::var("DOCKHAND_TEST_SIGNALS").is_ok() {
        dockhand::cleanup_on_signals()?;
    }
    let containers: usize = std::env::var("DOCKHAND_TEST_CONTAINERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let net = Network::builder().label("dockhand-test", &tag).create().await?;
    let vol = Volume::builder().label("dockhand-test", &tag).create().await?;
    let image = busybox().await?;
    let mut started = Vec::new();
    for _ in 0..containers {
        let (net, vol, tag) = (net.clone(), vol.clone(), tag.clone());
        started.push(tokio::spawn(async move {
            Container::builder(image)
                .cmd(["sleep", "600"])
                .label("dockhand-test", &tag)
                .network(&net)
                .mount(Mount::volume(&vol, "/data"))
                .start()
                .await
        }));
    }
    let mut held = Vec::new();
    for s in started {
        held.push(s.await.unwrap()?);
    }
    let built = if containers == 1 {
        let id = BuildContext::new("FROM scratch\nCOPY marker /marker\n")
            .file("marker", tag.clone().into_bytes(), 0o644)
            .label("dockhand-test", &tag)
            .build(&format!("dockhand-test/{tag}:latest"))
            .await?;
        Some(id)
    } else {
        None
    };
    println!("READY {}", dockhand::session_id());
    tokio::time::sleep(Duration::from_secs(600)).await;
    drop((held, net, vol, built));
    Ok(())
}

#[test]
fn watcher_removes_everything_of_a_killed_process() {
    let (victim_tag, bystander_tag) = (unique("killed"), unique("bystander"));
    let (mut victim, _) = spawn_child("child_holds_objects", &victim_tag, &[]);
    let (mut bystander, _) = spawn_child("child_holds_objects", &bystander_tag, &[]);
    assert_eq!(labelled(&victim_tag), [1, 1, 1, 1]);

    victim.kill().unwrap(); // SIGKILL: no drop, no exit hook runs
    victim.wait().unwrap();
    let took = wait_until_gone(&victim_tag, Duration::from_secs(20));
    assert!(took.is_some(), "left behind: {:?}", labelled(&victim_tag));
    // Another live process's objects are untouched.
    assert_eq!(labelled(&bystander_tag), [1, 1, 1, 1]);

    bystander.kill().unwrap();
    bystander.wait().unwrap();
    assert!(wait_until_gone(&bystander_tag, Duration::from_secs(20)).is_some());
}

#[tokio::test]
async fn sweeper_removes_what_a_killed_watcher_left() -> dockhand::Result<()> {
    let tag = unique("orphan");
    let (mut child, session) = spawn_child("child_holds_objects", &tag, &[]);
    let watcher = watcher_pid(&session).expect("the child has a watcher");
    signal(watcher, "KILL");
    child.kill().unwrap();
    child.wait().unwrap();
    let pid = child.id();

    let preview = Sweeper::new().dry_run().run().await?;
    let orphans: Vec<_> = preview
        .removed
        .iter()
        .filter(|(o, _)| o.labels.get("dockhand-test") == Some(&tag))
        .collect();
    assert_eq!(orphans.len(), 4, "a dry run should list all four: {orphans:?}");
    assert!(
        orphans
            .iter()
            .all(|(_, why)| why == &format!("owner pid {pid} is gone")),
        "{orphans:?}"
    );
    assert_eq!(labelled(&tag), [1, 1, 1, 1], "a dry run removed something");
    // This process's own objects are alive and kept.
    assert!(preview
        .removed
        .iter()
        .all(|(o, _)| o.session() != Some(dockhand::session_id())));

    let report = Sweeper::new().run().await?;
    // Other tests' children may die during this sweep; only ours must not fail.
    let ours: Vec<_> = report
        .failed
        .iter()
        .filter(|(o, _)| o.labels.get("dockhand-test") == Some(&tag))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
    wait_until_gone(&tag, Duration::from_secs(5));
    let left = labelled(&tag);
    if left != [0; 4] {
        let images = Command::new("docker")
            .args([
                "images",
                "-a",
                "--no-trunc",
                "--filter",
                &format!("label=dockhand-test={tag}"),
            ])
            .output()
            .unwrap();
        let removed: Vec<_> = report
            .removed
            .iter()
            .filter(|(o, _)| o.labels.get("dockhand-test") == Some(&tag))
            .collect();
        panic!(
            "left {left:?}\n{}\nremoved: {removed:?}",
            String::from_utf8_lossy(&images.stdout)
        );
    }
    Ok(())
}

fn signal_cleanup(name: &str, number: i32) {
    let tag = unique(&format!("signal-{name}"));
    let env = [
        ("DOCKHAND_TEST_SIGNALS", "1"),
        ("DOCKHAND_TEST_CONTAINERS", "10"),
        // Prove the signal handler does it, not the watcher.
        ("DOCKHAND_WATCHER", "0"),
    ];
    let (mut child, _) = spawn_child("child_holds_objects", &tag, &env);
    assert_eq!(labelled(&tag)[..3], [10, 1, 1]);
    signal(child.id(), name);
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(number),
        "the child should die by SIG{name}: {status:?}"
    );
    assert_eq!(labelled(&tag), [0; 4], "left behind after SIG{name}");
}

#[test]
fn sigint_removes_everything_then_dies_by_the_signal() {
    signal_cleanup("INT", 2);
}

#[test]
fn sigterm_removes_everything_then_dies_by_the_signal() {
    signal_cleanup("TERM", 15);
}

static SHARED: SharedContainer = SharedContainer::new(|| {
    Box::pin(async {
        let tag = std::env::var(TAG).unwrap_or_default();
        Container::builder(busybox().await?)
            .cmd(["sh", "-c", "echo ready; sleep 600"])
            .label("dockhand-test", &tag)
            .wait_for(WaitFor::log("ready"))
            .start()
            .await
    })
});

#[tokio::test]
#[ignore = "child process of the cleanup tests"]
async fn child_uses_a_shared_container() -> dockhand::Result<()> {
    std::env::var(TAG).expect("started by its parent test, which sets DOCKHAND_TEST_TAG");
    let first = SHARED.get().await?;
    let again = SHARED.get().await?;
    assert_eq!(first.id(), again.id(), "one container per process");
    println!("READY {}", dockhand::session_id());
    Ok(())
}

#[test]
fn shared_container_in_a_static_is_removed_at_exit() {
    let tag = unique("static");
    // No watcher: the exit hook alone must do it.
    let (mut child, _) = spawn_child(
        "child_uses_a_shared_container",
        &tag,
        &[("DOCKHAND_WATCHER", "0")],
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        labelled(&tag),
        [0; 4],
        "the static's container outlived the process"
    );
}

/// The child for the keep tests: a network, a volume and a container, each
/// kept on its own (the container holds neither), then sleep.
#[tokio::test]
#[ignore = "child process of the cleanup tests"]
async fn child_keeps_objects() -> dockhand::Result<()> {
    let tag = std::env::var(TAG).expect("started by its parent test, which sets DOCKHAND_TEST_TAG");
    if std::env::var("DOCKHAND_TEST_SIGNALS").is_ok() {
        dockhand::cleanup_on_signals()?;
    }
    let net = Network::builder().label("dockhand-test", &tag).create().await?;
    let vol = Volume::builder().label("dockhand-test", &tag).create().await?;
    let container = Container::builder(busybox().await?)
        .cmd(["sleep", "600"])
        .label("dockhand-test", &tag)
        .start()
        .await?;
    net.keep();
    vol.keep();
    container.keep();
    // Objects made after the kept ones still go: the cleanup is not switched off.
    let _doomed = Network::builder()
        .label("dockhand-test-doomed", &tag)
        .create()
        .await?;
    println!("READY {}", dockhand::session_id());
    tokio::time::sleep(Duration::from_secs(600)).await;
    Ok(())
}

/// The `dockhand.watcher` label of the kept container.
fn watcher_label(tag: &str) -> String {
    let out = Command::new("docker")
        .args(["ps", "-a", "--filter", &format!("label=dockhand-test={tag}")])
        .args(["--format", "{{.Label \"dockhand.watcher\"}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes what a keep test left, with the docker CLI.
fn remove_labelled(tag: &str) {
    let filter = format!("label=dockhand-test={tag}");
    for (list, remove) in [
        (&["ps", "-aq"][..], &["rm", "-f"][..]),
        (&["network", "ls", "-q"][..], &["network", "rm"][..]),
        (&["volume", "ls", "-q"][..], &["volume", "rm"][..]),
    ] {
        let out = Command::new("docker")
            .args(list)
            .args(["--filter", &filter])
            .output()
            .unwrap();
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            Command::new("docker").args(remove).arg(id).output().unwrap();
        }
    }
}

fn doomed_networks(tag: &str) -> usize {
    let out = Command::new("docker")
        .args([
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label=dockhand-test-doomed={tag}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().count()
}

#[test]
fn kept_objects_of_every_kind_survive_the_watcher() {
    let tag = unique("kept-kill");
    let (mut child, session) = spawn_child("child_keeps_objects", &tag, &[]);
    assert_eq!(labelled(&tag)[..3], [1, 1, 1]);
    assert!(watcher_pid(&session).is_some(), "the child has a watcher");
    child.kill().unwrap();
    child.wait().unwrap();
    let begun = Instant::now();
    while watcher_pid(&session).is_some() && begun.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(25));
    }
    let left = labelled(&tag);
    let doomed = doomed_networks(&tag);
    let watched = watcher_label(&tag);
    remove_labelled(&tag);
    assert_eq!(watched, "on", "objects of a process with a watcher say so");
    assert!(watcher_pid(&session).is_none(), "the watcher did not finish");
    assert_eq!(doomed, 0, "the watcher did not clean up what was not kept");
    assert_eq!(left[..3], [1, 1, 1], "the watcher removed kept objects");
}

#[test]
fn kept_objects_survive_the_signal_cleanup() {
    let tag = unique("kept-term");
    let env = [("DOCKHAND_TEST_SIGNALS", "1"), ("DOCKHAND_WATCHER", "0")];
    let (mut child, _) = spawn_child("child_keeps_objects", &tag, &env);
    signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    let left = labelled(&tag);
    let doomed = doomed_networks(&tag);
    let watched = watcher_label(&tag);
    remove_labelled(&tag);
    assert_eq!(watched, "off", "objects of a process without a watcher say so");
    assert_eq!(status.signal(), Some(15), "{status:?}");
    assert_eq!(doomed, 0, "the signal cleanup did not remove what was not kept");
    assert_eq!(left[..3], [1, 1, 1], "the signal cleanup removed kept objects");
}
