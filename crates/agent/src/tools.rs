//! CJ's store tools: seven read-only tools over the merchant's Shopify data.
//!
//! No tool takes a shop: the [`ToolContext`] is built by the caller for the
//! conversation's authenticated merchant and holds that merchant's data
//! source ([`StoreData`], implemented for
//! [`hirecj_shopify::ShopifyDataFetcher`]). Whatever the model writes in the
//! arguments, it can only read that one store (DESIGN.md §4.2).
//!
//! Arguments are validated (dates, ranges, emails); a bad argument, a
//! timeout or a Shopify failure becomes an error result for the model
//! ([`ToolOutput::is_error`]), never a crashed turn. A 401 from Shopify
//! becomes a result telling the model that the merchant must reconnect
//! ([`ToolOutput::needs_reconnect`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::NaiveDate;
use hirecj_shopify::{
    CustomerDetails, OrderSummary, SalesSummary, ShopifyDataFetcher, ShopifyError, StoreCounts,
    StoreOverview, TopProducts,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::model::{ToolCall, ToolSpec};
use crate::workflow::Workflow;

/// Product, order, open-order and customer counts.
pub const STORE_COUNTS: &str = "get_shopify_store_counts";
/// The shop, its latest orders and best sellers.
pub const STORE_OVERVIEW: &str = "get_shopify_store_overview";
/// The latest orders.
pub const RECENT_ORDERS: &str = "get_shopify_recent_orders";
/// Orders and revenue of the last 7 days.
pub const ORDERS_LAST_WEEK: &str = "get_shopify_orders_last_week";
/// Orders and revenue over a date range.
pub const SALES_SUMMARY: &str = "get_shopify_sales_summary";
/// Best sellers over the last days.
pub const TOP_PRODUCTS: &str = "get_shopify_top_products";
/// A customer by email.
pub const LOOKUP_CUSTOMER: &str = "lookup_shopify_customer";

/// Every tool, in the (alphabetical) order they are offered.
pub const ALL_TOOLS: &[&str] = &[
    STORE_COUNTS,
    ORDERS_LAST_WEEK,
    RECENT_ORDERS,
    SALES_SUMMARY,
    STORE_OVERVIEW,
    TOP_PRODUCTS,
    LOOKUP_CUSTOMER,
];

/// Default time one tool call may take.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest range `get_shopify_sales_summary` accepts, in days.
pub const MAX_RANGE_DAYS: i64 = 366;

/// Largest serialized result handed to the model (bytes); longer results are
/// cut and marked.
pub const MAX_RESULT_BYTES: usize = 24_000;

/// The store data behind the tools, for one merchant. Implemented for
/// [`ShopifyDataFetcher`]; tests use fakes.
#[async_trait]
pub trait StoreData: Send + Sync {
    /// See [`ShopifyDataFetcher::store_counts`].
    async fn store_counts(&self) -> Result<StoreCounts, ShopifyError>;
    /// See [`ShopifyDataFetcher::store_overview`].
    async fn store_overview(&self) -> Result<StoreOverview, ShopifyError>;
    /// See [`ShopifyDataFetcher::recent_orders`].
    async fn recent_orders(&self, limit: u32) -> Result<Vec<OrderSummary>, ShopifyError>;
    /// See [`ShopifyDataFetcher::orders_last_week`].
    async fn orders_last_week(&self) -> Result<SalesSummary, ShopifyError>;
    /// See [`ShopifyDataFetcher::sales_summary`].
    async fn sales_summary(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SalesSummary, ShopifyError>;
    /// See [`ShopifyDataFetcher::top_products`].
    async fn top_products(&self, days: u32, limit: u32) -> Result<TopProducts, ShopifyError>;
    /// See [`ShopifyDataFetcher::customer_by_email`].
    async fn customer_by_email(&self, email: &str)
    -> Result<Option<CustomerDetails>, ShopifyError>;
}

#[async_trait]
impl StoreData for ShopifyDataFetcher {
    async fn store_counts(&self) -> Result<StoreCounts, ShopifyError> {
        ShopifyDataFetcher::store_counts(self).await
    }
    async fn store_overview(&self) -> Result<StoreOverview, ShopifyError> {
        ShopifyDataFetcher::store_overview(self).await
    }
    async fn recent_orders(&self, limit: u32) -> Result<Vec<OrderSummary>, ShopifyError> {
        ShopifyDataFetcher::recent_orders(self, limit).await
    }
    async fn orders_last_week(&self) -> Result<SalesSummary, ShopifyError> {
        ShopifyDataFetcher::orders_last_week(self).await
    }
    async fn sales_summary(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SalesSummary, ShopifyError> {
        ShopifyDataFetcher::sales_summary(self, from, to).await
    }
    async fn top_products(&self, days: u32, limit: u32) -> Result<TopProducts, ShopifyError> {
        ShopifyDataFetcher::top_products(self, days, limit).await
    }
    async fn customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<CustomerDetails>, ShopifyError> {
        ShopifyDataFetcher::customer_by_email(self, email).await
    }
}

/// The JSON-schema spec of one tool, or `None` for an unknown name.
pub fn tool_spec(name: &str) -> Option<ToolSpec> {
    let none = || json!({"type": "object", "properties": {}, "additionalProperties": false});
    let (description, schema) = match name {
        STORE_COUNTS => (
            "Counts of products, orders, open orders and customers in the merchant's store. \
             Use for \"how many\" questions.",
            none(),
        ),
        STORE_OVERVIEW => (
            "The store at a glance: shop name, domain, currency, time zone and plan, the latest \
             10 orders and the best sellers among the latest orders.",
            none(),
        ),
        RECENT_ORDERS => (
            "The latest orders, newest first: order name, date, total, currency, financial and \
             fulfillment status, customer and line items.",
            json!({
                "type": "object",
                "properties": {
                    "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10,
                              "description": "How many orders (1 to 50)."}
                },
                "additionalProperties": false
            }),
        ),
        ORDERS_LAST_WEEK => (
            "Orders of the last 7 days (today and the 6 days before, shop time): order count, \
             revenue, refunds, average order value, per-day figures and top products.",
            none(),
        ),
        SALES_SUMMARY => (
            "Orders and revenue for a date range (inclusive days, shop time): order count, \
             revenue, refunds, net revenue, average order value, per-day figures and top \
             products. Resolve relative dates against today's date first.",
            json!({
                "type": "object",
                "properties": {
                    "start_date": {"type": "string", "format": "date",
                                   "description": "First day, YYYY-MM-DD."},
                    "end_date": {"type": "string", "format": "date",
                                 "description": "Last day, YYYY-MM-DD (inclusive)."}
                },
                "required": ["start_date", "end_date"],
                "additionalProperties": false
            }),
        ),
        TOP_PRODUCTS => (
            "Best-selling products by units over the last N days (today included), with units \
             and order counts.",
            json!({
                "type": "object",
                "properties": {
                    "days": {"type": "integer", "minimum": 1, "maximum": 365, "default": 30,
                             "description": "How many days back (1 to 365)."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5,
                              "description": "How many products (1 to 20)."}
                },
                "additionalProperties": false
            }),
        ),
        LOOKUP_CUSTOMER => (
            "Find a customer by email address: name, email and their latest orders.",
            json!({
                "type": "object",
                "properties": {
                    "email": {"type": "string", "format": "email",
                              "description": "The customer's email address."}
                },
                "required": ["email"],
                "additionalProperties": false
            }),
        ),
        _ => return None,
    };
    Some(ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        input_schema: schema,
    })
}

/// Specs of the named tools that exist, sorted by name (a stable order: it
/// is part of the cached prompt prefix).
pub fn tool_specs<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<ToolSpec> {
    let mut specs: Vec<ToolSpec> = names.into_iter().filter_map(tool_spec).collect();
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    specs.dedup_by(|a, b| a.name == b.name);
    specs
}

/// What one tool call produced, ready for the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolOutput {
    /// Compact JSON on success, a one-line explanation on failure.
    pub content: String,
    /// Whether the call failed.
    pub is_error: bool,
    /// Shopify answered 401: the merchant must reconnect the store.
    pub needs_reconnect: bool,
    /// Machine code of the failure (`invalid_arguments`, `timeout`,
    /// `unauthorized`, …).
    pub error_code: Option<String>,
}

