//! [`ShopifyDataFetcher`]: the store data behind CJ's tools. Pure data
//! fetching and arithmetic (sums, counts, averages), no analysis; every
//! result is a compact, serializable struct, cached per shop.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, FixedOffset, NaiveDate, Offset, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::cache::{Cache, CacheError, CacheKey, DEFAULT_TTL};
use crate::client::AdminClient;
use crate::domain::ShopDomain;
use crate::error::ShopifyError;
use crate::money::Amount;
use crate::queries;
use hirecj_domain::Secret;

/// How far back Shopify shows orders to an app without `read_all_orders`.
pub const VISIBILITY_WINDOW_DAYS: u64 = 60;
/// The scope that lifts the 60-day window.
pub const READ_ALL_ORDERS: &str = "read_all_orders";
/// Default cap on pages fetched for one aggregate.
pub const DEFAULT_MAX_PAGES: u32 = 20;
/// Most products listed in a summary.
pub const SUMMARY_TOP_PRODUCTS: usize = 10;
/// Orders listed in the overview.
pub const OVERVIEW_RECENT_ORDERS: usize = 10;
/// Cache item prefix; bump it when a result struct changes shape.
const CACHE_VERSION: &str = "v1";
/// A day-by-day list is given for ranges up to this many days; longer
/// ranges list only the days with orders.
const MAX_DENSE_DAYS: i64 = 93;

/// A `{ count precision }` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// The count.
    pub count: u64,
    /// `EXACT`, or `AT_LEAST` when Shopify capped the count.
    pub precision: String,
}

/// Product, order, open-order and customer counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCounts {
    /// All products.
    pub products: Count,
    /// All orders visible to the app.
    pub orders: Count,
    /// Open orders (`status:open`).
    pub open_orders: Count,
    /// All customers.
    pub customers: Count,
}

/// The shop's identity and settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopInfo {
    /// The store's name.
    pub name: String,
    /// The store's contact email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `name.myshopify.com`.
    pub domain: String,
    /// The shop currency (ISO code).
    pub currency: String,
    /// How the shop writes money (Shopify's `moneyFormat`, e.g.
    /// `${{amount}}`; may hold HTML, read it with [`crate::MoneyFormat`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub money_format: Option<String>,
    /// The shop's IANA time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The shop's current offset from UTC, in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset_minutes: Option<i32>,
    /// The plan's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// A development store.
    pub development_store: bool,
    /// A Shopify Plus store.
    pub shopify_plus: bool,
}

/// A customer as attached to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRef {
    /// The customer's GID.
    pub id: String,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    /// Product title at the time of the order.
    pub title: String,
    /// Units.
    pub quantity: i64,
    /// The product's GID (absent for custom items or deleted products).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
}

/// One order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    /// The order's GID.
    pub id: String,
    /// The order's name, e.g. `#1001`.
    pub name: String,
    /// When it was placed (UTC).
    pub created_at: DateTime<Utc>,
    /// When it was cancelled, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// `displayFinancialStatus`, e.g. `PAID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub financial_status: Option<String>,
    /// `displayFulfillmentStatus`, e.g. `UNFULFILLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_status: Option<String>,
    /// Total price in shop currency.
    pub total: Amount,
    /// Amount refunded so far, in shop currency.
    pub refunded: Amount,
    /// Shop currency.
    pub currency: String,
    /// The customer, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerRef>,
    /// The first line items (at most [`queries::LINE_ITEMS_PER_ORDER`]).
    pub items: Vec<LineItem>,
}

/// Sales of one product over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSales {
    /// The product's GID, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Title.
    pub title: String,
    /// Units sold.
    pub units: i64,
    /// Orders containing it.
    pub orders: u64,
}

/// Orders and revenue of one day (shop time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySales {
    /// The day.
    pub date: NaiveDate,
    /// Orders placed that day.
    pub orders: u64,
    /// Their total price.
    pub revenue: Amount,
}

