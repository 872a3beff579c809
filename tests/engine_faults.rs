//! The engine going away in the middle of a suite: a socket proxy (`socat`)
//! in front of the machine's engine is cut for a few seconds, then brought
//! back. Calls made meanwhile fail with a typed error naming what they did;
//! removals handed to the cleanup worker and a watcher whose process was
//! killed meanwhile wait for the engine and finish once it is back. And an
//! engine that hangs (the proxy stopped with SIGSTOP: connections are taken
//! and never answered): each call is a typed timeout naming it, and the
//! process still exits in bounded time.

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

    /// Sends `signal` (STOP, CONT) to the proxy's listening process.
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal}");
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

/// Child: a container through the proxy named by DOCKER_HOST; once told on
/// stdin that the engine hangs, one call, whose outcome it prints; then it
/// ends, its container's removal still pending.
#[tokio::test]
#[ignore = "child process of the engine-fault tests"]
async fn child_facing_a_hung_engine() -> dockhand::Result<()> {
    let tag =
        std::env::var("DOCKHAND_TEST_TAG").expect("started by its parent test, which sets DOCKHAND_TEST_TAG");
    let c = Container::builder(busybox().await?)
        .cmd(["sleep", "600"])
        .label("dockhand-test", &tag)
        .start()
        .await?;
    println!("READY {}", c.name());
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let begun = Instant::now();
    let outcome = c.exec(["true"]).await;
    let took = begun.elapsed().as_secs_f64();
    match outcome {
        Err(err) => println!("FAILED {took:.1} {} {err}", err.is_timeout()),
        Ok(_) => println!("ANSWERED {took:.1}"),
    }
    Ok(())
}

#[test]
fn a_hung_engine_is_a_timeout_naming_the_call_and_the_process_still_exits() {
    let tag = unique("hung");
    let proxy = Proxy::start(&socket_path("hung"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_facing_a_hung_engine",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DOCKHAND_TEST_TAG", &tag)
        .env("DOCKER_HOST", format!("unix://{}", proxy.path.display()))
        .env("DOCKHAND_ENGINE_TIMEOUT", "2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read on a thread of its own, so that an engine call that hangs fails the
    // test in seconds rather than hanging it.
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next_with = |marker: &str, limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                // libtest prints the test's name on the same line, before.
                Ok(line) => match line.find(marker) {
                    Some(at) => return Some(line[at..].to_string()),
                    None => continue,
                },
                Err(_) => return None,
            }
        }
    };
    let name = next_with("READY ", Duration::from_secs(60)).expect("the child was not ready within 60 s");
    let name = name.trim_start_matches("READY ").trim().to_string();
    proxy.signal("STOP");
    let told = Instant::now();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"go\n").unwrap();
    let Some(outcome) = next_with("FAILED ", Duration::from_secs(15)) else {
        let _ = child.kill();
        proxy.signal("CONT");
        panic!("an engine call that cannot be answered did not fail within 15 s");
    };
    // Its guard's removal cannot reach the engine: the exit waits for it, bounded.
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if told.elapsed() > Duration::from_secs(40) {
            let _ = child.kill();
            proxy.signal("CONT");
            panic!("the child did not exit with the engine hung ({outcome})");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    proxy.signal("CONT");
    assert!(status.success(), "{outcome}");
    let words: Vec<&str> = outcome.splitn(4, ' ').collect();
    assert_eq!(words[0], "FAILED", "a hung engine answered: {outcome}");
    let took: f64 = words[1].parse().unwrap();
    assert!(
        (1.5..10.0).contains(&took),
        "the call failed after {took} s, its bound 2 s: {outcome}"
    );
    assert_eq!(words[2], "true", "not a timeout: {outcome}");
    assert!(
        words[3].contains(&name),
        "the error does not name the container: {outcome}"
    );
    // The engine back, the child's watcher removes what its exit could not.
    assert!(
        until_none_labelled(&tag, Duration::from_secs(30)),
        "left after the engine came back"
    );
}
