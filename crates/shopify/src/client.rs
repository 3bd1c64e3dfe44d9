//! The GraphQL Admin API client: one `POST {base}/admin/api/{version}/graphql.json`
//! per query, with cost-aware pacing and bounded retries.
//!
//! * Pacing: every answer carries `extensions.cost.throttleStatus`; the client
//!   remembers it per shop (and each query's `requestedQueryCost`) and, before
//!   the next query, waits `ceil((expected - available) / restoreRate)` seconds
//!   when the bucket (refilled at `restoreRate` since it was seen) holds less
//!   than the expected cost.
//! * Retries: `THROTTLED` (as HTTP 200 with `errors[].extensions.code` or as
//!   429) and HTTP 429/503, honouring a (fractional) `Retry-After`; every wait
//!   is capped, as are the attempts and the total wait ([`RetryPolicy`]).
//! * HTTP 401 becomes [`ShopifyError::Unauthorized`]: the merchant must
//!   reconnect.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::config::{DEFAULT_REQUEST_TIMEOUT, ShopifyConfig, graphql_url};
use crate::domain::ShopDomain;
use crate::error::{GraphQlError, ShopifyError, request_id, shorten_body};
use hirecj_domain::Secret;

/// The header that carries the access token.
pub const ACCESS_TOKEN_HEADER: &str = "X-Shopify-Access-Token";

/// Bounds on waiting and retrying.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Requests made for one query at most (the first included).
    pub max_attempts: u32,
    /// Cap on any single wait (pacing, `Retry-After`, throttle estimate).
    pub max_wait: Duration,
    /// Cap on all waits of one query added up; past it the query fails with
    /// [`ShopifyError::Throttled`] instead of waiting again.
    pub max_total_wait: Duration,
    /// Expected cost of a query never seen before, for pacing.
    pub default_expected_cost: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_wait: Duration::from_secs(10),
            max_total_wait: Duration::from_secs(30),
            default_expected_cost: 50.0,
        }
    }
}

/// `extensions.cost.throttleStatus` of a GraphQL answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    /// Bucket size.
    pub maximum_available: f64,
    /// Points left when the answer was sent.
    pub currently_available: f64,
    /// Points restored per second.
    pub restore_rate: f64,
}

/// `extensions.cost` of a GraphQL answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryCost {
    /// The cost Shopify computed before running the query.
    #[serde(default)]
    pub requested_query_cost: Option<f64>,
    /// The cost actually charged.
    #[serde(default)]
    pub actual_query_cost: Option<f64>,
    /// The bucket after the query.
    #[serde(default)]
    pub throttle_status: Option<ThrottleStatus>,
}

/// `ceil((requested - available) / restore_rate)` seconds: how long until the
/// bucket holds `requested` points. Zero when it already does; one second
/// when the restore rate is unknown.
pub fn throttle_wait(requested: f64, available: f64, restore_rate: f64) -> Duration {
    let missing = requested - available;
    if !missing.is_finite() || missing <= 0.0 {
        return Duration::ZERO;
    }
    if !restore_rate.is_finite() || restore_rate <= 0.0 {
        return Duration::from_secs(1);
    }
    let secs = (missing / restore_rate).ceil().min(3600.0);
    Duration::from_secs_f64(secs)
}

/// Parses `Retry-After` given in seconds, fractional or not (`2`, `2.0`,
/// `0.1`). HTTP dates are not used by Shopify and give `None`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    if secs.is_finite() && secs >= 0.0 {
        Some(Duration::from_secs_f64(secs.min(3600.0)))
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    status: ThrottleStatus,
    seen: Instant,
}

impl Bucket {
    /// Points available now, counting what was restored since it was seen.
    fn available_now(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.seen).as_secs_f64();
        (self.status.currently_available + self.status.restore_rate.max(0.0) * elapsed)
            .min(self.status.maximum_available)
    }
}

#[derive(Debug, Default)]
struct Pacer {
    buckets: HashMap<ShopDomain, Bucket>,
    /// Last `requestedQueryCost` per query text (hashed).
    costs: HashMap<u64, f64>,
}

/// The GraphQL Admin API client. Cheap to clone; clones share the pacing
/// state. It holds no token: each call takes the shop's token.
#[derive(Debug, Clone)]
pub struct AdminClient {
    pub(crate) http: reqwest::Client,
    base_template: Arc<str>,
    api_version: Arc<str>,
    timeout: Duration,
    policy: RetryPolicy,
    pacer: Arc<Mutex<Pacer>>,
}

enum Attempt {
    Data(Value),
    Retry {
        /// What the answer said to wait (`Retry-After` or the cost estimate).
        delay: Option<Duration>,
        status: u16,
        throttled: bool,
        request_id: Option<String>,
    },
}

