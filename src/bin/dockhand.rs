//! `dockhand`: look at and clean up what dockhand created in the engine.
//!
//! ```text
//! dockhand ls [--json]                    managed objects: kind, owner, alive, watcher, age, image, ports
//! dockhand sweep [--dry-run] [--kept] [--reused] [--cache] [--all] [--ttl D] [--json]
//!                                         remove objects of dead processes (--kept: kept ones too;
//!                                         --reused: containers kept across runs nobody uses;
//!                                         --cache: every cached start state; --all: every managed one;
//!                                         --ttl: age after which another host's objects go, e.g. 90s, 15m, 2h; default 1h)
//! dockhand logs <container> [-f]          a container's logs (follow with -f)
//! dockhand serve [--port N] [...]         the management service and its page (runs dockhand-serve)
//! ```

use std::process::ExitCode;
use std::time::Duration;

use dockhand::{Engine, ManagedObject, ObjectKind, OwnerState, Scope, Sweeper};

/// Prints a line; a closed pipe (`dockhand ls | head`) ends the program quietly
/// instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

const USAGE: &str =
    "usage: dockhand ls [--json] | sweep [--dry-run] [--kept] [--reused] [--cache] [--all] [--ttl D] [--json] | logs <container> [-f] | serve [--port N] [--bind ADDR] [--token T] [--keep]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let result = match args.first().map(String::as_str) {
        Some("ls") => ls(flag("--json")).await,
        Some("sweep") => {
            let modes = ["--kept", "--reused", "--cache", "--all"]
                .into_iter()
                .filter(|f| flag(f))
                .collect();
            match ttl_arg(&args) {
                Ok(ttl) => sweep(flag("--dry-run"), modes, ttl, flag("--json")).await,
                Err(message) => Err(message),
            }
        }
        Some("logs") => match args.get(1).filter(|a| !a.starts_with('-')) {
            Some(id) => logs(id, flag("-f") || flag("--follow")).await,
            None => Err(USAGE.to_string()),
        },
        Some("serve") => serve(&args[1..]),
        Some("-h") | Some("--help") | None => {
            out!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dockhand: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the management service, a binary of its own (the `serve/` crate, so
/// the library's users compile none of its web stack): `DOCKHAND_SERVE_BIN`,
/// else `dockhand-serve` beside this program, else on the `PATH`.
fn serve(args: &[String]) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("dockhand-serve")))
        .filter(|path| path.exists());
    let program = match std::env::var_os("DOCKHAND_SERVE_BIN") {
        Some(given) => std::path::PathBuf::from(given),
        None => beside.unwrap_or_else(|| "dockhand-serve".into()),
    };
    let err = std::process::Command::new(&program).args(args).exec();
    Err(format!(
        "could not run {}: {err}. Build it with `cargo build -p dockhand-serve` (or `cargo install --path serve`), \
         or point DOCKHAND_SERVE_BIN at it",
        program.display()
    ))
}

fn age(object: &ManagedObject) -> String {
    let Some(created) = object.created() else {
        return "?".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let secs = now.saturating_sub(created);
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    }
}

/// One line of `--json` output: the object as the library reports it, with
/// its owner's state and age, and for a sweep what was done and why.
#[derive(serde::Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    object: &'a ManagedObject,
    owner_pid: Option<u32>,
    owner: OwnerState,
    watched: Option<bool>,
    age: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reuse: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

