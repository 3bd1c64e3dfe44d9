//! Shopify in the web app: the install flow (`/api/v1/shopify/install`,
//! `/api/v1/shopify/callback`), webhooks (`/api/v1/shopify/webhooks`) and
//! the service that hands out fresh access tokens ([`service`]).
//!
//! With `SHOPIFY_CLIENT_ID` unset the app talks to its built-in development
//! store: client id [`DEV_CLIENT_ID`], a client secret derived from the
//! app's secret key (so replicas sharing the key agree), and the admin base
//! URL `{HIRECJ_PUBLIC_URL}/devstore/{shop}`.

pub mod oauth;
pub mod service;
pub mod standalone;
pub mod webhooks;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::routing::{get, post};
use hirecj_devstore::{DevStore, DevStoreConfig};
use hirecj_domain::Secret;
use hirecj_shopify::{AdminClient, Cache, MemoryCache, RedisCache, ShopifyConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::app::{AppState, StartError};
use crate::config::{Settings, Source};

/// The provider name of Shopify integrations in the store.
pub const PROVIDER: &str = "shopify";
/// The client id the app uses with its built-in development store.
pub const DEV_CLIENT_ID: &str = "hirecj-dev";
/// Where the development store is mounted.
pub const DEVSTORE_PREFIX: &str = "/devstore";
/// The OAuth callback path.
pub const CALLBACK_PATH: &str = "/api/v1/shopify/callback";
/// The webhook path.
pub const WEBHOOKS_PATH: &str = "/api/v1/shopify/webhooks";

/// What the Shopify handlers need. Cheap to clone.
#[derive(Clone)]
pub struct ShopifyRuntime {
    /// Client id and secret, scopes, API version, URLs.
    pub config: Arc<ShopifyConfig>,
    /// The HTTP client for Shopify (connect and request timeouts).
    pub http: reqwest::Client,
    /// The GraphQL Admin API client (shares pacing state across clones).
    pub admin: AdminClient,
    /// The store-data cache: in process, or Redis with `REDIS_URL`.
    pub cache: Arc<dyn Cache>,
    /// True when the app uses its built-in development store.
    pub dev_store: bool,
    /// The development store mounted under `/devstore` (dev mode only).
    pub devstore: Option<DevStore>,
    /// One lock per shop, so one process refreshes a token once at a time.
    refresh_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl fmt::Debug for ShopifyRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShopifyRuntime")
            .field("config", &self.config)
            .field("cache", &self.cache)
            .field("dev_store", &self.dev_store)
            .field("devstore", &self.devstore.is_some())
            .finish_non_exhaustive()
    }
}

impl ShopifyRuntime {
    /// Builds the runtime from the settings: the configuration (real app or
    /// development store), the HTTP client and the cache (Redis when
    /// `REDIS_URL` is set; a Redis that does not answer yet is connected in
    /// the background, the cache missing meanwhile).
    pub async fn from_settings(settings: &Settings, secret_key: &[u8]) -> Result<Self, StartError> {
        let (config, dev_store) = shopify_config(settings, secret_key);
        config
            .validate()
            .map_err(|e| StartError::Shopify(e.to_string()))?;
        let cache: Arc<dyn Cache> = match &settings.redis_url {
            Some(url) => Arc::new(
                RedisCache::connect(url.expose())
                    .await
                    .map_err(|e| StartError::Shopify(format!("unusable REDIS_URL: {e}")))?,
            ),
            None => Arc::new(MemoryCache::new()),
        };
        let runtime = Self::new(config, dev_store, cache)?;
        Ok(if dev_store {
            let devstore = DevStore::new(devstore_config(settings, &runtime.config));
            runtime.with_devstore(devstore)
        } else {
            runtime
        })
    }

    /// Mounts `devstore` under `/devstore` in the app.
    pub fn with_devstore(mut self, devstore: DevStore) -> Self {
        self.devstore = Some(devstore);
        self
    }

    /// A runtime over a given configuration and cache.
    pub fn new(
        config: ShopifyConfig,
        dev_store: bool,
        cache: Arc<dyn Cache>,
    ) -> Result<Self, StartError> {
        let http = AdminClient::http_client()
            .map_err(|e| StartError::Shopify(format!("HTTP client: {e}")))?;
        let admin = AdminClient::new(http.clone(), &config);
        Ok(Self {
            config: Arc::new(config),
            http,
            admin,
            cache,
            dev_store,
            devstore: None,
            refresh_locks: Arc::default(),
        })
    }

    /// The refresh lock of `shop`.
    pub(crate) fn refresh_lock(&self, shop: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .refresh_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        locks.entry(shop.to_owned()).or_default().clone()
    }
}

/// The client secret the app shares with its development store: an HMAC of
/// a fixed label under the app's secret key (hex), so every replica using
/// the same key derives the same secret and nothing has to be configured.
pub fn dev_client_secret(secret_key: &[u8]) -> Secret {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret_key) else {
        unreachable!("HMAC-SHA256 accepts keys of any length");
    };
    mac.update(b"hirecj-devstore-client-secret-v1");
    Secret::new(hex::encode(mac.finalize().into_bytes()))
}

