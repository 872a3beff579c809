//! Containers against the real engine: start, ports, exec, logs, lifecycle,
//! limits, and the errors for bad input.

mod common;

use std::time::{Duration, Instant};

use common::{busybox, container_exists, containers_labelled, unique};
use dockhand::{Container, Error, Exec, LogSource, Port, RestartPolicy, WaitFor};

#[tokio::test]
async fn design_example_runs() -> dockhand::Result<()> {
    let web = Container::builder(busybox().await?)
        .cmd(["sh", "-c", "echo ready; httpd -f -p 8080"])
        .expose(8080)
        .wait_for(WaitFor::log("ready"))
        .start()
        .await?;
    let addr = web.address(8080)?;
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 8080);
    let out = web.exec(["echo", "hi"]).await?;
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout_str(), "hi\n");
    let labels = web.inspect().await?.config.unwrap().labels.unwrap();
    assert_eq!(labels["dockhand.managed"], "true");
    assert_eq!(labels["dockhand.session"], dockhand::session_id());
    assert_eq!(labels["dockhand.owner.pid"], std::process::id().to_string());
    Ok(())
}

#[tokio::test]
async fn ports_bind_loopback_only() -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .cmd(["sleep", "60"])
        .expose(8080)
        .expose(Port::udp(5353))
        .start()
        .await?;
    let inspected = c.inspect().await?;
    let ports = inspected.network_settings.unwrap().ports.unwrap();
    for key in ["8080/tcp", "5353/udp"] {
        let bindings = ports[key].clone().unwrap();
        assert!(
            bindings.iter().all(|b| b.host_ip.as_deref() == Some("127.0.0.1")),
            "{key}: {bindings:?}"
        );
    }
    assert!(c.host_port(Port::udp(5353))? > 0);
    Ok(())
}

