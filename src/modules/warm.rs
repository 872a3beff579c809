//! A PostgreSQL server's cached start state (see [`Postgres::warm_start`]):
//! once a server started with it holds a template its state lacks, its data
//! directory is saved, in the background, as a state volume (see
//! [`crate::reuse::state`]) that the next start of the same configuration
//! copies into place instead of running `initdb` and the migrations.
//!
//! The data directory is taken with `pg_basebackup` (a consistent copy of a
//! running server), so the server goes on serving tests while it is saved.

use std::collections::HashSet;
use std::sync::Mutex;

use bollard::Docker;
use once_cell::sync::Lazy;
use tokio::sync::oneshot;
use tokio_postgres::NoTls;

use super::postgres::Postgres;
use super::service::Running;
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::reuse::state::{self, Snapshot};

/// Where the server's copy is made before it is read out: the engine names
/// a copied-out directory's root for its last component, so the tar comes
/// rooted as the state's directory (`dockhand-state/pgdata/...`).
const TAKEN: &str = "/tmp/dockhand-state";

/// Copies the saved data directory into `PGDATA` when that is empty (a fresh
/// tmpfs or volume), then runs the image's own entrypoint, which finds it
/// initialised and starts the server at once.
const START_SCRIPT: &str = r#"#!/bin/sh
set -eu
data="${PGDATA:-/var/lib/postgresql/data}"
if [ ! -s "$data/PG_VERSION" ]; then
  mkdir -p "$data"
  cp -a /dockhand-state/pgdata/. "$data"/
  chown "$(stat -c %u:%g /dockhand-state/pgdata)" "$data"
  chmod 700 "$data"
fi
exec "$@"
"#;

/// Servers and templates (container id, key) whose state this process saves
/// or saved.
static SAVING: Lazy<Mutex<HashSet<String>>> = Lazy::new(|| Mutex::new(HashSet::new()));

/// Saves the server's state in the background if it started with
/// [`Postgres::warm_start`] and its state image does not hold `template_key`
/// yet. A process that exits first waits for it (bounded, like removals).
/// Returns what resolves once the data directory was taken (or no save is
/// made): this process fills its warm pool after that, so the state does not
/// carry the pool's clones, which every start from it would copy.
pub(super) fn save_if_missing(
    server: &Running<Postgres>,
    template_key: &str,
) -> Option<oneshot::Receiver<()>> {
    if !server.settings().warm_start_enabled() {
        return None;
    }
    let container = server.container();
    if !SAVING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(format!("{}:{template_key}", container.id()))
    {
        return None;
    }
    let (taken, taken_rx) = oneshot::channel();
    let job = SaveJob {
        container: container.id().to_string(),
        resource: container.describe(),
        admin_url: server.url_for("postgres"),
        user: server.user().to_string(),
        template_key: template_key.to_string(),
        taken: Mutex::new(Some(taken)),
    };
    crate::worker::submit(
        container.engine().endpoint(),
        Box::new(move |docker| {
            Box::pin(async move {
                let outcome = job.run(&docker).await;
                job.tell_taken();
                match outcome {
                    Ok(Some(image)) => tracing::debug!(%image, server = %job.resource, "saved a start state"),
                    Ok(None) => {}
                    Err(err) => tracing::warn!(%err, "saving the start state of a PostgreSQL server failed"),
                }
            })
        }),
    );
    Some(taken_rx)
}

struct SaveJob {
    container: String,
    resource: String,
    admin_url: String,
    user: String,
    template_key: String,
    /// Told once the data directory was taken, or no save will be made.
    taken: Mutex<Option<oneshot::Sender<()>>>,
}

impl SaveJob {
    fn tell_taken(&self) {
        if let Some(taken) = self.taken.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = taken.send(());
        }
    }

    /// Saves the state unless the newest one holds the template or another
    /// process is saving it; returns the new image.
    async fn run(&self, docker: &Docker) -> Result<Option<String>> {
        let inspected = crate::podman::inspect_container(docker, &self.container)
            .await
            .map_err(|e| Error::engine("inspect", &self.resource, e))?;
        let labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
        let (Some(key), Some(base)) = (labels.get(state::OF), labels.get(state::BASE)) else {
            return Ok(None);
        };
        let found = state::find(docker, key).await?;
        if found.is_some_and(|f| f.holds.contains(&self.template_key)) {
            return Ok(None);
        }
        // Held by this session until the save is done: a second process
        // that finds it taken leaves the save to the first.
        let (client, connection) = tokio_postgres::connect(&self.admin_url, NoTls)
            .await
            .map_err(|e| super::pool::db_error("connect to", &self.resource, e))?;
        let connection = tokio::spawn(connection);
        let saved = async {
            let lock = i64::from_str_radix(&key[..15], 16).unwrap_or(0) ^ 0x5741_524d;
            let row = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&lock])
                .await
                .map_err(|e| super::pool::db_error("lock the start state of", &self.resource, e))?;
            if !row.get::<_, bool>(0) {
                return Ok(None);
            }
            let rows = client
                .query(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, 'tpl_')",
                    &[],
                )
                .await
                .map_err(|e| super::pool::db_error("list the templates of", &self.resource, e))?;
            let holds = rows
                .iter()
                .filter_map(|r| r.get::<_, String>(0).strip_prefix("tpl_").map(str::to_string))
                .collect();
            let data = self.take_data_directory(docker).await?;
            let snapshot = Snapshot {
                key: key.clone(),
                base_image: base.clone(),
                holds,
                files: vec![data, start_script_tar(&self.resource)?],
            };
            state::save(docker, snapshot).await.map(Some)
        }
        .await;
        drop(client);
        let _ = connection.await;
        saved
    }

    /// A consistent copy of the running server's data directory, as a tar
    /// of `dockhand-state/pgdata/`.
    async fn take_data_directory(&self, docker: &Docker) -> Result<Vec<u8>> {
        let script = format!(
            "rm -rf {TAKEN} && pg_basebackup -h /var/run/postgresql -U \"$1\" -D {TAKEN}/pgdata -Fp -X stream -c fast \
             && rm -f {TAKEN}/pgdata/backup_manifest"
        );
        let take = Exec::new(["sh", "-c", script.as_str(), "sh", self.user.as_str()]).user("postgres");
        crate::exec::run(docker, &self.container, &self.resource, take)
            .await?
            .checked(&self.resource, "pg_basebackup")?;
        let tar = crate::container::files::download(docker, &self.container, TAKEN, &self.resource).await;
        self.tell_taken();
        let clear = Exec::new(["rm", "-rf", TAKEN]).user("postgres");
        let _ = crate::exec::run(docker, &self.container, &self.resource, clear).await;
        tar
    }
}

fn start_script_tar(resource: &str) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        operation: "pack the start script of",
        resource: resource.to_string(),
        source,
    };
    let mut out = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(START_SCRIPT.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    let path = state::START.trim_start_matches('/');
    out.append_data(&mut header, path, START_SCRIPT.as_bytes())
        .map_err(io)?;
    out.into_inner().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_laid_out_where_a_container_started_from_it_looks() {
        let root = state::MOUNT.trim_start_matches('/');
        // The engine names a copied-out directory's root for its last component.
        assert_eq!(TAKEN.rsplit('/').next(), Some(root));
        assert!(START_SCRIPT.contains(&format!("{}/pgdata/.", state::MOUNT)));
        let tar = start_script_tar("test").unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.header().mode().unwrap(), 0o755);
        assert_eq!(
            entry.path().unwrap().display().to_string(),
            format!("{root}/start.sh")
        );
    }
}
