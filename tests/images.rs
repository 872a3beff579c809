//! In-memory builds: the content-hash cache, build options, failures, guards.

mod common;

use std::process::Command;

use common::{busybox, unique};
use dockhand::{BuildContext, Container, Engine, Error, ObjectKind, WaitFor};

fn rmi(reference: &str) {
    Command::new("docker")
        .args(["rmi", "-f", reference])
        .output()
        .unwrap();
}

#[tokio::test]
async fn cached_build_is_found_by_content_and_built_once() -> dockhand::Result<()> {
    let run = unique("cache");
    let tag = format!("dockhand-test/{run}:latest");
    let ctx = BuildContext::new("FROM scratch\nCOPY stamp /stamp\n")
        .file("stamp", run.clone().into_bytes(), 0o644)
        .cached();

    // Concurrent builds of one new context in one process: one build.
    let (a, b) = tokio::try_join!(ctx.build(&tag), ctx.build(&tag))?;
    assert_eq!(a.id(), b.id());
    assert!(a.from_cache() != b.from_cache(), "exactly one of them built");

    let again = ctx.build(&tag).await?;
    assert!(again.from_cache());
    assert_eq!(again.id(), a.id());

    // A changed file changes the hash: a new build.
    let changed = BuildContext::new("FROM scratch\nCOPY stamp /stamp\n")
        .file("stamp", format!("{run}-changed").into_bytes(), 0o644)
        .cached()
        .build(&tag)
        .await?;
    assert!(!changed.from_cache());
    assert_ne!(changed.id(), a.id());
    // Cached images outlive their guards.
    let first = a.id().to_string();
    drop((a, b, again, changed));
    assert!(dockhand::wait_for_cleanup(std::time::Duration::from_secs(30)));
    assert!(Engine::connect().await?.exists(ObjectKind::Image, &first).await?);
    rmi(&first);
    rmi(&tag);
    Ok(())
}

#[tokio::test]
async fn an_image_built_on_a_cached_one_is_not_taken_for_it() -> dockhand::Result<()> {
    let run = unique("derived");
    let tag = format!("dockhand-test/{run}:1");
    let ctx = BuildContext::new("FROM scratch\nCOPY stamp /stamp\n")
        .file("stamp", run.clone().into_bytes(), 0o644)
        .cached();
    let base = ctx.build(&tag).await?;
    // Built on it, so it inherits its labels unless dockhand overrides them.
    let derived = BuildContext::new(format!("FROM {tag}\nCOPY more /more\n"))
        .file("more", b"more".to_vec(), 0o644)
        .build(&format!("dockhand-test/{run}-derived:1"))
        .await?;
    let inherited = Command::new("docker")
        .args(["inspect", derived.id(), "--format"])
        .arg("{{index .Config.Labels \"dockhand.context-hash\"}}")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&inherited.stdout).trim(),
        "",
        "the derived image carries its base's content hash"
    );
    // Without its tag, the cache must find the build by its content alone.
    rmi(&tag);
    let again = ctx.build(&tag).await?;
    assert!(again.from_cache());
    assert_eq!(again.id(), base.id(), "the cache handed out the derived image");
    assert_ne!(again.id(), derived.id());
    drop(derived);
    common::settle();
    rmi(base.id());
    Ok(())
}

#[tokio::test]
async fn a_rebuilt_base_image_invalidates_cached_builds_on_it() -> dockhand::Result<()> {
    busybox().await?;
    let run = unique("base");
    let base = format!("dockhand-test/{run}-base:1");
    let child = format!("dockhand-test/{run}-child:1");
    let base_with = |marker: &str| {
        BuildContext::new("FROM fixtures/busybox:latest\nCOPY marker /marker\n").file(
            "marker",
            marker.as_bytes().to_vec(),
            0o644,
        )
    };
    let on_base = BuildContext::new(format!("FROM {base}\nCMD [\"cat\", \"/marker\"]\n")).cached();

    let old_base = base_with("old").build(&base).await?;
    let first = on_base.build(&child).await?;
    assert!(!first.from_cache());
    assert!(
        on_base.build(&child).await?.from_cache(),
        "an unchanged build is cached"
    );

    // Same tag, new image: what was built on the old one must not be handed out.
    let new_base = base_with("new").build(&base).await?;
    assert_ne!(old_base.id(), new_base.id());
    let second = on_base.build(&child).await?;
    assert!(
        !second.from_cache(),
        "the cache handed out an image built on the old base"
    );
    let c = Container::builder(second.id())
        .wait_for(WaitFor::exit_code(0))
        .start()
        .await?;
    assert_eq!(c.logs().await?.stdout().trim(), "new");
    drop(c);
    common::settle();
    for id in [first.id(), second.id()] {
        rmi(id);
    }
    rmi(&child);
    Ok(())
}

