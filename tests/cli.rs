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

/// A container that looks like a leak of a machine that went away ten
/// minutes ago. A leak of a dead process on this host would do as well, but
/// every test process's background sweep removes those at once, so under
/// nextest another test could take it from this one.
fn orphan(tag: &str) -> String {
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 600;
    let labels = [
        "dockhand.managed=true".to_string(),
        "dockhand.session=deadbeefdeadbeef".into(),
        format!("dockhand.owner.host=elsewhere-{tag}"),
        "dockhand.owner.pid=4242".into(),
        "dockhand.owner.start=1".into(),
        format!("dockhand.created={created}"),
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

fn row_of(report: &str, id: &str) -> String {
    report
        .lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("{id} not reported: {report}"))
        .to_string()
}

#[tokio::test]
async fn dry_run_removes_nothing_and_sweep_removes_the_orphan() -> dockhand::Result<()> {
    busybox().await?;
    let tag = common::unique("cli-orphan");
    let id = orphan(&tag);

    // Another host's objects go after the TTL: an hour unless asked.
    let (ok, report, _) = dockhand(&["sweep", "--dry-run", "--json"]);
    assert!(ok);
    let row = row_of(&report, &id);
    assert!(
        row.contains("\"action\":\"kept\"") && row.contains("younger than the TTL"),
        "{row}"
    );

    let (ok, report, _) = dockhand(&["sweep", "--dry-run", "--ttl", "5m", "--json"]);
    assert!(ok);
    let row = row_of(&report, &id);
    assert!(
        row.contains("\"action\":\"would remove\"") && row.contains("older than the TTL"),
        "{row}"
    );
    // Neither the dry run nor a look (`ls`) may remove anything, not even in
    // a background sweep: the CLI has exited, so its work is done.
    dockhand(&["ls"]);
    assert!(common::container_exists(&id), "a dry run removed the orphan");

    let (ok, _, err) = dockhand(&["sweep", "--ttl", "soon"]);
    assert!(
        !ok && err.contains("--ttl takes a duration") && err.contains("\"soon\""),
        "{err}"
    );
    assert!(
        common::container_exists(&id),
        "a refused sweep removed the orphan"
    );

    let (ok, report, _) = dockhand(&["sweep", "--ttl", "300", "--json"]);
    assert!(ok, "{report}");
    assert!(
        row_of(&report, &id).contains("\"action\":\"removed\""),
        "{report}"
    );
    assert!(!common::container_exists(&id));
    Ok(())
}

#[test]
fn serve_runs_the_service_binary_and_says_how_to_get_it_when_missing() {
    let out = Command::new(env!("CARGO_BIN_EXE_dockhand"))
        .args(["serve", "--port", "0"])
        .env("DOCKHAND_SERVE_BIN", "/nonexistent/dockhand-serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/dockhand-serve") && stderr.contains("cargo build -p dockhand-serve"),
        "{stderr}"
    );
    // Its arguments reach the program it runs: `sh -c 'echo $0 $@'` shows them.
    let out = Command::new(env!("CARGO_BIN_EXE_dockhand"))
        .args(["serve", "-c", "echo ran with $0 $@", "--port", "0"])
        .env("DOCKHAND_SERVE_BIN", "/bin/sh")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ran with --port 0");
}
