//! The development store outside the app: `hirecj devstore --port N`
//! (served on its own) and `hirecj devstore webhook <topic> --shop …`
//! (one signed webhook sent to an app).
//!
//! Both use the credentials the app would use with these settings: the
//! configured `SHOPIFY_CLIENT_ID`/`SHOPIFY_CLIENT_SECRET`, or the
//! development client id with the secret derived from the app's secret key
//! (the same data directory or `HIRECJ_SECRET_KEY` gives the same secret).
//! To point the app at a standalone store, set
//! `SHOPIFY_ADMIN_BASE_URL=http://127.0.0.1:N/devstore/{shop}`.

use std::net::SocketAddr;
use std::str::FromStr as _;

use hirecj_devstore::{DevStore, WebhookDelivery, WebhookTopic};

use super::{WEBHOOKS_PATH, devstore_config, shopify_config};
use crate::config::Settings;
use crate::secret_key;

/// Why a development-store command failed. Displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    #[error(transparent)]
    SecretKey(#[from] secret_key::SecretKeyError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("development store: {0}")]
    Serve(#[source] std::io::Error),
    #[error("{0}")]
    Topic(String),
    #[error("{0}")]
    Webhook(String),
}

fn app_key(settings: &Settings) -> Result<Vec<u8>, StandaloneError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| StandaloneError::DataDir {
        path: settings.data_dir.display().to_string(),
        source,
    })?;
    Ok(secret_key::load_or_create(
        settings.secret_key.as_ref().map(|s| s.expose()),
        &settings.data_dir,
    )?)
}

/// Serves the development store under `/devstore` on the bind address's
/// IP and `port` until the process ends.
pub async fn serve_devstore(settings: &Settings, port: u16) -> Result<(), StandaloneError> {
    let key = app_key(settings)?;
    let (config, _) = shopify_config(settings, &key);
    let mut devstore = devstore_config(settings, &config);
    // Its pages are served from this listener, not from the app's public
    // URL: form posts are checked against the request's own Host.
    devstore.public_origin = None;
    let addr = SocketAddr::new(settings.bind.ip(), port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StandaloneError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    println!(
        "HireCJ development store on http://{bound}/devstore (client id {}); point the app at it with \
         SHOPIFY_ADMIN_BASE_URL=http://{bound}/devstore/{{shop}}",
        devstore.client_id
    );
    hirecj_devstore::serve_standalone(listener, devstore)
        .await
        .map_err(StandaloneError::Serve)
}

/// Sends one signed webhook (`topic` as `app/uninstalled`,
/// `customers/redact`, …) about `shop` to the app at `app_url` (default:
/// `HIRECJ_PUBLIC_URL`). Returns the delivery with the app's HTTP status.
pub async fn send_devstore_webhook(
    settings: &Settings,
    topic: &str,
    shop: &str,
    app_url: Option<&str>,
) -> Result<WebhookDelivery, StandaloneError> {
    let topic = WebhookTopic::from_str(topic).map_err(StandaloneError::Topic)?;
    let key = app_key(settings)?;
    let (config, _) = shopify_config(settings, &key);
    let mut devstore = devstore_config(settings, &config);
    if let Some(url) = app_url {
        devstore.app_webhook_url = format!("{}{WEBHOOKS_PATH}", url.trim_end_matches('/'));
    }
    DevStore::new(devstore)
        .send_webhook(topic, shop, None)
        .await
        .map_err(|e| StandaloneError::Webhook(e.to_string()))
}
