//! Evals over the store mirror, through the real path: the app runs in
//! process with its built-in development store and a temporary SQLite
//! database; each shop is installed through the OAuth flow (install,
//! consent page, callback), which registers it and starts its backfill
//! (Bulk Operations, JSONL, batched upserts); once the backfill is complete
//! the scenarios run over [`MirroredStore`], the `StoreData` behind CJ's
//! tools in the app. The expected figures come from the development
//! store's own data ([`crate::expected`]), never from the mirror.
//!
//! The app asks for `read_all_orders`, so a shop's whole history (90 days,
//! up to about 2,000 orders for a busy development shop) is mirrored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hirecj_agent::tools::StoreData;
use hirecj_devstore::Dataset;
use hirecj_domain::mirror::{BackfillState, MirrorSync};
use hirecj_server::mirror::MirroredStore;
use hirecj_server::shopify::service;
use hirecj_server::{App, AppState, LoadOptions, Settings};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::{DataSourceFactory, Truth};

/// The scopes the eval app asks for: the defaults and the whole order
/// history.
pub const EVAL_SCOPES: &str = "read_products,read_orders,read_customers,read_all_orders";

/// How long a backfill may take before the eval gives up.
const BACKFILL_DEADLINE: Duration = Duration::from_secs(300);

/// A shop installed and mirrored.
#[derive(Debug, Clone)]
pub struct MirroredShop {
    /// The shop's sync state when its backfill completed.
    pub sync: MirrorSync,
    /// Install (OAuth) to complete backfill.
    pub backfill: Duration,
}

