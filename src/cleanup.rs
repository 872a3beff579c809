//! The one process-wide cleanup worker every guard's `Drop` hands its removal to.
//!
//! It is a thread with its own tokio runtime and its own engine connections, so a
//! drop works the same inside a current-thread or multi-thread runtime, outside any
//! runtime and while panicking: `Drop` only sends a job and returns. Jobs run
//! concurrently. An exit hook waits (bounded) for the jobs still running, so a test
//! binary that ends normally leaves nothing behind.

use std::collections::HashMap;
use std::sync::{mpsc as std_mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bollard::query_parameters::{RemoveContainerOptions, RemoveVolumeOptions};
use bollard::Docker;
use futures_util::future::BoxFuture;
use once_cell::sync::Lazy;
use tokio::sync::mpsc;

use crate::error::status_of;
use crate::resource::Hold;

/// How long the exit hook waits for outstanding removals.
const EXIT_FLUSH: Duration = Duration::from_secs(30);

/// Work for the worker: given a client connected to the job's engine, do it.
pub(crate) type Job = Box<dyn FnOnce(Docker) -> BoxFuture<'static, ()> + Send>;

/// What the worker is handed: a job for an engine, or a task of its own.
enum Work {
    Job(String, Job),
    Task(BoxFuture<'static, ()>),
}

struct Worker {
    tx: mpsc::UnboundedSender<Work>,
    pending: Arc<Pending>,
}

#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    idle: Condvar,
}

impl Pending {
    fn add(&self) {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }

    fn done(&self) {
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.idle.notify_all();
        }
    }

    fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        while *count > 0 {
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
            let (endpoint, job) = match work {
                Work::Job(endpoint, job) => (endpoint, job),
                Work::Task(task) => {
                    tokio::spawn(task);
                    continue;
                }
            };
            let client = match clients.get(&endpoint) {
                Some(c) => Some(c.clone()),
                None => match crate::engine::client_for(&endpoint) {
                    Ok(c) => {
                        clients.insert(endpoint.clone(), c.clone());
                        Some(c)
                    }
                    Err(err) => {
                        tracing::warn!(%endpoint, %err, "cleanup cannot reach the engine");
                        None
                    }
                },
            };
            let pending = pending.clone();
            match client {
                Some(client) => {
                    tokio::spawn(async move {
                        job(client).await;
                        pending.done();
                    });
                }
                None => pending.done(),
            }
        }
    });
}

extern "C" fn flush_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        crate::shared::release_all();
        if !wait_for_cleanup(EXIT_FLUSH) {
            eprintln!(
                "dockhand: removals still running after {EXIT_FLUSH:?} at exit; the sweeper will finish them"
            );
        }
    });
}

/// Hands `job` to the worker and returns at once.
pub(crate) fn submit(endpoint: &str, job: Job) {
    match WORKER.as_ref() {
        Some(worker) => {
            worker.pending.add();
            if worker.tx.send(Work::Job(endpoint.to_string(), job)).is_err() {
                worker.pending.done();
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

/// `DOCKHAND_KEEP=1` keeps every object for debugging instead of removing it.
pub(crate) fn keep_all() -> bool {
    static KEEP_ALL: Lazy<bool> =
        Lazy::new(|| std::env::var("DOCKHAND_KEEP").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"));
    *KEEP_ALL
}

/// The job that removes a container: forced, with its anonymous volumes; a
/// container that is already gone counts as removed. `holds` (the networks and
/// volumes it uses) are let go only after it is gone, so they can be removed.
pub(crate) fn remove_container_job(id: String, holds: Vec<Hold>) -> Job {
    Box::new(move |docker| {
        Box::pin(async move {
            if let Err(err) = remove_container(&docker, &id).await {
                tracing::warn!(container = %id, %err, "removing container failed");
            }
            drop(holds);
        })
    })
}

/// The job that removes a network once no container is attached.
pub(crate) fn remove_network_job(id: String) -> Job {
    Box::new(move |docker| {
        Box::pin(async move {
            let result = retry_while_in_use(|| docker.remove_network(&id)).await;
            if let Err(err) = result {
                tracing::warn!(network = %id, %err, "removing network failed");
            }
        })
    })
}

/// The job that removes a volume once no container uses it.
pub(crate) fn remove_volume_job(name: String) -> Job {
    Box::new(move |docker| {
        Box::pin(async move {
            let result =
                retry_while_in_use(|| docker.remove_volume(&name, None::<RemoveVolumeOptions>)).await;
            if let Err(err) = result {
                tracing::warn!(volume = %name, %err, "removing volume failed");
            }
        })
    })
}

/// Runs a removal; 404 counts as done, and "in use" is retried for a while,
/// because a container outside dockhand's knowledge may still be leaving.
pub(crate) async fn retry_while_in_use<F, Fut>(mut remove: F) -> Result<(), bollard::errors::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), bollard::errors::Error>>,
{
    let mut pause = Duration::from_millis(50);
    let deadline = Instant::now() + IN_USE_PATIENCE;
    loop {
        match remove().await {
            Ok(()) => return Ok(()),
            Err(err) if status_of(&err) == Some(404) => return Ok(()),
            Err(err) if in_use(&err) && Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(err) => return Err(err),
        }
    }
}

/// How long a removal waits for an object to stop being in use.
const IN_USE_PATIENCE: Duration = Duration::from_secs(10);

fn in_use(err: &bollard::errors::Error) -> bool {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, message } => {
            matches!(status_code, 403 | 409)
                || message.contains("in use")
                || message.contains("active endpoints")
        }
        _ => false,
    }
}

pub(crate) async fn remove_container(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        // 404: already gone; 409: another removal of it is under way.
        Err(err) if matches!(status_of(&err), Some(404) | Some(409)) => Ok(()),
        Err(err) => Err(err),
    }
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
        Some(Some(worker)) => worker.pending.wait_idle(timeout),
        _ => true,
    }
}
