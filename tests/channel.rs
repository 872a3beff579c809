//! Unix-socket channels: a real listener (perl, on the Debian fixture base)
//! inside the container, reached from the host through the mounted directory;
//! its directory goes with the container, whoever removes it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{redis as base_image, unique};
use dockhand::{ChannelProblem, Container, Error, WaitFor};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// Listens on `$DOCKHAND_CHANNEL` (socket mode 0666) and answers each line:
/// `{"echo": <line>, "pid": <pid of the connection's handler>}`, or, for lines
/// naming them, garbage, nothing at all, or a hang-up.
const LISTENER: &str = r#"
use IO::Socket::UNIX;
$| = 1;
$SIG{CHLD} = 'IGNORE';
umask 0;
my $path = $ENV{DOCKHAND_CHANNEL};
my $server = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $path, Listen => 16)
    or die "listen on $path: $!";
print "listening on $path\n";
while (my $c = $server->accept) {
    next if fork();
    $c->autoflush(1);
    while (my $line = <$c>) {
        chomp $line;
        if ($line =~ /garbage/) { print $c "this is not json\n"; }
        elsif ($line =~ /silence/) { }
        elsif ($line =~ /hangup/) { close $c; exit 0; }
        else { print $c "{\"echo\":$line,\"pid\":$$}\n"; }
    }
    exit 0;
}
"#;

async fn listening(builder: dockhand::ContainerBuilder) -> dockhand::Result<Container> {
    builder
        .cmd(["perl", "-e", LISTENER])
        .wait_for(WaitFor::log("listening on"))
        .start()
        .await
}

