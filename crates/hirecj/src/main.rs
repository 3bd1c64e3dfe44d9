//! `hirecj`: the one binary. `cargo run` starts the whole app with embedded
//! defaults (SQLite, in-process cache, offline brain, development store).
//! The tools are binaries of their own (`hirecj-eval`, `hirecj-bench`), so
//! this one carries only what `serve` and the operator commands need.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hirecj_server::{LoadOptions, Settings, telemetry};

/// HireCJ: an AI customer-experience agent for Shopify merchants.
#[derive(Debug, Parser)]
#[command(name = "hirecj", version, about, long_about = None)]
struct Cli {
    /// A TOML configuration file (also HIRECJ_CONFIG). Keys are the settings'
    /// names in lower case without the HIRECJ_ prefix, e.g. `bind = "127.0.0.1:8000"`.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web app (the default when no command is given).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Print the effective configuration, secrets masked, with where each value came from.
    Config,
    /// Run the development store (a Shopify simulator) on its own port, or
    /// send one of its signed webhooks to the app.
    Devstore(DevstoreArgs),
}

#[derive(Debug, clap::Args)]
struct DevstoreArgs {
    /// Port to serve the development store on (under /devstore).
    #[arg(long, default_value_t = 8001)]
    port: u16,
    #[command(subcommand)]
    action: Option<DevstoreAction>,
}

#[derive(Debug, Subcommand)]
enum DevstoreAction {
    /// Send a signed webhook to the app: app/uninstalled, customers/data_request,
    /// customers/redact or shop/redact.
    Webhook {
        /// The topic, e.g. app/uninstalled.
        topic: String,
        /// The shop, e.g. cool-shop.myshopify.com (or cool-shop).
        #[arg(long)]
        shop: String,
        /// The app's base URL (default: HIRECJ_PUBLIC_URL).
        #[arg(long)]
        app_url: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&LoadOptions::from_process(cli.config.clone())) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hirecj: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Config = command {
        print!("{}", settings.describe());
        return ExitCode::SUCCESS;
    }
    telemetry::init(settings.log_format, &settings.log_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hirecj: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Serve => serve(settings).await,
            Command::Migrate => migrate(settings).await,
            Command::Config => Ok(()),
            Command::Devstore(args) => devstore(settings, args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("hirecj: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    hirecj_server::app::serve_until_signal(settings)
        .await
        .map_err(|e| e.to_string())
}

async fn migrate(settings: Settings) -> Result<(), String> {
    let store = hirecj_server::app::open_store(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let version = store.schema_version().await.map_err(|e| e.to_string())?;
    println!(
        "database ({}) is at schema version {version}",
        store.backend().as_str()
    );
    store.close().await;
    Ok(())
}

async fn devstore(settings: Settings, args: DevstoreArgs) -> Result<(), String> {
    use hirecj_server::shopify::standalone;
    match args.action {
        None => standalone::serve_devstore(&settings, args.port)
            .await
            .map_err(|e| e.to_string()),
        Some(DevstoreAction::Webhook {
            topic,
            shop,
            app_url,
        }) => {
            let delivery =
                standalone::send_devstore_webhook(&settings, &topic, &shop, app_url.as_deref())
                    .await
                    .map_err(|e| e.to_string())?;
            println!(
                "sent {} for {} (webhook id {}): the app answered HTTP {}",
                delivery.topic, delivery.shop, delivery.webhook_id, delivery.status
            );
            if (200..300).contains(&delivery.status) {
                Ok(())
            } else {
                Err(format!("the app answered HTTP {}", delivery.status))
            }
        }
    }
}
