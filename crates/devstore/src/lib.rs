//! HireCJ's **development store**: a faithful simulator of the parts of
//! Shopify that HireCJ uses, so the whole product runs and is tested with
//! nothing configured.
//!
//! It speaks Shopify's wire formats (see `shared/reference/shopify.md`):
//!
//! * **OAuth**: an authorize (consent) page with *Install* and *Cancel*,
//!   redirecting to the app's callback with `code`, `hmac`, `host`, `shop`,
//!   `state` and `timestamp` signed with the client secret exactly as Shopify
//!   does; a token endpoint (JSON or form bodies, single-use codes that expire
//!   after a minute, expiring offline tokens with refresh-token rotation,
//!   non-expiring and online tokens).
//! * **GraphQL Admin API** subset (`shop`, `*Count`, `orders`, `products`,
//!   `customers` connections with `first`/`last`/`after`/`before`/`query`/
//!   `sortKey`/`reverse`), parsed and validated by `async-graphql` so an
//!   unknown field fails as on Shopify; `extensions.cost` on every response
//!   and a per-shop leaky bucket that answers `THROTTLED` when empty; 401 for
//!   unknown, expired, revoked or foreign tokens; `ACCESS_DENIED` without the
//!   needed `read_*` scope; orders older than 60 days hidden without
//!   `read_all_orders`.
//! * **Bulk operations**: `bulkOperationRunQuery` (a generic flattener over
//!   the same schema: `__parentId` children, at most five connections two
//!   levels deep, one running query per shop), `bulkOperation(id:)`,
//!   `currentBulkOperation` and the JSONL download.
//! * **Large shops**: a shop whose handle ends in `-large` has about
//!   100,000 orders over 365 days and is granted `read_all_orders`
//!   ([`is_large_shop`]).
//! * **Webhooks out**: signed `app/uninstalled`, `customers/data_request`,
//!   `customers/redact` and `shop/redact` deliveries to the app.
//! * **Deterministic data** per shop name ([`Dataset`]), which **changes at
//!   run time** like a real store's: orders created, updated, cancelled and
//!   refunded, products and customers created, updated and deleted
//!   ([`DevStore::create_order`] and the others, or the control endpoints;
//!   copy on write, so a snapshot from [`DevStore::dataset`] never changes
//!   under its reader). Every change bumps the object's `updated_at`.
//! * **Webhook subscriptions** (`webhookSubscriptionCreate`,
//!   `webhookSubscriptions`, `webhookSubscriptionDelete`, per shop) and
//!   their **deliveries** when the data changes: Shopify's topics with its
//!   REST payloads (`payloads.rs` documents each), signed like the webhooks
//!   above, queued per shop and sent in order without holding up the
//!   change, with **fault controls** for tests of a receiving app
//!   (duplicate, reorder, drop: [`Delivery`], [`DeliveryFaults`]).
//!
//! # Routes
//!
//! [`DevStore::router`] returns routes **without** a prefix; the app mounts
//! them with `Router::nest("/devstore", store.router())` and points its admin
//! base URL template at `http://host/devstore/{shop}` (`{shop}` being
//! `name.myshopify.com` or a bare name). Paths below include that prefix:
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/devstore` | page listing installed shops, with webhook buttons (axum's `nest` does not match `/devstore/`; the app may add a redirect) |
//! | GET | `/devstore/{shop}/admin/oauth/authorize?client_id&scope&redirect_uri&state&grant_options[]` | consent page |
//! | POST | `/devstore/{shop}/admin/oauth/authorize` | the consent form (Install / Cancel) |
//! | POST | `/devstore/{shop}/admin/oauth/access_token` | code exchange and refresh |
//! | POST | `/devstore/{shop}/admin/api/{version}/graphql.json` | GraphQL Admin API |
//! | GET | `/devstore/{shop}/admin/orders/{id}` | an order's admin page (where CJ's order links lead) |
//! | GET | `/devstore/_bulk/{token}.jsonl` | a finished bulk operation's JSONL (no access token: the random token is the secret) |
//! | POST | `/devstore/_control/drain?shop=` | empty a shop's cost bucket |
//! | POST | `/devstore/_control/bucket?max=&restore_rate=` | change the bucket limits |
//! | POST | `/devstore/_control/expire_tokens?shop=` | expire the shop's expiring access tokens now |
//! | POST | `/devstore/_control/webhook` (form `shop`, `topic`) | send a webhook |
//! | POST | `/devstore/_control/uninstall` (form `shop`) | revoke tokens and send `app/uninstalled` |
//! | POST | `/devstore/_control/orders` (form `shop`, `line=VARIANT_ID[:QTY]`…, `customer_id`, `financial_status`, `fulfillment_status`, `tags`, `note`, `seed`) | create an order (no lines: a random one) |
//! | POST | `/devstore/_control/orders/update` (form `shop`, `id`, `tags`, `note`, `email`, `financial_status`, `fulfillment_status`) | update an order |
//! | POST | `/devstore/_control/orders/cancel` (form `shop`, `id`, `reason`, `refund`) | cancel an order |
//! | POST | `/devstore/_control/orders/refund` (form `shop`, `id`, `amount`, `note`, `line=LINE_ITEM_ID[:QTY]`…) | refund an order |
//! | POST | `/devstore/_control/products[/update\|/delete]` (form `shop`, `id`, `title`, `price`, `vendor`, `product_type`, `status`) | create, update, delete a product |
//! | POST | `/devstore/_control/customers[/update\|/delete]` (form `shop`, `id`, `email`, `first_name`, `last_name`, `phone`) | create, update, delete a customer |
//! | POST | `/devstore/_control/bulk?shop=[&hold=true\|false]` | hold a shop's bulk operations `RUNNING` (or release them); answers its operations |
//! | POST | `/devstore/_control/deliveries` (form `shop`, `delivery`…, `duplicate`/`hold`/`drop` rates with `seed`, `faults=off`, `release`) | delivery fault controls; answers the shop's subscriptions and recent deliveries |
//!
//! The data-change routes answer the changed object as its webhook payload
//! (400 malformed form, 404 unknown object, 422 refused change); each also
//! takes `delivery=send|duplicate|hold|drop` (repeated or comma-separated):
//! the fault plan for the webhooks that change causes. An order `id` may be
//! its numeric id, its GID or its name (`#1042`).
//!
//! The `_control` POSTs and the consent decision refuse cross-site form posts
//! with 403 (an `Origin` other than the development store's, or
//! `Sec-Fetch-Site: cross-site`); requests without `Origin` pass.
//!
//! [`serve_standalone`] serves the same routes under `/devstore` on a
//! listener of its own (`hirecj devstore --port N`).
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use hirecj_devstore::{DevStore, DevStoreConfig};
//! let store = DevStore::new(DevStoreConfig::default());
//! let app = axum::Router::new().nest("/devstore", store.clone().router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

