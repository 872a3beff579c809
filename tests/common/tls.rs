//! A real TLS endpoint in front of the engine for the remote-engine tests:
//! certificates made with the openssl CLI, and stunnel on a free loopback port
//! that demands a client certificate signed by the test's own CA.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A CA, a server certificate for 127.0.0.1, and client certificates.
pub struct Pki {
    pub dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// A fresh CA in its own directory.
    pub fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("dockhand-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=dockhand test CA",
                "-keyout",
                "ca-key.pem",
                "-out",
                "ca.pem",
            ],
        );
        Pki { dir }
    }

    /// A key and certificate signed by this CA, for `cn`, with `ext` (an
    /// openssl extension line) if any.
    fn issue(&self, name: &str, cn: &str, ext: Option<&str>) {
        let (key, csr, cert) = (
            format!("{name}-key.pem"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
        );
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &cert,
        ];
        let ext_file = format!("{name}.ext");
        if let Some(ext) = ext {
            std::fs::write(self.dir.join(&ext_file), ext).unwrap();
            args.extend(["-extfile", &ext_file]);
        }
        openssl(&self.dir, &args);
    }

    /// A directory as `DOCKER_CERT_PATH` holds it (ca.pem, cert.pem,
    /// key.pem), with a client certificate of this CA.
    pub fn client_dir(&self, name: &str) -> PathBuf {
        self.issue(name, name, Some("extendedKeyUsage = clientAuth\n"));
        let out = self.dir.join(name);
        std::fs::create_dir_all(&out).unwrap();
        std::fs::copy(self.dir.join("ca.pem"), out.join("ca.pem")).unwrap();
        std::fs::copy(self.dir.join(format!("{name}.pem")), out.join("cert.pem")).unwrap();
        std::fs::copy(self.dir.join(format!("{name}-key.pem")), out.join("key.pem")).unwrap();
        out
    }
}

/// socat serving TLS on 127.0.0.1 and passing it on to the engine's socket.
pub struct TlsEndpoint {
    pub port: u16,
    child: Child,
}

impl TlsEndpoint {
    /// Listens on a free port; only clients with a certificate of `pki`'s
    /// CA get through. (stunnel rather than socat: socat's OpenSSL server
    /// refuses a client's session resumption once it verifies client
    /// certificates, and rustls resumes.)
    pub fn start(pki: &Pki) -> TlsEndpoint {
        pki.issue(
            "server",
            "127.0.0.1",
            Some("subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n"),
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = pki.dir.display();
        let config = format!(
            "foreground = yes\npid =\n[docker]\naccept = 127.0.0.1:{port}\nconnect = /var/run/docker.sock\n\
             cert = {dir}/server.pem\nkey = {dir}/server-key.pem\nCAfile = {dir}/ca.pem\n\
             verifyChain = yes\nrequireCert = yes\n"
        );
        let config_path = pki.dir.join(format!("stunnel-{port}.conf"));
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new("stunnel")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("stunnel (scripts/setup.sh installs stunnel4)");
        let begun = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                begun.elapsed() < Duration::from_secs(10),
                "stunnel did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        TlsEndpoint { port, child }
    }

    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsEndpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
