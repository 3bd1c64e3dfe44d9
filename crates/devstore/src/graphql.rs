//! The GraphQL Admin API subset, on `async-graphql` (real parsing and
//! validation: an unknown field fails before anything runs).

use std::sync::Arc;

use crate::bulk::{BulkMutation, BulkOperationObject, BulkOperationType};
use crate::subscriptions::{
    ListArgs, WebhookMutation, WebhookSubscriptionFormat, WebhookSubscriptionObject,
    WebhookSubscriptionSortKeys, WebhookSubscriptionTopic,
};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{
    Context, EmptySubscription, Enum, ErrorExtensions, ID, InputValueError, InputValueResult,
    MaybeUndefined, MergedObject, Object, OutputType, Result, Scalar, ScalarType, Schema,
    SimpleObject, Value,
};
use base64::Engine as _;
use chrono::{DateTime, Duration, SecondsFormat, Utc};

use crate::data::{
    Cents, Dataset, FinancialStatus, FulfillmentStatus, Order, ProductStatus, format_cents,
};
use crate::search::{FieldValue, SearchQuery};

/// The `Mutation` root: bulk operations and webhook subscriptions.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(BulkMutation, WebhookMutation);

/// The executable schema.
pub(crate) type AdminSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Builds the schema (once per [`crate::DevStore`]).
pub(crate) fn schema() -> AdminSchema {
    Schema::build(QueryRoot, MutationRoot::default(), EmptySubscription).finish()
}

/// Largest page Shopify serves.
pub(crate) const MAX_PAGE: i32 = 250;
/// Default cap of the `*Count` queries.
const DEFAULT_COUNT_LIMIT: i32 = 10_000;

/// Per-request data: whose store, which scopes, and the current time.
#[derive(Clone)]
pub(crate) struct ApiContext {
    pub dataset: Arc<Dataset>,
    pub now: DateTime<Utc>,
    pub scopes: Vec<String>,
}

impl ApiContext {
    fn has_scope(&self, resource: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| s == &format!("read_{resource}") || s == &format!("write_{resource}"))
    }

    fn require(&self, field: &str, resource: &str) -> Result<()> {
        if self.has_scope(resource) {
            return Ok(());
        }
        Err(async_graphql::Error::new(format!(
            "Access denied for {field} field. Required access: `read_{resource}` access scope."
        ))
        .extend_with(|_, e| {
            e.set("code", "ACCESS_DENIED");
            e.set(
                "documentation",
                "https://shopify.dev/api/usage/access-scopes",
            );
            e.set("requiredAccess", format!("`read_{resource}` access scope."));
        }))
    }

    /// Orders the API shows now: not in the future and, without
    /// `read_all_orders`, not older than 60 days.
    fn order_visible(&self, o: &Order) -> bool {
        o.created_at <= self.now
            && (self.scopes.iter().any(|s| s == "read_all_orders")
                || o.created_at >= self.now - Duration::days(60))
    }
}

fn api<'a>(ctx: &Context<'a>) -> Result<&'a ApiContext> {
    ctx.data::<ApiContext>()
}

// ---------------------------------------------------------------- scalars

/// ISO-8601 date-time in UTC with `Z`.
#[derive(Clone, Copy, Debug)]
pub struct DateTimeScalar(pub DateTime<Utc>);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTimeScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => DateTime::parse_from_rfc3339(s)
                .map(|d| DateTimeScalar(d.with_timezone(&Utc)))
                .map_err(|_| InputValueError::custom("invalid DateTime")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

/// Text that may carry HTML (`FormattedString`), e.g. a money format.
#[derive(Clone, Debug)]
pub struct FormattedString(pub String);

#[Scalar(name = "FormattedString")]
impl ScalarType for FormattedString {
    fn parse(value: Value) -> InputValueResult<Self> {
        Err(InputValueError::expected_type(value))
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// A decimal amount as a string (`"123.45"`).
#[derive(Clone, Copy, Debug)]
pub struct Decimal(pub Cents);

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        Err(InputValueError::expected_type(value))
    }
    fn to_value(&self) -> Value {
        Value::String(format_cents(self.0))
    }
}

/// Shopify's `Money`: a decimal amount string without currency
/// (`"24.99"`).
#[derive(Clone, Copy, Debug)]
pub struct MoneyScalar(pub Cents);

#[Scalar(name = "Money")]
impl ScalarType for MoneyScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        Err(InputValueError::expected_type(value))
    }
    fn to_value(&self) -> Value {
        Value::String(format_cents(self.0))
    }
}

/// Shopify's `URL`: an RFC 3986 URI string.
#[derive(Clone, Debug)]
pub struct Url(pub String);

#[Scalar(name = "URL")]
impl ScalarType for Url {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => Ok(Url(s.clone())),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// An unsigned 64-bit integer, as a string.
#[derive(Clone, Copy, Debug)]
pub struct UnsignedInt64(pub u64);

#[Scalar(name = "UnsignedInt64")]
impl ScalarType for UnsignedInt64 {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse()
                .map(UnsignedInt64)
                .map_err(|_| InputValueError::custom("invalid UnsignedInt64")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

pub(crate) fn gid(kind: &str, id: u64) -> ID {
    ID(format!("gid://shopify/{kind}/{id}"))
}

pub(crate) fn parse_gid(kind: &str, id: &str) -> Option<u64> {
    id.strip_prefix("gid://shopify/")?
        .strip_prefix(kind)?
        .strip_prefix('/')?
        .parse()
        .ok()
}

// ---------------------------------------------------------------- enums

/// `CurrencyCode` (the subset the simulator uses).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CurrencyCode {
    /// US dollar.
    Usd,
    /// Canadian dollar.
    Cad,
    /// Euro.
    Eur,
    /// Pound sterling.
    Gbp,
    /// Australian dollar.
    Aud,
}

impl CurrencyCode {
    fn from_code(code: &str) -> CurrencyCode {
        match code {
            "CAD" => CurrencyCode::Cad,
            "EUR" => CurrencyCode::Eur,
            "GBP" => CurrencyCode::Gbp,
            "AUD" => CurrencyCode::Aud,
            _ => CurrencyCode::Usd,
        }
    }
}

/// `CountPrecision`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CountPrecision {
    /// The count is exact.
    Exact,
    /// The count is a lower bound (the limit was reached).
    AtLeast,
}

/// `OrderDisplayFinancialStatus`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum OrderDisplayFinancialStatus {
    /// Authorized.
    Authorized,
    /// Expired.
    Expired,
    /// Paid.
    Paid,
    /// Partially paid.
    PartiallyPaid,
    /// Partially refunded.
    PartiallyRefunded,
    /// Pending.
    Pending,
    /// Refunded.
    Refunded,
    /// Voided.
    Voided,
}

