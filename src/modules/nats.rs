//! NATS: a message broker, as the one module that was added on the generic
//! shape alone (its settings, its builder and readiness, its URL).

use std::time::Duration;

use super::service::{Running, Service, Shared};
use super::url::service_url;
use crate::container::{Container, ContainerBuilder};
use crate::error::Result;
use crate::wait::WaitFor;

/// The official image by default (its Alpine variant, which has a shell for
/// exec); swap it with [`Nats::image`].
pub const DEFAULT_IMAGE: &str = "nats:2.10-alpine";
const PORT: u16 = 4222;
const READY_LINE: &str = "Server is ready";

/// A NATS server to start: optional user and password, optional JetStream
/// (stored in memory unless a store directory is given).
///
/// ```no_run
/// use dockhand::modules::Nats;
/// # async fn demo() -> dockhand::Result<()> {
/// let nats = Nats::new().user("app", "s3cret").jetstream().start().await?;
/// let url = nats.connection_string(); // nats://app:s3cret@127.0.0.1:<port>
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "nothing starts until .start().await"]
pub struct Nats {
    image: String,
    login: Option<(String, String)>,
    jetstream: bool,
    startup_timeout: Duration,
}

impl Default for Nats {
    fn default() -> Self {
        Nats {
            image: DEFAULT_IMAGE.into(),
            login: None,
            jetstream: false,
            startup_timeout: Duration::from_secs(60),
        }
    }
}

impl Nats {
    /// `nats:2.10-alpine`, no auth, no JetStream.
    ///
    /// ```
    /// let n = dockhand::modules::Nats::new();
    /// ```
    pub fn new() -> Self {
        Nats::default()
    }

    /// Another image that has `nats-server` on its `PATH`.
    ///
    /// ```
    /// let n = dockhand::modules::Nats::new().image("nats:2.11-alpine");
    /// ```
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = image.into();
        self
    }

    /// Requires this user and password from every client.
    ///
    /// ```
    /// let n = dockhand::modules::Nats::new().user("app", "s3cret");
    /// ```
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.login = Some((user.into(), password.into()));
        self
    }

    /// Turns on JetStream (streams, key-value, object store).
    ///
    /// ```
    /// let n = dockhand::modules::Nats::new().jetstream();
    /// ```
    pub fn jetstream(mut self) -> Self {
        self.jetstream = true;
        self
    }

    /// The deadline for the whole start (default 60 s).
    ///
    /// ```
    /// let n = dockhand::modules::Nats::new().startup_timeout(std::time::Duration::from_secs(10));
    /// ```
    pub fn startup_timeout(mut self, limit: Duration) -> Self {
        self.startup_timeout = limit;
        self
    }

    /// The container builder this module would start, to add anything else.
    ///
    /// ```
    /// let b = dockhand::modules::Nats::new().builder().label("team", "events");
    /// ```
    pub fn builder(&self) -> ContainerBuilder {
        let mut args = vec!["--port".to_string(), PORT.to_string()];
        if let Some((user, password)) = &self.login {
            args.extend(["--user".into(), user.clone(), "--pass".into(), password.clone()]);
        }
        if self.jetstream {
            args.extend(["--jetstream".into(), "--store_dir".into(), "/tmp/nats".into()]);
        }
        Container::builder(&self.image)
            .entrypoint(["nats-server"])
            .cmd(args)
            .expose(PORT)
            .startup_timeout(self.startup_timeout)
            .wait_for(WaitFor::log(READY_LINE).on_stderr())
            .wait_for(WaitFor::port(PORT))
    }

    /// Starts the server and waits until it accepts clients.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let nats = dockhand::modules::Nats::new().start().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(&self) -> Result<NatsContainer> {
        Service::start(self).await
    }
}

impl Service for Nats {
    type State = ();
    const NAME: &'static str = "nats";
    const PORT: u16 = PORT;

    fn builder(&self) -> ContainerBuilder {
        Nats::builder(self)
    }
}

/// A running NATS server; removed when dropped.
///
/// ```no_run
/// # async fn demo() -> dockhand::Result<()> {
/// let nats = dockhand::modules::Nats::new().start().await?;
/// println!("{}", nats.connection_string());
/// # Ok(()) }
/// ```
pub type NatsContainer = Running<Nats>;

impl Running<Nats> {
    /// The user and password clients must give, if any. Some clients
    /// (`async-nats`) ignore credentials in the URL: pass these to their
    /// options instead.
    ///
    /// ```no_run
    /// # fn demo(n: &dockhand::modules::NatsContainer) {
    /// if let Some((user, password)) = n.credentials() {
    ///     println!("{user}");
    /// }
    /// # }
    /// ```
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.settings()
            .login
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// `host:port`, for clients that take credentials separately.
    ///
    /// ```no_run
    /// # fn demo(n: &dockhand::modules::NatsContainer) { println!("{}", n.address()); }
    /// ```
    pub fn address(&self) -> String {
        format!("{}:{}", self.host(), self.port())
    }

    /// `nats://[user:password@]host:port`, user and password percent-encoded.
    ///
    /// ```no_run
    /// # fn demo(n: &dockhand::modules::NatsContainer) { println!("{}", n.connection_string()); }
    /// ```
    pub fn connection_string(&self) -> String {
        let login = self.settings().login.as_ref();
        let url = service_url(
            "nats",
            login.map(|(u, _)| u.as_str()),
            login.map(|(_, p)| p.as_str()),
            self.host(),
            self.port(),
            "",
        );
        url.trim_end_matches('/').to_string()
    }
}

/// One NATS server for the whole test run, every process of it (see [`Shared`]).
///
/// ```no_run
/// use dockhand::modules::{Nats, SharedNats};
///
/// static NATS: SharedNats = SharedNats::new(Nats::new);
///
/// #[tokio::test]
/// async fn publishes() -> dockhand::Result<()> {
///     let url = NATS.server().await?.connection_string();
///     Ok(())
/// }
/// ```
pub type SharedNats = Shared<Nats>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_reach_the_command() {
        let body = Nats::new()
            .user("app", "pw")
            .jetstream()
            .builder()
            .to_create_body("c")
            .unwrap();
        let cmd = body.cmd.unwrap().join(" ");
        assert_eq!(body.entrypoint.unwrap(), ["nats-server"]);
        assert!(cmd.contains("--user app --pass pw"), "{cmd}");
        assert!(cmd.contains("--jetstream"), "{cmd}");
    }
}