/// The app in process, its development store's shops installed and
/// mirrored on first use.
pub struct MirrorSource {
    state: AppState,
    base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    shops: Mutex<HashMap<String, MirroredShop>>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for MirrorSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorSource")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl MirrorSource {
    /// Starts the app on `127.0.0.1:0` with its development store and a
    /// temporary database (served until this value is dropped).
    pub async fn start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let base = format!("http://{addr}");
        let env: HashMap<String, String> = [
            ("HIRECJ_BIND", addr.to_string()),
            ("HIRECJ_PUBLIC_URL", base.clone()),
            ("HIRECJ_DATA_DIR", dir.path().display().to_string()),
            ("HIRECJ_LOG", "warn".to_owned()),
            ("SHOPIFY_SCOPES", EVAL_SCOPES.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let settings = Settings::load(&LoadOptions {
            env,
            config_file: None,
            dotenv_dir: None,
        })
        .map_err(|e| e.to_string())?;
        let app = App::build_with_listener(settings, listener)
            .await
            .map_err(|e| e.to_string())?;
        let state = app.state().clone();
        if state.shopify.devstore.is_none() {
            return Err("the app did not start its development store".to_owned());
        }
        let shutdown = CancellationToken::new();
        tokio::spawn(app.run(shutdown.clone()));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            state,
            base,
            http,
            shutdown,
            shops: Mutex::new(HashMap::new()),
            _dir: dir,
        })
    }

    /// The development store's data of `shop`.
    pub fn dataset(&self, shop: &str) -> Option<Arc<Dataset>> {
        self.state
            .shopify
            .devstore
            .as_ref()
            .map(|d| d.dataset(shop))
    }

    /// Installs `shop` (once) and waits for its backfill.
    pub async fn mirrored(&self, shop: &str) -> Result<MirroredShop, String> {
        let mut shops = self.shops.lock().await;
        if let Some(m) = shops.get(shop) {
            return Ok(m.clone());
        }
        let started = Instant::now();
        self.install(shop).await?;
        let sync = self.backfilled(shop).await?;
        let m = MirroredShop {
            sync,
            backfill: started.elapsed(),
        };
        shops.insert(shop.to_owned(), m.clone());
        Ok(m)
    }

    /// The shops mirrored so far.
    pub async fn shops(&self) -> Vec<(String, MirroredShop)> {
        let mut v: Vec<_> = self
            .shops
            .lock()
            .await
            .iter()
            .map(|(k, m)| (k.clone(), m.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The merchant's install: the app's install URL, the development
    /// store's consent page, Install, and the app's callback.
    async fn install(&self, shop: &str) -> Result<(), String> {
        let mut cookies: Vec<(String, String)> = Vec::new();
        let r = self
            .get(&format!("{}/api/v1/shopify/install", self.base), &cookies)
            .query(&[("shop", shop)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        keep_cookies(&r, &mut cookies);
        let authorize = location(&r).ok_or("install did not redirect to the consent page")?;
        let page = self
            .get(&authorize, &cookies)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let mut form = hidden_inputs(&page);
        if !form.iter().any(|(k, _)| k == "state") {
            return Err(format!("no consent form for {shop}"));
        }
        form.push(("decision".into(), "install".into()));
        let action = authorize.split('?').next().unwrap_or(&authorize).to_owned();
        let r = self
            .http
            .post(&action)
            .form(&form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let callback = location(&r).ok_or("the consent did not redirect to the app")?;
        let r = self
            .get(&callback, &cookies)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status().as_u16() != 302 {
            return Err(format!("the install callback answered {}", r.status()));
        }
        Ok(())
    }

    fn get(&self, url: &str, cookies: &[(String, String)]) -> reqwest::RequestBuilder {
        let mut req = self.http.get(url);
        if !cookies.is_empty() && url.starts_with(&self.base) {
            let header = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header(reqwest::header::COOKIE, header);
        }
        req
    }

    async fn backfilled(&self, shop: &str) -> Result<MirrorSync, String> {
        let deadline = Instant::now() + BACKFILL_DEADLINE;
        loop {
            let sync = self
                .state
                .mirror
                .sync(shop)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(s) = sync {
                match s.state {
                    BackfillState::Complete => return Ok(s),
                    BackfillState::Failed => {
                        return Err(format!(
                            "the backfill of {shop} failed: {}",
                            s.last_error.unwrap_or_default()
                        ));
                    }
                    BackfillState::Pending | BackfillState::Running => {}
                }
            }
            if Instant::now() > deadline {
                return Err(format!("the backfill of {shop} did not complete"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for MirrorSource {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[async_trait]
impl DataSourceFactory for MirrorSource {
    async fn open(&self, shop: &str) -> Result<Arc<dyn StoreData>, String> {
        self.mirrored(shop).await?;
        let store = &self.state.store;
        let user = store
            .user_by_shop(shop)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{shop} has no merchant"))?;
        let fetcher = service::fetcher_for(store, &self.state.shopify, &user.id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(MirroredStore::new(store.clone(), fetcher).await))
    }

    async fn truth(&self, shop: &str) -> Truth {
        let (Ok(m), Some(data)) = (self.mirrored(shop).await, self.dataset(shop)) else {
            return Truth::DataSource;
        };
        let until: DateTime<Utc> = m.sync.completed_at.unwrap_or_else(Utc::now);
        Truth::Dataset {
            data,
            since: m.sync.covers_since,
            until,
        }
    }
}

fn location(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()
        .map(str::to_owned)
}

fn keep_cookies(r: &reqwest::Response, jar: &mut Vec<(String, String)>) {
    for v in r.headers().get_all(reqwest::header::SET_COOKIE) {
        let Some((pair, _)) = v
            .to_str()
            .ok()
            .map(|v| v.split_once(';').unwrap_or((v, "")))
        else {
            continue;
        };
        if let Some((k, v)) = pair.split_once('=') {
            jar.retain(|(name, _)| name != k.trim());
            jar.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The hidden inputs of the consent form.
fn hidden_inputs(page: &str) -> Vec<(String, String)> {
    page.split("<input")
        .skip(1)
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>')?];
            let attr = |name: &str| {
                let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
                let end = start + tag[start..].find('"')?;
                Some(unescape(&tag[start..end]))
            };
            Some((attr("name")?, attr("value")?))
        })
        .collect()
}
