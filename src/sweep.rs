//! The sweeper: the backstop that removes managed objects whose owner process is
//! gone, even when its watcher was killed too.
//!
//! An owner on this host is alive when its pid exists *with the same start time*
//! (a reused pid is a different process). Objects from other hosts (a shared
//! remote engine) cannot be checked, so they go only when older than a TTL.

use std::collections::HashMap;
use std::time::Duration;

use crate::engine::Engine;
use crate::error::Result;
use crate::inventory::{self, ManagedObject, Scope};
use crate::labels;
use crate::remove::ObjectKind;
use crate::reuse::reap::{self, SweepCheck};

/// Finds and removes leaked dockhand objects.
///
/// ```no_run
/// # async fn demo() -> dockhand::Result<()> {
/// let report = dockhand::Sweeper::new().dry_run().run().await?;
/// for (object, why) in &report.kept {
///     println!("keeping {} {}: {why}", object.kind, object.name);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Sweeper {
    dry_run: bool,
    everything: bool,
    kept: bool,
    reused: bool,
    cache: bool,
    ttl: Duration,
    grace: Duration,
    engine: Option<Engine>,
}

impl Default for Sweeper {
    fn default() -> Self {
        Sweeper {
            dry_run: false,
            everything: false,
            kept: false,
            reused: false,
            cache: false,
            ttl: Duration::from_secs(3600),
            grace: Duration::ZERO,
            engine: None,
        }
    }
}

/// What a sweep found.
///
/// ```
/// let report = dockhand::SweepReport::default();
/// assert!(report.removed.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct SweepReport {
    /// Removed (or, in a dry run, would be removed), with why.
    pub removed: Vec<(ManagedObject, String)>,
    /// Left alone, with why.
    pub kept: Vec<(ManagedObject, String)>,
    /// Could not be removed, with the error.
    pub failed: Vec<(ManagedObject, String)>,
}

impl Sweeper {
    /// A sweeper with a one-hour TTL for objects from other hosts.
    ///
    /// ```
    /// let s = dockhand::Sweeper::new();
    /// ```
    pub fn new() -> Self {
        Sweeper::default()
    }

    /// Lists what would be removed without removing anything.
    ///
    /// ```
    /// let s = dockhand::Sweeper::new().dry_run();
    /// ```
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// Removes every managed object, live owners' and kept ones too.
    ///
    /// ```
    /// let s = dockhand::Sweeper::new().everything();
    /// ```
    pub fn everything(mut self) -> Self {
        self.everything = true;
        self
    }

    /// Also removes kept objects (`DOCKHAND_KEEP`, and what `DOCKHAND_KEEP=failed`
    /// left of failed tests) whose owner is gone.
    ///
    /// ```
    /// let s = dockhand::Sweeper::new().kept();
    /// ```
    pub fn kept(mut self) -> Self {
        self.kept = true;
        self
    }

    /// Also removes containers kept across runs ([`Reuse::Persistent`](crate::Reuse),
    /// `DOCKHAND_REUSE=1`) that no live process uses. (Any sweep removes those
    /// idle for a day, and containers reused for a run once the run is over.)
    ///
    /// ```
    /// let s = dockhand::Sweeper::new().reused();
    /// ```
    pub fn reused(mut self) -> Self {
        self.reused = true;
        self
    }

    /// Also removes every saved start state (the volumes of
    /// `Postgres::warm_start`) no container uses.
    /// (Any sweep removes those replaced or saved over a week ago.)
    ///
    /// ```
    /// let s = dockhand::Sweeper::new().cache();
    /// ```
    pub fn cache(mut self) -> Self {
        self.cache = true;
        self
    }

    /// How old an object from another host must be before it is removed.
    ///
    /// ```
    /// let s = dockhand::Sweeper::new().ttl(std::time::Duration::from_secs(600));
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Leaves objects of this host's dead processes younger than `grace` to
    /// their watcher, which removes them within a second of the death (default
    /// zero: removes them at once).
    ///
    /// ```
    /// let s = dockhand::Sweeper::new().grace(std::time::Duration::from_secs(60));
    /// ```
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sweeps this engine instead of the default one.
    ///
    /// ```no_run
    /// # fn demo(e: &dockhand::Engine) { let s = dockhand::Sweeper::new().engine(e); }
    /// ```
    pub fn engine(mut self, engine: &Engine) -> Self {
        self.engine = Some(engine.clone());
        self
    }

