//! The blocking API from plain `#[test]` functions: no async runtime in the
//! test, one shared runtime underneath.

mod common;

use std::time::Duration;

use common::{containers_labelled, settle, unique};
use dockhand::blocking::{self, StartBlocking};
use dockhand::{Container, Error, WaitFor};

fn image() -> &'static str {
    blocking::run(common::busybox()).expect("the busybox fixture")
}

#[test]
fn a_container_from_a_plain_test() {
    let tag = unique("blocking");
    let c = Container::builder(image())
        .cmd(["sh", "-c", "echo ready; exec httpd -f -p 8080"])
        .expose(8080)
        .init() // so the restart's SIGTERM ends httpd at once
        .label("dockhand-test", &tag)
        .wait_for(WaitFor::log("ready"))
        .wait_for(WaitFor::port(8080))
        .start_blocking()
        .unwrap();
    std::net::TcpStream::connect(c.address(8080).unwrap()).expect("the port answers");
    let out = c.exec(["sh", "-c", "echo out; echo err >&2; exit 3"]).unwrap();
    assert_eq!(
        (out.exit_code, out.stdout_str(), out.stderr_str()),
        (3, "out\n".into(), "err\n".into())
    );
    assert!(c.logs().unwrap().stdout().contains("ready"));
    c.copy_file_to("/tmp/note", b"hello".to_vec(), 0o644).unwrap();
    assert_eq!(c.copy_file_from("/tmp/note").unwrap(), b"hello");
    c.restart().unwrap();
    c.wait_until(WaitFor::port(8080), Duration::from_secs(10))
        .unwrap();
    assert_eq!(containers_labelled("dockhand-test", &tag).len(), 1);
    drop(c);
    settle();
    assert!(
        containers_labelled("dockhand-test", &tag).is_empty(),
        "dropped outside any runtime, removed"
    );
}

#[test]
fn a_module_and_a_failed_wait_through_run() {
    let redis_image = blocking::run(common::redis()).unwrap();
    let redis = blocking::run(dockhand::modules::Redis::new().image(redis_image).start()).unwrap();
    let out = blocking::run(redis.container().exec(["redis-cli", "PING"])).unwrap();
    assert_eq!(out.stdout_str().trim(), "PONG");
    let err = Container::builder(image())
        .cmd(["sh", "-c", "exit 4"])
        .wait_for(WaitFor::log("never"))
        .start_blocking()
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotReady(info) if info.state.contains("code 4")),
        "{err}"
    );
}

#[tokio::test]
async fn inside_an_async_runtime_it_refuses_rather_than_stalling() {
    let err = blocking::run(async { Ok(()) }).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { reason, .. } if reason.contains(".await")),
        "{err}"
    );
}
