//! Helpers for the Shopify tests: the app (the test kit's, its public URL
//! naming the port it bound), a minimal fake Shopify that
//! counts token requests, browsers with cookie jars, and callbacks signed
//! like Shopify signs them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use hirecj_shopify::signing;
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret";

/// A minimal Shopify: the token endpoint (code exchange and refresh) and a
/// GraphQL endpoint answering the `shop` query. Written from the wire
/// format, independent of the development store.
#[derive(Clone, Default)]
pub struct FakeShopify {
    pub addr: Option<SocketAddr>,
    pub inner: Arc<FakeInner>,
}

#[derive(Default)]
pub struct FakeInner {
    /// Code exchanges received.
    pub token_requests: AtomicUsize,
    /// Refreshes received.
    pub refresh_requests: AtomicUsize,
    /// `expires_in` of issued tokens.
    pub expires_in: AtomicI64,
    /// Answer refreshes with 400.
    pub refuse_refresh: AtomicBool,
    /// Tokens issued so far.
    pub issued: AtomicUsize,
}

async fn token(
    State(fake): State<Arc<FakeInner>>,
    Path(shop): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if body["client_id"] != CLIENT_ID || body["client_secret"] != CLIENT_SECRET {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let refresh = body["grant_type"] == "refresh_token";
    if refresh {
        fake.refresh_requests.fetch_add(1, Ordering::SeqCst);
        if fake.refuse_refresh.load(Ordering::SeqCst) {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request", "error_description": "refresh token revoked"})),
            )
                .into_response();
        }
    } else {
        fake.token_requests.fetch_add(1, Ordering::SeqCst);
        if body["code"] == "bad-code" || body["expiring"] != "1" {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request", "error_description": "The authorization code was not found or was already used"})),
            )
                .into_response();
        }
    }
    let n = fake.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let kind = if refresh { "refreshed" } else { "fake" };
    Json(json!({
        "access_token": format!("shpat_{kind}_{n}_{}", shop.replace('.', "_")),
        "scope": "read_products,read_orders,read_customers",
        "expires_in": fake.expires_in.load(Ordering::SeqCst),
        "refresh_token": format!("shprt_{n}"),
        "refresh_token_expires_in": 7_776_000,
    }))
    .into_response()
}

async fn graphql(Path((shop, _version)): Path<(String, String)>) -> Json<Value> {
    Json(json!({"data": {"shop": {"name": format!("Shop {shop}"), "email": "owner@fake.example"}}}))
}

impl FakeShopify {
    pub async fn start() -> Self {
        let inner = Arc::new(FakeInner::default());
        inner.expires_in.store(3600, Ordering::SeqCst);
        let router = Router::new()
            .route("/{shop}/admin/oauth/access_token", post(token))
            .route("/{shop}/admin/api/{version}/graphql.json", post(graphql))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            addr: Some(addr),
            inner,
        }
    }

    pub fn base_template(&self) -> String {
        format!("http://{}/{{shop}}", self.addr.unwrap())
    }

    pub fn token_requests(&self) -> usize {
        self.inner.token_requests.load(Ordering::SeqCst)
    }
}

pub use hirecj_testkit::app::TestApp;

/// The app on 127.0.0.1 (its public URL naming the real port) with `env`,
/// over a fresh data directory.
pub async fn start_app(env: &[(&str, &str)]) -> TestApp {
    TestApp::start(env).await
}

/// The app configured for `fake`.
pub async fn start_app_with_fake(fake: &FakeShopify) -> TestApp {
    let template = fake.base_template();
    start_app(&[
        ("SHOPIFY_CLIENT_ID", CLIENT_ID),
        ("SHOPIFY_CLIENT_SECRET", CLIENT_SECRET),
        ("SHOPIFY_ADMIN_BASE_URL", &template),
    ])
    .await
}

/// A browser: a cookie jar, no automatic redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The value of cookie `name` set by `response`, if any.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=')?;
            (k.trim() == name).then(|| val.trim().to_owned())
        })
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A query parameter of a URL.
pub fn query_param(url: &str, key: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The params Shopify sends to the callback, in its order, unsigned.
pub fn callback_params(
    shop: &str,
    state: &str,
    code: &str,
    timestamp: i64,
) -> Vec<(String, String)> {
    let name = shop.trim_end_matches(".myshopify.com");
    let host = base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(format!("admin.shopify.com/store/{name}"));
    vec![
        ("code".into(), code.into()),
        ("host".into(), host),
        ("shop".into(), shop.into()),
        ("state".into(), state.into()),
        ("timestamp".into(), timestamp.to_string()),
    ]
}

/// Adds `hmac` computed with `secret` over `params`.
pub fn sign(mut params: Vec<(String, String)>, secret: &str) -> Vec<(String, String)> {
    let hmac = signing::sign_query(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), secret);
    params.push(("hmac".into(), hmac));
    params
}

/// `{base}/api/v1/shopify/callback?{params}`.
pub fn callback_url(base: &str, params: &[(String, String)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{base}/api/v1/shopify/callback?{query}")
}

/// Starts an install for `shop` in `browser`; returns the `state` from the
/// authorize redirect.
pub async fn start_install(app: &TestApp, browser: &reqwest::Client, shop: &str) -> String {
    let r = browser
        .get(format!("{}/api/v1/shopify/install", app.base))
        .query(&[("shop", shop)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "install for {shop}");
    query_param(&location(&r), "state").expect("the authorize URL carries a state")
}

/// Signs a webhook body like Shopify.
pub fn webhook_request(
    client: &reqwest::Client,
    base: &str,
    topic: &str,
    shop: &str,
    id: &str,
    body: &Value,
    secret: &str,
) -> reqwest::RequestBuilder {
    let bytes = serde_json::to_vec(body).unwrap();
    let hmac = signing::sign_webhook(&bytes, secret);
    client
        .post(format!("{base}/api/v1/shopify/webhooks"))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", topic)
        .header("X-Shopify-Shop-Domain", shop)
        .header("X-Shopify-Webhook-Id", id)
        .header("X-Shopify-API-Version", "2026-10")
        .header("X-Shopify-Hmac-Sha256", hmac)
        .body(bytes)
}

pub fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The hidden inputs of the consent form.
pub fn hidden_inputs(page: &str) -> Vec<(String, String)> {
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

/// Starts an install of the development store's shop `handle` in
/// `browser`, opens the consent page and submits `decision`; returns the
/// callback URL the development store redirects to.
pub async fn consent(
    app: &TestApp,
    browser: &reqwest::Client,
    handle: &str,
    decision: &str,
) -> String {
    let shop = format!("{handle}.myshopify.com");
    let r = browser
        .get(format!("{}/api/v1/shopify/install", app.base))
        .query(&[("shop", handle)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let authorize = location(&r);
    assert!(
        authorize.starts_with(&format!(
            "{}/devstore/{shop}/admin/oauth/authorize?",
            app.base
        )),
        "{authorize}"
    );
    let r = browser.get(&authorize).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("Install") && page.contains("Cancel") && page.contains(&shop));
    assert!(page.contains("read_orders"), "the scopes are shown");
    let mut form = hidden_inputs(&page);
    assert!(form.iter().any(|(k, _)| k == "state"), "{page}");
    form.push(("decision".into(), decision.into()));
    let action = authorize.split('?').next().unwrap().to_owned();
    let r = browser.post(&action).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let callback = location(&r);
    assert!(
        callback.starts_with(&format!("{}/api/v1/shopify/callback?", app.base)),
        "{callback}"
    );
    callback
}