#[tokio::test]
async fn options_reach_the_build() -> dockhand::Result<()> {
    let base = busybox().await?;
    let host = std::env::temp_dir().join(unique("ctx"));
    std::fs::create_dir_all(host.join("conf")).unwrap();
    std::fs::write(host.join("conf/app.conf"), b"from the host\n").unwrap();
    std::fs::write(host.join("conf/secret.key"), b"never sent\n").unwrap();
    std::fs::write(host.join("conf/.dockerignore"), b"*.key\n").unwrap();
    let dockerfile = format!(
        "FROM {base} AS first\nARG GREETING\nRUN echo \"$GREETING\" > /greeting\nCOPY conf /conf\nFROM first AS second\nRUN echo second > /stage\n"
    );
    let image = BuildContext::new(dockerfile)
        .dockerfile_name("build/Custom.Dockerfile")
        .build_arg("GREETING", "hello from an arg")
        .target("first")
        .host_path(host.join("conf"), "conf")
        .build(&format!("dockhand-test/{}:latest", unique("options")))
        .await;
    std::fs::remove_dir_all(&host).ok();
    let image = image?;
    assert!(!image.from_cache());
    let c = Container::builder(image.tag())
        .cmd([
            "sh",
            "-c",
            "cat /greeting /conf/app.conf; test -e /stage || echo no-second-stage; \
             test -e /conf/secret.key || echo not-sent",
        ])
        .wait_for(WaitFor::exit_code(0))
        .start()
        .await?;
    assert_eq!(
        c.logs().await?.stdout(),
        "hello from an arg\nfrom the host\nno-second-stage\nnot-sent\n"
    );
    Ok(())
}

#[tokio::test]
async fn failing_step_is_reported_with_output() -> dockhand::Result<()> {
    let base = busybox().await?;
    let err = BuildContext::new(format!(
        "FROM {base}\nRUN echo preparing && echo broken >&2 && exit 3\n"
    ))
    .build(&format!("dockhand-test/{}:latest", unique("fails")))
    .await
    .unwrap_err();
    let Error::BuildFailed {
        step,
        exit_code,
        output,
        ..
    } = &err
    else {
        panic!("expected BuildFailed, got {err:?}");
    };
    assert!(
        step.as_deref().unwrap_or("").contains("RUN echo preparing"),
        "{err}"
    );
    assert_eq!(*exit_code, Some(3), "{err}");
    assert!(output.iter().any(|l| l.contains("preparing")), "{err}");
    Ok(())
}

#[tokio::test]
async fn built_image_belongs_to_its_guard() -> dockhand::Result<()> {
    let engine = Engine::connect().await?;
    let ctx = BuildContext::new("FROM scratch\nCOPY f /f\n").file("f", unique("guard").into_bytes(), 0o644);
    let image = ctx
        .build(&format!("dockhand-test/{}:latest", unique("guard")))
        .await?;
    let id = image.id().to_string();
    assert!(engine
        .list(ObjectKind::Image, dockhand::Scope::Session)
        .await?
        .iter()
        .any(|o| o.id == id));
    image.remove().await?;
    assert!(!engine.exists(ObjectKind::Image, &id).await?);

    let kept = ctx
        .build(&format!("dockhand-test/{}:latest", unique("kept")))
        .await?;
    let tag = kept.keep();
    assert!(dockhand::wait_for_cleanup(std::time::Duration::from_secs(30)));
    assert!(engine.exists(ObjectKind::Image, &tag).await?);
    rmi(&tag);
    Ok(())
}
