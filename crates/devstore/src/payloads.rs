//! The JSON bodies of the webhooks the development store sends when its
//! data changes: Shopify's **REST Admin API resources**, as Shopify sends
//! them (webhooks are REST-shaped even for GraphQL-only apps).
//!
//! Conventions, as on Shopify: ids are JSON numbers (64-bit integers, never
//! floats) with the GraphQL id beside them in `admin_graphql_api_id`; times
//! are ISO 8601 with the shop's UTC offset (`2026-11-26T09:15:00-07:00`);
//! money is a decimal string in the shop's currency (`"24.95"`); statuses
//! are lower case; tags are one string joined with `", "`.
//!
//! # `orders/create`, `orders/updated`, `orders/cancelled`, `orders/paid`, `orders/fulfilled`
//!
//! The order:
//!
//! ```text
//! { "id": 5400012345678, "admin_graphql_api_id": "gid://shopify/Order/5400012345678",
//!   "name": "#1042", "order_number": 1042, "number": 42,
//!   "email": "ava.smith@example.com", "contact_email": "ava.smith@example.com",
//!   "created_at": "…-07:00", "updated_at": "…", "processed_at": "…",
//!   "cancelled_at": null | "…", "cancel_reason": null | "customer", "closed_at": null | "…",
//!   "financial_status": "paid" | "pending" | "authorized" | "partially_refunded" | "refunded" | "voided",
//!   "fulfillment_status": null | "partial" | "fulfilled",
//!   "currency": "USD", "presentment_currency": "USD",
//!   "total_price": "61.90", "subtotal_price": "55.00", "total_discounts": "0.00",
//!   "total_tax": "0.00", "total_line_items_price": "55.00",
//!   "total_price_set": {"shop_money": {"amount": "61.90", "currency_code": "USD"}, "presentment_money": {…}},
//!   "total_shipping_price_set": {…}, "current_total_price": "61.90",
//!   "note": null | "…", "tags": "gift, vip", "source_name": "web", "test": false, "confirmed": true,
//!   "customer": null | {customer, below},
//!   "line_items": [{ "id", "admin_graphql_api_id", "product_id" (null once the product is deleted),
//!                    "variant_id", "title", "variant_title" (null for "Default Title"), "name", "sku",
//!                    "quantity", "current_quantity" (less the units refunded), "price": "24.00",
//!                    "total_discount": "0.00",
//!                    "fulfillable_quantity", "fulfillment_status": null | "fulfilled" }],
//!   "refunds": [refund, below] }
//! ```
//!
//! # `refunds/create`
//!
//! The refund, with its order's id:
//!
//! ```text
//! { "id": 5400012345678…, "admin_graphql_api_id": "gid://shopify/Refund/…", "order_id": 5400012345678,
//!   "created_at": "…", "processed_at": "…", "note": null | "Damaged in transit", "restock": false,
//!   "user_id": null,
//!   "transactions": [{ "id", "admin_graphql_api_id", "order_id", "amount": "12.00", "kind": "refund",
//!                      "status": "success", "gateway": "manual", "currency": "USD",
//!                      "created_at", "processed_at" }],
//!   "refund_line_items": [{ "id", "line_item_id", "quantity", "subtotal": "12.00",
//!                           "total_tax": "0.00", "restock_type": "no_restock" }],
//!   "order_adjustments": [] }
//! ```
//!
//! # `products/create`, `products/update`
//!
//! ```text
//! { "id", "admin_graphql_api_id", "title", "handle", "body_html": "", "vendor", "product_type",
//!   "status": "active" | "draft" | "archived", "created_at", "updated_at",
//!   "published_at": null | "…" (set when active), "tags": "",
//!   "variants": [{ "id", "admin_graphql_api_id", "product_id", "title", "price": "24.00", "sku",
//!                  "position", "inventory_quantity", "created_at", "updated_at" }],
//!   "options": [], "images": [] }
//! ```
//!
//! # `customers/create`, `customers/update`
//!
//! ```text
//! { "id", "admin_graphql_api_id", "email", "first_name", "last_name", "phone": null | "+1…",
//!   "created_at", "updated_at", "state": "enabled", "verified_email": true,
//!   "tags": "", "note": null, "currency": "USD", "addresses": [] }
//! ```
//!
//! (Shopify no longer sends `orders_count` and `total_spent` on customers:
//! count them from the orders.)
//!
//! # `products/delete`, `customers/delete`
//!
//! Only the id: `{"id": 8100012345678}`.
//!
//! # `bulk_operations/finish`
//!
//! ```text
//! { "admin_graphql_api_id": "gid://shopify/BulkOperation/4100000001",
//!   "completed_at": "…", "created_at": "…", "error_code": null | "access_denied" | "internal_server_error" | "timeout",
//!   "status": "completed" | "failed" | "canceled", "type": "query" }
//! ```
//!
//! # `app/uninstalled`
//!
//! The shop resource (see `webhooks.rs`).