impl From<FinancialStatus> for OrderDisplayFinancialStatus {
    fn from(s: FinancialStatus) -> Self {
        match s {
            FinancialStatus::Authorized => Self::Authorized,
            FinancialStatus::Paid => Self::Paid,
            FinancialStatus::PartiallyRefunded => Self::PartiallyRefunded,
            FinancialStatus::Pending => Self::Pending,
            FinancialStatus::Refunded => Self::Refunded,
            FinancialStatus::Voided => Self::Voided,
        }
    }
}

/// `OrderDisplayFulfillmentStatus`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum OrderDisplayFulfillmentStatus {
    /// Fulfilled.
    Fulfilled,
    /// In progress.
    InProgress,
    /// On hold.
    OnHold,
    /// Open.
    Open,
    /// Partially fulfilled.
    PartiallyFulfilled,
    /// Pending fulfillment.
    PendingFulfillment,
    /// Restocked.
    Restocked,
    /// Scheduled.
    Scheduled,
    /// Unfulfilled.
    Unfulfilled,
}

impl From<FulfillmentStatus> for OrderDisplayFulfillmentStatus {
    fn from(s: FulfillmentStatus) -> Self {
        match s {
            FulfillmentStatus::Fulfilled => Self::Fulfilled,
            FulfillmentStatus::Unfulfilled => Self::Unfulfilled,
            FulfillmentStatus::PartiallyFulfilled => Self::PartiallyFulfilled,
        }
    }
}

/// `ProductStatus`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ProductStatus")]
pub enum ProductStatusEnum {
    /// Active.
    Active,
    /// Archived.
    Archived,
    /// Draft.
    Draft,
}

impl From<ProductStatus> for ProductStatusEnum {
    fn from(s: ProductStatus) -> Self {
        match s {
            ProductStatus::Active => Self::Active,
            ProductStatus::Archived => Self::Archived,
            ProductStatus::Draft => Self::Draft,
        }
    }
}

/// `OrderSortKeys`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum OrderSortKeys {
    /// Creation time.
    CreatedAt,
    /// Customer name.
    CustomerName,
    /// Id.
    Id,
    /// Order number.
    OrderNumber,
    /// Processing time.
    ProcessedAt,
    /// Relevance (id order here).
    Relevance,
    /// Total price.
    TotalPrice,
    /// Update time.
    UpdatedAt,
}

/// `ProductSortKeys`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ProductSortKeys {
    /// Creation time.
    CreatedAt,
    /// Id.
    Id,
    /// Total inventory.
    InventoryTotal,
    /// Product type.
    ProductType,
    /// Relevance (id order here).
    Relevance,
    /// Title.
    Title,
    /// Update time.
    UpdatedAt,
    /// Vendor.
    Vendor,
}

/// `CustomerSortKeys`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CustomerSortKeys {
    /// Creation time.
    CreatedAt,
    /// Id.
    Id,
    /// Name.
    Name,
    /// Relevance (id order here).
    Relevance,
    /// Update time.
    UpdatedAt,
}

// ---------------------------------------------------------------- simple objects

/// `MoneyV2`.
#[derive(SimpleObject, Clone, Copy)]
#[graphql(name = "MoneyV2")]
pub struct MoneyV2 {
    amount: Decimal,
    currency_code: CurrencyCode,
}

/// `MoneyBag`: the amount in shop and presentment currency (the same here).
#[derive(SimpleObject, Clone, Copy)]
pub struct MoneyBag {
    shop_money: MoneyV2,
    presentment_money: MoneyV2,
}

fn money(ds: &Dataset, cents: Cents) -> MoneyV2 {
    MoneyV2 {
        amount: Decimal(cents),
        currency_code: CurrencyCode::from_code(&ds.shop.currency_code),
    }
}

fn money_bag(ds: &Dataset, cents: Cents) -> MoneyBag {
    MoneyBag {
        shop_money: money(ds, cents),
        presentment_money: money(ds, cents),
    }
}

/// `Count`.
#[derive(SimpleObject)]
pub struct Count {
    count: i64,
    precision: CountPrecision,
}

fn count(n: usize, limit: &MaybeUndefined<i32>) -> Count {
    let n = n as i64;
    let cap = match limit {
        MaybeUndefined::Undefined => Some(i64::from(DEFAULT_COUNT_LIMIT)),
        MaybeUndefined::Null => None,
        MaybeUndefined::Value(v) => Some(i64::from((*v).max(0))),
    };
    match cap {
        Some(cap) if n > cap => Count {
            count: cap,
            precision: CountPrecision::AtLeast,
        },
        _ => Count {
            count: n,
            precision: CountPrecision::Exact,
        },
    }
}

/// `CurrencyFormats`: how the shop writes money.
#[derive(SimpleObject)]
pub struct CurrencyFormats {
    money_format: FormattedString,
    money_in_emails_format: String,
    money_with_currency_format: FormattedString,
    money_with_currency_in_emails_format: String,
}

/// `ShopPlan`.
#[derive(SimpleObject)]
pub struct ShopPlan {
    public_display_name: String,
    partner_development: bool,
    shopify_plus: bool,
}

