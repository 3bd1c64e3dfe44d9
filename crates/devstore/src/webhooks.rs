//! Webhooks out: signed deliveries to the app, as Shopify sends them.

use std::fmt;
use std::str::FromStr;

use chrono::{SecondsFormat, Utc};
use hirecj_shopify::signing::sign_webhook;
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value as Json, json};

use crate::data::Dataset;
use crate::payloads;
use crate::shop::normalize_shop;
use crate::{DevStoreConfig, DevStoreError};

/// The topics the simulator can send.
///
/// The compliance topics (`customers/data_request`, `customers/redact`,
/// `shop/redact`) and `app/uninstalled` go to the app's configured webhook
/// URL ([`crate::DevStoreConfig::app_webhook_url`]), as the app's
/// configuration file subscribes them on Shopify; the others go to the
/// URIs subscribed with `webhookSubscriptionCreate` when the store's data
/// changes (payloads: `payloads.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookTopic {
    /// `app/uninstalled`: payload is the shop resource.
    AppUninstalled,
    /// `customers/data_request` (mandatory compliance topic).
    CustomersDataRequest,
    /// `customers/redact` (mandatory compliance topic).
    CustomersRedact,
    /// `shop/redact` (mandatory compliance topic, 48 h after uninstall).
    ShopRedact,
    /// `orders/create`: the order.
    OrdersCreate,
    /// `orders/updated`: the order.
    OrdersUpdated,
    /// `orders/cancelled`: the order.
    OrdersCancelled,
    /// `orders/paid`: the order.
    OrdersPaid,
    /// `orders/fulfilled`: the order.
    OrdersFulfilled,
    /// `orders/delete`: `{"id"}`.
    OrdersDelete,
    /// `refunds/create`: the refund, with `order_id`.
    RefundsCreate,
    /// `products/create`: the product.
    ProductsCreate,
    /// `products/update`: the product.
    ProductsUpdate,
    /// `products/delete`: `{"id"}`.
    ProductsDelete,
    /// `customers/create`: the customer.
    CustomersCreate,
    /// `customers/update`: the customer.
    CustomersUpdate,
    /// `customers/delete`: `{"id"}`.
    CustomersDelete,
    /// `bulk_operations/finish`: the finished bulk operation.
    BulkOperationsFinish,
}

impl WebhookTopic {
    /// Every topic.
    pub const ALL: [WebhookTopic; 18] = [
        WebhookTopic::AppUninstalled,
        WebhookTopic::CustomersDataRequest,
        WebhookTopic::CustomersRedact,
        WebhookTopic::ShopRedact,
        WebhookTopic::OrdersCreate,
        WebhookTopic::OrdersUpdated,
        WebhookTopic::OrdersCancelled,
        WebhookTopic::OrdersPaid,
        WebhookTopic::OrdersFulfilled,
        WebhookTopic::OrdersDelete,
        WebhookTopic::RefundsCreate,
        WebhookTopic::ProductsCreate,
        WebhookTopic::ProductsUpdate,
        WebhookTopic::ProductsDelete,
        WebhookTopic::CustomersCreate,
        WebhookTopic::CustomersUpdate,
        WebhookTopic::CustomersDelete,
        WebhookTopic::BulkOperationsFinish,
    ];

    /// The mandatory compliance topics (not subscribable through the API).
    pub const COMPLIANCE: [WebhookTopic; 3] = [
        WebhookTopic::CustomersDataRequest,
        WebhookTopic::CustomersRedact,
        WebhookTopic::ShopRedact,
    ];