impl ToolOutput {
    fn ok(content: String) -> Self {
        Self {
            content,
            is_error: false,
            needs_reconnect: false,
            error_code: None,
        }
    }

    fn error(code: &str, message: impl Into<String>) -> Self {
        Self {
            content: message.into(),
            is_error: true,
            needs_reconnect: false,
            error_code: Some(code.to_owned()),
        }
    }
}

/// The tools of one conversation: the authenticated merchant's data source
/// (if their store is connected) and the call timeout.
#[derive(Clone)]
pub struct ToolContext {
    data: Option<Arc<dyn StoreData>>,
    timeout: Duration,
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("connected", &self.data.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ToolContext {
    /// Tools over `data`, the connected store of the conversation's merchant.
    pub fn connected(data: Arc<dyn StoreData>) -> Self {
        Self {
            data: Some(data),
            timeout: DEFAULT_TOOL_TIMEOUT,
        }
    }

    /// No store connected: no tools are offered.
    pub fn disconnected() -> Self {
        Self {
            data: None,
            timeout: DEFAULT_TOOL_TIMEOUT,
        }
    }

    /// Sets the per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether a store is connected.
    pub fn is_connected(&self) -> bool {
        self.data.is_some()
    }

    /// The tools offered in `workflow`: none without a connected store,
    /// otherwise the workflow's `available_tools`, sorted by name.
    pub fn specs_for(&self, workflow: &Workflow) -> Vec<ToolSpec> {
        if self.data.is_none() {
            return Vec::new();
        }
        tool_specs(workflow.available_tools.iter().map(String::as_str))
    }

    /// Runs one call, within the timeout. `offered` are the names offered to
    /// the model this turn; any other name is refused.
    pub async fn execute(&self, call: &ToolCall, offered: &[String]) -> ToolOutput {
        if !offered.iter().any(|n| n == &call.name) {
            return ToolOutput::error(
                "unknown_tool",
                format!("Tool `{}` is not available here.", call.name),
            );
        }
        let Some(data) = self.data.as_deref() else {
            return ToolOutput::error(
                "not_connected",
                "The merchant's Shopify store is not connected; no store data is available.",
            );
        };
        let args = match call.input.as_object() {
            Some(m) => m.clone(),
            None => Map::new(),
        };
        let parsed = match parse_args(&call.name, &args) {
            Ok(p) => p,
            Err(msg) => {
                return ToolOutput::error("invalid_arguments", format!("Invalid arguments: {msg}"));
            }
        };
        match tokio::time::timeout(self.timeout, run(data, parsed)).await {
            Err(_) => ToolOutput::error(
                "timeout",
                format!(
                    "The store did not answer within {} seconds; try again later.",
                    self.timeout.as_secs()
                ),
            ),
            Ok(Ok(value)) => ToolOutput::ok(compact(&value)),
            Ok(Err(e)) => shopify_error_output(&e),
        }
    }

    /// Runs one call and measures it.
    pub async fn execute_timed(
        &self,
        call: &ToolCall,
        offered: &[String],
    ) -> (ToolOutput, Duration) {
        let start = Instant::now();
        let out = self.execute(call, offered).await;
        (out, start.elapsed())
    }
}

fn shopify_error_output(e: &ShopifyError) -> ToolOutput {
    if e.needs_reconnect() {
        return ToolOutput {
            content: "Shopify rejected the store's access token (401). The merchant must \
                      reconnect their Shopify store before CJ can read store data again."
                .to_owned(),
            is_error: true,
            needs_reconnect: true,
            error_code: Some(e.code().to_owned()),
        };
    }
    let message = match e {
        ShopifyError::InvalidInput(m) => format!("Invalid arguments: {m}"),
        ShopifyError::Throttled { .. } => {
            "Shopify is rate limiting requests right now; try again in a moment.".to_owned()
        }
        ShopifyError::Timeout => "Shopify did not answer in time; try again later.".to_owned(),
        ShopifyError::Forbidden { .. } => {
            "Shopify refused access to this data (a permission is missing).".to_owned()
        }
        ShopifyError::ShopUnavailable { .. } => {
            "The shop is not available right now (frozen or locked in Shopify).".to_owned()
        }
        other => format!("The store data could not be loaded ({}).", other.code()),
    };
    ToolOutput::error(e.code(), message)
}

/// A validated call.
#[derive(Debug, Clone, PartialEq)]
enum Parsed {
    Counts,
    Overview,
    Recent { limit: u32 },
    LastWeek,
    Sales { from: NaiveDate, to: NaiveDate },
    Top { days: u32, limit: u32 },
    Customer { email: String },
}

fn parse_args(name: &str, args: &Map<String, Value>) -> Result<Parsed, String> {
    Ok(match name {
        STORE_COUNTS => Parsed::Counts,
        STORE_OVERVIEW => Parsed::Overview,
        ORDERS_LAST_WEEK => Parsed::LastWeek,
        RECENT_ORDERS => Parsed::Recent {
            limit: int_arg(args, "limit", 10, 1, 50)?,
        },
        TOP_PRODUCTS => Parsed::Top {
            days: int_arg(args, "days", 30, 1, 365)?,
            limit: int_arg(args, "limit", 5, 1, 20)?,
        },
        SALES_SUMMARY => {
            let from = date_arg(args, "start_date")?;
            let to = date_arg(args, "end_date")?;
            if from > to {
                return Err(format!("start_date {from} is after end_date {to}"));
            }
            if (to - from).num_days() >= MAX_RANGE_DAYS {
                return Err(format!("the range may span at most {MAX_RANGE_DAYS} days"));
            }
            Parsed::Sales { from, to }
        }
        LOOKUP_CUSTOMER => {
            let email = match args.get("email") {
                Some(Value::String(s)) => s.trim().to_owned(),
                Some(_) => return Err("`email` must be a string".to_owned()),
                None => return Err("`email` is required".to_owned()),
            };
            if !valid_email(&email) {
                return Err(format!("`{}` is not an email address", shorten(&email, 80)));
            }
            Parsed::Customer { email }
        }
        other => return Err(format!("unknown tool `{other}`")),
    })
}

fn int_arg(
    args: &Map<String, Value>,
    key: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, String> {
    let v = match args.get(key) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => i,
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 1e12 => f as i64,
                _ => return Err(format!("`{key}` must be a whole number")),
            },
        },
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("`{key}` must be a whole number"))?,
        Some(_) => return Err(format!("`{key}` must be a whole number")),
    };
    if v < i64::from(min) || v > i64::from(max) {
        return Err(format!("`{key}` must be between {min} and {max}, got {v}"));
    }
    u32::try_from(v).map_err(|_| format!("`{key}` is out of range"))
}

