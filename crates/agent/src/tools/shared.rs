//! Result types that more than one tool returns: orders, product sales and
//! the sales report. The agent's own types, converted from
//! `hirecj_shopify`'s: their JSON is what the model reads, so a change in
//! the Shopify crate shows up here as a compile error, not as a silently
//! different prompt.

use chrono::{DateTime, NaiveDate, Utc};
use hirecj_domain::mirror::Money;
use hirecj_shopify::Amount;

use super::ShopFormat;
use serde::{Deserialize, Serialize};

use hirecj_shopify::store_data::{Basis, Mirrored};

/// One order, as the model sees it in lists of orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Order {
    /// Shopify's global id (lets the model tell orders apart).
    pub id: String,
    /// The merchant-facing name, e.g. `#1001`.
    pub name: String,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// When it was cancelled, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Shopify's financial status (`PAID`, `REFUNDED`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub financial_status: Option<String>,
    /// Shopify's fulfillment status (`FULFILLED`, `UNFULFILLED`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_status: Option<String>,
    /// Order total.
    pub total: Amount,
    /// Amount refunded so far.
    pub refunded: Amount,
    /// Currency of the amounts.
    pub currency: String,
    /// Who placed it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<OrderCustomer>,
    /// What was ordered.
    pub items: Vec<LineItem>,
}

impl Order {
    /// `- #1001 on 2026-11-28: $61.90`: the order's line in a list, its
    /// name linked to the admin, its day the shop's.
    pub(crate) fn line(&self, format: &ShopFormat) -> String {
        format!(
            "- {} on {}: {}",
            format.order_by_gid(&self.name, &self.id),
            format.day(self.created_at),
            format.money(self.total, Some(&self.currency))
        )
    }
}

impl From<hirecj_shopify::OrderSummary> for Order {
    fn from(o: hirecj_shopify::OrderSummary) -> Self {
        Self {
            id: o.id,
            name: o.name,
            created_at: o.created_at,
            cancelled_at: o.cancelled_at,
            financial_status: o.financial_status,
            fulfillment_status: o.fulfillment_status,
            total: o.total,
            refunded: o.refunded,
            currency: o.currency,
            customer: o.customer.map(OrderCustomer::from),
            items: o.items.into_iter().map(LineItem::from).collect(),
        }
    }
}

/// The customer of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderCustomer {
    /// Shopify's global id.
    pub id: String,
    /// Email, when the customer has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl From<hirecj_shopify::CustomerRef> for OrderCustomer {
    fn from(c: hirecj_shopify::CustomerRef) -> Self {
        Self {
            id: c.id,
            email: c.email,
            name: c.name,
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LineItem {
    /// Product title at the time of the order.
    pub title: String,
    /// Units ordered.
    pub quantity: i64,
    /// The product's global id, when it still exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
}

impl From<hirecj_shopify::LineItem> for LineItem {
    fn from(l: hirecj_shopify::LineItem) -> Self {
        Self {
            title: l.title,
            quantity: l.quantity,
            product_id: l.product_id,
        }
    }
}

/// Units and orders of one product over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProductSales {
    /// The product's global id, when it still exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Product title.
    pub title: String,
    /// Units sold.
    pub units: i64,
    /// Orders it was in.
    pub orders: u64,
}

impl From<hirecj_shopify::ProductSales> for ProductSales {
    fn from(p: hirecj_shopify::ProductSales) -> Self {
        Self {
            product_id: p.product_id,
            title: p.title,
            units: p.units,
            orders: p.orders,
        }
    }
}

/// Orders and revenue of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DaySales {
    /// The day (shop time).
    pub date: NaiveDate,
    /// Orders placed.
    pub orders: u64,
    /// Their revenue.
    pub revenue: Amount,
}

impl From<hirecj_shopify::DaySales> for DaySales {
    fn from(d: hirecj_shopify::DaySales) -> Self {
        Self {
            date: d.date,
            orders: d.orders,
            revenue: d.revenue,
        }
    }
}