    /// The wire name, e.g. `app/uninstalled`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookTopic::AppUninstalled => "app/uninstalled",
            WebhookTopic::CustomersDataRequest => "customers/data_request",
            WebhookTopic::CustomersRedact => "customers/redact",
            WebhookTopic::ShopRedact => "shop/redact",
            WebhookTopic::OrdersCreate => "orders/create",
            WebhookTopic::OrdersUpdated => "orders/updated",
            WebhookTopic::OrdersCancelled => "orders/cancelled",
            WebhookTopic::OrdersPaid => "orders/paid",
            WebhookTopic::OrdersFulfilled => "orders/fulfilled",
            WebhookTopic::OrdersDelete => "orders/delete",
            WebhookTopic::RefundsCreate => "refunds/create",
            WebhookTopic::ProductsCreate => "products/create",
            WebhookTopic::ProductsUpdate => "products/update",
            WebhookTopic::ProductsDelete => "products/delete",
            WebhookTopic::CustomersCreate => "customers/create",
            WebhookTopic::CustomersUpdate => "customers/update",
            WebhookTopic::CustomersDelete => "customers/delete",
            WebhookTopic::BulkOperationsFinish => "bulk_operations/finish",
        }
    }

    /// The GraphQL `WebhookSubscriptionTopic` value, e.g. `ORDERS_CREATE`.
    pub fn graphql_name(self) -> String {
        self.as_str().replace('/', "_").to_ascii_uppercase()
    }

    /// Whether the app may subscribe it with `webhookSubscriptionCreate`.
    pub fn subscribable(self) -> bool {
        !WebhookTopic::COMPLIANCE.contains(&self)
    }
}

impl fmt::Display for WebhookTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookTopic {
    type Err = String;

    /// Accepts `app/uninstalled` and `APP_UNINSTALLED` styles.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_uppercase().replace('/', "_");
        WebhookTopic::ALL
            .into_iter()
            .find(|t| t.graphql_name() == norm)
            .ok_or_else(|| {
                format!(
                    "unknown webhook topic {s:?} (expected one of: {})",
                    WebhookTopic::ALL.map(WebhookTopic::as_str).join(", ")
                )
            })
    }
}

/// One delivery, whatever the app answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// The topic.
    pub topic: WebhookTopic,
    /// `name.myshopify.com`.
    pub shop: String,
    /// `X-Shopify-Webhook-Id`.
    pub webhook_id: String,
    /// `X-Shopify-Event-Id`.
    pub event_id: String,
    /// The exact body bytes sent (JSON).
    pub body: String,
    /// HTTP status the app answered.
    pub status: u16,
}