fn date_arg(args: &Map<String, Value>, key: &str) -> Result<NaiveDate, String> {
    match args.get(key) {
        Some(Value::String(s)) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
            format!(
                "`{key}` must be a date as YYYY-MM-DD, got `{}`",
                shorten(s, 40)
            )
        }),
        Some(_) => Err(format!("`{key}` must be a string YYYY-MM-DD")),
        None => Err(format!("`{key}` is required (YYYY-MM-DD)")),
    }
}

/// A plausible email address: one `@`, a dot in the domain, no spaces,
/// quotes or control characters, at most 254 bytes.
pub fn valid_email(email: &str) -> bool {
    if email.len() > 254 || email.is_empty() {
        return false;
    }
    if email.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '"' | '\'' | '\\' | '<' | '>' | ',' | ';' | '(' | ')')
    }) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

async fn run(data: &dyn StoreData, call: Parsed) -> Result<Value, ShopifyError> {
    Ok(match call {
        Parsed::Counts => to_value(&data.store_counts().await?),
        Parsed::Overview => to_value(&data.store_overview().await?),
        Parsed::Recent { limit } => {
            let orders = data.recent_orders(limit).await?;
            json!({"count": orders.len(), "orders": to_value(&orders)})
        }
        Parsed::LastWeek => to_value(&data.orders_last_week().await?),
        Parsed::Sales { from, to } => to_value(&data.sales_summary(from, to).await?),
        Parsed::Top { days, limit } => to_value(&data.top_products(days, limit).await?),
        Parsed::Customer { email } => match data.customer_by_email(&email).await? {
            Some(c) => json!({"found": true, "customer": to_value(&c)}),
            None => json!({"found": false, "email": email}),
        },
    })
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| json!({"error": format!("serialization: {e}")}))
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() <= MAX_RESULT_BYTES {
        return s;
    }
    format!(
        "{}… [result truncated at {MAX_RESULT_BYTES} bytes]",
        shorten(&s, MAX_RESULT_BYTES)
    )
}