mod admin;
mod api;
mod bulk;
mod client;
mod control;
mod cost;
mod data;
mod graphql;
mod hooks;
mod oauth;
mod origin;
mod pages;
mod payloads;
mod search;
mod shop;
mod subscriptions;
mod webhooks;

pub(crate) use data::changes;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use rand::Rng;

pub use bulk::BulkOperationSummary;
pub use client::{ControlClient, ControlError};
pub use data::changes::{
    CancelOrder, ChangeError, CustomerUpdate, NewCustomer, NewLineItem, NewOrder, NewProduct,
    NewRefund, OrderUpdate, ProductUpdate, RefundLine,
};
pub use data::{
    Cents, Customer, Dataset, FinancialStatus, FulfillmentStatus, LARGE_CUSTOMERS,
    LARGE_ORDER_DAYS, LARGE_ORDERS_PER_DAY, LineItem, ORDER_DAYS, Order, Product, ProductStatus,
    Refund, RefundLineItem, ShopInfo, Variant, format_cents, is_large_shop,
};
pub use hooks::{Delivery, DeliveryFaults, DeliveryOutcome, DeliveryRecord, WebhookSubscription};
pub use shop::normalize_shop;

/// The development store's GraphQL Admin schema, as SDL: what CI checks
/// against Shopify's own schema (`.ci/shopify_schema.py`).
pub fn admin_schema_sdl() -> String {
    graphql::schema().sdl()
}
pub use webhooks::{WebhookDelivery, WebhookTopic, send_webhook};

use cost::{BucketLimits, Buckets};