/// `ProductPriceRangeV2`.
#[derive(SimpleObject)]
pub struct ProductPriceRangeV2 {
    min_variant_price: MoneyV2,
    max_variant_price: MoneyV2,
}

/// `CustomerEmailAddress`.
#[derive(SimpleObject)]
pub struct CustomerEmailAddress {
    email_address: String,
}

/// `CustomerPhoneNumber`.
#[derive(SimpleObject)]
pub struct CustomerPhoneNumber {
    phone_number: String,
}

// ---------------------------------------------------------------- pagination

#[derive(serde::Serialize, serde::Deserialize)]
struct CursorData {
    last_id: u64,
}

pub(crate) fn encode_cursor(id: u64) -> String {
    let json = serde_json::json!({ "last_id": id, "last_value": id.to_string() }).to_string();
    base64::engine::general_purpose::STANDARD.encode(json)
}

fn decode_cursor(cursor: &str) -> Result<u64> {
    base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<CursorData>(&bytes).ok())
        .map(|c| c.last_id)
        .ok_or_else(|| bad_request("Invalid cursor for current pagination."))
}

fn bad_request(message: &str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", "BAD_REQUEST"))
}

/// Connection arguments.
pub(crate) struct Page {
    pub first: Option<i32>,
    pub last: Option<i32>,
    pub after: Option<String>,
    pub before: Option<String>,
}

/// Picks the window of `ids` (already filtered and sorted) a page shows,
/// relay-style; `hasPreviousPage`/`hasNextPage` tell whether anything lies
/// before/after the window.
pub(crate) fn window(ids: &[u64], page: &Page) -> Result<(usize, usize)> {
    if page.first.is_none() && page.last.is_none() {
        return Err(bad_request("you must provide one of first or last"));
    }
    for n in [page.first, page.last].into_iter().flatten() {
        if !(0..=MAX_PAGE).contains(&n) {
            return Err(bad_request(&format!(
                "The page size must be between 0 and {MAX_PAGE} (got {n})."
            )));
        }
    }
    let position = |cursor: &str| -> Result<usize> {
        let id = decode_cursor(cursor)?;
        ids.iter()
            .position(|x| *x == id)
            .ok_or_else(|| bad_request("Invalid cursor for current pagination."))
    };
    let mut start = 0;
    let mut end = ids.len();
    if let Some(after) = &page.after {
        start = position(after)? + 1;
    }
    if let Some(before) = &page.before {
        end = position(before)?;
    }
    end = end.max(start);
    if let Some(first) = page.first {
        end = end.min(start + first as usize);
    }
    if let Some(last) = page.last {
        start = start.max(end.saturating_sub(last as usize));
    }
    Ok((start, end))
}

fn connect<T, F>(ids: &[u64], page: &Page, make: F) -> Result<Connection<String, T>>
where
    T: OutputType,
    F: Fn(usize) -> T,
{
    let (start, end) = window(ids, page)?;
    let mut conn = Connection::new(start > 0, end < ids.len());
    conn.edges
        .extend((start..end).map(|i| Edge::new(encode_cursor(ids[i]), make(i))));
    Ok(conn)
}

// ---------------------------------------------------------------- filters

fn order_fields<'a>(ds: &'a Dataset, o: &'a Order) -> impl Fn(&str) -> Option<FieldValue> + 'a {
    move |field| {
        Some(match field {
            "created_at" => FieldValue::Date(Some(o.created_at)),
            "processed_at" => FieldValue::Date(Some(o.processed_at)),
            "updated_at" => FieldValue::Date(Some(o.updated_at)),
            "status" => FieldValue::Keyword(if o.cancelled_at.is_some() {
                vec!["cancelled".into(), "closed".into()]
            } else if o.closed_at.is_some() {
                vec!["closed".into()]
            } else {
                vec!["open".into()]
            }),
            "fulfillment_status" => FieldValue::Keyword(
                match o.fulfillment_status {
                    FulfillmentStatus::Fulfilled => vec!["fulfilled", "shipped"],
                    FulfillmentStatus::Unfulfilled => vec!["unfulfilled", "unshipped"],
                    FulfillmentStatus::PartiallyFulfilled => vec!["partial", "partially_fulfilled"],
                }
                .into_iter()
                .map(String::from)
                .collect(),
            ),
            "financial_status" => FieldValue::Keyword(vec![
                match o.financial_status {
                    FinancialStatus::Authorized => "authorized",
                    FinancialStatus::Paid => "paid",
                    FinancialStatus::PartiallyRefunded => "partially_refunded",
                    FinancialStatus::Pending => "pending",
                    FinancialStatus::Refunded => "refunded",
                    FinancialStatus::Voided => "voided",
                }
                .to_string(),
            ]),
            "email" => FieldValue::Keyword(vec![o.email.clone()]),
            "name" => FieldValue::Keyword(vec![o.name(), o.number.to_string()]),
            "id" => FieldValue::Number(o.id as i64),
            "customer_id" => FieldValue::Number(o.customer_id.map_or(-1, |c| c as i64)),
            "sku" => FieldValue::Keyword(o.line_items.iter().map(|l| l.sku.clone()).collect()),
            "" => FieldValue::Text(format!(
                "{} {} {}",
                o.name(),
                o.email,
                o.customer_id
                    .and_then(|c| ds.customer(c))
                    .map(|c| c.display_name())
                    .unwrap_or_default()
            )),
            _ => return None,
        })
    }
}