/// Orders and revenue over a range of days: what `get_shopify_sales_summary`
/// and `get_shopify_orders_last_week` return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SalesReport {
    /// First day (inclusive, shop time).
    pub from: NaiveDate,
    /// Last day (inclusive, shop time).
    pub to: NaiveDate,
    /// The shop's time zone the days are counted in.
    pub timezone: String,
    /// Currency of the amounts (absent without orders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Orders placed, cancelled ones excluded.
    pub orders: u64,
    /// Orders cancelled.
    pub cancelled_orders: u64,
    /// Revenue.
    pub revenue: Amount,
    /// Refunded.
    pub refunded: Amount,
    /// Revenue minus refunds.
    pub net_revenue: Amount,
    /// Average order value.
    pub average_order_value: Amount,
    /// Per-day figures.
    pub per_day: Vec<DaySales>,
    /// Best sellers of the range.
    pub top_products: Vec<ProductSales>,
    /// Part of the range lies before what Shopify lets the app see.
    pub beyond_visibility_window: bool,
    /// What the model should know about these figures (visibility, caps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The page cap was reached: the figures cover only the newest orders.
    pub truncated: bool,
}

impl SalesReport {
    /// The report in a few lines, titled `**{label}** (from to to)`, or
    /// `**from to to**` without a label.
    pub(crate) fn text_labelled(&self, label: Option<&str>, format: &ShopFormat) -> String {
        let (from, to) = (self.from, self.to);
        let title = match label {
            Some(label) => format!("**{label}** ({from} to {to})"),
            None => format!("**{from} to {to}**"),
        };
        if self.orders == 0 {
            let mut out = format!("{title}: no orders.");
            if let Some(note) = &self.note {
                out.push_str(&format!(" Note: {note}"));
            }
            return out;
        }
        let money = |a: Amount| format.money(a, self.currency.as_deref());
        let mut out = format!(
            "{title}:\n- Orders: {}\n- Revenue: {}\n- Average order value: {}",
            self.orders,
            money(self.revenue),
            money(self.average_order_value),
        );
        if self.cancelled_orders > 0 {
            out.push_str(&format!("\n- Cancelled: {}", self.cancelled_orders));
        }
        if self.refunded != Amount::ZERO {
            out.push_str(&format!(
                "\n- Refunded: {} (net {})",
                money(self.refunded),
                money(self.net_revenue)
            ));
        }
        if let Some(top) = self.top_products.first() {
            out.push_str(&format!(
                "\n- Top product: {} ({} units)",
                top.title, top.units
            ));
        }
        if let Some(note) = &self.note {
            out.push_str(&format!("\n- Note: {note}"));
        }
        out
    }
}

impl From<hirecj_shopify::SalesSummary> for SalesReport {
    fn from(s: hirecj_shopify::SalesSummary) -> Self {
        Self {
            from: s.from,
            to: s.to,
            timezone: s.timezone,
            currency: s.currency,
            orders: s.orders,
            cancelled_orders: s.cancelled_orders,
            revenue: s.revenue,
            refunded: s.refunded,
            net_revenue: s.net_revenue,
            average_order_value: s.average_order_value,
            per_day: s.per_day.into_iter().map(DaySales::from).collect(),
            top_products: s.top_products.into_iter().map(ProductSales::from).collect(),
            beyond_visibility_window: s.beyond_visibility_window,
            note: s.note,
            truncated: s.truncated,
        }
    }
}

/// What a tool that needs the store's whole history returns: the figures
/// from CJ's copy of the store, or why there are none yet. Tagged by
/// `status` (`ready`, `still_reading`, `unavailable`), the figures' fields
/// next to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(crate) enum FromMirror<T> {
    /// The figures.
    Ready(T),
    /// CJ is still reading the store's history: no figures yet.
    StillReading(StillReading),
    /// CJ's copy of the store could not be read just now.
    Unavailable(Unavailable),
}

/// Why a history question has no figures yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StillReading {
    /// Orders read so far, when a backfill is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders_read: Option<u64>,
    /// What to tell the merchant.
    pub message: String,
}

