//! A real registry on loopback: the distribution's `docker-registry`, one per
//! test, on a free port, optionally behind htpasswd auth. The engine allows
//! plain HTTP to registries on 127.0.0.0/8.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    dir: PathBuf,
    /// `127.0.0.1:PORT`, the registry part of image references.
    pub host: String,
}

impl Registry {
    /// Starts a registry; with `login`, every request needs that user and password.
    pub fn start(login: Option<(&str, &str)>) -> Registry {
        for _ in 0..5 {
            if let Some(registry) = Self::try_start(login) {
                return registry;
            }
        }
        panic!("docker-registry did not start; is it installed (bash scripts/setup.sh)?");
    }

    fn try_start(login: Option<(&str, &str)>) -> Option<Registry> {
        let dir = std::env::temp_dir().join(super::unique("dockhand-registry"));
        std::fs::create_dir_all(&dir).unwrap();
        // The port is free now; another process could take it before the
        // registry binds, in which case the registry exits and we try again.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: dockhand-tests\n",
            dir.join("data").display()
        );
        if let Some((user, password)) = login {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (apache2-utils) is needed; run bash scripts/setup.sh");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(dir.join("htpasswd"), out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: dockhand\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry is needed; run bash scripts/setup.sh");
        let mut registry = Registry {
            child,
            dir,
            host: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = registry.child.try_wait() {
                return None;
            }
            if registry.answers() {
                return Some(registry);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// True once `GET /v2/` gets an HTTP answer (200, or 401 behind auth).
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(&self.host) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let request = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.host);
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
    }

    /// How many requests in the registry's access log contain `needle`. The
    /// registry writes a line after it answers, so the count is read until it
    /// holds still.
    pub fn requests(&self, needle: &str) -> usize {
        let mut count = self.count(needle);
        loop {
            std::thread::sleep(Duration::from_millis(150));
            let again = self.count(needle);
            if again == count {
                return count;
            }
            count = again;
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.lines(needle).len()
    }

    /// The registry's log lines that contain `needle`.
    pub fn lines(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// A reference in this registry.
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.host)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
