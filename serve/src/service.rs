//! The containers the service owns, and what each event does to them. Every
//! container is a dockhand guard: labelled, removed by the watcher if the
//! service dies, and removed on shutdown unless the service keeps them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use dockhand::{Container, Engine, WaitFor};
use serde_json::{json, Value};
use socketioxide::SocketIo;

use crate::entry::{summary, Entry};
use crate::push;
use crate::reply::{Failure, Reply};
use crate::requests::{self, ChannelSpec, Create};

/// The service's state, shared by every connection.
pub struct Service {
    pub engine: Engine,
    pub io: SocketIo,
    containers: Mutex<HashMap<String, Arc<Entry>>>,
}

impl Service {
    pub fn new(engine: Engine, io: SocketIo) -> Self {
        Service {
            engine,
            io,
            containers: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.containers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The service's container with this id (full, a unique prefix, or its name).
    pub fn find(&self, operation: &'static str, id: &str) -> Result<Arc<Entry>, Failure> {
        let map = self.map();
        if let Some(entry) = map.get(id) {
            return Ok(entry.clone());
        }
        let matches: Vec<_> = map
            .values()
            .filter(|e| (id.len() >= 4 && e.container.id().starts_with(id)) || e.container.name() == id)
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Failure::new(
                "not_found",
                operation,
                format!("no container {id:?} is managed by this service (`list` shows those that are)"),
            )
            .on(id)),
            _ => Err(Failure::new(
                "validation",
                operation,
                format!("{id:?} names more than one container"),
            )
            .on(id)),
        }
    }

    /// Every container of the service's, taken out (shutdown).
    pub fn take_all(&self) -> Vec<Arc<Entry>> {
        self.map().drain().map(|(_, e)| e).collect()
    }

    pub fn ids(&self) -> Vec<String> {
        self.map().keys().cloned().collect()
    }

    pub async fn create(&self, data: Value) -> Reply {
        let request: Create = requests::parse("create", data)?;
        let builder = self.builder(&request)?;
        let started = match request.start {
            true => builder.start().await,
            false => builder.create().await,
        };
        let container = started.map_err(|e| Failure::from_error("create", None, &e))?;
        let ports = request.ports.iter().filter_map(|p| p.port().ok()).collect();
        let entry = Arc::new(Entry {
            container,
            image: request.image.clone(),
            ports,
            created: SystemTime::now(),
            channel: request
                .channel
                .as_ref()
                .is_some_and(|c| !matches!(c, ChannelSpec::On(false))),
            wait_log: request.wait_log.clone(),
            latest: Mutex::new(None),
            sampling: Default::default(),
        });
        self.map().insert(entry.container.id().to_string(), entry.clone());
        if request.start {
            push::sample(&self.io, &entry);
        }
        let inspect = entry.container.inspect().await.ok();
        Ok(summary(&entry, inspect).await)
    }

    fn builder(&self, request: &Create) -> Result<dockhand::ContainerBuilder, Failure> {
        let bad = |message: String| Failure::new("validation", "create", message);
        let mut builder = Container::builder(&request.image).engine(&self.engine);
        if let Some(name) = &request.name {
            builder = builder.name(name);
        }
        for (key, value) in request
            .env
            .as_ref()
            .map(|e| e.pairs())
            .transpose()
            .map_err(bad)?
            .unwrap_or_default()
        {
            builder = builder.env(key, value);
        }
        for volume in &request.volumes {
            builder = builder.mount(mount(volume).map_err(bad)?);
        }
        for port in &request.ports {
            builder = builder.expose(port.port().map_err(bad)?);
        }
        if let Some(command) = &request.command {
            builder = builder.cmd(command.argv());
        }
        if let Some(dir) = &request.workdir {
            builder = builder.workdir(dir);
        }
        match &request.channel {
            Some(ChannelSpec::On(true)) => builder = builder.channel(),
            Some(ChannelSpec::At(path)) => builder = builder.channel_at(path),
            Some(ChannelSpec::On(false)) | None => {}
        }
        if request.init {
            builder = builder.init();
        }
        if let Some(grace) = request.stop_timeout_s {
            builder = builder.stop_timeout(Duration::from_secs(grace));
        }
        if let Some(line) = &request.wait_log {
            builder = builder.wait_for(WaitFor::log(line.clone()));
        }
        Ok(builder)
    }