/// CJ's copy of the store failed to answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Unavailable {
    /// What to tell the merchant.
    pub message: String,
}

impl<T> FromMirror<T> {
    /// The tool's result from what the store data answered: `ready` builds
    /// the figures.
    pub(crate) fn from_answer<X>(answer: Mirrored<X>, ready: impl FnOnce(X, Basis) -> T) -> Self {
        match answer {
            Mirrored::Ready { figures, basis } => Self::Ready(ready(figures, basis)),
            Mirrored::Reading { orders_read } => Self::StillReading(StillReading {
                orders_read,
                message: match orders_read {
                    Some(n) => format!(
                        "CJ is still reading this store's order history ({n} orders so far) and \
                         gives this figure only once it has read all of it. Tell the merchant; \
                         do not estimate."
                    ),
                    None => "CJ is still reading this store's order history and gives this \
                             figure only once it has read all of it. Tell the merchant; do not \
                             estimate."
                        .to_owned(),
                },
            }),
            Mirrored::Unavailable => Self::Unavailable(Unavailable {
                message: "CJ's copy of this store could not be read just now; try again in a \
                          moment."
                    .to_owned(),
            }),
        }
    }

    /// The merchant-facing text: `ready`'s for figures, else why there are
    /// none.
    pub(crate) fn text(&self, what: &str, ready: impl FnOnce(&T) -> String) -> String {
        match self {
            Self::Ready(figures) => ready(figures),
            Self::StillReading(r) => match r.orders_read {
                Some(n) if n > 0 => format!(
                    "I'm still reading your store's order history: {n} orders so far. I'll have \
                     {what} once I've read all of it, and I'd rather not guess before then."
                ),
                _ => format!(
                    "I'm still reading your store's order history. I'll have {what} once I've \
                     read all of it, and I'd rather not guess before then."
                ),
            },
            Self::Unavailable(_) => {
                format!("I couldn't load {what} just now; please try again in a moment.")
            }
        }
    }
}

/// `new` against `old` in percent, to one decimal (`None` when `old` is 0).
pub(crate) fn percent_change(new: f64, old: f64) -> Option<f64> {
    (old != 0.0).then(|| ((new - old) / old * 1000.0).round() / 10.0)
}

/// `part` of `whole` in percent, to one decimal (`None` when `whole` is 0).
pub(crate) fn percent_of(part: u64, whole: u64) -> Option<f64> {
    (whole != 0).then(|| (part as f64 / whole as f64 * 1000.0).round() / 10.0)
}

/// `12.5%`, or `n/a`.
pub(crate) fn percent_text(p: Option<f64>) -> String {
    p.map_or_else(|| "n/a".to_owned(), |p| format!("{p:.1}%"))
}

/// The mirror's exact money as the amount the model reads.
pub(crate) fn amount(m: Money) -> Amount {
    Amount::from(m)
}

/// Shopify's global id of a numeric id.
pub(crate) fn gid(kind: &str, id: i64) -> String {
    format!("gid://shopify/{kind}/{id}")
}

/// `" (note)"`-style suffix line for a note, or nothing.
pub(crate) fn note_line(note: Option<&str>) -> String {
    note.map(|n| format!("\n- Note: {n}")).unwrap_or_default()
}

/// `PARTIALLY_REFUNDED` as `partially refunded`; `none` for no status.
pub(crate) fn status_words(status: Option<&str>) -> String {
    status.map_or_else(|| "none".to_owned(), |s| s.to_lowercase().replace('_', " "))
}

/// An amount as a chart draws it (to the cent).
pub(crate) fn chart_value(a: Amount) -> f64 {
    a.to_cents() as f64 / 100.0
}

/// A day as a chart's title names it: `3 Nov 2026`.
pub(crate) fn chart_day(d: NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

/// What a chart of amounts in `currency` measures: `Revenue (USD)`.
pub(crate) fn money_heading(what: &str, currency: Option<&str>) -> String {
    match currency {
        Some(c) if !c.is_empty() => format!("{what} ({c})"),
        _ => what.to_owned(),
    }
}
