//! Evals without network: the real [`ShopifyDataFetcher`] (GraphQL client,
//! cache, aggregation) pointed at an in-process development store.

use std::sync::Arc;

use async_trait::async_trait;
use hirecj_devstore::{DevStore, DevStoreConfig};
use hirecj_shopify::{
    AdminClient, MemoryCache, Secret, ShopDomain, ShopifyConfig, ShopifyDataFetcher,
};
use tokio::task::JoinHandle;

use super::DataSourceFactory;
use hirecj_agent::tools::StoreData;

/// Opens development-store shops as data sources: issues an access token
/// per shop and returns a [`ShopifyDataFetcher`] that talks GraphQL to the
/// development store over HTTP.
pub struct DevStoreSource {
    store: DevStore,
    config: ShopifyConfig,
    http: reqwest::Client,
    cache: Arc<MemoryCache>,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DevStoreSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevStoreSource")
            .field("admin_base_url", &self.config.admin_base_url)
            .finish_non_exhaustive()
    }
}

impl DevStoreSource {
    /// Starts a development store on `127.0.0.1:0` (served until this
    /// value is dropped).
    pub async fn start() -> std::io::Result<Self> {
        let store = DevStore::new(DevStoreConfig::default());
        // Evals test CJ, not Shopify's rate limits: a bucket that never
        // runs dry keeps multi-page fetches fast.
        store.set_bucket_limits(1.0e12, 1.0e12);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().nest("/devstore", store.clone().router());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "eval development store stopped");
            }
        });
        let mut me = Self::with_store(store, format!("http://{addr}/devstore"))
            .map_err(std::io::Error::other)?;
        me.server = Some(server);
        Ok(me)
    }

    /// Uses a development store already served at `base_url` (e.g.
    /// `http://127.0.0.1:8080/devstore`).
    pub fn with_store(store: DevStore, base_url: impl Into<String>) -> Result<Self, String> {
        let base = base_url.into();
        let mut config = ShopifyConfig::new(
            store.config().client_id.clone(),
            store.config().client_secret.clone(),
            store.config().app_callback_url.clone(),
        );
        config.admin_base_url = format!("{}/{{shop}}", base.trim_end_matches('/'));
        config.validate().map_err(|e| e.to_string())?;
        let http = AdminClient::http_client().map_err(|e| e.to_string())?;
        Ok(Self {
            store,
            config,
            http,
            cache: Arc::new(MemoryCache::new()),
            server: None,
        })
    }

    /// The development store (to inspect its data).
    pub fn store(&self) -> &DevStore {
        &self.store
    }

    /// A fetcher for `shop` with a fresh access token. Fetchers share one
    /// cache (keys are scoped by shop), so scenarios on one shop reuse data.
    pub fn fetcher(&self, shop: &str) -> Result<ShopifyDataFetcher, String> {
        let domain = ShopDomain::parse(shop).map_err(|e| e.to_string())?;
        let scope = self.config.scope_param();
        let token = self
            .store
            .issue_access_token(domain.as_str(), &scope)
            .map_err(|e| e.to_string())?;
        Ok(ShopifyDataFetcher::new(
            AdminClient::new(self.http.clone(), &self.config),
            domain,
            Secret::new(token),
            self.cache.clone(),
        )
        .with_granted_scopes(self.config.scopes.clone()))
    }
}

impl Drop for DevStoreSource {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

#[async_trait]
impl DataSourceFactory for DevStoreSource {
    async fn open(&self, shop: &str) -> Result<Arc<dyn StoreData>, String> {
        Ok(Arc::new(self.fetcher(shop)?))
    }
}
