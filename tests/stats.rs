//! Resource readings of real containers: figures that move with what the
//! container does.

mod common;

use std::time::{Duration, Instant};

use common::{busybox, unique};
use dockhand::{Container, Error, Network, WaitFor};
use futures_util::StreamExt;

const MIB: u64 = 1 << 20;

#[tokio::test]
async fn a_busy_container_shows_its_cpu() -> dockhand::Result<()> {
    let image = busybox().await?;
    // Four burners ask for four CPUs. On a loaded 2-core machine (CI runs
    // the parallel suite beside two CPU burners of its own) the container's
    // cgroup competes with every other runnable task and got 40% of a CPU
    // once: the figure must be well above nothing and far above the idle one.
    let busy = Container::builder(image)
        .cmd(["sh", "-c", "for i in 1 2 3 4; do yes > /dev/null & done; wait"])
        .start()
        .await?;
    let idle = Container::builder(image).cmd(["sleep", "60"]).start().await?;
    let (busy_stats, idle_stats) = tokio::try_join!(busy.stats(), idle.stats())?;
    assert!(busy_stats.cpu_percent > 20.0, "{busy_stats:?}");
    assert!(idle_stats.cpu_percent < 10.0, "{idle_stats:?}");
    assert!(
        busy_stats.cpu_percent > 5.0 * idle_stats.cpu_percent.max(1.0),
        "busy {busy_stats:?}, idle {idle_stats:?}"
    );
    assert!(busy_stats.online_cpus >= 1);
    assert!(busy_stats.pids >= 5, "sh and four yes: {busy_stats:?}");
    Ok(())
}

#[tokio::test]
async fn memory_grows_with_a_filled_tmpfs_and_the_limit_shows() -> dockhand::Result<()> {
    let image = busybox().await?;
    let c = Container::builder(image)
        .cmd(["sleep", "60"])
        .memory("64m")
        .tmpfs("/fill", "size=48m")
        .start()
        .await?;
    let before = c.stats().await?;
    assert_eq!(before.memory_limit, 64 * MIB, "{before:?}");
    let out = c
        .exec(["dd", "if=/dev/zero", "of=/fill/blob", "bs=1M", "count=32"])
        .await?;
    assert_eq!(out.exit_code, 0, "{}", out.stderr_str());
    let after = c.stats().await?;
    assert!(
        after.memory_used >= before.memory_used + 24 * MIB,
        "before {} after {}",
        before.memory_used,
        after.memory_used
    );
    assert!(after.memory_percent() > 35.0, "{after:?}");
    Ok(())
}

#[tokio::test]
async fn bytes_sent_over_a_network_show_in_rx_and_tx() -> dockhand::Result<()> {
    let image = busybox().await?;
    let net = Network::builder().create().await?;
    let alias = unique("srv");
    let server = Container::builder(image)
        .cmd(["httpd", "-f", "-p", "8080", "-h", "/www"])
        .copy_file("/www/big", vec![b'x'; 2 * MIB as usize], 0o644)
        .network_alias(&net, &alias)
        .start()
        .await?;
    let client = Container::builder(image)
        .cmd(["sleep", "60"])
        .network(&net)
        .start()
        .await?;
    let (server_before, client_before) = tokio::try_join!(server.stats(), client.stats())?;
    let url = format!("http://{alias}:8080/big");
    let out = client
        .exec(["sh", "-c", &format!("timeout 10 wget -q -O - {url} | wc -c")])
        .await?;
    assert_eq!(
        out.stdout_str().trim(),
        (2 * MIB).to_string(),
        "{}",
        out.stderr_str()
    );
    let (server_after, client_after) = tokio::try_join!(server.stats(), client.stats())?;
    let received = client_after.rx_bytes() - client_before.rx_bytes();
    let sent = server_after.tx_bytes() - server_before.tx_bytes();
    assert!(
        received >= 2 * MIB,
        "client received {received}: {client_after:?}"
    );
    assert!(sent >= 2 * MIB, "server sent {sent}: {server_after:?}");
    assert!(client_after.networks.contains_key("eth0"), "{client_after:?}");
    Ok(())
}

#[tokio::test]
async fn a_stopped_or_removed_container_gives_an_error_not_zeros() -> dockhand::Result<()> {
    let image = busybox().await?;
    let c = Container::builder(image).cmd(["sleep", "60"]).start().await?;
    c.kill("SIGKILL").await?;
    match c.stats().await {
        Err(Error::NotRunning { resource, state, .. }) => {
            assert!(resource.contains(c.name()), "{resource}");
            assert!(state.contains("137"), "{state}");
        }
        other => panic!("stats of a stopped container: {other:?}"),
    }
    assert!(matches!(c.stats_stream().await, Err(Error::NotRunning { .. })));
    let gone = Container::builder(image).cmd(["sleep", "60"]).start().await?;
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", gone.id()])
        .output();
    let err = gone.stats().await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    Ok(())
}

#[tokio::test]
async fn the_stream_reads_once_a_second_and_ends_when_the_container_stops() -> dockhand::Result<()> {
    let image = busybox().await?;
    let c = Container::builder(image)
        .cmd(["sh", "-c", "echo up; yes > /dev/null & yes > /dev/null & wait"])
        .wait_for(WaitFor::log("up"))
        .start()
        .await?;
    let mut readings = c.stats_stream().await?;
    let first = readings.next().await.expect("a reading")?;
    let at = Instant::now();
    let second = readings.next().await.expect("a second reading")?;
    let gap = at.elapsed();
    assert!(
        gap > Duration::from_millis(500) && gap < Duration::from_secs(5),
        "{gap:?}"
    );
    // The point is that the first reading is measured, not an invented 0 %;
    // how much CPU the burner gets depends on the machine's load.
    for stats in [&first, &second] {
        assert!(
            stats.cpu_percent > 10.0,
            "no invented 0 % first reading: {stats:?}"
        );
    }
    c.kill("SIGKILL").await?;
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match readings.next().await {
                Some(Ok(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream ends after the container stops");
    assert!(matches!(end, Some(Err(Error::NotRunning { .. }))), "{end:?}");
    assert!(readings.next().await.is_none());
    Ok(())
}
