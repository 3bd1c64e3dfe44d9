//! The development store's admin page for one order: where CJ's order links
//! lead offline, as they lead to the order in the Shopify admin for a real
//! shop (`https://{shop}/admin/orders/{id}`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::DevStore;
use crate::data::{FulfillmentStatus, format_cents};
use crate::pages::{error_page, esc, page};
use crate::payloads::financial_status;
use crate::shop::normalize_shop;

/// `GET /{shop}/admin/orders/{id}`: the order's number, date, status,
/// lines and totals, for a shop that installed an app (no store is
/// generated for a page view); an unknown shop or order is 404.
pub(crate) async fn order_page(
    State(store): State<DevStore>,
    Path((shop, id)): Path<(String, String)>,
) -> Response {
    let not_found = || {
        error_page(
            StatusCode::NOT_FOUND,
            "Order not found",
            "This development store has no such order.",
        )
    };
    let (Some(shop), Ok(id)) = (normalize_shop(&shop), id.parse::<u64>()) else {
        return not_found();
    };
    if !store.installed_shops().iter().any(|i| i.shop == shop) {
        return not_found();
    }
    let ds = store.dataset(&shop);
    let Some(order) = ds.order(id) else {
        return not_found();
    };
    // As Shopify's admin shows money: the shop's format (`${{amount}}`).
    let money = |cents| {
        esc(&ds
            .shop
            .money_format
            .replace("{{amount}}", &format_cents(cents)))
    };
    let lines: String = order
        .line_items
        .iter()
        .map(|l| {
            format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&l.title),
                l.quantity,
                money(l.unit_price)
            )
        })
        .collect();
    let fulfillment = match order.fulfillment_status {
        FulfillmentStatus::Fulfilled => "fulfilled",
        FulfillmentStatus::Unfulfilled => "unfulfilled",
        FulfillmentStatus::PartiallyFulfilled => "partially fulfilled",
    };
    let cancelled = if order.cancelled_at.is_some() {
        " · cancelled"
    } else {
        ""
    };
    let body = format!(
        "<h1>Order {name}</h1>\
<p class=\"muted\">{shop} · placed {placed} UTC · {financial} · {fulfillment}{cancelled}</p>\
<table><thead><tr><th scope=\"col\">Item</th><th scope=\"col\">Quantity</th><th scope=\"col\">Price</th></tr></thead>\
<tbody>{lines}</tbody></table>\
<p>Total <b>{total}</b>{refunded}</p>",
        name = esc(&order.name()),
        shop = esc(&shop),
        placed = order.created_at.format("%Y-%m-%d %H:%M"),
        financial = financial_status(order.financial_status).replace('_', " "),
        total = money(order.total),
        refunded = if order.total_refunded > 0 {
            format!(" · refunded {}", money(order.total_refunded))
        } else {
            String::new()
        },
    );
    Html(page(&format!("Order {}", order.name()), &body)).into_response()
}
