//! Engines reached over TCP with TLS, through a real TLS endpoint in front of
//! the engine that demands a client certificate; docker contexts; the
//! environment as the docker CLI reads it.
#![cfg(feature = "tls")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tls::{Pki, TlsEndpoint};
use common::{busybox, containers_labelled, settle, unique};
use dockhand::{Container, Engine, EngineConfig, Error, WaitFor};

const LABEL: &str = "dockhand-test";

async fn run_a_container(engine: &Engine, tag: &str) -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .engine(engine)
        .cmd(["sh", "-c", "echo ready; exec httpd -f -p 8080"])
        .expose(8080)
        .label(LABEL, tag)
        .wait_for(WaitFor::log("ready"))
        .wait_for(WaitFor::port(8080))
        .start()
        .await?;
    assert_eq!(c.host(), "127.0.0.1");
    std::net::TcpStream::connect(c.address(8080)?).expect("the published port answers");
    let out = c.exec(["echo", "through tls"]).await?;
    assert_eq!(out.stdout_str(), "through tls\n");
    Ok(())
}

#[tokio::test]
async fn containers_run_through_a_tls_endpoint_and_are_removed_through_it() -> dockhand::Result<()> {
    let pki = Pki::new("ok");
    let endpoint = TlsEndpoint::start(&pki);
    let certs = pki.client_dir("client");
    let engine = Engine::connect_with(EngineConfig::new(endpoint.url()).tls_dir(&certs)?).await?;
    assert_eq!(engine.endpoint(), endpoint.url());
    assert!(engine.is_local(), "a TCP endpoint on loopback is this machine");
    let tag = unique("tls");
    run_a_container(&engine, &tag).await?;
    settle(); // the drop's removal went through the TLS endpoint too
    assert!(containers_labelled(LABEL, &tag).is_empty());
    Ok(())
}

#[tokio::test]
async fn a_wrong_or_missing_client_certificate_is_refused_within_a_second() -> dockhand::Result<()> {
    let pki = Pki::new("wrong");
    let endpoint = TlsEndpoint::start(&pki);
    let stranger = Pki::new("stranger").client_dir("intruder");
    let begun = Instant::now();
    let err = Engine::connect_with(EngineConfig::new(endpoint.url()).tls_dir(&stranger)?)
        .await
        .unwrap_err();
    assert!(
        begun.elapsed() < Duration::from_millis(1500),
        "{:?}",
        begun.elapsed()
    );
    let text = err.to_string();
    assert!(err.is_engine_unavailable(), "{text}");
    assert!(text.contains(&endpoint.url()), "{text}");
    assert!(
        text.contains(stranger.to_str().unwrap()),
        "names the certificates: {text}"
    );
    // No client certificate at all: plain HTTP to a TLS port.
    let begun = Instant::now();
    let err = Engine::connect_to(&endpoint.url()).await.unwrap_err();
    assert!(
        begun.elapsed() < Duration::from_millis(1500),
        "{:?}",
        begun.elapsed()
    );
    assert!(
        err.is_engine_unavailable() && err.to_string().contains(&endpoint.url()),
        "{err}"
    );
    // A certificate directory without the files.
    let empty = pki.dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = EngineConfig::new(endpoint.url()).tls_dir(&empty).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { reason, .. } if reason.contains("cert.pem")),
        "{err}"
    );
    Ok(())
}

/// A docker config directory with one context, as `docker context create`
/// writes it, pointing at `endpoint` with the certificates in `certs`.
fn context_store(dir: &Path, name: &str, endpoint: &str, certs: &Path) {
    use sha2::Digest;
    let digest = format!("{:x}", sha2::Sha256::digest(name.as_bytes()));
    let meta = dir.join("contexts/meta").join(&digest);
    std::fs::create_dir_all(&meta).unwrap();
    let json = format!(
        r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{endpoint}","SkipTLSVerify":false}}}}}}"#
    );
    std::fs::write(meta.join("meta.json"), json).unwrap();
    let tls = dir.join("contexts/tls").join(&digest).join("docker");
    std::fs::create_dir_all(&tls).unwrap();
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(certs.join(f), tls.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"currentContext":"{name}"}}"#),
    )
    .unwrap();
}

