//! `hirecj-bench`: the benchmark of the app over real sockets (see the
//! README's Performance section and [`bench`]).
//!
//! A binary of its own rather than a command of `hirecj`: it brings the
//! test kit (the mock model, the WebSocket client, the launcher) and a
//! WebSocket client stack, none of which `serve` needs. The server it
//! measures is this same executable run as `hirecj-bench serve`, which is
//! `hirecj serve` ([`hirecj_server::app::serve_until_signal`]) and nothing
//! else, so the bench never runs against a stale or missing `hirecj` build.

mod bench;

/// The same allocator as `hirecj` (see its `main.rs`): the server measured
/// here is `hirecj serve` as merchants run it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hirecj_server::{LoadOptions, Settings, telemetry};

/// Benchmark the app over real sockets: turns per second and server
/// overhead per turn, memory per connected conversation, and the time to
/// the prepared post-OAuth message. Spawns its own server unless --url.
#[derive(Debug, Parser)]
#[command(name = "hirecj-bench", version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(flatten)]
    args: bench::BenchArgs,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// The server under test: `hirecj serve`, configured from the
    /// environment (what the bench spawns).
    #[command(hide = true)]
    Serve,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hirecj-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.mode {
        Some(Mode::Serve) => {
            let settings = match Settings::load(&LoadOptions::from_process(None)) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("hirecj-bench serve: configuration error: {e}");
                    return ExitCode::from(2);
                }
            };
            telemetry::init(settings.log_format, &settings.log_filter);
            runtime.block_on(async {
                hirecj_server::app::serve_until_signal(settings)
                    .await
                    .map_err(|e| e.to_string())
            })
        }
        None => runtime.block_on(bench::run(cli.args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hirecj-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