use chrono::{DateTime, FixedOffset, Offset as _, SecondsFormat, Utc};
use serde_json::{Value as Json, json};

use crate::data::{
    Cents, Customer, Dataset, FinancialStatus, FulfillmentStatus, Order, Product, ProductStatus,
    Refund, format_cents,
};

/// `t` in the shop's offset, seconds precision: `2026-11-26T09:15:00-07:00`.
pub(crate) fn shop_time(ds: &Dataset, t: DateTime<Utc>) -> String {
    let offset = FixedOffset::east_opt(ds.shop.utc_offset_seconds).unwrap_or(Utc.fix());
    t.with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn opt_time(ds: &Dataset, t: Option<DateTime<Utc>>) -> Json {
    t.map_or(Json::Null, |t| Json::String(shop_time(ds, t)))
}

fn gid(kind: &str, id: u64) -> String {
    format!("gid://shopify/{kind}/{id}")
}

fn money_set(ds: &Dataset, cents: Cents) -> Json {
    let money = json!({"amount": format_cents(cents), "currency_code": ds.shop.currency_code});
    json!({"shop_money": money, "presentment_money": money})
}

/// The REST `financial_status`.
pub(crate) fn financial_status(s: FinancialStatus) -> &'static str {
    match s {
        FinancialStatus::Authorized => "authorized",
        FinancialStatus::Paid => "paid",
        FinancialStatus::PartiallyRefunded => "partially_refunded",
        FinancialStatus::Pending => "pending",
        FinancialStatus::Refunded => "refunded",
        FinancialStatus::Voided => "voided",
    }
}

/// The REST `fulfillment_status` (null when nothing shipped).
pub(crate) fn fulfillment_status(s: FulfillmentStatus) -> Option<&'static str> {
    match s {
        FulfillmentStatus::Fulfilled => Some("fulfilled"),
        FulfillmentStatus::PartiallyFulfilled => Some("partial"),
        FulfillmentStatus::Unfulfilled => None,
    }
}

/// A customer resource.
pub(crate) fn customer(ds: &Dataset, c: &Customer) -> Json {
    json!({
        "id": c.id,
        "admin_graphql_api_id": gid("Customer", c.id),
        "email": c.email,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "phone": c.phone,
        "created_at": shop_time(ds, c.created_at),
        "updated_at": shop_time(ds, c.updated_at),
        "state": "enabled",
        "verified_email": true,
        "tags": "",
        "note": null,
        "currency": ds.shop.currency_code,
        "addresses": [],
    })
}

/// A refund resource (`refunds/create` and inside orders).
pub(crate) fn refund(ds: &Dataset, order: &Order, r: &Refund) -> Json {
    let line_items: Vec<Json> = r
        .line_items
        .iter()
        .map(|l| {
            json!({
                "id": l.id,
                "line_item_id": l.line_item_id,
                "quantity": l.quantity,
                "subtotal": format_cents(l.subtotal),
                "total_tax": "0.00",
                "restock_type": "no_restock",
            })
        })
        .collect();
    let transaction_id = r.id + 500_000_000_000;
    json!({
        "id": r.id,
        "admin_graphql_api_id": gid("Refund", r.id),
        "order_id": order.id,
        "created_at": shop_time(ds, r.created_at),
        "processed_at": shop_time(ds, r.created_at),
        "note": r.note,
        "restock": false,
        "user_id": null,
        "transactions": [{
            "id": transaction_id,
            "admin_graphql_api_id": gid("OrderTransaction", transaction_id),
            "order_id": order.id,
            "amount": format_cents(r.amount),
            "kind": "refund",
            "status": "success",
            "gateway": "manual",
            "currency": ds.shop.currency_code,
            "created_at": shop_time(ds, r.created_at),
            "processed_at": shop_time(ds, r.created_at),
        }],
        "refund_line_items": line_items,
        "order_adjustments": [],
    })
}

