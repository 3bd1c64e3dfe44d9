//! The GraphQL side of webhook subscriptions, on Shopify's 2026-10 shape:
//! `webhookSubscriptionCreate(topic:, webhookSubscription: { uri format … })`,
//! `webhookSubscriptionDelete(id:)`, `webhookSubscriptions(first: …)` and
//! `webhookSubscription(id:)`. Subscriptions belong to the requesting shop.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use crate::bulk::BulkRequest;
use crate::graphql::{DateTimeScalar, UnsignedInt64, Url, gid, parse_gid};
use crate::hooks::WebhookSubscription;
use crate::lock;
use crate::webhooks::WebhookTopic;

/// `WebhookSubscriptionTopic` (the subscribable topics the simulator
/// sends).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookSubscriptionTopic {
    /// `app/uninstalled`.
    AppUninstalled,
    /// `bulk_operations/finish`.
    BulkOperationsFinish,
    /// `customers/create`.
    CustomersCreate,
    /// `customers/delete`.
    CustomersDelete,
    /// `customers/update`.
    CustomersUpdate,
    /// `orders/cancelled`.
    OrdersCancelled,
    /// `orders/create`.
    OrdersCreate,
    /// `orders/delete`.
    OrdersDelete,
    /// `orders/fulfilled`.
    OrdersFulfilled,
    /// `orders/paid`.
    OrdersPaid,
    /// `orders/updated`.
    OrdersUpdated,
    /// `products/create`.
    ProductsCreate,
    /// `products/delete`.
    ProductsDelete,
    /// `products/update`.
    ProductsUpdate,
    /// `refunds/create`.
    RefundsCreate,
}

impl From<WebhookSubscriptionTopic> for WebhookTopic {
    fn from(t: WebhookSubscriptionTopic) -> Self {
        use WebhookSubscriptionTopic as G;
        match t {
            G::AppUninstalled => WebhookTopic::AppUninstalled,
            G::BulkOperationsFinish => WebhookTopic::BulkOperationsFinish,
            G::CustomersCreate => WebhookTopic::CustomersCreate,
            G::CustomersDelete => WebhookTopic::CustomersDelete,
            G::CustomersUpdate => WebhookTopic::CustomersUpdate,
            G::OrdersCancelled => WebhookTopic::OrdersCancelled,
            G::OrdersCreate => WebhookTopic::OrdersCreate,
            G::OrdersDelete => WebhookTopic::OrdersDelete,
            G::OrdersFulfilled => WebhookTopic::OrdersFulfilled,
            G::OrdersPaid => WebhookTopic::OrdersPaid,
            G::OrdersUpdated => WebhookTopic::OrdersUpdated,
            G::ProductsCreate => WebhookTopic::ProductsCreate,
            G::ProductsDelete => WebhookTopic::ProductsDelete,
            G::ProductsUpdate => WebhookTopic::ProductsUpdate,
            G::RefundsCreate => WebhookTopic::RefundsCreate,
        }
    }
}

impl WebhookSubscriptionTopic {
    fn from_topic(t: WebhookTopic) -> Option<Self> {
        use WebhookSubscriptionTopic as G;
        Some(match t {
            WebhookTopic::AppUninstalled => G::AppUninstalled,
            WebhookTopic::BulkOperationsFinish => G::BulkOperationsFinish,
            WebhookTopic::CustomersCreate => G::CustomersCreate,
            WebhookTopic::CustomersDelete => G::CustomersDelete,
            WebhookTopic::CustomersUpdate => G::CustomersUpdate,
            WebhookTopic::OrdersCancelled => G::OrdersCancelled,
            WebhookTopic::OrdersCreate => G::OrdersCreate,
            WebhookTopic::OrdersDelete => G::OrdersDelete,
            WebhookTopic::OrdersFulfilled => G::OrdersFulfilled,
            WebhookTopic::OrdersPaid => G::OrdersPaid,
            WebhookTopic::OrdersUpdated => G::OrdersUpdated,
            WebhookTopic::ProductsCreate => G::ProductsCreate,
            WebhookTopic::ProductsDelete => G::ProductsDelete,
            WebhookTopic::ProductsUpdate => G::ProductsUpdate,
            WebhookTopic::RefundsCreate => G::RefundsCreate,
            WebhookTopic::CustomersDataRequest
            | WebhookTopic::CustomersRedact
            | WebhookTopic::ShopRedact => return None,
        })
    }
}

