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
