//! `dockhand-serve`: container lifecycles driven over Socket.IO by clients
//! that are not Rust tests, what happens pushed to them live, and a page.
//!
//! Every event is answered through its acknowledgement: the operation's JSON,
//! or `{error: true, error_type, message, details: {container_id, operation},
//! timestamp}`. Events: `create`, `start`, `stop`, `restart`, `update`,
//! `delete`, `keep`, `status`, `list`, `logs`, `send-message`, `watch`,
//! `unwatch`, `machine`, `machine-logs`. Pushed: `container-event`, `stats`
//! (to the watchers of a container), `activity`, and `service-error` for an
//! event the service does not know.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let options = dockhand_serve::Options::default();
//! dockhand_serve::run(options).await?;
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]

mod entry;
mod machine;
mod push;
mod reply;
mod requests;
mod service;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use socketioxide::SocketIo;

use reply::{Failure, Reply};
use service::Service;

/// The page, served at `/`.
const PAGE: &str = include_str!("page.html");

/// How the service is started.
///
/// ```
/// let o = dockhand_serve::Options::default();
/// assert_eq!(o.port, 7700);
/// assert!(o.bind.is_loopback());
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    /// The address to listen on; loopback unless asked otherwise.
    pub bind: IpAddr,
    /// The port; 0 picks a free one (printed at start).
    pub port: u16,
    /// The token clients must give (`auth: {token}`, or `?token=` for the
    /// page); required off loopback.
    pub token: Option<String>,
    /// Leave the service's containers in the engine at shutdown.
    pub keep: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 7700,
            token: None,
            keep: false,
        }
    }
}

impl Options {
    /// Why these options cannot be served, if they cannot.
    ///
    /// ```
    /// let mut o = dockhand_serve::Options::default();
    /// o.bind = "0.0.0.0".parse().unwrap();
    /// assert!(o.problem().unwrap().contains("--token"));
    /// ```
    pub fn problem(&self) -> Option<String> {
        if !self.bind.is_loopback() && self.token.as_deref().is_none_or(str::is_empty) {
            return Some(format!(
                "{} is not a loopback address: give --token (or DOCKHAND_SERVE_TOKEN) so that only clients \
                 that have it can drive containers",
                self.bind
            ));
        }
        None
    }
}

/// How many packets may wait for one client before pushes to it are dropped.
const MAX_QUEUED: usize = 16 * 1024;

/// What the handlers share.
struct Serve {
    service: Service,
    token: Option<String>,
}

/// The events that act on containers; each is answered through its ack.
const OPERATIONS: [&str; 15] = [
    "create",
    "start",
    "stop",
    "restart",
    "update",
    "delete",
    "keep",
    "status",
    "list",
    "logs",
    "send-message",
    "watch",
    "unwatch",
    "machine",
    "machine-logs",
];

/// Serves until SIGINT or SIGTERM, then removes (or keeps) its containers.
pub async fn run(options: Options) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if let Some(problem) = options.problem() {
        return Err(problem.into());
    }
    let engine = dockhand::Engine::connect().await?;
    let (layer, io) = SocketIo::builder()
        .ack_timeout(Duration::from_secs(120))
        // Packets queued per client. The pushes come in bursts (the events of
        // every dockhand object on the engine, a line per operation of every
        // client), and a queue that is full also refuses the heartbeat's
        // ping, which closes the connection: with the default of 128, one of
        // twenty clients was cut off while a test suite ran beside it.
        .max_buffer_size(MAX_QUEUED)
        .build_layer();
    let serve = Arc::new(Serve {
        service: Service::new(engine.clone(), io.clone()),
        token: options.token.clone(),
    });
    admit_clients(&io, serve.clone(), options.token.clone());
    push::feed(engine.clone(), io.clone());
    let app = axum::Router::new()
        .route("/", get(page))
        .route("/healthz", get(async || "ok"))
        .with_state(serve.clone())
        .layer(layer);
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(options.bind, options.port)).await?;
    let address = listener.local_addr()?;
    println!(
        "dockhand-serve listening on http://{address} (engine {})",
        engine.endpoint()
    );
    let signalled = Arc::new(tokio::sync::Notify::new());
    let told = signalled.clone();
    let served = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        told.notify_one();
    });
    // A graceful shutdown waits for every HTTP connection to end; one a
    // client left half-open (a failed upgrade) would hold the exit forever.
    let mut stopping = None;
    tokio::select! {
        result = served.into_future() => result?,
        _ = async {
            signalled.notified().await;
            stopping = Some(std::time::Instant::now());
            tokio::time::sleep(CONNECTIONS_GRACE).await;
        } => eprintln!(
            "dockhand-serve: connections still open {}s after the signal; closing them",
            CONNECTIONS_GRACE.as_secs()
        ),
    }
    let stopping = stopping.unwrap_or_else(std::time::Instant::now);
    // Each stage of the exit is bounded and reported, so a service that is
    // slow to go says where (CI once saw one outlive its test's 20 s).
    if tokio::time::timeout(CLOSE_GRACE, io.close()).await.is_err() {
        eprintln!(
            "dockhand-serve: Socket.IO sockets still closing {}s on; leaving them",
            CLOSE_GRACE.as_secs()
        );
    }
    eprintln!(
        "dockhand-serve: connections closed after {:?}",
        stopping.elapsed()
    );
    finish(&serve.service, options.keep).await;
    eprintln!("dockhand-serve: stopped after {:?}", stopping.elapsed());
    Ok(())
}

