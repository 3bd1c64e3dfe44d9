//! `POST /api/v1/shopify/webhooks`: Shopify's webhooks, one endpoint for
//! every topic (`X-Shopify-Topic`).
//!
//! Only the body is signed; every header but the signature can be changed
//! by whoever replays a captured delivery. So, in order:
//!
//! 1. `X-Shopify-Hmac-Sha256` must be the HMAC of the raw body under the
//!    client secret (401 otherwise, before anything else is read).
//! 2. The shop: `X-Shopify-Shop-Domain` must be the shop the signed payload
//!    names, in every field that names one (`shop_domain`,
//!    `myshopify_domain`, and `domain` when it is a `*.myshopify.com`
//!    domain; a custom domain cannot be compared and is ignored). A
//!    delivery naming another shop is refused (400 `shop_mismatch`), as is
//!    an `app/uninstalled` whose payload names no shop (400
//!    `shop_not_named`): the uninstall payload is the shop itself.
//! 3. The time: a delivery whose `X-Shopify-Triggered-At` is older than
//!    [`WEBHOOK_REPLAY_WINDOW`] or further in the future than
//!    [`WEBHOOK_FUTURE_SKEW`] is refused (400 `stale_delivery` /
//!    `future_delivery`) and not recorded: Shopify's own retries are hours
//!    old at most, so only a replay (or a broken clock, which a refusal
//!    makes visible in Shopify's delivery log) gets there. A missing or
//!    unreadable Triggered-At is processed, deduplicated as below.
//! 4. Deduplication: the delivery is recorded by `X-Shopify-Webhook-Id` and
//!    by the SHA-256 of its body per shop and topic; a delivery whose id or
//!    body was seen before answers 200 `duplicate` without being processed
//!    again. The records outlive the replay window. When processing fails
//!    the records are forgotten and the answer is 500, so Shopify's retry is
//!    processed.
//! 5. Topics (what each deletes is documented in `docs/shopify.md`):
//!    `app/uninstalled`, `customers/data_request`, `customers/redact`,
//!    `shop/redact`; the store mirror's topics (orders, refunds, products,
//!    customers, `bulk_operations/finish`: see [`mirror_topics`]), applied
//!    in `updated_at` order whatever order they arrive in; others are
//!    acknowledged and ignored.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hirecj_domain::IntegrationStatus;
use hirecj_shopify::payloads::{self, PayloadError};
use hirecj_shopify::{ShopDomain, clear_shop, signing};
use hirecj_store::{WEBHOOK_FUTURE_SKEW, WEBHOOK_REPLAY_WINDOW, WebhookDelivery};
use serde_json::{Value, json};

use super::PROVIDER;
use crate::app::AppState;

const HMAC_HEADER: &str = "x-shopify-hmac-sha256";
const TOPIC_HEADER: &str = "x-shopify-topic";
const SHOP_HEADER: &str = "x-shopify-shop-domain";
const ID_HEADER: &str = "x-shopify-webhook-id";
const TRIGGERED_AT_HEADER: &str = "x-shopify-triggered-at";

const APP_UNINSTALLED: &str = "app/uninstalled";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    reply(status, json!({"error": {"code": code, "message": message}}))
}

