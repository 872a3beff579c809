//! # dockhand
//!
//! Real services in containers for Rust integration tests. Start a database in a
//! `#[tokio::test]`, reach it on a random host port of 127.0.0.1, exec into it,
//! read its logs, and know that everything the test created is removed when the
//! guard drops: under any tokio runtime flavour, outside a runtime, and during a
//! panic (which also prints the container's last log lines).
//!
//! ```no_run
//! use dockhand::{Container, WaitFor};
//!
//! # async fn demo() -> dockhand::Result<()> {
//! let web = Container::builder("fixtures/busybox:latest")
//!     .cmd(["sh", "-c", "echo ready; httpd -f -p 8080"])
//!     .expose(8080)
//!     .wait_for(WaitFor::log("ready"))
//!     .wait_for(WaitFor::port(8080))
//!     .start()
//!     .await?;
//! let addr = web.address(8080)?; // 127.0.0.1:<random>
//! let out = web.exec(["echo", "hi"]).await?;
//! assert_eq!(out.stdout_str(), "hi\n");
//! # Ok(()) }                          // removed here, even on panic
//! ```
//!
//! Readiness ([`WaitFor`]) is checked against the real service: a port wait is
//! not fooled by Docker's port proxy, which accepts connections before the
//! service listens. A failed start removes the container and returns
//! [`Error::NotReady`] with its state and last 50 log lines.
//!
//! Every object carries `dockhand.*` labels naming the owning process, so leaked
//! objects can be found and swept.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations)]

mod archive;
pub mod blocking;
mod channel;
mod config;
mod container;
mod endpoint;
mod engine;
mod engine_facts;
mod error;
mod events;
mod exec;
mod group;
mod hooks;
mod image;
mod instant;
mod inventory;
pub mod labels;
mod logs;
pub mod modules;
mod network;
mod owned;
mod podman;
mod port;
mod remove;
mod reuse;
mod session;
mod shared;
mod signals;
mod stats;
mod sweep;
mod units;
mod user_dir;
mod volume;
mod wait;
mod watcher;
mod worker;

pub use bollard;
pub use channel::{ChannelStatus, JsonChannel};
pub use container::{Container, ContainerBuilder, Healthcheck, RestartPolicy};
pub use endpoint::EngineConfig;
pub use engine::{Engine, EngineKind};
pub use error::{ChannelProblem, Error, NotReady, NotReadyReason, Result};
pub use events::{Event, EventStream, EventsBuilder};
pub use exec::{Exec, ExecOutput};
pub use group::{
    Action, Change, DesiredStatus, Group, GroupBuilder, Reconciled, Replica, ReplicaEvent, ReplicaEvents,
};
pub use image::{BuildContext, Image, ImageInfo, PullOptions, PullPolicy, Pulled, RegistryAuth};
pub use instant::engine_time;
pub use inventory::{ManagedObject, OwnerState, RemovalReport, Scope};
pub use logs::{LogLine, LogSource, LogStream, Logs};
pub use network::{Network, NetworkBuilder};
pub use port::{Port, Protocol};
pub use remove::ObjectKind;
pub use reuse::Reuse;
pub use session::session_id;
pub use shared::SharedContainer;
pub use signals::cleanup_on_signals;
pub use stats::{NetworkIo, Stats, StatsStream};
pub use sweep::{SweepReport, Sweeper};
pub use volume::{Mount, Volume, VolumeBuilder};
pub use wait::{HttpWait, LogWait, ProtocolWait, WaitFor};
pub use worker::wait_for_cleanup;
