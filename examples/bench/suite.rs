//! `suite_nextest`: the sixteen-test suite of `tests/suite_bench.rs` run with
//! `cargo nextest run` (each test its own process) and with `cargo test`,
//! every test with a migrated database of its own: from dockhand's one shared
//! server against a server per test. Wall time of the whole runner command,
//! its test binary built beforehand (untimed).

use std::process::Command;
use std::time::Instant;

use crate::{median, ms, Bench};

fn run(args: &[&str]) -> f64 {
    let t = Instant::now();
    let out = Command::new("cargo").args(args).output().expect("cargo");
    let took = ms(t);
    assert!(
        out.status.success(),
        "cargo {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn nextest(filter: &str) -> f64 {
    run(&[
        "nextest",
        "run",
        "--test",
        "suite_bench",
        "--run-ignored",
        "only",
        "--no-fail-fast",
        "-E",
        filter,
    ])
}

fn cargo_test(prefix: &str) -> f64 {
    run(&["test", "--test", "suite_bench", "--", "--ignored", prefix])
}

pub fn suite_nextest(bench: &Bench) {
    let runs = bench.runs("suite_nextest", 3);
    if runs == 0 {
        return;
    }
    run(&["nextest", "run", "--test", "suite_bench", "--no-run"]);
    run(&["test", "--test", "suite_bench", "--no-run"]);
    let (mut d, mut b, mut dt, mut bt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        d.push(nextest("test(/^shared_/)"));
        crate::settle();
        b.push(nextest("test(/^own_/)"));
        dt.push(cargo_test("shared_"));
        bt.push(cargo_test("own_"));
    }
    let (d, b, dt, bt) = (median(&d), median(&b), median(&dt), median(&bt));
    println!(
        "{{\"workload\":\"suite_nextest\",\"dockhand_ms\":{d:.0},\"bollard_ms\":{b:.0},\"ratio\":{:.3},\"cargo_test_dockhand_ms\":{dt:.0},\"cargo_test_server_per_test_ms\":{bt:.0},\"cargo_test_ratio\":{:.3},\"tests\":16,\"runs\":{runs}}}",
        d / b,
        dt / bt
    );
}
