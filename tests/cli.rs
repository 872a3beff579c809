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
