//! Faults for testing distributed systems, each proven from the outside: pause,
//! partition, kill with a signal.

mod common;

use std::time::Duration;

use common::busybox;
use dockhand::{Container, Network, WaitFor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ANSWER: Duration = Duration::from_secs(10);
const NO_ANSWER: Duration = Duration::from_millis(1500);

/// GET / through the published port, within `limit`: short where no answer
/// is expected, long where one is (a loaded machine may take seconds).
async fn answers(addr: std::net::SocketAddr, limit: Duration) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(buf.starts_with(b"HTTP/"))
    };
    matches!(tokio::time::timeout(limit, attempt).await, Ok(Some(true)))
}

#[tokio::test]
async fn paused_server_stops_answering_until_unpaused() -> dockhand::Result<()> {
    let server = Container::builder(busybox().await?)
        .cmd([
            "sh",
            "-c",
            "mkdir -p /www && echo up > /www/index.html && httpd -f -p 8080 -h /www",
        ])
        .expose(8080)
        .wait_for(WaitFor::http(8080))
        .start()
        .await?;
    let addr = server.address(8080)?;
    assert!(answers(addr, ANSWER).await);
    server.pause().await?;
    assert!(!answers(addr, NO_ANSWER).await, "a paused server answered");
    server.unpause().await?;
    assert!(answers(addr, ANSWER).await, "no answer after unpause");
    Ok(())
}

/// True when one fetch of `url` from `from` succeeds within 3 s: for a cut
/// that must hold.
async fn reach(from: &Container, url: &str) -> dockhand::Result<bool> {
    let out = from.exec(["timeout", "3", "wget", "-q", "-O", "-", url]).await?;
    Ok(out.success())
}

/// True when a fetch of `url` from `from` succeeds within 20 s of tries: a
/// healed link may take a moment (name resolution, neighbour tables) on a
/// loaded machine, and one try would call that a failed heal.
async fn reaches_again(from: &Container, url: &str) -> dockhand::Result<bool> {
    let fetch = WaitFor::command(["timeout", "3", "wget", "-q", "-O", "-", url]);
    match from.wait_until(fetch, Duration::from_secs(20)).await {
        Ok(()) => Ok(true),
        Err(dockhand::Error::NotReady(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

#[tokio::test]
async fn partition_cuts_a_node_off_and_healing_restores_it() -> dockhand::Result<()> {
    let net = Network::builder().create().await?;
    let image = busybox().await?;
    let peer = Container::builder(image)
        .cmd([
            "sh",
            "-c",
            "mkdir -p /www && echo peer > /www/index.html && httpd -f -p 8080 -h /www",
        ])
        .network_alias(&net, "peer")
        .start()
        .await?;
    let node = Container::builder(image)
        .cmd(["sleep", "120"])
        .network_alias(&net, "node")
        .start()
        .await?;
    node.wait_until(
        WaitFor::command(["wget", "-q", "-O", "-", "http://peer:8080/"]),
        Duration::from_secs(20),
    )
    .await?;

    node.disconnect(&net).await?;
    assert!(
        !reach(&node, "http://peer:8080/").await?,
        "partitioned node still reaches its peer"
    );

    node.connect(&net, &["node"]).await?;
    assert!(
        reaches_again(&node, "http://peer:8080/").await?,
        "healed node cannot reach its peer"
    );
    // The alias was given again on reconnect: the peer resolves the node.
    let back = peer.exec(["nslookup", "node"]).await?;
    assert!(back.success(), "{}", back.stdout_str());
    Ok(())
}

#[tokio::test]
async fn kill_delivers_the_signal() -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .cmd([
            "sh",
            "-c",
            "trap 'echo got HUP' HUP; echo armed; while true; do sleep 0.1; done",
        ])
        .wait_for(WaitFor::log("armed"))
        .start()
        .await?;
    c.kill("SIGHUP").await?;
    c.wait_until(WaitFor::log("got HUP"), Duration::from_secs(10))
        .await?;
    c.kill("SIGKILL").await?;
    c.wait_until(WaitFor::exit_code(137), Duration::from_secs(10))
        .await?;
    Ok(())
}

#[tokio::test]
async fn healing_without_aliases_gives_the_old_ones_back() -> dockhand::Result<()> {
    let net = Network::builder().create().await?;
    let late = Network::builder().create().await?;
    let image = busybox().await?;
    let server = Container::builder(image)
        .cmd([
            "sh",
            "-c",
            "mkdir -p /www && echo up > /www/index.html && httpd -f -p 8080 -h /www",
        ])
        .network_alias(&net, "db")
        .start()
        .await?;
    server.connect(&late, &["cache"]).await?;
    let client = Container::builder(image)
        .cmd(["sleep", "120"])
        .network(&net)
        .start()
        .await?;
    client.connect(&late, &[]).await?;
    for url in ["http://db:8080/", "http://cache:8080/"] {
        client
            .wait_until(
                WaitFor::command(["wget", "-q", "-O", "-", url]),
                Duration::from_secs(20),
            )
            .await?;
    }

    // Both networks: the one joined at create time, the one joined later.
    server.disconnect(&net).await?;
    server.disconnect(&late).await?;
    assert!(
        !reach(&client, "http://db:8080/").await?,
        "the partition did not cut"
    );
    server.connect(&net, &[]).await?;
    server.connect(&late, &[]).await?;
    assert!(
        reaches_again(&client, "http://db:8080/").await?,
        "the alias given at create time was lost"
    );
    assert!(
        reaches_again(&client, "http://cache:8080/").await?,
        "the alias given on connect was lost"
    );
    Ok(())
}
