//! Shopify's Bulk Operations, for the store mirror's backfill: start a bulk
//! query, poll it, and stream its JSONL result into the mirror's records
//! in batches, with bounded memory.
//!
//! * Queries: [`orders_bulk_query`] (with [`orders_visible_since`] for the
//!   60-day cut without `read_all_orders`), [`PRODUCTS_BULK_QUERY`],
//!   [`CUSTOMERS_BULK_QUERY`].
//! * Calls on [`AdminClient`]: [`AdminClient::run_bulk_query`] (user errors
//!   become [`BulkError::Rejected`]), [`AdminClient::bulk_operation`],
//!   [`AdminClient::current_bulk_operation`],
//!   [`AdminClient::wait_for_bulk_operation`] and
//!   [`AdminClient::download_jsonl`], which streams the file (never held
//!   whole) through a [`JsonlParser`] and hands records to the caller in
//!   batches.
//! * Parsers: [`OrderParser`] (line items attached by `__parentId`),
//!   [`ProductParser`], [`CustomerParser`]. Money goes from Shopify's
//!   decimal strings through [`Amount`] into [`Money`] exactly. A line that
//!   is not what Shopify sends is an error naming its line number.
//!
//! The JSONL format (Shopify's): one object per line; each node of a
//! nested connection is its own line carrying `"__parentId"`, the GID of
//! its parent. With `groupObjects: true` (what [`AdminClient::run_bulk_query`]
//! asks for) children come right after their parent; the order parser
//! still accepts them anywhere (see [`OrderParser`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Days, SecondsFormat, Utc};
use hirecj_domain::mirror::{
    MirrorCustomer, MirrorLineItem, MirrorOrder, MirrorProduct, MirrorRefund, Money, ShopTimeZone,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::client::AdminClient;
use crate::domain::ShopDomain;
use crate::error::ShopifyError;
use crate::fetcher::{READ_ALL_ORDERS, VISIBILITY_WINDOW_DAYS};
use crate::money::Amount;
use hirecj_domain::Secret;

// ---------------------------------------------------------------- queries

/// The order fields the mirror keeps, line items as a nested connection
/// (their own JSONL lines) and refunds inline (a list, not a connection).
macro_rules! bulk_order_node {
    () => {
        "id name createdAt processedAt updatedAt cancelledAt closedAt \
         displayFinancialStatus displayFulfillmentStatus currencyCode email tags sourceName \
         subtotalPriceSet { shopMoney { amount } } \
         totalPriceSet { shopMoney { amount } } \
         totalDiscountsSet { shopMoney { amount } } \
         totalTaxSet { shopMoney { amount } } \
         totalRefundedSet { shopMoney { amount } } \
         customer { id displayName } \
         refunds { id createdAt note totalRefundedSet { shopMoney { amount } } } \
         lineItems { edges { node { id title variantTitle sku quantity currentQuantity \
         originalUnitPriceSet { shopMoney { amount } } \
         totalDiscountSet { shopMoney { amount } } \
         product { id } variant { id } } } }"
    };
}

/// The bulk query for products.
pub const PRODUCTS_BULK_QUERY: &str =
    "{ products { edges { node { id title status vendor productType createdAt updatedAt } } } }";

/// The bulk query for customers.
pub const CUSTOMERS_BULK_QUERY: &str = "{ customers { edges { node { id displayName defaultEmailAddress { emailAddress } createdAt updatedAt numberOfOrders amountSpent { amount } } } } }";

/// The mutation that starts a bulk query (variables `query`, `groupObjects`).
pub const RUN_BULK_QUERY: &str = "mutation RunBulkQuery($query: String!, $groupObjects: Boolean!) { bulkOperationRunQuery(query: $query, groupObjects: $groupObjects) { bulkOperation { ...BulkOperationFields } userErrors { field message code } } } fragment BulkOperationFields on BulkOperation { id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl }";

/// One bulk operation by id (variable `id`).
pub const BULK_OPERATION: &str = "query BulkOperation($id: ID!) { bulkOperation(id: $id) { id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl } }";

/// The shop's current (newest) bulk query.
pub const CURRENT_BULK_OPERATION: &str = "query CurrentBulkOperation { currentBulkOperation(type: QUERY) { id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl } }";

/// The bulk query for orders, all of them or those created at or after
/// `since` (`created_at:>='…Z'`, an exact instant).
pub fn orders_bulk_query(since: Option<DateTime<Utc>>) -> String {
    let args = match since {
        Some(t) => format!(
            "(query: \"created_at:>='{}'\", sortKey: CREATED_AT)",
            t.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        None => "(sortKey: CREATED_AT)".to_string(),
    };
    format!(
        "{{ orders{args} {{ edges {{ node {{ {} }} }} }} }}",
        bulk_order_node!()
    )
}

/// The search that selects what changed at or after `since` (a
/// reconcile's window).
fn updated_since(since: DateTime<Utc>) -> String {
    format!(
        "updated_at:>='{}'",
        since.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// The bulk query for the orders updated at or after `since` (a
/// reconcile: what a lost webhook would have brought).
pub fn orders_updated_bulk_query(since: DateTime<Utc>) -> String {
    format!(
        "{{ orders(query: \"{}\") {{ edges {{ node {{ {} }} }} }} }}",
        updated_since(since),
        bulk_order_node!()
    )
}

/// [`PRODUCTS_BULK_QUERY`] for the products updated at or after `since`.
pub fn products_updated_bulk_query(since: DateTime<Utc>) -> String {
    PRODUCTS_BULK_QUERY.replacen(
        "{ products {",
        &format!("{{ products(query: \"{}\") {{", updated_since(since)),
        1,
    )
}

/// [`CUSTOMERS_BULK_QUERY`] for the customers updated at or after `since`.
pub fn customers_updated_bulk_query(since: DateTime<Utc>) -> String {
    CUSTOMERS_BULK_QUERY.replacen(
        "{ customers {",
        &format!("{{ customers(query: \"{}\") {{", updated_since(since)),
        1,
    )
}

/// The bulk query listing every product's id: a reconcile compares them
/// with the mirror's to find deletions whose webhooks were lost.
pub const PRODUCT_IDS_BULK_QUERY: &str = "{ products { edges { node { id } } } }";

/// The bulk query listing every customer's id (see
/// [`PRODUCT_IDS_BULK_QUERY`]).
pub const CUSTOMER_IDS_BULK_QUERY: &str = "{ customers { edges { node { id } } } }";

/// The bulk query listing the ids of the orders created at or after
/// `since` (all of them when `None`; see [`PRODUCT_IDS_BULK_QUERY`]).
pub fn order_ids_bulk_query(since: Option<DateTime<Utc>>) -> String {
    match since {
        Some(t) => format!(
            "{{ orders(query: \"created_at:>='{}'\") {{ edges {{ node {{ id }} }} }} }}",
            t.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        None => "{ orders { edges { node { id } } } }".to_owned(),
    }
}

/// Where the orders an app may read begin: `None` when `read_all_orders`
/// is among `granted_scopes` (everything), else the shop's midnight 60
/// days before today, the same cut the fetcher uses. Shopify hides older
/// orders anyway; asking for them explicitly keeps the answer the same
/// whether or not the store enforces it.
pub fn orders_visible_since<S: AsRef<str>>(
    now: DateTime<Utc>,
    zone: ShopTimeZone,
    granted_scopes: &[S],
) -> Option<DateTime<Utc>> {
    if granted_scopes
        .iter()
        .any(|s| s.as_ref().trim() == READ_ALL_ORDERS)
    {
        return None;
    }
    let today = zone.day_of(now);
    let first = today
        .checked_sub_days(Days::new(VISIBILITY_WINDOW_DAYS))
        .unwrap_or(today);
    Some(zone.start_of(first))
}

// ---------------------------------------------------------------- operations

/// `BulkOperationStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BulkOperationStatus {
    /// Accepted, not started.
    Created,
    /// Running.
    Running,
    /// Done: `url` holds the result (none when nothing matched).
    Completed,
    /// Being canceled.
    Canceling,
    /// Canceled.
    Canceled,
    /// Failed; see `error_code`.
    Failed,
    /// The result is no longer available.
    Expired,
    /// A status this client does not know.
    #[serde(other)]
    Unknown,
}

impl BulkOperationStatus {
    /// Whether the operation will not change any more.
    pub fn is_finished(&self) -> bool {
        !matches!(self, Self::Created | Self::Running | Self::Canceling)
    }
}

/// A bulk operation as Shopify reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOperation {
    /// Its GID, e.g. `gid://shopify/BulkOperation/720918`.
    pub id: String,
    /// Where it stands.
    pub status: BulkOperationStatus,
    /// Why it failed (`ACCESS_DENIED`, `INTERNAL_SERVER_ERROR`, `TIMEOUT`).
    #[serde(default)]
    pub error_code: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it finished.
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    /// Lines written so far (Shopify's `UnsignedInt64`, sent as a string).
    #[serde(default, deserialize_with = "unsigned")]
    pub object_count: u64,
    /// Root objects written so far.
    #[serde(default, deserialize_with = "unsigned")]
    pub root_object_count: u64,
    /// Size of the result in bytes.
    #[serde(default, deserialize_with = "optional_unsigned")]
    pub file_size: Option<u64>,
    /// Where to download the result (a signed URL; no token is sent).
    #[serde(default)]
    pub url: Option<String>,
    /// What a failed operation produced before failing.
    #[serde(default)]
    pub partial_data_url: Option<String>,
}

fn unsigned<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(optional_unsigned(d)?.unwrap_or(0))
}

fn optional_unsigned<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(serde::de::Error::custom),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("not an unsigned integer")),
        Some(other) => Err(serde::de::Error::custom(format!(
            "not an unsigned integer: {other}"
        ))),
    }
}