/// Why processing a verified webhook failed.
#[derive(Debug, thiserror::Error)]
enum ProcessError {
    #[error("the payload is not JSON: {0}")]
    Payload(#[from] serde_json::Error),
    #[error(transparent)]
    Resource(#[from] PayloadError),
    #[error(transparent)]
    Store(#[from] hirecj_store::StoreError),
    /// The shop's cached data could not be deleted: Shopify must deliver
    /// the webhook again (it does not retry a 200).
    #[error("the shop's cached data could not be deleted: {0}")]
    Cache(#[from] hirecj_shopify::CacheError),
}

/// Why a signed delivery is not bound to a shop it may act on.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum ShopError {
    #[error("no valid shop domain")]
    Invalid,
    #[error("the signed payload's {field} names another shop than X-Shopify-Shop-Domain")]
    Mismatch { field: &'static str },
    #[error("app/uninstalled must name its shop in the signed payload")]
    NotNamed,
}

impl ShopError {
    fn response(&self) -> Response {
        let code = match self {
            Self::Invalid => "invalid_shop",
            Self::Mismatch { .. } => "shop_mismatch",
            Self::NotNamed => "shop_not_named",
        };
        error(StatusCode::BAD_REQUEST, code, &self.to_string())
    }
}

/// Why a delivery's `X-Shopify-Triggered-At` refuses it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum TimeError {
    #[error("the delivery was triggered longer ago than the replay window")]
    Stale,
    #[error("the delivery was triggered in the future")]
    Future,
}

impl TimeError {
    fn response(&self) -> Response {
        let code = match self {
            Self::Stale => "stale_delivery",
            Self::Future => "future_delivery",
        };
        error(StatusCode::BAD_REQUEST, code, &self.to_string())
    }
}

/// Receives one webhook delivery.
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let secret = &state.shopify.config.client_secret;
    let Some(hmac) = header(&headers, HMAC_HEADER) else {
        tracing::warn!("webhook without a signature refused");
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_hmac",
            "missing signature",
        );
    };
    if !signing::verify_webhook(&body, hmac, secret.expose()) {
        tracing::warn!("webhook with a wrong signature refused");
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_hmac",
            "invalid signature",
        );
    }
    let topic = header(&headers, TOPIC_HEADER).unwrap_or("").to_owned();
    let shop = match webhook_shop(&topic, header(&headers, SHOP_HEADER), &body) {
        Ok(shop) => shop,
        Err(e) => {
            tracing::warn!(topic, error = %e, "signed webhook refused: not bound to its shop");
            return e.response();
        }
    };
    let triggered_at = header(&headers, TRIGGERED_AT_HEADER);
    if let Err(e) = check_triggered_at(triggered_at, Utc::now()) {
        tracing::warn!(%shop, topic, triggered_at, error = %e, "signed webhook refused: outside the replay window");
        return e.response();
    }
    let webhook_id = header(&headers, ID_HEADER);
    if webhook_id.is_none() {
        tracing::warn!(%shop, topic, "webhook without X-Shopify-Webhook-Id: deduplicated on its body alone");
    }
    let delivery = WebhookDelivery {
        webhook_id,
        topic: &topic,
        shop: shop.as_str(),
        body: &body,
    };
    match state.store.record_webhook(&delivery).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(%shop, topic, webhook_id, "duplicate webhook delivery ignored");
            return reply(StatusCode::OK, json!({"status": "duplicate"}));
        }
        Err(e) => {
            tracing::error!(%shop, topic, error = %e, "could not record the webhook");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "try again");
        }
    }
    let at = triggered_at
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    match process(&state, &topic, &shop, &body, at).await {
        Ok(status) => {
            tracing::info!(%shop, topic, webhook_id, status, "webhook processed");
            reply(StatusCode::OK, json!({"status": status}))
        }
        Err(e) => {
            tracing::error!(%shop, topic, error = %e, "webhook processing failed");
            if let Err(e) = state.store.forget_webhook(&delivery).await {
                tracing::error!(%shop, topic, error = %e, "could not forget the failed webhook");
            }
            match e {
                ProcessError::Payload(_) => error(
                    StatusCode::BAD_REQUEST,
                    "invalid_payload",
                    "payload is not JSON",
                ),
                ProcessError::Resource(e) => {
                    error(StatusCode::BAD_REQUEST, "invalid_payload", &e.to_string())
                }
                ProcessError::Store(_) => {
                    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "try again")
                }
                ProcessError::Cache(_) => error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cache_unavailable",
                    "the shop's cached data could not be deleted; try again",
                ),
            }
        }
    }
}

