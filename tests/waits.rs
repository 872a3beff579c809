//! Readiness waits against the real engine.

mod common;

use std::time::{Duration, Instant};

use common::{busybox, containers_labelled, unique};
use dockhand::{Container, Error, Healthcheck, NotReadyReason, WaitFor};

fn not_ready(err: Error) -> Box<dockhand::NotReady> {
    match err {
        Error::NotReady(info) => info,
        other => panic!("expected NotReady, got {other:?}"),
    }
}

#[tokio::test]
async fn port_wait_is_not_fooled_by_the_proxy() -> dockhand::Result<()> {
    // The port proxy accepts connections at once; the server listens after 2 s.
    let image = busybox().await?;
    let begun = Instant::now();
    let c = Container::builder(image)
        .cmd(["sh", "-c", "sleep 2; echo listening; httpd -f -p 8080"])
        .expose(8080)
        .wait_for(WaitFor::port(8080))
        .start()
        .await?;
    let waited = begun.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "reported ready after {waited:?}, before the server listened"
    );
    // And it really answers now. (The engine records log lines a moment
    // after the process writes them: a snapshot taken at once can miss the
    // line the shell printed just before the server started.)
    c.wait_until(WaitFor::log("listening"), Duration::from_secs(10))
        .await?;
    let mut stream = tokio::net::TcpStream::connect(c.address(8080)?).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1."), "{answer}");
    Ok(())
}

#[tokio::test]
async fn log_wait_stream_and_count() -> dockhand::Result<()> {
    // The second tick is written only when the test says so (a fifo): a
    // `times(2)` wait must still be waiting after the first. (Lines split
    // across frames are the line splitter's unit tests: the engine itself
    // holds a partial line back until its newline.)
    let c = Container::builder(busybox().await?)
        .cmd([
            "sh",
            "-c",
            "mkfifo /tmp/go; echo ready; echo tick >&2; read x < /tmp/go; echo tick >&2; exec sleep 60",
        ])
        .wait_for(WaitFor::log("ready").on_stdout())
        .wait_for(WaitFor::log_regex(r"^re.dy$"))
        .wait_for(WaitFor::log("tick").on_stderr())
        .start()
        .await?;
    let twice = c.wait_until(WaitFor::log("tick").on_stderr().times(2), Duration::from_secs(10));
    tokio::pin!(twice);
    let early = tokio::time::timeout(Duration::from_millis(300), &mut twice).await;
    assert!(early.is_err(), "times(2) returned after one line: {early:?}");
    c.exec(["sh", "-c", "echo > /tmp/go"]).await?;
    twice.await?;
    assert_eq!(c.logs().await?.stderr().matches("tick").count(), 2);
    Ok(())
}

#[tokio::test]
async fn log_on_wrong_stream_times_out_with_report() -> dockhand::Result<()> {
    let tag = unique("timeout");
    let begun = Instant::now();
    let err = Container::builder(busybox().await?)
        .cmd(["sh", "-c", "echo ready; echo 'some diagnostics' >&2; sleep 60"])
        .label("dockhand-test", &tag)
        .wait_for(WaitFor::log("ready").on_stderr())
        .startup_timeout(Duration::from_secs(2))
        .start()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(begun.elapsed() < Duration::from_secs(10));
    let text = err.to_string();
    let info = not_ready(err);
    assert_eq!(info.reason, NotReadyReason::TimedOut);
    assert_eq!(info.state, "running");
    assert!(info.condition.contains("\"ready\" on stderr"), "{text}");
    assert!(info.logs.contains(&"stdout: ready".to_string()), "{text}");
    assert!(
        info.logs.contains(&"stderr: some diagnostics".to_string()),
        "{text}"
    );
    assert!(text.contains("fixtures/busybox"), "{text}");
    assert!(
        containers_labelled("dockhand-test", &tag).is_empty(),
        "timed-out container left behind"
    );
    Ok(())
}

#[tokio::test]
async fn exit_during_wait_fails_at_once() -> dockhand::Result<()> {
    let begun = Instant::now();
    let err = Container::builder(busybox().await?)
        .cmd(["sh", "-c", "echo 'fatal: no config' >&2; exit 3"])
        .wait_for(WaitFor::log("never printed"))
        .startup_timeout(Duration::from_secs(30))
        .start()
        .await
        .unwrap_err();
    assert!(
        begun.elapsed() < Duration::from_secs(10),
        "waited {:?}",
        begun.elapsed()
    );
    let info = not_ready(err);
    assert_eq!(info.reason, NotReadyReason::Exited { code: 3 });
    assert_eq!(info.state, "exited with code 3");
    assert_eq!(info.logs, ["stderr: fatal: no config"]);
    Ok(())
}