/// Errors of the simulator's own API (not of its HTTP endpoints, which
/// answer as Shopify does).
#[derive(Debug, thiserror::Error)]
pub enum DevStoreError {
    /// The shop name is not `name.myshopify.com` or a bare name.
    #[error("invalid shop name: {0:?}")]
    InvalidShop(String),
    /// Delivering a webhook failed (connection, timeout, ...).
    #[error("webhook delivery to {url} failed: {source}")]
    Webhook {
        /// The app's webhook URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// A webhook payload could not be serialised.
    #[error("webhook payload: {0}")]
    Payload(#[from] serde_json::Error),
    /// A change to the shop's data was refused (no such object, or not
    /// allowed).
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// A webhook subscription was refused (Shopify's user error message).
    #[error("{0}")]
    Subscription(String),
}

/// How the simulator sees the app it serves.
#[derive(Clone)]
pub struct DevStoreConfig {
    /// The app's client id (API key); the authorize page checks it.
    pub client_id: String,
    /// The app's client secret: signs redirects and webhooks, checked by the
    /// token endpoint.
    pub client_secret: String,
    /// Name shown on the consent page.
    pub app_name: String,
    /// The only `redirect_uri` accepted, e.g.
    /// `http://127.0.0.1:8080/api/v1/shopify/callback`.
    pub app_callback_url: String,
    /// Where webhooks are POSTed.
    pub app_webhook_url: String,
    /// Sent as `X-Shopify-API-Version` on webhooks.
    pub api_version: String,
    /// Cost bucket size per shop (Shopify: 2000 for standard plans' GraphQL).
    pub bucket_max: f64,
    /// Points restored per second (Shopify: 100 on standard plans).
    pub restore_rate: f64,
    /// The origin (`scheme://host[:port]`) browsers load the development
    /// store's pages from. Form posts to the control routes and the consent
    /// page carrying another `Origin` are refused with 403; when `None`, the
    /// request's own `Host` is the expected origin.
    pub public_origin: Option<String>,
}

impl Default for DevStoreConfig {
    fn default() -> Self {
        DevStoreConfig {
            client_id: "devstore-client-id".to_string(),
            client_secret: "devstore-client-secret".to_string(),
            app_name: "HireCJ".to_string(),
            app_callback_url: "http://127.0.0.1:8080/api/v1/shopify/callback".to_string(),
            app_webhook_url: "http://127.0.0.1:8080/api/v1/shopify/webhooks".to_string(),
            api_version: "2026-10".to_string(),
            bucket_max: 2000.0,
            restore_rate: 100.0,
            public_origin: None,
        }
    }
}

impl fmt::Debug for DevStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevStoreConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("app_name", &self.app_name)
            .field("app_callback_url", &self.app_callback_url)
            .field("app_webhook_url", &self.app_webhook_url)
            .field("api_version", &self.api_version)
            .field("bucket_max", &self.bucket_max)
            .field("restore_rate", &self.restore_rate)
            .field("public_origin", &self.public_origin)
            .finish()
    }
}

/// A shop that completed OAuth (a token was issued) and was not uninstalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// `name.myshopify.com`.
    pub shop: String,
    /// Granted scopes, comma-separated.
    pub scope: String,
    /// When the first token was issued.
    pub installed_at: DateTime<Utc>,
}

pub(crate) struct PendingCode {
    pub shop: String,
    pub scope: String,
    pub online: bool,
    pub expires_at: DateTime<Utc>,
}

pub(crate) struct TokenRecord {
    pub shop: String,
    pub scope: String,
    pub expires_at: Option<DateTime<Utc>>,
}

pub(crate) struct RefreshRecord {
    pub shop: String,
    pub scope: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Default)]
pub(crate) struct AuthState {
    pub codes: HashMap<String, PendingCode>,
    pub tokens: HashMap<String, TokenRecord>,
    pub refresh: HashMap<String, RefreshRecord>,
    pub installed: BTreeMap<String, Installation>,
}

pub(crate) struct Inner {
    pub config: DevStoreConfig,
    pub limits: Mutex<BucketLimits>,
    pub schema: graphql::AdminSchema,
    pub http: reqwest::Client,
    pub auth: Mutex<AuthState>,
    pub buckets: Mutex<Buckets>,
    pub datasets: Mutex<HashMap<String, Arc<Dataset>>>,
    pub bulk: Mutex<bulk::BulkState>,
    pub hooks: Mutex<hooks::HookState>,
    /// Woken after every webhook delivery (see [`DevStore::wait_for_deliveries`]).
    pub delivered: tokio::sync::Notify,
    /// Woken when a shop's held bulk operations are released.
    pub bulk_released: tokio::sync::Notify,
}