    pub async fn start(&self, data: Value) -> Reply {
        let entry = self.target("start", data)?;
        let result = ready(&entry, entry.container.start().await).await;
        self.answer("start", &entry, result).await
    }

    pub async fn stop(&self, data: Value) -> Reply {
        let entry = self.target("stop", data)?;
        let result = entry.container.stop().await;
        self.answer("stop", &entry, result).await
    }

    pub async fn restart(&self, data: Value) -> Reply {
        let entry = self.target("restart", data)?;
        let result = ready(&entry, entry.container.restart().await).await;
        self.answer("restart", &entry, result).await
    }

    pub async fn update(&self, data: Value) -> Reply {
        let request: requests::Update = requests::parse("update", data)?;
        let entry = self.find("update", &request.id)?;
        let id = entry.container.id().to_string();
        if request.files.is_empty() {
            return Err(Failure::new(
                "validation",
                "update",
                "no files to copy: give files: [{path, content}]",
            )
            .on(&id));
        }
        for file in &request.files {
            let bytes = match (&file.content, &file.content_base64) {
                (Some(text), None) => text.clone().into_bytes(),
                (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|e| {
                        Failure::new(
                            "validation",
                            "update",
                            format!("{}: content_base64: {e}", file.path),
                        )
                        .on(&id)
                    })?,
                _ => {
                    return Err(Failure::new(
                        "validation",
                        "update",
                        format!("{}: give exactly one of content and content_base64", file.path),
                    )
                    .on(&id));
                }
            };
            entry
                .container
                .copy_file_to(&file.path, bytes, file.mode)
                .await
                .map_err(|e| Failure::from_error("update", Some(&id), &e))?;
        }
        let result = match request.restart {
            true => ready(&entry, entry.container.restart().await).await,
            false => Ok(()),
        };
        self.answer("update", &entry, result).await
    }

    /// Removes the container and answers once it is gone.
    pub async fn delete(&self, data: Value) -> Reply {
        let entry = self.target("delete", data)?;
        let id = entry.container.id().to_string();
        self.map().remove(&id);
        remove(entry)
            .await
            .map_err(|e| Failure::from_error("delete", Some(&id), &e))?;
        Ok(json!({"id": id, "deleted": true}))
    }

    /// Leaves the container in the engine for good; the service forgets it.
    pub fn keep(&self, data: Value) -> Reply {
        let entry = self.target("keep", data)?;
        let id = entry.container.id().to_string();
        self.map().remove(&id);
        let name = entry.container.name().to_string();
        keep(entry);
        Ok(json!({"id": id, "name": name, "kept": true}))
    }

    pub async fn status(&self, data: Value) -> Reply {
        let entry = self.target("status", data)?;
        let inspect = entry
            .container
            .inspect()
            .await
            .map_err(|e| Failure::from_error("status", Some(entry.container.id()), &e))?;
        Ok(summary(&entry, Some(inspect)).await)
    }

    pub async fn list(&self) -> Reply {
        let entries: Vec<_> = self.map().values().cloned().collect();
        let mut out = Vec::new();
        for entry in entries {
            let inspect = entry.container.inspect().await.ok();
            out.push(summary(&entry, inspect).await);
        }
        out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        Ok(json!({"containers": out}))
    }