/// Indices of the orders visible to the request that match `query`, sorted.
fn select_orders(
    api: &ApiContext,
    candidates: impl Iterator<Item = usize>,
    query: Option<&str>,
    sort: OrderSortKeys,
    reverse: bool,
) -> Vec<usize> {
    let ds = &api.dataset;
    let q = SearchQuery::parse(query.unwrap_or(""));
    let offset = ds.shop.utc_offset_seconds;
    let mut v: Vec<usize> = candidates
        .filter(|&i| {
            let o = &ds.orders[i];
            api.order_visible(o) && q.matches(offset, order_fields(ds, o))
        })
        .collect();
    let name_of = |i: usize| {
        ds.orders[i]
            .customer_id
            .and_then(|c| ds.customer(c))
            .map(|c| c.display_name())
            .unwrap_or_default()
    };
    match sort {
        OrderSortKeys::CreatedAt | OrderSortKeys::ProcessedAt => {
            v.sort_by_key(|&i| (ds.orders[i].created_at, ds.orders[i].id))
        }
        OrderSortKeys::Id | OrderSortKeys::Relevance | OrderSortKeys::OrderNumber => {
            v.sort_by_key(|&i| ds.orders[i].id)
        }
        OrderSortKeys::TotalPrice => v.sort_by_key(|&i| (ds.orders[i].total, ds.orders[i].id)),
        OrderSortKeys::UpdatedAt => v.sort_by_key(|&i| (ds.orders[i].updated_at, ds.orders[i].id)),
        OrderSortKeys::CustomerName => v.sort_by_cached_key(|&i| (name_of(i), ds.orders[i].id)),
    }
    if reverse {
        v.reverse();
    }
    v
}

fn select_products(
    api: &ApiContext,
    query: Option<&str>,
    sort: ProductSortKeys,
    reverse: bool,
) -> Vec<usize> {
    let ds = &api.dataset;
    let q = SearchQuery::parse(query.unwrap_or(""));
    let offset = ds.shop.utc_offset_seconds;
    let mut v: Vec<usize> = (0..ds.products.len())
        .filter(|&i| {
            let p = &ds.products[i];
            q.matches(offset, |field| {
                Some(match field {
                    "title" => FieldValue::Text(p.title.clone()),
                    "handle" => FieldValue::Keyword(vec![p.handle.clone()]),
                    "product_type" => FieldValue::Keyword(vec![p.product_type.clone()]),
                    "vendor" => FieldValue::Keyword(vec![p.vendor.clone()]),
                    "status" => FieldValue::Keyword(vec![
                        match p.status {
                            ProductStatus::Active => "active",
                            ProductStatus::Archived => "archived",
                            ProductStatus::Draft => "draft",
                        }
                        .to_string(),
                    ]),
                    "created_at" => FieldValue::Date(Some(p.created_at)),
                    "updated_at" => FieldValue::Date(Some(p.updated_at)),
                    "id" => FieldValue::Number(p.id as i64),
                    "inventory_total" => FieldValue::Number(p.total_inventory()),
                    "sku" => {
                        FieldValue::Keyword(p.variants.iter().map(|v| v.sku.clone()).collect())
                    }
                    "" => FieldValue::Text(format!("{} {} {}", p.title, p.product_type, p.vendor)),
                    _ => return None,
                })
            })
        })
        .collect();
    let p = |i: usize| &ds.products[i];
    match sort {
        ProductSortKeys::Title => v.sort_by_cached_key(|&i| (p(i).title.to_lowercase(), p(i).id)),
        ProductSortKeys::CreatedAt => v.sort_by_key(|&i| (p(i).created_at, p(i).id)),
        ProductSortKeys::UpdatedAt => v.sort_by_key(|&i| (p(i).updated_at, p(i).id)),
        ProductSortKeys::Id | ProductSortKeys::Relevance => v.sort_by_key(|&i| p(i).id),
        ProductSortKeys::InventoryTotal => v.sort_by_key(|&i| (p(i).total_inventory(), p(i).id)),
        ProductSortKeys::ProductType => {
            v.sort_by_cached_key(|&i| (p(i).product_type.clone(), p(i).id))
        }
        ProductSortKeys::Vendor => v.sort_by_cached_key(|&i| (p(i).vendor.clone(), p(i).id)),
    }
    if reverse {
        v.reverse();
    }
    v
}

fn customer_order_count(api: &ApiContext, customer_id: u64) -> usize {
    api.dataset
        .orders_of_customer(customer_id)
        .filter(|o| o.created_at <= api.now)
        .count()
}

fn select_customers(
    api: &ApiContext,
    query: Option<&str>,
    sort: CustomerSortKeys,
    reverse: bool,
) -> Vec<usize> {
    let ds = &api.dataset;
    let q = SearchQuery::parse(query.unwrap_or(""));
    let offset = ds.shop.utc_offset_seconds;
    let mut v: Vec<usize> = (0..ds.customers.len())
        .filter(|&i| {
            let c = &ds.customers[i];
            q.matches(offset, |field| {
                Some(match field {
                    "email" => FieldValue::Keyword(vec![c.email.clone()]),
                    "first_name" => FieldValue::Keyword(vec![c.first_name.clone()]),
                    "last_name" => FieldValue::Keyword(vec![c.last_name.clone()]),
                    "phone" => FieldValue::Keyword(c.phone.iter().cloned().collect()),
                    "created_at" => FieldValue::Date(Some(c.created_at)),
                    "updated_at" => FieldValue::Date(Some(ds.customer_updated_at(c, api.now))),
                    "id" => FieldValue::Number(c.id as i64),
                    "orders_count" => FieldValue::Number(customer_order_count(api, c.id) as i64),
                    "" => FieldValue::Text(format!("{} {}", c.display_name(), c.email)),
                    _ => return None,
                })
            })
        })
        .collect();
    let c = |i: usize| &ds.customers[i];
    match sort {
        CustomerSortKeys::CreatedAt => v.sort_by_key(|&i| (c(i).created_at, c(i).id)),
        CustomerSortKeys::UpdatedAt => {
            v.sort_by_key(|&i| (ds.customer_updated_at(c(i), api.now), c(i).id))
        }
        CustomerSortKeys::Id | CustomerSortKeys::Relevance => v.sort_by_key(|&i| c(i).id),
        CustomerSortKeys::Name => v.sort_by_cached_key(|&i| (c(i).display_name(), c(i).id)),
    }
    if reverse {
        v.reverse();
    }
    v
}

// ---------------------------------------------------------------- root