/// The simulator. Cheap to clone (shared state); all state is in memory.
#[derive(Clone)]
pub struct DevStore {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for DevStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevStore")
            .field("config", &self.inner.config)
            .finish()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `prefix` + 32 random hex characters.
pub(crate) fn random_token(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::thread_rng().r#gen();
    format!("{prefix}{}", hex::encode(bytes))
}

/// A reqwest client with a timeout, for webhooks.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .user_agent("Shopify-Captain-Hook")
        .build()
        .unwrap_or_default()
}

impl DevStore {
    /// A fresh simulator: no installations, full buckets.
    pub fn new(config: DevStoreConfig) -> DevStore {
        let limits = BucketLimits {
            max: config.bucket_max,
            restore_rate: config.restore_rate,
        };
        DevStore {
            inner: Arc::new(Inner {
                config,
                limits: Mutex::new(limits),
                schema: graphql::schema(),
                http: http_client(),
                auth: Mutex::new(AuthState::default()),
                buckets: Mutex::new(Buckets::default()),
                datasets: Mutex::new(HashMap::new()),
                bulk: Mutex::new(bulk::BulkState::default()),
                hooks: Mutex::new(hooks::HookState::default()),
                delivered: tokio::sync::Notify::new(),
                bulk_released: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DevStoreConfig {
        &self.inner.config
    }

    /// The routes, **without** the `/devstore` prefix: mount them with
    /// `Router::nest("/devstore", store.router())` (see the crate docs for
    /// the table of paths).
    ///
    /// The control routes and the consent decision refuse cross-site posts
    /// (see [`DevStoreConfig::public_origin`]).
    pub fn router(self) -> Router {
        // What a browser on the development store's pages posts: only from
        // those pages.
        let forms = Router::new()
            .route("/_control/drain", post(control::drain))
            .route("/_control/bucket", post(control::bucket))
            .route("/_control/expire_tokens", post(control::expire_tokens))
            .route("/_control/webhook", post(control::webhook))
            .route("/_control/uninstall", post(control::uninstall))
            .route("/_control/orders", post(control::create_order))
            .route("/_control/orders/update", post(control::update_order))
            .route("/_control/orders/cancel", post(control::cancel_order))
            .route("/_control/orders/refund", post(control::refund_order))
            .route("/_control/orders/delete", post(control::delete_order))
            .route("/_control/products", post(control::create_product))
            .route("/_control/products/update", post(control::update_product))
            .route("/_control/products/delete", post(control::delete_product))
            .route("/_control/customers", post(control::create_customer))
            .route("/_control/customers/update", post(control::update_customer))
            .route("/_control/customers/delete", post(control::delete_customer))
            .route("/_control/deliveries", post(control::deliveries))
            .route("/_control/bulk", post(control::bulk))
            .route(
                "/{shop}/admin/oauth/authorize",
                get(oauth::authorize_page).post(oauth::authorize_decision),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                origin::same_origin,
            ));
        Router::new()
            .route("/", get(control::index))
            .merge(forms)
            .route(
                "/{shop}/admin/oauth/access_token",
                post(oauth::access_token),
            )
            .route("/{shop}/admin/orders/{id}", get(admin::order_page))
            .route(
                "/{shop}/admin/api/{version}/graphql.json",
                post(api::graphql),
            )
            .route("/_bulk/{file}", get(bulk::download))
            .with_state(self)
    }

    /// The store of `shop` (`name.myshopify.com` or a bare name), generated
    /// on first use for today's UTC date and kept in memory: a snapshot,
    /// with every change made so far (later changes do not alter it).
    pub fn dataset(&self, shop: &str) -> Arc<Dataset> {
        let key = normalize_shop(shop).unwrap_or_else(|| shop.to_ascii_lowercase());
        let mut map = lock(&self.inner.datasets);
        map.entry(key.clone())
            .or_insert_with(|| Arc::new(Dataset::generate(&key, Utc::now().date_naive())))
            .clone()
    }

    /// Applies one change to the data of `shop` (copy on write: snapshots
    /// already handed out stay as they were), then queues its webhooks.
    fn change<T>(
        &self,
        shop: &str,
        f: impl FnOnce(&mut Dataset, DateTime<Utc>) -> Result<(T, Vec<changes::Event>), ChangeError>,
    ) -> Result<T, DevStoreError> {
        let key = normalize_shop(shop).ok_or_else(|| DevStoreError::InvalidShop(shop.into()))?;
        let (value, events) = {
            let mut map = lock(&self.inner.datasets);
            let entry = map
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Dataset::generate(&key, Utc::now().date_naive())));
            f(Arc::make_mut(entry), Utc::now())?
        };
        self.dispatch(&key, events);
        Ok(value)
    }

    /// Creates an order in `shop` (see [`NewOrder`]; `NewOrder::default()`
    /// is a random plausible one) and sends `orders/create` (and
    /// `orders/paid`, `orders/fulfilled` as they apply) to the shop's
    /// subscriptions.
    pub fn create_order(&self, shop: &str, order: NewOrder) -> Result<Order, DevStoreError> {
        self.change(shop, |ds, now| ds.create_order(order, now))
    }

    /// Changes order `id` of `shop` (tags, note, email, payment or
    /// shipping state); sends `orders/updated` (and `orders/paid`,
    /// `orders/fulfilled` when it became so).
    pub fn update_order(
        &self,
        shop: &str,
        id: u64,
        update: OrderUpdate,
    ) -> Result<Order, DevStoreError> {
        self.change(shop, |ds, now| ds.update_order(id, update, now))
    }

    /// Cancels order `id` of `shop`, refunding it when asked; sends
    /// `refunds/create` (when refunded), `orders/cancelled` and
    /// `orders/updated`.
    pub fn cancel_order(
        &self,
        shop: &str,
        id: u64,
        cancel: CancelOrder,
    ) -> Result<Order, DevStoreError> {
        self.change(shop, |ds, now| ds.cancel_order(id, cancel, now))
    }

    /// Refunds order `id` of `shop` (an amount, with a note and lines);
    /// the order becomes `PARTIALLY_REFUNDED` or `REFUNDED`; sends
    /// `refunds/create` and `orders/updated`. Returns the order and the
    /// new refund.
    pub fn refund_order(
        &self,
        shop: &str,
        id: u64,
        refund: NewRefund,
    ) -> Result<(Order, Refund), DevStoreError> {
        self.change(shop, |ds, now| {
            ds.refund_order(id, refund, now)
                .map(|(o, r, events)| ((o, r), events))
        })
    }

    /// Deletes order `id` of `shop` (a cancelled or archived one, as
    /// Shopify allows); sends `orders/delete`. Returns the deleted order.
    pub fn delete_order(&self, shop: &str, id: u64) -> Result<Order, DevStoreError> {
        self.change(shop, |ds, now| ds.delete_order(id, now))
    }

    /// Creates a product; sends `products/create`.
    pub fn create_product(
        &self,
        shop: &str,
        product: NewProduct,
    ) -> Result<Product, DevStoreError> {
        self.change(shop, |ds, now| ds.create_product(product, now))
    }

    /// Changes product `id`; sends `products/update`.
    pub fn update_product(
        &self,
        shop: &str,
        id: u64,
        update: ProductUpdate,
    ) -> Result<Product, DevStoreError> {
        self.change(shop, |ds, now| ds.update_product(id, update, now))
    }

    /// Deletes product `id` (its order lines stay); sends
    /// `products/delete`. Returns the deleted product.
    pub fn delete_product(&self, shop: &str, id: u64) -> Result<Product, DevStoreError> {
        self.change(shop, |ds, _| ds.delete_product(id))
    }

    /// Creates a customer; sends `customers/create`.
    pub fn create_customer(
        &self,
        shop: &str,
        customer: NewCustomer,
    ) -> Result<Customer, DevStoreError> {
        self.change(shop, |ds, now| ds.create_customer(customer, now))
    }

    /// Changes customer `id`; sends `customers/update`.
    pub fn update_customer(
        &self,
        shop: &str,
        id: u64,
        update: CustomerUpdate,
    ) -> Result<Customer, DevStoreError> {
        self.change(shop, |ds, now| ds.update_customer(id, update, now))
    }

    /// Deletes customer `id` (refused, as on Shopify, when they have
    /// orders); sends `customers/delete`. Returns the deleted customer.
    pub fn delete_customer(&self, shop: &str, id: u64) -> Result<Customer, DevStoreError> {
        self.change(shop, |ds, _| ds.delete_customer(id))
    }

    /// Subscribes `topic` of `shop` at `uri`, as `webhookSubscriptionCreate`
    /// does (the same topic and address twice is refused with Shopify's
    /// "Address for this topic has already been taken").
    pub fn create_webhook_subscription(
        &self,
        shop: &str,
        topic: WebhookTopic,
        uri: &str,
    ) -> Result<WebhookSubscription, DevStoreError> {
        let key = normalize_shop(shop).ok_or_else(|| DevStoreError::InvalidShop(shop.into()))?;
        lock(&self.inner.hooks)
            .subscribe(&key, topic, uri, None, Vec::new())
            .map_err(|e| DevStoreError::Subscription(e.message))
    }

    /// The webhook subscriptions of `shop`, oldest first.
    pub fn webhook_subscriptions(&self, shop: &str) -> Vec<WebhookSubscription> {
        normalize_shop(shop).map_or_else(Vec::new, |key| lock(&self.inner.hooks).of_shop(&key))
    }

    /// What to do with the next deliveries of `shop`, one step per
    /// delivery (see [`Delivery`]); replaces any plan left. Once the plan
    /// is used up, the random faults (if any) apply, else deliveries are
    /// sent once, in order.
    pub fn plan_deliveries(&self, shop: &str, plan: impl IntoIterator<Item = Delivery>) {
        if let Some(key) = normalize_shop(shop) {
            self.set_plan(&key, plan.into_iter().collect());
        }
    }

    /// Random delivery faults for `shop` from now on (`None`: none).
    pub fn set_delivery_faults(&self, shop: &str, faults: Option<DeliveryFaults>) {
        if let Some(key) = normalize_shop(shop) {
            self.set_faults(&key, faults);
        }
    }

    /// Sends the deliveries of `shop` held back by [`Delivery::Hold`] now.
    pub fn release_held_deliveries(&self, shop: &str) {
        if let Some(key) = normalize_shop(shop) {
            self.release_held(&key);
        }
    }

    /// Waits until every delivery of `shop` queued so far has been sent
    /// (or has failed), at most `timeout`; whether they all were. Held
    /// deliveries do not count until released.
    pub async fn wait_for_deliveries(&self, shop: &str, timeout: std::time::Duration) -> bool {
        match normalize_shop(shop) {
            Some(key) => self.settle(&key, timeout).await,
            None => true,
        }
    }

    /// The recent deliveries of `shop` (oldest first; the simulator keeps
    /// the last few thousand of all shops).
    pub fn delivery_log(&self, shop: &str) -> Vec<DeliveryRecord> {
        normalize_shop(shop).map_or_else(Vec::new, |key| self.log_of(&key))
    }

    fn limits(&self) -> BucketLimits {
        *lock(&self.inner.limits)
    }

    /// Empties the cost bucket of `shop`: the next query is `THROTTLED`
    /// until the bucket refills at the restore rate.
    pub fn drain_bucket(&self, shop: &str) {
        let key = normalize_shop(shop).unwrap_or_else(|| shop.to_string());
        let limits = self.limits();
        lock(&self.inner.buckets).drain(&key, limits);
    }

    /// Points currently available in the bucket of `shop`.
    pub fn bucket_available(&self, shop: &str) -> f64 {
        let key = normalize_shop(shop).unwrap_or_else(|| shop.to_string());
        let limits = self.limits();
        lock(&self.inner.buckets).available(&key, limits)
    }

    /// Changes the bucket size and restore rate (points per second) of all
    /// shops from now on.
    pub fn set_bucket_limits(&self, max: f64, restore_rate: f64) {
        *lock(&self.inner.limits) = BucketLimits {
            max: max.max(0.0),
            restore_rate: restore_rate.max(0.0),
        };
    }

    /// Shops that completed OAuth and were not uninstalled, by domain.
    pub fn installed_shops(&self) -> Vec<Installation> {
        lock(&self.inner.auth).installed.values().cloned().collect()
    }

    /// Issues a non-expiring offline access token for `shop` without going
    /// through OAuth (for tests), marking the shop installed. A large shop
    /// ([`is_large_shop`]) asking for `read_orders` also gets
    /// `read_all_orders`, as at install.
    pub fn issue_access_token(&self, shop: &str, scope: &str) -> Result<String, DevStoreError> {
        let shop = normalize_shop(shop).ok_or_else(|| DevStoreError::InvalidShop(shop.into()))?;
        let scope = &oauth::granted_scope(&shop, scope);
        let token = random_token("shpat_");
        let mut auth = lock(&self.inner.auth);
        auth.tokens.insert(
            token.clone(),
            TokenRecord {
                shop: shop.clone(),
                scope: scope.to_string(),
                expires_at: None,
            },
        );
        mark_installed(&mut auth, &shop, scope);
        Ok(token)
    }

    /// Makes every expiring access token of `shop` expire now (refresh
    /// tokens stay valid), so tests can exercise the refresh path without
    /// waiting an hour. Non-expiring tokens are untouched.
    pub fn expire_access_tokens(&self, shop: &str) {
        let Some(shop) = normalize_shop(shop) else {
            return;
        };
        let now = Utc::now();
        let mut auth = lock(&self.inner.auth);
        for token in auth.tokens.values_mut().filter(|t| t.shop == shop) {
            if token.expires_at.is_some() {
                token.expires_at = Some(now);
            }
        }
    }

    /// Revokes every access and refresh token of `shop` and forgets the
    /// installation (its pending codes die too).
    pub fn revoke_tokens(&self, shop: &str) {
        let Some(shop) = normalize_shop(shop) else {
            return;
        };
        let mut auth = lock(&self.inner.auth);
        auth.tokens.retain(|_, t| t.shop != shop);
        auth.refresh.retain(|_, t| t.shop != shop);
        auth.codes.retain(|_, c| c.shop != shop);
        auth.installed.remove(&shop);
    }

    /// Uninstalls the app from `shop`: revokes its tokens, then sends the
    /// signed `app/uninstalled` webhook.
    ///
    /// Subscriptions of `app/uninstalled` at other addresses than the app's
    /// configured webhook URL get it too; then the shop's subscriptions
    /// are removed, as Shopify removes them.
    pub async fn uninstall(&self, shop: &str) -> Result<WebhookDelivery, DevStoreError> {
        self.revoke_tokens(shop);
        let domain = normalize_shop(shop).ok_or_else(|| DevStoreError::InvalidShop(shop.into()))?;
        let ds = self.dataset(&domain);
        let payload = webhooks::default_payload(WebhookTopic::AppUninstalled, &ds);
        {
            let mut hooks = lock(&self.inner.hooks);
            let app_url = self.inner.config.app_webhook_url.clone();
            let others: Vec<u64> = hooks
                .of_shop(&domain)
                .into_iter()
                .filter(|s| s.topic == WebhookTopic::AppUninstalled && s.uri == app_url)
                .map(|s| s.id)
                .collect();
            for id in others {
                hooks.unsubscribe(&domain, id);
            }
        }
        self.dispatch(
            &domain,
            vec![changes::Event {
                topic: WebhookTopic::AppUninstalled,
                payload: payload.clone(),
            }],
        );
        lock(&self.inner.hooks).forget_shop(&domain);
        self.send_webhook(WebhookTopic::AppUninstalled, &domain, Some(payload))
            .await
    }

    /// Sends a signed webhook for `topic` about `shop` to the app's webhook
    /// URL. `payload` replaces the default payload (built from the shop's
    /// dataset; the customer topics pick a real customer with orders).
    /// Returns the delivery, whatever HTTP status the app answered.
    pub async fn send_webhook(
        &self,
        topic: WebhookTopic,
        shop: &str,
        payload: Option<serde_json::Value>,
    ) -> Result<WebhookDelivery, DevStoreError> {
        let domain = normalize_shop(shop).ok_or_else(|| DevStoreError::InvalidShop(shop.into()))?;
        let dataset = self.dataset(&domain);
        webhooks::deliver(
            &self.inner.http,
            &self.inner.config,
            topic,
            &dataset,
            payload,
        )
        .await
    }
}

pub(crate) fn mark_installed(auth: &mut AuthState, shop: &str, scope: &str) {
    auth.installed
        .entry(shop.to_string())
        .and_modify(|i| i.scope = scope.to_string())
        .or_insert_with(|| Installation {
            shop: shop.to_string(),
            scope: scope.to_string(),
            installed_at: Utc::now(),
        });
}

/// Serves the simulator under `/devstore` on `listener` until the process
/// ends (`/` redirects to `/devstore`). This is `hirecj devstore --port N`.
pub async fn serve_standalone(
    listener: tokio::net::TcpListener,
    config: DevStoreConfig,
) -> std::io::Result<()> {
    let store = DevStore::new(config);
    let app = Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/devstore") }),
        )
        .route(
            "/devstore/",
            get(|| async { axum::response::Redirect::to("/devstore") }),
        )
        .nest("/devstore", store.router());
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "development store listening on http://{addr}/devstore");
    }
    axum::serve(listener, app).await
}