/// One `BulkOperationUserError`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BulkUserError {
    /// The input path, e.g. `["query"]`.
    #[serde(default)]
    pub field: Option<Vec<String>>,
    /// Shopify's message.
    pub message: String,
    /// `INVALID`, `LIMIT_REACHED`, `OPERATION_IN_PROGRESS`.
    #[serde(default)]
    pub code: Option<String>,
}

/// A failed bulk operation step.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// The GraphQL call failed.
    #[error(transparent)]
    Shopify(#[from] ShopifyError),
    /// Shopify refused to start the operation (its `userErrors`).
    #[error("Shopify refused the bulk query: {}", .errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; "))]
    Rejected {
        /// The user errors.
        errors: Vec<BulkUserError>,
    },
    /// The operation ended without a result.
    #[error("the bulk operation {id} ended {status:?} (error code {error_code:?})")]
    Failed {
        /// Its GID.
        id: String,
        /// Its final status.
        status: BulkOperationStatus,
        /// Shopify's error code.
        error_code: Option<String>,
    },
    /// The operation was not found (another shop's, or expired).
    #[error("no bulk operation {0}")]
    NotFound(String),
    /// Waiting for the operation took longer than allowed.
    #[error("the bulk operation {0} did not finish in time")]
    WaitTimeout(String),
    /// The download could not be made or broke off.
    #[error("downloading the bulk result failed: {0}")]
    Download(String),
    /// The download sent nothing for longer than the idle timeout, or took
    /// longer than the overall cap.
    #[error("downloading the bulk result timed out")]
    DownloadTimeout,
    /// The result (or one line) is larger than allowed.
    #[error("the bulk result exceeds the size cap of {0} bytes")]
    TooLarge(u64),
    /// A line is not what Shopify sends.
    #[error("bulk result line {line}: {message}")]
    Parse {
        /// 1-based line number.
        line: u64,
        /// What was wrong.
        message: String,
    },
    /// The caller's batch consumer failed.
    #[error("storing a batch failed: {0}")]
    Sink(String),
}