#[tokio::test]
async fn a_docker_context_with_tls_material_is_used() -> dockhand::Result<()> {
    let pki = Pki::new("ctx");
    let endpoint = TlsEndpoint::start(&pki);
    let certs = pki.client_dir("client");
    let config_dir = pki.dir.join("docker-config");
    let name = unique("ctx");
    context_store(&config_dir, &name, &endpoint.url(), &certs);
    let engine = Engine::connect_with(EngineConfig::from_context(&config_dir, &name)?).await?;
    assert_eq!(engine.endpoint(), endpoint.url());
    let tag = unique("ctx-run");
    run_a_container(&engine, &tag).await?;
    // Removed through the endpoint, which goes with this test: wait for it.
    settle();
    assert!(containers_labelled(LABEL, &tag).is_empty());
    let err = EngineConfig::from_context(&config_dir, "no-such-context").unwrap_err();
    assert!(
        err.to_string().contains("docker context no-such-context"),
        "{err}"
    );
    Ok(())
}

/// The whole path from the environment: a child process with DOCKER_HOST,
/// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (or only a context in its docker
/// config) connects as the docker CLI would; killed, its watcher removes its
/// container through the same TLS endpoint.
fn child_through_env(env: &[(&str, &str)]) {
    let tag = unique("tls-env");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_runs_from_the_environment",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DOCKHAND_TEST_TAG", &tag)
        .env_remove("DOCKER_HOST")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines
        .map_while(Result::ok)
        .find_map(|l| l.split_once("READY ").map(|(_, e)| e.trim().to_string()));
    let endpoint = ready.unwrap_or_else(|| panic!("the child did not come up: {:?}", child.wait()));
    assert_eq!(containers_labelled(LABEL, &tag).len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let begun = Instant::now();
    while !containers_labelled(LABEL, &tag).is_empty() {
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "the watcher did not clean up through {endpoint}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn docker_host_with_tls_from_the_environment() {
    let pki = Pki::new("env");
    let endpoint = TlsEndpoint::start(&pki);
    let certs = pki.client_dir("client");
    let url = endpoint.url();
    child_through_env(&[
        ("DOCKER_HOST", url.as_str()),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", certs.to_str().unwrap()),
        ("DOCKHAND_TEST_EXPECT", url.as_str()),
    ]);
}

#[test]
fn the_current_context_from_the_environment() {
    let pki = Pki::new("envctx");
    let endpoint = TlsEndpoint::start(&pki);
    let certs = pki.client_dir("client");
    let config_dir = pki.dir.join("docker-config");
    context_store(&config_dir, &unique("current"), &endpoint.url(), &certs);
    let url = endpoint.url();
    child_through_env(&[
        ("DOCKER_CONFIG", config_dir.to_str().unwrap()),
        ("DOCKHAND_TEST_EXPECT", url.as_str()),
    ]);
}

#[tokio::test]
#[ignore = "child process of the remote-engine tests"]
async fn child_runs_from_the_environment() -> dockhand::Result<()> {
    let (Ok(tag), Ok(expect)) = (
        std::env::var("DOCKHAND_TEST_TAG"),
        std::env::var("DOCKHAND_TEST_EXPECT"),
    ) else {
        panic!("started by its parent test, which sets DOCKHAND_TEST_TAG and DOCKHAND_TEST_EXPECT");
    };
    let engine = Engine::connect().await?;
    assert_eq!(engine.endpoint(), expect);
    let _c = Container::builder(busybox().await?)
        .cmd(["sleep", "120"])
        .label(LABEL, &tag)
        .start()
        .await?;
    println!("READY {}", engine.endpoint());
    tokio::time::sleep(Duration::from_secs(120)).await;
    Ok(())
}
