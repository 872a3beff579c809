//! Pull, push, tag and remove against a real registry on loopback, with and
//! without htpasswd auth, and the errors a missing or unreachable image gives.

mod common;

use std::time::Duration;

use common::registry::Registry;
use common::{busybox, settle, unique};
use dockhand::{BuildContext, Container, Engine, Error, PullOptions, PullPolicy, RegistryAuth, WaitFor};

/// Removes a tag when the test ends, however it ends.
struct Untag(String);

impl Drop for Untag {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .output();
    }
}

/// Tags the busybox fixture into the registry and pushes it.
async fn push_busybox(engine: &Engine, registry: &Registry, auth: Option<&RegistryAuth>) -> (String, Untag) {
    let base = busybox().await.unwrap();
    let reference = registry.reference(&format!("dockhand-test/{}", unique("bb")), "1");
    engine.tag_image(base, &reference).await.unwrap();
    let untag = Untag(reference.clone());
    engine.push_image(&reference, auth).await.unwrap();
    (reference, untag)
}

#[tokio::test]
async fn pushed_image_is_removed_pulled_back_and_run() -> dockhand::Result<()> {
    let registry = Registry::start(None);
    let engine = Engine::connect().await?;
    let base = busybox().await?;
    let marker = unique("marker");
    let built = BuildContext::new(format!("FROM {base}\nCOPY marker /marker\n"))
        .file("marker", marker.clone().into_bytes(), 0o644)
        .build(&format!("dockhand-test/{}:1", unique("pushed")))
        .await?;
    let reference = registry.reference("dockhand-test/pushed", &unique("v"));
    let _untag = Untag(reference.clone());
    engine.tag_image(built.tag(), &reference).await?;
    engine.push_image(&reference, None).await?;
    let pushed = engine.inspect_image(&reference).await?;
    assert!(
        pushed.digests.iter().any(|d| d.starts_with(&registry.host)),
        "the push recorded a registry digest: {:?}",
        pushed.digests
    );

    // Gone locally: the tag, then the image with its guard.
    engine.remove_image(&reference).await?;
    drop(built);
    settle();
    assert!(!engine.exists(dockhand::ObjectKind::Image, &pushed.id).await?);

    // A container of the missing image pulls it (policy Missing) and runs it.
    let c = Container::builder(&reference)
        .cmd(["cat", "/marker"])
        .wait_for(WaitFor::exit_code(0))
        .start()
        .await?;
    assert_eq!(c.logs().await?.stdout().trim_end(), marker);
    assert_eq!(engine.inspect_image(&reference).await?.id, pushed.id);

    // Present: Missing does not fetch, Always asks the registry again.
    let manifests = registry.requests("/manifests/");
    let pulled = engine.pull_image(&reference, &PullOptions::new()).await?;
    assert!(!pulled.fetched);
    assert_eq!(registry.requests("/manifests/"), manifests);
    let pulled = engine
        .pull_image(&reference, &PullOptions::new().policy(PullPolicy::Always))
        .await?;
    assert!(pulled.fetched);
    assert_eq!(pulled.id, pushed.id);
    assert!(registry.requests("/manifests/") > manifests);

    drop(c);
    settle();
    engine.remove_image(&pushed.id).await?;
    let err = engine.inspect_image(&reference).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    Ok(())
}