/// The Shopify configuration the settings describe, and whether it is the
/// built-in development store ([`Settings::dev_store`]).
pub fn shopify_config(settings: &Settings, secret_key: &[u8]) -> (ShopifyConfig, bool) {
    let public = settings.public_base();
    let redirect_uri = format!("{public}{CALLBACK_PATH}");
    let s = &settings.shopify;
    let (mut config, dev) = match (&s.client_id, &s.client_secret, settings.dev_store) {
        (Some(id), Some(secret), false) => {
            let mut c = ShopifyConfig::new(id.clone(), secret.clone(), redirect_uri);
            c.admin_base_url = s.admin_base_url.clone();
            (c, false)
        }
        // `Settings::load` allows the development store only without
        // Shopify credentials (see `Settings::dev_store`).
        _ => {
            let mut c =
                ShopifyConfig::new(DEV_CLIENT_ID, dev_client_secret(secret_key), redirect_uri);
            // An explicit SHOPIFY_ADMIN_BASE_URL points the app at a
            // development store running on its own (`hirecj devstore`).
            let explicit_base = settings
                .sources
                .iter()
                .any(|r| r.key.env == "SHOPIFY_ADMIN_BASE_URL" && r.source != Source::Default);
            c.admin_base_url = if explicit_base {
                s.admin_base_url.clone()
            } else {
                dev_admin_base_url(&public)
            };
            (c, true)
        }
    };
    config.scopes = s
        .scopes
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect();
    config.api_version = s.api_version.clone();
    (config, dev)
}

/// `{public}/devstore/{shop}`: where the mounted development store serves a
/// shop's admin.
pub fn dev_admin_base_url(public_base: &str) -> String {
    format!(
        "{}{DEVSTORE_PREFIX}/{{shop}}",
        public_base.trim_end_matches('/')
    )
}

/// How the development store sees the app: the app's client id and secret,
/// its callback and webhook URLs under `HIRECJ_PUBLIC_URL`, whose origin is
/// the only one its forms accept posts from.
pub fn devstore_config(settings: &Settings, config: &ShopifyConfig) -> DevStoreConfig {
    let public = settings.public_base();
    DevStoreConfig {
        client_id: config.client_id.clone(),
        client_secret: config.client_secret.expose().to_owned(),
        app_name: "HireCJ".to_owned(),
        app_callback_url: format!("{public}{CALLBACK_PATH}"),
        app_webhook_url: format!("{public}{WEBHOOKS_PATH}"),
        api_version: config.api_version.clone(),
        // The pages are served under HIRECJ_PUBLIC_URL: form posts come from there.
        public_origin: Some(settings.public_url.origin().ascii_serialization()),
        ..DevStoreConfig::default()
    }
}

/// The Shopify routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/shopify/install", get(oauth::install))
        .route(CALLBACK_PATH, get(oauth::callback))
        .route(WEBHOOKS_PATH, post(webhooks::receive))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoadOptions;

    fn settings(env: &[(&str, &str)]) -> Settings {
        Settings::load(&LoadOptions {
            config_file: None,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            dotenv_dir: None,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn dev_store_config_when_no_client_id() {
        let s = settings(&[
            ("HIRECJ_PUBLIC_URL", "https://cj.example.com/"),
            ("HIRECJ_DEV_STORE", "true"),
        ]);
        let (c, dev) = shopify_config(&s, b"key-one-key-one-key-one-key-one-");
        assert!(dev);
        assert_eq!(c.client_id, DEV_CLIENT_ID);
        assert_eq!(c.admin_base_url, "https://cj.example.com/devstore/{shop}");
        assert_eq!(
            c.redirect_uri,
            "https://cj.example.com/api/v1/shopify/callback"
        );
        assert_eq!(c.validate(), Ok(()));
        let (again, _) = shopify_config(&s, b"key-one-key-one-key-one-key-one-");
        assert_eq!(again.client_secret, c.client_secret, "derived, stable");
        let (other, _) = shopify_config(&s, b"key-two-key-two-key-two-key-two-");
        assert_ne!(other.client_secret, c.client_secret);
        assert_eq!(c.client_secret.expose().len(), 64);
    }

    #[test]
    fn real_config_when_client_id_set() {
        let s = settings(&[
            ("SHOPIFY_CLIENT_ID", "abc"),
            ("SHOPIFY_CLIENT_SECRET", "shh"),
            ("SHOPIFY_ADMIN_BASE_URL", "http://127.0.0.1:9/{shop}"),
            ("SHOPIFY_SCOPES", "read_orders,read_products"),
        ]);
        let (c, dev) = shopify_config(&s, b"unused");
        assert!(!dev);
        assert_eq!(c.client_id, "abc");
        assert_eq!(c.client_secret.expose(), "shh");
        assert_eq!(c.admin_base_url, "http://127.0.0.1:9/{shop}");
        assert_eq!(c.scopes, vec!["read_orders", "read_products"]);
    }
}