#[tokio::test]
async fn a_port_wait_on_a_container_that_exited_at_once_reports_the_exit() -> dockhand::Result<()> {
    // It exits before or after its ports are read, whichever the machine
    // makes of it: either way the wait must report the exit, not a port the
    // builder forgot. A few runs make the early case all but certain.
    for _ in 0..4 {
        let err = Container::builder(busybox().await?)
            .cmd(["sh", "-c", "exit 3"])
            .expose(8080)
            .wait_for(WaitFor::port(8080))
            .startup_timeout(Duration::from_secs(30))
            .start()
            .await
            .unwrap_err();
        let info = not_ready(err);
        assert_eq!(info.reason, NotReadyReason::Exited { code: 3 }, "{info}");
    }
    Ok(())
}

#[tokio::test]
async fn oom_kill_is_reported() -> dockhand::Result<()> {
    let err = Container::builder(busybox().await?)
        // A shell variable that doubles until the 8 MiB limit kills it.
        .cmd([
            "sh",
            "-c",
            "echo filling; x=0123456789; while true; do x=\"$x$x\"; done",
        ])
        .memory("8m")
        .wait_for(WaitFor::log("never"))
        .start()
        .await
        .unwrap_err();
    let info = not_ready(err);
    // Podman 4 with cgroup v1 records no OOM kill: only the SIGKILL shows.
    if dockhand::Engine::connect().await?.kind() == dockhand::EngineKind::Podman {
        assert_eq!(info.state, "exited with code 137 (SIGKILL)");
    } else {
        assert!(info.state.starts_with("OOM-killed"), "{}", info.state);
    }
    // A SIGKILL that is not the memory limit's is not called one. (PID 1
    // ignores a SIGKILL from inside: the shell passes on its child's 137.)
    let err = Container::builder(busybox().await?)
        .cmd(["sh", "-c", "sleep 300 & kill -9 $!; wait $!"])
        .memory("8m")
        .wait_for(WaitFor::log("never"))
        .start()
        .await
        .unwrap_err();
    assert_eq!(not_ready(err).state, "exited with code 137 (SIGKILL)");
    Ok(())
}

#[tokio::test]
async fn http_wait_checks_status_and_body() -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .cmd([
            "sh",
            "-c",
            "mkdir -p /www && echo 'status: UP' > /www/health && sleep 1 && httpd -f -p 8080 -h /www",
        ])
        .expose(8080)
        .wait_for(
            WaitFor::http(8080)
                .path("/health")
                .status(200)
                .body(|b| b.contains("UP")),
        )
        .start()
        .await?;
    c.wait_until(
        WaitFor::http(8080).path("/missing").status(404),
        Duration::from_secs(5),
    )
    .await?;
    let err = c
        .wait_until(
            WaitFor::http(8080).path("/health").body(|b| b.contains("DOWN")),
            Duration::from_millis(800),
        )
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    Ok(())
}

#[tokio::test]
async fn healthcheck_healthy_and_unhealthy() -> dockhand::Result<()> {
    let image = busybox().await?;
    let begun = Instant::now();
    Container::builder(image)
        .cmd(["sh", "-c", "sleep 1; touch /tmp/up; sleep 60"])
        .healthcheck(
            Healthcheck::shell("test -f /tmp/up")
                .interval(Duration::from_millis(200))
                .retries(50),
        )
        .wait_for(WaitFor::healthy())
        .start()
        .await?;
    assert!(begun.elapsed() >= Duration::from_secs(1));

    let begun = Instant::now();
    let err = Container::builder(image)
        .cmd(["sleep", "60"])
        .healthcheck(
            Healthcheck::cmd(["false"])
                .interval(Duration::from_millis(100))
                .retries(1),
        )
        .wait_for(WaitFor::healthy())
        .startup_timeout(Duration::from_secs(30))
        .start()
        .await
        .unwrap_err();
    assert!(
        begun.elapsed() < Duration::from_secs(15),
        "unhealthy should fail at once"
    );
    assert_eq!(not_ready(err).reason, NotReadyReason::Unhealthy);

    let err = Container::builder(image)
        .cmd(["sleep", "60"])
        .wait_for(WaitFor::healthy())
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no healthcheck"), "{err}");
    Ok(())
}

