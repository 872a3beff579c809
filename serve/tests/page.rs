//! The page in a real browser: headless Chromium (Debian's), driven over the
//! Chrome DevTools protocol. It must show the service's containers live (state,
//! stats, events, log tail, the machine's objects) and its buttons must act.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{connect, containers_of, ok, wait_until, Served, BUSYBOX};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A headless Chromium showing one page, killed when dropped.
struct Browser {
    child: Child,
    socket: Socket,
    next: u64,
    profile: std::path::PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn http_json(port: u16, path: &str) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)))
}

impl Browser {
    async fn open(url: &str) -> Browser {
        let profile = std::env::temp_dir().join(format!("dockhand-serve-chromium-{}", std::process::id()));
        let mut child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium (scripts/setup.sh installs it)");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let devtools = lines
            .by_ref()
            .map_while(|l| l.ok())
            .find_map(|l| {
                l.split_once("DevTools listening on ")
                    .map(|(_, u)| u.trim().to_string())
            })
            .expect("chromium printed no DevTools address");
        std::thread::spawn(move || lines.for_each(drop));
        let port: u16 = devtools
            .split(':')
            .nth(2)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let begun = Instant::now();
        let page = loop {
            let targets = http_json(port, "/json/list");
            let found = targets
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["type"] == "page")
                .cloned();
            if let Some(page) = found {
                break page;
            }
            assert!(
                begun.elapsed() < Duration::from_secs(20),
                "no page target: {targets}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // Its own address, which may name `localhost` (and so ::1 first).
        let path = page["webSocketDebuggerUrl"]
            .as_str()
            .unwrap()
            .splitn(4, '/')
            .nth(3)
            .unwrap()
            .to_string();
        let address = format!("ws://127.0.0.1:{port}/{path}");
        let (socket, _) = tokio_tungstenite::connect_async(&address)
            .await
            .expect("DevTools socket");
        Browser {
            child,
            socket,
            next: 0,
            profile,
        }
    }

    /// Runs `expression` in the page and returns its value.
    async fn eval(&mut self, expression: &str) -> Value {
        self.next += 1;
        let id = self.next;
        let call = json!({"id": id, "method": "Runtime.evaluate",
                          "params": {"expression": expression, "returnByValue": true, "awaitPromise": true}});
        self.socket.send(Message::text(call.to_string())).await.unwrap();
        while let Some(message) = self.socket.next().await {
            let Ok(Message::Text(text)) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["id"] == id {
                return value["result"]["result"]["value"].clone();
            }
        }
        panic!("the DevTools socket closed");
    }

    /// Waits until `expression` is true in the page.
    async fn until(&mut self, what: &str, expression: &str) {
        let begun = Instant::now();
        while begun.elapsed() < Duration::from_secs(30) {
            if self.eval(expression).await == true {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let body = self.eval("document.body.innerText").await;
        panic!(
            "the page never showed {what}; it shows:\n{}",
            body.as_str().unwrap_or("")
        );
    }
}

fn running(id: &str) -> bool {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}}", id])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "true"
}

fn row(id: &str, inner: &str) -> String {
    format!("document.querySelector('tr[data-id=\"{id}\"] {inner}')")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_containers_live_and_its_buttons_act() {
    let served = Served::start(&[]);
    let peer = connect(&served.url, None).await;
    let created = ok(peer
        .call(
            "create",
            json!({"image": BUSYBOX, "command": "echo page-test-line; exec sleep 600", "init": true}),
        )
        .await);
    let id = created["id"].as_str().unwrap().to_string();
    let mut browser = Browser::open(&served.url).await;

    browser
        .until(
            "the connection",
            "document.getElementById('status').textContent === 'connected'",
        )
        .await;
    browser
        .until(
            "the container running",
            &format!("{}?.textContent === 'running'", row(&id, ".state")),
        )
        .await;
    browser
        .until(
            "its memory from the pushed stats",
            &format!("({}?.textContent || '').endsWith('B')", row(&id, ".mem")),
        )
        .await;
    browser
        .until(
            "the container among the machine's objects",
            &format!("[...document.querySelectorAll('#machine tr')].some(r => r.dataset.object === '{id}' && r.innerText.includes('this service'))"),
        )
        .await;

    // Selecting it shows its log tail.
    browser.eval(&format!("{}.click()", row(&id, ".name"))).await;
    browser
        .until(
            "the log tail",
            "document.getElementById('logs').textContent.includes('page-test-line')",
        )
        .await;

    // The stop button stops it in the engine; the page and its event feed say so.
    browser
        .eval(&format!("{}.click()", row(&id, "button.stop")))
        .await;
    assert!(
        wait_until(Duration::from_secs(30), || !running(&id)),
        "the stop button did not stop it"
    );
    browser
        .until(
            "the container exited",
            &format!("{}?.textContent === 'exited'", row(&id, ".state")),
        )
        .await;
    browser
        .until(
            "the die event",
            "[...document.querySelectorAll('#events li')].some(li => li.dataset.action === 'die')",
        )
        .await;
    browser
        .eval(&format!("{}.click()", row(&id, "button.start")))
        .await;
    assert!(
        wait_until(Duration::from_secs(30), || running(&id)),
        "the start button did not start it"
    );

    // The create form makes one more; its remove button removes it.
    browser
        .eval("document.getElementById('create-command').value = 'exec sleep 300'; document.querySelector('#create button').click(); true")
        .await;
    browser
        .until(
            "the second container",
            "document.querySelectorAll('#containers tr').length === 2",
        )
        .await;
    let second = browser
        .eval(&format!(
            "[...document.querySelectorAll('#containers tr')].map(r => r.dataset.id).find(i => i !== '{id}')"
        ))
        .await;
    let second = second.as_str().expect("the second row's id").to_string();
    assert_eq!(containers_of(served.pid()).len(), 2);
    browser
        .eval(&format!("{}.click()", row(&second, "button.remove")))
        .await;
    assert!(
        wait_until(Duration::from_secs(30), || containers_of(served.pid()).len() == 1),
        "remove left it"
    );

    // Keep leaves the first in the engine for good, out of the service's hands.
    browser
        .eval(&format!("{}.click()", row(&id, "button.keep")))
        .await;
    browser
        .until(
            "the kept container gone from the list",
            "document.querySelectorAll('#containers tr').length === 0",
        )
        .await;
    drop(browser);
    drop(served);
    let kept = running(&id);
    let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    assert!(kept, "a kept container was removed at shutdown");
}