fn inspect(id: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", format, id])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn wait_gone(path: &Path, limit: Duration) -> bool {
    let begun = Instant::now();
    while begun.elapsed() < limit {
        if std::fs::symlink_metadata(path).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[tokio::test]
async fn a_process_in_the_container_answers_over_its_channel() -> dockhand::Result<()> {
    let image = base_image().await?;
    let c = listening(Container::builder(image).channel()).await?;
    let path = c.channel_path()?;
    let dir = path.parent().unwrap().to_path_buf();
    assert_eq!(path.file_name().unwrap(), format!("{}.sock", c.id()).as_str());
    // The process was told the path in its own filesystem; the host's
    // directory is the one mounted there, and the container's label names it.
    assert_eq!(
        inspect(c.id(), "{{index .Config.Labels \"dockhand.channel\"}}"),
        dir.to_string_lossy()
    );
    let env = inspect(c.id(), "{{json .Config.Env}}");
    assert!(
        env.contains("DOCKHAND_CHANNEL=/run/dockhand/channel.sock"),
        "{env}"
    );
    assert!(dir.join("channel.sock").exists());

    let before = c.channel_status().await?;
    assert!(before.exists && before.accepts, "{before:?}");
    assert_eq!(before.last_answer, None);

    let reply: Value = c.request(&json!({"n": 1}), Duration::from_secs(5)).await?;
    assert_eq!(reply["echo"], json!({"n": 1}));
    assert!(c.channel_status().await?.last_answer.is_some());

    // One connection, several requests: one handler answers them all.
    let mut channel = c.json_channel().await?;
    let first: Value = channel.request(&json!({"n": 2}), Duration::from_secs(5)).await?;
    let second: Value = channel.request(&json!({"n": 3}), Duration::from_secs(5)).await?;
    assert_eq!(
        (first["echo"]["n"].as_i64(), second["echo"]["n"].as_i64()),
        (Some(2), Some(3))
    );
    assert_eq!(first["pid"], second["pid"]);
    assert_ne!(first["pid"], reply["pid"]);

    // The raw stream, for a protocol of the user's own.
    let stream = c.channel().await?;
    let (read, mut write) = stream.into_split();
    write.write_all(b"[7]\n").await.unwrap();
    let mut line = String::new();
    tokio::io::BufReader::new(read)
        .read_line(&mut line)
        .await
        .unwrap();
    assert!(line.starts_with("{\"echo\":[7]"), "{line}");

    c.remove().await?;
    assert!(!dir.exists(), "the channel directory outlived its container");
    Ok(())
}

#[tokio::test]
async fn a_container_started_again_listens_on_its_channel_where_the_stopped_one_did() -> dockhand::Result<()>
{
    let image = base_image().await?;
    // The listener binds without unlinking first, as most do: the stopped
    // process's socket file must be gone before the next one binds.
    let c = listening(Container::builder(image).channel().init()).await?;
    let first: Value = c.request(&json!("one"), Duration::from_secs(5)).await?;
    c.stop().await?;
    c.start().await?;
    c.wait_until(WaitFor::log("listening on"), Duration::from_secs(30))
        .await?;
    let second: Value = c.request(&json!("two"), Duration::from_secs(5)).await?;
    c.restart().await?;
    c.wait_until(WaitFor::log("listening on"), Duration::from_secs(30))
        .await?;
    let third: Value = c.request(&json!("three"), Duration::from_secs(5)).await?;
    assert_eq!(
        (&first["echo"], &second["echo"], &third["echo"]),
        (&json!("one"), &json!("two"), &json!("three"))
    );
    assert_eq!(inspect(c.id(), "{{.State.Running}}"), "true");
    // Starting a running container keeps its live socket.
    c.start().await?;
    let fourth: Value = c.request(&json!("four"), Duration::from_secs(5)).await?;
    assert_eq!(fourth["echo"], json!("four"));
    Ok(())
}

#[tokio::test]
async fn a_dropped_container_takes_its_channel_directory_and_a_socket_path_is_configurable(
) -> dockhand::Result<()> {
    let image = base_image().await?;
    let c = listening(
        Container::builder(image)
            .channel_at("/run/app/control.sock")
            .user("999"),
    )
    .await?;
    let dir = c.channel_path()?.parent().unwrap().to_path_buf();
    assert!(dir.join("control.sock").exists());
    let env = inspect(c.id(), "{{json .Config.Env}}");
    assert!(env.contains("DOCKHAND_CHANNEL=/run/app/control.sock"), "{env}");
    // A process of another uid could make its socket in the directory.
    let reply: Value = c.request(&"hi", Duration::from_secs(5)).await?;
    assert_eq!(reply["echo"], "hi");
    drop(c);
    assert!(dockhand::wait_for_cleanup(Duration::from_secs(20)));
    assert!(
        wait_gone(&dir, Duration::from_secs(5)),
        "{} left after the drop",
        dir.display()
    );
    Ok(())
}

fn problem(err: &Error) -> (&ChannelProblem, &str, &Path) {
    match err {
        Error::Channel {
            problem,
            container,
            path,
        } => (problem, container.as_str(), path.as_path()),
        other => panic!("not a channel error: {other}"),
    }
}

#[tokio::test]
async fn channel_failures_are_typed_and_name_the_container_and_socket() -> dockhand::Result<()> {
    let image = base_image().await?;
    let limit = Duration::from_secs(5);

    let plain = Container::builder(image).cmd(["sleep", "60"]).start().await?;
    let err = plain.channel().await.unwrap_err();
    assert_eq!(problem(&err).0, &ChannelProblem::NotConfigured);
    assert!(
        err.to_string().contains(plain.name()) && err.to_string().contains("channel()"),
        "{err}"
    );
    drop(plain);

    // Nothing listens yet.
    let quiet = Container::builder(image)
        .channel()
        .cmd(["sleep", "60"])
        .start()
        .await?;
    let err = quiet.request::<_, Value>(&1, limit).await.unwrap_err();
    let (what, container, path) = problem(&err);
    assert_eq!(what, &ChannelProblem::Missing);
    assert!(container.contains(quiet.name()));
    assert_eq!(path, quiet.channel_path()?);
    assert!(!quiet.channel_status().await?.exists);
    drop(quiet);

    // The socket is there, its process is gone.
    let dead = Container::builder(image)
        .channel()
        .cmd([
            "sh",
            "-c",
            "perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Local => $ENV{DOCKHAND_CHANNEL}, Listen => 1) or die' \
             && echo made && sleep 60",
        ])
        .wait_for(WaitFor::log("made"))
        .start()
        .await?;
    let err = dead.request::<_, Value>(&1, limit).await.unwrap_err();
    assert_eq!(problem(&err).0, &ChannelProblem::Refused, "{err}");
    let status = dead.channel_status().await?;
    assert!(status.exists && !status.accepts, "{status:?}");
    drop(dead);

    let live = listening(Container::builder(image).channel()).await?;
    let err = live.request::<_, Value>(&"garbage", limit).await.unwrap_err();
    assert!(
        matches!(problem(&err).0, ChannelProblem::NotJson(d) if d.contains("this is not json")),
        "{err}"
    );
    let err = live.request::<_, Value>(&"hangup", limit).await.unwrap_err();
    assert_eq!(problem(&err).0, &ChannelProblem::Closed, "{err}");
    let begun = Instant::now();
    let short = Duration::from_millis(300);
    let err = live.request::<_, Value>(&"silence", short).await.unwrap_err();
    assert_eq!(problem(&err).0, &ChannelProblem::Timeout(short), "{err}");
    assert!(err.is_timeout());
    assert!(begun.elapsed() < Duration::from_secs(3), "{:?}", begun.elapsed());
    // A reply of the wrong shape is not JSON of the type asked for.
    let err = live.request::<_, Vec<u8>>(&1, limit).await.unwrap_err();
    assert!(matches!(problem(&err).0, ChannelProblem::NotJson(_)), "{err}");
    // And the channel still serves.
    let ok: Value = live.request(&2, limit).await?;
    assert_eq!(ok["echo"], 2);
    Ok(())
}

#[tokio::test]
async fn a_channel_path_of_no_directory_of_its_own_is_refused_before_anything_exists() {
    for bad in ["relative.sock", "/top.sock", ""] {
        let err = Container::builder("fixtures/busybox:latest")
            .channel_at(bad)
            .start()
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { ref reason, .. } if reason.contains("absolute path below a directory")),
            "{bad:?}: {err}"
        );
    }
}