    /// Runs the sweep: containers first, then networks, volumes, images.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let report = dockhand::Sweeper::new().run().await?;
    /// println!("removed {} objects", report.removed.len());
    /// # Ok(()) }
    /// ```
    pub async fn run(&self) -> Result<SweepReport> {
        let engine = match &self.engine {
            Some(e) => e.clone(),
            None => Engine::connect().await?,
        };
        let mode = match (self.everything, self.kept, self.reused) {
            (true, _, _) => Mode::Everything,
            (false, true, _) => Mode::Kept,
            (false, false, true) => Mode::Reused,
            (false, false, false) => Mode::Orphans,
        };
        let ages = Ages {
            ttl: self.ttl,
            grace: self.grace,
        };
        let mut report = sweep_on(engine.docker(), mode, ages, self.dry_run).await?;
        sweep_states(engine.docker(), self.cache, self.dry_run, &mut report).await?;
        if !self.dry_run {
            crate::channel::reap_orphans(engine.docker(), engine.endpoint()).await?;
        }
        Ok(report)
    }
}

/// How often, at most, processes on this machine sweep one engine in the
/// background: under nextest every test is a process, and sixteen sweeps in a
/// second find what the first found.
const BACKGROUND_SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Whether this process's background sweep of `endpoint` is due: no process
/// of this user swept it in the last [`BACKGROUND_SWEEP_EVERY`]. Marks it swept.
pub(crate) fn background_sweep_due(endpoint: &str) -> bool {
    let dir = crate::reuse::lock::dir();
    let stamp = dir.join(format!("swept-{}", crate::reuse::lock::endpoint_tag(endpoint)));
    let recent = std::fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| at.elapsed().ok())
        .is_some_and(|age| age < BACKGROUND_SWEEP_EVERY);
    if recent {
        return false;
    }
    // Stamps of engines at sockets made for one test (a proxy, a fault) say
    // nothing once their sweep is due again; without this, one stays per test.
    crate::user_dir::forget_older(&dir, "swept-", "", BACKGROUND_SWEEP_EVERY * 10);
    // Unmarked (no directory, no file) is no reason to skip the sweep.
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&stamp, b""));
    true
}

/// How old objects must be before a sweep removes them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ages {
    /// For objects of other hosts.
    pub(crate) ttl: Duration,
    /// For objects of this host's dead processes. The background sweep of a
    /// starting process leaves young ones to the dead owner's watcher, which
    /// removes them within a second: two removers of one object would only
    /// trip over each other (and a test that kills an owner on purpose would
    /// lose its orphans to another test process).
    pub(crate) grace: Duration,
}

/// What a sweep removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Objects of owners that are gone, but kept ones.
    Orphans,
    /// Those, and kept ones whose owner is gone.
    Kept,
    /// Orphans, and containers kept across runs that nobody uses.
    Reused,
    /// Every managed object.
    Everything,
}

