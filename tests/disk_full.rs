//! An engine whose disk fills during a build: a Podman API service of the
//! test's own whose image store is a 16 MB tmpfs (the machine's engines and
//! their disks are shared, and are left alone). The build's step succeeds and
//! the engine fails to store its layer: a typed error with the engine's words,
//! no exit code made up for a step that did not fail, and nothing tagged.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dockhand::{BuildContext, Engine, Error};

/// The service, its tmpfs and its directory; all gone on drop, also when the
/// test fails.
struct SmallEngine {
    dir: PathBuf,
    service: Option<Child>,
}

impl SmallEngine {
    /// Only the image store is on the tmpfs. Podman's own database (a bolt
    /// file it maps into memory) stays off it: with `--root`, Podman keeps it
    /// in the store, and a full tmpfs then kills the service by SIGBUS at a
    /// random point of the build (seen in CI: the build's answer ended with
    /// "error reading a body from connection"). Config files rather than
    /// `--root`, which would put it back.
    fn podman(&self) -> Command {
        let mut command = Command::new("podman");
        // conmon leaves markers such as `oom` in its working directory.
        command
            .current_dir(&self.dir)
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"));
        command
    }

    fn write_config(&self) {
        let at = |sub: &str| self.dir.join(sub).display().to_string();
        let storage = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            at("root"),
            at("run")
        );
        let engine = format!(
            "[engine]\nstatic_dir = \"{}\"\nvolume_path = \"{}\"\ntmp_dir = \"{}\"\n",
            at("static"),
            at("volumes"),
            at("tmp")
        );
        std::fs::write(self.dir.join("storage.conf"), storage).unwrap();
        std::fs::write(self.dir.join("containers.conf"), engine).unwrap();
    }

    /// What the service printed, for a failure's message.
    fn service_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("service.log")).unwrap_or_default()
    }

    fn socket(&self) -> String {
        format!("unix://{}", self.dir.join("podman.sock").display())
    }

    fn start() -> SmallEngine {
        let dir = std::env::temp_dir().join(common::unique("disk-full"));
        std::fs::create_dir_all(dir.join("root")).unwrap();
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let mut engine = SmallEngine { dir, service: None };
        engine.write_config();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(engine.dir.join("root"))
            .status()
            .unwrap();
        assert!(
            mounted.success(),
            "mounting a tmpfs needs root, as the tests run here"
        );
        let service = engine
            .podman()
            .args(["system", "service", "--time=0", &engine.socket()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(engine.dir.join("service.log")).unwrap())
            .spawn()
            .expect("podman (scripts/setup.sh installs it)");
        engine.service = Some(service);
        engine
    }

    /// Copies the busybox fixture from the machine's engine into this one.
    fn load_busybox(&self, image: &str) {
        let archive = self.dir.join("busybox.tar");
        let saved = Command::new("docker")
            .args(["save", image, "-o"])
            .arg(&archive)
            .status()
            .unwrap();
        assert!(saved.success(), "docker save {image}");
        let out = self
            .podman()
            .arg("load")
            .arg("-i")
            .arg(&archive)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::remove_file(&archive).unwrap();
    }
}

impl Drop for SmallEngine {
    fn drop(&mut self) {
        if let Some(mut service) = self.service.take() {
            let _ = service.kill();
            let _ = service.wait();
        }
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.join("root"))
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_build_whose_layer_fills_the_engine_disk_is_a_typed_error_with_its_message() -> dockhand::Result<()>
{
    let image = common::busybox().await?;
    let small = SmallEngine::start();
    small.load_busybox(image);
    let begun = Instant::now();
    let engine = loop {
        match Engine::connect_to(&small.socket()).await {
            Ok(engine) => break engine,
            Err(err) if begun.elapsed() > Duration::from_secs(30) => {
                panic!("the service did not answer: {err}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let tag = format!("dockhand-disk-full:{}", common::unique("t"));
    // 6 MB written by the step fit; storing them as a layer does not.
    let dockerfile = format!("FROM localhost/{image}\nRUN dd if=/dev/zero of=/fill bs=1M count=6\n");
    let built = BuildContext::new(dockerfile).build_on(&engine, &tag).await;
    let Err(Error::BuildFailed {
        step,
        message,
        exit_code,
        ..
    }) = &built
    else {
        panic!("expected a build failure, got {built:?}");
    };
    assert!(
        message.contains("no space left on device"),
        "{message}; the service said:\n{}",
        small.service_log()
    );
    assert_eq!(
        *exit_code, None,
        "the step did not fail, the engine's store did: {message}"
    );
    assert!(step.as_deref().is_some_and(|s| s.contains("RUN dd")), "{step:?}");
    let text = built.unwrap_err().to_string();
    assert!(
        text.contains(&tag) && text.contains("no space left on device"),
        "{text}"
    );

    // Nothing tagged, no build container left behind.
    let images = small
        .podman()
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .unwrap();
    let images = String::from_utf8_lossy(&images.stdout);
    assert!(!images.contains("dockhand-disk-full"), "{images}");
    let containers = small.podman().args(["ps", "-aq"]).output().unwrap();
    assert!(
        containers.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&containers.stdout)
    );
    Ok(())
}
