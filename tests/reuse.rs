//! Containers reused by configuration: one container for every process that
//! asks for the same configuration, never removed while a live process uses
//! it, and gone once the last one has ended (one of them SIGKILLed).
//!
//! The multi-process scenarios run this test binary again as children (an
//! `#[ignore]`d test selected with `--exact --ignored`); a child started by a
//! test is a run of its own, so its container goes once its users are gone.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use common::{busybox, container_exists, containers_labelled, unique};
use dockhand::{Container, ContainerBuilder, Error, Network, Reuse, Sweeper, WaitFor};

const TAG: &str = "DOCKHAND_TEST_TAG";

fn server(image: &str, tag: &str) -> ContainerBuilder {
    Container::builder(image)
        .cmd(["sh", "-c", "echo ready; exec sleep 600"])
        .label("dockhand-test", tag)
        .wait_for(WaitFor::log("ready"))
        .reuse(Reuse::Run)
}

/// The child: uses the reused container, prints `READY <id>`, and holds it
/// until its stdin closes.
#[tokio::test]
#[ignore = "child process of the reuse tests"]
async fn child_uses_the_reused_container() -> dockhand::Result<()> {
    let tag = std::env::var(TAG).expect("started by its parent test, which sets DOCKHAND_TEST_TAG");
    let container = server(busybox().await?, &tag).start().await?;
    println!("READY {}", container.id());
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await
    .unwrap();
    // Still usable at the end: nobody removed it under this process.
    let out = container.exec(["echo", "still here"]).await?;
    assert_eq!(out.stdout_str(), "still here\n");
    println!("DONE");
    Ok(())
}

struct User {
    child: Child,
    stdin: Option<ChildStdin>,
    id: String,
    done: std::sync::mpsc::Receiver<()>,
}

/// The child of the persistent test: starts the container kept across runs,
/// prints `READY <id>` and ends.
#[tokio::test]
#[ignore = "child process of the reuse tests"]
async fn child_starts_a_persistent_container() -> dockhand::Result<()> {
    let tag = std::env::var(TAG).expect("started by its parent test, which sets DOCKHAND_TEST_TAG");
    let container = server(busybox().await?, &tag)
        .reuse(Reuse::Persistent)
        .start()
        .await?;
    println!("READY {}", container.id());
    Ok(())
}

fn spawn_user(tag: &str) -> Child {
    spawn_child("child_uses_the_reused_container", tag)
}

fn spawn_child(test: &str, tag: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--ignored", "--nocapture", "--test-threads=1"])
        .env(TAG, tag)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Read only when the child fails, to say why; it writes little else.
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a started child's `READY <id>`.
fn ready(mut child: Child) -> User {
    let stdin = child.stdin.take();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let id = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("READY ").map(|(_, id)| id.trim().to_string()))
        .unwrap_or_else(|| {
            let status = child.wait();
            let mut why = String::new();
            if let Some(mut err) = child.stderr.take() {
                use std::io::Read;
                let _ = err.read_to_string(&mut why);
            }
            panic!("child ended before it was ready: {status:?}\n{why}")
        });
    let (tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.contains("DONE") {
                let _ = tx.send(());
            }
        }
    });
    User {
        child,
        stdin,
        id,
        done,
    }
}

fn running(id: &str) -> bool {
    Command::new("docker")
        .args(["exec", id, "true"])
        .status()
        .is_ok_and(|s| s.success())
}

fn gone_within(id: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !container_exists(id) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn processes_share_one_container_kept_while_any_uses_it_and_removed_after_the_last() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(busybox()).unwrap();
    let tag = unique("reuse");
    // Three processes ask for the same configuration at the same moment.
    let children: Vec<Child> = (0..3).map(|_| spawn_user(&tag)).collect();
    let mut users: Vec<User> = children.into_iter().map(ready).collect();
    let id = users[0].id.clone();
    assert!(users.iter().all(|u| u.id == id), "one container for all three");
    assert_eq!(containers_labelled("dockhand-test", &tag), [id[..12].to_string()]);

    // One is SIGKILLed: the others still use the container.
    users[0].child.kill().unwrap();
    users[0].child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(running(&id), "removed while two live processes use it");

    // One ends normally (and checks the container is still usable).
    let mut second = users.remove(1);
    drop(second.stdin.take());
    second
        .done
        .recv_timeout(Duration::from_secs(30))
        .expect("the second user saw its container to the end");
    assert!(second.child.wait().unwrap().success());
    std::thread::sleep(Duration::from_secs(1));
    assert!(running(&id), "removed while a live process uses it");

    // The last one is SIGKILLed too: now nothing may be left, its lock files
    // on the host included.
    let lock = lock_file_of(&id);
    assert!(
        lock.exists(),
        "{} is where its users hold their locks",
        lock.display()
    );
    users[1].child.kill().unwrap();
    users[1].child.wait().unwrap();
    assert!(
        gone_within(&id, Duration::from_secs(15)),
        "the reused container outlived its last user"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while lock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!lock.exists(), "{} outlived its container", lock.display());
    assert!(
        !lock.with_extension("ready").exists(),
        "the readiness mark outlived its container"
    );
}

