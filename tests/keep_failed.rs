//! `DOCKHAND_KEEP=failed`: a test that panics leaves what it held, says how to
//! look inside and how to remove it later; a passing test still cleans up.

mod common;

use std::process::Command;

use common::{busybox, containers_labelled, unique};
use dockhand::{Container, Network, Sweeper};

const LABEL: &str = "dockhand-test";

fn networks_labelled(tag: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["network", "ls", "-q", "--filter", &format!("label={LABEL}={tag}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
#[ignore = "child process of keep_failed_keeps_only_what_a_failed_test_held"]
async fn child_passes_once_then_fails() {
    let tag =
        std::env::var("DOCKHAND_TEST_TAG").expect("started by its parent test, which sets DOCKHAND_TEST_TAG");
    let image = busybox().await.unwrap();
    let passed = Container::builder(image)
        .cmd(["sleep", "60"])
        .label(LABEL, format!("{tag}-passed"))
        .start()
        .await
        .unwrap();
    drop(passed); // a guard that goes the usual way: removed
    let net = Network::builder().label(LABEL, &tag).create().await.unwrap();
    let _held = Container::builder(image)
        .cmd(["sh", "-c", "echo the last words; exec sleep 60"])
        .network(&net)
        .label(LABEL, &tag)
        .start()
        .await
        .unwrap();
    panic!("the test fails while it holds a container and a network");
}

#[tokio::test]
async fn keep_failed_keeps_only_what_a_failed_test_held() -> dockhand::Result<()> {
    let tag = unique("keep-failed");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_passes_once_then_fails",
            "--ignored",
            "--nocapture",
        ])
        .env("DOCKHAND_TEST_TAG", &tag)
        .env("DOCKHAND_KEEP", "failed")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child test fails: {stderr}");
    assert!(
        containers_labelled(LABEL, &format!("{tag}-passed")).is_empty(),
        "the passing part cleaned up: {stderr}"
    );
    let kept = containers_labelled(LABEL, &tag);
    assert_eq!(kept.len(), 1, "{stderr}");
    let networks = networks_labelled(&tag);
    assert_eq!(networks.len(), 1, "the failed test's network stays too: {stderr}");
    let name = String::from_utf8_lossy(
        &Command::new("docker")
            .args(["inspect", "-f", "{{.Name}}", &kept[0]])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .trim_start_matches('/')
    .to_string();
    for expected in [
        format!("docker exec -it {name} sh"),
        format!("docker logs {name}"),
        "dockhand sweep --kept".to_string(),
        "stdout: the last words".to_string(),
    ] {
        assert!(stderr.contains(&expected), "{expected:?} in {stderr}");
    }
    // Ordinary sweeps leave them; `--kept` would take them. (Dry runs: a real
    // `--kept` sweep would take other tests' kept objects too.)
    let ordinary = Sweeper::new().dry_run().run().await?;
    assert!(ordinary
        .removed
        .iter()
        .all(|(o, _)| !kept.contains(&o.id[..12].to_string()) && o.name != name));
    assert!(ordinary
        .kept
        .iter()
        .any(|(o, why)| o.name == name && why.contains("DOCKHAND_KEEP=failed")));
    let with_kept = Sweeper::new().kept().dry_run().run().await?;
    assert!(with_kept.removed.iter().any(|(o, _)| o.name == name));
    assert!(with_kept
        .removed
        .iter()
        .any(|(o, _)| o.id.starts_with(&networks[0])));
    Command::new("docker")
        .args(["rm", "-f", &kept[0]])
        .output()
        .unwrap();
    Command::new("docker")
        .args(["network", "rm", &networks[0]])
        .output()
        .unwrap();
    Ok(())
}
