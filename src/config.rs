//! The `DOCKHAND_*` switches, read once each, in one table.
//!
//! | variable | effect |
//! |---|---|
//! | `DOCKHAND_KEEP=1` | keep every object instead of removing it (for debugging); such objects are labelled `dockhand.keep` and only `dockhand sweep --kept` (or `--all`) removes them |
//! | `DOCKHAND_KEEP=failed` | keep only what a test that panicked still held (its guards dropped during the panic), and print how to look inside; passing tests clean up as usual |
//! | `DOCKHAND_WATCHER=0` | start no watcher process (leaks after a SIGKILL are then left to the sweeper) |
//! | `DOCKHAND_SWEEP=0` | no background sweep of dead processes' objects on first use (it leaves those younger than a minute to their watcher) |
//! | `DOCKHAND_ENGINE_TIMEOUT=30` | seconds an engine may take to begin its reply to any call (120 by default); past them the call fails with an [`Error::Engine`](crate::Error) whose `is_timeout()` holds, naming the operation. Streams (logs followed, events, a build's output) may run longer once begun |
//! | `DOCKHAND_REUSE=1` | containers reused for the run ([`Reuse::Run`](crate::Reuse), the shared servers) are kept across runs instead, for a fast edit-test loop; `dockhand sweep --reused` removes them |

use std::sync::atomic::{AtomicBool, Ordering};

use once_cell::sync::Lazy;

static START_HOOK_RAN: AtomicBool = AtomicBool::new(false);

/// Called by the start-up hook, before `main`.
pub(crate) fn mark_start_hook_ran() {
    START_HOOK_RAN.store(true, Ordering::SeqCst);
}

/// Whether the start-up hook ran in this process. The watcher is only spawned
/// when it did: a binary in which the linker dropped the hook would otherwise
/// run its own `main` (its whole test suite) as the "watcher".
pub(crate) fn start_hook_ran() -> bool {
    START_HOOK_RAN.load(Ordering::SeqCst)
}

/// Whether this process's objects get a watcher: not when turned off, not
/// under `DOCKHAND_KEEP`, and not when the start-up hook did not run.
pub(crate) fn watcher_wanted() -> bool {
    !keep_all() && watcher_enabled() && start_hook_ran()
}

/// Whether a switch is on: set, not empty, and not `0` or `false`.
fn on(name: &str) -> Option<bool> {
    std::env::var(name)
        .ok()
        .map(|v| !v.is_empty() && v != "0" && v != "false")
}

/// `DOCKHAND_KEEP`: every object is kept instead of removed.
pub(crate) fn keep_all() -> bool {
    static KEEP_ALL: Lazy<bool> = Lazy::new(|| !keep_failed() && on("DOCKHAND_KEEP").unwrap_or(false));
    *KEEP_ALL
}

/// `DOCKHAND_KEEP=failed`: objects dropped while their thread panics are kept.
pub(crate) fn keep_failed() -> bool {
    static KEEP_FAILED: Lazy<bool> =
        Lazy::new(|| std::env::var("DOCKHAND_KEEP").is_ok_and(|v| v.eq_ignore_ascii_case("failed")));
    *KEEP_FAILED
}

/// `DOCKHAND_WATCHER`: on unless turned off.
pub(crate) fn watcher_enabled() -> bool {
    on("DOCKHAND_WATCHER").unwrap_or(true)
}

/// `DOCKHAND_SWEEP`: on unless turned off.
pub(crate) fn background_sweep_enabled() -> bool {
    on("DOCKHAND_SWEEP").unwrap_or(true)
}

/// `DOCKHAND_ENGINE_TIMEOUT`: seconds an engine call may wait for its reply
/// to begin; a value that is not a positive number of seconds is an error
/// at the first engine call, not a default.
pub(crate) fn engine_timeout_secs() -> std::result::Result<u64, String> {
    static TIMEOUT: Lazy<std::result::Result<u64, String>> =
        Lazy::new(|| parse_engine_timeout(std::env::var("DOCKHAND_ENGINE_TIMEOUT").ok().as_deref()));
    TIMEOUT.clone()
}

fn parse_engine_timeout(value: Option<&str>) -> std::result::Result<u64, String> {
    match value {
        None => Ok(120),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => Ok(secs),
            _ => Err(format!(
                "DOCKHAND_ENGINE_TIMEOUT={v:?} is not a positive number of seconds; set it to one (e.g. 30) or unset it for 120"
            )),
        },
    }
}

/// `DOCKHAND_REUSE`: containers reused for a run are kept across runs.
pub(crate) fn reuse_across_runs() -> bool {
    static REUSE: Lazy<bool> = Lazy::new(|| on("DOCKHAND_REUSE").unwrap_or(false));
    *REUSE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_timeout_is_seconds_or_an_error() {
        assert_eq!(parse_engine_timeout(None), Ok(120));
        assert_eq!(parse_engine_timeout(Some(" 5 ")), Ok(5));
        for bad in ["0", "-3", "2s", ""] {
            let err = parse_engine_timeout(Some(bad)).unwrap_err();
            assert!(err.contains("DOCKHAND_ENGINE_TIMEOUT"), "{err}");
        }
    }
}