impl BulkError {
    /// Whether Shopify refused because a bulk query is already running for
    /// the shop (wait for it or take it over with
    /// [`AdminClient::current_bulk_operation`]).
    pub fn is_in_progress(&self) -> bool {
        matches!(self, Self::Rejected { errors } if errors.iter().any(|e| e.code.as_deref() == Some("OPERATION_IN_PROGRESS")))
    }
}

/// Bounds on waiting for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkWait {
    /// Between two polls.
    pub poll_interval: Duration,
    /// Overall.
    pub timeout: Duration,
}

impl Default for BulkWait {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            timeout: Duration::from_secs(3600),
        }
    }
}

/// Bounds on downloading a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadLimits {
    /// Longest wait for the next bytes (and for the response headers).
    pub idle_timeout: Duration,
    /// The whole download.
    pub overall_timeout: Duration,
    /// Bytes at most.
    pub max_bytes: u64,
    /// Bytes of one line at most.
    pub max_line_bytes: usize,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            overall_timeout: Duration::from_secs(30 * 60),
            max_bytes: 20 * 1024 * 1024 * 1024,
            max_line_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What a download delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadSummary {
    /// Lines read.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Records handed to the consumer.
    pub records: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunData {
    bulk_operation_run_query: Option<RunPayload>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunPayload {
    bulk_operation: Option<BulkOperation>,
    #[serde(default)]
    user_errors: Vec<BulkUserError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OperationData {
    bulk_operation: Option<BulkOperation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrentData {
    current_bulk_operation: Option<BulkOperation>,
}

impl AdminClient {
    /// Starts bulk query `query` for `shop` with grouped output
    /// (`groupObjects: true`). Shopify's `userErrors` (an invalid query, a
    /// bulk query already running) become [`BulkError::Rejected`].
    pub async fn run_bulk_query(
        &self,
        shop: &ShopDomain,
        token: &Secret,
        query: &str,
    ) -> Result<BulkOperation, BulkError> {
        let data: RunData = self
            .query(
                shop,
                token,
                RUN_BULK_QUERY,
                json!({"query": query, "groupObjects": true}),
            )
            .await?;
        let payload = data
            .bulk_operation_run_query
            .ok_or_else(|| ShopifyError::Decode {
                message: "bulkOperationRunQuery returned nothing".to_owned(),
                request_id: None,
            })?;
        match payload.bulk_operation {
            Some(op) if payload.user_errors.is_empty() => Ok(op),
            _ => Err(BulkError::Rejected {
                errors: payload.user_errors,
            }),
        }
    }

    /// The bulk operation `id` of `shop`, `None` when Shopify has none.
    pub async fn bulk_operation(
        &self,
        shop: &ShopDomain,
        token: &Secret,
        id: &str,
    ) -> Result<Option<BulkOperation>, BulkError> {
        let data: OperationData = self
            .query(shop, token, BULK_OPERATION, json!({"id": id}))
            .await?;
        Ok(data.bulk_operation)
    }

    /// The newest bulk query of `shop` (running or not), e.g. to take over
    /// an operation started before a restart.
    pub async fn current_bulk_operation(
        &self,
        shop: &ShopDomain,
        token: &Secret,
    ) -> Result<Option<BulkOperation>, BulkError> {
        let data: CurrentData = self
            .query(shop, token, CURRENT_BULK_OPERATION, json!({}))
            .await?;
        Ok(data.current_bulk_operation)
    }

    /// Polls operation `id` until it finishes. `Ok` only for `COMPLETED`;
    /// any other end is [`BulkError::Failed`].
    pub async fn wait_for_bulk_operation(
        &self,
        shop: &ShopDomain,
        token: &Secret,
        id: &str,
        wait: BulkWait,
    ) -> Result<BulkOperation, BulkError> {
        let deadline = tokio::time::Instant::now() + wait.timeout;
        loop {
            let op = self
                .bulk_operation(shop, token, id)
                .await?
                .ok_or_else(|| BulkError::NotFound(id.to_owned()))?;
            if op.status == BulkOperationStatus::Completed {
                return Ok(op);
            }
            if op.status.is_finished() {
                return Err(BulkError::Failed {
                    id: op.id,
                    status: op.status,
                    error_code: op.error_code,
                });
            }
            if tokio::time::Instant::now() + wait.poll_interval > deadline {
                return Err(BulkError::WaitTimeout(id.to_owned()));
            }
            tokio::time::sleep(wait.poll_interval).await;
        }
    }

    /// Streams the JSONL at `url` (no token is sent: Shopify's result URLs
    /// are signed) through `parser`, handing its records to `sink` in
    /// batches of `batch_size` (the last may be smaller). Memory stays
    /// bounded by one chunk, one line and one batch (plus what `parser`
    /// holds). Each read waits at most `limits.idle_timeout`, the whole
    /// download `limits.overall_timeout`.
    pub async fn download_jsonl<P, F, Fut>(
        &self,
        url: &str,
        parser: &mut P,
        batch_size: usize,
        limits: DownloadLimits,
        mut sink: F,
    ) -> Result<DownloadSummary, BulkError>
    where
        P: JsonlParser,
        F: FnMut(Vec<P::Record>) -> Fut,
        Fut: Future<Output = Result<(), BulkError>>,
    {
        let batch_size = batch_size.max(1);
        let deadline = tokio::time::Instant::now() + limits.overall_timeout;
        let within =
            |d: Duration| d.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let request = self.http.get(url).timeout(limits.overall_timeout).send();
        let mut response = tokio::time::timeout(within(limits.idle_timeout), request)
            .await
            .map_err(|_| BulkError::DownloadTimeout)?
            .map_err(|e| BulkError::Download(download_error(&e)))?;
        if !response.status().is_success() {
            return Err(BulkError::Download(format!(
                "HTTP {}",
                response.status().as_u16()
            )));
        }
        let mut summary = DownloadSummary::default();
        let mut pending: Vec<u8> = Vec::new();
        let mut batch: Vec<P::Record> = Vec::with_capacity(batch_size);
        loop {
            let chunk = tokio::time::timeout(within(limits.idle_timeout), response.chunk())
                .await
                .map_err(|_| BulkError::DownloadTimeout)?
                .map_err(|e| BulkError::Download(download_error(&e)))?;
            let Some(chunk) = chunk else { break };
            summary.bytes += chunk.len() as u64;
            if summary.bytes > limits.max_bytes {
                return Err(BulkError::TooLarge(limits.max_bytes));
            }
            let mut rest: &[u8] = &chunk;
            while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
                let (line, tail) = rest.split_at(pos);
                rest = &tail[1..];
                let line = if pending.is_empty() {
                    line
                } else {
                    pending.extend_from_slice(line);
                    pending.as_slice()
                };
                summary.lines += 1;
                parser.push_line(summary.lines, line, &mut batch)?;
                pending.clear();
                while batch.len() >= batch_size {
                    let full: Vec<P::Record> = batch.drain(..batch_size).collect();
                    summary.records += full.len() as u64;
                    sink(full).await?;
                }
            }
            if pending.len() + rest.len() > limits.max_line_bytes {
                return Err(BulkError::TooLarge(limits.max_line_bytes as u64));
            }
            pending.extend_from_slice(rest);
        }
        if !pending.iter().all(u8::is_ascii_whitespace) {
            summary.lines += 1;
            parser.push_line(summary.lines, &pending, &mut batch)?;
        }
        parser.finish(&mut batch)?;
        while !batch.is_empty() {
            let n = batch.len().min(batch_size);
            let part: Vec<P::Record> = batch.drain(..n).collect();
            summary.records += part.len() as u64;
            sink(part).await?;
        }
        Ok(summary)
    }
}

/// The error without the URL (a signed link is a credential).
fn download_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    let text = e.to_string();
    match e.url() {
        Some(url) => text.replace(url.as_str(), "<bulk result URL>"),
        None => text,
    }
}

// ---------------------------------------------------------------- parsers

/// Turns JSONL lines into records.
pub trait JsonlParser {
    /// What it produces.
    type Record;

    /// Reads line `line` (1-based; blank lines are skipped), pushing the
    /// records it completes onto `out`.
    fn push_line(
        &mut self,
        line: u64,
        bytes: &[u8],
        out: &mut Vec<Self::Record>,
    ) -> Result<(), BulkError>;

    /// At the end of the file: pushes what is still held.
    fn finish(&mut self, out: &mut Vec<Self::Record>) -> Result<(), BulkError>;
}

fn parse_error(line: u64, message: impl Into<String>) -> BulkError {
    BulkError::Parse {
        line,
        message: message.into(),
    }
}

fn read_line(line: u64, bytes: &[u8]) -> Result<Option<Value>, BulkError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| parse_error(line, format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(parse_error(line, "not a JSON object"));
    }
    Ok(Some(value))
}

fn decode<T: DeserializeOwned>(line: u64, value: Value, what: &str) -> Result<T, BulkError> {
    serde_json::from_value(value).map_err(|e| parse_error(line, format!("not a {what}: {e}")))
}

/// The numeric id at the end of a GID of `kind`
/// (`gid://shopify/Order/450789469` → 450789469).
pub fn gid_number(gid: &str, kind: &str) -> Option<i64> {
    gid.strip_prefix("gid://shopify/")?
        .strip_prefix(kind)?
        .strip_prefix('/')?
        .split('?')
        .next()?
        .parse()
        .ok()
}

fn id_of(line: u64, gid: &str, kind: &str) -> Result<i64, BulkError> {
    gid_number(gid, kind).ok_or_else(|| parse_error(line, format!("`{gid}` is not a {kind} id")))
}

fn money(line: u64, amount: Amount) -> Result<Money, BulkError> {
    amount
        .to_money()
        .ok_or_else(|| parse_error(line, format!("amount {amount} is out of range")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MoneyV2 {
    amount: Amount,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MoneyBag {
    shop_money: MoneyV2,
}

fn bag(line: u64, b: Option<MoneyBag>) -> Result<Money, BulkError> {
    b.map_or(Ok(Money::ZERO), |b| money(line, b.shop_money.amount))
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOrder {
    id: String,
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
    display_financial_status: Option<String>,
    #[serde(default)]
    display_fulfillment_status: Option<String>,
    currency_code: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    source_name: Option<String>,
    #[serde(default)]
    subtotal_price_set: Option<MoneyBag>,
    total_price_set: MoneyBag,
    #[serde(default)]
    total_discounts_set: Option<MoneyBag>,
    #[serde(default)]
    total_tax_set: Option<MoneyBag>,
    #[serde(default)]
    total_refunded_set: Option<MoneyBag>,
    #[serde(default)]
    customer: Option<RawCustomerRef>,
    #[serde(default)]
    refunds: Vec<RawRefund>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCustomerRef {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRefund {
    id: String,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    total_refunded_set: Option<MoneyBag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLineItem {
    id: String,
    title: String,
    #[serde(default)]
    variant_title: Option<String>,
    #[serde(default)]
    sku: Option<String>,
    quantity: i64,
    #[serde(default)]
    current_quantity: Option<i64>,
    original_unit_price_set: MoneyBag,
    #[serde(default)]
    total_discount_set: Option<MoneyBag>,
    #[serde(default)]
    product: Option<IdOnly>,
    #[serde(default)]
    variant: Option<IdOnly>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

impl RawOrder {
    fn into_mirror(self, line: u64) -> Result<MirrorOrder, BulkError> {
        let refunds = self
            .refunds
            .into_iter()
            .map(|r| {
                Ok(MirrorRefund {
                    id: id_of(line, &r.id, "Refund")?,
                    created_at: r.created_at.unwrap_or(self.created_at),
                    amount: bag(line, r.total_refunded_set)?,
                    note: non_empty(r.note),
                })
            })
            .collect::<Result<Vec<_>, BulkError>>()?;
        Ok(MirrorOrder {
            id: id_of(line, &self.id, "Order")?,
            name: self.name,
            created_at: self.created_at,
            processed_at: self.processed_at,
            updated_at: self.updated_at,
            cancelled_at: self.cancelled_at,
            closed_at: self.closed_at,
            financial_status: self.display_financial_status,
            fulfillment_status: self.display_fulfillment_status,
            currency: self.currency_code,
            subtotal: bag(line, self.subtotal_price_set)?,
            total: money(line, self.total_price_set.shop_money.amount)?,
            total_discounts: bag(line, self.total_discounts_set)?,
            total_tax: bag(line, self.total_tax_set)?,
            total_refunded: bag(line, self.total_refunded_set)?,
            customer_id: match &self.customer {
                Some(c) => Some(id_of(line, &c.id, "Customer")?),
                None => None,
            },
            email: non_empty(self.email),
            customer_name: self.customer.and_then(|c| non_empty(c.display_name)),
            tags: self.tags,
            source_name: non_empty(self.source_name),
            line_items: Vec::new(),
            refunds,
        })
    }
}

impl RawLineItem {
    fn into_mirror(self, line: u64) -> Result<MirrorLineItem, BulkError> {
        Ok(MirrorLineItem {
            id: id_of(line, &self.id, "LineItem")?,
            product_id: match self.product {
                Some(p) => Some(id_of(line, &p.id, "Product")?),
                None => None,
            },
            variant_id: match self.variant {
                Some(v) => Some(id_of(line, &v.id, "ProductVariant")?),
                None => None,
            },
            title: self.title,
            variant_title: non_empty(self.variant_title),
            sku: non_empty(self.sku),
            quantity: self.quantity,
            current_quantity: self.current_quantity.unwrap_or(self.quantity),
            price: money(line, self.original_unit_price_set.shop_money.amount)?,
            discount: bag(line, self.total_discount_set)?,
        })
    }
}

/// Orders from the JSONL of [`orders_bulk_query`]: each order line, then
/// its line items (lines with `"__parentId"` naming the order).
///
/// An order is complete when the next order begins (or the file ends).
/// A line item whose parent is not the current order is not lost: if its
/// order comes later, it is attached then; if its order was already
/// delivered (or never comes), it is kept until the end and returned by
/// [`OrderParser::late_line_items`], for the caller to store by order id.
/// Shopify's grouped output (`groupObjects: true`) never needs this.
#[derive(Debug, Default)]
pub struct OrderParser {
    current: Option<MirrorOrder>,
    delivered: HashSet<i64>,
    held: HashMap<i64, Vec<MirrorLineItem>>,
    late: Vec<(i64, MirrorLineItem)>,
}

impl OrderParser {
    /// A parser at the start of a file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Line items whose order had already been delivered, or never came,
    /// as `(order id, line item)`; complete after [`JsonlParser::finish`].
    pub fn late_line_items(&self) -> &[(i64, MirrorLineItem)] {
        &self.late
    }
}

impl JsonlParser for OrderParser {
    type Record = MirrorOrder;

    fn push_line(
        &mut self,
        line: u64,
        bytes: &[u8],
        out: &mut Vec<MirrorOrder>,
    ) -> Result<(), BulkError> {
        let Some(mut value) = read_line(line, bytes)? else {
            return Ok(());
        };
        let parent = value.as_object_mut().and_then(|o| o.remove("__parentId"));
        match parent {
            None => {
                let mut order = decode::<RawOrder>(line, value, "order")?.into_mirror(line)?;
                if let Some(early) = self.held.remove(&order.id) {
                    order.line_items.extend(early);
                }
                if let Some(done) = self.current.replace(order) {
                    self.delivered.insert(done.id);
                    out.push(done);
                }
            }
            Some(Value::String(parent)) => {
                let order_id = id_of(line, &parent, "Order")?;
                let item = decode::<RawLineItem>(line, value, "line item")?.into_mirror(line)?;
                match &mut self.current {
                    Some(order) if order.id == order_id => order.line_items.push(item),
                    _ if self.delivered.contains(&order_id) => self.late.push((order_id, item)),
                    _ => self.held.entry(order_id).or_default().push(item),
                }
            }
            Some(other) => {
                return Err(parse_error(
                    line,
                    format!("`__parentId` is not a string: {other}"),
                ));
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<MirrorOrder>) -> Result<(), BulkError> {
        if let Some(done) = self.current.take() {
            self.delivered.insert(done.id);
            out.push(done);
        }
        for (order_id, items) in self.held.drain() {
            self.late.extend(items.into_iter().map(|i| (order_id, i)));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProduct {
    id: String,
    title: String,
    status: String,
    #[serde(default)]
    vendor: Option<String>,
    #[serde(default)]
    product_type: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Products from the JSONL of [`PRODUCTS_BULK_QUERY`] (children, if any,
/// are skipped).
#[derive(Debug, Default)]
pub struct ProductParser;

impl JsonlParser for ProductParser {
    type Record = MirrorProduct;

    fn push_line(
        &mut self,
        line: u64,
        bytes: &[u8],
        out: &mut Vec<MirrorProduct>,
    ) -> Result<(), BulkError> {
        let Some(value) = read_line(line, bytes)? else {
            return Ok(());
        };
        if value.get("__parentId").is_some() {
            return Ok(());
        }
        let p: RawProduct = decode(line, value, "product")?;
        out.push(MirrorProduct {
            id: id_of(line, &p.id, "Product")?,
            title: p.title,
            status: p.status,
            vendor: non_empty(p.vendor),
            product_type: non_empty(p.product_type),
            created_at: p.created_at,
            updated_at: p.updated_at,
        });
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<MirrorProduct>) -> Result<(), BulkError> {
        Ok(())
    }
}

/// The numeric ids of `kind` (`"Order"`, `"Product"`, `"Customer"`) from
/// the JSONL of an id-only bulk query such as
/// [`PRODUCT_IDS_BULK_QUERY`] (children, if any, are skipped).
#[derive(Debug)]
pub struct IdParser {
    kind: &'static str,
}

impl IdParser {
    /// A parser of `kind` ids.
    pub fn new(kind: &'static str) -> Self {
        Self { kind }
    }
}

impl JsonlParser for IdParser {
    type Record = i64;

    fn push_line(&mut self, line: u64, bytes: &[u8], out: &mut Vec<i64>) -> Result<(), BulkError> {
        let Some(value) = read_line(line, bytes)? else {
            return Ok(());
        };
        if value.get("__parentId").is_some() {
            return Ok(());
        }
        let gid = value
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| parse_error(line, "no `id`"))?;
        out.push(id_of(line, gid, self.kind)?);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<i64>) -> Result<(), BulkError> {
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCustomer {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    default_email_address: Option<RawEmail>,
    #[serde(default)]
    email: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(default, deserialize_with = "unsigned")]
    number_of_orders: u64,
    #[serde(default)]
    amount_spent: Option<MoneyV2>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEmail {
    #[serde(default)]
    email_address: Option<String>,
}

/// Customers from the JSONL of [`CUSTOMERS_BULK_QUERY`] (children, if
/// any, are skipped).
#[derive(Debug, Default)]
pub struct CustomerParser;

impl JsonlParser for CustomerParser {
    type Record = MirrorCustomer;

    fn push_line(
        &mut self,
        line: u64,
        bytes: &[u8],
        out: &mut Vec<MirrorCustomer>,
    ) -> Result<(), BulkError> {
        let Some(value) = read_line(line, bytes)? else {
            return Ok(());
        };
        if value.get("__parentId").is_some() {
            return Ok(());
        }
        let c: RawCustomer = decode(line, value, "customer")?;
        let email = c
            .default_email_address
            .and_then(|e| e.email_address)
            .or(c.email);
        out.push(MirrorCustomer {
            id: id_of(line, &c.id, "Customer")?,
            name: non_empty(c.display_name),
            email: non_empty(email),
            created_at: c.created_at,
            updated_at: c.updated_at,
            orders_count: i64::try_from(c.number_of_orders)
                .map_err(|_| parse_error(line, "numberOfOrders is out of range"))?,
            amount_spent: match c.amount_spent {
                Some(m) => money(line, m.amount)?,
                None => Money::ZERO,
            },
        });
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<MirrorCustomer>) -> Result<(), BulkError> {
        Ok(())
    }
}

/// Parses a whole JSONL text with `parser` (for tests and small files).
pub fn parse_jsonl<P: JsonlParser>(
    parser: &mut P,
    text: &str,
) -> Result<Vec<P::Record>, BulkError> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        parser.push_line(i as u64 + 1, line.as_bytes(), &mut out)?;
    }
    parser.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn gids() {
        assert_eq!(
            gid_number("gid://shopify/Order/450789469", "Order"),
            Some(450_789_469)
        );
        assert_eq!(gid_number("gid://shopify/Order/1", "LineItem"), None);
        assert_eq!(gid_number("gid://shopify/Order/x", "Order"), None);
    }

    #[test]
    fn reconcile_queries_select_what_changed() {
        let t = DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        for q in [
            orders_updated_bulk_query(t),
            products_updated_bulk_query(t),
            customers_updated_bulk_query(t),
        ] {
            assert!(
                q.contains("(query: \"updated_at:>='2026-11-01T10:00:00Z'\")"),
                "{q}"
            );
        }
    }

    #[test]
    fn id_sweeps_list_ids_and_skip_children() {
        let t = Utc.with_ymd_and_hms(2026, 9, 1, 7, 0, 0).unwrap();
        assert_eq!(
            order_ids_bulk_query(Some(t)),
            "{ orders(query: \"created_at:>='2026-09-01T07:00:00Z'\") { edges { node { id } } } }"
        );
        let jsonl = "{\"id\":\"gid://shopify/Product/7\"}\n\n\
                     {\"id\":\"gid://shopify/ProductVariant/1\",\"__parentId\":\"gid://shopify/Product/7\"}\n\
                     {\"id\":\"gid://shopify/Product/9\"}\n";
        let ids = parse_jsonl(&mut IdParser::new("Product"), jsonl);
        assert_eq!(ids.ok(), Some(vec![7, 9]));
        let wrong = parse_jsonl(&mut IdParser::new("Order"), jsonl);
        assert!(
            matches!(wrong, Err(BulkError::Parse { line: 1, .. })),
            "{wrong:?}"
        );
        let none = parse_jsonl(&mut IdParser::new("Order"), "{\"name\":\"#1\"}");
        assert!(none.is_err());
    }

    #[test]
    fn orders_query_cuts_at_the_shops_midnight_sixty_days_ago() {
        let ny: ShopTimeZone = "America/New_York".parse().unwrap_or_else(|e| panic!("{e}"));
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let since = orders_visible_since(now, ny, &["read_orders"]);
        assert_eq!(
            since,
            Some(Utc.with_ymd_and_hms(2026, 9, 29, 4, 0, 0).unwrap())
        );
        assert_eq!(
            orders_visible_since(now, ny, &["read_orders", "read_all_orders"]),
            None
        );
        let q = orders_bulk_query(since);
        assert!(
            q.contains(
                "orders(query: \"created_at:>='2026-09-29T04:00:00Z'\", sortKey: CREATED_AT)"
            ),
            "{q}"
        );
        assert!(!orders_bulk_query(None).contains("created_at"));
    }

    #[test]
    fn operations_decode_unsigned_strings() {
        let op: BulkOperation = serde_json::from_value(json!({
            "id": "gid://shopify/BulkOperation/1", "status": "COMPLETED", "errorCode": null,
            "createdAt": "2026-11-28T10:00:00Z", "completedAt": "2026-11-28T10:01:00Z",
            "objectCount": "12", "rootObjectCount": "3", "fileSize": "2048",
            "url": "https://storage.example/x.jsonl", "partialDataUrl": null
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (op.object_count, op.root_object_count, op.file_size),
            (12, 3, Some(2048))
        );
        let other: BulkOperationStatus =
            serde_json::from_value(json!("SOMETHING_NEW")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(other, BulkOperationStatus::Unknown);
        assert!(other.is_finished());
        assert!(!BulkOperationStatus::Running.is_finished());
    }
}
