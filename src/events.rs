//! What the engine does, as a typed stream: [`Engine::events`] and
//! [`Container::events`](crate::Container::events).
//!
//! By default a stream shows this process's objects only. Containers and images
//! carry the session label in their events; networks and volumes do not (the
//! engine sends only their name and driver), so those are matched by the ids
//! this process created.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptions;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::inventory::Scope;
use crate::remove::ObjectKind;
use crate::{labels, session};

/// One thing the engine did.
///
/// ```no_run
/// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
/// use futures_util::StreamExt;
/// let mut events = engine.events().action("die").stream()?;
/// while let Some(event) = events.next().await {
///     let event = event?;
///     println!("{} exited with {:?}", event.name, event.exit_code);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The kind of object; `None` for the engine's other events (plugins,
    /// the daemon itself).
    pub kind: Option<ObjectKind>,
    /// What happened: `create`, `start`, `die`, `oom`, `kill`, `destroy`,
    /// `health_status: healthy`, `connect`, `pull`, ...
    pub action: String,
    /// The object's id (for volumes, the name).
    pub id: String,
    /// The object's name.
    pub name: String,
    /// For containers, the image it runs.
    pub image: Option<String>,
    /// For containers and images, their labels; for networks and volumes what
    /// the engine reports (driver, the container connected).
    pub attributes: HashMap<String, String>,
    /// When it happened.
    pub time: SystemTime,
    /// For `die`, the exit code.
    pub exit_code: Option<i64>,
}

impl Event {
    /// The action without its detail: `health_status` for
    /// `health_status: healthy`, `exec_start` for `exec_start: sh -c ...`.
    ///
    /// ```
    /// # let e = dockhand::Event { kind: None, action: "health_status: healthy".into(), id: String::new(), name: String::new(), image: None, attributes: Default::default(), time: std::time::UNIX_EPOCH, exit_code: None };
    /// assert_eq!(e.verb(), "health_status");
    /// ```
    pub fn verb(&self) -> &str {
        self.action.split(':').next().unwrap_or_default().trim()
    }

    fn from_engine(message: EventMessage) -> Event {
        let kind = match message.typ {
            Some(EventMessageTypeEnum::CONTAINER) => Some(ObjectKind::Container),
            Some(EventMessageTypeEnum::NETWORK) => Some(ObjectKind::Network),
            Some(EventMessageTypeEnum::VOLUME) => Some(ObjectKind::Volume),
            Some(EventMessageTypeEnum::IMAGE) => Some(ObjectKind::Image),
            _ => None,
        };
        let actor = message.actor.unwrap_or_default();
        let mut attributes = actor.attributes.unwrap_or_default();
        let id = actor.id.unwrap_or_default();
        let name = attributes.remove("name").unwrap_or_else(|| id.clone());
        let image = match kind {
            // Podman names images in full; Docker as they were asked for.
            Some(ObjectKind::Container) => attributes
                .remove("image")
                .map(|image| crate::image::familiar(&image).to_string()),
            _ => None,
        };
        let exit_code = attributes.remove("exitCode").and_then(|c| c.parse().ok());
        let nanos = message
            .time_nano
            .or(message.time.map(|s| s * 1_000_000_000))
            .unwrap_or(0);
        let action = docker_action(kind, message.action.unwrap_or_default());
        Event {
            kind,
            action,
            id,
            name,
            image,
            attributes,
            time: UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)),
            exit_code,
        }
    }

    /// Whether this process created the event's object. (A network event
    /// about one of its containers on a network it did not create, such as the
    /// default bridge, is about that network: not ours.)
    fn is_ours(&self) -> bool {
        self.attributes.get(labels::SESSION).map(String::as_str) == Some(labels::session_id())
            || session::owns(&self.id)
    }
}

/// Which events a stream shows; [`stream`](EventsBuilder::stream) opens it.
///
/// ```no_run
/// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
/// let events = engine
///     .events()
///     .kind(dockhand::ObjectKind::Container)
///     .action("die")
///     .action("oom")
///     .label("team", "db")
///     .since(std::time::SystemTime::now())
///     .stream()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "nothing is watched until .stream()"]
pub struct EventsBuilder {
    engine: Engine,
    scope: Scope,
    kinds: Vec<ObjectKind>,
    actions: Vec<String>,
    objects: Vec<String>,
    labels: Vec<String>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
}

