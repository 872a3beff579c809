//! Running a command inside a running container.

use std::borrow::Cow;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// A command to run in a container, with its environment, user, working
/// directory, standard input and time limit. Arrays and vectors of strings turn
/// into one.
///
/// ```
/// use dockhand::Exec;
/// let exec = Exec::new(["sh", "-c", "cat > /tmp/x"])
///     .stdin(b"data".to_vec())
///     .user("nobody")
///     .env("MODE", "test")
///     .workdir("/tmp")
///     .timeout(std::time::Duration::from_secs(5));
/// assert_eq!(exec.command(), ["sh", "-c", "cat > /tmp/x"]);
/// let plain: Exec = ["echo", "hi"].into();
/// assert_eq!(plain.command().len(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Exec {
    cmd: Vec<String>,
    env: Vec<String>,
    user: Option<String>,
    workdir: Option<String>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
    privileged: bool,
}

impl Exec {
    /// A command, as program and arguments (no shell involved).
    ///
    /// ```
    /// let e = dockhand::Exec::new(["ls", "/"]);
    /// ```
    pub fn new<I, S>(cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Exec {
            cmd: cmd.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Sets an environment variable for the command.
    ///
    /// ```
    /// let e = dockhand::Exec::new(["env"]).env("A", "1");
    /// ```
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push(format!("{}={}", key.into(), value.into()));
        self
    }

    /// Runs as this user (`name`, `uid` or `uid:gid`).
    ///
    /// ```
    /// let e = dockhand::Exec::new(["id"]).user("nobody");
    /// ```
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Runs in this directory.
    ///
    /// ```
    /// let e = dockhand::Exec::new(["pwd"]).workdir("/tmp");
    /// ```
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// Feeds these bytes to the command's standard input, then closes it.
    ///
    /// A command that exits before reading all of it is not an error: its
    /// exit code and output are returned. On Docker, output the engine has
    /// not copied out 2 s after the command exits is dropped by the engine
    /// (it then closes the streams), which a heavily loaded machine can hit
    /// while it still pipes in a large input.
    ///
    /// ```
    /// let e = dockhand::Exec::new(["cat"]).stdin(b"hello".to_vec());
    /// ```
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Fails with a timeout error when the command has not finished in time,
    /// and kills it (on a local engine; the engine itself has no call for it).
    /// The output read so far is lost.
    ///
    /// ```
    /// let e = dockhand::Exec::new(["sleep", "9"]).timeout(std::time::Duration::from_secs(1));
    /// ```
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Runs the command with extended privileges.
    ///
    /// ```
    /// let e = dockhand::Exec::new(["ip", "link"]).privileged();
    /// ```
    pub fn privileged(mut self) -> Self {
        self.privileged = true;
        self
    }

    /// The program and its arguments.
    ///
    /// ```
    /// assert_eq!(dockhand::Exec::new(["true"]).command(), ["true"]);
    /// ```
    pub fn command(&self) -> &[String] {
        &self.cmd
    }
}

impl<S: Into<String>, const N: usize> From<[S; N]> for Exec {
    fn from(cmd: [S; N]) -> Self {
        Exec::new(cmd)
    }
}

impl<S: Into<String>> From<Vec<S>> for Exec {
    fn from(cmd: Vec<S>) -> Self {
        Exec::new(cmd)
    }
}

impl<S: Into<String> + Clone> From<&[S]> for Exec {
    fn from(cmd: &[S]) -> Self {
        Exec::new(cmd.to_vec())
    }
}

/// What a command in a container did: its exit code, and its standard output and
/// standard error kept apart.
///
/// ```
/// let out = dockhand::ExecOutput { exit_code: 0, stdout: b"hi\n".to_vec(), stderr: vec![] };
/// assert!(out.success());
/// assert_eq!(out.stdout_str(), "hi\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code (126/127 when the program could not be run).
    pub exit_code: i64,
    /// Standard output, raw.
    pub stdout: Vec<u8>,
    /// Standard error, raw.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// Itself when the command exited 0, else [`Error::Exec`] naming the
    /// container and the command.
    pub(crate) fn checked(self, container: &str, command: &str) -> Result<ExecOutput> {
        if self.success() {
            return Ok(self);
        }
        Err(Error::Exec {
            container: container.to_string(),
            command: command.to_string(),
            exit_code: self.exit_code,
            stderr: self.stderr_str().trim().to_string(),
        })
    }

    /// Standard output as text (invalid UTF-8 replaced).
    ///
    /// ```
    /// let out = dockhand::ExecOutput { exit_code: 0, stdout: b"x".to_vec(), stderr: vec![] };
    /// assert_eq!(out.stdout_str(), "x");
    /// ```
    pub fn stdout_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// Standard error as text (invalid UTF-8 replaced).
    ///
    /// ```
    /// let out = dockhand::ExecOutput { exit_code: 1, stdout: vec![], stderr: b"no".to_vec() };
    /// assert_eq!(out.stderr_str(), "no");
    /// ```
    pub fn stderr_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }

    /// True when the exit code is 0.
    ///
    /// ```
    /// let out = dockhand::ExecOutput { exit_code: 2, stdout: vec![], stderr: vec![] };
    /// assert!(!out.success());
    /// ```
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// How long the exit code may take to appear once the output has ended.
const EXIT_CODE_PATIENCE: Duration = Duration::from_secs(10);

