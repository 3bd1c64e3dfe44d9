//! Prints a summary of a shop's synthetic data: `cargo run -p hirecj-devstore --example sample -- name`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use chrono::{Duration, Utc};
use hirecj_devstore::{Dataset, format_cents};

fn main() {
    let shop = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "cool-shirts".into());
    let ds = Dataset::generate(&shop, Utc::now().date_naive());
    println!(
        "{} ({}) {} {}",
        ds.shop.name, ds.shop.myshopify_domain, ds.shop.iana_timezone, ds.shop.currency_code
    );
    println!(
        "{} products, {} customers, {} orders",
        ds.products.len(),
        ds.customers.len(),
        ds.orders.len()
    );
    for p in ds.products.iter().take(8) {
        println!(
            "  {:<40} {:<14} {:>8} {:?} pop {:.2}",
            p.title,
            p.product_type,
            format_cents(p.min_price()),
            p.status,
            p.popularity
        );
    }
    let now = Utc::now();
    for d in (0..14).rev() {
        let to = now - Duration::days(d);
        let from = to - Duration::days(1);
        let orders: Vec<_> = ds.orders_created_between(from, to).collect();
        let rev: i64 = orders.iter().map(|o| o.total).sum();
        println!(
            "  {} {:>3} orders {:>10}",
            from.format("%a %m-%d"),
            orders.len(),
            format_cents(rev)
        );
    }
    for o in ds.visible_orders(now).rev().take(6) {
        println!(
            "  {} {} {:?} {:?} {} refunded {} items {}",
            o.name(),
            o.created_at,
            o.financial_status,
            o.fulfillment_status,
            format_cents(o.total),
            format_cents(o.total_refunded),
            o.line_items
                .iter()
                .map(|l| format!("{}x{}", l.quantity, l.title))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