pub(crate) async fn sweep_on(
    docker: &bollard::Docker,
    mode: Mode,
    ages: Ages,
    dry_run: bool,
) -> Result<SweepReport> {
    let mut report = SweepReport::default();
    let here = &labels::owner().host;
    let now = labels::unix_now();
    let mut doomed = Vec::new();
    // Held until the removals are done: no process may begin to use a reused
    // container that is being removed.
    let mut reuse_locks = Vec::new();
    for kind in ObjectKind::ALL {
        for object in inventory::list_on(docker, kind, Scope::Managed, "").await? {
            let reused = object.labels.contains_key(labels::REUSE)
                && object.labels.get(labels::OWNER_HOST) == Some(here);
            if reused && mode != Mode::Everything {
                match reap::sweep_check(&object, mode == Mode::Reused) {
                    SweepCheck::Remove(why, locks) => {
                        reuse_locks.push((object.id.clone(), locks));
                        doomed.push((object, why));
                    }
                    SweepCheck::Keep(why) => report.kept.push((object, why)),
                }
                continue;
            }
            let base = if mode == Mode::Reused { Mode::Orphans } else { mode };
            match verdict(&object, base, here, now, ages, labels::process_alive) {
                Verdict::Remove(why) => doomed.push((object, why)),
                Verdict::Keep(why) => report.kept.push((object, why)),
            }
        }
    }
    if dry_run {
        report.removed = doomed;
        return Ok(report);
    }
    let mut reasons: HashMap<String, String> = doomed
        .iter()
        .map(|(o, why)| (o.id.clone(), why.clone()))
        .collect();
    let removal = inventory::remove_on(docker, doomed.into_iter().map(|(o, _)| o).collect()).await;
    report.removed = removal
        .removed
        .into_iter()
        .map(|o| {
            let why = reasons.remove(&o.id).unwrap_or_default();
            (o, why)
        })
        .collect();
    report.failed = removal.failed;
    for (id, locks) in reuse_locks {
        locks.release(report.removed.iter().any(|(o, _)| o.id == id));
    }
    tracing::debug!(
        removed = report.removed.len(),
        kept = report.kept.len(),
        failed = report.failed.len(),
        "sweep done"
    );
    Ok(report)
}

