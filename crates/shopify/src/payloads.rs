//! Shopify's webhook payloads — REST Admin resources as JSON — read into
//! the store mirror's records, the same records the Bulk Operations
//! parser ([`crate::bulk`]) makes from GraphQL, so that an order reads the
//! same whichever way it arrived:
//!
//! * `orders/create`, `orders/updated`, `orders/cancelled`, `orders/paid`,
//!   `orders/fulfilled`: an order ([`order_from_webhook`]). Statuses are
//!   GraphQL's display values (`financial_status: "partially_refunded"` →
//!   `PARTIALLY_REFUNDED`; `fulfillment_status: null` → `UNFULFILLED`,
//!   `"partial"` → `PARTIALLY_FULFILLED`); a refund's amount is the sum of
//!   its successful `refund` transactions, and the order's refunded total
//!   the sum of its refunds. A line's `current_quantity` (units not
//!   refunded or removed) is read as sent; a payload without it counts its
//!   refunds' `refund_line_items` instead.
//! * `products/create`, `products/update`: a product; `customers/create`,
//!   `customers/update`: a customer.
//! * `products/delete`, `customers/delete`: `{"id": …}` ([`deleted_id`]).
//!
//! Payloads are untrusted input: anything unreadable is a
//! [`PayloadError`], never a panic, and amounts are read exactly.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hirecj_domain::mirror::{
    MirrorCustomer, MirrorLineItem, MirrorOrder, MirrorProduct, MirrorRefund, Money,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::money::Amount;

/// A webhook payload that is not what Shopify sends.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON of the expected shape.
    #[error("the payload is not a Shopify {what}: {message}")]
    Shape {
        /// What was expected.
        what: &'static str,
        /// What was wrong.
        message: String,
    },
    /// An amount beyond what the mirror holds.
    #[error("amount {0} is out of range")]
    Amount(Amount),
}

fn parse<T: DeserializeOwned>(body: &[u8], what: &'static str) -> Result<T, PayloadError> {
    serde_json::from_slice(body).map_err(|e| PayloadError::Shape {
        what,
        message: e.to_string().chars().take(200).collect(),
    })
}