#[tokio::test]
async fn concurrent_pulls_of_one_image_pull_once() -> dockhand::Result<()> {
    let registry = Registry::start(None);
    let engine = Engine::connect().await?;
    let (reference, _untag) = push_busybox(&engine, &registry, None).await;
    let repo_manifests = format!(
        "/v2/{}/manifests/",
        reference.split_once('/').unwrap().1.rsplit_once(':').unwrap().0
    );

    // The engine resolves a tag with a HEAD, and fetches the manifest by digest
    // only when it does not hold it yet: the first pull after a push may ask
    // twice, later ones once. Measure both sides in the later state.
    engine.remove_image(&reference).await?;
    engine.pull_image(&reference, &PullOptions::new()).await?;
    engine.remove_image(&reference).await?;
    let before = registry.requests(&repo_manifests);
    engine.pull_image(&reference, &PullOptions::new()).await?;
    let one_pull = registry.requests(&repo_manifests) - before;
    assert!(one_pull > 0, "a pull asks the registry for the manifest");

    engine.remove_image(&reference).await?;
    let before = registry.requests(&repo_manifests);
    let options = PullOptions::new();
    let pulls = futures_util::future::join_all((0..4).map(|_| engine.pull_image(&reference, &options))).await;
    let ids: Vec<String> = pulls
        .into_iter()
        .map(|p| p.map(|p| p.id))
        .collect::<Result<_, _>>()?;
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        registry.requests(&repo_manifests) - before,
        one_pull,
        "four concurrent pulls asked the registry as often as one pull; log:\n{}",
        registry.lines(&repo_manifests).join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn registry_with_htpasswd_wants_the_right_credentials() -> dockhand::Result<()> {
    let registry = Registry::start(Some(("alice", "wonderland")));
    let engine = Engine::connect().await?;
    let right = RegistryAuth::basic("alice", "wonderland");
    let wrong = RegistryAuth::basic("alice", "looking-glass");
    let base = busybox().await?;
    let reference = registry.reference(&format!("dockhand-test/{}", unique("private")), "1");
    engine.tag_image(base, &reference).await?;
    let _untag = Untag(reference.clone());

    for auth in [None, Some(&wrong)] {
        let err = engine.push_image(&reference, auth).await.unwrap_err();
        assert!(err.is_auth(), "push with {auth:?}: {err}");
        assert!(err.to_string().contains(&registry.host), "{err}");
    }
    engine.push_image(&reference, Some(&right)).await?;
    engine.remove_image(&reference).await?;

    for auth in [None, Some(&wrong)] {
        let mut options = PullOptions::new();
        if let Some(auth) = auth {
            options = options.auth(auth.clone());
        }
        let err = engine.pull_image(&reference, &options).await.unwrap_err();
        assert!(err.is_auth(), "pull with {auth:?}: {err}");
        assert!(matches!(&err, Error::RegistryAuth { operation: "pull", image, .. } if image == &reference));
    }
    let err = Container::builder(&reference)
        .registry_auth(wrong)
        .start()
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err}");

    // A build whose base image is in the private registry: the credentials
    // reach the engine's pull of the base.
    let from_private = format!("FROM {reference}\nCMD [\"echo\", \"built on a private base\"]\n");
    let tag = format!("dockhand-test/{}:1", unique("on-private"));
    let err = BuildContext::new(from_private.clone())
        .build(&tag)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BuildFailed { .. }), "{err}");
    assert!(
        err.to_string().contains("auth"),
        "failed for want of credentials: {err}"
    );
    let built = BuildContext::new(from_private)
        .registry_auth(&registry.host, right.clone())
        .build(&tag)
        .await?;
    let c = Container::builder(built.tag())
        .wait_for(WaitFor::exit_code(0))
        .start()
        .await?;
    assert_eq!(c.logs().await?.stdout(), "built on a private base\n");
    drop(c);
    engine.remove_image(&reference).await?;

    let c = Container::builder(&reference)
        .registry_auth(right)
        .cmd(["echo", "pulled with a password"])
        .wait_for(WaitFor::exit_code(0))
        .start()
        .await?;
    assert_eq!(c.logs().await?.stdout(), "pulled with a password\n");
    Ok(())
}

#[tokio::test]
async fn missing_or_unreachable_images_are_clear_errors() -> dockhand::Result<()> {
    let registry = Registry::start(None);
    let engine = Engine::connect().await?;

    // A registry nobody listens on: refused at once, named in the error.
    let nowhere = format!("127.0.0.1:1/dockhand-test/{}:1", unique("nowhere"));
    let err = Container::builder(&nowhere).start().await.unwrap_err();
    assert!(matches!(err, Error::RegistryUnreachable { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&nowhere) && text.contains("registry 127.0.0.1:1"),
        "{text}"
    );

    // A tag the registry does not have.
    let absent = registry.reference("dockhand-test/absent", "1");
    let err = engine.pull_image(&absent, &PullOptions::new()).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains(&registry.host), "{err}");

    // Policy Never does not even ask.
    let before = registry.requests("/v2/dockhand-test/absent/");
    let err = Container::builder(&absent)
        .pull_policy(PullPolicy::Never)
        .start()
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("Never"), "{err}");
    assert_eq!(registry.requests("/v2/dockhand-test/absent/"), before);

    // A registry that accepts connections and never answers: the stall limit
    // ends the pull instead of a hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_ref = format!(
        "127.0.0.1:{}/dockhand-test/silent:1",
        silent.local_addr().unwrap().port()
    );
    let options = PullOptions::new().stall_limit(Duration::from_secs(2));
    let begun = std::time::Instant::now();
    let err = engine.pull_image(&silent_ref, &options).await.unwrap_err();
    let took = begun.elapsed();
    // The stall limit, not the engine's own connection timeouts, ended it.
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("2s"), "{err}");
    assert!(
        took >= Duration::from_secs(2),
        "gave up after {took:?}, before the limit"
    );
    assert!(took < Duration::from_secs(10), "gave up only after {took:?}");
    assert!(err.to_string().contains(&silent_ref), "{err}");
    Ok(())
}

#[tokio::test]
async fn image_operations_name_what_is_missing() -> dockhand::Result<()> {
    let engine = Engine::connect().await?;
    let missing = format!("dockhand-test/{}:1", unique("missing"));
    for err in [
        engine.inspect_image(&missing).await.unwrap_err(),
        engine
            .tag_image(&missing, "dockhand-test/other:1")
            .await
            .unwrap_err(),
        engine.remove_image(&missing).await.unwrap_err(),
        engine.push_image(&missing, None).await.unwrap_err(),
    ] {
        assert!(err.is_not_found(), "{err}");
        assert!(err.to_string().contains(&missing), "{err}");
    }
    assert!(!engine.exists(dockhand::ObjectKind::Image, &missing).await?);
    let err = engine
        .pull_image("bad ref", &PullOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    Ok(())
}
