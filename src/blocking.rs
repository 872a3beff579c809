//! dockhand for plain `#[test]` functions: the same builders, guards, waits,
//! exec, logs and modules, with no async runtime in the test.
//!
//! Every call runs on one runtime the process shares (two worker threads,
//! made on first use), never a runtime per call. Guards clean up exactly as
//! in async tests: dropping one hands its removal to the background worker.
//!
//! ```no_run
//! use dockhand::blocking::StartBlocking;
//! use dockhand::{Container, WaitFor};
//!
//! #[test]
//! fn greets() -> dockhand::Result<()> {
//!     let web = Container::builder("fixtures/busybox:latest")
//!         .cmd(["sh", "-c", "echo ready; exec httpd -f -p 8080"])
//!         .expose(8080)
//!         .wait_for(WaitFor::log("ready"))
//!         .start_blocking()?;
//!     let out = web.exec(["echo", "hi"])?;
//!     assert_eq!(out.stdout_str(), "hi\n");
//!     assert!(web.logs()?.stdout().contains("ready"));
//!     Ok(())
//! }
//! ```
//!
//! Anything else async in dockhand (a module's start, a group, stats) runs
//! through [`run`]:
//!
//! ```no_run
//! # fn demo() -> dockhand::Result<()> {
//! let redis = dockhand::blocking::run(dockhand::modules::Redis::new().start())?;
//! println!("{}", redis.connection_string());
//! # Ok(()) }
//! ```

use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use once_cell::sync::Lazy;

use crate::error::{Error, Result};
use crate::exec::{Exec, ExecOutput};
use crate::logs::Logs;
use crate::stats::Stats;
use crate::wait::WaitFor;

/// The runtime every blocking call runs on; `None` when it could not be made
/// (the error is reported by each call).
static RUNTIME: Lazy<std::result::Result<tokio::runtime::Runtime, String>> = Lazy::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("dockhand-blocking")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
});

/// Runs a dockhand future to its end on the shared runtime. Called from
/// inside an async runtime (where blocking would stall it) it refuses with
/// [`Error::InvalidConfig`]: use `.await` there.
///
/// ```no_run
/// # fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
/// let stats = dockhand::blocking::run(c.stats())?;
/// # Ok(()) }
/// ```
pub fn run<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::invalid(
            "dockhand::blocking",
            "called from inside an async runtime, where blocking would stall it; use the async API with .await there",
        ));
    }
    match &*RUNTIME {
        Ok(runtime) => runtime.block_on(future),
        Err(why) => Err(Error::Io {
            operation: "start the runtime of",
            resource: "dockhand::blocking".into(),
            source: std::io::Error::other(why.clone()),
        }),
    }
}

/// `.start_blocking()` on a container builder.
pub trait StartBlocking {
    /// Creates, starts and waits for the container, without an async runtime.
    ///
    /// ```no_run
    /// use dockhand::blocking::StartBlocking;
    /// # fn demo() -> dockhand::Result<()> {
    /// let c = dockhand::Container::builder("fixtures/busybox:latest").cmd(["sleep", "60"]).start_blocking()?;
    /// # Ok(()) }
    /// ```
    fn start_blocking(self) -> Result<Container>;
}

impl StartBlocking for crate::ContainerBuilder {
    fn start_blocking(self) -> Result<Container> {
        run(self.start()).map(Container)
    }
}

/// A [`crate::Container`] guard with blocking methods; everything that needs
/// no engine call (`id`, `name`, `host_port`, `address`, ...) comes through
/// `Deref`. Removed when dropped, like the async guard.
#[derive(Debug)]
pub struct Container(crate::Container);

impl Deref for Container {
    type Target = crate::Container;

    fn deref(&self) -> &crate::Container {
        &self.0
    }
}

impl Container {
    /// Runs a command in the container.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::blocking::Container) -> dockhand::Result<()> {
    /// assert_eq!(c.exec(["true"])?.exit_code, 0);
    /// # Ok(()) }
    /// ```
    pub fn exec(&self, command: impl Into<Exec>) -> Result<ExecOutput> {
        run(self.0.exec(command))
    }

    /// Everything the container has logged so far.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::blocking::Container) -> dockhand::Result<()> {
    /// println!("{}", c.logs()?.stdout());
    /// # Ok(()) }
    /// ```
    pub fn logs(&self) -> Result<Logs> {
        run(self.0.logs())
    }

    /// Waits for a condition (after a restart, the new run's lines only).
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::blocking::Container) -> dockhand::Result<()> {
    /// c.wait_until(dockhand::WaitFor::log("ready"), std::time::Duration::from_secs(5))?;
    /// # Ok(()) }
    /// ```
    pub fn wait_until(&self, condition: impl Into<WaitFor>, timeout: Duration) -> Result<()> {
        run(self.0.wait_until(condition, timeout))
    }

    /// Stops the container.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::blocking::Container) -> dockhand::Result<()> {
    /// c.stop()?;
    /// # Ok(()) }
    /// ```
    pub fn stop(&self) -> Result<()> {
        run(self.0.stop())
    }

    /// Starts it again after a stop.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::blocking::Container) -> dockhand::Result<()> {
    /// c.start()?;
    /// # Ok(()) }
    /// ```
    pub fn start(&self) -> Result<()> {
        run(self.0.start())
    }

    /// Restarts it (its host ports are read again).
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::blocking::Container) -> dockhand::Result<()> {
    /// c.restart()?;
    /// # Ok(()) }
    /// ```
    pub fn restart(&self) -> Result<()> {
        run(self.0.restart())
    }

    /// Sends a signal to its main process.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::blocking::Container) -> dockhand::Result<()> {
    /// c.kill("SIGKILL")?;
    /// # Ok(()) }
    /// ```
    pub fn kill(&self, signal: &str) -> Result<()> {
        run(self.0.kill(signal))
    }

    /// Copies bytes into a file in the container.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::blocking::Container) -> dockhand::Result<()> {
    /// c.copy_file_to("/etc/app.conf", b"debug = true\n".to_vec(), 0o644)?;
    /// # Ok(()) }
    /// ```
    pub fn copy_file_to(&self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Result<()> {
        run(self.0.copy_file_to(path, contents, mode))
    }

    /// Reads a file out of the container.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::blocking::Container) -> dockhand::Result<()> {
    /// let bytes = c.copy_file_from("/etc/hostname")?;
    /// # Ok(()) }
    /// ```
    pub fn copy_file_from(&self, path: &str) -> Result<Vec<u8>> {
        run(self.0.copy_file_from(path))
    }

    /// One reading of its resource use.
    ///
    /// ```no_run
    /// # fn demo(c: &dockhand::blocking::Container) -> dockhand::Result<()> {
    /// println!("{:.1} % CPU", c.stats()?.cpu_percent);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> Result<Stats> {
        run(self.0.stats())
    }

    /// Removes the container now and reports whether that worked.
    ///
    /// ```no_run
    /// # fn demo(c: dockhand::blocking::Container) -> dockhand::Result<()> {
    /// c.remove()?;
    /// # Ok(()) }
    /// ```
    pub fn remove(self) -> Result<()> {
        run(self.0.remove())
    }

    /// The async guard, for what this wrapper does not offer.
    ///
    /// ```no_run
    /// # fn demo(c: dockhand::blocking::Container) {
    /// let guard: dockhand::Container = c.into_inner();
    /// # }
    /// ```
    pub fn into_inner(self) -> crate::Container {
        self.0
    }
}
