//! Shopify for HireCJ: shop-domain validation, OAuth and webhook signatures,
//! the GraphQL Admin API client and the store-data fetcher with its cache.
//!
//! * [`ShopDomain`]: the only way outside input becomes a shop host
//!   (anchored `^[a-z0-9][a-z0-9-]*\.myshopify\.com$`).
//! * [`ShopifyConfig`]: client id and secret, scopes, API version, the admin
//!   base URL template (`https://{shop}` by default, so tests and the
//!   development store can stand in for Shopify), and the URLs derived from it.
//! * [`oauth`]: [`verify_callback`] (HMAC over all params, 90 s timestamp
//!   window, canonical shop, typed errors with stable codes),
//!   [`random_state`], [`exchange_code`] and [`refresh_token`].
//! * [`signing`]: the HMACs of OAuth queries and webhook bodies.
//! * [`AdminClient`]: GraphQL-only Admin API client with cost-aware pacing and
//!   bounded retries of `THROTTLED`, 429 and 503; 401 becomes
//!   [`ShopifyError::Unauthorized`].
//! * [`ShopifyDataFetcher`]: the store data behind CJ's tools, as compact
//!   serializable structs; money is summed exactly ([`Amount`]).
//! * [`Cache`]: [`MemoryCache`] or [`RedisCache`], keys scoped by shop,
//!   cleared on uninstall with [`clear_shop`].
//! * [`queries`]: every GraphQL query sent, as `pub const`s.
//! * [`bulk`]: Bulk Operations for the store mirror's backfill: the bulk
//!   queries, running and polling them, and a streaming JSONL parser into
//!   the mirror's records (`MirrorOrder`, `MirrorProduct`, `MirrorCustomer`),
//!   delivered in batches.
//! * [`webhook_subscriptions`]: the topics the mirror subscribes at install
//!   and [`AdminClient::create_webhook_subscription`] (an existing
//!   subscription is not an error).
//!
//! No token or secret is ever logged: they travel as [`Secret`], whose
//! `Debug` prints `Secret(***)`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use hirecj_shopify::*;
//!
//! # async fn demo(query: Vec<(String, String)>, now: i64) -> Result<(), Box<dyn std::error::Error>> {
//! let config = ShopifyConfig::new("client-id", "client-secret", "https://app.example/api/v1/shopify/callback");
//! // Install: validate what the merchant typed, redirect to Shopify.
//! let shop = ShopDomain::parse("cool-shop")?;
//! let state = random_state(); // store it server-side, bound to the browser
//! let _redirect = config.authorize_url(&shop, &state);
//! // Callback: verify, check the stored state, exchange the code.
//! let callback = verify_callback(&query, &config.client_secret, now)?;
//! let http = AdminClient::http_client()?;
//! let grant = exchange_code(&http, &config, &callback.shop, callback.code.expose()).await?;
//! // Tools: read the store through the cache.
//! let fetcher = ShopifyDataFetcher::new(
//!     AdminClient::new(http, &config),
//!     callback.shop,
//!     grant.access_token.clone(),
//!     Arc::new(MemoryCache::new()),
//! )
//! .with_granted_scopes(grant.scopes());
//! let week = fetcher.orders_last_week().await?;
//! println!("{}", serde_json::to_string(&week)?);
//! # Ok(()) }
//! ```

pub mod bulk;
pub mod cache;
pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod fetcher;
pub mod money;
pub mod money_format;
pub mod oauth;
pub mod payloads;
pub mod queries;
pub mod signing;
pub mod store_data;
pub mod webhook_subscriptions;

pub use bulk::{
    BulkError, BulkOperation, BulkOperationStatus, BulkUserError, BulkWait, CustomerParser,
    DownloadLimits, DownloadSummary, JsonlParser, OrderParser, ProductParser,
};
pub use cache::{Cache, CacheError, CacheKey, DEFAULT_TTL, MemoryCache, RedisCache, RedisLink};
pub use client::{AdminClient, QueryCost, RetryPolicy, ThrottleStatus};
pub use config::{ConfigError, ShopifyConfig, is_api_version};
pub use domain::{ShopDomain, ShopDomainError};
pub use error::{GraphQlError, ShopifyError};
pub use fetcher::{
    Count, CustomerDetails, CustomerRef, DaySales, LineItem, OrderSummary, ProductSales,
    SalesSummary, ShopInfo, ShopifyDataFetcher, StoreCounts, StoreOverview, TopProducts,
    clear_shop,
};
/// The secret string type, shared with the rest of HireCJ.
pub use hirecj_domain::Secret;
pub use money::Amount;
pub use money_format::{MoneyFormat, MoneyFormatError};
pub use oauth::{
    CallbackError, TokenGrant, VerifiedCallback, exchange_code, random_state, refresh_token,
    verify_callback,
};
pub use webhook_subscriptions::{MIRROR_TOPICS, Subscribed, WebhookSubscription};
