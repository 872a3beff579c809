//! The one module allowed `unsafe`: hooks into the process's start and exit.
//!
//! - at exit (`atexit`): finish the removals handed to the cleanup worker, since
//!   Rust statics never drop and libtest's `main` returns into `exit`;
//! - at start (a `ctor` constructor, before `main`): a process started as a
//!   dockhand watcher runs the watcher and exits, so libtest never starts in it;
//! - after a cleanup on SIGINT/SIGTERM: restore the default action and raise the
//!   signal again, so the process dies by it as it would have.
#![allow(unsafe_code)]

/// Registers `hook` with the C runtime's `atexit`. Returns false when the C
/// runtime refused it (its table is full).
pub(crate) fn at_exit(hook: extern "C" fn()) -> bool {
    // SAFETY: `atexit` only stores the pointer and calls it once during `exit`;
    // `hook` is a plain `extern "C" fn()` with no arguments, valid for the whole
    // life of the process, and it catches panics itself so none unwinds into C.
    unsafe { libc::atexit(hook) == 0 }
}

// SAFETY (of running before `main`): the constructor reads one environment
// variable and, only in a process started as a watcher, runs the watcher, which
// needs no state that `main` would have set up (it makes its own runtime and
// engine client) and ends the process with `exit`.
#[ctor::ctor(unsafe)]
fn dockhand_start_hook() {
    crate::config::mark_start_hook_ran();
    if std::env::var_os(crate::watcher::ENV_SESSION).is_some() {
        crate::watcher::run_and_exit();
    }
}

/// Restores the default action of `signal` and raises it, ending the process the
/// way the signal would have.
pub(crate) fn reraise(signal: i32) {
    // SAFETY: `signal` and `raise` are async-signal-safe libc calls taking plain
    // integers; SIG_DFL is a valid disposition for SIGINT and SIGTERM, and this
    // runs on an ordinary thread, not inside a signal handler.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// Sends SIGKILL to process `pid` of this host; false when it could not (gone,
/// or not a real pid). Pids 0 and 1 are refused: they would mean this process's
/// group or init.
pub(crate) fn kill_process(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 1 {
        return false;
    }
    // SAFETY: `kill` takes plain integers and touches no memory of ours; `pid`
    // is a positive pid above 1 (never a process group or "every process"),
    // and the caller checked that it is the exec's process in the container.
    unsafe { libc::kill(pid, libc::SIGKILL) == 0 }
}