/// The `QueryRoot`.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The shop the token belongs to.
    async fn shop(&self, ctx: &Context<'_>) -> Result<ShopObject> {
        Ok(ShopObject {
            ds: api(ctx)?.dataset.clone(),
        })
    }

    /// Number of products matching `query`.
    async fn products_count(
        &self,
        ctx: &Context<'_>,
        query: Option<String>,
        limit: MaybeUndefined<i32>,
    ) -> Result<Option<Count>> {
        let api = api(ctx)?;
        api.require("productsCount", "products")?;
        Ok(Some(count(
            select_products(api, query.as_deref(), ProductSortKeys::Id, false).len(),
            &limit,
        )))
    }

    /// Number of orders matching `query`.
    async fn orders_count(
        &self,
        ctx: &Context<'_>,
        query: Option<String>,
        limit: MaybeUndefined<i32>,
    ) -> Result<Option<Count>> {
        let api = api(ctx)?;
        api.require("ordersCount", "orders")?;
        let n = select_orders(
            api,
            0..api.dataset.orders.len(),
            query.as_deref(),
            OrderSortKeys::Id,
            false,
        )
        .len();
        Ok(Some(count(n, &limit)))
    }

    /// Number of customers matching `query`.
    async fn customers_count(
        &self,
        ctx: &Context<'_>,
        query: Option<String>,
        limit: MaybeUndefined<i32>,
    ) -> Result<Option<Count>> {
        let api = api(ctx)?;
        api.require("customersCount", "customers")?;
        Ok(Some(count(
            select_customers(api, query.as_deref(), CustomerSortKeys::Id, false).len(),
            &limit,
        )))
    }

    /// Orders.
    #[allow(clippy::too_many_arguments)]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        query: Option<String>,
        #[graphql(default_with = "Some(false)")] reverse: Option<bool>,
        #[graphql(default_with = "Some(OrderSortKeys::ProcessedAt)")] sort_key: Option<
            OrderSortKeys,
        >,
    ) -> Result<Connection<String, OrderObject>> {
        let api = api(ctx)?;
        api.require("orders", "orders")?;
        let reverse = reverse.unwrap_or(false);
        let sort_key = sort_key.unwrap_or(OrderSortKeys::ProcessedAt);
        let v = select_orders(
            api,
            0..api.dataset.orders.len(),
            query.as_deref(),
            sort_key,
            reverse,
        );
        let ids: Vec<u64> = v.iter().map(|&i| api.dataset.orders[i].id).collect();
        connect(
            &ids,
            &Page {
                first,
                last,
                after,
                before,
            },
            |k| OrderObject {
                ds: api.dataset.clone(),
                i: v[k],
            },
        )
    }

    /// One order by GID.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<OrderObject>> {
        let api = api(ctx)?;
        api.require("order", "orders")?;
        let ds = &api.dataset;
        Ok(parse_gid("Order", &id)
            .and_then(|n| ds.orders.binary_search_by_key(&n, |o| o.id).ok())
            .filter(|&i| api.order_visible(&ds.orders[i]))
            .map(|i| OrderObject { ds: ds.clone(), i }))
    }

    /// Products.
    #[allow(clippy::too_many_arguments)]
    async fn products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        query: Option<String>,
        #[graphql(default_with = "Some(false)")] reverse: Option<bool>,
        #[graphql(default_with = "Some(ProductSortKeys::Id)")] sort_key: Option<ProductSortKeys>,
    ) -> Result<Connection<String, ProductObject>> {
        let api = api(ctx)?;
        api.require("products", "products")?;
        let reverse = reverse.unwrap_or(false);
        let sort_key = sort_key.unwrap_or(ProductSortKeys::Id);
        let v = select_products(api, query.as_deref(), sort_key, reverse);
        let ids: Vec<u64> = v.iter().map(|&i| api.dataset.products[i].id).collect();
        connect(
            &ids,
            &Page {
                first,
                last,
                after,
                before,
            },
            |k| ProductObject {
                ds: api.dataset.clone(),
                i: v[k],
            },
        )
    }

    /// One product by GID.
    async fn product(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ProductObject>> {
        let api = api(ctx)?;
        api.require("product", "products")?;
        let ds = &api.dataset;
        Ok(parse_gid("Product", &id)
            .and_then(|n| ds.products.binary_search_by_key(&n, |p| p.id).ok())
            .map(|i| ProductObject { ds: ds.clone(), i }))
    }

    /// Customers.
    #[allow(clippy::too_many_arguments)]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        query: Option<String>,
        #[graphql(default_with = "Some(false)")] reverse: Option<bool>,
        #[graphql(default_with = "Some(CustomerSortKeys::Id)")] sort_key: Option<CustomerSortKeys>,
    ) -> Result<Connection<String, CustomerObject>> {
        let api = api(ctx)?;
        api.require("customers", "customers")?;
        let reverse = reverse.unwrap_or(false);
        let sort_key = sort_key.unwrap_or(CustomerSortKeys::Id);
        let v = select_customers(api, query.as_deref(), sort_key, reverse);
        let ids: Vec<u64> = v.iter().map(|&i| api.dataset.customers[i].id).collect();
        connect(
            &ids,
            &Page {
                first,
                last,
                after,
                before,
            },
            |k| CustomerObject {
                ds: api.dataset.clone(),
                i: v[k],
            },
        )
    }

    /// A bulk operation of this shop by GID.
    async fn bulk_operation(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Option<BulkOperationObject>> {
        crate::bulk::find(ctx, &id)
    }

    /// The shop's most recent bulk operation of `type`.
    async fn current_bulk_operation(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "type", default_with = "Some(BulkOperationType::Query)")] kind: Option<
            BulkOperationType,
        >,
    ) -> Result<Option<BulkOperationObject>> {
        crate::bulk::current(ctx, kind.unwrap_or(BulkOperationType::Query))
    }

    /// The shop's webhook subscriptions.
    #[allow(clippy::too_many_arguments)]
    async fn webhook_subscriptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        #[graphql(default_with = "Some(false)")] reverse: Option<bool>,
        #[graphql(default_with = "Some(WebhookSubscriptionSortKeys::CreatedAt)")] sort_key: Option<
            WebhookSubscriptionSortKeys,
        >,
        topics: Option<Vec<WebhookSubscriptionTopic>>,
        uri: Option<String>,
        format: Option<WebhookSubscriptionFormat>,
        query: Option<String>,
    ) -> Result<Connection<String, WebhookSubscriptionObject>> {
        // Ids grow with creation: both sort keys give the same order.
        let _ = (sort_key, format, query);
        crate::subscriptions::list(
            ctx,
            ListArgs {
                first,
                after,
                last,
                before,
                reverse: reverse.unwrap_or(false),
                topics,
                uri,
            },
        )
    }

    /// One webhook subscription of this shop by GID.
    async fn webhook_subscription(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Option<WebhookSubscriptionObject>> {
        crate::subscriptions::find(ctx, &id)
    }

    /// One customer by GID.
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> Result<Option<CustomerObject>> {
        let api = api(ctx)?;
        api.require("customer", "customers")?;
        let ds = &api.dataset;
        Ok(parse_gid("Customer", &id)
            .and_then(|n| ds.customers.binary_search_by_key(&n, |c| c.id).ok())
            .map(|i| CustomerObject { ds: ds.clone(), i }))
    }
}

