//! `hirecj-eval`: CJ's evaluation scenarios against the configured model.
//!
//! A binary of its own rather than a command of `hirecj`, so that the
//! production binary carries only what `serve` needs. It reads the same
//! settings as `hirecj` (defaults < TOML < `.env` < environment) for the
//! model and the content directory.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hirecj_server::{LoadOptions, Settings, telemetry};

/// Run CJ's evaluation scenarios (evals/*.yaml, embedded, or the files
/// given) against the configured model and an in-process development store;
/// print a pass/fail table. Exits 1 when any expectation fails.
#[derive(Debug, Parser)]
#[command(name = "hirecj-eval", version, about, long_about = None)]
struct Cli {
    /// A TOML configuration file (also HIRECJ_CONFIG), as for `hirecj`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Scenario files (YAML); the embedded scenarios when none are given.
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&LoadOptions::from_process(cli.config.clone())) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hirecj-eval: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // The scenarios' report is the output; the app the evals start in
    // process logs only warnings unless HIRECJ_LOG says otherwise.
    let filter = match std::env::var_os("HIRECJ_LOG") {
        Some(_) => settings.log_filter.clone(),
        None => "warn".to_owned(),
    };
    telemetry::init(settings.log_format, &filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hirecj-eval: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(eval(settings, cli.files)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("hirecj-eval: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn eval(settings: Settings, files: Vec<PathBuf>) -> Result<(), String> {
    let catalog = hirecj_agent::workflow::Catalog::load(settings.content_dir.as_deref())
        .map_err(|e| e.to_string())?;
    let provider = settings.model.build().map_err(|e| e.to_string())?;
    let mut out = std::io::stdout();
    let passed = hirecj_eval::run_command(provider.as_ref(), &catalog, &files, &mut out).await?;
    if passed {
        Ok(())
    } else {
        Err("some eval expectations failed".to_owned())
    }
}
