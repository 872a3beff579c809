//! Finding the engine.

use std::process::Command;
use std::time::{Duration, Instant};

use dockhand::{Engine, EngineKind};

#[tokio::test]
async fn default_engine_answers_with_its_version() -> dockhand::Result<()> {
    let engine = Engine::connect().await?;
    assert_eq!(engine.kind(), EngineKind::Docker);
    assert!(!engine.version().is_empty());
    assert!(engine.api_version().starts_with("1."), "{}", engine.api_version());
    assert_eq!(engine.host(), "127.0.0.1");
    Ok(())
}

#[tokio::test]
async fn missing_socket_names_what_was_tried() {
    let begun = Instant::now();
    let err = Engine::connect_to("unix:///tmp/dockhand-no-engine-here.sock")
        .await
        .unwrap_err();
    assert!(err.is_engine_unavailable(), "{err:?}");
    assert!(
        err.to_string()
            .contains("/tmp/dockhand-no-engine-here.sock (no such socket)"),
        "{err}"
    );
    assert!(err.to_string().contains("DOCKER_HOST"), "{err}");
    assert!(begun.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn unreachable_tcp_engine_fails_within_a_second_or_so() {
    // A closed loopback port: refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let begun = Instant::now();
    let err = Engine::connect_to(&format!("tcp://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(err.is_engine_unavailable(), "{err:?}");
    assert!(
        begun.elapsed() < Duration::from_millis(1500),
        "{:?}",
        begun.elapsed()
    );
}

/// Run by `docker_host_pointing_at_a_missing_socket` with DOCKER_HOST set.
#[tokio::test]
#[ignore = "run as a child process by docker_host_pointing_at_a_missing_socket"]
async fn child_connects_with_env() {
    std::env::var("DOCKHAND_TEST_CHILD").expect("started by its parent test, which sets DOCKHAND_TEST_CHILD");
    let err = dockhand::Container::builder("busybox")
        .cmd(["true"])
        .start()
        .await
        .unwrap_err();
    eprintln!("CHILD-ERROR: {err}");
    assert!(err.is_engine_unavailable());
}

#[test]
fn docker_host_pointing_at_a_missing_socket() {
    let begun = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_connects_with_env", "--ignored", "--nocapture"])
        .env("DOCKER_HOST", "unix:///tmp/dockhand-missing.sock")
        .env("DOCKHAND_TEST_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("CHILD-ERROR: no container engine is reachable; tried: unix:///tmp/dockhand-missing.sock, from DOCKER_HOST (no such socket)"),
        "{stderr}"
    );
    // DOCKER_HOST alone is tried: no silent fallback to the default socket.
    assert!(!stderr.contains("/var/run/docker.sock"), "{stderr}");
    assert!(begun.elapsed() < Duration::from_secs(10));
}