    pub async fn logs(&self, data: Value) -> Reply {
        let request: requests::LogTail = requests::parse("logs", data)?;
        let entry = self.find("logs", &request.id)?;
        let logs = entry
            .container
            .logs()
            .await
            .map_err(|e| Failure::from_error("logs", Some(entry.container.id()), &e))?;
        let lines = logs.lines();
        let lines: Vec<_> = lines[lines.len().saturating_sub(request.tail)..]
            .iter()
            .map(|l| json!({"stream": l.source.to_string(), "text": l.text}))
            .collect();
        Ok(json!({"id": entry.container.id(), "lines": lines}))
    }

    pub async fn send_message(&self, data: Value) -> Reply {
        let request: requests::Message = requests::parse("send-message", data)?;
        let entry = self.find("send-message", &request.id)?;
        let limit = Duration::from_millis(request.timeout_ms.max(1));
        let begun = Instant::now();
        let reply: Value = entry
            .container
            .request(&request.message, limit)
            .await
            .map_err(|e| Failure::from_error("send-message", Some(entry.container.id()), &e))?;
        Ok(json!({
            "id": entry.container.id(),
            "reply": reply,
            "round_trip_ms": begun.elapsed().as_secs_f64() * 1000.0,
        }))
    }

    fn target(&self, operation: &'static str, data: Value) -> Result<Arc<Entry>, Failure> {
        let target: requests::Target = requests::parse(operation, data)?;
        self.find(operation, &target.id)
    }

    async fn answer(
        &self,
        operation: &'static str,
        entry: &Arc<Entry>,
        result: dockhand::Result<()>,
    ) -> Reply {
        result.map_err(|e| Failure::from_error(operation, Some(entry.container.id()), &e))?;
        if operation != "stop" {
            push::sample(&self.io, entry);
        }
        let inspect = entry.container.inspect().await.ok();
        Ok(summary(entry, inspect).await)
    }
}

/// A start replies once the service is ready again, as the create did.
async fn ready(entry: &Entry, started: dockhand::Result<()>) -> dockhand::Result<()> {
    match (started, &entry.wait_log) {
        (Ok(()), Some(line)) => {
            let limit = Duration::from_secs(60);
            entry
                .container
                .wait_until(WaitFor::log(line.clone()), limit)
                .await
        }
        (started, _) => started,
    }
}

/// `/host:/path[:ro]` binds a host path, `name:/path[:ro]` a named volume.
fn mount(spec: &str) -> Result<dockhand::Mount, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, read_only) = match parts.as_slice() {
        [source, target] => (*source, *target, false),
        [source, target, "ro"] => (*source, *target, true),
        [source, target, "rw"] => (*source, *target, false),
        _ => return Err(format!("volume {spec:?} is not source:/target[:ro]")),
    };
    if source.is_empty() || !target.starts_with('/') {
        return Err(format!("volume {spec:?} needs a source and an absolute target"));
    }
    let mount = match source.starts_with('/') {
        true => dockhand::Mount::bind(source, target),
        false => dockhand::Mount::named_volume(source, target),
    };
    Ok(if read_only { mount.read_only() } else { mount })
}

/// Removes a container once no operation holds it any more.
pub async fn remove(mut entry: Arc<Entry>) -> dockhand::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Arc::try_unwrap(entry) {
            Ok(entry) => return entry.container.remove().await,
            Err(shared) if Instant::now() < deadline => {
                entry = shared;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Still in use: its guard removes it when the last user lets go.
            Err(_) => return Ok(()),
        }
    }
}

/// Keeps a container for good, once no operation holds it.
pub fn keep(entry: Arc<Entry>) {
    tokio::spawn(async move {
        let mut entry = entry;
        loop {
            match Arc::try_unwrap(entry) {
                Ok(entry) => {
                    entry.container.keep();
                    return;
                }
                Err(shared) => {
                    entry = shared;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_binds_or_named() {
        assert!(mount("/srv:/data:ro").is_ok());
        assert!(mount("cache:/cache").is_ok());
        assert!(mount("nocolon").unwrap_err().contains("source:/target"));
        assert!(mount("x:relative").unwrap_err().contains("absolute"));
    }
}
