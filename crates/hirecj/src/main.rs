//! `hirecj`: the one binary. `cargo run` starts the whole app with embedded
//! defaults (SQLite, in-process cache, offline brain, development store).
//! The tools are binaries of their own (`hirecj-eval`, `hirecj-bench`), so
//! this one carries only what `serve` and the operator commands need.

use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc rather than the system allocator: a turn allocates across the
/// runtime's threads and SQLite's connection threads, where glibc's arenas
/// contend on their locks (a fifth of the server's time at 500 turns/s);
/// with mimalloc the same machine serves about a tenth more turns.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run the development store (a Shopify simulator) on its own port, send
    /// one of its signed webhooks to the app, or change a running store's
    /// orders (which sends the subscribed webhooks).
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
    /// Create, update, cancel, refund or delete orders in a running development
    /// store (through its control endpoints); the store sends the webhooks
    /// the app subscribed (orders/create, orders/updated, refunds/create, …).
    Orders {
        #[command(subcommand)]
        action: Box<OrderAction>,
    },
}

/// Which store and shop an order command changes.
#[derive(Debug, clap::Args)]
struct StoreTarget {
    /// The shop, e.g. cool-shop.myshopify.com (or cool-shop).
    #[arg(long)]
    shop: String,
    /// The development store's URL (default: HIRECJ_PUBLIC_URL/devstore, the
    /// store mounted in the running app; a standalone one is
    /// http://127.0.0.1:8001/devstore).
    #[arg(long)]
    url: Option<String>,
    /// Delivery faults for this change's webhooks, in order: send,
    /// duplicate, hold (sent after the next one) or drop (repeatable or
    /// comma-separated).
    #[arg(long, value_name = "FAULT")]
    delivery: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum OrderAction {
    /// Create an order: from --line VARIANT_ID[:QTY] items, or a random
    /// plausible one.
    Create {
        #[command(flatten)]
        target: StoreTarget,
        /// A line, VARIANT_ID or VARIANT_ID:QUANTITY (repeatable).
        #[arg(long = "line", value_name = "VARIANT_ID[:QTY]")]
        lines: Vec<String>,
        /// The customer's numeric id (default: a random customer).
        #[arg(long)]
        customer: Option<String>,
        /// paid (default), pending or authorized.
        #[arg(long)]
        financial_status: Option<String>,
        /// unfulfilled (default), partial or fulfilled.
        #[arg(long)]
        fulfillment_status: Option<String>,
        /// Comma-separated tags.
        #[arg(long)]
        tags: Option<String>,
        /// A note.
        #[arg(long)]
        note: Option<String>,
    },
    /// Update an order's tags, note, email, payment or shipping state.
    Update {
        #[command(flatten)]
        target: StoreTarget,
        /// The order: its id, GID or name (#1042).
        #[arg(long)]
        order: String,
        /// Comma-separated tags (replace the order's; "" clears them).
        #[arg(long)]
        tags: Option<String>,
        /// A note ("" clears it).
        #[arg(long)]
        note: Option<String>,
        /// The contact email.
        #[arg(long)]
        email: Option<String>,
        /// e.g. paid.
        #[arg(long)]
        financial_status: Option<String>,
        /// unfulfilled, partial or fulfilled.
        #[arg(long)]
        fulfillment_status: Option<String>,
    },
    /// Cancel an order.
    Cancel {
        #[command(flatten)]
        target: StoreTarget,
        /// The order: its id, GID or name (#1042).
        #[arg(long)]
        order: String,
        /// customer, fraud, inventory, declined or other (default).
        #[arg(long)]
        reason: Option<String>,
        /// Also refund what is left to refund.
        #[arg(long)]
        refund: bool,
    },
    /// Refund an order: an amount, or lines, or everything left.
    Refund {
        #[command(flatten)]
        target: StoreTarget,
        /// The order: its id, GID or name (#1042).
        #[arg(long)]
        order: String,
        /// The amount, e.g. 12.50 (default: the lines' subtotals, or all
        /// that is left).
        #[arg(long)]
        amount: Option<String>,
        /// The reason.
        #[arg(long)]
        note: Option<String>,
        /// A refunded line, LINE_ITEM_ID or LINE_ITEM_ID:QUANTITY (repeatable).
        #[arg(long = "line", value_name = "LINE_ITEM_ID[:QTY]")]
        lines: Vec<String>,
    },
    /// Delete an order (Shopify allows it for a cancelled or archived
    /// one); the store sends orders/delete.
    Delete {
        #[command(flatten)]
        target: StoreTarget,
        /// The order: its id, GID or name (#1042).
        #[arg(long)]
        order: String,
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
        Some(DevstoreAction::Orders { action }) => orders(&settings, *action).await,
    }
}

/// `hirecj devstore orders …`: one control call to a running store.
async fn orders(settings: &Settings, action: OrderAction) -> Result<(), String> {
    let some = |k: &'static str, v: Option<String>| v.map(|v| (k, v));
    let (target, path, mut form): (StoreTarget, &str, Vec<(&str, String)>) = match action {
        OrderAction::Create {
            target,
            lines,
            customer,
            financial_status,
            fulfillment_status,
            tags,
            note,
        } => {
            let mut form: Vec<(&str, String)> = lines.into_iter().map(|l| ("line", l)).collect();
            form.extend(
                [
                    some("customer_id", customer),
                    some("financial_status", financial_status),
                    some("fulfillment_status", fulfillment_status),
                    some("tags", tags),
                    some("note", note),
                ]
                .into_iter()
                .flatten(),
            );
            (target, "orders", form)
        }
        OrderAction::Update {
            target,
            order,
            tags,
            note,
            email,
            financial_status,
            fulfillment_status,
        } => {
            let form = [
                Some(("id", order)),
                some("tags", tags),
                some("note", note),
                some("email", email),
                some("financial_status", financial_status),
                some("fulfillment_status", fulfillment_status),
            ]
            .into_iter()
            .flatten()
            .collect();
            (target, "orders/update", form)
        }
        OrderAction::Cancel {
            target,
            order,
            reason,
            refund,
        } => {
            let form = [
                Some(("id", order)),
                some("reason", reason),
                Some(("refund", refund.to_string())),
            ]
            .into_iter()
            .flatten()
            .collect();
            (target, "orders/cancel", form)
        }
        OrderAction::Refund {
            target,
            order,
            amount,
            note,
            lines,
        } => {
            let mut form: Vec<(&str, String)> = [
                Some(("id", order)),
                some("amount", amount),
                some("note", note),
            ]
            .into_iter()
            .flatten()
            .collect();
            form.extend(lines.into_iter().map(|l| ("line", l)));
            (target, "orders/refund", form)
        }
        OrderAction::Delete { target, order } => (target, "orders/delete", vec![("id", order)]),
    };
    form.push(("shop", target.shop));
    form.extend(target.delivery.into_iter().map(|d| ("delivery", d)));
    let url = target
        .url
        .unwrap_or_else(|| format!("{}/devstore", settings.public_base()));
    let client = hirecj_devstore::ControlClient::new(&url).map_err(|e| e.to_string())?;
    let answer = client.post(path, &form).await.map_err(|e| e.to_string())?;
    if let Some(deleted) = answer.get("deleted") {
        println!(
            "{} ({}): deleted",
            deleted["name"].as_str().unwrap_or("?"),
            deleted["id"]
        );
        return Ok(());
    }
    let order = &answer["order"];
    let mut line = format!(
        "{} ({}): {} {}, {}, fulfillment {}, updated {}",
        order["name"].as_str().unwrap_or("?"),
        order["id"],
        order["total_price"].as_str().unwrap_or("?"),
        order["currency"].as_str().unwrap_or(""),
        order["financial_status"].as_str().unwrap_or("?"),
        order["fulfillment_status"].as_str().unwrap_or("none"),
        order["updated_at"].as_str().unwrap_or("?"),
    );
    if let Some(at) = order["cancelled_at"].as_str() {
        line.push_str(&format!(", cancelled {at}"));
    }
    if let Some(refund) = answer.get("refund") {
        line.push_str(&format!(
            "; refund {} of {}",
            refund["id"],
            refund["transactions"][0]["amount"].as_str().unwrap_or("?")
        ));
    }
    if let Some(lines) = order["line_items"].as_array() {
        for l in lines {
            line.push_str(&format!(
                "\n  line {}: {} x {} at {}",
                l["id"],
                l["quantity"],
                l["name"].as_str().unwrap_or("?"),
                l["price"].as_str().unwrap_or("?")
            ));
        }
    }
    println!("{line}");
    Ok(())
}