const DIR_FILE: &str = "DOCKHAND_TEST_CHANNEL_DIR_FILE";

/// The child: a container with a channel, then sleep until killed.
#[tokio::test]
#[ignore = "child process of the channel tests"]
async fn child_holds_a_channel() -> dockhand::Result<()> {
    let c = listening(Container::builder(base_image().await?).channel()).await?;
    let dir = c.channel_path()?.parent().unwrap().to_path_buf();
    println!("READY {} {}", c.id(), dir.display());
    tokio::time::sleep(Duration::from_secs(600)).await;
    drop(c);
    Ok(())
}

fn spawn_child() -> (Child, String, PathBuf) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_a_channel",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_FILE, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(|l| l.ok())
        .find_map(|l| l.split_once("READY ").map(|(_, rest)| rest.to_string()))
        .unwrap_or_else(|| panic!("the child ended before it was ready: {:?}", child.wait()));
    std::thread::spawn(move || lines.for_each(drop));
    let (id, dir) = ready.trim().split_once(' ').unwrap();
    (child, id.to_string(), PathBuf::from(dir))
}

#[test]
fn the_watcher_of_a_killed_process_removes_its_channel_directories() {
    let (mut child, id, dir) = spawn_child();
    assert!(dir.join("channel.sock").exists());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_gone(&dir, Duration::from_secs(30)),
        "{} left after SIGKILL",
        dir.display()
    );
    assert!(common::gone_after_cleanup(&id));
}

#[tokio::test]
async fn the_sweeper_removes_a_channel_directory_whose_container_is_gone() -> dockhand::Result<()> {
    let c = Container::builder(base_image().await?)
        .channel()
        .cmd(["sleep", "60"])
        .label("dockhand-test", unique("channel-sweep"))
        .start()
        .await?;
    let dir = c.channel_path()?.parent().unwrap().to_path_buf();
    let id = c.keep();
    // Kept, then removed behind dockhand's back: the directory is an orphan,
    // which a sweep removes once it is past the grace given to a create
    // under way.
    assert!(Command::new("docker")
        .args(["rm", "-f", &id])
        .output()
        .unwrap()
        .status
        .success());
    let young = dockhand::Sweeper::new().run().await?;
    drop(young);
    assert!(
        dir.exists(),
        "a young directory was swept: its create may be under way"
    );
    let aged = Command::new("touch")
        .args(["-d", "5 minutes ago"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(aged.success());
    dockhand::Sweeper::new().run().await?;
    assert!(
        !dir.exists(),
        "{} survived a sweep without its container",
        dir.display()
    );
    Ok(())
}