/// Order aggregates over a date range (inclusive days in the shop's time
/// zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesSummary {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// The time zone whose midnights cut the days, e.g.
    /// `America/New_York (UTC-05:00)`: the shop's, at its current offset.
    pub timezone: String,
    /// Shop currency of the amounts (absent when there were no orders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Orders placed in the range (cancelled ones included).
    pub orders: u64,
    /// How many of them were cancelled since.
    pub cancelled_orders: u64,
    /// Sum of their total prices.
    pub revenue: Amount,
    /// Sum refunded on them.
    pub refunded: Amount,
    /// `revenue - refunded`.
    pub net_revenue: Amount,
    /// `revenue / orders`, to the cent (zero without orders).
    pub average_order_value: Amount,
    /// Per day; every day of the range for ranges up to 93 days, otherwise
    /// only the days with orders.
    pub per_day: Vec<DaySales>,
    /// Best sellers by units (at most 10).
    pub top_products: Vec<ProductSales>,
    /// The range starts more than 60 days ago and the app lacks
    /// `read_all_orders`: older orders are invisible to it.
    pub beyond_visibility_window: bool,
    /// Why the figures may be incomplete, when they may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The page cap was reached: the figures cover the newest orders only.
    pub truncated: bool,
}

/// Best sellers over the last days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopProducts {
    /// First day (shop time).
    pub from: NaiveDate,
    /// Last day (today, shop time).
    pub to: NaiveDate,
    /// Orders the ranking is computed from.
    pub orders_considered: u64,
    /// Best sellers by units.
    pub products: Vec<ProductSales>,
    /// See [`SalesSummary::beyond_visibility_window`].
    pub beyond_visibility_window: bool,
    /// See [`SalesSummary::note`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// See [`SalesSummary::truncated`].
    pub truncated: bool,
}

/// The store at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreOverview {
    /// The shop.
    pub shop: ShopInfo,
    /// The latest orders (at most 10).
    pub recent_orders: Vec<OrderSummary>,
    /// Best sellers among the latest orders.
    pub top_products: Vec<ProductSales>,
    /// What `top_products` is computed from, e.g. `the last 30 orders`.
    pub top_products_basis: String,
}

/// A customer and their latest orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerDetails {
    /// The customer's GID.
    pub id: String,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Their latest orders, newest first.
    pub recent_orders: Vec<OrderSummary>,
}

/// Fetches store data for one `(shop, access token)`, through a cache.
/// The shop and token come from the authenticated merchant, never from the
/// model.
#[derive(Debug, Clone)]
pub struct ShopifyDataFetcher {
    client: AdminClient,
    shop: ShopDomain,
    token: Secret,
    cache: Arc<dyn Cache>,
    ttl: Duration,
    max_pages: u32,
    /// Longest time one aggregate keeps paging (see
    /// [`Self::with_paging_budget`]).
    paging_budget: Option<Duration>,
    granted_scopes: Option<Vec<String>>,
    fixed_now: Option<DateTime<Utc>>,
}

impl ShopifyDataFetcher {
    /// A fetcher for `shop` with `token`, caching in `cache` for
    /// [`DEFAULT_TTL`].
    pub fn new(
        client: AdminClient,
        shop: ShopDomain,
        token: Secret,
        cache: Arc<dyn Cache>,
    ) -> Self {
        Self {
            client,
            shop,
            token,
            cache,
            ttl: DEFAULT_TTL,
            max_pages: DEFAULT_MAX_PAGES,
            paging_budget: None,
            granted_scopes: None,
            fixed_now: None,
        }
    }

    /// The scopes granted at install (from the token grant). Without them the
    /// fetcher assumes `read_all_orders` is not granted.
    pub fn with_granted_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.granted_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The cache TTL.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Cap on pages fetched for one aggregate (at least one).
    pub fn with_max_pages(mut self, max_pages: u32) -> Self {
        self.max_pages = max_pages.max(1);
        self
    }

