//! Listing, existence and pruning of managed objects. One test in its own binary:
//! pruning the session removes everything this process made.

mod common;

use common::busybox;
use dockhand::{Container, Engine, Mount, Network, ObjectKind, Scope, Volume};

#[tokio::test]
async fn list_exists_and_prune_the_session() -> dockhand::Result<()> {
    let engine = Engine::connect().await?;
    let net = Network::builder().create().await?;
    let vol = Volume::builder().create().await?;
    let c = Container::builder(busybox().await?)
        .cmd(["sleep", "120"])
        .network(&net)
        .mount(Mount::volume(&vol, "/data"))
        .start()
        .await?;

    let containers = engine.list(ObjectKind::Container, Scope::Session).await?;
    let mine = containers
        .iter()
        .find(|o| o.id == c.id())
        .expect("container listed");
    assert_eq!(mine.name, c.name());
    assert_eq!(mine.owner_pid(), Some(std::process::id()));
    assert_eq!(mine.session(), Some(dockhand::session_id()));
    assert!(mine.created().is_some());
    assert!(engine
        .list(ObjectKind::Network, Scope::Session)
        .await?
        .iter()
        .any(|o| o.name == net.name()));
    assert!(engine
        .list(ObjectKind::Volume, Scope::Session)
        .await?
        .iter()
        .any(|o| o.name == vol.name()));
    let managed = engine.list(ObjectKind::Container, Scope::Managed).await?;
    assert!(managed.iter().any(|o| o.id == c.id()));
    assert!(managed
        .iter()
        .all(|o| o.labels.get("dockhand.managed").map(String::as_str) == Some("true")));

    assert!(engine.exists(ObjectKind::Container, c.id()).await?);
    assert!(engine.exists(ObjectKind::Network, net.name()).await?);
    assert!(
        !engine
            .exists(ObjectKind::Volume, "dockhand-test-no-such-volume")
            .await?
    );

    assert!(engine.prune(Scope::Everything).await.is_err());
    let report = engine.prune(Scope::Session).await?;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let kinds: Vec<ObjectKind> = report.removed.iter().map(|o| o.kind).collect();
    // Containers are removed before what they hold.
    assert_eq!(
        kinds,
        [ObjectKind::Container, ObjectKind::Network, ObjectKind::Volume]
    );
    assert!(!engine.exists(ObjectKind::Container, c.id()).await?);
    assert!(!engine.exists(ObjectKind::Network, net.name()).await?);
    assert!(!engine.exists(ObjectKind::Volume, vol.name()).await?);
    // The guards find everything gone: their drops are no-ops that count as done.
    drop((c, net, vol));
    assert!(dockhand::wait_for_cleanup(std::time::Duration::from_secs(30)));
    Ok(())
}
