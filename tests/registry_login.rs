//! Credentials stored by `docker login` are found without being passed. Its own
//! test binary, because it points DOCKER_CONFIG at its own directory for the
//! whole process.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::registry::Registry;
use common::{busybox, unique};
use dockhand::{Container, Engine, PullOptions, RegistryAuth, WaitFor};

#[tokio::test]
async fn docker_login_credentials_are_used() -> dockhand::Result<()> {
    let registry = Registry::start(Some(("bob", "builder")));
    let config = std::env::temp_dir().join(unique("docker-config"));
    std::fs::create_dir_all(&config).unwrap();
    // The real CLI writes the file, in the form users have.
    let mut login = Command::new("docker")
        .arg("--config")
        .arg(&config)
        .args(["login", &registry.host, "--username", "bob", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker CLI");
    login.stdin.take().unwrap().write_all(b"builder\n").unwrap();
    assert!(login.wait().unwrap().success(), "docker login failed");
    // SAFETY: no other test runs in this binary and its runtime is
    // current-thread, so no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("DOCKER_CONFIG", &config) };
    assert_eq!(
        RegistryAuth::from_docker_config(&registry.host),
        Some(RegistryAuth::basic("bob", "builder"))
    );

    let engine = Engine::connect().await?;
    let reference = registry.reference(&format!("dockhand-test/{}", unique("login")), "1");
    engine.tag_image(busybox().await?, &reference).await?;
    let pushed = engine.push_image(&reference, None).await;
    let removed = engine.remove_image(&reference).await;
    pushed?;
    removed?;
    let c = Container::builder(&reference)
        .cmd(["echo", "logged in"])
        .wait_for(WaitFor::exit_code(0))
        .start()
        .await;
    let pulled = engine.pull_image(&reference, &PullOptions::new()).await;
    let _ = engine.remove_image(&reference).await;
    std::fs::remove_dir_all(&config).ok();
    assert_eq!(c?.logs().await?.stdout(), "logged in\n");
    assert!(!pulled?.fetched, "already there");
    Ok(())
}