impl Engine {
    /// Watches what the engine does; by default only this process's objects,
    /// from now on.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let engine = dockhand::Engine::connect().await?;
    /// let events = engine.events().stream()?;
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> EventsBuilder {
        EventsBuilder {
            engine: self.clone(),
            scope: Scope::Session,
            kinds: Vec::new(),
            actions: Vec::new(),
            objects: Vec::new(),
            labels: Vec::new(),
            since: None,
            until: None,
        }
    }
}

impl EventsBuilder {
    /// This process's objects (the default), every dockhand object
    /// ([`Scope::Managed`]), or everything in the engine.
    ///
    /// ```no_run
    /// # fn demo(e: &dockhand::Engine) { let b = e.events().scope(dockhand::Scope::Everything); }
    /// ```
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Only events about this kind of object (may be given several times).
    ///
    /// ```no_run
    /// # fn demo(e: &dockhand::Engine) { let b = e.events().kind(dockhand::ObjectKind::Network); }
    /// ```
    pub fn kind(mut self, kind: ObjectKind) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Only this action (`die`, `start`, `health_status`; several allowed).
    ///
    /// ```no_run
    /// # fn demo(e: &dockhand::Engine) { let b = e.events().action("die"); }
    /// ```
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.actions.push(action.into());
        self
    }

    /// Only events about this object (id or name; several allowed).
    ///
    /// ```no_run
    /// # fn demo(e: &dockhand::Engine) { let b = e.events().object("web-1"); }
    /// ```
    pub fn object(mut self, id_or_name: impl Into<String>) -> Self {
        self.objects.push(id_or_name.into());
        self
    }

    /// Only objects with this label (containers and images; several allowed,
    /// all must match).
    ///
    /// ```no_run
    /// # fn demo(e: &dockhand::Engine) { let b = e.events().label("team", "db"); }
    /// ```
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push(format!("{}={}", key.into(), value.into()));
        self
    }

    /// From this time on (events the engine still remembers; by default, from
    /// now).
    ///
    /// ```no_run
    /// # fn demo(e: &dockhand::Engine) { let b = e.events().since(std::time::SystemTime::now()); }
    /// ```
    pub fn since(mut self, time: SystemTime) -> Self {
        self.since = Some(time);
        self
    }

    /// Until this time; the stream ends there.
    ///
    /// ```no_run
    /// # fn demo(e: &dockhand::Engine) { let b = e.events().until(std::time::SystemTime::now()); }
    /// ```
    pub fn until(mut self, time: SystemTime) -> Self {
        self.until = Some(time);
        self
    }

    /// Opens the stream. Fails at once, opening nothing, when `until` comes
    /// before `since`.
    ///
    /// ```no_run
    /// # async fn demo(e: &dockhand::Engine) -> dockhand::Result<()> {
    /// use futures_util::StreamExt;
    /// let mut events = e.events().stream()?;
    /// let first = events.next().await;
    /// # Ok(()) }
    /// ```
    pub fn stream(self) -> Result<EventStream> {
        if let (Some(since), Some(until)) = (self.since, self.until)
            && until < since
        {
            return Err(Error::invalid(
                "event stream",
                "`until` is before `since`; give an until at or after the since",
            ));
        }
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        let mut add = |key: &str, values: Vec<String>| {
            if !values.is_empty() {
                filters.insert(key.to_string(), values);
            }
        };
        add("type", self.kinds.iter().map(ToString::to_string).collect());
        let actions = match self.engine.kind() {
            crate::EngineKind::Podman => podman_actions(&self.actions),
            crate::EngineKind::Docker => self.actions.clone(),
        };
        add("event", actions);
        let mut label_filter = self.labels.clone();
        if self.scope == Scope::Managed {
            label_filter.push(format!("{}=true", labels::MANAGED));
        }
        add("label", label_filter);
        // Podman answers an `until` that has passed with nothing at all: ask
        // it for what it has (stream=false) and cut at `until` here.
        let podman_past = self.engine.kind() == crate::EngineKind::Podman
            && self.until.is_some_and(|until| until <= SystemTime::now());
        let options = EventsOptions {
            since: Some(stamp(self.since.unwrap_or_else(SystemTime::now))),
            until: if podman_past { None } else { self.until.map(stamp) },
            filters: Some(filters),
        };
        let engine_stream = if podman_past {
            crate::podman::not_streaming(self.engine.docker())
                .events(Some(options))
                .boxed()
        } else {
            self.engine.docker().events(Some(options)).boxed()
        };
        Ok(EventStream {
            inner: Some(engine_stream),
            session_only: self.scope == Scope::Session,
            objects: self.objects,
            until: self.until.filter(|_| podman_past),
        })
    }
}