impl WebhookDelivery {
    /// Whether the app accepted it (2xx).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The default payload of `topic` for the store in `dataset`.
pub(crate) fn default_payload(topic: WebhookTopic, ds: &Dataset) -> Json {
    let shop = &ds.shop;
    let mut rng = rand::thread_rng();
    let now = Utc::now();
    let customer = || {
        let with_orders: Vec<_> = ds
            .customers
            .iter()
            .filter(|c| ds.orders_of_customer(c.id).any(|o| o.created_at <= now))
            .collect();
        with_orders
            .choose(&mut rand::thread_rng())
            .copied()
            .or(ds.customers.first())
    };
    let order_ids = |cid: u64| -> Vec<u64> {
        ds.orders_of_customer(cid)
            .filter(|o| o.created_at <= now)
            .map(|o| o.id)
            .collect()
    };
    let customer_json =
        |c: &crate::data::Customer| json!({"id": c.id, "email": c.email, "phone": c.phone});
    match topic {
        WebhookTopic::AppUninstalled => json!({
            "id": shop.id,
            "name": shop.name,
            "email": shop.email,
            "domain": shop.myshopify_domain,
            "myshopify_domain": shop.myshopify_domain,
            "customer_email": shop.email,
            "currency": shop.currency_code,
            "iana_timezone": shop.iana_timezone,
            "plan_name": "partner_test",
            "plan_display_name": shop.plan_display_name,
            "shop_owner": "Dev Owner",
            "country": "US",
            "country_code": "US",
            "created_at": shop.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "updated_at": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        }),
        WebhookTopic::CustomersDataRequest => {
            let c = customer();
            json!({
                "shop_id": shop.id,
                "shop_domain": shop.myshopify_domain,
                "orders_requested": c.map(|c| order_ids(c.id)).unwrap_or_default(),
                "customer": c.map(customer_json),
                "data_request": {"id": rng.gen_range(1_000_000u64..10_000_000)},
            })
        }
        WebhookTopic::CustomersRedact => {
            let c = customer();
            json!({
                "shop_id": shop.id,
                "shop_domain": shop.myshopify_domain,
                "customer": c.map(customer_json),
                "orders_to_redact": c.map(|c| order_ids(c.id)).unwrap_or_default(),
            })
        }
        WebhookTopic::ShopRedact => json!({
            "shop_id": shop.id,
            "shop_domain": shop.myshopify_domain,
        }),
        // The data topics: the newest object the API shows.
        WebhookTopic::OrdersCreate
        | WebhookTopic::OrdersUpdated
        | WebhookTopic::OrdersCancelled
        | WebhookTopic::OrdersPaid
        | WebhookTopic::OrdersFulfilled => ds
            .visible_orders(now)
            .next_back()
            .map_or_else(|| json!({}), |o| payloads::order(ds, o)),
        WebhookTopic::RefundsCreate => ds
            .visible_orders(now)
            .rev()
            .find_map(|o| o.refund_list().last().map(|r| payloads::refund(ds, o, r)))
            .unwrap_or_else(|| json!({})),
        WebhookTopic::ProductsCreate | WebhookTopic::ProductsUpdate => ds
            .products
            .last()
            .map_or_else(|| json!({}), |p| payloads::product(ds, p)),
        WebhookTopic::OrdersDelete => payloads::deleted(ds.orders.last().map_or(0, |o| o.id)),
        WebhookTopic::ProductsDelete => payloads::deleted(ds.products.last().map_or(0, |p| p.id)),
        WebhookTopic::CustomersCreate | WebhookTopic::CustomersUpdate => ds
            .customers
            .last()
            .map_or_else(|| json!({}), |c| payloads::customer(ds, c)),
        WebhookTopic::CustomersDelete => payloads::deleted(ds.customers.last().map_or(0, |c| c.id)),
        WebhookTopic::BulkOperationsFinish => json!({
            "admin_graphql_api_id": "gid://shopify/BulkOperation/4100000001",
            "completed_at": payloads::shop_time(ds, now),
            "created_at": payloads::shop_time(ds, now),
            "error_code": null,
            "status": "completed",
            "type": "query",
        }),
    }
}

/// One signed webhook to send: what goes on the wire.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub topic: WebhookTopic,
    /// `name.myshopify.com`.
    pub shop: String,
    /// Where it goes.
    pub uri: String,
    /// The exact body bytes (JSON).
    pub body: String,
    /// `X-Shopify-Webhook-Id` (the same on a retried or duplicated delivery).
    pub webhook_id: String,
    /// `X-Shopify-Event-Id`.
    pub event_id: String,
    /// `X-Shopify-Triggered-At` (when the change happened).
    pub triggered_at: String,
}

impl Outgoing {
    /// A new delivery of `payload` about `shop` to `uri`, with fresh ids.
    pub(crate) fn new(
        topic: WebhookTopic,
        shop: &str,
        uri: &str,
        payload: &Json,
    ) -> Result<Outgoing, serde_json::Error> {
        Ok(Outgoing {
            topic,
            shop: shop.to_string(),
            uri: uri.to_string(),
            body: serde_json::to_string(payload)?,
            webhook_id: uuid::Uuid::new_v4().to_string(),
            event_id: uuid::Uuid::new_v4().to_string(),
            triggered_at: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
        })
    }
}