/// The lock file a reused container's users hold, from its label.
fn lock_file_of(id: &str) -> std::path::PathBuf {
    let out = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{index .Config.Labels \"dockhand.reuse.lock\"}}",
            id,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The child that plays a test runner: started under the name `cargo`, it
/// runs two users one after the other, as `cargo nextest run` runs tests.
#[test]
#[ignore = "child process of the reuse tests"]
fn child_runs_users_one_after_another() {
    let tag = std::env::var(TAG).expect("started by its parent test, which sets DOCKHAND_TEST_TAG");
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let mut user = ready(spawn_user(&tag));
            drop(user.stdin.take());
            user.done
                .recv_timeout(Duration::from_secs(30))
                .expect("the user ended");
            assert!(user.child.wait().unwrap().success());
            user.id
        })
        .collect();
    println!("IDS {} {}", ids[0], ids[1]);
}

#[test]
fn a_run_keeps_its_container_between_its_processes_and_removes_it_after_the_run() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(busybox()).unwrap();
    let tag = unique("reuse-run");
    // The test binary under the name `cargo`: what the library takes for a run.
    let dir = std::env::temp_dir().join(unique("fake-runner"));
    std::fs::create_dir_all(&dir).unwrap();
    let runner = dir.join("cargo");
    std::os::unix::fs::symlink(std::env::current_exe().unwrap(), &runner).unwrap();
    let out = Command::new(&runner)
        .args([
            "--exact",
            "child_runs_users_one_after_another",
            "--ignored",
            "--nocapture",
        ])
        .env(TAG, &tag)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let ids: Vec<&str> = stdout
        .lines()
        .find_map(|l| {
            l.split_once("IDS ")
                .map(|(_, ids)| ids.split_whitespace().collect())
        })
        .unwrap_or_else(|| panic!("no IDS line: {stdout}"));
    assert_eq!(
        ids[0], ids[1],
        "the run's second process started its own container instead of the run's"
    );
    assert!(
        gone_within(ids[0], Duration::from_secs(15)),
        "the run's container outlived the run"
    );
}

#[tokio::test]
async fn a_persistent_container_outlives_its_run_until_a_sweep_of_reused_ones() -> dockhand::Result<()> {
    busybox().await?;
    let tag = unique("reuse-persistent");
    let mut child = spawn_child("child_starts_a_persistent_container", &tag);
    drop(child.stdin.take());
    let id = ready(child).id;
    let lock = lock_file_of(&id);
    // A run's container would be gone by now (its watcher removes it within
    // a second or two of the run's end); this one is kept for the next run.
    std::thread::sleep(Duration::from_secs(3));
    assert!(running(&id), "a persistent container was removed with its run");

    let ordinary = Sweeper::new().dry_run().run().await?;
    let (_, why) = ordinary
        .kept
        .iter()
        .find(|(o, _)| o.id == id)
        .expect("an ordinary sweep lists it as kept");
    assert!(why.contains("--reused"), "{why}");

    let report = Sweeper::new().reused().run().await?;
    assert!(
        report.removed.iter().any(|(o, _)| o.id == id),
        "a sweep of reused containers left an unused one: {:?}",
        report.kept.iter().find(|(o, _)| o.id == id)
    );
    assert!(!container_exists(&id));
    assert!(!lock.exists(), "{} outlived its container", lock.display());
    Ok(())
}

#[tokio::test]
async fn one_configuration_one_container_and_any_difference_another() -> dockhand::Result<()> {
    let image = busybox().await?;
    let tag = unique("reuse-config");
    let a = server(image, &tag).start().await?;
    let again = server(image, &tag).start().await?;
    assert_eq!(a.id(), again.id(), "the same configuration is found again");
    assert!(a.name().starts_with("dockhand-shared-"), "{}", a.name());
    let other = server(image, &tag).env("MODE", "other").start().await?;
    assert_ne!(a.id(), other.id(), "another environment is another container");
    drop(again);
    dockhand::wait_for_cleanup(Duration::from_secs(10));
    assert!(
        container_exists(a.id()),
        "dropping one handle removed the reused container"
    );
    assert_eq!(a.exec(["echo", "ok"]).await?.stdout_str(), "ok\n");

    // A sweep leaves it: a live process uses it.
    let report = Sweeper::new().dry_run().run().await?;
    assert!(
        !report.removed.iter().any(|(o, _)| o.id == a.id()),
        "a sweep would remove a reused container in use"
    );
    let (_, why) = report
        .kept
        .iter()
        .find(|(o, _)| o.id == a.id())
        .expect("the sweep lists it as kept");
    assert!(why.contains("reused"), "{why}");
    for c in [a, other] {
        force_remove(c.id());
    }
    Ok(())
}

#[tokio::test]
async fn a_reused_container_refuses_what_it_cannot_share() -> dockhand::Result<()> {
    let image = busybox().await?;
    let tag = unique("reuse-bad");
    let net = Network::builder().label("dockhand-test", &tag).create().await?;
    let err = server(image, &tag).network(&net).start().await.unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    assert!(err.to_string().contains("network"), "{err}");

    // A name taken by another configuration is a conflict, not an adoption.
    let name = unique("reuse-named");
    let first = server(image, &tag).name(&name).start().await?;
    let err = server(image, &tag)
        .name(&name)
        .env("X", "1")
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains(&name), "{err}");
    force_remove(first.id());
    assert_eq!(containers_labelled("dockhand-test", &tag), Vec::<String>::new());
    Ok(())
}

/// The in-process tests' containers belong to the whole run (they would go
/// when `cargo test` exits): removed here so that each test leaves nothing.
fn force_remove(id: &str) {
    let _ = Command::new("docker").args(["rm", "-f", id]).output();
}
