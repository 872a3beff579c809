//! Every kind of guard follows one policy: removing an object that is already
//! gone is done, not an error; a removal the engine refuses is an engine error
//! naming the object.

mod common;

use std::process::Command;

use common::{busybox, object_exists, unique};
use dockhand::{BuildContext, Container, Network, Volume};

fn docker(args: &[&str]) {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn removing_what_is_already_gone_is_done_for_every_kind() -> dockhand::Result<()> {
    let net = Network::builder().create().await?;
    let vol = Volume::builder().create().await?;
    let container = Container::builder(busybox().await?)
        .cmd(["sleep", "60"])
        .start()
        .await?;
    let tag = format!("dockhand-test/{}:latest", unique("gone"));
    let image = BuildContext::new("FROM scratch\nCOPY f /f\n")
        .file("f", tag.clone().into_bytes(), 0o644)
        .build(&tag)
        .await?;

    docker(&["rm", "-f", container.id()]);
    docker(&["network", "rm", net.id()]);
    docker(&["volume", "rm", vol.name()]);
    docker(&["rmi", "-f", image.id()]);

    container.remove().await?;
    net.remove().await?;
    vol.remove().await?;
    image.remove().await?;
    Ok(())
}

#[tokio::test]
async fn a_refused_removal_is_an_engine_error_naming_the_object() -> dockhand::Result<()> {
    // The engine refuses to delete an image that a running container uses, even
    // forced; the removal waits out its in-use patience (10 s), then reports.
    let tag = format!("dockhand-test/{}:latest", unique("inuse"));
    busybox().await?;
    let image = BuildContext::new("FROM fixtures/busybox:latest\nCOPY f /f\n")
        .file("f", tag.clone().into_bytes(), 0o644)
        .build(&tag)
        .await?;
    let user = Container::builder(image.id())
        .cmd(["sleep", "60"])
        .start()
        .await?;
    let err = image.remove().await.expect_err("an image in use is refused");
    let text = err.to_string();
    assert!(matches!(err, dockhand::Error::Engine { .. }), "{err:?}");
    assert!(text.starts_with(&format!("remove image {tag}")), "{text}");
    // The answer is named for the engine that gave it.
    let kind = dockhand::Engine::connect().await?.kind();
    assert!(text.contains(&format!("{kind} answered 409")), "{text}");
    // The guard stayed armed: once the container is gone, the drop removes it.
    drop(user);
    common::settle();
    assert!(
        !object_exists("image", &tag),
        "the failed removal's guard left the image"
    );
    Ok(())
}
