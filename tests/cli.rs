//! The `dockhand` command line against live objects.

mod common;

use std::process::Command;

use common::busybox;
use dockhand::{Container, WaitFor};

fn dockhand(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dockhand"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn ls_sweep_and_logs_see_a_live_container() -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .cmd([
            "sh",
            "-c",
            "echo from-stdout; echo from-stderr >&2; httpd -f -p 8080",
        ])
        .expose(8080)
        .wait_for(WaitFor::log("from-stderr"))
        .start()
        .await?;

    let (ok, table, _) = dockhand(&["ls"]);
    assert!(ok);
    let row = table
        .lines()
        .find(|l| l.contains(c.name()))
        .expect("container listed");
    assert!(
        row.contains("alive") && row.contains(&std::process::id().to_string()),
        "{row}"
    );
    assert!(
        row.contains(&format!("127.0.0.1:{}->8080/tcp", c.host_port(8080)?)),
        "{row}"
    );

    let (ok, json, _) = dockhand(&["ls", "--json"]);
    assert!(ok);
    let line = json
        .lines()
        .find(|l| l.contains(c.id()))
        .expect("container in json");
    assert!(
        line.starts_with('{') && line.contains("\"owner\":\"alive\""),
        "{line}"
    );
    // This binary's start-up hook ran, so a watcher guards the container.
    assert!(line.contains("\"watched\":true"), "{line}");

    // A live owner's objects are never swept.
    let (ok, sweep, _) = dockhand(&["sweep", "--dry-run"]);
    assert!(ok);
    let row = sweep
        .lines()
        .find(|l| l.contains(c.name()))
        .expect("container in sweep report");
    assert!(row.starts_with("kept") && row.contains("is alive"), "{row}");

    let (ok, stdout, stderr) = dockhand(&["logs", c.id()]);
    assert!(ok);
    assert_eq!(
        (stdout.as_str(), stderr.as_str()),
        ("from-stdout\n", "from-stderr\n")
    );

    let (ok, _, err) = dockhand(&["logs", "dockhand-test-no-such-container"]);
    assert!(!ok && err.contains("No such container"), "{err}");
    let (ok, _, err) = dockhand(&["frobnicate"]);
    assert!(!ok && err.contains("usage"), "{err}");
    Ok(())
}

/// A container that looks like a leak of a dead process, made with the CLI.
fn orphan(tag: &str) -> String {
    let dead_pid = (3_000_000..4_000_000)
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let labels = [
        "dockhand.managed=true".to_string(),
        "dockhand.session=deadbeefdeadbeef".into(),
        format!("dockhand.owner.host={}", host.trim()),
        format!("dockhand.owner.pid={dead_pid}"),
        "dockhand.owner.start=1".into(),
        format!("dockhand-test={tag}"),
    ];
    let mut cmd = Command::new("docker");
    cmd.arg("create");
    for l in &labels {
        cmd.args(["--label", l]);
    }
    let out = cmd.args([common::busybox_tag(), "true"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn dry_run_removes_nothing_and_sweep_removes_the_orphan() -> dockhand::Result<()> {
    busybox().await?;
    let tag = common::unique("cli-orphan");
    let id = orphan(&tag);

    let (ok, report, _) = dockhand(&["sweep", "--dry-run", "--json"]);
    assert!(ok);
    let row = report
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("orphan not reported: {report}"));
    assert!(
        row.contains("\"action\":\"would remove\"") && row.contains("is gone"),
        "{row}"
    );
    // Neither the dry run nor a look (`ls`) may remove anything, not even in
    // a background sweep: the CLI has exited, so its work is done.
    dockhand(&["ls"]);
    assert!(common::container_exists(&id), "a dry run removed the orphan");

    let (ok, report, _) = dockhand(&["sweep", "--json"]);
    assert!(ok, "{report}");
    let row = report
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("orphan not swept: {report}"));
    assert!(row.contains("\"action\":\"removed\""), "{row}");
    assert!(!common::container_exists(&id));
    Ok(())
}