/// The shops a signed payload names, by field: `shop_domain`,
/// `myshopify_domain`, and `domain` when it is a `*.myshopify.com` domain (a
/// shop's custom domain says nothing comparable). A value that names a
/// shop but is not a valid shop domain is kept as `Err`: it cannot be the
/// header's shop.
fn payload_shops(payload: &Value) -> Vec<(&'static str, Option<ShopDomain>)> {
    let mut out = Vec::new();
    for field in ["shop_domain", "myshopify_domain", "domain"] {
        let Some(value) = payload.get(field).and_then(Value::as_str) else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        if field == "domain" && !value.ends_with(".myshopify.com") {
            continue;
        }
        out.push((field, ShopDomain::parse_exact(&value).ok()));
    }
    out
}

/// The shop a verified delivery is about: `X-Shopify-Shop-Domain`, else the
/// shop the payload names, canonical. The header is not covered by the
/// signature, so every shop the signed payload names must be the header's:
/// a delivery captured for one shop cannot be replayed against another.
/// `app/uninstalled` must name its shop (its payload is the shop).
fn webhook_shop(
    topic: &str,
    header_shop: Option<&str>,
    body: &[u8],
) -> Result<ShopDomain, ShopError> {
    let named = serde_json::from_slice::<Value>(body)
        .map(|payload| payload_shops(&payload))
        .unwrap_or_default();
    let shop = match header_shop {
        Some(h) => ShopDomain::parse_exact(h).map_err(|_| ShopError::Invalid)?,
        None => named
            .iter()
            .find_map(|(_, s)| s.clone())
            .ok_or(ShopError::Invalid)?,
    };
    if let Some((field, _)) = named.iter().find(|(_, s)| s.as_ref() != Some(&shop)) {
        return Err(ShopError::Mismatch { field });
    }
    if topic == APP_UNINSTALLED && !named.iter().any(|(f, _)| *f != "shop_domain") {
        return Err(ShopError::NotNamed);
    }
    Ok(shop)
}

/// Checks `X-Shopify-Triggered-At` against the replay window. A missing or
/// unreadable value passes (the body-hash deduplication still applies).
fn check_triggered_at(value: Option<&str>, now: DateTime<Utc>) -> Result<(), TimeError> {
    let Some(value) = value else {
        return Ok(());
    };
    let Ok(at) = DateTime::parse_from_rfc3339(value) else {
        tracing::warn!(
            triggered_at = value,
            "unreadable X-Shopify-Triggered-At: deduplicated on its body alone"
        );
        return Ok(());
    };
    let age = now.signed_duration_since(at.with_timezone(&Utc));
    let window = chrono::Duration::from_std(WEBHOOK_REPLAY_WINDOW).unwrap_or(chrono::Duration::MAX);
    let skew = chrono::Duration::from_std(WEBHOOK_FUTURE_SKEW).unwrap_or(chrono::Duration::zero());
    if age > window {
        Err(TimeError::Stale)
    } else if -age > skew {
        Err(TimeError::Future)
    } else {
        Ok(())
    }
}

async fn process(
    state: &AppState,
    topic: &str,
    shop: &ShopDomain,
    body: &[u8],
    at: DateTime<Utc>,
) -> Result<&'static str, ProcessError> {
    let store = &state.store;
    if let Some(change) = MirrorChange::of(topic) {
        return mirror(state, shop, change, body, at).await;
    }
    match topic {
        APP_UNINSTALLED => {
            let found = store
                .set_integration_status(PROVIDER, shop.as_str(), IntegrationStatus::Uninstalled)
                .await?;
            clear_cache(state, shop).await?;
            // The mirror is rebuilt by the backfill of a reinstall.
            let mirrored = store.mirror_delete_shop(shop.as_str()).await?;
            tracing::info!(%shop, rows = mirrored, "store mirror deleted on uninstall");
            if let Some(user) = store.user_by_shop(shop.as_str()).await? {
                store
                    .log_user_event(&user.id, "app_uninstalled", json!({"shop": shop.as_str()}))
                    .await?;
            }
            Ok(if found { "uninstalled" } else { "unknown_shop" })
        }
        "customers/data_request" => {
            let payload: Value = serde_json::from_slice(body)?;
            let user = store.user_by_shop(shop.as_str()).await?;
            store
                .log_event(
                    user.as_ref().map(|u| &u.id),
                    None,
                    "customer_data_request",
                    json!({"shop": shop.as_str(), "request": payload}),
                )
                .await?;
            Ok("recorded")
        }
        "customers/redact" => {
            let payload: Value = serde_json::from_slice(body)?;
            let needles = customer_needles(&payload);
            let refs: Vec<&str> = needles.iter().map(String::as_str).collect();
            let counts = store.redact_customer(shop.as_str(), &refs).await?;
            if let Some(customer) = payload.pointer("/customer/id").and_then(Value::as_i64) {
                let orders: Vec<i64> = payload
                    .get("orders_to_redact")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default();
                store
                    .mirror_redact_customer(shop.as_str(), customer, &orders)
                    .await?;
            }
            // Cached tool results may name the customer too.
            clear_cache(state, shop).await?;
            tracing::info!(%shop, records = counts.total(), "customer redacted");
            Ok("redacted")
        }
        "shop/redact" => {
            let deleted = store.delete_shop_data(shop.as_str()).await?;
            store.mirror_delete_shop(shop.as_str()).await?;
            clear_cache(state, shop).await?;
            Ok(if deleted { "deleted" } else { "nothing_stored" })
        }
        other => {
            tracing::info!(%shop, topic = other, "webhook topic not handled; acknowledged");
            Ok("ignored")
        }
    }
}