/// `WebhookSubscriptionFormat`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookSubscriptionFormat {
    /// JSON bodies (the only format the simulator sends).
    Json,
    /// XML bodies (refused: not simulated).
    Xml,
}

/// `WebhookSubscriptionSortKeys`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookSubscriptionSortKeys {
    /// Creation time.
    CreatedAt,
    /// Id.
    Id,
}

/// `WebhookSubscriptionInput` (what the simulator reads of it).
#[derive(InputObject, Debug, Default)]
pub struct WebhookSubscriptionInput {
    /// Where deliveries go.
    uri: Option<String>,
    /// The deprecated address field.
    callback_url: Option<Url>,
    /// JSON only.
    format: Option<WebhookSubscriptionFormat>,
    /// A name.
    name: Option<String>,
    /// A filter (accepted, not applied).
    filter: Option<String>,
    /// Fields to include (accepted, not applied: payloads are whole).
    include_fields: Option<Vec<String>>,
    /// Metafield namespaces (accepted, ignored).
    metafield_namespaces: Option<Vec<String>>,
}

/// `UserError`.
#[derive(SimpleObject, Clone, Debug)]
pub struct UserError {
    field: Option<Vec<String>>,
    message: String,
}

/// `ApiVersion`.
#[derive(SimpleObject, Clone, Debug)]
pub struct ApiVersion {
    display_name: String,
    handle: String,
    supported: bool,
}

/// `WebhookSubscriptionCreatePayload`.
#[derive(SimpleObject)]
pub struct WebhookSubscriptionCreatePayload {
    webhook_subscription: Option<WebhookSubscriptionObject>,
    user_errors: Vec<UserError>,
}

/// `WebhookSubscriptionDeletePayload`.
#[derive(SimpleObject)]
pub struct WebhookSubscriptionDeletePayload {
    deleted_webhook_subscription_id: Option<ID>,
    user_errors: Vec<UserError>,
}

/// `WebhookSubscription`.
pub struct WebhookSubscriptionObject {
    sub: WebhookSubscription,
    api_version: String,
}

#[Object(name = "WebhookSubscription")]
impl WebhookSubscriptionObject {
    async fn id(&self) -> ID {
        gid("WebhookSubscription", self.sub.id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.sub.id)
    }
    async fn topic(&self) -> Result<WebhookSubscriptionTopic> {
        WebhookSubscriptionTopic::from_topic(self.sub.topic)
            .ok_or_else(|| "not a subscribable topic".into())
    }
    async fn uri(&self) -> &str {
        &self.sub.uri
    }
    /// Deprecated on Shopify: `uri`.
    async fn callback_url(&self) -> Url {
        Url(self.sub.uri.clone())
    }
    async fn format(&self) -> WebhookSubscriptionFormat {
        WebhookSubscriptionFormat::Json
    }
    async fn name(&self) -> Option<&str> {
        self.sub.name.as_deref()
    }
    async fn filter(&self) -> Option<&str> {
        None
    }
    async fn include_fields(&self) -> &[String] {
        &self.sub.include_fields
    }
    async fn metafield_namespaces(&self) -> Vec<String> {
        Vec::new()
    }
    async fn created_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.sub.created_at)
    }
    async fn updated_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.sub.updated_at)
    }
    async fn api_version(&self) -> ApiVersion {
        ApiVersion {
            display_name: self.api_version.clone(),
            handle: self.api_version.clone(),
            supported: true,
        }
    }
}

fn object(req: &BulkRequest, sub: WebhookSubscription) -> WebhookSubscriptionObject {
    WebhookSubscriptionObject {
        sub,
        api_version: req.store.inner.config.api_version.clone(),
    }
}