// ---------------------------------------------------------------- objects

/// `Shop`.
pub struct ShopObject {
    ds: Arc<Dataset>,
}

#[Object(name = "Shop")]
impl ShopObject {
    async fn id(&self) -> ID {
        gid("Shop", self.ds.shop.id)
    }
    async fn name(&self) -> &str {
        &self.ds.shop.name
    }
    async fn email(&self) -> &str {
        &self.ds.shop.email
    }
    async fn contact_email(&self) -> &str {
        &self.ds.shop.email
    }
    async fn myshopify_domain(&self) -> &str {
        &self.ds.shop.myshopify_domain
    }
    async fn url(&self) -> Url {
        Url(format!("https://{}", self.ds.shop.myshopify_domain))
    }
    async fn currency_code(&self) -> CurrencyCode {
        CurrencyCode::from_code(&self.ds.shop.currency_code)
    }
    async fn iana_timezone(&self) -> &str {
        &self.ds.shop.iana_timezone
    }
    async fn currency_formats(&self) -> CurrencyFormats {
        let shop = &self.ds.shop;
        let with_currency = format!("{} {}", shop.money_format, shop.currency_code);
        CurrencyFormats {
            money_format: FormattedString(shop.money_format.clone()),
            money_in_emails_format: shop.money_format.clone(),
            money_with_currency_format: FormattedString(with_currency.clone()),
            money_with_currency_in_emails_format: with_currency,
        }
    }
    async fn timezone_abbreviation(&self) -> &str {
        &self.ds.shop.timezone_abbreviation
    }
    /// Offset like `-0700`.
    async fn timezone_offset(&self) -> String {
        let o = self.ds.shop.utc_offset_seconds;
        let sign = if o < 0 { '-' } else { '+' };
        let a = o.unsigned_abs();
        format!("{sign}{:02}{:02}", a / 3600, (a % 3600) / 60)
    }
    async fn timezone_offset_minutes(&self) -> i32 {
        self.ds.shop.utc_offset_seconds / 60
    }
    async fn created_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.ds.shop.created_at)
    }
    async fn plan(&self) -> ShopPlan {
        ShopPlan {
            public_display_name: self.ds.shop.plan_display_name.clone(),
            partner_development: self.ds.shop.partner_development,
            shopify_plus: self.ds.shop.shopify_plus,
        }
    }
}

/// `Order`.
pub struct OrderObject {
    ds: Arc<Dataset>,
    i: usize,
}

impl OrderObject {
    fn o(&self) -> &Order {
        &self.ds.orders[self.i]
    }
}

#[Object(name = "Order")]
impl OrderObject {
    async fn id(&self) -> ID {
        gid("Order", self.o().id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.o().id)
    }
    async fn name(&self) -> String {
        self.o().name()
    }
    async fn email(&self) -> Option<&str> {
        Some(&self.o().email)
    }
    async fn created_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.o().created_at)
    }
    async fn processed_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.o().processed_at)
    }
    async fn updated_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.o().updated_at)
    }
    async fn cancelled_at(&self) -> Option<DateTimeScalar> {
        self.o().cancelled_at.map(DateTimeScalar)
    }
    async fn closed_at(&self) -> Option<DateTimeScalar> {
        self.o().closed_at.map(DateTimeScalar)
    }
    async fn closed(&self) -> bool {
        self.o().closed_at.is_some()
    }
    async fn test(&self) -> bool {
        false
    }
    async fn currency_code(&self) -> CurrencyCode {
        CurrencyCode::from_code(&self.ds.shop.currency_code)
    }
    async fn display_financial_status(&self) -> Option<OrderDisplayFinancialStatus> {
        Some(self.o().financial_status.into())
    }
    async fn display_fulfillment_status(&self) -> OrderDisplayFulfillmentStatus {
        self.o().fulfillment_status.into()
    }
    async fn total_price_set(&self) -> MoneyBag {
        money_bag(&self.ds, self.o().total)
    }
    async fn subtotal_price_set(&self) -> Option<MoneyBag> {
        Some(money_bag(&self.ds, self.o().subtotal))
    }
    async fn total_refunded_set(&self) -> MoneyBag {
        money_bag(&self.ds, self.o().total_refunded)
    }
    async fn total_tax_set(&self) -> Option<MoneyBag> {
        Some(money_bag(&self.ds, self.o().tax))
    }
    async fn total_shipping_price_set(&self) -> MoneyBag {
        money_bag(&self.ds, self.o().shipping)
    }
    async fn total_discounts_set(&self) -> Option<MoneyBag> {
        Some(money_bag(&self.ds, self.o().total_discounts))
    }
    async fn subtotal_line_items_quantity(&self) -> i64 {
        self.o().units()
    }
    async fn tags(&self) -> Vec<String> {
        self.o().tags()
    }
    async fn note(&self) -> Option<&str> {
        self.o().note.as_deref()
    }
    async fn source_name(&self) -> Option<&str> {
        Some(self.o().source_name())
    }
    /// Refunds (a list, not a connection, as on Shopify).
    async fn refunds(&self, first: Option<i32>) -> Vec<RefundObject> {
        let mut refunds = self.o().refunds();
        if let Some(n) = first {
            refunds.truncate(n.max(0) as usize);
        }
        refunds
            .into_iter()
            .map(|refund| RefundObject {
                ds: self.ds.clone(),
                refund,
            })
            .collect()
    }
    async fn customer(&self) -> Option<CustomerObject> {
        let id = self.o().customer_id?;
        let i = self.ds.customers.binary_search_by_key(&id, |c| c.id).ok()?;
        Some(CustomerObject {
            ds: self.ds.clone(),
            i,
        })
    }
    async fn line_items(
        &self,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        #[graphql(default_with = "Some(false)")] reverse: Option<bool>,
    ) -> Result<Connection<String, LineItemObject>> {
        let mut idx: Vec<usize> = (0..self.o().line_items.len()).collect();
        if reverse.unwrap_or(false) {
            idx.reverse();
        }
        let ids: Vec<u64> = idx.iter().map(|&k| self.o().line_items[k].id).collect();
        connect(
            &ids,
            &Page {
                first,
                last,
                after,
                before,
            },
            |k| LineItemObject {
                ds: self.ds.clone(),
                order: self.i,
                line: idx[k],
            },
        )
    }
}