/// A webhook topic that changes the store mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MirrorChange {
    Order,
    OrderDeleted,
    Product,
    ProductDeleted,
    Customer,
    CustomerDeleted,
    /// A refund: the order's own `orders/updated` (which Shopify sends
    /// too) carries it; the reconcile repairs the order should that one
    /// be lost.
    Refund,
    /// A bulk operation finished: the backfill need not wait for its poll.
    BulkFinished,
}

impl MirrorChange {
    /// The topics the mirror subscribes to at install, with what each does.
    const TOPICS: &'static [(&'static str, MirrorChange)] = &[
        ("orders/create", MirrorChange::Order),
        ("orders/updated", MirrorChange::Order),
        ("orders/cancelled", MirrorChange::Order),
        ("orders/paid", MirrorChange::Order),
        ("orders/fulfilled", MirrorChange::Order),
        ("orders/delete", MirrorChange::OrderDeleted),
        ("refunds/create", MirrorChange::Refund),
        ("products/create", MirrorChange::Product),
        ("products/update", MirrorChange::Product),
        ("products/delete", MirrorChange::ProductDeleted),
        ("customers/create", MirrorChange::Customer),
        ("customers/update", MirrorChange::Customer),
        ("customers/delete", MirrorChange::CustomerDeleted),
        ("bulk_operations/finish", MirrorChange::BulkFinished),
    ];

    fn of(topic: &str) -> Option<Self> {
        Self::TOPICS
            .iter()
            .find(|(t, _)| *t == topic)
            .map(|(_, c)| *c)
    }
}