fn json_row(object: &ManagedObject, action: Option<&str>, reason: Option<&str>) -> String {
    let row = Row {
        object,
        owner_pid: object.owner_pid(),
        owner: object.owner_state(),
        watched: object.watched(),
        age: age(object),
        group: object.group().map(|(g, _)| g),
        replica: object.group().and_then(|(_, i)| i),
        reuse: object.reused(),
        action,
        reason,
    };
    serde_json::to_string(&row).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

async fn ls(json: bool) -> Result<(), String> {
    let engine = Engine::connect().await.map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    for kind in ObjectKind::ALL {
        all.extend(
            engine
                .list(kind, Scope::Managed)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    if json {
        for o in &all {
            out!("{}", json_row(o, None, None));
        }
        return Ok(());
    }
    out!(
        "{:<10} {:<28} {:<12} {:>8} {:<7} {:<7} {:>5}  {:<28} PORTS",
        "KIND",
        "NAME",
        "GROUP",
        "PID",
        "OWNER",
        "WATCHER",
        "AGE",
        "IMAGE/DETAIL"
    );
    for o in &all {
        out!(
            "{:<10} {:<28} {:<12} {:>8} {:<7} {:<7} {:>5}  {:<28} {}",
            o.kind.to_string(),
            o.name,
            match (o.group(), o.reused()) {
                (Some((group, Some(index))), _) => format!("{group}[{index}]"),
                (Some((group, None)), _) => group.to_string(),
                // Shared by processes: the creator's pid says little.
                (None, Some(lifetime)) => format!("reused:{lifetime}"),
                (None, None) => "-".into(),
            },
            o.owner_pid().map_or("-".into(), |p| p.to_string()),
            o.owner_state().to_string(),
            match o.watched() {
                Some(true) => "on",
                Some(false) => "off",
                None => "-",
            },
            age(o),
            o.detail,
            o.ports.join(", ")
        );
    }
    if all.is_empty() {
        out!("(no dockhand objects)");
    }
    Ok(())
}

/// `--ttl D`: an hour unless given.
fn ttl_arg(args: &[String]) -> Result<Duration, String> {
    let Some(at) = args.iter().position(|a| a == "--ttl") else {
        return Ok(Duration::from_secs(3600));
    };
    let text = args.get(at + 1).map_or("", String::as_str);
    parse_duration(text)
        .ok_or_else(|| format!("--ttl takes a duration such as 90s, 15m, 2h or 1d, not {text:?}\n{USAGE}"))
}

fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale).map(Duration::from_secs)
}

async fn sweep(dry_run: bool, modes: Vec<&str>, ttl: Duration, json: bool) -> Result<(), String> {
    // The CLI removes what it is asked to even if interrupted half-way.
    let mut sweeper = Sweeper::new().ttl(ttl);
    if dry_run {
        sweeper = sweeper.dry_run();
    }
    for mode in modes {
        sweeper = match mode {
            "--kept" => sweeper.kept(),
            "--reused" => sweeper.reused(),
            "--cache" => sweeper.cache(),
            _ => sweeper.everything(),
        };
    }
    let report = sweeper.run().await.map_err(|e| e.to_string())?;
    let verb = if dry_run { "would remove" } else { "removed" };
    let rows = report
        .removed
        .iter()
        .map(|(o, why)| (verb, o, why))
        .chain(report.kept.iter().map(|(o, why)| ("kept", o, why)))
        .chain(report.failed.iter().map(|(o, why)| ("failed", o, why)));
    for (action, o, why) in rows {
        if json {
            out!("{}", json_row(o, Some(action), Some(why)));
        } else {
            out!("{action:<12} {:<10} {:<28} {why}", o.kind.to_string(), o.name);
        }
    }
    if !json {
        out!(
            "{} {verb}, {} kept, {} failed",
            report.removed.len(),
            report.kept.len(),
            report.failed.len()
        );
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} objects could not be removed", report.failed.len()))
    }
}

async fn logs(id: &str, follow: bool) -> Result<(), String> {
    use futures_util::StreamExt;
    let engine = Engine::connect().await.map_err(|e| e.to_string())?;
    let mut stream = dockhand::LogStream::attach(&engine, id, follow);
    while let Some(line) = stream.next().await {
        let line = line.map_err(|e| e.to_string())?;
        match line.source {
            dockhand::LogSource::Stdout => out!("{}", line.text),
            dockhand::LogSource::Stderr => eprintln!("{}", line.text),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_or_seconds() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        for bad in ["", "m", "1w", "-5", "1.5h", "99999999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
