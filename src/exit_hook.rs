//! The one place allowed `unsafe`: registering a function to run when the process
//! exits normally, so removals handed to the cleanup worker finish before the
//! process is gone. Rust statics never drop, and libtest's `main` returns into
//! `exit`, so `atexit` is the hook that runs after the last test.
#![allow(unsafe_code)]

/// Registers `hook` with the C runtime's `atexit`. Returns false when the C
/// runtime refused it (its table is full).
pub(crate) fn register(hook: extern "C" fn()) -> bool {
    // SAFETY: `atexit` only stores the pointer and calls it once during `exit`;
    // `hook` is a plain `extern "C" fn()` with no arguments, valid for the whole
    // life of the process, and it catches panics itself so none unwinds into C.
    unsafe { libc::atexit(hook) == 0 }
}