    /// Stops paging one aggregate once `budget` has passed: the pages read
    /// so far answer, flagged `truncated` with a note. Shopify's rate limit
    /// lets an app read only a few pages of orders a second, so on a busy
    /// store this keeps a live answer (e.g. the prepared post-OAuth message)
    /// within its time. Results read under a budget are cached apart from
    /// complete ones.
    pub fn with_paging_budget(mut self, budget: Duration) -> Self {
        self.paging_budget = Some(budget);
        self
    }

    /// Fixes "now" (for tests and reproducible runs).
    pub fn with_now(mut self, now: DateTime<Utc>) -> Self {
        self.fixed_now = Some(now);
        self
    }

    /// The shop this fetcher reads.
    pub fn shop(&self) -> &ShopDomain {
        &self.shop
    }

    /// Removes this shop's cached data.
    pub async fn clear_cache(&self) -> Result<usize, CacheError> {
        clear_shop(self.cache.as_ref(), &self.shop).await
    }

    fn now(&self) -> DateTime<Utc> {
        self.fixed_now.unwrap_or_else(Utc::now)
    }

    /// The shop's time zone (cached); UTC when it cannot be read, except
    /// that a 401 is passed on.
    async fn zone(&self) -> Result<ShopZone, ShopifyError> {
        let result = self
            .cached("shop_timezone".to_owned(), || async {
                let raw: RawZoneData = self.query(queries::SHOP_TIMEZONE, json!({})).await?;
                Ok(ShopZone {
                    iana: raw.shop.iana_timezone,
                    offset_minutes: raw
                        .shop
                        .timezone_offset_minutes
                        .unwrap_or(0)
                        .clamp(-18 * 60, 18 * 60),
                })
            })
            .await;
        match result {
            Ok(zone) => Ok(zone),
            Err(e) if e.needs_reconnect() => Err(e),
            Err(e) => {
                tracing::warn!(shop = %self.shop, error = %e, "shop time zone unknown; using UTC days");
                Ok(ShopZone::default())
            }
        }
    }

    fn has_all_orders(&self) -> bool {
        self.granted_scopes
            .as_ref()
            .is_some_and(|s| s.iter().any(|s| s == READ_ALL_ORDERS))
    }

    /// Products, orders, open orders and customers, counted by Shopify.
    pub async fn store_counts(&self) -> Result<StoreCounts, ShopifyError> {
        self.cached("store_counts".to_owned(), || async {
            let raw: RawCounts = self.query(queries::STORE_COUNTS, json!({})).await?;
            Ok(StoreCounts {
                products: raw.products_count,
                orders: raw.orders_count,
                open_orders: raw.open_orders,
                customers: raw.customers_count,
            })
        })
        .await
    }

    /// The shop's name, email, domain, currency, time zone and plan.
    pub async fn shop_info(&self) -> Result<ShopInfo, ShopifyError> {
        self.cached("shop_info".to_owned(), || async {
            let raw: RawShopData = self.query(queries::SHOP, json!({})).await?;
            Ok(raw.shop.into())
        })
        .await
    }

    /// The shop, its latest orders and the best sellers among the latest
    /// [`queries::ORDERS_PAGE_SIZE`] orders. One request.
    pub async fn store_overview(&self) -> Result<StoreOverview, ShopifyError> {
        self.cached("store_overview".to_owned(), || async {
            let raw: RawOverview = self
                .query(
                    queries::STORE_OVERVIEW,
                    json!({ "first": queries::ORDERS_PAGE_SIZE }),
                )
                .await?;
            let orders: Vec<OrderSummary> = raw
                .orders
                .into_nodes()
                .into_iter()
                .map(Into::into)
                .collect();
            let top = rank_products(&orders, 5);
            Ok(StoreOverview {
                shop: raw.shop.into(),
                top_products_basis: format!("the last {} orders", orders.len()),
                recent_orders: orders.into_iter().take(OVERVIEW_RECENT_ORDERS).collect(),
                top_products: top,
            })
        })
        .await
    }

