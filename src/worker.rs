//! The one process-wide worker every guard's `Drop` hands its removal to. It
//! knows jobs, not guards.
//!
//! It is a thread with its own tokio runtime and its own engine connections, so a
//! drop works the same inside a current-thread or multi-thread runtime, outside any
//! runtime and while panicking: `Drop` only sends a job and returns. Jobs run
//! concurrently. An exit hook waits (bounded) for the jobs still running, so a test
//! binary that ends normally leaves nothing behind.

use std::collections::HashMap;
use std::sync::{mpsc as std_mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use futures_util::future::BoxFuture;
use once_cell::sync::Lazy;
use tokio::sync::mpsc;

/// How long the exit hook waits for outstanding removals.
const EXIT_FLUSH: Duration = Duration::from_secs(30);

/// Work for the worker: given a client connected to the job's engine, do it.
pub(crate) type Job = Box<dyn FnOnce(Docker) -> BoxFuture<'static, ()> + Send>;

/// What the worker is handed: a job for an engine, or a task of its own.
enum Work {
    /// A job, its engine, and whether the exit hook may leave it unfinished.
    Job(String, Job, bool),
    Task(BoxFuture<'static, ()>),
}

struct Worker {
    tx: mpsc::UnboundedSender<Work>,
    pending: Arc<Pending>,
}

#[derive(Default)]
struct Pending {
    count: Mutex<Counts>,
    idle: Condvar,
}

/// Jobs running, and how many of them the exit hook need not wait for.
#[derive(Default, Clone, Copy)]
struct Counts {
    all: usize,
    deferrable: usize,
}

impl Pending {
    fn add(&self, deferrable: bool) {
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        count.all += 1;
        count.deferrable += usize::from(deferrable);
    }

    fn done(&self, deferrable: bool) {
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        count.all = count.all.saturating_sub(1);
        if deferrable {
            count.deferrable = count.deferrable.saturating_sub(1);
        }
        self.idle.notify_all();
    }

    /// Waits until no job is running (with `all`), or none but deferrable ones.
    fn wait_idle(&self, timeout: Duration, all: bool) -> bool {
        let deadline = Instant::now() + timeout;
        let busy = |c: &Counts| if all { c.all > 0 } else { c.all > c.deferrable };
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        while busy(&count) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            count = match self.idle.wait_timeout(count, deadline - now) {
                Ok((c, _)) => c,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }
}

static WORKER: Lazy<Option<Worker>> = Lazy::new(start_worker);

fn start_worker() -> Option<Worker> {
    let (tx, rx) = mpsc::unbounded_channel::<Work>();
    let pending = Arc::new(Pending::default());
    let worker_pending = pending.clone();
    let spawned = std::thread::Builder::new()
        .name("dockhand-cleanup".into())
        .spawn(move || run(rx, worker_pending));
    match spawned {
        Ok(_) => {
            if !crate::hooks::at_exit(flush_at_exit) {
                tracing::warn!(
                    "could not register the exit hook; removals still running at exit may be cut short"
                );
            }
            Some(Worker { tx, pending })
        }
        Err(err) => {
            tracing::error!(%err, "could not start the dockhand cleanup thread; dropped objects will be left to the sweeper");
            None
        }
    }
}

fn run(mut rx: mpsc::UnboundedReceiver<Work>, pending: Arc<Pending>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            tracing::error!(%err, "could not build the cleanup runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let mut clients: HashMap<String, Docker> = HashMap::new();
        while let Some(work) = rx.recv().await {
            let (endpoint, job, deferrable) = match work {
                Work::Job(endpoint, job, deferrable) => (endpoint, job, deferrable),
                Work::Task(task) => {
                    tokio::spawn(task);
                    continue;
                }
            };
            let client = match clients.get(&endpoint) {
                Some(c) => Some(c.clone()),
                None => match crate::endpoint::client_for(&endpoint) {
                    Ok(c) => {
                        clients.insert(endpoint.clone(), c.clone());
                        Some(c)
                    }
                    Err(_) => None,
                },
            };
            let pending = pending.clone();
            tokio::spawn(async move {
                // No client yet (the socket is gone for a moment): wait for it.
                let client = match client {
                    Some(client) => Some(client),
                    None => client_when_back(&endpoint).await,
                };
                if let Some(client) = client {
                    job(client).await;
                }
                pending.done(deferrable);
            });
        }
    });
}

/// What to release at exit: shared objects that live in statics and never drop.
type Release = Box<dyn FnOnce() + Send>;
static AT_EXIT: Mutex<Vec<Release>> = Mutex::new(Vec::new());

/// Registers `release` to run from the exit hook, before it waits for the jobs.
pub(crate) fn release_at_exit(release: Release) {
    AT_EXIT.lock().unwrap_or_else(|e| e.into_inner()).push(release);
    // The exit hook is registered with the worker's start: a process whose
    // only object lives in a static may never have handed the worker a job.
    Lazy::force(&WORKER);
}

/// Hands every shared object to the worker; called by the exit hook.
fn release_all() {
    let releases = std::mem::take(&mut *AT_EXIT.lock().unwrap_or_else(|e| e.into_inner()));
    for release in releases {
        release();
    }
}

/// A client for `endpoint` once it can be made again, within the engine
/// patience; `None` after that (the sweeper finishes then).
async fn client_when_back(endpoint: &str) -> Option<Docker> {
    let deadline = Instant::now() + crate::remove::ENGINE_PATIENCE;
    loop {
        match crate::endpoint::client_for(endpoint) {
            Ok(client) => return Some(client),
            Err(err) if Instant::now() >= deadline => {
                tracing::warn!(%endpoint, %err, "cleanup cannot reach the engine; the sweeper will finish");
                return None;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

extern "C" fn flush_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        release_all();
        let flushed = match Lazy::get(&WORKER) {
            Some(Some(worker)) => worker.pending.wait_idle(EXIT_FLUSH, false),
            _ => true,
        };
        if !flushed {
            eprintln!(
                "dockhand: removals still running after {EXIT_FLUSH:?} at exit; the sweeper will finish them"
            );
        }
    });
}

/// Hands `job` to the worker and returns at once.
pub(crate) fn submit(endpoint: &str, job: Job) {
    hand_over(endpoint, job, false);
}

/// [`submit`], or with `deferrable`, a job that something else finishes if
/// this process exits first (a database drop that a live process's upkeep,
/// or the server's removal, does anyway): [`wait_for_cleanup`] waits for it,
/// the exit hook does not.
pub(crate) fn hand_over(endpoint: &str, job: Job, deferrable: bool) {
    match WORKER.as_ref() {
        Some(worker) => {
            worker.pending.add(deferrable);
            if worker
                .tx
                .send(Work::Job(endpoint.to_string(), job, deferrable))
                .is_err()
            {
                worker.pending.done(deferrable);
            }
        }
        None => tracing::warn!("no cleanup worker; a dropped object is left to the sweeper"),
    }
}

/// Runs a long-lived task (a signal listener) on the worker's runtime; it is not
/// counted as pending work. False when there is no worker.
pub(crate) fn spawn_task(task: BoxFuture<'static, ()>) -> bool {
    match WORKER.as_ref() {
        Some(worker) => worker.tx.send(Work::Task(task)).is_ok(),
        None => false,
    }
}

/// Runs `job` on the worker and waits for its answer, at most `timeout`. For the
/// few things a `Drop` must see before it returns (the last logs of a container
/// that dies with a panicking test); never blocks longer than `timeout`.
pub(crate) fn run_blocking<T: Send + 'static>(
    endpoint: &str,
    timeout: Duration,
    job: impl FnOnce(Docker) -> BoxFuture<'static, T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std_mpsc::sync_channel(1);
    submit(
        endpoint,
        Box::new(move |docker| {
            Box::pin(async move {
                let _ = tx.send(job(docker).await);
            })
        }),
    );
    rx.recv_timeout(timeout).ok()
}

/// Waits until every removal handed to the cleanup worker so far has finished, at
/// most `timeout`; true when all did.
///
/// Dropping a guard returns at once and the removal runs in the background; a test
/// or a benchmark that must see the engine quiet before going on calls this.
///
/// ```
/// use std::time::Duration;
/// // Nothing was handed over, so there is nothing to wait for.
/// assert!(dockhand::wait_for_cleanup(Duration::from_millis(10)));
/// ```
pub fn wait_for_cleanup(timeout: Duration) -> bool {
    match Lazy::get(&WORKER) {
        Some(Some(worker)) => worker.pending.wait_idle(timeout, true),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_wait_leaves_deferrable_jobs_and_a_cleanup_wait_does_not() {
        let pending = Pending::default();
        pending.add(true);
        assert!(
            pending.wait_idle(Duration::ZERO, false),
            "only a deferrable job runs"
        );
        assert!(!pending.wait_idle(Duration::from_millis(5), true));
        pending.add(false);
        assert!(!pending.wait_idle(Duration::from_millis(5), false));
        pending.done(false);
        assert!(pending.wait_idle(Duration::ZERO, false));
        pending.done(true);
        assert!(pending.wait_idle(Duration::ZERO, true));
    }
}