/// Docker's word for an action: Podman says `remove` where Docker says
/// `destroy` (containers, networks, volumes) or `delete` (images), so one
/// stream reads the same on both engines.
fn docker_action(kind: Option<ObjectKind>, action: String) -> String {
    match (kind, action.as_str()) {
        (Some(ObjectKind::Image), "remove") => "delete".into(),
        (Some(_), "remove") => "destroy".into(),
        _ => action,
    }
}

/// Podman filters by its own words (`died`, `remove`) though it reports
/// Docker's (`die`; `remove` is read as [`docker_action`] says).
fn podman_actions(docker: &[String]) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for action in docker {
        let own = match action.as_str() {
            "die" => "died",
            "destroy" | "delete" => "remove",
            other => other,
        };
        if !words.iter().any(|w| w == own) {
            words.push(own.to_string());
        }
    }
    words
}

/// Seconds and nanoseconds since the epoch, as the engine takes them.
fn stamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", since.as_secs(), since.subsec_nanos())
}

/// Typed engine events; ends with a typed error if the engine drops it, and
/// when its `until` passes.
pub struct EventStream {
    inner: Option<BoxStream<'static, std::result::Result<EventMessage, bollard::errors::Error>>>,
    session_only: bool,
    objects: Vec<String>,
    /// Where the engine does not cut the stream at `until` itself.
    until: Option<SystemTime>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("session_only", &self.session_only)
            .field("objects", &self.objects)
            .finish()
    }
}

impl EventStream {
    fn wanted(&self, event: &Event) -> bool {
        (!self.session_only || event.is_ours())
            && self.until.is_none_or(|until| event.time <= until)
            && (self.objects.is_empty() || self.objects.iter().any(|o| *o == event.id || *o == event.name))
    }
}

impl Stream for EventStream {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match inner.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.inner = None;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(err))) => {
                    this.inner = None;
                    return Poll::Ready(Some(Err(Error::engine("follow events of", "the engine", err))));
                }
                Poll::Ready(Some(Ok(message))) => {
                    let event = Event::from_engine(message);
                    if this.wanted(&event) {
                        return Poll::Ready(Some(Ok(event)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_is_asked_in_its_own_words_and_answers_in_dockers() {
        let asked: Vec<String> = ["die", "destroy", "kill"].map(String::from).to_vec();
        assert_eq!(podman_actions(&asked), ["died", "remove", "kill"]);
        assert_eq!(
            docker_action(Some(ObjectKind::Container), "remove".into()),
            "destroy"
        );
        assert_eq!(docker_action(Some(ObjectKind::Image), "remove".into()), "delete");
        assert_eq!(docker_action(Some(ObjectKind::Container), "die".into()), "die");
    }
    use bollard::models::EventActor;

    #[test]
    fn engine_messages_become_typed_events() {
        let message = EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some("die".into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(HashMap::from([
                    ("name".to_string(), "web".to_string()),
                    ("image".to_string(), "busybox".to_string()),
                    ("exitCode".to_string(), "137".to_string()),
                    ("team".to_string(), "db".to_string()),
                ])),
            }),
            time_nano: Some(1_700_000_000_123_456_789),
            ..Default::default()
        };
        let event = Event::from_engine(message);
        assert_eq!(event.kind, Some(ObjectKind::Container));
        assert_eq!((event.id.as_str(), event.name.as_str()), ("abc", "web"));
        assert_eq!(event.image.as_deref(), Some("busybox"));
        assert_eq!(event.exit_code, Some(137));
        assert_eq!(event.attributes["team"], "db");
        assert_eq!(
            event.time.duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_700_000_000, 123_456_789)
        );
        assert_eq!(stamp(UNIX_EPOCH + Duration::new(5, 7)), "5.000000007");
    }
}