/// `s` cut to at most `max` bytes on a char boundary.
pub(crate) fn shorten(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What CJ is doing while a tool runs, for the "thinking" indicator.
pub fn thinking_status(tool: &str) -> &'static str {
    match tool {
        STORE_COUNTS => "Counting your products, orders and customers…",
        STORE_OVERVIEW => "Looking over your store…",
        RECENT_ORDERS => "Checking your latest orders…",
        ORDERS_LAST_WEEK => "Looking at last week's orders…",
        SALES_SUMMARY => "Adding up your sales…",
        TOP_PRODUCTS => "Finding your best sellers…",
        LOOKUP_CUSTOMER => "Looking up the customer…",
        _ => "Working on it…",
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fixed, in-memory store for tests.
    use super::*;
    use hirecj_shopify::{Amount, Count, CustomerRef, LineItem, ProductSales, ShopInfo};

    /// Fixed numbers; `fail_with_401` makes every call answer 401.
    #[derive(Debug, Clone, Default)]
    pub struct FakeStore {
        pub unauthorized: bool,
        pub slow: bool,
    }

    fn amount(s: &str) -> Amount {
        s.parse().unwrap_or_default()
    }

    fn order(n: u32) -> OrderSummary {
        OrderSummary {
            id: format!("gid://shopify/Order/{n}"),
            name: format!("#{n}"),
            created_at: chrono::DateTime::from_timestamp(1_790_000_000 + i64::from(n) * 3600, 0)
                .unwrap_or_default(),
            cancelled_at: None,
            financial_status: Some("PAID".into()),
            fulfillment_status: Some("FULFILLED".into()),
            total: amount("48.50"),
            refunded: Amount::ZERO,
            currency: "USD".into(),
            customer: Some(CustomerRef {
                id: "gid://shopify/Customer/7".into(),
                email: Some("ada@example.com".into()),
                name: Some("Ada Lovelace".into()),
            }),
            items: vec![LineItem {
                title: "Lavender Candle".into(),
                quantity: 2,
                product_id: None,
            }],
        }
    }

    fn products() -> Vec<ProductSales> {
        vec![
            ProductSales {
                product_id: None,
                title: "Lavender Candle".into(),
                units: 58,
                orders: 31,
            },
            ProductSales {
                product_id: None,
                title: "Cedar Wick Set".into(),
                units: 23,
                orders: 17,
            },
        ]
    }

    pub fn summary(from: NaiveDate, to: NaiveDate) -> SalesSummary {
        SalesSummary {
            from,
            to,
            timezone: "America/New_York (UTC-05:00)".into(),
            currency: Some("USD".into()),
            orders: 42,
            cancelled_orders: 1,
            revenue: amount("3456.78"),
            refunded: amount("20.00"),
            net_revenue: amount("3436.78"),
            average_order_value: amount("82.30"),
            per_day: vec![],
            top_products: products(),
            beyond_visibility_window: false,
            note: None,
            truncated: false,
        }
    }

    impl FakeStore {
        async fn gate(&self) -> Result<(), ShopifyError> {
            if self.slow {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            if self.unauthorized {
                return Err(ShopifyError::Unauthorized { request_id: None });
            }
            Ok(())
        }
    }

    #[async_trait]
    impl StoreData for FakeStore {
        async fn store_counts(&self) -> Result<StoreCounts, ShopifyError> {
            self.gate().await?;
            let c = |n| Count {
                count: n,
                precision: "EXACT".into(),
            };
            Ok(StoreCounts {
                products: c(37),
                orders: c(1289),
                open_orders: c(12),
                customers: c(904),
            })
        }
        async fn store_overview(&self) -> Result<StoreOverview, ShopifyError> {
            self.gate().await?;
            Ok(StoreOverview {
                shop: ShopInfo {
                    name: "Eval Candles".into(),
                    email: None,
                    domain: "eval-candles.myshopify.com".into(),
                    currency: "USD".into(),
                    timezone: Some("America/New_York".into()),
                    utc_offset_minutes: Some(-300),
                    plan: Some("Basic".into()),
                    development_store: true,
                    shopify_plus: false,
                },
                recent_orders: (1001..1004).rev().map(order).collect(),
                top_products: products(),
                top_products_basis: "the last 50 orders".into(),
            })
        }
        async fn recent_orders(&self, limit: u32) -> Result<Vec<OrderSummary>, ShopifyError> {
            self.gate().await?;
            Ok((1001..1001 + limit.min(5)).rev().map(order).collect())
        }
        async fn orders_last_week(&self) -> Result<SalesSummary, ShopifyError> {
            self.gate().await?;
            let to = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
            let from = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default();
            Ok(summary(from, to))
        }
        async fn sales_summary(
            &self,
            from: NaiveDate,
            to: NaiveDate,
        ) -> Result<SalesSummary, ShopifyError> {
            self.gate().await?;
            let mut s = summary(from, to);
            s.orders = 120;
            s.revenue = amount("9876.50");
            s.net_revenue = amount("9856.50");
            s.average_order_value = amount("82.30");
            Ok(s)
        }
        async fn top_products(&self, _days: u32, limit: u32) -> Result<TopProducts, ShopifyError> {
            self.gate().await?;
            let to = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
            let from = NaiveDate::from_ymd_opt(2026, 10, 28).unwrap_or_default();
            Ok(TopProducts {
                from,
                to,
                orders_considered: 170,
                products: products().into_iter().take(limit as usize).collect(),
                beyond_visibility_window: false,
                note: None,
                truncated: false,
            })
        }
        async fn customer_by_email(
            &self,
            email: &str,
        ) -> Result<Option<CustomerDetails>, ShopifyError> {
            self.gate().await?;
            if email.eq_ignore_ascii_case("ada@example.com") {
                Ok(Some(CustomerDetails {
                    id: "gid://shopify/Customer/7".into(),
                    email: Some("ada@example.com".into()),
                    name: Some("Ada Lovelace".into()),
                    recent_orders: vec![order(1003), order(1001)],
                }))
            } else {
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeStore;
    use super::*;
    use crate::workflow::{AD_HOC_SUPPORT, Catalog, SHOPIFY_ONBOARDING};

    fn call(name: &str, input: Value) -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: name.into(),
            input,
        }
    }

    fn all() -> Vec<String> {
        ALL_TOOLS.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn specs_exist_sorted_and_valid() {
        let specs = tool_specs(ALL_TOOLS.iter().copied());
        assert_eq!(specs.len(), 7);
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for s in &specs {
            assert_eq!(s.input_schema["type"], "object");
            assert!(crate::workflow::KNOWN_TOOLS.contains(&s.name.as_str()));
        }
        assert!(tool_spec("nope").is_none());
    }

    #[test]
    fn offered_only_when_connected_and_listed() {
        let catalog = Catalog::embedded().unwrap();
        let onboarding = catalog.workflow(SHOPIFY_ONBOARDING).unwrap();
        let adhoc = catalog.workflow(AD_HOC_SUPPORT).unwrap();
        assert!(ToolContext::disconnected().specs_for(adhoc).is_empty());
        let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
        assert_eq!(ctx.specs_for(adhoc).len(), 7);
        let names: Vec<_> = ctx
            .specs_for(onboarding)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, vec![STORE_COUNTS, STORE_OVERVIEW]);
    }

    #[tokio::test]
    async fn results_are_compact_json() {
        let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
        let out = ctx
            .execute(&call(ORDERS_LAST_WEEK, json!({})), &all())
            .await;
        assert!(!out.is_error, "{out:?}");
        let v: Value = serde_json::from_str(&out.content).unwrap();
        assert_eq!(v["orders"], 42);
        assert_eq!(v["revenue"], "3456.78");
        assert!(!out.content.contains('\n'));
        let out = ctx
            .execute(&call(RECENT_ORDERS, json!({"limit": 3})), &all())
            .await;
        let v: Value = serde_json::from_str(&out.content).unwrap();
        assert_eq!(v["count"], 3);
        let out = ctx
            .execute(
                &call(LOOKUP_CUSTOMER, json!({"email": "nobody@example.com"})),
                &all(),
            )
            .await;
        assert!(!out.is_error);
        assert!(out.content.contains(r#""found":false"#));
    }

    #[tokio::test]
    async fn bad_arguments_are_error_results() {
        let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
        let cases = [
            call(
                SALES_SUMMARY,
                json!({"start_date": "2026-13-01", "end_date": "2026-12-01"}),
            ),
            call(
                SALES_SUMMARY,
                json!({"start_date": "2026-10-05", "end_date": "2026-10-01"}),
            ),
            call(
                SALES_SUMMARY,
                json!({"start_date": "2020-01-01", "end_date": "2026-10-01"}),
            ),
            call(SALES_SUMMARY, json!({"start_date": "2026-10-01"})),
            call(RECENT_ORDERS, json!({"limit": 0})),
            call(RECENT_ORDERS, json!({"limit": 500})),
            call(RECENT_ORDERS, json!({"limit": "many"})),
            call(TOP_PRODUCTS, json!({"days": -3})),
            call(TOP_PRODUCTS, json!({"limit": 1.5})),
            call(LOOKUP_CUSTOMER, json!({"email": "not an email"})),
            call(LOOKUP_CUSTOMER, json!({"email": "x\"@y.com"})),
            call(LOOKUP_CUSTOMER, json!({})),
        ];
        for c in cases {
            let out = ctx.execute(&c, &all()).await;
            assert!(out.is_error, "{c:?} -> {out:?}");
            assert_eq!(out.error_code.as_deref(), Some("invalid_arguments"));
        }
        // Lenient but safe: numeric strings and ignored extra keys (a
        // model-supplied shop changes nothing).
        let out = ctx
            .execute(
                &call(
                    RECENT_ORDERS,
                    json!({"limit": "2", "shop": "other.myshopify.com"}),
                ),
                &all(),
            )
            .await;
        assert!(!out.is_error);
    }

    #[tokio::test]
    async fn unknown_or_unoffered_tools_are_refused() {
        let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
        let offered = vec![STORE_COUNTS.to_owned()];
        let out = ctx
            .execute(&call(ORDERS_LAST_WEEK, json!({})), &offered)
            .await;
        assert_eq!(out.error_code.as_deref(), Some("unknown_tool"));
        let out = ctx
            .execute(
                &call(ORDERS_LAST_WEEK, json!({})),
                &[ORDERS_LAST_WEEK.to_owned()],
            )
            .await;
        assert!(!out.is_error);
        let out = ToolContext::disconnected()
            .execute(&call(STORE_COUNTS, json!({})), &offered)
            .await;
        assert_eq!(out.error_code.as_deref(), Some("not_connected"));
    }

    #[tokio::test]
    async fn unauthorized_means_reconnect() {
        let ctx = ToolContext::connected(Arc::new(FakeStore {
            unauthorized: true,
            ..FakeStore::default()
        }));
        let out = ctx.execute(&call(STORE_COUNTS, json!({})), &all()).await;
        assert!(out.is_error && out.needs_reconnect);
        assert!(out.content.contains("reconnect"));
    }

    #[tokio::test(start_paused = true)]
    async fn calls_time_out() {
        let ctx = ToolContext::connected(Arc::new(FakeStore {
            slow: true,
            ..FakeStore::default()
        }))
        .with_timeout(Duration::from_secs(5));
        let out = ctx.execute(&call(STORE_COUNTS, json!({})), &all()).await;
        assert_eq!(out.error_code.as_deref(), Some("timeout"));
    }

    #[test]
    fn tool_names_match_the_workflow_catalog() {
        let mut a: Vec<_> = ALL_TOOLS.to_vec();
        let mut b: Vec<_> = crate::workflow::KNOWN_TOOLS.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }

    #[test]
    fn email_validation() {
        assert!(valid_email("ada@example.com"));
        assert!(valid_email("a.b+c@shop.co.uk"));
        for bad in [
            "",
            "ada",
            "ada@",
            "@x.com",
            "a@b",
            "a b@c.com",
            "a@b@c.com",
            "a@.com",
            "a@b..com",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
