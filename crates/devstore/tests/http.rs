//! The development store over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine as _;
use chrono::{Duration, SecondsFormat, Utc};
use hirecj_devstore::{DevStore, DevStoreConfig, WebhookTopic};
use hirecj_shopify::signing::{verify_query, verify_webhook};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const CALLBACK: &str = "http://app.test/api/v1/shopify/callback";
const SHOP: &str = "cool-shirts.myshopify.com";

fn config(webhook_url: &str) -> DevStoreConfig {
    DevStoreConfig {
        client_id: "test-client".into(),
        client_secret: "test-secret".into(),
        app_name: "HireCJ Test".into(),
        app_callback_url: CALLBACK.into(),
        app_webhook_url: webhook_url.into(),
        ..DevStoreConfig::default()
    }
}

struct Harness {
    base: String,
    store: DevStore,
    http: reqwest::Client,
}

async fn spawn_with(config: DevStoreConfig) -> Harness {
    let store = DevStore::new(config);
    let app = Router::new().nest("/devstore", store.clone().router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Harness {
        base: format!("http://{addr}/devstore"),
        store,
        http,
    }
}

async fn spawn() -> Harness {
    spawn_with(config("http://127.0.0.1:9/unused")).await
}

impl Harness {
    fn authorize_url(&self, shop: &str, client_id: &str, redirect: &str) -> String {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", client_id)
            .append_pair("scope", "read_products,read_orders,read_customers")
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "nonce-123")
            .append_pair("grant_options[]", "")
            .finish();
        format!("{}/{shop}/admin/oauth/authorize?{q}", self.base)
    }

    async fn decide(&self, shop: &str, decision: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/{shop}/admin/oauth/authorize", self.base))
            .form(&[
                ("client_id", "test-client"),
                ("scope", "read_products,read_orders,read_customers"),
                ("redirect_uri", CALLBACK),
                ("state", "nonce-123"),
                ("grant_options[]", ""),
                ("decision", decision),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Installs and returns the callback's query params.
    async fn install(&self, shop: &str) -> BTreeMap<String, String> {
        let resp = self.decide(shop, "install").await;
        assert_eq!(resp.status(), 302);
        callback_params(&resp)
    }

    async fn exchange_json(&self, shop: &str, code: &str, expiring: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/{shop}/admin/oauth/access_token", self.base))
            .json(&json!({"client_id": "test-client", "client_secret": "test-secret", "code": code, "expiring": expiring}))
            .send()
            .await
            .unwrap()
    }

    async fn token(&self, shop: &str) -> String {
        let code = self.install(shop).await["code"].clone();
        let body: Value = self
            .exchange_json(shop, &code, "1")
            .await
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    async fn graphql_raw(
        &self,
        shop: &str,
        token: &str,
        query: &str,
        variables: Value,
    ) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/{shop}/admin/api/2026-10/graphql.json",
                self.base
            ))
            .header("X-Shopify-Access-Token", token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap()
    }

    async fn graphql(&self, shop: &str, token: &str, query: &str, variables: Value) -> Value {
        let resp = self.graphql_raw(shop, token, query, variables).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }
}

fn callback_params(resp: &reqwest::Response) -> BTreeMap<String, String> {
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(CALLBACK), "{location}");
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn verify(params: &BTreeMap<String, String>, secret: &str) -> bool {
    verify_query(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), secret)
}

#[tokio::test]
async fn consent_page_shows_app_shop_and_scopes() {
    let h = spawn().await;
    let resp = h
        .http
        .get(h.authorize_url(SHOP, "test-client", CALLBACK))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    for needle in [
        "HireCJ development store",
        "HireCJ Test",
        SHOP,
        "read_orders",
        "read_products",
        "read_customers",
        ">Install<",
        ">Cancel<",
        "method=\"post\"",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    // A bare store name works too.
    let resp = h
        .http
        .get(h.authorize_url("cool-shirts", "test-client", CALLBACK))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let resp = h
        .http
        .get(h.authorize_url(SHOP, "other-client", CALLBACK))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("invalid_request"));
    let resp = h
        .http
        .get(h.authorize_url(SHOP, "test-client", "http://evil.test/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("redirect_uri"));
    let resp = h
        .http
        .get(h.authorize_url("evil.com", "test-client", CALLBACK))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn install_redirects_with_six_signed_params() {
    let h = spawn().await;
    let params = h.install(SHOP).await;
    let keys: Vec<&str> = params.keys().map(String::as_str).collect();
    assert_eq!(keys, ["code", "hmac", "host", "shop", "state", "timestamp"]);
    assert!(verify(&params, "test-secret"));
    assert!(!verify(&params, "other-secret"));
    assert_eq!(params["shop"], SHOP);
    assert_eq!(params["state"], "nonce-123");
    let host = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(params["host"].trim_end_matches('='))
        .unwrap();
    assert_eq!(
        String::from_utf8(host).unwrap(),
        "admin.shopify.com/store/cool-shirts"
    );
    let ts: i64 = params["timestamp"].parse().unwrap();
    assert!((Utc::now().timestamp() - ts).abs() <= 5);
    // Tampering breaks the signature.
    let mut forged = params.clone();
    forged.insert("shop".into(), "other.myshopify.com".into());
    assert!(!verify(&forged, "test-secret"));
}

#[tokio::test]
async fn cancel_redirects_with_access_denied() {
    let h = spawn().await;
    let resp = h.decide(SHOP, "cancel").await;
    assert_eq!(resp.status(), 302);
    let params = callback_params(&resp);
    assert_eq!(params["error"], "access_denied");
    assert!(params.contains_key("error_description"));
    assert_eq!(params["shop"], SHOP);
    assert_eq!(params["state"], "nonce-123");
    assert!(params.contains_key("timestamp"));
    assert!(!params.contains_key("code"));
    assert!(verify(&params, "test-secret"));
}

#[tokio::test]
async fn token_exchange_json_form_reuse_and_refresh() {
    let h = spawn().await;
    let url = format!("{}/{SHOP}/admin/oauth/access_token", h.base);

    // JSON, expiring.
    let code = h.install(SHOP).await["code"].clone();
    let resp = h.exchange_json(SHOP, &code, "1").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["access_token"].as_str().unwrap().starts_with("shpat_"));
    assert!(
        body["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("shprt_")
    );
    assert_eq!(body["scope"], "read_products,read_orders,read_customers");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["refresh_token_expires_in"], 7_776_000);

    // The code is single-use.
    let resp = h.exchange_json(SHOP, &code, "1").await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"], "invalid_request");
    assert!(err["error_description"].is_string());

    // Form body, non-expiring; wrong secret first (does not burn the code).
    let code2 = h.install(SHOP).await["code"].clone();
    let resp = h
        .http
        .post(&url)
        .form(&[
            ("client_id", "test-client"),
            ("client_secret", "wrong"),
            ("code", code2.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = h
        .http
        .post(&url)
        .form(&[
            ("client_id", "test-client"),
            ("client_secret", "test-secret"),
            ("code", code2.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let plain: Value = resp.json().await.unwrap();
    assert!(
        plain["access_token"]
            .as_str()
            .unwrap()
            .starts_with("shpat_")
    );
    assert!(plain.get("refresh_token").is_none());
    assert!(plain.get("expires_in").is_none());

    // A code is bound to its shop.
    let code3 = h.install(SHOP).await["code"].clone();
    let resp = h
        .exchange_json("other-shop.myshopify.com", &code3, "1")
        .await;
    assert_eq!(resp.status(), 400);

    // Refresh rotates both tokens; the old refresh token dies.
    let refresh = body["refresh_token"].as_str().unwrap();
    let rotate = |token: String| {
        h.http
            .post(&url)
            .json(&json!({"client_id": "test-client", "client_secret": "test-secret", "refresh_token": token, "grant_type": "refresh_token"}))
            .send()
    };
    let resp = rotate(refresh.to_string()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let rotated: Value = resp.json().await.unwrap();
    assert_ne!(rotated["access_token"], body["access_token"]);
    assert_ne!(rotated["refresh_token"], body["refresh_token"]);
    assert_eq!(rotated["expires_in"], 3600);
    let resp = rotate(refresh.to_string()).await.unwrap();
    assert_eq!(resp.status(), 400);
    let new_token = rotated["access_token"].as_str().unwrap();
    let data = h
        .graphql(SHOP, new_token, "{ shop { name } }", json!({}))
        .await;
    assert!(data["data"]["shop"]["name"].is_string());
    assert_eq!(h.store.installed_shops().len(), 1);
}

#[tokio::test]
async fn graphql_shop_counts_and_pagination() {
    let h = spawn().await;
    let token = h.token(SHOP).await;
    let ds = h.store.dataset(SHOP);

    let shop = h
        .graphql(
            SHOP,
            &token,
            "{ shop { name email myshopifyDomain currencyCode ianaTimezone plan { publicDisplayName partnerDevelopment shopifyPlus } } }",
            json!({}),
        )
        .await;
    let s = &shop["data"]["shop"];
    assert_eq!(s["myshopifyDomain"], SHOP);
    assert_eq!(s["name"], ds.shop.name.as_str());
    assert_eq!(s["currencyCode"], "USD");
    assert_eq!(s["ianaTimezone"], ds.shop.iana_timezone.as_str());
    assert_eq!(s["plan"]["partnerDevelopment"], true);
    let cost = &shop["extensions"]["cost"];
    assert_eq!(cost["requestedQueryCost"], 2);
    assert_eq!(cost["throttleStatus"]["maximumAvailable"], 2000.0);
    assert_eq!(cost["throttleStatus"]["restoreRate"], 100.0);

    // Counts over the last 7 days, with an explicit upper bound in the past
    // so that the server's clock cannot differ from ours.
    let now = Utc::now() - Duration::seconds(2);
    let from = now - Duration::days(7);
    let fmt = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let (from, to) = (
        chrono::DateTime::parse_from_rfc3339(&fmt(from))
            .unwrap()
            .with_timezone(&Utc),
        chrono::DateTime::parse_from_rfc3339(&fmt(now))
            .unwrap()
            .with_timezone(&Utc),
    );
    let query = format!(
        "created_at:>='{}' AND created_at:<='{}'",
        fmt(from),
        fmt(to)
    );
    let expected: Vec<_> = ds
        .orders
        .iter()
        .filter(|o| o.created_at >= from && o.created_at <= to)
        .collect();
    assert!(expected.len() > 10);
    let counts = h
        .graphql(
            SHOP,
            &token,
            "query C($q: String) { ordersCount(query: $q, limit: null) { count precision } productsCount { count precision } customersCount { count } open: ordersCount(query: \"status:open\") { count } }",
            json!({"q": query}),
        )
        .await;
    assert_eq!(counts["data"]["ordersCount"]["count"], expected.len());
    assert_eq!(counts["data"]["ordersCount"]["precision"], "EXACT");
    assert_eq!(counts["data"]["productsCount"]["count"], ds.products.len());
    assert_eq!(
        counts["data"]["customersCount"]["count"],
        ds.customers.len()
    );
    assert!(counts["data"]["open"]["count"].as_u64().unwrap() > 0);
    let capped = h
        .graphql(
            SHOP,
            &token,
            "{ ordersCount(limit: 3) { count precision } }",
            json!({}),
        )
        .await;
    assert_eq!(capped["data"]["ordersCount"]["count"], 3);
    assert_eq!(capped["data"]["ordersCount"]["precision"], "AT_LEAST");

    // Two pages, newest first.
    let page_query = r#"query P($q: String, $after: String) {
        orders(first: 5, after: $after, query: $q, sortKey: CREATED_AT, reverse: true) {
            nodes { id name createdAt displayFinancialStatus displayFulfillmentStatus
                    totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount } }
                    totalRefundedSet { shopMoney { amount } }
                    customer { id email numberOfOrders amountSpent { amount } }
                    lineItems(first: 5) { edges { cursor node { title quantity sku originalUnitPriceSet { shopMoney { amount } } product { id title } } } } }
            edges { cursor }
            pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        } }"#;
    let mut newest: Vec<_> = expected.clone();
    newest.sort_by_key(|o| std::cmp::Reverse((o.created_at, o.id)));
    let p1 = h
        .graphql(SHOP, &token, page_query, json!({"q": query}))
        .await;
    let orders = &p1["data"]["orders"];
    assert_eq!(orders["pageInfo"]["hasNextPage"], true);
    assert_eq!(orders["pageInfo"]["hasPreviousPage"], false);
    let end = orders["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(orders["edges"][4]["cursor"], end.as_str());
    let p2 = h
        .graphql(SHOP, &token, page_query, json!({"q": query, "after": end}))
        .await;
    assert_eq!(p2["data"]["orders"]["pageInfo"]["hasPreviousPage"], true);
    let ids: Vec<String> = [&p1, &p2]
        .iter()
        .flat_map(|p| p["data"]["orders"]["nodes"].as_array().unwrap().clone())
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = newest
        .iter()
        .take(10)
        .map(|o| format!("gid://shopify/Order/{}", o.id))
        .collect();
    assert_eq!(ids, want);

    let first = &p1["data"]["orders"]["nodes"][0];
    let o = newest[0];
    assert_eq!(first["name"], o.name().as_str());
    assert_eq!(
        first["totalPriceSet"]["shopMoney"]["amount"],
        hirecj_devstore::format_cents(o.total).as_str()
    );
    assert_eq!(first["totalPriceSet"]["shopMoney"]["currencyCode"], "USD");
    assert!(first["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        first["lineItems"]["edges"][0]["node"]["title"],
        o.line_items[0].title.as_str()
    );
    if o.customer_id.is_some() {
        assert!(first["customer"]["numberOfOrders"].is_string());
    }
    // Cost: 2 + 5 * (1 + 2 + 1 + 1 + (1 + 1 + 2 + 5 * (1 + 1 + 1))), actual is smaller.
    let cost = &p1["extensions"]["cost"];
    assert!(cost["requestedQueryCost"].as_u64().unwrap() > 50);
    assert!(
        cost["actualQueryCost"].as_u64().unwrap() <= cost["requestedQueryCost"].as_u64().unwrap()
    );

    // Filters and sorting on other connections.
    let c = &ds.customers[3];
    let found = h
        .graphql(
            SHOP,
            &token,
            "query($q: String) { customers(first: 2, query: $q) { nodes { email firstName displayName orders(first: 3) { nodes { id } } } } products(first: 3, sortKey: TITLE) { nodes { title handle status priceRangeV2 { minVariantPrice { amount } } } } }",
            json!({"q": format!("email:{}", c.email)}),
        )
        .await;
    assert_eq!(
        found["data"]["customers"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        found["data"]["customers"]["nodes"][0]["email"],
        c.email.as_str()
    );
    let mut titles: Vec<String> = ds.products.iter().map(|p| p.title.to_lowercase()).collect();
    titles.sort();
    assert_eq!(
        found["data"]["products"]["nodes"][0]["title"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        titles[0]
    );

    // Missing first/last is an error, as on Shopify.
    let err = h
        .graphql(SHOP, &token, "{ orders { nodes { id } } }", json!({}))
        .await;
    assert!(
        err["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("first or last")
    );
}

#[tokio::test]
async fn unknown_field_is_a_graphql_error() {
    let h = spawn().await;
    let token = h.token(SHOP).await;
    let body = h
        .graphql(SHOP, &token, "{ shop { name favouriteColour } }", json!({}))
        .await;
    let err = &body["errors"][0];
    assert_eq!(
        err["message"],
        "Field 'favouriteColour' doesn't exist on type 'Shop'"
    );
    assert_eq!(err["extensions"]["code"], "undefinedField");
    assert!(body.get("data").is_none());
    assert!(body["extensions"]["cost"].is_object());
    let body = h.graphql(SHOP, &token, "{ shop { name ", json!({})).await;
    assert!(body["errors"][0]["message"].is_string());
}

#[tokio::test]
async fn unauthorized_tokens_get_401() {
    let h = spawn().await;
    let token = h.token(SHOP).await;
    let expected = json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"});
    let resp = h
        .graphql_raw(SHOP, "shpat_unknown", "{ shop { name } }", json!({}))
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap(), expected);
    // A token of one shop does not open another.
    let resp = h
        .graphql_raw(
            "other-shop.myshopify.com",
            &token,
            "{ shop { name } }",
            json!({}),
        )
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap(), expected);
    // Revoked tokens stop working.
    h.store.revoke_tokens(SHOP);
    let resp = h
        .graphql_raw(SHOP, &token, "{ shop { name } }", json!({}))
        .await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn scopes_and_sixty_day_visibility() {
    let h = spawn().await;
    let limited = h.store.issue_access_token(SHOP, "read_products").unwrap();
    let body = h
        .graphql(
            SHOP,
            &limited,
            "{ ordersCount { count } productsCount { count } }",
            json!({}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "ACCESS_DENIED");
    assert!(body["data"]["productsCount"]["count"].as_u64().unwrap() > 0);

    let normal = h.store.issue_access_token(SHOP, "read_orders").unwrap();
    let all = h
        .store
        .issue_access_token(SHOP, "read_orders,read_all_orders")
        .unwrap();
    let q = "{ ordersCount(limit: null) { count } }";
    let n = h.graphql(SHOP, &normal, q, json!({})).await["data"]["ordersCount"]["count"]
        .as_u64()
        .unwrap();
    let m = h.graphql(SHOP, &all, q, json!({})).await["data"]["ordersCount"]["count"]
        .as_u64()
        .unwrap();
    assert!(n < m, "{n} < {m}");
}

fn assert_throttled(body: &Value) {
    assert_eq!(body["errors"][0]["message"], "Throttled");
    assert_eq!(body["errors"][0]["extensions"]["code"], "THROTTLED");
    let cost = &body["extensions"]["cost"];
    assert!(cost["requestedQueryCost"].as_u64().unwrap() >= 1);
    assert!(
        cost["throttleStatus"]["currentlyAvailable"]
            .as_u64()
            .unwrap()
            < cost["requestedQueryCost"].as_u64().unwrap()
    );
}

/// Waits as a well-behaved client would: (requested - available) / rate.
async fn wait_for_restore(cost: &Value) {
    let requested = cost["requestedQueryCost"].as_f64().unwrap();
    let available = cost["throttleStatus"]["currentlyAvailable"]
        .as_f64()
        .unwrap();
    let rate = cost["throttleStatus"]["restoreRate"].as_f64().unwrap();
    let secs = ((requested - available) / rate).max(0.0) + 0.01;
    tokio::time::sleep(StdDuration::from_secs_f64(secs)).await;
}

#[tokio::test]
async fn drained_bucket_throttles_then_recovers() {
    let mut cfg = config("http://127.0.0.1:9/unused");
    cfg.restore_rate = 50.0;
    let h = spawn_with(cfg).await;
    let token = h.token(SHOP).await;
    let q = "{ orders(first: 20) { nodes { id } } }"; // costs 22

    let ok = h.graphql(SHOP, &token, q, json!({})).await;
    assert!(ok["data"]["orders"]["nodes"].is_array());

    // Drain over HTTP.
    let resp = h
        .http
        .post(format!("{}/_control/drain?shop={SHOP}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let throttled = h.graphql(SHOP, &token, q, json!({})).await;
    assert_throttled(&throttled);
    assert!(throttled.get("data").is_none());
    assert_eq!(
        throttled["extensions"]["cost"]["throttleStatus"]["restoreRate"],
        50.0
    );

    let mut body = throttled;
    for _ in 0..20 {
        if body.get("errors").is_none() {
            break;
        }
        wait_for_restore(&body["extensions"]["cost"]).await;
        body = h.graphql(SHOP, &token, q, json!({})).await;
    }
    assert!(body["data"]["orders"]["nodes"].is_array(), "{body}");

    // And from Rust, with new limits.
    h.store.set_bucket_limits(500.0, 1.0);
    h.store.drain_bucket(SHOP);
    assert_throttled(&h.graphql(SHOP, &token, q, json!({})).await);
    assert!(h.store.bucket_available(SHOP) < 22.0);

    // A query above 1000 points is refused outright.
    let huge = h
        .graphql(
            SHOP,
            &token,
            "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { title } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(huge["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED");
}

#[tokio::test]
async fn data_is_deterministic_per_shop() {
    let a = DevStore::new(DevStoreConfig::default());
    let b = DevStore::new(DevStoreConfig::default());
    assert_eq!(*a.dataset(SHOP), *b.dataset("cool-shirts"));
    assert_ne!(a.dataset(SHOP).orders, b.dataset("other-shop").orders);
    assert_ne!(a.dataset(SHOP).products, b.dataset("other-shop").products);

    // Same answers over HTTP from two independent stores.
    let h1 = spawn().await;
    let h2 = spawn().await;
    let q = "{ products(first: 5, sortKey: TITLE) { nodes { id title } } orders(first: 5, reverse: true) { nodes { id name totalPriceSet { shopMoney { amount } } } } }";
    let t1 = h1.token(SHOP).await;
    let t2 = h2.token(SHOP).await;
    let r1 = h1.graphql(SHOP, &t1, q, json!({})).await;
    let r2 = h2.graphql(SHOP, &t2, q, json!({})).await;
    assert_eq!(r1["data"], r2["data"]);
}

type Received = (HeaderMap, Bytes);

async fn webhook_receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel::<Received>();
    let app = Router::new().route(
        "/webhooks",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let ok = verify_webhook(
                    &body,
                    headers["x-shopify-hmac-sha256"]
                        .to_str()
                        .unwrap_or_default(),
                    "test-secret",
                );
                tx.send((headers, body)).unwrap();
                if ok {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::UNAUTHORIZED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/webhooks"), rx)
}

#[tokio::test]
async fn webhooks_are_signed_and_delivered() {
    let (url, mut rx) = webhook_receiver().await;
    let h = spawn_with(config(&url)).await;
    let token = h.token(SHOP).await;
    let ds = h.store.dataset(SHOP);

    let delivery = h
        .store
        .send_webhook(WebhookTopic::CustomersRedact, SHOP, None)
        .await
        .unwrap();
    assert!(delivery.accepted(), "{}", delivery.status);
    let (headers, body) = rx.recv().await.unwrap();
    assert_eq!(headers["x-shopify-topic"], "customers/redact");
    assert_eq!(headers["x-shopify-shop-domain"], SHOP);
    assert_eq!(headers["x-shopify-api-version"], "2026-10");
    assert_eq!(
        headers["x-shopify-webhook-id"],
        delivery.webhook_id.as_str()
    );
    assert!(uuid::Uuid::parse_str(headers["x-shopify-webhook-id"].to_str().unwrap()).is_ok());
    assert!(headers.contains_key("x-shopify-triggered-at"));
    assert!(headers.contains_key("x-shopify-event-id"));
    assert_eq!(body.as_ref(), delivery.body.as_bytes());
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["shop_domain"], SHOP);
    assert_eq!(payload["shop_id"], ds.shop.id);
    let customer = ds
        .customer(payload["customer"]["id"].as_u64().unwrap())
        .unwrap();
    assert_eq!(payload["customer"]["email"], customer.email.as_str());
    let first_order = payload["orders_to_redact"][0].as_u64().unwrap();
    assert_eq!(
        ds.order(first_order).unwrap().customer_id,
        Some(customer.id)
    );

    // The stand-alone function (for the CLI), with a custom payload.
    let cfg = config(&url);
    let custom = json!({"shop_id": 1, "shop_domain": SHOP});
    let d =
        hirecj_devstore::send_webhook(&cfg, WebhookTopic::ShopRedact, SHOP, Some(custom.clone()))
            .await
            .unwrap();
    assert!(d.accepted());
    let (headers, body) = rx.recv().await.unwrap();
    assert_eq!(headers["x-shopify-topic"], "shop/redact");
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), custom);

    // A wrong secret is rejected by the receiver.
    let mut wrong = config(&url);
    wrong.client_secret = "nope".into();
    let d = hirecj_devstore::send_webhook(&wrong, WebhookTopic::ShopRedact, SHOP, None)
        .await
        .unwrap();
    assert_eq!(d.status, 401);
    rx.recv().await.unwrap();

    // The index page lists the installed shop; its form uninstalls, which
    // revokes the token and sends app/uninstalled.
    let page = h
        .http
        .get(&h.base)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(SHOP), "{page}");
    assert!(page.contains("/devstore/_control/webhook"));
    let resp = h
        .http
        .post(format!("{}/_control/uninstall", h.base))
        .form(&[("shop", SHOP)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/devstore?message="), "{location}");
    let (headers, body) = rx.recv().await.unwrap();
    assert_eq!(headers["x-shopify-topic"], "app/uninstalled");
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["myshopify_domain"], SHOP);
    assert!(h.store.installed_shops().is_empty());
    let origin = h.base.trim_end_matches("/devstore");
    let page = h
        .http
        .get(format!("{origin}{location}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Uninstalled from"));
    let resp = h
        .graphql_raw(SHOP, &token, "{ shop { name } }", json!({}))
        .await;
    assert_eq!(resp.status(), 401);

    // The compliance buttons post the same way.
    let resp = h
        .http
        .post(format!("{}/_control/webhook", h.base))
        .form(&[("shop", SHOP), ("topic", "customers/data_request")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let (headers, body) = rx.recv().await.unwrap();
    assert_eq!(headers["x-shopify-topic"], "customers/data_request");
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert!(payload["data_request"]["id"].is_u64());
}

#[tokio::test]
async fn standalone_server_serves_under_devstore() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(hirecj_devstore::serve_standalone(
        listener,
        config("http://127.0.0.1:9/unused"),
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .get(format!("http://{addr}/devstore"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("HireCJ development store")
    );
    let slash = http
        .get(format!("http://{addr}/devstore/"))
        .send()
        .await
        .unwrap();
    assert!(slash.status().is_redirection());
    let resp = http.get(format!("http://{addr}/")).send().await.unwrap();
    assert!(resp.status().is_redirection());
}

#[tokio::test]
async fn expired_tokens_401_and_refresh_recovers() {
    let h = spawn().await;
    let code = h.install(SHOP).await["code"].clone();
    let body: Value = h
        .exchange_json(SHOP, &code, "1")
        .await
        .json()
        .await
        .unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        h.graphql_raw(SHOP, access, "{ shop { name } }", json!({}))
            .await
            .status(),
        200
    );
    let resp = h
        .http
        .post(format!("{}/_control/expire_tokens?shop={SHOP}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        h.graphql_raw(SHOP, access, "{ shop { name } }", json!({}))
            .await
            .status(),
        401
    );
    let resp = h
        .http
        .post(format!("{}/{SHOP}/admin/oauth/access_token", h.base))
        .form(&[
            ("client_id", "test-client"),
            ("client_secret", "test-secret"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("grant_type", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let fresh: Value = resp.json().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(
        h.graphql_raw(SHOP, fresh, "{ shop { name } }", json!({}))
            .await
            .status(),
        200
    );
    // Non-expiring tokens do not expire.
    let forever = h.store.issue_access_token(SHOP, "read_orders").unwrap();
    h.store.expire_access_tokens(SHOP);
    assert_eq!(
        h.graphql_raw(SHOP, &forever, "{ shop { name } }", json!({}))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn online_tokens_carry_the_user() {
    let h = spawn().await;
    let resp = h
        .http
        .post(format!("{}/{SHOP}/admin/oauth/authorize", h.base))
        .form(&[
            ("client_id", "test-client"),
            ("scope", "read_orders"),
            ("redirect_uri", CALLBACK),
            ("state", "s"),
            ("grant_options[]", "per-user"),
            ("decision", "install"),
        ])
        .send()
        .await
        .unwrap();
    let params = callback_params(&resp);
    let body: Value = h
        .exchange_json(SHOP, &params["code"], "0")
        .await
        .json()
        .await
        .unwrap();
    assert!(body["access_token"].as_str().unwrap().starts_with("shpua_"));
    assert_eq!(body["associated_user_scope"], "read_orders");
    assert!(body["associated_user"]["id"].is_u64());
    assert_eq!(body["expires_in"], 86_400);
}

#[tokio::test]
async fn sorting_backwards_pages_and_graphql_bodies() {
    let h = spawn().await;
    let token = h
        .store
        .issue_access_token(SHOP, "read_orders,read_all_orders,read_products")
        .unwrap();
    let ds = h.store.dataset(SHOP);
    let now = Utc::now();
    let visible: Vec<_> = ds.orders.iter().filter(|o| o.created_at <= now).collect();
    let max_total = visible.iter().map(|o| o.total).max().unwrap();
    let body = h
        .graphql(
            SHOP,
            &token,
            "{ orders(first: 1, sortKey: TOTAL_PRICE, reverse: true) { nodes { totalPriceSet { shopMoney { amount } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["orders"]["nodes"][0]["totalPriceSet"]["shopMoney"]["amount"],
        hirecj_devstore::format_cents(max_total).as_str()
    );

    // `last`/`before` walk backwards.
    let q = "query($before: String) { products(last: 3, before: $before, sortKey: ID) { nodes { id } pageInfo { hasPreviousPage hasNextPage startCursor } } }";
    let p1 = h.graphql(SHOP, &token, q, json!({})).await;
    let ids: Vec<String> = ds
        .products
        .iter()
        .map(|p| format!("gid://shopify/Product/{}", p.id))
        .collect();
    let n = ids.len();
    let got: Vec<&str> = p1["data"]["products"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        ids[n - 3..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(p1["data"]["products"]["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(p1["data"]["products"]["pageInfo"]["hasNextPage"], false);
    let start = p1["data"]["products"]["pageInfo"]["startCursor"].clone();
    let p2 = h.graphql(SHOP, &token, q, json!({"before": start})).await;
    let got: Vec<&str> = p2["data"]["products"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        ids[n - 6..n - 3]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );

    // `application/graphql` bodies and a bad body.
    let resp = h
        .http
        .post(format!("{}/{SHOP}/admin/api/2026-10/graphql.json", h.base))
        .header("X-Shopify-Access-Token", &token)
        .header("Content-Type", "application/graphql")
        .body("{ shop { myshopifyDomain } }")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-shopify-api-version"], "2026-10");
    assert!(resp.headers().contains_key("x-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["shop"]["myshopifyDomain"], SHOP);
    let resp = h
        .http
        .post(format!("{}/{SHOP}/admin/api/2026-10/graphql.json", h.base))
        .header("X-Shopify-Access-Token", &token)
        .header("Content-Type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // An unknown API version is a 404.
    let resp = h
        .http
        .post(format!("{}/{SHOP}/admin/api/latest/graphql.json", h.base))
        .header("X-Shopify-Access-Token", &token)
        .json(&json!({"query": "{ shop { name } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

/// Posts every state-changing form (the control routes and the consent
/// decision) with `origin` and `fetch_site`; returns each URL and status.
async fn post_every_form(
    h: &Harness,
    origin: Option<&str>,
    fetch_site: Option<&str>,
) -> Vec<(String, u16)> {
    let consent = vec![
        ("client_id", "test-client"),
        ("scope", "read_products,read_orders,read_customers"),
        ("redirect_uri", CALLBACK),
        ("state", "nonce-123"),
        ("grant_options[]", ""),
        ("decision", "install"),
    ];
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("{}/_control/uninstall", h.base),
            vec![("shop", SHOP)],
        ),
        (
            format!("{}/_control/webhook", h.base),
            vec![("shop", SHOP), ("topic", "shop/redact")],
        ),
        (format!("{}/_control/drain?shop={SHOP}", h.base), vec![]),
        (
            format!("{}/_control/expire_tokens?shop={SHOP}", h.base),
            vec![],
        ),
        (
            format!("{}/_control/bucket?max=1&restore_rate=0", h.base),
            vec![],
        ),
        (format!("{}/{SHOP}/admin/oauth/authorize", h.base), consent),
    ];
    let mut out = Vec::new();
    for (url, form) in forms {
        let mut req = h.http.post(&url).form(&form);
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        if let Some(s) = fetch_site {
            req = req.header("Sec-Fetch-Site", s);
        }
        let resp = req.send().await.unwrap();
        assert!(
            resp.headers().get("location").is_none(),
            "{url}: no redirect"
        );
        out.push((url, resp.status().as_u16()));
    }
    out
}

#[tokio::test]
async fn cross_site_form_posts_are_refused_and_change_nothing() {
    let (url, mut rx) = webhook_receiver().await;
    let h = spawn_with(config(&url)).await;
    // An expiring token: expire_tokens or uninstall would make it fail.
    let token = h.token(SHOP).await;

    // A page on another site posts the control forms and the consent form.
    for (origin, fetch_site) in [
        (Some("http://evil.example"), None),
        (Some("null"), None),
        (Some("http://127.0.0.1:1"), None),
        (None, Some("cross-site")),
    ] {
        for (url, status) in post_every_form(&h, origin, fetch_site).await {
            assert_eq!(status, 403, "{origin:?} {fetch_site:?} {url}");
        }
    }
    // Nothing happened: still installed, the token still works, no webhook
    // was sent, the bucket was neither drained nor shrunk.
    assert_eq!(h.store.installed_shops().len(), 1);
    let resp = h
        .graphql_raw(SHOP, &token, "{ shop { name } }", json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(rx.try_recv().is_err(), "no webhook was sent");
    assert!(h.store.bucket_available(SHOP) > 1000.0);

    // The development store's own pages post with its origin: accepted.
    let own = h.base.trim_end_matches("/devstore").to_string();
    let resp = h
        .http
        .post(format!("{}/_control/uninstall", h.base))
        .header("Origin", own)
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[("shop", SHOP)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let (headers, _) = rx.recv().await.unwrap();
    assert_eq!(headers["x-shopify-topic"], "app/uninstalled");
    assert!(h.store.installed_shops().is_empty());
}

#[tokio::test]
async fn a_configured_public_origin_is_the_only_one_accepted() {
    let mut cfg = config("http://127.0.0.1:9/unused");
    cfg.public_origin = Some("https://cj.example".into());
    let h = spawn_with(cfg).await;
    let own_host = h.base.trim_end_matches("/devstore").to_string();
    let drain = |origin: String| {
        h.http
            .post(format!("{}/_control/drain?shop={SHOP}", h.base))
            .header("Origin", origin)
            .send()
    };
    assert_eq!(drain(own_host).await.unwrap().status(), 403);
    assert_eq!(h.store.bucket_available(SHOP), 2000.0);
    assert_eq!(
        drain("https://cj.example".into()).await.unwrap().status(),
        200
    );
    assert!(h.store.bucket_available(SHOP) < 100.0, "drained");
}

#[tokio::test]
async fn an_installed_shops_order_has_an_admin_page() {
    let h = spawn().await;
    let page = |shop: &str, id: &str| {
        h.http
            .get(format!("{}/{shop}/admin/orders/{id}", h.base))
            .send()
    };
    let ds = h.store.dataset(SHOP);
    let order = ds.orders.last().unwrap();
    // Not installed: no page (and no store generated for a page view).
    assert_eq!(
        page(SHOP, &order.id.to_string()).await.unwrap().status(),
        404
    );
    h.store.issue_access_token(SHOP, "read_orders").unwrap();
    let resp = page(SHOP, &order.id.to_string()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains(&format!("Order {}", order.name())), "{html}");
    assert!(
        html.contains(
            &order.line_items[0]
                .title
                .replace('&', "&amp;")
                .replace('\'', "&#39;")
        )
    );
    assert!(html.contains(&hirecj_devstore::format_cents(order.total)));
    for (shop, id) in [(SHOP, "1"), (SHOP, "not-a-number"), ("other-shop", "1")] {
        assert_eq!(page(shop, id).await.unwrap().status(), 404, "{shop} {id}");
    }
}