/// The webhook mutations.
#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Subscribes the shop to `topic` at `webhookSubscription.uri`.
    async fn webhook_subscription_create(
        &self,
        ctx: &Context<'_>,
        topic: WebhookSubscriptionTopic,
        webhook_subscription: WebhookSubscriptionInput,
    ) -> Result<Option<WebhookSubscriptionCreatePayload>> {
        let req = ctx.data::<BulkRequest>()?;
        let input = webhook_subscription;
        let refuse = |field: &[&str], message: &str| {
            Ok(Some(WebhookSubscriptionCreatePayload {
                webhook_subscription: None,
                user_errors: vec![UserError {
                    field: Some(field.iter().map(|f| f.to_string()).collect()),
                    message: message.to_string(),
                }],
            }))
        };
        if input.format == Some(WebhookSubscriptionFormat::Xml) {
            return refuse(
                &["webhookSubscription", "format"],
                "The development store sends JSON only",
            );
        }
        let Some(uri) = input.uri.or(input.callback_url.map(|u| u.0)) else {
            return refuse(&["webhookSubscription", "uri"], "Address can't be blank");
        };
        let _ = (input.filter, input.metafield_namespaces);
        let created = lock(&req.store.inner.hooks).subscribe(
            &req.shop,
            topic.into(),
            &uri,
            input.name,
            input.include_fields.unwrap_or_default(),
        );
        Ok(Some(match created {
            Ok(sub) => WebhookSubscriptionCreatePayload {
                webhook_subscription: Some(object(req, sub)),
                user_errors: Vec::new(),
            },
            Err(e) => WebhookSubscriptionCreatePayload {
                webhook_subscription: None,
                user_errors: vec![UserError {
                    field: Some(e.field),
                    message: e.message,
                }],
            },
        }))
    }

    /// Deletes a subscription of the shop.
    async fn webhook_subscription_delete(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Option<WebhookSubscriptionDeletePayload>> {
        let req = ctx.data::<BulkRequest>()?;
        let removed = parse_gid("WebhookSubscription", &id)
            .is_some_and(|n| lock(&req.store.inner.hooks).unsubscribe(&req.shop, n));
        Ok(Some(if removed {
            WebhookSubscriptionDeletePayload {
                deleted_webhook_subscription_id: Some(id),
                user_errors: Vec::new(),
            }
        } else {
            WebhookSubscriptionDeletePayload {
                deleted_webhook_subscription_id: None,
                user_errors: vec![UserError {
                    field: Some(vec!["id".to_string()]),
                    message: "Webhook subscription does not exist".to_string(),
                }],
            }
        }))
    }
}

/// The arguments of `webhookSubscriptions`.
pub(crate) struct ListArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
    pub reverse: bool,
    pub topics: Option<Vec<WebhookSubscriptionTopic>>,
    pub uri: Option<String>,
}

/// `webhookSubscriptions(…)`: the shop's subscriptions.
pub(crate) fn list(
    ctx: &Context<'_>,
    args: ListArgs,
) -> Result<Connection<String, WebhookSubscriptionObject>> {
    let req = ctx.data::<BulkRequest>()?;
    let mut subs = lock(&req.store.inner.hooks).of_shop(&req.shop);
    if let Some(topics) = &args.topics {
        let topics: Vec<WebhookTopic> = topics.iter().map(|t| (*t).into()).collect();
        subs.retain(|s| topics.contains(&s.topic));
    }
    if let Some(uri) = &args.uri {
        subs.retain(|s| &s.uri == uri);
    }
    if args.reverse {
        subs.reverse();
    }
    let ids: Vec<u64> = subs.iter().map(|s| s.id).collect();
    let page = crate::graphql::Page {
        first: args.first,
        last: args.last,
        after: args.after,
        before: args.before,
    };
    let (start, end) = crate::graphql::window(&ids, &page)?;
    let mut conn = Connection::new(start > 0, end < ids.len());
    conn.edges.extend(
        subs[start..end]
            .iter()
            .map(|s| Edge::new(crate::graphql::encode_cursor(s.id), object(req, s.clone()))),
    );
    Ok(conn)
}

/// `webhookSubscription(id:)`.
pub(crate) fn find(ctx: &Context<'_>, id: &ID) -> Result<Option<WebhookSubscriptionObject>> {
    let req = ctx.data::<BulkRequest>()?;
    let Some(n) = parse_gid("WebhookSubscription", id) else {
        return Ok(None);
    };
    let sub = lock(&req.store.inner.hooks)
        .of_shop(&req.shop)
        .into_iter()
        .find(|s| s.id == n);
    Ok(sub.map(|s| object(req, s)))
}