    /// The latest `limit` orders (1 to 100), newest first.
    pub async fn recent_orders(&self, limit: u32) -> Result<Vec<OrderSummary>, ShopifyError> {
        let limit = limit.clamp(1, 100);
        self.cached(format!("recent_orders:{limit}"), || async move {
            let mut out = Vec::new();
            let mut after: Option<String> = None;
            while out.len() < limit as usize {
                let want = (limit as usize - out.len()).min(queries::ORDERS_PAGE_SIZE as usize);
                let page = self.orders_page(want, after.as_deref(), None).await?;
                out.extend(page.nodes.into_iter().map(OrderSummary::from));
                match page.next {
                    Some(cursor) => after = Some(cursor),
                    None => break,
                }
            }
            out.truncate(limit as usize);
            Ok(out)
        })
        .await
    }

    /// Orders of the last 7 days (today and the 6 days before, in the
    /// shop's time zone): count, revenue, average order value, per day, top
    /// products.
    pub async fn orders_last_week(&self) -> Result<SalesSummary, ShopifyError> {
        let to = self.zone().await?.date_of(self.now());
        let from = to.checked_sub_days(Days::new(6)).unwrap_or(to);
        self.sales_summary(from, to).await
    }

    /// Order aggregates for `from..=to` (days in the shop's time zone). Flags
    /// `beyond_visibility_window` when `from` is more than 60 days ago and
    /// `read_all_orders` was not granted.
    pub async fn sales_summary(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SalesSummary, ShopifyError> {
        if from > to {
            return Err(ShopifyError::InvalidInput(format!(
                "the range starts ({from}) after it ends ({to})"
            )));
        }
        self.cached(format!("sales_summary:{from}:{to}"), || async move {
            let zone = self.zone().await?;
            let window = self.window(from, to, zone).await?;
            Ok(window.summary(from, to))
        })
        .await
    }

    /// The `limit` best sellers (by units) over the last `days` days,
    /// today included.
    pub async fn top_products(&self, days: u32, limit: u32) -> Result<TopProducts, ShopifyError> {
        let days = days.clamp(1, 365);
        let limit = limit.clamp(1, 50);
        let zone = self.zone().await?;
        let to = zone.date_of(self.now());
        let from = to
            .checked_sub_days(Days::new(u64::from(days) - 1))
            .unwrap_or(to);
        self.cached(format!("top_products:{from}:{to}:{limit}"), || async move {
            let window = self.window(from, to, zone).await?;
            Ok(TopProducts {
                from,
                to,
                orders_considered: window.orders.len() as u64,
                products: rank_products(&window.orders, limit as usize),
                beyond_visibility_window: window.beyond_visibility_window,
                note: window.note(from, to),
                truncated: window.truncated,
            })
        })
        .await
    }

    /// The customer with `email` and their latest orders (at most 10), or
    /// `None` when no customer has it.
    pub async fn customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<CustomerDetails>, ShopifyError> {
        let email = normalize_email(email)?;
        let digest = hex::encode(&Sha256::digest(email.as_bytes())[..16]);
        self.cached(format!("customer:{digest}"), || async {
            let search = format!("email:\"{email}\"");
            let raw: RawCustomerLookup = self
                .query(
                    queries::CUSTOMER_BY_EMAIL,
                    json!({ "customerQuery": search, "orderQuery": search, "orders": 10 }),
                )
                .await?;
            let Some(customer) = raw.customers.into_nodes().into_iter().next() else {
                return Ok(None);
            };
            Ok(Some(CustomerDetails {
                id: customer.id,
                email: customer.email,
                name: customer.display_name,
                recent_orders: raw
                    .orders
                    .into_nodes()
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            }))
        })
        .await
    }

    async fn query<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<T, ShopifyError> {
        self.client
            .query(&self.shop, &self.token, query, variables)
            .await
    }

    async fn cached<T, F, Fut>(&self, item: String, fetch: F) -> Result<T, ShopifyError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ShopifyError>>,
    {
        let budget = match self.paging_budget {
            Some(b) => format!(":within-{}ms", b.as_millis()),
            None => String::new(),
        };
        let key = CacheKey::new(&self.shop, format!("{CACHE_VERSION}:{item}{budget}"));
        if let Some(hit) = self.cache.get(&key).await {
            match serde_json::from_str(&hit) {
                Ok(value) => return Ok(value),
                Err(e) => tracing::warn!(shop = %self.shop, item = %key.item, error = %e,
                    "ignoring an unreadable cache entry"),
            }
        }
        let value = fetch().await?;
        match serde_json::to_string(&value) {
            Ok(json) => self.cache.set(&key, json, self.ttl).await,
            Err(e) => tracing::warn!(error = %e, "could not serialize a result for the cache"),
        }
        Ok(value)
    }

    async fn orders_page(
        &self,
        first: usize,
        after: Option<&str>,
        search: Option<&str>,
    ) -> Result<Page, ShopifyError> {
        let raw: RawOrdersData = self
            .query(
                queries::ORDERS_PAGE,
                json!({ "first": first, "after": after, "query": search }),
            )
            .await?;
        let has_next = raw
            .orders
            .page_info
            .as_ref()
            .is_some_and(|p| p.has_next_page);
        let cursor = raw
            .orders
            .page_info
            .as_ref()
            .and_then(|p| p.end_cursor.clone());
        Ok(Page {
            nodes: raw.orders.into_nodes(),
            next: if has_next { cursor } else { None },
        })
    }

    /// Every order placed on `from..=to` (shop days), newest first,
    /// paginated. The search is one day wider on each side (Shopify reads
    /// bare dates in the shop's time zone, whose offset may have changed
    /// since) and the result is filtered here.
    async fn window(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        zone: ShopZone,
    ) -> Result<Window, ShopifyError> {
        let lower = from.checked_sub_days(Days::new(1)).unwrap_or(from);
        let upper = to.checked_add_days(Days::new(2)).unwrap_or(to);
        let search = format!("created_at:>={lower} created_at:<{upper}");
        let mut orders = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0u32;
        let mut truncated = false;
        let deadline = self.paging_budget.map(|b| tokio::time::Instant::now() + b);
        let in_time = || deadline.is_none_or(|d| tokio::time::Instant::now() < d);
        loop {
            let page = self
                .orders_page(
                    queries::ORDERS_PAGE_SIZE as usize,
                    after.as_deref(),
                    Some(&search),
                )
                .await?;
            pages += 1;
            let reached_older = page
                .nodes
                .last()
                .is_some_and(|o| zone.date_of(o.created_at) < from);
            orders.extend(
                page.nodes
                    .into_iter()
                    .filter(|o| (from..=to).contains(&zone.date_of(o.created_at)))
                    .map(OrderSummary::from),
            );
            match page.next {
                Some(_) if reached_older => break,
                Some(cursor) if pages < self.max_pages && in_time() => after = Some(cursor),
                Some(_) => {
                    truncated = true;
                    break;
                }
                None => break,
            }
        }
        let cutoff = zone
            .date_of(self.now())
            .checked_sub_days(Days::new(VISIBILITY_WINDOW_DAYS))
            .unwrap_or(from);
        let beyond = from < cutoff && !self.has_all_orders();
        tracing::debug!(shop = %self.shop, pages, orders = orders.len(), truncated, "fetched an order window");
        Ok(Window {
            orders,
            truncated,
            beyond_visibility_window: beyond,
            cutoff,
            pages,
            zone,
        })
    }
}

/// Removes every cached entry of `shop` (call it on uninstall).
pub async fn clear_shop(cache: &dyn Cache, shop: &ShopDomain) -> Result<usize, CacheError> {
    cache.clear_prefix(shop).await
}

fn normalize_email(email: &str) -> Result<String, ShopifyError> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && email.split('@').count() == 2
        && !email.starts_with('@')
        && !email.ends_with('@')
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\'));
    if ok {
        Ok(email)
    } else {
        Err(ShopifyError::InvalidInput(
            "not an email address".to_owned(),
        ))
    }
}