/// Signs and POSTs `out` (the HTTP client carries the timeout); returns
/// the HTTP status the receiver answered.
pub(crate) async fn post(
    http: &reqwest::Client,
    config: &DevStoreConfig,
    out: &Outgoing,
) -> Result<u16, reqwest::Error> {
    let response = http
        .post(&out.uri)
        .header("content-type", "application/json")
        .header("x-shopify-topic", out.topic.as_str())
        .header("x-shopify-shop-domain", &out.shop)
        .header("x-shopify-api-version", &config.api_version)
        .header("x-shopify-webhook-id", &out.webhook_id)
        .header("x-shopify-triggered-at", &out.triggered_at)
        .header("x-shopify-event-id", &out.event_id)
        .header(
            "x-shopify-hmac-sha256",
            sign_webhook(out.body.as_bytes(), &config.client_secret),
        )
        .body(out.body.clone())
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// Builds, signs and POSTs one webhook to the app's configured webhook URL.
pub(crate) async fn deliver(
    http: &reqwest::Client,
    config: &DevStoreConfig,
    topic: WebhookTopic,
    ds: &Dataset,
    payload: Option<Json>,
) -> Result<WebhookDelivery, DevStoreError> {
    let payload = payload.unwrap_or_else(|| default_payload(topic, ds));
    let out = Outgoing::new(
        topic,
        &ds.shop.myshopify_domain,
        &config.app_webhook_url,
        &payload,
    )?;
    let status = post(http, config, &out)
        .await
        .map_err(|source| DevStoreError::Webhook {
            url: config.app_webhook_url.clone(),
            source,
        })?;
    tracing::info!(topic = topic.as_str(), shop = %out.shop, status, "development store sent a webhook");
    Ok(WebhookDelivery {
        topic,
        shop: out.shop,
        webhook_id: out.webhook_id,
        event_id: out.event_id,
        body: out.body,
        status,
    })
}

/// Sends one webhook without a running [`crate::DevStore`] (for the CLI:
/// `hirecj devstore webhook …`): the default payload comes from the shop's
/// dataset for today, `payload` replaces it. Uses `config.app_webhook_url`,
/// `config.client_secret` and `config.api_version`.
pub async fn send_webhook(
    config: &DevStoreConfig,
    topic: WebhookTopic,
    shop: &str,
    payload: Option<Json>,
) -> Result<WebhookDelivery, DevStoreError> {
    let domain = normalize_shop(shop).ok_or_else(|| DevStoreError::InvalidShop(shop.into()))?;
    let ds = Dataset::generate(&domain, Utc::now().date_naive());
    deliver(&crate::http_client(), config, topic, &ds, payload).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        for t in WebhookTopic::ALL {
            assert_eq!(t.as_str().parse::<WebhookTopic>().unwrap(), t);
        }
        assert_eq!(
            "CUSTOMERS_DATA_REQUEST".parse::<WebhookTopic>().unwrap(),
            WebhookTopic::CustomersDataRequest
        );
        assert_eq!(
            "ORDERS_CREATE".parse::<WebhookTopic>().unwrap(),
            WebhookTopic::OrdersCreate
        );
        assert_eq!(
            "bulk_operations/finish".parse::<WebhookTopic>().unwrap(),
            WebhookTopic::BulkOperationsFinish
        );
        assert!("orders/deleted".parse::<WebhookTopic>().is_err());
    }

    #[test]
    fn payloads_have_the_documented_keys() {
        let ds = Dataset::generate("payloads", Utc::now().date_naive());
        let p = default_payload(WebhookTopic::CustomersDataRequest, &ds);
        for k in [
            "shop_id",
            "shop_domain",
            "orders_requested",
            "customer",
            "data_request",
        ] {
            assert!(p.get(k).is_some(), "{k}");
        }
        let cid = p["customer"]["id"].as_u64().unwrap();
        assert!(ds.customer(cid).is_some());
        assert!(!p["orders_requested"].as_array().unwrap().is_empty());
        let p = default_payload(WebhookTopic::CustomersRedact, &ds);
        for k in ["shop_id", "shop_domain", "customer", "orders_to_redact"] {
            assert!(p.get(k).is_some(), "{k}");
        }
        let p = default_payload(WebhookTopic::ShopRedact, &ds);
        assert_eq!(p["shop_domain"], "payloads.myshopify.com");
        assert_eq!(p["shop_id"].as_u64(), Some(ds.shop.id));
    }
}
