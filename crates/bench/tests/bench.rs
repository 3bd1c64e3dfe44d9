//! `hirecj-bench` at CI size: it spawns its own server (`hirecj-bench
//! serve`), runs every phase and prints the four headline metrics. Timings
//! are not asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

#[test]
fn bench_runs_at_a_small_size_and_prints_the_headline_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hirecj-bench"));
    cmd.args([
        "--conversations",
        "20",
        "--turns",
        "2",
        "--idle",
        "50",
        "--installs",
        "5",
        "--store-shop",
        "bench-mirror",
        "--store-asks",
        "3",
    ])
    .args(["--phase-timeout-secs", "60"])
    .current_dir(dir.path())
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("TMPDIR", dir.path());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(cmd.output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(240))
        .expect("bench finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("machine: ") && stdout.contains("cores"),
        "{stdout}"
    );
    for metric in [
        "turns per second",
        "server overhead per turn p50 / p99",
        "memory per connected conversation",
        "prepared message p50 / p99",
        "store backfill",
        "store tool time p99",
        "new order → mirror (webhook) p99",
        "\"What sells best?\" p50 / p99",
    ] {
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with(metric))
            .unwrap_or_else(|| panic!("no {metric:?} line in\n{stdout}"));
        assert!(
            !line.contains("n/a"),
            "{metric} was not measured: {line}\n{stdout}"
        );
        assert!(line.chars().any(|c| c.is_ascii_digit()), "{line}");
    }
    assert!(
        stdout.contains("concurrent conversations held") && stdout.contains("20/20"),
        "{stdout}"
    );
    assert!(
        stdout.contains("idle connections held") && stdout.contains("50/50"),
        "{stdout}"
    );
    // The temporary server's data directory is cleaned up.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("hirecj-bench-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `--long N` alone: one conversation of N turns on a server of its own,
/// its first and last turns' latency and the database's growth per turn.
#[test]
fn the_long_phase_prints_latency_at_both_ends_and_growth_per_turn() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hirecj-bench"));
    cmd.args(["--long", "120", "--phase-timeout-secs", "120"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", dir.path());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(cmd.output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(240))
        .expect("bench finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("long conversation (120 turns)"), "{stdout}");
    for metric in [
        "turn latency, first 100 turns p50 / p99",
        "turn latency, last 100 turns p50 / p99",
        "database growth",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(metric))
            .unwrap_or_else(|| panic!("no {metric:?} line in\n{stdout}"));
        assert!(!line.contains("n/a"), "{line}\n{stdout}");
        assert!(line.chars().any(|c| c.is_ascii_digit()), "{line}");
    }
    assert!(!stdout.contains("summary ("), "no empty summary: {stdout}");
}