/// Runs `exec` in container `id`; `resource` names the container for errors.
/// With a timeout, a command still running when it passes is killed.
pub(crate) async fn run(docker: &Docker, id: &str, resource: &str, exec: Exec) -> Result<ExecOutput> {
    if exec.cmd.is_empty() {
        return Err(Error::invalid(
            format!("exec in {resource}"),
            "the command is empty; give at least the program to run",
        ));
    }
    let what = format!("{:?} in {resource}", exec.cmd);
    let Some(limit) = exec.timeout else {
        let exec_id = create(docker, id, &what, &exec).await?;
        return collect(docker, &exec_id, &what, &exec).await;
    };
    let begun = tokio::time::Instant::now();
    let timed_out = || Error::Timeout {
        operation: "exec",
        resource: what.clone(),
        after: limit,
    };
    let exec_id = tokio::time::timeout(limit, create(docker, id, &what, &exec))
        .await
        .map_err(|_| timed_out())??;
    match tokio::time::timeout_at(begun + limit, collect(docker, &exec_id, &what, &exec)).await {
        Ok(done) => done,
        Err(_) => {
            kill(docker, &exec_id, id, &what).await;
            Err(timed_out())
        }
    }
}

async fn create(docker: &Docker, id: &str, what: &str, exec: &Exec) -> Result<String> {
    let options = CreateExecOptions::<String> {
        attach_stdin: Some(exec.stdin.is_some()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        env: (!exec.env.is_empty()).then(|| exec.env.clone()),
        cmd: Some(exec.cmd.clone()),
        user: exec.user.clone(),
        working_dir: exec.workdir.clone(),
        privileged: Some(exec.privileged),
        ..Default::default()
    };
    docker
        .create_exec(id, options)
        .await
        .map(|created| created.id)
        .map_err(|e| Error::engine("create exec", what, e))
}

/// Starts the exec, feeds its stdin while reading its output (a command that
/// writes as it reads would otherwise fill both pipes and block), then waits
/// for its exit code.
async fn collect(docker: &Docker, exec_id: &str, what: &str, exec: &Exec) -> Result<ExecOutput> {
    let started = docker
        .start_exec(exec_id, None)
        .await
        .map_err(|e| Error::engine("start exec", what, e))?;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    if let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    {
        let feed = async {
            if let Some(bytes) = &exec.stdin {
                input.write_all(bytes).await?;
                input.shutdown().await?;
            }
            drop(input);
            Ok::<(), std::io::Error>(())
        };
        let read = async {
            while let Some(frame) = output.next().await {
                // Podman closes the connection with stdin still unread when
                // the command exits: the reset comes after every byte the
                // command wrote, so it ends the output like an end of stream.
                if let Err(bollard::errors::Error::IOError { err }) = &frame
                    && err.kind() == std::io::ErrorKind::ConnectionReset
                {
                    break;
                }
                match frame.map_err(|e| Error::engine("read output of exec", what, e))? {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        stdout.extend_from_slice(&message)
                    }
                    LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                    LogOutput::StdIn { .. } => {}
                }
            }
            Ok::<(), Error>(())
        };
        // The output ends when the command exits; input it never read is then
        // abandoned (`head -c1` stops reading by choice, not by failure).
        tokio::pin!(feed, read);
        let mut fed = None;
        let read = loop {
            tokio::select! {
                done = &mut read => break done,
                done = &mut feed, if fed.is_none() => fed = Some(done),
            }
        };
        read?;
        if let Some(Err(err)) = fed
            && !matches!(
                err.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            )
        {
            return Err(io_error("write stdin of exec", what, err));
        }
    }
    let exit_code = exit_code(docker, exec_id, what).await?;
    Ok(ExecOutput {
        exit_code,
        stdout,
        stderr,
    })
}

/// The exit code, which can appear a moment after the output ends.
async fn exit_code(docker: &Docker, exec_id: &str, what: &str) -> Result<i64> {
    let deadline = tokio::time::Instant::now() + EXIT_CODE_PATIENCE;
    let mut pause = Duration::from_millis(1);
    loop {
        let inspected = docker
            .inspect_exec(exec_id)
            .await
            .map_err(|e| Error::engine("inspect exec", what, e))?;
        if let (Some(code), false) = (inspected.exit_code, inspected.running == Some(true)) {
            return Ok(code);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Timeout {
                operation: "read the exit code of exec",
                resource: what.to_string(),
                after: EXIT_CODE_PATIENCE,
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Kills an exec's process after its timeout. The engine has no call for it, so
/// on a local engine the process is killed by its host pid, once its cgroup
/// shows it belongs to the container; elsewhere it is left running, said in
/// the log.
async fn kill(docker: &Docker, exec_id: &str, container: &str, what: &str) {
    let pid = match docker.inspect_exec(exec_id).await {
        Ok(inspected) if inspected.running == Some(true) => inspected.pid.unwrap_or(0),
        _ => return,
    };
    let ours = u32::try_from(pid).ok().filter(|&pid| {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(container))
    });
    match ours {
        Some(pid) if crate::hooks::kill_process(pid) => {
            tracing::debug!(exec = %what, pid, "killed an exec after its timeout")
        }
        _ => {
            tracing::warn!(exec = %what, pid, "an exec that timed out could not be killed (remote engine?); it runs on in the container")
        }
    }
}

fn io_error(operation: &'static str, resource: &str, source: std::io::Error) -> Error {
    Error::Io {
        operation,
        resource: resource.to_string(),
        source,
    }
}