/// `LineItem`.
pub struct LineItemObject {
    ds: Arc<Dataset>,
    order: usize,
    line: usize,
}

impl LineItemObject {
    fn l(&self) -> &crate::data::LineItem {
        &self.ds.orders[self.order].line_items[self.line]
    }
    fn discount(&self) -> Cents {
        self.ds.orders[self.order]
            .line_discounts()
            .get(self.line)
            .copied()
            .unwrap_or(0)
    }
}

/// `Refund`.
pub struct RefundObject {
    ds: Arc<Dataset>,
    refund: crate::data::Refund,
}

#[Object(name = "Refund")]
impl RefundObject {
    async fn id(&self) -> ID {
        gid("Refund", self.refund.id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.refund.id)
    }
    async fn created_at(&self) -> Option<DateTimeScalar> {
        Some(DateTimeScalar(self.refund.created_at))
    }
    async fn updated_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.refund.created_at)
    }
    async fn note(&self) -> Option<&str> {
        self.refund.note.as_deref()
    }
    async fn total_refunded_set(&self) -> MoneyBag {
        money_bag(&self.ds, self.refund.amount)
    }
}

#[Object(name = "LineItem")]
impl LineItemObject {
    async fn id(&self) -> ID {
        gid("LineItem", self.l().id)
    }
    async fn title(&self) -> &str {
        &self.l().title
    }
    async fn name(&self) -> String {
        match &self.l().variant_title {
            Some(v) => format!("{} - {v}", self.l().title),
            None => self.l().title.clone(),
        }
    }
    async fn variant_title(&self) -> Option<&str> {
        self.l().variant_title.as_deref()
    }
    async fn quantity(&self) -> i64 {
        self.l().quantity
    }
    /// Units ordered less those refunded or removed.
    async fn current_quantity(&self) -> i64 {
        self.ds.orders[self.order].current_quantity(self.l().id)
    }
    /// Units that can still be refunded (those still on the order).
    async fn refundable_quantity(&self) -> i64 {
        self.ds.orders[self.order].current_quantity(self.l().id)
    }
    async fn sku(&self) -> Option<&str> {
        Some(&self.l().sku)
    }
    async fn original_unit_price_set(&self) -> MoneyBag {
        money_bag(&self.ds, self.l().unit_price)
    }
    async fn original_total_set(&self) -> MoneyBag {
        money_bag(&self.ds, self.l().unit_price * self.l().quantity)
    }
    /// The line's share of the order's discounts.
    async fn total_discount_set(&self) -> MoneyBag {
        money_bag(&self.ds, self.discount())
    }
    /// The line's total after its discounts.
    async fn discounted_total_set(&self) -> MoneyBag {
        money_bag(
            &self.ds,
            self.l().unit_price * self.l().quantity - self.discount(),
        )
    }
    async fn variant(&self) -> Option<VariantObject> {
        let l = self.l();
        let product = self
            .ds
            .products
            .binary_search_by_key(&l.product_id, |p| p.id)
            .ok()?;
        let variant = self.ds.products[product]
            .variants
            .iter()
            .position(|v| v.id == l.variant_id)?;
        Some(VariantObject {
            ds: self.ds.clone(),
            product,
            variant,
        })
    }
    async fn product(&self) -> Option<ProductObject> {
        let id = self.l().product_id;
        let i = self.ds.products.binary_search_by_key(&id, |p| p.id).ok()?;
        Some(ProductObject {
            ds: self.ds.clone(),
            i,
        })
    }
}

/// `Product`.
pub struct ProductObject {
    ds: Arc<Dataset>,
    i: usize,
}

impl ProductObject {
    fn p(&self) -> &crate::data::Product {
        &self.ds.products[self.i]
    }
}