/// Removes stale cached start states (every one with `all`) and helpers a
/// killed save left, into the report.
pub(crate) async fn sweep_states(
    docker: &bollard::Docker,
    all: bool,
    dry_run: bool,
    report: &mut SweepReport,
) -> Result<()> {
    for (kind, id, why) in crate::reuse::state::sweep(docker, all, dry_run).await? {
        let object = ManagedObject {
            kind,
            name: id.clone(),
            id,
            labels: HashMap::new(),
            detail: String::new(),
            ports: Vec::new(),
        };
        report.removed.push((object, why));
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Remove(String),
    Keep(String),
}

fn verdict(
    object: &ManagedObject,
    mode: Mode,
    here: &str,
    now: u64,
    ages: Ages,
    alive: impl Fn(u32, &str) -> bool,
) -> Verdict {
    if mode == Mode::Everything {
        return Verdict::Remove("removing everything on request".into());
    }
    match object.labels.get(labels::KEEP).map(String::as_str) {
        Some("failed") if mode == Mode::Orphans => {
            return Verdict::Keep(
                "kept after its test failed (DOCKHAND_KEEP=failed; `dockhand sweep --kept` removes it)"
                    .into(),
            )
        }
        Some(_) if mode == Mode::Orphans => {
            return Verdict::Keep("kept with DOCKHAND_KEEP (`dockhand sweep --kept` removes it)".into())
        }
        _ => {}
    }
    let age = object.created().map(|c| now.saturating_sub(c));
    let old = age.is_some_and(|a| a >= ages.ttl.as_secs());
    let host = object.labels.get(labels::OWNER_HOST).map(String::as_str);
    if host != Some(here) {
        let owner = host.unwrap_or("an unknown host");
        return if old {
            Verdict::Remove(format!("owned by {owner} and older than the TTL"))
        } else {
            Verdict::Keep(format!("owned by {owner}, younger than the TTL"))
        };
    }
    let Some(pid) = object.owner_pid() else {
        return if old {
            Verdict::Remove("no owner pid, older than the TTL".into())
        } else {
            Verdict::Keep("no owner pid, younger than the TTL".into())
        };
    };
    let start = object
        .labels
        .get(labels::OWNER_START)
        .map_or("unknown", String::as_str);
    if alive(pid, start) {
        Verdict::Keep(format!("owner pid {pid} is alive"))
    } else if age.is_some_and(|a| a < ages.grace.as_secs()) {
        Verdict::Keep(format!(
            "owner pid {pid} is gone, left to its watcher for {} s",
            ages.grace.as_secs()
        ))
    } else {
        Verdict::Remove(format!("owner pid {pid} is gone"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(labels: &[(&str, &str)]) -> ManagedObject {
        ManagedObject {
            kind: ObjectKind::Container,
            id: "c1".into(),
            name: "c1".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
            detail: String::new(),
            ports: Vec::new(),
        }
    }

    const HOUR: Ages = Ages {
        ttl: Duration::from_secs(3600),
        grace: Duration::ZERO,
    };

    #[test]
    fn same_host_follows_the_owner_process() {
        let o = object(&[
            (labels::OWNER_HOST, "me"),
            (labels::OWNER_PID, "42"),
            (labels::OWNER_START, "100"),
        ]);
        let alive = |pid: u32, start: &str| pid == 42 && start == "100";
        assert_eq!(
            verdict(&o, Mode::Orphans, "me", 0, HOUR, alive),
            Verdict::Keep("owner pid 42 is alive".into())
        );
        let reused = |pid: u32, start: &str| pid == 42 && start == "999";
        assert_eq!(
            verdict(&o, Mode::Orphans, "me", 0, HOUR, reused),
            Verdict::Remove("owner pid 42 is gone".into())
        );
        assert!(matches!(
            verdict(&o, Mode::Everything, "me", 0, HOUR, alive),
            Verdict::Remove(_)
        ));
    }

    #[test]
    fn the_background_sweep_leaves_young_orphans_to_their_watcher() {
        let o = object(&[
            (labels::OWNER_HOST, "me"),
            (labels::OWNER_PID, "42"),
            (labels::CREATED, "1000"),
        ]);
        let never = |_: u32, _: &str| false;
        let background = Ages {
            grace: Duration::from_secs(60),
            ..HOUR
        };
        assert!(
            matches!(verdict(&o, Mode::Orphans, "me", 1000 + 5, background, never), Verdict::Keep(why) if why.contains("left to its watcher"))
        );
        assert!(matches!(
            verdict(&o, Mode::Orphans, "me", 1000 + 60, background, never),
            Verdict::Remove(_)
        ));
        assert!(matches!(
            verdict(&o, Mode::Orphans, "me", 1000 + 5, HOUR, never),
            Verdict::Remove(_)
        ));
    }

    #[test]
    fn other_hosts_wait_for_the_ttl() {
        let o = object(&[
            (labels::OWNER_HOST, "ci-7"),
            (labels::OWNER_PID, "1"),
            (labels::CREATED, "1000"),
        ]);
        let never = |_: u32, _: &str| false;
        assert!(matches!(
            verdict(&o, Mode::Orphans, "me", 1000 + 60, HOUR, never),
            Verdict::Keep(_)
        ));
        assert!(matches!(
            verdict(&o, Mode::Orphans, "me", 1000 + 3600, HOUR, never),
            Verdict::Remove(_)
        ));
    }

    #[test]
    fn kept_objects_stay_unless_everything() {
        let o = object(&[
            (labels::KEEP, "true"),
            (labels::OWNER_HOST, "me"),
            (labels::OWNER_PID, "1"),
        ]);
        let never = |_: u32, _: &str| false;
        assert!(matches!(
            verdict(&o, Mode::Orphans, "me", 0, HOUR, never),
            Verdict::Keep(_)
        ));
        assert!(matches!(
            verdict(&o, Mode::Everything, "me", 0, HOUR, never),
            Verdict::Remove(_)
        ));
    }

    #[test]
    fn kept_objects_go_with_kept_once_their_owner_is_gone() {
        let o = |alive_pid: &str| {
            object(&[
                (labels::KEEP, "failed"),
                (labels::OWNER_HOST, "me"),
                (labels::OWNER_PID, alive_pid),
            ])
        };
        let only_7 = |pid: u32, _: &str| pid == 7;
        assert!(
            matches!(verdict(&o("1"), Mode::Orphans, "me", 0, HOUR, only_7), Verdict::Keep(why) if why.contains("failed"))
        );
        assert!(matches!(
            verdict(&o("1"), Mode::Kept, "me", 0, HOUR, only_7),
            Verdict::Remove(_)
        ));
        assert!(matches!(
            verdict(&o("7"), Mode::Kept, "me", 0, HOUR, only_7),
            Verdict::Keep(_)
        ));
    }

    #[test]
    fn this_process_is_alive() {
        let me = std::process::id();
        let start = labels::process_start_time(me).unwrap();
        assert!(labels::process_alive(me, &start));
        assert!(!labels::process_alive(me, "1"));
    }
}