/// Serves the clients that connect with `token` (any, without one); a client
/// without it is refused at its connect (a Socket.IO CONNECT_ERROR), before
/// any event of it is read.
fn admit_clients(io: &SocketIo, serve: Arc<Serve>, token: Option<String>) {
    let handler = move |socket: SocketRef, TryData(auth): TryData<Value>| {
        let state = serve.clone();
        async move { on_connect(state, socket, auth.ok()) }
    };
    let check = move |TryData(auth): TryData<Value>| {
        let token = token.clone();
        async move {
            let given = auth.ok();
            let given = given
                .as_ref()
                .and_then(|a| a.get("token"))
                .and_then(Value::as_str);
            match authorised(&token, given) {
                true => Ok(()),
                false => Err(Unauthorized),
            }
        }
    };
    io.ns("/", handler.with(check));
}

/// How long open HTTP connections may hold the exit after SIGTERM or Ctrl-C.
const CONNECTIONS_GRACE: Duration = Duration::from_secs(5);

/// How long the Socket.IO sockets may take to close after that.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
    }
}

/// Removes every container of the service's (or keeps them, as asked).
async fn finish(service: &Service, keep: bool) {
    let entries = service.take_all();
    let count = entries.len();
    if keep {
        for entry in entries {
            println!(
                "dockhand-serve: keeping {} ({})",
                entry.container.name(),
                entry.container.id()
            );
            service::keep(entry);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        return;
    }
    let removals: Vec<_> = entries.into_iter().map(service::remove).collect();
    for result in futures_util::future::join_all(removals).await {
        if let Err(err) = result {
            eprintln!("dockhand-serve: {err}");
        }
    }
    println!("dockhand-serve: removed {count} containers");
}

fn authorised(expected: &Option<String>, given: Option<&str>) -> bool {
    match expected {
        None => true,
        Some(token) => given == Some(token.as_str()),
    }
}

/// Why a connect was refused.
#[derive(Debug)]
struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unauthorized: this service wants a token; connect with auth {\"token\": \"...\"}")
    }
}