/// Ranks products by units, then orders, then title.
fn rank_products(orders: &[OrderSummary], limit: usize) -> Vec<ProductSales> {
    let mut by_product: HashMap<String, ProductSales> = HashMap::new();
    for order in orders {
        let mut seen_in_order: Vec<String> = Vec::new();
        for item in &order.items {
            let key = item
                .product_id
                .clone()
                .unwrap_or_else(|| format!("title:{}", item.title));
            let entry = by_product
                .entry(key.clone())
                .or_insert_with(|| ProductSales {
                    product_id: item.product_id.clone(),
                    title: item.title.clone(),
                    units: 0,
                    orders: 0,
                });
            entry.units += item.quantity;
            if !seen_in_order.contains(&key) {
                entry.orders += 1;
                seen_in_order.push(key);
            }
        }
    }
    let mut ranked: Vec<ProductSales> = by_product.into_values().collect();
    ranked.sort_by(|a, b| {
        b.units
            .cmp(&a.units)
            .then(b.orders.cmp(&a.orders))
            .then_with(|| a.title.cmp(&b.title))
    });
    ranked.truncate(limit);
    ranked
}

/// The shop's time zone, as used to cut days: its current offset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ShopZone {
    iana: Option<String>,
    offset_minutes: i32,
}

impl ShopZone {
    fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.offset_minutes * 60).unwrap_or_else(|| Utc.fix())
    }

    fn date_of(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.offset()).date_naive()
    }

    fn label(&self) -> String {
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        let abs = self.offset_minutes.unsigned_abs();
        let offset = format!("UTC{sign}{:02}:{:02}", abs / 60, abs % 60);
        match &self.iana {
            Some(name) if !name.is_empty() => format!("{name} ({offset})"),
            _ if self.offset_minutes == 0 => "UTC".to_owned(),
            _ => offset,
        }
    }
}

