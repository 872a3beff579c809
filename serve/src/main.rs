//! `dockhand-serve [--port N] [--bind ADDR] [--token T] [--keep]`

use std::process::ExitCode;

use dockhand_serve::Options;

const USAGE: &str = "usage: dockhand-serve [--port N] [--bind ADDR] [--token TOKEN] [--keep]
  --port N      listen on port N (default 7700; 0 picks a free one, printed at start)
  --bind ADDR   listen on ADDR (default 127.0.0.1); off loopback a token is required
  --token T     clients must connect with auth {token: T} (also DOCKHAND_SERVE_TOKEN)
  --keep        leave the service's containers in the engine when it stops";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        token: std::env::var("DOCKHAND_SERVE_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        ..Options::default()
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--port" => {
                let text = value("--port")?;
                options.port = text
                    .parse()
                    .map_err(|_| format!("--port {text:?} is not a port number"))?;
            }
            "--bind" => {
                let text = value("--bind")?;
                options.bind = text
                    .parse()
                    .map_err(|_| format!("--bind {text:?} is not an IP address"))?;
            }
            "--token" => options.token = Some(value("--token")?),
            "--keep" => options.keep = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    match options.problem() {
        Some(problem) => Err(problem),
        None => Ok(options),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("dockhand-serve: {problem}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let code = match dockhand_serve::run(options).await {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("dockhand-serve: {err}");
            1
        }
    };
    // Exits here rather than by returning: dropping the runtime waits for
    // every blocking task it started (file and socket work of the library's,
    // a client's stalled stream), and the service's containers are already
    // removed or kept by now; the watcher has whatever is left.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_are_read_and_bad_ones_refused() {
        let o = parse(&args(&["--port", "0", "--keep"])).unwrap();
        assert_eq!((o.port, o.keep), (0, true));
        assert!(parse(&args(&["--port", "x"])).unwrap_err().contains("not a port"));
        assert!(parse(&args(&["--bind", "0.0.0.0"]))
            .unwrap_err()
            .contains("--token"));
        assert!(parse(&args(&["--bind", "0.0.0.0", "--token", "t"])).is_ok());
        assert!(parse(&args(&["--what"])).unwrap_err().contains("unknown"));
    }
}
