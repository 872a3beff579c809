//! The engine going away in the middle of a suite: a socket proxy (`socat`)
//! in front of the machine's engine is cut for a few seconds, then brought
//! back. Calls made meanwhile fail with a typed error naming what they did;
//! removals handed to the cleanup worker and a watcher whose process was
//! killed meanwhile wait for the engine and finish once it is back.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{busybox, containers_labelled, unique, watcher_pid};
use dockhand::{Container, Engine};

/// `socat` from a socket of the test's to the engine's.
struct Proxy {
    path: PathBuf,
    child: Child,
}

impl Proxy {
    fn start(path: &Path) -> Proxy {
        let child = Command::new("socat")
            .arg(format!("UNIX-LISTEN:{},fork,unlink-early", path.display()))
            .arg("UNIX-CONNECT:/var/run/docker.sock")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (scripts/setup.sh installs it)");
        let begun = Instant::now();
        while !path.exists() {
            assert!(begun.elapsed() < Duration::from_secs(5), "socat did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        Proxy {
            path: path.to_path_buf(),
            child,
        }
    }

    /// Cuts the engine off: no process listens, no socket file is left.
    fn cut(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.path);
        self.path.clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A live process (a zombie waiting to be reaped counts as gone).
fn process_exists(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

fn socket_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}.sock", unique(name)))
}

fn until_none_labelled(tag: &str, limit: Duration) -> bool {
    let begun = Instant::now();
    while begun.elapsed() < limit {
        if containers_labelled("dockhand-test", tag).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[tokio::test]
async fn calls_fail_clearly_while_cut_and_removals_finish_once_back() -> dockhand::Result<()> {
    let tag = unique("cut");
    let image = busybox().await?;
    let proxy = Proxy::start(&socket_path("engine"));
    let engine = Engine::connect_to(&format!("unix://{}", proxy.path.display())).await?;
    let start = || {
        Container::builder(image)
            .engine(&engine)
            .cmd(["sleep", "600"])
            .label("dockhand-test", &tag)
            .start()
    };
    let (dropped, kept_open) = (start().await?, start().await?);

    let path = proxy.cut();
    let begun = Instant::now();
    let err = kept_open.exec(["true"]).await.expect_err("the engine is cut off");
    assert!(
        begun.elapsed() < Duration::from_secs(2),
        "a cut engine took {:?} to fail",
        begun.elapsed()
    );
    assert!(matches!(err, dockhand::Error::Engine { .. }), "{err:?}");
    assert!(err.to_string().contains(kept_open.name()), "{err}");
    drop(dropped); // handed to the worker while the engine is unreachable
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        containers_labelled("dockhand-test", &tag).len(),
        2,
        "nothing could be removed while cut"
    );

    let _back = Proxy::start(&path);
    assert_eq!(kept_open.exec(["echo", "back"]).await?.stdout_str(), "back\n");
    drop(kept_open);
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(60)));
    assert!(
        containers_labelled("dockhand-test", &tag).is_empty(),
        "left after the engine came back"
    );
    Ok(())
}

/// Child: a container through the proxy named by DOCKER_HOST, then sleep.
#[tokio::test]
#[ignore = "child process of the engine-fault tests"]
async fn child_behind_the_proxy() -> dockhand::Result<()> {
    let tag =
        std::env::var("DOCKHAND_TEST_TAG").expect("started by its parent test, which sets DOCKHAND_TEST_TAG");
    let c = Container::builder(busybox().await?)
        .cmd(["sleep", "600"])
        .label("dockhand-test", &tag)
        .start()
        .await?;
    println!("READY {}", dockhand::session_id());
    tokio::time::sleep(Duration::from_secs(600)).await;
    drop(c);
    Ok(())
}

#[test]
fn a_watcher_waits_for_a_cut_engine_and_then_cleans_up() {
    let tag = unique("cut-watcher");
    let proxy = Proxy::start(&socket_path("watched"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_behind_the_proxy",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DOCKHAND_TEST_TAG", &tag)
        .env("DOCKER_HOST", format!("unix://{}", proxy.path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let session = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .find_map(|l| Some(l.ok()?.split_once("READY ")?.1.trim().to_string()))
        .expect("the child ended before it was ready");
    assert_eq!(containers_labelled("dockhand-test", &tag).len(), 1);
    let watcher = watcher_pid(&session).expect("the child has a watcher");

    let path = proxy.cut();
    child.kill().unwrap(); // the watcher sees it die while the engine is cut off
    child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // Still there, waiting for the engine (a sweep by another test process
    // could remove the container too, so the watcher itself is what is checked).
    assert!(
        process_exists(watcher),
        "the watcher gave up while the engine was cut off"
    );
    let _back = Proxy::start(&path);
    let begun = Instant::now();
    while process_exists(watcher) {
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "the watcher never finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        until_none_labelled(&tag, Duration::from_secs(5)),
        "the watcher finished and left the container"
    );
}
