//! Writes what `.ci/shopify_schema.py` checks against Shopify's own Admin
//! API schema: every GraphQL operation the app sends (as JSON) and the
//! development store's schema (SDL).
//!
//! The operations: the queries of `hirecj_shopify::queries::ALL`, the bulk
//! operation mutation and queries of `hirecj_shopify::bulk`, each inner
//! bulk query as its own document (Shopify validates it as a query), and
//! the `webhookSubscriptionCreate` mutation sent at install.
//!
//! `cargo run -p hirecj-devstore --example shopify_schema -- OPERATIONS.json DEVSTORE.graphql`
use std::process::ExitCode;

use chrono::{TimeZone, Utc};
use hirecj_shopify::{bulk, queries, webhook_subscriptions};

/// Every operation the app sends, by name.
fn operations() -> Vec<(String, String)> {
    let mut ops: Vec<(String, String)> = queries::ALL
        .iter()
        .map(|(name, query)| (name.to_string(), query.to_string()))
        .collect();
    let since = Utc
        .with_ymd_and_hms(2026, 9, 1, 7, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    ops.extend([
        ("RunBulkQuery".to_string(), bulk::RUN_BULK_QUERY.to_string()),
        (
            "BulkOperation".to_string(),
            bulk::BULK_OPERATION.to_string(),
        ),
        (
            "CurrentBulkOperation".to_string(),
            bulk::CURRENT_BULK_OPERATION.to_string(),
        ),
        ("bulk: orders".to_string(), bulk::orders_bulk_query(None)),
        (
            "bulk: orders since".to_string(),
            bulk::orders_bulk_query(Some(since)),
        ),
        (
            "bulk: products".to_string(),
            bulk::PRODUCTS_BULK_QUERY.to_string(),
        ),
        (
            "bulk: customers".to_string(),
            bulk::CUSTOMERS_BULK_QUERY.to_string(),
        ),
        (
            "bulk: order ids since".to_string(),
            bulk::order_ids_bulk_query(Some(since)),
        ),
        (
            "bulk: product ids".to_string(),
            bulk::PRODUCT_IDS_BULK_QUERY.to_string(),
        ),
        (
            "bulk: customer ids".to_string(),
            bulk::CUSTOMER_IDS_BULK_QUERY.to_string(),
        ),
        (
            "WebhookSubscriptionCreate".to_string(),
            webhook_subscriptions::WEBHOOK_SUBSCRIPTION_CREATE.to_string(),
        ),
    ]);
    ops
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [operations_path, sdl] = args.as_slice() else {
        eprintln!("usage: shopify_schema OPERATIONS.json DEVSTORE.graphql");
        return ExitCode::from(2);
    };
    let ops: Vec<serde_json::Value> = operations()
        .into_iter()
        .map(|(name, query)| serde_json::json!({"name": name, "query": query}))
        .collect();
    let written = serde_json::to_string_pretty(&ops)
        .map_err(|e| e.to_string())
        .and_then(|json| std::fs::write(operations_path, json).map_err(|e| e.to_string()))
        .and_then(|()| {
            std::fs::write(sdl, hirecj_devstore::admin_schema_sdl()).map_err(|e| e.to_string())
        });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shopify_schema: {e}");
            ExitCode::FAILURE
        }
    }
}
