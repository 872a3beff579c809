//! The management service (`serve/`): the round trip of a `status` request
//! from a Socket.IO client (beside the engine's own inspect, the least a
//! status can cost), and the time from a kill request to the client holding
//! the `die` push (beside the engine's event stream read directly; timed from
//! the request because the push can arrive before the kill's own answer).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::events::{die_events, kill};
use crate::{ms, report_distribution, Bench};

/// The release build of `dockhand-serve`, beside this example's own.
fn binary() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", "dockhand-serve"])
        .status()
        .expect("cargo build -p dockhand-serve");
    assert!(status.success(), "building dockhand-serve failed");
    let exe = std::env::current_exe().expect("own path");
    exe.parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join("dockhand-serve")
}

struct Served(Child, String);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn serve() -> Served {
    use std::io::BufRead;
    let mut child = Command::new(binary())
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start dockhand-serve");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).expect("the listening line");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("address")
        .to_string();
    std::thread::spawn(move || lines.for_each(drop));
    Served(child, url)
}

async fn connect(url: &str) -> (Client, mpsc::UnboundedReceiver<Value>) {
    let (tx, pushed) = mpsc::unbounded_channel();
    let (up_tx, up) = oneshot::channel();
    let up_tx = Arc::new(Mutex::new(Some(up_tx)));
    let client = ClientBuilder::new(url)
        .transport_type(TransportType::Websocket)
        .on("container-event", move |payload, _| {
            if let Payload::Text(values) = payload {
                let _ = tx.send(values.into_iter().next().unwrap_or(Value::Null));
            }
            async {}.boxed()
        })
        .on(Event::Connect, move |_, _| {
            if let Some(tx) = up_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
            async {}.boxed()
        })
        .connect()
        .await
        .expect("connect");
    tokio::time::timeout(Duration::from_secs(10), up)
        .await
        .expect("namespace connect")
        .ok();
    (client, pushed)
}

async fn call(client: &Client, event: &str, data: Value) -> Value {
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    client
        .emit_with_ack(event, data, Duration::from_secs(60), move |payload, _| {
            if let (Payload::Text(values), Some(tx)) = (payload, tx.lock().unwrap().take()) {
                let first = match values.into_iter().next() {
                    Some(Value::Array(args)) => args.into_iter().next(),
                    other => other,
                };
                let _ = tx.send(first.unwrap_or(Value::Null));
            }
            async {}.boxed()
        })
        .await
        .expect("emit");
    let reply = tokio::time::timeout(Duration::from_secs(60), rx)
        .await
        .expect("reply")
        .expect("reply");
    assert!(reply.get("error").is_none(), "{event}: {reply}");
    reply
}

/// `serve_status` and `serve_die_push`.
pub async fn serve_workloads(bench: &Bench) {
    let (status_runs, die_runs) = (bench.runs("serve_status", 50), bench.runs("serve_die_push", 10));
    if status_runs == 0 && die_runs == 0 {
        return;
    }
    let served = serve();
    let (client, mut pushed) = connect(&served.1).await;
    let sleeper = json!({"image": bench.image, "command": "exec sleep 600", "init": true});
    if status_runs > 0 {
        let id = call(&client, "create", sleeper.clone()).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (mut d, mut b) = (Vec::new(), Vec::new());
        for _ in 0..status_runs {
            let t = Instant::now();
            call(&client, "status", json!({"id": id})).await;
            d.push(ms(t));
            let t = Instant::now();
            bench.raw.inspect_container(&id, None).await.expect("inspect");
            b.push(ms(t));
        }
        report_distribution("serve_status", &d, &b);
        call(&client, "delete", json!({"id": id})).await;
    }
    let (mut d, mut b) = (Vec::new(), Vec::new());
    for _ in 0..die_runs {
        let id = call(&client, "create", sleeper.clone()).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        // From the kill request: the push can arrive before the kill's own
        // answer does.
        let t = Instant::now();
        kill(bench, &id).await;
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), pushed.recv())
                .await
                .expect("a push")
                .unwrap();
            if event["id"] == id.as_str() && event["verb"] == "die" {
                break;
            }
        }
        d.push(ms(t));
        call(&client, "delete", json!({"id": id})).await;

        let id = call(&client, "create", sleeper.clone()).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let mut events = die_events(bench, &id);
        let t = Instant::now();
        kill(bench, &id).await;
        events.next().await.expect("a die event").expect("event");
        b.push(ms(t));
        call(&client, "delete", json!({"id": id})).await;
    }
    report_distribution("serve_die_push", &d, &b);
    drop(client);
}
