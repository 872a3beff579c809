//! Cleanup on SIGINT and SIGTERM: remove every object of this process at once
//! (in parallel, forced, no graceful stop), then die by the signal as the process
//! would have.

use std::sync::mpsc;
use std::time::Duration;

use once_cell::sync::OnceCell;
use tokio::signal::unix::{signal, SignalKind};

use crate::error::{Error, Result};
use crate::inventory::{self, Scope};
use crate::remove::ObjectKind;
use crate::{labels, session, worker};

/// How long the cleanup after a signal may take before the signal goes
/// through: as long as an exit waits for its removals. About a second on a
/// quiet machine for ten containers; a loaded one (CI's, with CPU burners
/// beside a parallel suite) took more than ten.
const SIGNAL_CLEANUP_LIMIT: Duration = Duration::from_secs(30);

/// Installs SIGINT and SIGTERM handlers that remove every container, network,
/// volume and image this process created, then let the signal end the process.
/// Call it once at the start (calling it again does nothing).
///
/// ```no_run
/// dockhand::cleanup_on_signals().expect("signal handlers");
/// ```
pub fn cleanup_on_signals() -> Result<()> {
    static INSTALLED: OnceCell<()> = OnceCell::new();
    INSTALLED
        .get_or_try_init(|| {
            let (ready_tx, ready_rx) = mpsc::sync_channel::<std::result::Result<(), String>>(1);
            let spawned = worker::spawn_task(Box::pin(async move {
                let handlers =
                    signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)));
                let (mut interrupt, mut terminate) = match handlers {
                    Ok(h) => h,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let caught = tokio::select! {
                    _ = interrupt.recv() => libc::SIGINT,
                    _ = terminate.recv() => libc::SIGTERM,
                };
                if tokio::time::timeout(SIGNAL_CLEANUP_LIMIT, remove_session()).await.is_err() {
                    eprintln!(
                        "dockhand: removals still running {SIGNAL_CLEANUP_LIMIT:?} after the signal; the watcher or the sweeper will finish them"
                    );
                }
                crate::hooks::reraise(caught);
            }));
            let failed = |why: String| Error::invalid("signal handlers", why);
            if !spawned {
                return Err(failed("the cleanup worker is not running".into()));
            }
            match ready_rx.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(why)) => Err(failed(why)),
                Err(_) => Err(failed("the handlers were not installed in time".into())),
            }
        })
        .map(|_| ())
}

/// Removes every object of this session on every engine this process created
/// objects on, except those a guard kept or `DOCKHAND_KEEP` marked.
pub(crate) async fn remove_session() {
    for endpoint in session::owning_endpoints() {
        let Ok(docker) = crate::endpoint::client_for(&endpoint) else {
            continue;
        };
        let mut doomed = Vec::new();
        for kind in ObjectKind::ALL {
            if let Ok(found) = inventory::list_on(&docker, kind, Scope::Session, labels::session_id()).await {
                doomed.extend(
                    found.into_iter().filter(|o| {
                        !session::is_spared(&o.id, &o.name) && !o.labels.contains_key(labels::KEEP)
                    }),
                );
            }
        }
        inventory::remove_on(&docker, doomed).await;
    }
}