fn money(amount: Option<Amount>) -> Result<Money, PayloadError> {
    let amount = amount.unwrap_or(Amount::ZERO);
    amount.to_money().ok_or(PayloadError::Amount(amount))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
struct RestOrder {
    id: i64,
    name: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    processed_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    #[serde(default)]
    cancelled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    financial_status: Option<String>,
    #[serde(default)]
    fulfillment_status: Option<String>,
    currency: String,
    #[serde(default)]
    subtotal_price: Option<Amount>,
    total_price: Amount,
    #[serde(default)]
    total_discounts: Option<Amount>,
    #[serde(default)]
    total_tax: Option<Amount>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    customer: Option<RestCustomerRef>,
    #[serde(default)]
    tags: Option<String>,
    #[serde(default)]
    source_name: Option<String>,
    #[serde(default)]
    line_items: Vec<RestLineItem>,
    #[serde(default)]
    refunds: Vec<RestRefund>,
}

#[derive(Deserialize)]
struct RestCustomerRef {
    id: i64,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
}

#[derive(Deserialize)]
struct RestLineItem {
    id: i64,
    #[serde(default)]
    product_id: Option<i64>,
    #[serde(default)]
    variant_id: Option<i64>,
    title: String,
    #[serde(default)]
    variant_title: Option<String>,
    #[serde(default)]
    sku: Option<String>,
    quantity: i64,
    /// Units still on the line; older payloads lack it (then the refunds'
    /// lines say what left).
    #[serde(default)]
    current_quantity: Option<i64>,
    price: Amount,
    #[serde(default)]
    total_discount: Option<Amount>,
}

#[derive(Deserialize)]
struct RestRefund {
    id: i64,
    created_at: DateTime<Utc>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    transactions: Vec<RestTransaction>,
    #[serde(default)]
    refund_line_items: Vec<RestRefundLine>,
}

#[derive(Deserialize)]
struct RestRefundLine {
    line_item_id: i64,
    quantity: i64,
}

#[derive(Deserialize)]
struct RestTransaction {
    #[serde(default)]
    amount: Option<Amount>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// The display name Shopify composes: first and last name.
fn full_name(first: Option<String>, last: Option<String>) -> Option<String> {
    let name = [first, last]
        .into_iter()
        .flatten()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}

fn display_fulfillment(status: Option<&str>) -> String {
    match status.map(str::trim) {
        None | Some("") | Some("null") => "UNFULFILLED".to_owned(),
        Some("partial") => "PARTIALLY_FULFILLED".to_owned(),
        Some(other) => other.to_ascii_uppercase(),
    }
}

/// An `orders/*` payload as the mirror's order.
pub fn order_from_webhook(body: &[u8]) -> Result<MirrorOrder, PayloadError> {
    let o: RestOrder = parse(body, "order")?;
    let mut refunded_units: HashMap<i64, i64> = HashMap::new();
    for l in o.refunds.iter().flat_map(|r| &r.refund_line_items) {
        *refunded_units.entry(l.line_item_id).or_default() += l.quantity;
    }
    let refunds = o
        .refunds
        .into_iter()
        .map(|r| {
            let amount: Amount = r
                .transactions
                .iter()
                .filter(|t| t.kind.as_deref() == Some("refund"))
                .filter(|t| t.status.as_deref().is_none_or(|s| s == "success"))
                .filter_map(|t| t.amount)
                .sum();
            Ok(MirrorRefund {
                id: r.id,
                created_at: r.created_at,
                amount: money(Some(amount))?,
                note: non_empty(r.note),
            })
        })
        .collect::<Result<Vec<_>, PayloadError>>()?;
    let line_items = o
        .line_items
        .into_iter()
        .map(|l| {
            Ok(MirrorLineItem {
                id: l.id,
                product_id: l.product_id,
                variant_id: l.variant_id,
                title: l.title,
                variant_title: non_empty(l.variant_title),
                sku: non_empty(l.sku),
                quantity: l.quantity,
                current_quantity: l.current_quantity.unwrap_or_else(|| {
                    l.quantity - refunded_units.get(&l.id).copied().unwrap_or(0)
                }),
                price: money(Some(l.price))?,
                discount: money(l.total_discount)?,
            })
        })
        .collect::<Result<Vec<_>, PayloadError>>()?;
    let (customer_id, customer_name) = match o.customer {
        Some(c) => (Some(c.id), full_name(c.first_name, c.last_name)),
        None => (None, None),
    };
    Ok(MirrorOrder {
        id: o.id,
        name: o.name,
        created_at: o.created_at,
        processed_at: o.processed_at,
        updated_at: o.updated_at,
        cancelled_at: o.cancelled_at,
        closed_at: o.closed_at,
        financial_status: non_empty(o.financial_status).map(|s| s.to_ascii_uppercase()),
        fulfillment_status: Some(display_fulfillment(o.fulfillment_status.as_deref())),
        currency: o.currency,
        subtotal: money(o.subtotal_price)?,
        total: money(Some(o.total_price))?,
        total_discounts: money(o.total_discounts)?,
        total_tax: money(o.total_tax)?,
        total_refunded: refunds.iter().map(|r| r.amount).sum(),
        customer_id,
        email: non_empty(o.email),
        customer_name,
        tags: o
            .tags
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        source_name: non_empty(o.source_name),
        line_items,
        refunds,
    })
}

#[derive(Deserialize)]
struct RestProduct {
    id: i64,
    title: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    vendor: Option<String>,
    #[serde(default)]
    product_type: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A `products/create` or `products/update` payload as the mirror's product.
pub fn product_from_webhook(body: &[u8]) -> Result<MirrorProduct, PayloadError> {
    let p: RestProduct = parse(body, "product")?;
    Ok(MirrorProduct {
        id: p.id,
        title: p.title,
        status: non_empty(p.status).map_or_else(|| "ACTIVE".to_owned(), |s| s.to_ascii_uppercase()),
        vendor: non_empty(p.vendor),
        product_type: non_empty(p.product_type),
        created_at: p.created_at,
        updated_at: p.updated_at,
    })
}

#[derive(Deserialize)]
struct RestCustomer {
    id: i64,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(default)]
    orders_count: Option<i64>,
    #[serde(default)]
    total_spent: Option<Amount>,
}

/// A `customers/create` or `customers/update` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerPayload {
    /// The customer; its order count and amount spent are zero when the
    /// payload omits them (see [`CustomerPayload::totals_given`]).
    pub customer: MirrorCustomer,
    /// Whether the payload carried `orders_count` and `total_spent`
    /// (current API versions leave them out: keep what the mirror knows).
    pub totals_given: bool,
}

/// A `customers/create` or `customers/update` payload as the mirror's
/// customer.
pub fn customer_from_webhook(body: &[u8]) -> Result<CustomerPayload, PayloadError> {
    let c: RestCustomer = parse(body, "customer")?;
    let totals_given = c.orders_count.is_some() && c.total_spent.is_some();
    Ok(CustomerPayload {
        customer: MirrorCustomer {
            id: c.id,
            name: full_name(c.first_name, c.last_name),
            email: non_empty(c.email),
            created_at: c.created_at,
            updated_at: c.updated_at,
            orders_count: c.orders_count.unwrap_or(0),
            amount_spent: money(c.total_spent)?,
        },
        totals_given,
    })
}

#[derive(Deserialize)]
struct Deleted {
    id: i64,
}

/// The id in a `products/delete` or `customers/delete` payload.
pub fn deleted_id(body: &[u8]) -> Result<i64, PayloadError> {
    Ok(parse::<Deleted>(body, "deletion")?.id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_order_payload_reads_like_its_graphql_twin() {
        let body = br##"{
            "id": 820982911946154508, "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
            "name": "#9999", "email": "jon@example.com",
            "created_at": "2026-11-01T19:00:00-05:00", "updated_at": "2026-11-02T10:00:00-05:00",
            "processed_at": "2026-11-01T19:00:00-05:00", "cancelled_at": null,
            "financial_status": "partially_refunded", "fulfillment_status": "partial",
            "currency": "USD", "subtotal_price": "90.00", "total_price": "99.90",
            "total_discounts": "10.00", "total_tax": "9.90", "tags": "vip,  gift ,",
            "source_name": "web",
            "customer": {"id": 115310627314723954, "first_name": "Jon", "last_name": "Doe", "email": "jon@example.com"},
            "line_items": [{"id": 866550311766439020, "product_id": 632910392, "variant_id": 808950810,
                "title": "IPod Nano - 8GB", "variant_title": "", "sku": "IPOD2008PINK", "quantity": 2,
                "price": "50.00", "total_discount": "10.00"}],
            "refunds": [{"id": 509562969, "created_at": "2026-11-02T10:00:00-05:00", "note": "damaged",
                "transactions": [{"amount": "20.10", "kind": "refund", "status": "success"},
                                 {"amount": "5.00", "kind": "refund", "status": "failure"}]}]
        }"##;
        let o = order_from_webhook(body).unwrap();
        assert_eq!(o.id, 820_982_911_946_154_508);
        assert_eq!(o.created_at.to_rfc3339(), "2026-11-02T00:00:00+00:00");
        assert_eq!(o.financial_status.as_deref(), Some("PARTIALLY_REFUNDED"));
        assert_eq!(o.fulfillment_status.as_deref(), Some("PARTIALLY_FULFILLED"));
        assert_eq!(o.total, Money::from_cents(9990));
        assert_eq!(o.total_refunded, Money::from_cents(2010));
        assert_eq!(o.refunds[0].note.as_deref(), Some("damaged"));
        assert_eq!(o.customer_name.as_deref(), Some("Jon Doe"));
        assert_eq!(o.tags, ["vip", "gift"]);
        assert_eq!(o.line_items[0].price, Money::from_cents(5000));
        assert_eq!(o.line_items[0].variant_title, None);

        let unfulfilled = order_from_webhook(
            br##"{"id": 1, "name": "#1", "created_at": "2026-11-01T00:00:00Z",
                "updated_at": "2026-11-01T00:00:00Z", "currency": "EUR", "total_price": "1",
                "fulfillment_status": null}"##,
        )
        .unwrap();
        assert_eq!(
            unfulfilled.fulfillment_status.as_deref(),
            Some("UNFULFILLED")
        );
        assert!(unfulfilled.line_items.is_empty() && unfulfilled.customer_id.is_none());
    }

    #[test]
    fn products_customers_and_deletions() {
        let p = product_from_webhook(
            br##"{"id": 7, "title": "Mug", "status": "draft", "vendor": "", "product_type": "Kitchen",
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-02-01T00:00:00Z"}"##,
        )
        .unwrap();
        assert_eq!((p.status.as_str(), p.vendor), ("DRAFT", None));
        let c = customer_from_webhook(
            br##"{"id": 9, "email": "a@b.example", "first_name": "Ann", "last_name": null,
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-02-01T00:00:00Z",
                "orders_count": 3, "total_spent": "120.50"}"##,
        )
        .unwrap();
        assert!(c.totals_given);
        let c = c.customer;
        assert_eq!(c.name.as_deref(), Some("Ann"));
        assert_eq!(c.amount_spent, Money::from_cents(12050));
        assert_eq!(deleted_id(br##"{"id": 632910392}"##).unwrap(), 632_910_392);
    }

    #[test]
    fn bad_payloads_are_errors() {
        for body in [
            &b"not json"[..],
            br##"{"id": "x"}"##,
            br##"{"id": 1, "name": "#1", "created_at": "yesterday", "updated_at": "2026-11-01T00:00:00Z", "currency": "USD", "total_price": "1"}"##,
            br##"{"id": 1, "name": "#1", "created_at": "2026-11-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z", "currency": "USD", "total_price": "1e5"}"##,
        ] {
            assert!(order_from_webhook(body).is_err());
        }
        assert!(deleted_id(b"{}").is_err());
    }
}