#[tokio::test]
async fn unexposed_port_is_a_clear_error() -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .cmd(["sleep", "60"])
        .expose(8080)
        .start()
        .await?;
    let err = c.host_port(9090).unwrap_err();
    assert!(matches!(err, Error::PortNotExposed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("9090/tcp") && text.contains("8080/tcp") && text.contains(".expose(9090)"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn exec_keeps_streams_apart_and_takes_options() -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .cmd(["sleep", "60"])
        .start()
        .await?;
    let out = c.exec(["sh", "-c", "echo out; echo err >&2; exit 3"]).await?;
    assert_eq!(
        (
            out.exit_code,
            out.stdout_str().as_ref(),
            out.stderr_str().as_ref()
        ),
        (3, "out\n", "err\n")
    );

    let out = c
        .exec(
            Exec::new(["sh", "-c", "read line; echo \"$line $MODE $(pwd) $(id -u)\""])
                .stdin(b"fed\n".to_vec())
                .env("MODE", "test")
                .workdir("/tmp")
                .user("nobody"),
        )
        .await?;
    assert_eq!(out.stdout_str(), "fed test /tmp 65534\n");

    let missing = c.exec(["/no/such/program"]).await?;
    assert_ne!(missing.exit_code, 0);

    let begun = Instant::now();
    let err = c
        .exec(Exec::new(["sleep", "30"]).timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(begun.elapsed() < Duration::from_secs(10));
    Ok(())
}

#[tokio::test]
async fn logs_snapshot_and_stream() -> dockhand::Result<()> {
    // Docker orders the two streams by when it read them, so each write waits
    // until the test has seen the one before (a line the test writes to a
    // fifo). The shell holds the fifo open for reading and writing: reopened
    // per read, it could still see the last writer, read end-of-file and go on
    // without the test, leaving the next writer blocked for good.
    let c = Container::builder(busybox().await?)
        .cmd([
            "sh",
            "-c",
            "mkfifo /tmp/go; exec 3<>/tmp/go; echo one; read x <&3; echo two >&2; read x <&3; echo three; exec sleep 60",
        ])
        .wait_for(WaitFor::log("one"))
        .start()
        .await?;
    for next in ["two", "three"] {
        let go = dockhand::Exec::new(["sh", "-c", "echo > /tmp/go"]).timeout(Duration::from_secs(10));
        assert_eq!(c.exec(go).await?.exit_code, 0);
        c.wait_until(WaitFor::log(next), Duration::from_secs(10)).await?;
    }
    let logs = c.logs().await?;
    assert_eq!(logs.stdout(), "one\nthree\n");
    assert_eq!(logs.stderr(), "two\n");
    assert_eq!(logs.all(), "one\ntwo\nthree\n");

    let mut stream = c.log_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next_line())
        .await
        .unwrap()
        .unwrap()?;
    assert_eq!((first.source, first.text.as_str()), (LogSource::Stdout, "one"));
    // The stream follows: output written later still arrives.
    c.exec(["sh", "-c", "echo later > /proc/1/fd/1"]).await?;
    let mut seen = Vec::new();
    while let Some(line) = tokio::time::timeout(Duration::from_secs(10), stream.next_line())
        .await
        .unwrap()
    {
        let line = line?;
        seen.push(line.text.clone());
        if line.text == "later" {
            break;
        }
    }
    assert_eq!(seen, ["two", "three", "later"]);
    Ok(())
}

#[tokio::test]
async fn lifecycle_stop_start_restart_pause_kill() -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .cmd(["httpd", "-f", "-p", "8080"])
        .expose(8080)
        .init()
        .stop_timeout(Duration::from_secs(2))
        .wait_for(WaitFor::port(8080))
        .start()
        .await?;
    let running = |i: bollard::models::ContainerInspectResponse| i.state.unwrap().running.unwrap();

    c.stop().await?;
    assert!(!running(c.inspect().await?));
    c.start().await?;
    c.wait_until(WaitFor::port(8080), Duration::from_secs(20)).await?;
    assert!(running(c.inspect().await?));

    c.restart().await?;
    // Ports are re-read after a restart; the cached one must be the live one.
    let live = c.inspect().await?.network_settings.unwrap().ports.unwrap()["8080/tcp"]
        .clone()
        .unwrap();
    assert_eq!(
        live[0].host_port.as_deref(),
        Some(c.host_port(8080)?.to_string().as_str())
    );
    c.wait_until(WaitFor::http(8080).status(404), Duration::from_secs(20))
        .await?;

    c.pause().await?;
    assert_eq!(c.inspect().await?.state.unwrap().paused, Some(true));
    c.unpause().await?;

    c.kill("SIGKILL").await?;
    let state = c.inspect().await?.state.unwrap();
    assert_eq!((state.running, state.exit_code), (Some(false), Some(137)));
    Ok(())
}

#[tokio::test]
async fn remove_is_awaited_and_keep_disarms() -> dockhand::Result<()> {
    let image = busybox().await?;
    let c = Container::builder(image).cmd(["sleep", "60"]).start().await?;
    let id = c.id().to_string();
    c.remove().await?;
    assert!(!container_exists(&id));

    let kept = Container::builder(image).cmd(["sleep", "60"]).start().await?;
    let name = kept.name().to_string();
    let id = kept.keep();
    // Once the worker has done everything it was handed, the kept one is there.
    common::settle();
    assert!(container_exists(&id), "keep() did not disarm the guard");
    // Clean up what keep() left, through the CLI as a user would.
    std::process::Command::new("docker")
        .args(["rm", "-f", &name])
        .output()
        .unwrap();
    assert!(!container_exists(&id));
    Ok(())
}

#[tokio::test]
async fn limits_and_settings_reach_the_engine() -> dockhand::Result<()> {
    let name = unique("limits");
    let c = Container::builder(busybox().await?)
        .name(&name)
        .cmd(["sleep", "60"])
        .memory("64m")
        .cpus("500m")
        .hostname("db-host")
        .cap_drop("NET_RAW")
        .label("team", "core")
        .tmpfs("/scratch", "size=8m")
        .copy_file("/etc/app/config.txt", b"answer=42\n".to_vec(), 0o600)
        .start()
        .await?;
    assert_eq!(c.name(), name);
    let inspected = c.inspect().await?;
    let hc = inspected.host_config.unwrap();
    assert_eq!(hc.memory, Some(64 << 20));
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(c.exec(["hostname"]).await?.stdout_str(), "db-host\n");
    let file = c.exec(["stat", "-c", "%a %s", "/etc/app/config.txt"]).await?;
    assert_eq!(file.stdout_str(), "600 10\n");
    assert_eq!(
        c.exec(["cat", "/etc/app/config.txt"]).await?.stdout_str(),
        "answer=42\n"
    );
    let mounts = c.exec(["sh", "-c", "grep /scratch /proc/mounts"]).await?;
    assert!(mounts.stdout_str().contains("tmpfs"), "{}", mounts.stdout_str());
    Ok(())
}

#[tokio::test]
async fn restart_policy_is_applied_by_the_engine() -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .cmd(["sh", "-c", "echo run; exit 3"])
        .restart(RestartPolicy::OnFailure { max_retries: 2 })
        .start()
        .await?;
    let policy = c.inspect().await?.host_config.unwrap().restart_policy.unwrap();
    assert_eq!(policy.maximum_retry_count, Some(2));
    // The engine restarts it twice, then leaves it exited with its code.
    let begun = std::time::Instant::now();
    loop {
        let inspected = c.inspect().await?;
        let state = inspected.state.unwrap();
        let settled = state.running == Some(false) && state.restarting == Some(false);
        if inspected.restart_count == Some(2) && settled {
            assert_eq!(state.exit_code, Some(3));
            break;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(30),
            "restarts: {:?}",
            inspected.restart_count
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.logs().await?.stdout(), "run\nrun\nrun\n");
    Ok(())
}

#[tokio::test]
async fn invalid_input_fails_before_anything_is_created() -> dockhand::Result<()> {
    let image = busybox().await?;
    for (builder, expect) in [
        (Container::builder(""), "image name is empty"),
        (Container::builder(image).expose(0), "port 0"),
        (Container::builder(image).memory("12 parsecs"), "memory"),
        (Container::builder(image).cpus("many"), "cpus"),
        (
            Container::builder(image).wait_for(WaitFor::port(5432)),
            ".expose(5432)",
        ),
    ] {
        let name = unique("invalid");
        let err = builder.name(&name).start().await.unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
        assert!(err.to_string().contains(expect), "{err}");
        assert!(!container_exists(&name), "{name} was created");
    }
    Ok(())
}

#[tokio::test]
async fn missing_image_fails_fast_with_its_name() {
    let begun = Instant::now();
    let err = Container::builder("dockhand-test/does-not-exist:1.0")
        .cmd(["true"])
        .start()
        .await
        .unwrap_err();
    // Which depends on the machine: no registry here (unreachable), Docker Hub
    // elsewhere (it answers "denied" for a repository that does not exist).
    assert!(
        err.is_not_found() || err.is_auth() || matches!(err, Error::RegistryUnreachable { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("dockhand-test/does-not-exist:1.0"),
        "{err}"
    );
    assert!(
        begun.elapsed() < Duration::from_secs(30),
        "took {:?}",
        begun.elapsed()
    );
}

#[tokio::test]
async fn failed_start_leaves_nothing() -> dockhand::Result<()> {
    let tag = unique("failed-start");
    let err = Container::builder(busybox().await?)
        .entrypoint(["/no/such/entrypoint"])
        .label("dockhand-test", &tag)
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine {
                operation: "start",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("/no/such/entrypoint"), "{err}");
    assert!(containers_labelled("dockhand-test", &tag).is_empty());
    Ok(())
}
