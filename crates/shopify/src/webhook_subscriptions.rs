//! Webhook subscriptions: what keeps the store mirror current. At install
//! the app subscribes each of [`MIRROR_TOPICS`] at its webhook address with
//! [`AdminClient::create_webhook_subscription`]; subscribing again (a
//! re-install, a restart) is not an error.
//!
//! The wire format is Shopify's 2026-10 shape:
//! `webhookSubscriptionCreate(topic: WebhookSubscriptionTopic!,
//! webhookSubscription: WebhookSubscriptionInput!)` with `{ uri, format }`
//! (`callbackUrl` is deprecated), answering `{ webhookSubscription { id
//! topic uri … } userErrors { field message } }`. A topic and address
//! already subscribed answers the user error "Address for this topic has
//! already been taken".

use serde::Deserialize;
use serde_json::json;

use crate::client::AdminClient;
use crate::domain::ShopDomain;
use crate::error::ShopifyError;
use hirecj_domain::Secret;

/// The topics the store mirror subscribes (GraphQL `WebhookSubscriptionTopic`
/// values).
pub const MIRROR_TOPICS: &[&str] = &[
    "ORDERS_CREATE",
    "ORDERS_UPDATED",
    "ORDERS_CANCELLED",
    "ORDERS_PAID",
    "ORDERS_FULFILLED",
    "ORDERS_DELETE",
    "REFUNDS_CREATE",
    "PRODUCTS_CREATE",
    "PRODUCTS_UPDATE",
    "PRODUCTS_DELETE",
    "CUSTOMERS_CREATE",
    "CUSTOMERS_UPDATE",
    "CUSTOMERS_DELETE",
    "BULK_OPERATIONS_FINISH",
    "APP_UNINSTALLED",
];

/// Subscribes a topic. Variables: `topic: WebhookSubscriptionTopic!`,
/// `webhookSubscription: { uri: String!, format: JSON }`.
pub const WEBHOOK_SUBSCRIPTION_CREATE: &str = "mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) { webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) { webhookSubscription { id topic uri format createdAt } userErrors { field message } } }";

/// What Shopify says when the topic is already subscribed at the address.
const ALREADY_TAKEN: &str = "already been taken";

/// A webhook subscription as Shopify returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSubscription {
    /// `gid://shopify/WebhookSubscription/…`.
    pub id: String,
    /// The topic, e.g. `ORDERS_CREATE`.
    pub topic: String,
    /// Where deliveries go.
    pub uri: String,
}

/// The outcome of [`AdminClient::create_webhook_subscription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscribed {
    /// A new subscription.
    Created(WebhookSubscription),
    /// The topic was already subscribed at that address.
    AlreadySubscribed,
}

/// A `userErrors` entry.
#[derive(Debug, Clone, Deserialize)]
struct UserError {
    #[serde(default)]
    field: Option<Vec<String>>,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    webhook_subscription: Option<WebhookSubscription>,
    #[serde(default)]
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateData {
    webhook_subscription_create: Option<Payload>,
}

impl AdminClient {
    /// Subscribes `topic` (a `WebhookSubscriptionTopic` value such as
    /// `ORDERS_CREATE`) of `shop` at `uri`, JSON format. A subscription
    /// that already exists is [`Subscribed::AlreadySubscribed`], not an
    /// error; any other user error is [`ShopifyError::InvalidInput`] with
    /// Shopify's messages.
    pub async fn create_webhook_subscription(
        &self,
        shop: &ShopDomain,
        token: &Secret,
        topic: &str,
        uri: &str,
    ) -> Result<Subscribed, ShopifyError> {
        let data: CreateData = self
            .query(
                shop,
                token,
                WEBHOOK_SUBSCRIPTION_CREATE,
                json!({
                    "topic": topic,
                    "webhookSubscription": {"uri": uri, "format": "JSON"},
                }),
            )
            .await?;
        let payload = data
            .webhook_subscription_create
            .ok_or_else(|| ShopifyError::Decode {
                message: "webhookSubscriptionCreate returned nothing".to_owned(),
                request_id: None,
            })?;
        outcome(payload)
    }
}

fn outcome(payload: Payload) -> Result<Subscribed, ShopifyError> {
    if payload.user_errors.is_empty() {
        return payload
            .webhook_subscription
            .map(Subscribed::Created)
            .ok_or_else(|| ShopifyError::Decode {
                message: "webhookSubscriptionCreate returned no subscription".to_owned(),
                request_id: None,
            });
    }
    if payload
        .user_errors
        .iter()
        .all(|e| e.message.contains(ALREADY_TAKEN))
    {
        return Ok(Subscribed::AlreadySubscribed);
    }
    let messages: Vec<String> = payload
        .user_errors
        .iter()
        .map(|e| match &e.field {
            Some(field) if !field.is_empty() => format!("{}: {}", field.join("."), e.message),
            _ => e.message.clone(),
        })
        .collect();
    Err(ShopifyError::InvalidInput(format!(
        "webhookSubscriptionCreate: {}",
        messages.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(v: serde_json::Value) -> Payload {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn outcomes() {
        let created = outcome(payload(json!({
            "webhookSubscription": {"id": "gid://shopify/WebhookSubscription/1", "topic": "ORDERS_CREATE", "uri": "https://a.example/h"},
            "userErrors": []
        })))
        .unwrap();
        assert!(matches!(created, Subscribed::Created(s) if s.topic == "ORDERS_CREATE"));
        let taken = outcome(payload(json!({
            "webhookSubscription": null,
            "userErrors": [{"field": ["webhookSubscription", "callbackUrl"], "message": "Address for this topic has already been taken"}]
        })))
        .unwrap();
        assert_eq!(taken, Subscribed::AlreadySubscribed);
        let err = outcome(payload(json!({
            "webhookSubscription": null,
            "userErrors": [{"field": ["webhookSubscription", "uri"], "message": "Address is invalid"}]
        })))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("webhookSubscription.uri: Address is invalid")
        );
    }

    #[test]
    fn the_mutation_names_its_operation() {
        assert!(WEBHOOK_SUBSCRIPTION_CREATE.starts_with("mutation WebhookSubscriptionCreate("));
        assert_eq!(MIRROR_TOPICS.len(), 15);
    }
}
