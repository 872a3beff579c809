//! Containers reused by configuration: one container for every process of a
//! test run (or, when asked, across runs), found again by a hash of its whole
//! configuration and counted by the kernel's file locks.
//!
//! - [`key`]: the hash a reused container is found by;
//! - [`lock`]: who uses it (a shared `flock` per process, let go by the kernel
//!   however the process ends);
//! - [`reap`]: who removes it, and when (after the run, when nobody uses it);
//! - [`state`]: images of a configuration's initialised state, to start from.

pub(crate) mod key;
pub(crate) mod lock;
pub(crate) mod reap;
// Only the PostgreSQL module saves states so far; the generic part stays
// in `reuse`, where other modules will find it.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) mod state;

/// How long a reused container lives: for the test run, or across runs.
///
/// ```no_run
/// use dockhand::{Container, Reuse, WaitFor};
/// # async fn demo() -> dockhand::Result<()> {
/// // Every test, in every process of this `cargo test` or `cargo nextest run`,
/// // gets the same container; it is removed once the run is over.
/// let cache = Container::builder("redis:7-alpine")
///     .expose(6379)
///     .wait_for(WaitFor::port(6379))
///     .reuse(Reuse::Run)
///     .start()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Shared by every process of the test run (the `cargo test` or `cargo
    /// nextest run` that started them; a test binary started by hand is a run
    /// of its own), removed when the run is over and no process uses it —
    /// however the processes ended. `DOCKHAND_REUSE=1` turns it into
    /// [`Persistent`](Reuse::Persistent).
    Run,
    /// Kept across runs, for a fast edit-test loop: found again by its
    /// configuration, removed by `dockhand sweep --reused` when no process uses
    /// it, or by any sweep once it has been idle for a day.
    Persistent,
}

impl Reuse {
    /// What `DOCKHAND_REUSE` makes of it.
    pub(crate) fn effective(self) -> Reuse {
        if crate::config::reuse_across_runs() {
            Reuse::Persistent
        } else {
            self
        }
    }

    /// Its `dockhand.reuse` label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Reuse::Run => "run",
            Reuse::Persistent => "persistent",
        }
    }
}