struct Page {
    nodes: Vec<RawOrder>,
    next: Option<String>,
}

struct Window {
    orders: Vec<OrderSummary>,
    truncated: bool,
    beyond_visibility_window: bool,
    cutoff: NaiveDate,
    /// Pages read.
    pages: u32,
    zone: ShopZone,
}

impl Window {
    fn note(&self, from: NaiveDate, to: NaiveDate) -> Option<String> {
        let mut notes = Vec::new();
        if self.beyond_visibility_window {
            let visible_from = self.cutoff.max(from).min(to);
            notes.push(format!(
                "Shopify shows apps only the last {VISIBILITY_WINDOW_DAYS} days of orders unless \
                 the store grants the read_all_orders scope, which it has not: orders placed \
                 before {} are not visible, so these figures cover {visible_from} to {to} only.",
                self.cutoff
            ));
        }
        if self.truncated {
            notes.push(format!(
                "Only the newest {} orders were read ({} page{}): older orders in the range \
                 are not included.",
                self.orders.len(),
                self.pages,
                if self.pages == 1 { "" } else { "s" }
            ));
        }
        (!notes.is_empty()).then(|| notes.join(" "))
    }

    fn summary(&self, from: NaiveDate, to: NaiveDate) -> SalesSummary {
        let count = self.orders.len() as u64;
        let revenue: Amount = self.orders.iter().map(|o| o.total).sum();
        let refunded: Amount = self.orders.iter().map(|o| o.refunded).sum();
        let mut days: BTreeMap<NaiveDate, DaySales> = BTreeMap::new();
        if (to - from).num_days() < MAX_DENSE_DAYS {
            for date in from.iter_days().take_while(|d| *d <= to) {
                days.insert(
                    date,
                    DaySales {
                        date,
                        orders: 0,
                        revenue: Amount::ZERO,
                    },
                );
            }
        }
        for order in &self.orders {
            let date = self.zone.date_of(order.created_at);
            let day = days.entry(date).or_insert(DaySales {
                date,
                orders: 0,
                revenue: Amount::ZERO,
            });
            day.orders += 1;
            day.revenue += order.total;
        }
        SalesSummary {
            from,
            to,
            timezone: self.zone.label(),
            currency: self.orders.first().map(|o| o.currency.clone()),
            orders: count,
            cancelled_orders: self
                .orders
                .iter()
                .filter(|o| o.cancelled_at.is_some())
                .count() as u64,
            revenue,
            refunded,
            net_revenue: revenue - refunded,
            average_order_value: revenue.div_round_cents(count).unwrap_or(Amount::ZERO),
            per_day: days.into_values().collect(),
            top_products: rank_products(&self.orders, SUMMARY_TOP_PRODUCTS),
            beyond_visibility_window: self.beyond_visibility_window,
            note: self.note(from, to),
            truncated: self.truncated,
        }
    }
}

