//! The watcher: a small process started on first use that removes everything
//! this process's session created once this process is gone, however it ended
//! (normal exit, panic, abort, SIGKILL, OOM).
//!
//! It is this same executable, started again with a marker in its environment;
//! the start-up hook in [`crate::hooks`] catches the marker before `main`. The
//! parent holds the write end of the watcher's stdin; the kernel closes it when
//! the parent dies, and the watcher's read returns end-of-file. Lines written to
//! the pipe name objects the watcher must spare (`keep`), and containers reused
//! for the run that it removes once the run is over and nobody uses them
//! (`reap`, see [`crate::reuse::reap`]).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Mutex;

use once_cell::sync::Lazy;

use crate::inventory::{self, Scope};
use crate::remove::ObjectKind;
use crate::reuse::reap::Reap;

/// Marks a process as a watcher, with the session it cleans up after.
pub(crate) const ENV_SESSION: &str = "DOCKHAND_WATCHER_SESSION";
const ENV_ENDPOINT: &str = "DOCKHAND_WATCHER_ENDPOINT";
/// The TLS files of the endpoint (`ca`, `cert`, `key`, one a line), when it has them.
const ENV_TLS: &str = "DOCKHAND_WATCHER_TLS";
/// A test filter that matches nothing: if the start-up hook somehow did not run,
/// libtest starts, runs no test and exits.
const NO_TEST_FILTER: &str = "dockhand-watcher-process-runs-no-tests";

/// Write ends of the pipes to the watchers, one per engine endpoint; never
/// closed while this process lives.
static PIPES: Lazy<Mutex<HashMap<String, Option<ChildStdin>>>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// Starts the watcher for `endpoint` unless one runs already or it is turned off.
pub(crate) fn ensure_started(endpoint: &str, session: &str) {
    let mut pipes = PIPES.lock().unwrap_or_else(|e| e.into_inner());
    if pipes.contains_key(endpoint) {
        return;
    }
    let pipe = if !enabled() {
        None
    } else {
        match spawn(endpoint, session) {
            Ok(pipe) => Some(pipe),
            Err(err) => {
                tracing::warn!(%err, "could not start the dockhand watcher; leaks after a crash are left to the sweeper");
                None
            }
        }
    };
    pipes.insert(endpoint.to_string(), pipe);
}

fn enabled() -> bool {
    if crate::config::watcher_wanted() {
        return true;
    }
    if crate::config::watcher_enabled() && !crate::config::keep_all() {
        // Wanted, but impossible: say so once, loudly, rather than leave a
        // SIGKILLed test's objects behind without a word.
        eprintln!(
            "dockhand: no watcher for this process: the start-up hook did not run in this binary \
             (was dockhand's `ctor` constructor dropped by the linker?). Objects of a killed \
             process are left to the sweeper; `dockhand ls` marks them `watcher: off`."
        );
        tracing::warn!("the start-up hook did not run; no watcher for this process");
    }
    false
}

fn spawn(endpoint: &str, session: &str) -> std::io::Result<ChildStdin> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .args([NO_TEST_FILTER, "--exact"])
        .env(ENV_SESSION, session)
        .env(ENV_ENDPOINT, endpoint);
    // An engine reached over TLS: the watcher needs the same certificates.
    if let Some(tls) = crate::endpoint::tls_env(endpoint) {
        command.env(ENV_TLS, tls);
    }
    let mut child = command
        .stdin(Stdio::piped())
        // A watcher holding the test's output open would make test runners wait
        // for it (nextest reports it as a leak).
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: Ctrl-C in a terminal must not kill it with us.
        .process_group(0)
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("the watcher has no stdin"))
}

/// Tells the watcher to leave this object alone (a guard's `keep()`).
pub(crate) fn spare(endpoint: &str, id: &str) {
    tell(endpoint, &format!("keep {id}"));
}

/// Writes a line to the watcher of `endpoint`; false when there is none.
pub(crate) fn tell(endpoint: &str, line: &str) -> bool {
    let mut pipes = PIPES.lock().unwrap_or_else(|e| e.into_inner());
    match pipes.get_mut(endpoint) {
        Some(Some(pipe)) => writeln!(pipe, "{line}").is_ok(),
        _ => false,
    }
}

/// The watcher process: wait for the parent to go, clean up, exit.
pub(crate) fn run_and_exit() -> ! {
    let session = std::env::var(ENV_SESSION).unwrap_or_default();
    let endpoint = std::env::var(ENV_ENDPOINT).unwrap_or_default();
    if let Ok(tls) = std::env::var(ENV_TLS) {
        crate::endpoint::remember_tls_env(&endpoint, &tls);
    }
    let mut spared = HashSet::new();
    let mut reaps = Vec::new();
    // Blocks until the parent closes the pipe, which the kernel does when it dies.
    for line in std::io::stdin().lock().lines() {
        match line {
            Ok(line) => {
                if let Some(id) = line.strip_prefix("keep ") {
                    spared.insert(id.trim().to_string());
                } else if let Some(claimed) = Reap::parse(&line).and_then(crate::reuse::reap::claim) {
                    reaps.push(claimed);
                }
            }
            Err(_) => break,
        }
    }
    if !session.is_empty()
        && let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build()
    {
        clean_session(&runtime, &session, &endpoint, &spared);
        // Containers reused for the run: the parent's lock is gone with it.
        if !reaps.is_empty()
            && let Ok(docker) = runtime.block_on(async { crate::endpoint::client_for(&endpoint) })
        {
            crate::reuse::reap::reap_after_runs(&docker, &runtime, reaps);
        }
    }
    std::process::exit(0);
}

fn clean_session(runtime: &tokio::runtime::Runtime, session: &str, endpoint: &str, spared: &HashSet<String>) {
    // The engine may be unreachable for a moment (restarting, a proxy cut):
    // keep trying to list for a while rather than leave everything behind.
    let deadline = std::time::Instant::now() + crate::remove::ENGINE_PATIENCE;
    runtime.block_on(async {
        loop {
            let listed = match crate::endpoint::client_for(endpoint) {
                Ok(docker) => list_session(&docker, session).await.map(|found| (docker, found)),
                Err(_) => None,
            };
            if let Some((docker, found)) = listed {
                let doomed = found
                    .into_iter()
                    .filter(|o| !spared.contains(&o.id) && !spared.contains(&o.name))
                    .collect();
                inventory::remove_on(&docker, doomed).await;
                crate::channel::remove_session(endpoint, session, |name| spared.contains(name));
                return;
            }
            if std::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    });
}

/// Every object of `session`; `None` when the engine did not answer.
async fn list_session(docker: &bollard::Docker, session: &str) -> Option<Vec<inventory::ManagedObject>> {
    let mut found = Vec::new();
    for kind in ObjectKind::ALL {
        found.extend(
            inventory::list_on(docker, kind, Scope::Session, session)
                .await
                .ok()?,
        );
    }
    Some(found)
}
