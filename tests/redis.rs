//! The Redis module, used through the `redis` crate as users do, on the
//! `fixtures/redis:7` image (no registry here).

mod common;

use std::time::Duration;

use common::redis as redis_image;
use dockhand::modules::{Redis, SharedRedis};
use redis::AsyncCommands;

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("redis url");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis")
}

#[tokio::test]
async fn password_is_required_and_data_round_trips() -> dockhand::Result<()> {
    let server = Redis::new()
        .image(redis_image().await?)
        .password("s3cret")
        .start()
        .await?;
    let url = server.connection_string();
    assert!(
        url.starts_with("redis://:s3cret@127.0.0.1:") && url.ends_with("/0"),
        "{url}"
    );

    let mut con = connection(&url).await;
    let () = con.set("greeting", "hello").await.unwrap();
    let got: String = con.get("greeting").await.unwrap();
    assert_eq!(got, "hello");

    // Without the password the server refuses commands.
    let anonymous = format!("redis://{}:{}/0", server.host(), server.port());
    let client = redis::Client::open(anonymous.as_str()).unwrap();
    let refused = match client.get_multiplexed_async_connection().await {
        Ok(mut con) => con.get::<_, Option<String>>("greeting").await.err(),
        Err(e) => Some(e),
    };
    let err = refused.expect("commands without the password must fail");
    assert!(
        err.to_string().contains("NOAUTH") || err.to_string().contains("Authentication"),
        "{err}"
    );
    Ok(())
}

static REDIS: SharedRedis = SharedRedis::new(|| Redis::new().image(common::REDIS));

#[tokio::test]
async fn shared_server_hands_out_private_flushed_databases() -> dockhand::Result<()> {
    redis_image().await?; // the fixture exists before the shared server starts
    let (a, b) = (REDIS.fresh_database().await?, REDIS.fresh_database().await?);
    assert_ne!(a.index(), b.index());
    let (mut ca, mut cb) = (
        connection(a.connection_string()).await,
        connection(b.connection_string()).await,
    );
    let () = ca.set("key", "a's").await.unwrap();
    let in_b: Option<String> = cb.get("key").await.unwrap();
    assert_eq!(in_b, None, "databases must not share keys");

    // A returned database is flushed before anyone gets it again.
    let index = a.index();
    drop(ca);
    drop(a);
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(30)));
    let server = REDIS.server().await?;
    let url = format!("redis://{}:{}/{index}", server.host(), server.port());
    let mut check = connection(&url).await;
    let left: Option<String> = check.get("key").await.unwrap();
    assert_eq!(left, None);
    Ok(())
}

#[tokio::test]
async fn any_password_survives_the_connection_string() -> dockhand::Result<()> {
    let password = "p@ss:w/rd%#?";
    let server = Redis::new()
        .image(redis_image().await?)
        .password(password)
        .start()
        .await?;
    let mut con = connection(&server.connection_string()).await;
    let () = con.set("k", "v").await.unwrap();
    let db = server.fresh_database()?;
    let mut con = connection(db.connection_string()).await;
    let got: Option<String> = con.get("k").await.unwrap();
    assert_eq!(got, None, "a fresh logical database is empty");
    Ok(())
}

const TAG: &str = "DOCKHAND_TEST_TAG";

/// The child: claims a database on the run's shared server, writes a key into
/// it, prints `READY <index>`, and holds it until killed or its stdin closes.
#[tokio::test]
#[ignore = "child process of the cross-process Redis test"]
async fn child_holds_a_database() -> dockhand::Result<()> {
    std::env::var(TAG).expect("started by its parent test, which sets DOCKHAND_TEST_TAG");
    let db = REDIS.fresh_database().await?;
    let mut con = connection(db.connection_string()).await;
    let () = con.set("owner", std::process::id()).await.unwrap();
    println!("READY {}", db.index());
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await
    .unwrap();
    Ok(())
}

fn spawn_holder() -> (std::process::Child, u32) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_holds_a_database", "--ignored", "--nocapture"])
        .env(TAG, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let index = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("READY ").and_then(|(_, i)| i.trim().parse().ok()))
        .unwrap_or_else(|| panic!("the child ended before it was ready: {:?}", child.wait()));
    std::thread::spawn(move || lines.for_each(drop));
    (child, index)
}

#[tokio::test]
async fn processes_never_share_a_database_and_a_killed_ones_is_flushed_before_reuse() -> dockhand::Result<()>
{
    redis_image().await?;
    let server = REDIS.server().await?;
    let (mut first, a) = tokio::task::spawn_blocking(spawn_holder).await.unwrap();
    let (mut second, b) = tokio::task::spawn_blocking(spawn_holder).await.unwrap();
    assert_ne!(a, b, "two live processes were handed the same logical database");
    let mine: Vec<_> = (0..4).map(|_| REDIS.fresh_database()).collect::<Vec<_>>();
    let mut held = Vec::new();
    for db in mine {
        let db = db.await?;
        assert!(
            db.index() != a && db.index() != b,
            "handed out a database another process holds"
        );
        held.push(db);
    }

    // Killed before it could flush: its database holds its key, yet whoever
    // is handed that database next finds it empty.
    first.kill().unwrap();
    first.wait().unwrap();
    let url = |index: u32| format!("redis://{}:{}/{index}", server.host(), server.port());
    let left: Option<u32> = connection(&url(a)).await.get("owner").await.unwrap();
    assert!(left.is_some(), "the killed child's key should still be there");
    let reclaimed = loop {
        let db = REDIS.fresh_database().await?;
        if db.index() == a {
            break db;
        }
        held.push(db);
        assert!(held.len() < 255, "database {a} was never handed out again");
    };
    let size: u64 = redis::cmd("DBSIZE")
        .query_async(&mut connection(reclaimed.connection_string()).await)
        .await
        .unwrap();
    assert_eq!(
        size, 0,
        "a killed process's database was handed out with its data"
    );
    second.kill().unwrap();
    second.wait().unwrap();
    Ok(())
}
