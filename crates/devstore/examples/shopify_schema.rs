//! Writes what `.ci/shopify_schema.py` checks against Shopify's own Admin
//! API schema: every GraphQL operation the app sends (as JSON) and the
//! development store's schema (SDL).
//!
//! `cargo run -p hirecj-devstore --example shopify_schema -- OPERATIONS.json DEVSTORE.graphql`
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [operations, sdl] = args.as_slice() else {
        eprintln!("usage: shopify_schema OPERATIONS.json DEVSTORE.graphql");
        return ExitCode::from(2);
    };
    let ops: Vec<serde_json::Value> = hirecj_shopify::queries::ALL
        .iter()
        .map(|(name, query)| serde_json::json!({"name": name, "query": query}))
        .collect();
    let written = serde_json::to_string_pretty(&ops)
        .map_err(|e| e.to_string())
        .and_then(|json| std::fs::write(operations, json).map_err(|e| e.to_string()))
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