#[tokio::test]
async fn exit_code_command_duration_and_combinators() -> dockhand::Result<()> {
    let image = busybox().await?;
    let c = Container::builder(image)
        .cmd(["sh", "-c", "echo done; exit 0"])
        .wait_for(WaitFor::exit_code(0))
        .start()
        .await?;
    assert_eq!(c.inspect().await?.state.unwrap().exit_code, Some(0));

    let err = Container::builder(image)
        .cmd(["sh", "-c", "exit 4"])
        .wait_for(WaitFor::exit_code(0))
        .start()
        .await
        .unwrap_err();
    assert_eq!(
        not_ready(err).reason,
        NotReadyReason::WrongExitCode {
            expected: 0,
            actual: 4
        }
    );

    let begun = Instant::now();
    Container::builder(image)
        .cmd(["sh", "-c", "sleep 1; touch /tmp/ready; sleep 60"])
        .wait_for(WaitFor::command(["test", "-f", "/tmp/ready"]))
        .start()
        .await?;
    assert!(begun.elapsed() >= Duration::from_secs(1));

    let begun = Instant::now();
    Container::builder(image)
        .cmd(["sh", "-c", "echo fast; sleep 60"])
        .wait_for(WaitFor::any([
            WaitFor::log("fast").into(),
            WaitFor::duration(Duration::from_secs(20)),
        ]))
        .wait_for(WaitFor::all([
            WaitFor::duration(Duration::from_millis(300)),
            WaitFor::log("fast").into(),
        ]))
        .start()
        .await?;
    let waited = begun.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(15),
        "{waited:?}"
    );

    let err = Container::builder(image)
        .cmd(["sleep", "60"])
        .wait_for(WaitFor::command(["/no/such/probe"]))
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot run"), "{err}");
    Ok(())
}

/// Each run of this container counts itself in /tmp (which survives a restart)
/// and prints `ready-<run>` a second after it starts.
const COUNTED_RUNS: &str =
    "n=$(cat /tmp/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/n; sleep 1; echo ready-$n; exec sleep 300";

#[tokio::test]
async fn a_log_wait_after_restart_or_stop_start_waits_for_the_new_run() -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .cmd(["sh", "-c", COUNTED_RUNS])
        .init()
        .wait_for(WaitFor::log("ready-1"))
        .start()
        .await?;
    let limit = Duration::from_secs(20);

    c.restart().await?;
    c.wait_until(WaitFor::log("ready"), limit).await?;
    // The wait returned on the second run's line, not the first run's.
    assert!(
        c.logs().await?.stdout().contains("ready-2"),
        "{}",
        c.logs().await?.stdout()
    );

    c.stop().await?;
    c.start().await?;
    c.wait_until(WaitFor::log("ready"), limit).await?;
    assert!(
        c.logs().await?.stdout().contains("ready-3"),
        "{}",
        c.logs().await?.stdout()
    );
    Ok(())
}

#[tokio::test]
async fn protocol_waits_need_the_server_itself_to_answer() -> dockhand::Result<()> {
    // A listener that is not PostgreSQL (an HTTP server on 5432) never passes
    // a PostgreSQL wait, however open its port is.
    let err = Container::builder(busybox().await?)
        .cmd(["httpd", "-f", "-p", "5432"])
        .expose(5432)
        .wait_for(WaitFor::postgres(5432))
        .startup_timeout(Duration::from_secs(2))
        .start()
        .await
        .unwrap_err();
    let info = not_ready(err);
    assert_eq!(info.reason, NotReadyReason::TimedOut);
    assert_eq!(info.condition, "PostgreSQL to answer on port 5432/tcp");

    // A Redis that is still loading its dataset is not ready; once it answers
    // PONG, it is. (A stand-in speaking the protocol: the real server's
    // loading phase is too short to catch.)
    let c = Container::builder(busybox().await?)
        .cmd([
            "nc",
            "-ll",
            "-p",
            "6379",
            "-e",
            "sh",
            "-c",
            r#"read x; if [ -e /tmp/loaded ]; then printf '+PONG\r\n'; else printf '-LOADING Redis is loading the dataset in memory\r\n'; fi"#,
        ])
        .expose(6379)
        .wait_for(WaitFor::port(6379))
        .start()
        .await?;
    let ready = c.wait_until(WaitFor::redis(6379), Duration::from_secs(10));
    tokio::pin!(ready);
    let early = tokio::time::timeout(Duration::from_millis(500), &mut ready).await;
    assert!(early.is_err(), "a loading Redis counted as ready: {early:?}");
    c.exec(["touch", "/tmp/loaded"]).await?;
    ready.await?;
    Ok(())
}

#[tokio::test]
async fn a_protocol_wait_on_a_port_not_exposed_is_refused() {
    let err = Container::builder("fixtures/busybox:latest")
        .cmd(["sleep", "5"])
        .wait_for(WaitFor::mysql(3306))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    assert!(
        err.to_string().contains("MySQL to answer on port 3306/tcp")
            && err.to_string().contains(".expose(3306)"),
        "{err}"
    );
}
