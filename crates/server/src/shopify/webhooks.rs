//! `POST /api/v1/shopify/webhooks`: Shopify's webhooks, one endpoint for
//! every topic (`X-Shopify-Topic`).
//!
//! 1. `X-Shopify-Hmac-Sha256` must be the HMAC of the raw body under the
//!    client secret (401 otherwise, before anything else is read).
//! 2. `X-Shopify-Webhook-Id` is recorded; a delivery seen before answers
//!    200 without being processed again. When processing fails the record is
//!    forgotten and the answer is 500, so Shopify's retry is processed.
//! 3. Topics (what each deletes is documented in `docs/shopify.md`):
//!    `app/uninstalled`, `customers/data_request`, `customers/redact`,
//!    `shop/redact`; others are acknowledged and ignored.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hirecj_domain::IntegrationStatus;
use hirecj_shopify::{ShopDomain, clear_shop, signing};
use serde_json::{Value, json};

use super::PROVIDER;
use crate::app::AppState;

const HMAC_HEADER: &str = "x-shopify-hmac-sha256";
const TOPIC_HEADER: &str = "x-shopify-topic";
const SHOP_HEADER: &str = "x-shopify-shop-domain";
const ID_HEADER: &str = "x-shopify-webhook-id";

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
    Store(#[from] hirecj_store::StoreError),
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
    let shop = match webhook_shop(header(&headers, SHOP_HEADER), &body) {
        Some(shop) => shop,
        None => {
            tracing::warn!(topic, "signed webhook without a valid shop domain");
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_shop",
                "no valid shop domain",
            );
        }
    };
    let webhook_id = header(&headers, ID_HEADER).map(str::to_owned);
    if let Some(id) = &webhook_id {
        match state.store.record_webhook(id, &topic, shop.as_str()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(%shop, topic, webhook_id = %id, "duplicate webhook delivery ignored");
                return reply(StatusCode::OK, json!({"status": "duplicate"}));
            }
            Err(e) => {
                tracing::error!(%shop, topic, error = %e, "could not record the webhook");
                return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "try again");
            }
        }
    } else {
        tracing::warn!(%shop, topic, "webhook without X-Shopify-Webhook-Id: processed without deduplication");
    }
    match process(&state, &topic, &shop, &body).await {
        Ok(status) => {
            tracing::info!(%shop, topic, webhook_id = webhook_id.as_deref(), status, "webhook processed");
            reply(StatusCode::OK, json!({"status": status}))
        }
        Err(e) => {
            tracing::error!(%shop, topic, error = %e, "webhook processing failed");
            if let Some(id) = &webhook_id
                && let Err(e) = state.store.forget_webhook(id).await
            {
                tracing::error!(%shop, topic, error = %e, "could not forget the failed webhook");
            }
            match e {
                ProcessError::Payload(_) => error(
                    StatusCode::BAD_REQUEST,
                    "invalid_payload",
                    "payload is not JSON",
                ),
                ProcessError::Store(_) => {
                    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "try again")
                }
            }
        }
    }
}

/// The shop a verified delivery is about: `X-Shopify-Shop-Domain`, else the
/// payload's `shop_domain`, canonical. The header is not covered by the
/// signature, so when the signed payload names a shop too, the two must agree:
/// a captured delivery cannot be replayed against another shop.
fn webhook_shop(header_shop: Option<&str>, body: &[u8]) -> Option<ShopDomain> {
    let payload_shop = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("shop_domain")?.as_str().map(str::to_owned));
    let shop = ShopDomain::parse_exact(header_shop.or(payload_shop.as_deref())?).ok()?;
    match payload_shop {
        Some(p) if !p.trim().eq_ignore_ascii_case(shop.as_str()) => None,
        _ => Some(shop),
    }
}

async fn process(
    state: &AppState,
    topic: &str,
    shop: &ShopDomain,
    body: &[u8],
) -> Result<&'static str, ProcessError> {
    let store = &state.store;
    match topic {
        "app/uninstalled" => {
            let found = store
                .set_integration_status(PROVIDER, shop.as_str(), IntegrationStatus::Uninstalled)
                .await?;
            clear_cache(state, shop).await;
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
            // Cached tool results may name the customer too.
            clear_cache(state, shop).await;
            tracing::info!(%shop, records = counts.total(), "customer redacted");
            Ok("redacted")
        }
        "shop/redact" => {
            let deleted = store.delete_shop_data(shop.as_str()).await?;
            clear_cache(state, shop).await;
            Ok(if deleted { "deleted" } else { "nothing_stored" })
        }
        other => {
            tracing::info!(%shop, topic = other, "webhook topic not handled; acknowledged");
            Ok("ignored")
        }
    }
}

async fn clear_cache(state: &AppState, shop: &ShopDomain) {
    if let Err(e) = clear_shop(state.shopify.cache.as_ref(), shop).await {
        tracing::warn!(%shop, error = %e, "could not clear the shop's cache");
    }
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
    fn the_shop_header_must_agree_with_the_signed_payload() {
        let body =
            |shop: &str| serde_json::to_vec(&json!({"shop_domain": shop})).unwrap_or_default();
        let a = "a.myshopify.com";
        let b = "b.myshopify.com";
        let shop =
            |h: Option<&str>, body: &[u8]| webhook_shop(h, body).map(|s| s.as_str().to_owned());
        assert_eq!(shop(Some(a), &body(a)).as_deref(), Some(a));
        assert_eq!(shop(None, &body(a)).as_deref(), Some(a));
        // app/uninstalled names no shop_domain: the header alone decides.
        assert_eq!(shop(Some(a), br#"{"id": 1}"#).as_deref(), Some(a));
        assert_eq!(shop(Some(a), b"not json").as_deref(), Some(a));
        // A delivery signed for one shop, replayed with another's header.
        assert_eq!(shop(Some(b), &body(a)), None);
        assert_eq!(shop(None, br#"{"id": 1}"#), None);
        assert_eq!(shop(Some("not a shop"), &body(a)), None);
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