impl AdminClient {
    /// A client for the base URL template, API version and timeout of
    /// `config`, with the default [`RetryPolicy`].
    pub fn new(http: reqwest::Client, config: &ShopifyConfig) -> Self {
        Self {
            http,
            base_template: Arc::from(config.admin_base_url.as_str()),
            api_version: Arc::from(config.api_version.as_str()),
            timeout: config.request_timeout,
            policy: RetryPolicy::default(),
            pacer: Arc::default(),
        }
    }

    /// Replaces the retry policy.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// An HTTP client suited to Shopify: connect timeout 10 s, overall
    /// timeout [`DEFAULT_REQUEST_TIMEOUT`], rustls, a HireCJ user agent.
    pub fn http_client() -> Result<reqwest::Client, ShopifyError> {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(DEFAULT_REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(concat!("HireCJ/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ShopifyError::from_reqwest)
    }

    /// The GraphQL endpoint of `shop`.
    pub fn graphql_url(&self, shop: &ShopDomain) -> String {
        graphql_url(&self.base_template, &self.api_version, shop)
    }

    /// The last throttle status seen for `shop`.
    pub fn throttle_status(&self, shop: &ShopDomain) -> Option<ThrottleStatus> {
        self.lock().buckets.get(shop).map(|b| b.status)
    }

    /// Runs a query and decodes its `data` into `T`.
    pub async fn query<T: DeserializeOwned>(
        &self,
        shop: &ShopDomain,
        token: &Secret,
        query: &str,
        variables: Value,
    ) -> Result<T, ShopifyError> {
        let data = self.graphql(shop, token, query, variables).await?;
        serde_json::from_value(data).map_err(|e| ShopifyError::Decode {
            message: format!("GraphQL data does not match the query: {e}"),
            request_id: None,
        })
    }

    /// Runs a query and returns its `data` (`null` when absent), pacing and
    /// retrying as described in the module docs.
    pub async fn graphql(
        &self,
        shop: &ShopDomain,
        token: &Secret,
        query: &str,
        variables: Value,
    ) -> Result<Value, ShopifyError> {
        let body = serde_json::to_vec(&json!({ "query": query, "variables": variables }))
            .map_err(|e| ShopifyError::InvalidInput(format!("variables: {e}")))?;
        let key = query_key(query);
        let mut waited = Duration::ZERO;
        let mut attempts = 0u32;
        loop {
            if let Some(delay) = self.pacing_delay(shop, key) {
                let delay = delay.min(self.policy.max_wait);
                if waited + delay <= self.policy.max_total_wait {
                    tracing::debug!(%shop, wait_ms = delay.as_millis() as u64, "pacing Shopify query");
                    tokio::time::sleep(delay).await;
                    waited += delay;
                }
            }
            attempts += 1;
            let (delay, exhausted) = match self.attempt(shop, token, key, &body).await {
                Ok(Attempt::Data(data)) => return Ok(data),
                Ok(Attempt::Retry {
                    delay,
                    status,
                    throttled,
                    request_id,
                }) => {
                    tracing::info!(%shop, attempts, status, ?request_id, "Shopify asked to slow down");
                    let error = if throttled {
                        ShopifyError::Throttled {
                            attempts,
                            request_id,
                        }
                    } else {
                        ShopifyError::Http {
                            status,
                            message: "Shopify is unavailable (retries exhausted)".to_owned(),
                            request_id,
                        }
                    };
                    (delay, error)
                }
                Err(AttemptError::Connect(e)) => (None, e),
                Err(AttemptError::Fatal(e)) => return Err(e),
            };
            let backoff = Duration::from_secs(1u64 << attempts.min(6).saturating_sub(1));
            let delay = delay.unwrap_or(backoff).min(self.policy.max_wait);
            if attempts >= self.policy.max_attempts || waited + delay > self.policy.max_total_wait {
                tracing::warn!(%shop, attempts, error = %exhausted, "giving up on Shopify query");
                return Err(exhausted);
            }
            tracing::debug!(%shop, wait_ms = delay.as_millis() as u64, "retrying Shopify query");
            tokio::time::sleep(delay).await;
            waited += delay;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pacer> {
        self.pacer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long to wait before sending query `key` to `shop`, if at all.
    fn pacing_delay(&self, shop: &ShopDomain, key: u64) -> Option<Duration> {
        let pacer = self.lock();
        let bucket = pacer.buckets.get(shop)?;
        let expected = pacer
            .costs
            .get(&key)
            .copied()
            .unwrap_or(self.policy.default_expected_cost)
            .min(bucket.status.maximum_available);
        let available = bucket.available_now(Instant::now());
        let wait = throttle_wait(expected, available, bucket.status.restore_rate);
        (!wait.is_zero()).then_some(wait)
    }

    fn record_cost(&self, shop: &ShopDomain, key: u64, cost: &QueryCost) {
        let mut pacer = self.lock();
        if let Some(requested) = cost.requested_query_cost {
            pacer.costs.insert(key, requested);
        }
        if let Some(status) = cost.throttle_status {
            pacer.buckets.insert(
                shop.clone(),
                Bucket {
                    status,
                    seen: Instant::now(),
                },
            );
        }
    }

    async fn attempt(
        &self,
        shop: &ShopDomain,
        token: &Secret,
        key: u64,
        body: &[u8],
    ) -> Result<Attempt, AttemptError> {
        let mut token_header = HeaderValue::from_str(token.expose()).map_err(|_| {
            AttemptError::Fatal(ShopifyError::InvalidInput(
                "the access token has characters a header cannot carry".to_owned(),
            ))
        })?;
        token_header.set_sensitive(true);
        let response = self
            .http
            .post(self.graphql_url(shop))
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(ACCESS_TOKEN_HEADER, token_header)
            .body(body.to_vec())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    AttemptError::Connect(ShopifyError::from_reqwest(e))
                } else {
                    AttemptError::Fatal(ShopifyError::from_reqwest(e))
                }
            })?;
        let status = response.status();
        let headers = response.headers().clone();
        let request_id = request_id(&headers);
        let text = response
            .text()
            .await
            .map_err(|e| AttemptError::Fatal(ShopifyError::from_reqwest(e)))?;
        let parsed: Option<RawResponse> = serde_json::from_str(&text).ok();
        if let Some(cost) = parsed.as_ref().and_then(|r| r.extensions.as_ref()?.cost) {
            self.record_cost(shop, key, &cost);
        }
        let fatal = |e| Err(AttemptError::Fatal(e));
        match status {
            StatusCode::UNAUTHORIZED => {
                tracing::warn!(%shop, ?request_id, "Shopify answered 401: token invalid or revoked");
                return fatal(ShopifyError::Unauthorized { request_id });
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                let delay = retry_after(&headers)
                    .or_else(|| parsed.as_ref().and_then(RawResponse::throttle_delay));
                return Ok(Attempt::Retry {
                    delay,
                    status: status.as_u16(),
                    throttled: status == StatusCode::TOO_MANY_REQUESTS,
                    request_id,
                });
            }
            StatusCode::PAYMENT_REQUIRED | StatusCode::LOCKED => {
                return fatal(ShopifyError::ShopUnavailable {
                    status: status.as_u16(),
                    message: error_text(parsed.as_ref(), &text),
                    request_id,
                });
            }
            StatusCode::FORBIDDEN => {
                return fatal(ShopifyError::Forbidden {
                    message: error_text(parsed.as_ref(), &text),
                    request_id,
                });
            }
            s if !s.is_success() => {
                return fatal(ShopifyError::Http {
                    status: s.as_u16(),
                    message: error_text(parsed.as_ref(), &text),
                    request_id,
                });
            }
            _ => {}
        }
        let Some(parsed) = parsed else {
            return fatal(ShopifyError::Decode {
                message: format!("GraphQL answer is not JSON: {}", shorten_body(&text)),
                request_id,
            });
        };
        let errors = parsed.errors();
        if errors.is_empty() {
            return Ok(Attempt::Data(parsed.data.unwrap_or(Value::Null)));
        }
        if errors
            .iter()
            .any(|e| e.code.as_deref() == Some("THROTTLED"))
        {
            return Ok(Attempt::Retry {
                delay: parsed.throttle_delay(),
                status: status.as_u16(),
                throttled: true,
                request_id,
            });
        }
        if let Some(inactive) = errors
            .iter()
            .find(|e| e.code.as_deref() == Some("SHOP_INACTIVE"))
        {
            return fatal(ShopifyError::ShopUnavailable {
                status: status.as_u16(),
                message: inactive.message.clone(),
                request_id,
            });
        }
        fatal(ShopifyError::GraphQl { errors, request_id })
    }
}

enum AttemptError {
    /// The connection could not be made: nothing was sent, retrying is safe.
    Connect(ShopifyError),
    Fatal(ShopifyError),
}

fn query_key(query: &str) -> u64 {
    let mut h = DefaultHasher::new();
    query.hash(&mut h);
    h.finish()
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

fn error_text(parsed: Option<&RawResponse>, raw: &str) -> String {
    let from_errors = parsed.map(RawResponse::errors).and_then(|errors| {
        (!errors.is_empty()).then(|| {
            errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
    });
    shorten_body(&from_errors.unwrap_or_else(|| raw.to_owned()))
}

#[derive(Debug, Deserialize)]
struct RawResponse {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Option<Value>,
    #[serde(default)]
    extensions: Option<RawExtensions>,
}

#[derive(Debug, Deserialize)]
struct RawExtensions {
    #[serde(default)]
    cost: Option<QueryCost>,
}

impl RawResponse {
    /// `errors` as a list; Shopify sometimes sends a bare string.
    fn errors(&self) -> Vec<GraphQlError> {
        match &self.errors {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![GraphQlError {
                message: s.clone(),
                code: None,
                path: Vec::new(),
            }],
            Some(Value::Array(items)) => items.iter().map(graphql_error).collect(),
            Some(other) => vec![graphql_error(other)],
        }
    }

    fn throttle_delay(&self) -> Option<Duration> {
        let cost = self.extensions.as_ref()?.cost?;
        let status = cost.throttle_status?;
        let requested = cost.requested_query_cost.unwrap_or(1.0);
        let wait = throttle_wait(
            requested.min(status.maximum_available),
            status.currently_available,
            status.restore_rate,
        );
        Some(wait.max(Duration::from_millis(1)))
    }
}

fn graphql_error(v: &Value) -> GraphQlError {
    let message = match v.get("message") {
        Some(Value::String(s)) => s.clone(),
        _ => shorten_body(&v.to_string()),
    };
    GraphQlError {
        message,
        code: v
            .pointer("/extensions/code")
            .and_then(Value::as_str)
            .map(str::to_owned),
        path: v
            .get("path")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_wait_rounds_up_whole_seconds() {
        assert_eq!(throttle_wait(100.0, 40.0, 50.0), Duration::from_secs(2));
        assert_eq!(throttle_wait(100.0, 99.0, 100.0), Duration::from_secs(1));
        assert_eq!(throttle_wait(100.0, 100.0, 100.0), Duration::ZERO);
        assert_eq!(throttle_wait(100.0, 500.0, 100.0), Duration::ZERO);
        assert_eq!(throttle_wait(100.0, 0.0, 0.0), Duration::from_secs(1));
        assert_eq!(throttle_wait(1000.0, 0.0, 50.0), Duration::from_secs(20));
    }

    #[test]
    fn retry_after_parses_fractions() {
        assert_eq!(parse_retry_after("2.0"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.1 "), Some(Duration::from_millis(100)));
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn errors_are_read_in_both_shapes() {
        let r: RawResponse = serde_json::from_value(json!({
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}, "path": ["orders"]}]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let errors = r.errors();
        assert_eq!(errors[0].code.as_deref(), Some("THROTTLED"));
        assert_eq!(errors[0].path, vec![json!("orders")]);
        let r: RawResponse =
            serde_json::from_value(json!({"errors": "[API] Invalid API key or access token"}))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.errors()[0].message,
            "[API] Invalid API key or access token"
        );
    }

    fn client() -> AdminClient {
        let config = ShopifyConfig::new("id", "secret", "http://localhost/cb");
        AdminClient::new(reqwest::Client::new(), &config)
    }

    fn shop() -> ShopDomain {
        ShopDomain::parse("paced").unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test(start_paused = true)]
    async fn pacing_waits_for_the_bucket_to_refill() {
        let c = client();
        let key = query_key("{ shop { name } }");
        assert_eq!(c.pacing_delay(&shop(), key), None, "unknown shop: no wait");
        let status = ThrottleStatus {
            maximum_available: 1000.0,
            currently_available: 10.0,
            restore_rate: 50.0,
        };
        c.record_cost(
            &shop(),
            key,
            &QueryCost {
                requested_query_cost: Some(120.0),
                actual_query_cost: Some(100.0),
                throttle_status: Some(status),
            },
        );
        assert_eq!(c.throttle_status(&shop()), Some(status));
        // 10 available, 120 expected, 50/s: ceil(110 / 50) = 3 s.
        assert_eq!(c.pacing_delay(&shop(), key), Some(Duration::from_secs(3)));
        // An unknown query expects the default cost (50): ceil(40 / 50) = 1 s.
        assert_eq!(c.pacing_delay(&shop(), 7), Some(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        // 50 restored: 60 available, 60 missing: ceil(60 / 50) = 2 s.
        assert_eq!(c.pacing_delay(&shop(), key), Some(Duration::from_secs(2)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(c.pacing_delay(&shop(), key), None);
        let other = ShopDomain::parse("other").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.pacing_delay(&other, key), None, "buckets are per shop");
    }
}
