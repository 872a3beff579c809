//! Starting the service as its users do (the binary, on a free port) and
//! talking to it with a Socket.IO client that is not ours (`rust_socketio`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

/// How many requests of each operation each service (by its URL) has
/// received, from its operation log: whether a request that got no answer
/// reached its service at all. Counted per service, because the tests of one
/// binary run side by side and another's service may be asked the same.
static ASKED: Mutex<BTreeMap<(String, String), u64>> = Mutex::new(BTreeMap::new());

fn asked(service: &str, operation: &str) -> u64 {
    let key = (service.to_string(), operation.to_string());
    ASKED.lock().unwrap().get(&key).copied().unwrap_or(0)
}

/// A running `dockhand-serve`, stopped with SIGTERM when dropped.
pub struct Served {
    pub child: Child,
    pub url: String,
    /// Its stdout after the listening line.
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Served {
    pub fn start(args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dockhand-serve"))
            .args(["--port", "0"])
            .args(args)
            // Each request and answer on stderr, which the runner shows when a test fails.
            .env("DOCKHAND_SERVE_LOG", "operations")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dockhand-serve");
        let log = BufReader::new(child.stderr.take().unwrap());
        // The URL is known once the service listens, before any client asks.
        let service = Arc::new(std::sync::OnceLock::<String>::new());
        let named = service.clone();
        std::thread::spawn(move || {
            for line in log.lines().map_while(|l| l.ok()) {
                if let Some((_, operation)) = line.split_once(" asks ") {
                    let key = (named.get().cloned().unwrap_or_default(), operation.to_string());
                    *ASKED.lock().unwrap().entry(key).or_default() += 1;
                }
                eprintln!("{line}");
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next()
            .and_then(|l| l.ok())
            .unwrap_or_else(|| panic!("dockhand-serve ended before it listened: {:?}", child.wait()));
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        let _ = service.set(url.clone());
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(|l| l.ok()) {
                sink.lock().unwrap().push(line);
            }
        });
        Served { child, url, output }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits for the exit (at most `limit`).
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let begun = Instant::now();
        while begun.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.terminate(Duration::from_secs(20)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A connected client, and every event pushed to it.
pub struct Peer {
    pub client: Client,
    pub pushed: mpsc::UnboundedReceiver<(String, Value)>,
    pub seen: Vec<(String, Value)>,
    /// Why the service refused the connect, if it did.
    pub refused: Option<String>,
    /// The URL it connected to: which service's requests to count.
    pub url: String,
}

/// Connects; a connect that rust_socketio itself fails ("EngineIO Error",
/// seen now and then on a loaded machine, the service having refused
/// nothing) is tried again, twice at most. A refusal by the service is kept.
const NO_ANSWER: &str = "no answer to the namespace connect";

pub async fn connect(url: &str, auth: Option<Value>) -> Peer {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let peer = connect_once(url, auth.clone()).await;
        match &peer.refused {
            Some(why) if (why.contains("EngineIO Error") || why.starts_with(NO_ANSWER)) && attempt < 3 => {
                eprintln!("rust_socketio failed its connect ({why}); connecting again");
                let _ = peer.client.disconnect().await;
            }
            Some(why) if why.starts_with(NO_ANSWER) => panic!("{why}, three times"),
            _ => return peer,
        }
    }
}

async fn connect_once(url: &str, auth: Option<Value>) -> Peer {
    let (tx, pushed) = mpsc::unbounded_channel();
    let mut builder = ClientBuilder::new(url)
        .transport_type(TransportType::Websocket)
        .reconnect(false);
    if let Some(auth) = auth {
        builder = builder.auth(auth);
    }
    let builder = builder.on_any(move |event, payload, _| {
        let tx = tx.clone();
        async move {
            if let Payload::Text(values) = payload {
                let _ = tx.send((
                    event.to_string(),
                    values.into_iter().next().unwrap_or(Value::Null),
                ));
            }
        }
        .boxed()
    });
    // `connect` returns once the transport is open; events sent before the
    // namespace's CONNECT is answered would be dropped, so wait for it.
    let (connected_tx, connected) = oneshot::channel();
    let connected_tx = Arc::new(Mutex::new(Some(connected_tx)));
    let refused_tx = connected_tx.clone();
    let builder = builder
        .on(Event::Connect, move |_, _| {
            if let Some(tx) = connected_tx.lock().unwrap().take() {
                let _ = tx.send(Ok(()));
            }
            async {}.boxed()
        })
        .on(Event::Error, move |payload, _| {
            eprintln!("socket.io client error: {payload:?}");
            if let Some(tx) = refused_tx.lock().unwrap().take() {
                let _ = tx.send(Err(format!("{payload:?}")));
            }
            async {}.boxed()
        });
    let client = builder.connect().await.expect("connect to dockhand-serve");
    let refused = match tokio::time::timeout(Duration::from_secs(10), connected).await {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(refusal))) => Some(refusal),
        _ => Some(NO_ANSWER.to_string()),
    };
    Peer {
        client,
        pushed,
        seen: Vec::new(),
        refused,
        url: url.to_string(),
    }
}

impl Peer {
    /// Emits `event` and waits for its acknowledgement.
    pub async fn call(&self, event: &str, data: Value) -> Value {
        call(&self.client, &self.url, event, data).await
    }

    /// Waits for a pushed event that `matches`, keeping what came before.
    pub async fn expect(&mut self, event: &str, limit: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some((_, v)) = self.seen.iter().find(|(e, v)| e == event && matches(v)) {
            return v.clone();
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let next = tokio::time::timeout_at(deadline, self.pushed.recv()).await;
            match next {
                Ok(Some((e, v))) => {
                    self.seen.push((e.clone(), v.clone()));
                    if e == event && matches(&v) {
                        return v;
                    }
                }
                _ => panic!("no {event} push within {limit:?}; seen: {:?}", self.seen),
            }
        }
    }
}

/// How long a request may go unseen by every service before it is sent again.
const UNSEEN: Duration = Duration::from_secs(20);

/// Emits `event` and waits for its acknowledgement (120 s at most).
///
/// Under CPU burners rust_socketio now and then loses an emit on an open
/// connection: the service never logs the request, and no answer can come.
/// That is the client's defect, not the service's, so such a request is sent
/// again, twice at most — only when `service` (the URL the client connected
/// to) has received no `event` request since it was sent, so that none is
/// done twice.
pub async fn call(client: &Client, service: &str, event: &str, data: Value) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    for attempt in 0..3 {
        let before = asked(service, event);
        let reply = emit_once(client, event, data.clone());
        let mut reply = std::pin::pin!(reply);
        let unseen_until = (tokio::time::Instant::now() + UNSEEN).min(deadline);
        if let Ok(answer) = tokio::time::timeout_at(unseen_until, &mut reply).await {
            return answer;
        }
        if asked(service, event) == before && attempt < 2 {
            eprintln!("the service never received {event} (attempt {attempt}); sending it again");
            continue;
        }
        if let Ok(answer) = tokio::time::timeout_at(deadline, &mut reply).await {
            return answer;
        }
        break;
    }
    panic!(
        "no reply to {event} within 120 s, at {:?}",
        std::time::SystemTime::now()
    )
}

async fn emit_once(client: &Client, event: &str, data: Value) -> Value {
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    client
        .emit_with_ack(
            event,
            data,
            Duration::from_secs(120),
            move |payload: Payload, _| {
                let tx = tx.clone();
                async move {
                    if let (Payload::Text(values), Some(tx)) = (payload, tx.lock().unwrap().take()) {
                        // The acknowledgement's arguments, as one array.
                        let first = match values.into_iter().next() {
                            Some(Value::Array(args)) => args.into_iter().next(),
                            other => other,
                        };
                        let _ = tx.send(first.unwrap_or(Value::Null));
                    }
                }
                .boxed()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("emit {event} at {:?}: {e:?}", std::time::SystemTime::now()));
    match rx.await {
        Ok(reply) => reply,
        // The sender went with a timed-out ack: never answered.
        Err(_) => std::future::pending().await,
    }
}

/// Asserts a reply is not an error, and returns it.
pub fn ok(reply: Value) -> Value {
    assert!(reply.get("error").is_none(), "an error reply: {reply}");
    reply
}

/// Asserts a reply is an error in the one format, of this type.
pub fn failed(reply: &Value, error_type: &str, operation: &str) {
    assert_eq!(reply["error"], true, "{reply}");
    assert_eq!(reply["error_type"], error_type, "{reply}");
    assert_eq!(reply["details"]["operation"], operation, "{reply}");
    assert!(
        reply["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{reply}"
    );
    assert!(
        reply["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{reply}"
    );
}

/// Containers whose owner is the process `pid` (the service), by the docker CLI.
pub fn containers_of(pid: u32) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=dockhand.owner.pid={pid}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let begun = Instant::now();
    while begun.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

pub const BUSYBOX: &str = "fixtures/busybox:latest";
/// The Debian-based fixture with perl, for channel listeners.
pub const PERL_IMAGE: &str = "fixtures/redis:7";

pub fn json_create(command: &str) -> Value {
    json!({"image": BUSYBOX, "command": command})
}