/// Applies one change to the shop's mirror. Idempotent and order-safe: an
/// older record never overwrites a newer one, a deletion stays deleted.
/// A shop without a mirror (not registered yet, or uninstalled) is
/// acknowledged and left alone: its backfill will read the store.
async fn mirror(
    state: &AppState,
    shop: &ShopDomain,
    change: MirrorChange,
    body: &[u8],
    at: DateTime<Utc>,
) -> Result<&'static str, ProcessError> {
    let store = &state.store;
    if change == MirrorChange::BulkFinished {
        state.mirror.bulk_finished();
        return Ok("noted");
    }
    if store.mirror_sync(shop.as_str()).await?.is_none() {
        return Ok("not_mirrored");
    }
    let shop_name = shop.as_str();
    let applied = match change {
        MirrorChange::Order => {
            let order = payloads::order_from_webhook(body)?;
            store
                .mirror_upsert_orders(shop_name, &[order])
                .await?
                .applied
                > 0
        }
        MirrorChange::Product => {
            let product = payloads::product_from_webhook(body)?;
            store
                .mirror_upsert_products(shop_name, &[product])
                .await?
                .applied
                > 0
        }
        MirrorChange::Customer => {
            let payload = payloads::customer_from_webhook(body)?;
            let mut customer = payload.customer;
            // Current API versions leave a customer's totals out of the
            // payload: keep what the mirror knows (the reconcile and the
            // backfill read them).
            if !payload.totals_given
                && let Some(known) = store.mirror_customer(shop_name, customer.id).await?
            {
                customer.orders_count = known.orders_count;
                customer.amount_spent = known.amount_spent;
            }
            store
                .mirror_upsert_customers(shop_name, &[customer])
                .await?
                .applied
                > 0
        }
        MirrorChange::OrderDeleted => {
            let id = payloads::deleted_id(body)?;
            store.mirror_delete_orders(shop_name, &[id], at).await?;
            true
        }
        MirrorChange::ProductDeleted => {
            let id = payloads::deleted_id(body)?;
            store.mirror_delete_product(shop_name, id, at).await?;
            true
        }
        MirrorChange::CustomerDeleted => {
            let id = payloads::deleted_id(body)?;
            store.mirror_delete_customer(shop_name, id, at).await?;
            true
        }
        MirrorChange::Refund | MirrorChange::BulkFinished => false,
    };
    store.record_mirror_event(shop_name, at).await?;
    Ok(if applied { "mirrored" } else { "stale" })
}

/// Deletes the shop's cached data (tool results may hold customers'
/// names). A failure fails the delivery, so Shopify sends it again: the
/// steps before this one are idempotent.
async fn clear_cache(state: &AppState, shop: &ShopDomain) -> Result<(), ProcessError> {
    let cleared = clear_shop(state.shopify.cache.as_ref(), shop).await?;
    tracing::debug!(%shop, cleared, "shop's cached data deleted");
    Ok(())
}

