//! The NATS module, used through `async-nats` as users do, on the
//! `fixtures/nats:2` image (no registry here).

mod common;

use common::nats as nats_image;
use dockhand::modules::{Nats, SharedNats};
use futures_util::StreamExt;

static SHARED: SharedNats = SharedNats::new(|| Nats::new().image(common::NATS));

#[tokio::test]
async fn publish_subscribe_and_request_reply() -> dockhand::Result<()> {
    let server = Nats::new().image(nats_image().await?).start().await?;
    let url = server.connection_string();
    assert!(url.starts_with("nats://127.0.0.1:"), "{url}");
    let client = async_nats::connect(&url).await.expect("connect");

    let mut orders = client.subscribe("orders").await.unwrap();
    client.publish("orders", "widget".into()).await.unwrap();
    let message = orders.next().await.expect("a message");
    assert_eq!(&message.payload[..], b"widget");

    let mut service = client.subscribe("echo").await.unwrap();
    let responder = client.clone();
    tokio::spawn(async move {
        while let Some(request) = service.next().await {
            if let Some(reply) = request.reply {
                responder.publish(reply, request.payload).await.unwrap();
            }
        }
    });
    let answer = client.request("echo", "ping".into()).await.unwrap();
    assert_eq!(&answer.payload[..], b"ping");
    Ok(())
}

#[tokio::test]
async fn credentials_are_required() -> dockhand::Result<()> {
    let (user, password) = ("app@team", "p@ss:w/rd%");
    let server = Nats::new()
        .image(nats_image().await?)
        .user(user, password)
        .start()
        .await?;
    assert_eq!(server.credentials(), Some((user, password)));
    assert!(
        server
            .connection_string()
            .starts_with("nats://app%40team:p%40ss%3Aw%2Frd%25@127.0.0.1:"),
        "{}",
        server.connection_string()
    );
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        .connect(server.address())
        .await
        .expect("connect with the module's credentials");
    client.publish("x", "y".into()).await.unwrap();
    client.flush().await.unwrap();

    let refused = async_nats::ConnectOptions::with_user_and_password(user.into(), "wrong".into())
        .connect(server.address())
        .await;
    assert!(refused.is_err(), "a client with a wrong password was served");
    Ok(())
}

#[tokio::test]
async fn shared_server_is_one_for_the_run() -> dockhand::Result<()> {
    nats_image().await?;
    let a = SHARED.server().await?;
    let b = SHARED.server().await?;
    assert_eq!(a.container().id(), b.container().id());
    let client = async_nats::connect(a.connection_string()).await.expect("connect");
    client.flush().await.unwrap();
    Ok(())
}