#[Object(name = "Product")]
impl ProductObject {
    async fn id(&self) -> ID {
        gid("Product", self.p().id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.p().id)
    }
    async fn title(&self) -> &str {
        &self.p().title
    }
    async fn handle(&self) -> &str {
        &self.p().handle
    }
    async fn status(&self) -> ProductStatusEnum {
        self.p().status.into()
    }
    async fn product_type(&self) -> &str {
        &self.p().product_type
    }
    async fn vendor(&self) -> &str {
        &self.p().vendor
    }
    async fn total_inventory(&self) -> i64 {
        self.p().total_inventory()
    }
    async fn created_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.p().created_at)
    }
    async fn updated_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.p().updated_at)
    }
    async fn price_range_v2(&self) -> ProductPriceRangeV2 {
        ProductPriceRangeV2 {
            min_variant_price: money(&self.ds, self.p().min_price()),
            max_variant_price: money(&self.ds, self.p().max_price()),
        }
    }
    async fn variants(
        &self,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, VariantObject>> {
        let ids: Vec<u64> = self.p().variants.iter().map(|v| v.id).collect();
        connect(
            &ids,
            &Page {
                first,
                last,
                after,
                before,
            },
            |k| VariantObject {
                ds: self.ds.clone(),
                product: self.i,
                variant: k,
            },
        )
    }
}

/// `ProductVariant`.
pub struct VariantObject {
    ds: Arc<Dataset>,
    product: usize,
    variant: usize,
}

impl VariantObject {
    fn v(&self) -> &crate::data::Variant {
        &self.ds.products[self.product].variants[self.variant]
    }
}

#[Object(name = "ProductVariant")]
impl VariantObject {
    async fn id(&self) -> ID {
        gid("ProductVariant", self.v().id)
    }
    async fn title(&self) -> &str {
        &self.v().title
    }
    async fn sku(&self) -> Option<&str> {
        Some(&self.v().sku)
    }
    /// The price, a `Money` string like `"24.99"`.
    async fn price(&self) -> MoneyScalar {
        MoneyScalar(self.v().price)
    }
    async fn inventory_quantity(&self) -> Option<i64> {
        Some(self.v().inventory_quantity)
    }
}

/// `Customer`.
pub struct CustomerObject {
    ds: Arc<Dataset>,
    i: usize,
}

impl CustomerObject {
    fn c(&self) -> &crate::data::Customer {
        &self.ds.customers[self.i]
    }
}

#[Object(name = "Customer")]
impl CustomerObject {
    async fn id(&self) -> ID {
        gid("Customer", self.c().id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.c().id)
    }
    async fn email(&self) -> Option<&str> {
        Some(&self.c().email)
    }
    async fn default_email_address(&self) -> Option<CustomerEmailAddress> {
        Some(CustomerEmailAddress {
            email_address: self.c().email.clone(),
        })
    }
    async fn first_name(&self) -> Option<&str> {
        Some(&self.c().first_name)
    }
    async fn last_name(&self) -> Option<&str> {
        Some(&self.c().last_name)
    }
    async fn display_name(&self) -> String {
        self.c().display_name()
    }
    async fn phone(&self) -> Option<&str> {
        self.c().phone.as_deref()
    }
    async fn default_phone_number(&self) -> Option<CustomerPhoneNumber> {
        self.c()
            .phone
            .clone()
            .map(|phone_number| CustomerPhoneNumber { phone_number })
    }
    async fn created_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.c().created_at)
    }
    /// The customer's last change: their latest order the API shows, or
    /// their creation.
    async fn updated_at(&self, ctx: &Context<'_>) -> Result<DateTimeScalar> {
        let api = api(ctx)?;
        Ok(DateTimeScalar(
            self.ds.customer_updated_at(self.c(), api.now),
        ))
    }
    async fn number_of_orders(&self, ctx: &Context<'_>) -> Result<UnsignedInt64> {
        Ok(UnsignedInt64(
            customer_order_count(api(ctx)?, self.c().id) as u64
        ))
    }
    async fn amount_spent(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        let api = api(ctx)?;
        let spent: Cents = self
            .ds
            .orders_of_customer(self.c().id)
            .filter(|o| o.created_at <= api.now)
            .map(|o| o.total - o.total_refunded)
            .sum();
        Ok(money(&self.ds, spent))
    }
    #[allow(clippy::too_many_arguments)]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        query: Option<String>,
        #[graphql(default_with = "Some(false)")] reverse: Option<bool>,
        #[graphql(default_with = "Some(OrderSortKeys::Id)")] sort_key: Option<OrderSortKeys>,
    ) -> Result<Connection<String, OrderObject>> {
        let api = api(ctx)?;
        let id = self.c().id;
        let reverse = reverse.unwrap_or(false);
        let sort_key = sort_key.unwrap_or(OrderSortKeys::Id);
        let candidates =
            (0..self.ds.orders.len()).filter(|&i| self.ds.orders[i].customer_id == Some(id));
        let v = select_orders(api, candidates, query.as_deref(), sort_key, reverse);
        let ids: Vec<u64> = v.iter().map(|&i| self.ds.orders[i].id).collect();
        connect(
            &ids,
            &Page {
                first,
                last,
                after,
                before,
            },
            |k| OrderObject {
                ds: self.ds.clone(),
                i: v[k],
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let ids: Vec<u64> = (1..=10).collect();
        let p = |first, last, after: Option<u64>, before: Option<u64>| Page {
            first,
            last,
            after: after.map(encode_cursor),
            before: before.map(encode_cursor),
        };
        assert_eq!(window(&ids, &p(Some(3), None, None, None)).unwrap(), (0, 3));
        assert_eq!(
            window(&ids, &p(Some(3), None, Some(3), None)).unwrap(),
            (3, 6)
        );
        assert_eq!(
            window(&ids, &p(Some(30), None, Some(8), None)).unwrap(),
            (8, 10)
        );
        assert_eq!(
            window(&ids, &p(None, Some(2), None, None)).unwrap(),
            (8, 10)
        );
        assert_eq!(
            window(&ids, &p(None, Some(2), None, Some(5))).unwrap(),
            (2, 4)
        );
        assert!(window(&ids, &p(None, None, None, None)).is_err());
        assert!(window(&ids, &p(Some(251), None, None, None)).is_err());
        assert!(window(&ids, &p(Some(1), None, Some(99), None)).is_err());
        assert!(decode_cursor("not a cursor").is_err());
        assert_eq!(parse_gid("Order", "gid://shopify/Order/12"), Some(12));
        assert_eq!(parse_gid("Order", "gid://shopify/Product/12"), None);
    }
}