/// The customer's email, phone and id (as a string; it also matches inside a GID) from a
/// `customers/redact` payload.
fn customer_needles(payload: &Value) -> Vec<String> {
    let customer = payload.get("customer").unwrap_or(&Value::Null);
    let mut out = Vec::new();
    for key in ["email", "phone"] {
        if let Some(s) = customer.get(key).and_then(Value::as_str) {
            out.push(s.to_owned());
        }
    }
    match customer.get("id") {
        Some(Value::Number(n)) => out.push(n.to_string()),
        Some(Value::String(s)) => out.push(s.clone()),
        _ => {}
    }
    out.retain(|s| !s.trim().is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscribed_topic_is_handled() {
        use hirecj_shopify::webhook_subscriptions::MIRROR_TOPICS;
        // `ORDERS_CREATE` arrives as `X-Shopify-Topic: orders/create`.
        for topic in MIRROR_TOPICS {
            let header = match topic.rsplit_once('_') {
                Some((resource, event)) => format!("{resource}/{event}").to_lowercase(),
                None => topic.to_lowercase(),
            };
            assert!(
                MirrorChange::of(&header).is_some() || header == APP_UNINSTALLED,
                "{topic} is subscribed but {header} is not handled"
            );
        }
        for (topic, _) in MirrorChange::TOPICS {
            let subscribed = topic.replace('/', "_").to_uppercase();
            assert!(MIRROR_TOPICS.contains(&subscribed.as_str()), "{topic}");
        }
    }

    #[test]
    fn the_shop_header_must_agree_with_the_signed_payload() {
        let a = "a.myshopify.com";
        let b = "b.myshopify.com";
        let body = |v: Value| serde_json::to_vec(&v).unwrap_or_default();
        let shop = |topic: &str, h: Option<&str>, v: Value| {
            webhook_shop(topic, h, &body(v)).map(|s| s.as_str().to_owned())
        };
        let redact = "shop/redact";
        assert_eq!(
            shop(redact, Some(a), json!({"shop_domain": a})),
            Ok(a.into())
        );
        assert_eq!(shop(redact, None, json!({"shop_domain": a})), Ok(a.into()));
        assert_eq!(
            shop(redact, Some(a), json!({"shop_domain": "A.myshopify.com "})),
            Ok(a.into())
        );
        // A topic whose payload names no shop: the header alone decides.
        assert_eq!(
            shop("orders/create", Some(a), json!({"id": 1})),
            Ok(a.into())
        );
        assert_eq!(
            webhook_shop("orders/create", Some(a), b"not json").map(|s| s.as_str().to_owned()),
            Ok(a.into())
        );
        // A delivery signed for one shop, replayed with another's header.
        let mismatch = |field| Err(ShopError::Mismatch { field });
        assert_eq!(
            shop(redact, Some(b), json!({"shop_domain": a})),
            mismatch("shop_domain")
        );
        assert_eq!(
            shop(redact, Some(a), json!({"shop_domain": "x"})),
            mismatch("shop_domain")
        );
        assert_eq!(
            shop(redact, None, json!({"id": 1})),
            Err(ShopError::Invalid)
        );
        assert_eq!(
            shop(redact, Some("not a shop"), json!({"shop_domain": a})),
            Err(ShopError::Invalid)
        );
        // app/uninstalled: the payload is the shop, named as myshopify_domain
        // and domain.
        let up = APP_UNINSTALLED;
        let shop_a = json!({"id": 1, "myshopify_domain": a, "domain": a});
        assert_eq!(shop(up, Some(a), shop_a.clone()), Ok(a.into()));
        assert_eq!(shop(up, None, shop_a.clone()), Ok(a.into()));
        assert_eq!(shop(up, Some(b), shop_a), mismatch("myshopify_domain"));
        let custom = json!({"myshopify_domain": a, "domain": "shop.example.com"});
        assert_eq!(shop(up, Some(a), custom.clone()), Ok(a.into()));
        assert_eq!(shop(up, Some(b), custom), mismatch("myshopify_domain"));
        assert_eq!(shop(up, Some(a), json!({"domain": a})), Ok(a.into()));
        assert_eq!(shop(up, Some(b), json!({"domain": a})), mismatch("domain"));
        assert_eq!(
            shop(up, Some(a), json!({"myshopify_domain": a, "domain": b})),
            mismatch("domain")
        );
        assert_eq!(
            shop(up, Some(a), json!({"id": 1})),
            Err(ShopError::NotNamed)
        );
        assert_eq!(
            shop(up, Some(a), json!({"domain": "shop.example.com"})),
            Err(ShopError::NotNamed)
        );
        assert_eq!(
            webhook_shop(up, Some(a), b"not json").map(|s| s.as_str().to_owned()),
            Err(ShopError::NotNamed)
        );
    }

    #[test]
    fn triggered_at_must_fall_in_the_replay_window() {
        let now = Utc::now();
        let at =
            |d: chrono::Duration| (now + d).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let window = chrono::Duration::from_std(WEBHOOK_REPLAY_WINDOW).unwrap_or_default();
        let check = |d| check_triggered_at(Some(&at(d)), now);
        assert_eq!(check(chrono::Duration::zero()), Ok(()));
        assert_eq!(check(-chrono::Duration::hours(4)), Ok(()));
        assert_eq!(check(chrono::Duration::minutes(1)), Ok(()));
        assert_eq!(check(-window + chrono::Duration::minutes(1)), Ok(()));
        assert_eq!(
            check(-window - chrono::Duration::minutes(1)),
            Err(TimeError::Stale)
        );
        assert_eq!(check(chrono::Duration::hours(1)), Err(TimeError::Future));
        assert_eq!(check_triggered_at(None, now), Ok(()));
        assert_eq!(check_triggered_at(Some("yesterday"), now), Ok(()));
        assert_eq!(
            check_triggered_at(Some("2020-01-01T00:00:00+02:00"), now),
            Err(TimeError::Stale)
        );
    }

    #[test]
    fn needles_from_payload() {
        let p = json!({"shop_domain": "a.myshopify.com",
                       "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
                       "orders_to_redact": [1]});
        assert_eq!(
            customer_needles(&p),
            vec!["john@example.com", "555-625-1199", "191167"]
        );
        assert!(customer_needles(&json!({"customer": {"phone": null}})).is_empty());
    }
}