/// An order resource.
pub(crate) fn order(ds: &Dataset, o: &Order) -> Json {
    let discounts = o.line_discounts();
    let fulfilled = o.fulfillment_status == FulfillmentStatus::Fulfilled;
    let line_items: Vec<Json> = o
        .line_items
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let name = match &l.variant_title {
                Some(v) => format!("{} - {v}", l.title),
                None => l.title.clone(),
            };
            json!({
                "id": l.id,
                "admin_graphql_api_id": gid("LineItem", l.id),
                "product_id": ds.product(l.product_id).map(|p| p.id),
                "variant_id": l.variant_id,
                "title": l.title,
                "variant_title": l.variant_title,
                "name": name,
                "sku": l.sku,
                "quantity": l.quantity,
                "current_quantity": o.current_quantity(l.id),
                "price": format_cents(l.unit_price),
                "total_discount": format_cents(discounts.get(i).copied().unwrap_or(0)),
                "fulfillable_quantity": if fulfilled { 0 } else { l.quantity },
                "fulfillment_status": if fulfilled { Json::from("fulfilled") } else { Json::Null },
            })
        })
        .collect();
    let items_total: Cents = o.line_items.iter().map(|l| l.unit_price * l.quantity).sum();
    let tags = o.tags().join(", ");
    json!({
        "id": o.id,
        "admin_graphql_api_id": gid("Order", o.id),
        "name": o.name(),
        "order_number": o.number,
        "number": o.number.saturating_sub(1000),
        "email": o.email,
        "contact_email": o.email,
        "created_at": shop_time(ds, o.created_at),
        "updated_at": shop_time(ds, o.updated_at),
        "processed_at": shop_time(ds, o.processed_at),
        "cancelled_at": opt_time(ds, o.cancelled_at),
        "cancel_reason": o.cancel_reason.clone().or_else(|| o.cancelled_at.map(|_| "other".to_string())),
        "closed_at": opt_time(ds, o.closed_at),
        "financial_status": financial_status(o.financial_status),
        "fulfillment_status": fulfillment_status(o.fulfillment_status),
        "currency": ds.shop.currency_code,
        "presentment_currency": ds.shop.currency_code,
        "total_price": format_cents(o.total),
        "subtotal_price": format_cents(o.subtotal),
        "total_discounts": format_cents(o.total_discounts),
        "total_tax": format_cents(o.tax),
        "total_line_items_price": format_cents(items_total),
        "current_total_price": format_cents(o.total - o.total_refunded),
        "total_price_set": money_set(ds, o.total),
        "total_shipping_price_set": money_set(ds, o.shipping),
        "note": o.note,
        "tags": tags,
        "source_name": o.source_name(),
        "test": false,
        "confirmed": true,
        "customer": o.customer_id.and_then(|id| ds.customer(id)).map(|c| customer(ds, c)),
        "line_items": line_items,
        "refunds": o.refund_list().iter().map(|r| refund(ds, o, r)).collect::<Vec<_>>(),
    })
}

/// A product resource.
pub(crate) fn product(ds: &Dataset, p: &Product) -> Json {
    let variants: Vec<Json> = p
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({
                "id": v.id,
                "admin_graphql_api_id": gid("ProductVariant", v.id),
                "product_id": p.id,
                "title": v.title,
                "price": format_cents(v.price),
                "sku": v.sku,
                "position": i + 1,
                "inventory_quantity": v.inventory_quantity,
                "created_at": shop_time(ds, p.created_at),
                "updated_at": shop_time(ds, p.updated_at),
            })
        })
        .collect();
    json!({
        "id": p.id,
        "admin_graphql_api_id": gid("Product", p.id),
        "title": p.title,
        "handle": p.handle,
        "body_html": "",
        "vendor": p.vendor,
        "product_type": p.product_type,
        "status": match p.status {
            ProductStatus::Active => "active",
            ProductStatus::Archived => "archived",
            ProductStatus::Draft => "draft",
        },
        "created_at": shop_time(ds, p.created_at),
        "updated_at": shop_time(ds, p.updated_at),
        "published_at": if p.status == ProductStatus::Active {
            Json::String(shop_time(ds, p.created_at))
        } else {
            Json::Null
        },
        "tags": "",
        "variants": variants,
        "options": [],
        "images": [],
    })
}

/// `products/delete` and `customers/delete`: only the id.
pub(crate) fn deleted(id: u64) -> Json {
    json!({ "id": id })
}