/// A client is given the events of every dockhand object on the engine,
/// unless it connects with `auth: {events: "service"}` for the service's own.
fn on_connect(state: Arc<Serve>, socket: SocketRef, auth: Option<Value>) {
    let own_only = auth
        .as_ref()
        .and_then(|a| a.get("events"))
        .and_then(Value::as_str)
        == Some("service");
    socket.join(if own_only {
        push::OWN_EVENTS
    } else {
        push::EVERY_EVENT
    });
    socket.on_disconnect(async |socket: SocketRef, reason: DisconnectReason| {
        if !matches!(
            reason,
            DisconnectReason::ClientNSDisconnect
                | DisconnectReason::ServerNSDisconnect
                | DisconnectReason::ClosingServer
        ) {
            eprintln!("dockhand-serve: client {} disconnected: {reason:?}", socket.id);
        }
    });
    for operation in OPERATIONS {
        let state = state.clone();
        socket.on(
            operation,
            move |socket: SocketRef, TryData(data): TryData<Value>, ack: AckSender| {
                let state = state.clone();
                async move {
                    let begun = std::time::Instant::now();
                    if log_operations() {
                        eprintln!("dockhand-serve: {} asks {operation}", socket.id);
                    }
                    let reply = dispatch(&state, &socket, operation, data.unwrap_or(Value::Null)).await;
                    report(&state, operation, &reply).await;
                    let sent = ack.send(&reply::to_json(&reply));
                    if log_operations() {
                        let ms = begun.elapsed().as_secs_f64() * 1000.0;
                        let outcome = match (&reply, sent) {
                            (_, Err(err)) => format!("its answer was not sent: {err}"),
                            (Ok(_), Ok(())) => "answered".to_string(),
                            (Err(f), Ok(())) => format!("answered {}", f.error_type),
                        };
                        eprintln!(
                            "dockhand-serve: {} {operation}: {outcome} after {ms:.1} ms",
                            socket.id
                        );
                    }
                }
            },
        );
    }
    socket.on_fallback(
        |socket: SocketRef, Event(event): Event, ack: AckSender| async move {
            let failure = Failure::new(
                "validation",
                "event",
                format!(
                    "unknown event {event:?}; the events are: {}",
                    OPERATIONS.join(", ")
                ),
            );
            let _ = socket.emit("service-error", &failure.to_json());
            let _ = ack.send(&failure.to_json());
        },
    );
}

/// Whether each request and its answer are logged to stderr
/// (`DOCKHAND_SERVE_LOG=operations`): what a client that saw no answer needs.
fn log_operations() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("DOCKHAND_SERVE_LOG").is_ok_and(|v| v == "operations"))
}

async fn dispatch(state: &Serve, socket: &SocketRef, operation: &'static str, data: Value) -> Reply {
    let service = &state.service;
    match operation {
        "create" => service.create(data).await,
        "start" => service.start(data).await,
        "stop" => service.stop(data).await,
        "restart" => service.restart(data).await,
        "update" => service.update(data).await,
        "delete" => service.delete(data).await,
        "keep" => service.keep(data),
        "status" => service.status(data).await,
        "list" => service.list().await,
        "logs" => service.logs(data).await,
        "send-message" => service.send_message(data).await,
        "watch" | "unwatch" => {
            let target: requests::Target = requests::parse(operation, data)?;
            let entry = service.find(operation, &target.id)?;
            let room = push::stats_room(entry.container.id());
            if operation == "watch" {
                socket.join(room);
                push::sample(&service.io, &entry);
            } else {
                socket.leave(room);
            }
            Ok(json!({"id": entry.container.id(), "watching": operation == "watch"}))
        }
        "machine" => machine::objects(&service.engine, &service.ids()).await,
        "machine-logs" => machine::logs(&service.engine, data).await,
        _ => Err(Failure::new("validation", operation, "unknown operation")),
    }
}

/// The activity line of an operation, to every client.
async fn report(state: &Serve, operation: &'static str, reply: &Reply) {
    if matches!(operation, "status" | "list" | "logs" | "machine" | "machine-logs") {
        return;
    }
    let (line, container, ok) = match reply {
        Ok(value) => {
            let name = value["name"].as_str().or(value["id"].as_str()).unwrap_or("");
            let detail = match operation {
                "create" => format!(" from {}", value["image"].as_str().unwrap_or("?")),
                _ => String::new(),
            };
            (
                format!("{operation} {name}{detail}: done"),
                value["id"].as_str().map(str::to_string),
                true,
            )
        }
        Err(failure) => (
            format!("{operation} failed ({}): {}", failure.error_type, failure.message),
            failure.container_id.clone(),
            false,
        ),
    };
    push::activity(&state.service.io, operation, container.as_deref(), line, ok).await;
}

#[derive(serde::Deserialize)]
struct PageQuery {
    token: Option<String>,
}

async fn page(State(state): State<Arc<Serve>>, Query(query): Query<PageQuery>) -> Response {
    if !authorised(&state.token, query.token.as_deref()) {
        return (
            StatusCode::UNAUTHORIZED,
            "this service wants a token: open /?token=<token>",
        )
            .into_response();
    }
    Html(PAGE).into_response()
}
