//! A Socket.IO client that is not ours, in another language: the
//! `python-socketio` client drives a whole lifecycle (`tests/python/lifecycle.py`).

mod common;

use std::process::Command;

use common::{containers_of, Served};

#[test]
fn the_python_socketio_client_drives_a_whole_lifecycle() {
    let served = Served::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/lifecycle.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&served.url)
        .output()
        .expect("python3 (scripts/setup.sh installs python-socketio)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the python client failed: {stdout}\n{stderr}"
    );
    assert!(stdout.contains("python lifecycle: ok"), "{stdout}");
    assert!(containers_of(served.pid()).is_empty());
}