// ---- the GraphQL answers ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCounts {
    products_count: Count,
    orders_count: Count,
    open_orders: Count,
    customers_count: Count,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawShop {
    name: String,
    #[serde(default)]
    email: Option<String>,
    myshopify_domain: String,
    currency_code: String,
    #[serde(default)]
    currency_formats: Option<RawCurrencyFormats>,
    #[serde(default)]
    iana_timezone: Option<String>,
    #[serde(default)]
    timezone_offset_minutes: Option<i32>,
    #[serde(default)]
    plan: Option<RawPlan>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCurrencyFormats {
    #[serde(default)]
    money_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPlan {
    #[serde(default)]
    public_display_name: Option<String>,
    #[serde(default)]
    partner_development: bool,
    #[serde(default)]
    shopify_plus: bool,
}

impl From<RawShop> for ShopInfo {
    fn from(s: RawShop) -> Self {
        let (plan, development_store, shopify_plus) = match s.plan {
            Some(p) => (p.public_display_name, p.partner_development, p.shopify_plus),
            None => (None, false, false),
        };
        Self {
            name: s.name,
            email: s.email,
            domain: s.myshopify_domain,
            currency: s.currency_code,
            money_format: s.currency_formats.and_then(|f| f.money_format),
            timezone: s.iana_timezone,
            utc_offset_minutes: s.timezone_offset_minutes,
            plan,
            development_store,
            shopify_plus,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawZone {
    #[serde(default)]
    iana_timezone: Option<String>,
    #[serde(default)]
    timezone_offset_minutes: Option<i32>,
}

#[derive(Deserialize)]
struct RawZoneData {
    shop: RawZone,
}

#[derive(Deserialize)]
struct RawShopData {
    shop: RawShop,
}

#[derive(Deserialize)]
struct RawOverview {
    shop: RawShop,
    orders: RawConnection<RawOrder>,
}

#[derive(Deserialize)]
struct RawOrdersData {
    orders: RawConnection<RawOrder>,
}

#[derive(Deserialize)]
struct RawCustomerLookup {
    customers: RawConnection<RawCustomer>,
    orders: RawConnection<RawOrder>,
}

/// A connection read from `nodes` or from `edges { node }`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConnection<T> {
    #[serde(default = "Option::default")]
    page_info: Option<RawPageInfo>,
    #[serde(default = "Option::default")]
    nodes: Option<Vec<T>>,
    #[serde(default = "Option::default")]
    edges: Option<Vec<RawEdge<T>>>,
}

impl<T> RawConnection<T> {
    fn into_nodes(self) -> Vec<T> {
        match (self.nodes, self.edges) {
            (Some(nodes), _) => nodes,
            (None, Some(edges)) => edges.into_iter().map(|e| e.node).collect(),
            (None, None) => Vec::new(),
        }
    }
}

#[derive(Deserialize)]
struct RawEdge<T> {
    node: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPageInfo {
    has_next_page: bool,
    #[serde(default)]
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCustomer {
    id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMoneyBag {
    shop_money: RawMoney,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMoney {
    amount: Amount,
    currency_code: String,
}

#[derive(Deserialize)]
struct RawId {
    id: String,
}

#[derive(Deserialize)]
struct RawLineItem {
    title: String,
    quantity: i64,
    #[serde(default)]
    product: Option<RawId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOrder {
    id: String,
    name: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    cancelled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    display_financial_status: Option<String>,
    #[serde(default)]
    display_fulfillment_status: Option<String>,
    total_price_set: RawMoneyBag,
    #[serde(default)]
    total_refunded_set: Option<RawMoneyBag>,
    #[serde(default)]
    customer: Option<RawCustomer>,
    #[serde(default)]
    line_items: Option<RawConnection<RawLineItem>>,
}

impl From<RawOrder> for OrderSummary {
    fn from(o: RawOrder) -> Self {
        Self {
            id: o.id,
            name: o.name,
            created_at: o.created_at,
            cancelled_at: o.cancelled_at,
            financial_status: o.display_financial_status,
            fulfillment_status: o.display_fulfillment_status,
            total: o.total_price_set.shop_money.amount,
            refunded: o
                .total_refunded_set
                .map(|r| r.shop_money.amount)
                .unwrap_or(Amount::ZERO),
            currency: o.total_price_set.shop_money.currency_code,
            customer: o.customer.map(|c| CustomerRef {
                id: c.id,
                email: c.email,
                name: c.display_name,
            }),
            items: o
                .line_items
                .map(RawConnection::into_nodes)
                .unwrap_or_default()
                .into_iter()
                .map(|li| LineItem {
                    title: li.title,
                    quantity: li.quantity,
                    product_id: li.product.map(|p| p.id),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked() {
        assert_eq!(
            normalize_email(" Ann@Example.com ").ok().as_deref(),
            Some("ann@example.com")
        );
        assert!(normalize_email("o'brien@example.com").is_ok());
        for bad in [
            "",
            "ann",
            "@x",
            "a@",
            "a@b@c",
            "a\"@b.com",
            "a b@c.com",
            "x@y.com OR id:1",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    fn order(id: &str, items: &[(&str, Option<&str>, i64)]) -> OrderSummary {
        OrderSummary {
            id: id.into(),
            name: id.into(),
            created_at: Utc::now(),
            cancelled_at: None,
            financial_status: None,
            fulfillment_status: None,
            total: Amount::ZERO,
            refunded: Amount::ZERO,
            currency: "USD".into(),
            customer: None,
            items: items
                .iter()
                .map(|(t, p, q)| LineItem {
                    title: (*t).into(),
                    quantity: *q,
                    product_id: p.map(str::to_owned),
                })
                .collect(),
        }
    }

    #[test]
    fn zone_labels_and_dates() {
        let ny = ShopZone {
            iana: Some("America/New_York".into()),
            offset_minutes: -300,
        };
        assert_eq!(ny.label(), "America/New_York (UTC-05:00)");
        let at = DateTime::parse_from_rfc3339("2026-11-26T03:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ny.date_of(at),
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default()
        );
        assert_eq!(ShopZone::default().label(), "UTC");
        let india = ShopZone {
            iana: None,
            offset_minutes: 330,
        };
        assert_eq!(india.label(), "UTC+05:30");
        assert_eq!(
            india.date_of(at),
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default()
        );
    }

    #[test]
    fn products_rank_by_units_then_orders() {
        let orders = vec![
            order(
                "1",
                &[
                    ("Mug", Some("gid://shopify/Product/1"), 2),
                    ("Tee", Some("gid://shopify/Product/2"), 1),
                ],
            ),
            order(
                "2",
                &[
                    ("Mug", Some("gid://shopify/Product/1"), 1),
                    ("Gift", None, 3),
                ],
            ),
            order(
                "3",
                &[
                    ("Tee", Some("gid://shopify/Product/2"), 1),
                    ("Tee", Some("gid://shopify/Product/2"), 1),
                ],
            ),
        ];
        let ranked = rank_products(&orders, 10);
        let summary: Vec<(&str, i64, u64)> = ranked
            .iter()
            .map(|p| (p.title.as_str(), p.units, p.orders))
            .collect();
        assert_eq!(summary, vec![("Mug", 3, 2), ("Tee", 3, 2), ("Gift", 3, 1)]);
        assert_eq!(rank_products(&orders, 1).len(), 1);
    }
}
