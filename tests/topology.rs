//! Networks and volumes: containers reaching each other by alias, data shared
//! through volumes, and guards that remove them in the right order.

mod common;

use std::time::Duration;

use common::{busybox, object_exists, settle};
use dockhand::{Container, Mount, Network, Volume, WaitFor};

/// A busybox web server answering `body` on port 8080.
async fn web(net: &Network, alias: &str, body: &str) -> dockhand::Result<Container> {
    Container::builder(busybox().await?)
        .cmd([
            "sh",
            "-c",
            "mkdir -p /www && echo \"$BODY\" > /www/index.html && httpd -f -p 8080 -h /www",
        ])
        .env("BODY", body)
        .network_alias(net, alias)
        .wait_for(WaitFor::command([
            "wget",
            "-q",
            "-O",
            "-",
            "http://127.0.0.1:8080/",
        ]))
        .start()
        .await
}

async fn client(net: &Network) -> dockhand::Result<Container> {
    Container::builder(busybox().await?)
        .cmd(["sleep", "120"])
        .network(net)
        .start()
        .await
}

async fn fetch(from: &Container, url: &str) -> dockhand::Result<dockhand::ExecOutput> {
    from.exec(["timeout", "3", "wget", "-q", "-O", "-", url]).await
}

/// The first answer `from` gets at `url`, tried again while the fetch fails
/// for up to 20 s: an engine sets up a network's name service after the
/// container starts (Podman's aardvark-dns reloads in the background, and
/// the burner CI run saw a first fetch on a second network get nothing).
/// What comes back is the first answer, so a wrong one still fails the test.
async fn reach(from: &Container, url: &str) -> dockhand::Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = fetch(from, url).await?;
        if out.exit_code == 0 {
            return Ok(out.stdout_str().into_owned());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never answered {url} within 20 s: exit {}, {}",
            from.name(),
            out.exit_code,
            out.stderr_str()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn containers_reach_each_other_by_alias() -> dockhand::Result<()> {
    let net = Network::builder().create().await?;
    let _server = web(&net, "web", "hello over the network").await?;
    let c = client(&net).await?;
    assert_eq!(reach(&c, "http://web:8080/").await?, "hello over the network\n");
    Ok(())
}

#[tokio::test]
async fn same_alias_on_separate_networks_does_not_interfere() -> dockhand::Result<()> {
    let (a, b) = (
        Network::builder().create().await?,
        Network::builder().create().await?,
    );
    let (_db_a, _db_b) = tokio::try_join!(web(&a, "db", "I am A"), web(&b, "db", "I am B"))?;
    let (ca, cb) = tokio::try_join!(client(&a), client(&b))?;
    assert_eq!(reach(&ca, "http://db:8080/").await?, "I am A\n");
    assert_eq!(reach(&cb, "http://db:8080/").await?, "I am B\n");
    Ok(())
}

#[tokio::test]
async fn several_networks_and_runtime_connect() -> dockhand::Result<()> {
    // Internal on Docker; on Podman (netavark) here an internal network
    // passes no traffic at all, even between its own members.
    let podman = dockhand::Engine::connect().await?.kind() == dockhand::EngineKind::Podman;
    let back = match podman {
        true => Network::builder(),
        false => Network::builder().internal(),
    };
    let (front, back) = (Network::builder().create().await?, back.create().await?);
    let _api = web(&back, "api", "backend").await?;
    // A proxy on both networks, the second joined at create time too.
    let proxy = Container::builder(busybox().await?)
        .cmd(["sleep", "120"])
        .network_alias(&front, "proxy")
        .network(&back)
        .start()
        .await?;
    assert_eq!(reach(&proxy, "http://api:8080/").await?, "backend\n");
    let inspected = proxy.inspect().await?;
    let joined = inspected.network_settings.unwrap().networks.unwrap();
    assert!(
        joined.contains_key(front.name()) && joined.contains_key(back.name()),
        "{joined:?}"
    );

    // A client on the front network cannot see the API until it joins the back one.
    let c = client(&front).await?;
    assert_ne!(fetch(&c, "http://api:8080/").await?.exit_code, 0);
    c.connect(&back, &["late"]).await?;
    assert_eq!(reach(&c, "http://api:8080/").await?, "backend\n");
    Ok(())
}

#[tokio::test]
async fn network_outlives_its_containers_whatever_the_drop_order() -> dockhand::Result<()> {
    let net = Network::builder().create().await?;
    let name = net.name().to_string();
    let server = web(&net, "web", "x").await?;
    // The guard goes first: the network must stay while the container uses it.
    drop(net);
    settle();
    assert!(
        object_exists("network", &name),
        "network removed under a live container"
    );
    let c = client(&Network::builder().create().await?).await?;
    drop(c);
    drop(server);
    settle();
    assert!(
        !object_exists("network", &name),
        "network left after its last container"
    );
    Ok(())
}

#[tokio::test]
async fn volume_shares_data_and_survives_restart() -> dockhand::Result<()> {
    let image = busybox().await?;
    let data = Volume::builder().label("purpose", "test").create().await?;
    let name = data.name().to_string();
    Container::builder(image)
        .cmd(["sh", "-c", "echo persisted > /data/file"])
        .mount(Mount::volume(&data, "/data"))
        .wait_for(WaitFor::exit_code(0))
        .start()
        .await?;
    let reader = Container::builder(image)
        .cmd(["sleep", "120"])
        .mount(Mount::volume(&data, "/data"))
        .mount(Mount::tmpfs("/scratch").size("8m"))
        .init()
        .stop_timeout(Duration::from_secs(1))
        .start()
        .await?;
    assert_eq!(
        reader.exec(["cat", "/data/file"]).await?.stdout_str(),
        "persisted\n"
    );
    reader
        .exec(["sh", "-c", "echo more >> /data/file; echo temp > /scratch/t"])
        .await?;
    reader.restart().await?;
    assert_eq!(
        reader.exec(["cat", "/data/file"]).await?.stdout_str(),
        "persisted\nmore\n"
    );
    let scratch = reader.exec(["ls", "-A", "/scratch"]).await?;
    assert_eq!(scratch.stdout_str(), "", "tmpfs should be empty after a restart");

    drop(data);
    settle();
    assert!(
        object_exists("volume", &name),
        "volume removed while containers use it"
    );
    drop(reader);
    // The writer guard is already gone (dropped at the end of its statement).
    settle();
    assert!(
        !object_exists("volume", &name),
        "volume left after its last container"
    );
    Ok(())
}

#[tokio::test]
async fn read_only_bind_refuses_writes() -> dockhand::Result<()> {
    let dir = std::env::temp_dir().join(common::unique("bind"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("seed.txt"), b"from the host\n").unwrap();
    let c = Container::builder(busybox().await?)
        .cmd(["sleep", "120"])
        .mount(Mount::bind(dir.to_str().unwrap(), "/ro").read_only())
        .start()
        .await;
    let c = match c {
        Ok(c) => c,
        Err(e) => {
            std::fs::remove_dir_all(&dir).ok();
            return Err(e);
        }
    };
    let read = c.exec(["cat", "/ro/seed.txt"]).await?;
    let write = c.exec(["touch", "/ro/new"]).await?;
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(read.stdout_str(), "from the host\n");
    assert_ne!(write.exit_code, 0);
    assert!(write.stderr_str().contains("Read-only"), "{}", write.stderr_str());
    Ok(())
}
