//! Bulk operations of the development store over real HTTP on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::{Duration as StdDuration, Instant};

use axum::Router;
use chrono::{DateTime, Duration, Utc};
use hirecj_devstore::{DevStore, DevStoreConfig, format_cents};
use serde_json::{Value, json};

const SHOP: &str = "cool-shirts.myshopify.com";

struct Harness {
    base: String,
    store: DevStore,
    http: reqwest::Client,
}

async fn spawn() -> Harness {
    let store = DevStore::new(DevStoreConfig::default());
    let app = Router::new().nest("/devstore", store.clone().router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Harness {
        base: format!("http://{addr}/devstore"),
        store,
        http: reqwest::Client::builder()
            .timeout(StdDuration::from_secs(60))
            .build()
            .unwrap(),
    }
}

const RUN: &str = "mutation Run($query: String!, $group: Boolean!) { bulkOperationRunQuery(query: $query, groupObjects: $group) { bulkOperation { id status createdAt url } userErrors { field message code } } }";

const POLL: &str = "query Poll($id: ID!) { bulkOperation(id: $id) { id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl query type } }";

const ORDERS: &str = r#"{ orders(query: "status:any") { edges { node { id name createdAt totalPriceSet { shopMoney { amount } } refunds { id createdAt note totalRefundedSet { shopMoney { amount } } } lineItems { edges { node { id title quantity product { id } variant { id } } } } } } } }"#;

impl Harness {
    async fn graphql(&self, token: &str, query: &str, variables: Value) -> Value {
        let resp = self
            .http
            .post(format!(
                "{}/{SHOP}/admin/api/2026-10/graphql.json",
                self.base
            ))
            .header("X-Shopify-Access-Token", token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    async fn run(&self, token: &str, query: &str, group: bool) -> Value {
        let v = self
            .graphql(token, RUN, json!({"query": query, "group": group}))
            .await;
        assert!(v.get("errors").is_none(), "{v}");
        v["data"]["bulkOperationRunQuery"].clone()
    }

    /// Polls until the operation leaves CREATED/RUNNING.
    async fn wait(&self, token: &str, id: &str) -> Value {
        let deadline = Instant::now() + StdDuration::from_secs(60);
        loop {
            let v = self.graphql(token, POLL, json!({"id": id})).await;
            let op = v["data"]["bulkOperation"].clone();
            let status = op["status"].as_str().unwrap_or_default().to_string();
            if status != "CREATED" && status != "RUNNING" {
                return op;
            }
            assert!(Instant::now() < deadline, "still {status}");
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    }

    async fn lines(&self, url: &str) -> Vec<Value> {
        let resp = self.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        text.lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}: {l}", i + 1))
            })
            .collect()
    }
}

fn number(gid: &Value) -> u64 {
    gid.as_str()
        .and_then(|s| s.rsplit('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn bulk_orders_match_the_visible_orders_with_children_after_parents() {
    let h = spawn().await;
    let token = h
        .store
        .issue_access_token(SHOP, "read_orders,read_products")
        .unwrap();
    let started = h.run(&token, ORDERS, true).await;
    assert_eq!(started["userErrors"], json!([]));
    let id = started["bulkOperation"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("gid://shopify/BulkOperation/"), "{id}");
    let op = h.wait(&token, &id).await;
    assert_eq!(op["status"], "COMPLETED", "{op}");
    assert_eq!(op["type"], "QUERY");
    assert_eq!(op["query"], ORDERS);
    assert!(op["partialDataUrl"].is_null());
    let url = op["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/_bulk/", h.base)), "{url}");
    assert!(url.ends_with(".jsonl"));

    let lines = h.lines(url).await;
    assert_eq!(op["objectCount"], lines.len().to_string());
    let mut last_root: Option<String> = None;
    let mut roots = Vec::new();
    let mut children = 0;
    for l in &lines {
        match l.get("__parentId") {
            None => {
                assert!(
                    l["id"]
                        .as_str()
                        .unwrap()
                        .starts_with("gid://shopify/Order/")
                );
                assert!(l.get("lineItems").is_none(), "connections are not inline");
                last_root = l["id"].as_str().map(str::to_string);
                roots.push(l.clone());
            }
            Some(parent) => {
                assert_eq!(
                    parent.as_str(),
                    last_root.as_deref(),
                    "child after its parent"
                );
                assert!(
                    l["id"]
                        .as_str()
                        .unwrap()
                        .starts_with("gid://shopify/LineItem/")
                );
                children += 1;
            }
        }
    }
    assert_eq!(op["rootObjectCount"], roots.len().to_string());

    // The same orders the API shows: the last 60 days up to the operation.
    let now: DateTime<Utc> = op["createdAt"].as_str().unwrap().parse().unwrap();
    let ds = h.store.dataset(SHOP);
    let visible: Vec<_> = ds
        .visible_orders(now)
        .filter(|o| o.created_at >= now - Duration::days(60))
        .collect();
    assert_eq!(roots.len(), visible.len());
    let lines_expected: usize = visible.iter().map(|o| o.line_items.len()).sum();
    assert_eq!(children, lines_expected);
    let mut refunded = 0;
    for (root, o) in roots.iter().zip(&visible) {
        assert_eq!(number(&root["id"]), o.id);
        assert_eq!(root["name"], o.name());
        assert_eq!(
            root["totalPriceSet"]["shopMoney"]["amount"],
            format_cents(o.total)
        );
        let refunds = root["refunds"].as_array().unwrap();
        assert_eq!(refunds.len(), o.refunds().len(), "refunds stay inline");
        for (r, expected) in refunds.iter().zip(o.refunds()) {
            assert_eq!(number(&r["id"]), expected.id);
            assert_eq!(
                r["totalRefundedSet"]["shopMoney"]["amount"],
                format_cents(expected.amount)
            );
            assert_eq!(r["note"].as_str(), expected.note.as_deref());
            refunded += 1;
        }
    }
    assert!(refunded > 0);
    let ids: HashSet<u64> = roots.iter().map(|r| number(&r["id"])).collect();
    assert_eq!(ids.len(), roots.len(), "no order twice");

    // currentBulkOperation is this one.
    let v = h
        .graphql(&token, "{ currentBulkOperation { id status } }", json!({}))
        .await;
    assert_eq!(v["data"]["currentBulkOperation"]["id"], id.as_str());
}

#[tokio::test]
async fn one_running_query_per_shop_and_user_errors() {
    let h = spawn().await;
    let token = h
        .store
        .issue_access_token(SHOP, "read_orders,read_products")
        .unwrap();
    // Two in one request: mutations run in order, the first still runs.
    let query = serde_json::to_string(ORDERS).unwrap();
    let both = format!(
        "mutation {{ a: bulkOperationRunQuery(query: {query}) {{ bulkOperation {{ id }} userErrors {{ code }} }} b: bulkOperationRunQuery(query: {query}) {{ bulkOperation {{ id }} userErrors {{ field message code }} }} }}"
    );
    let v = h.graphql(&token, &both, json!({})).await;
    assert_eq!(v["data"]["a"]["userErrors"], json!([]), "{v}");
    assert!(v["data"]["b"]["bulkOperation"].is_null(), "{v}");
    assert_eq!(
        v["data"]["b"]["userErrors"][0]["code"],
        "OPERATION_IN_PROGRESS"
    );
    assert_eq!(v["data"]["b"]["userErrors"][0]["field"], json!(["query"]));
    let first = v["data"]["a"]["bulkOperation"]["id"].as_str().unwrap();
    assert_eq!(h.wait(&token, first).await["status"], "COMPLETED");
    // Once it is done, the next one starts; the previous result expires.
    let next = h
        .run(&token, "{ products { nodes { id title } } }", false)
        .await;
    assert_eq!(next["userErrors"], json!([]));
    let next_id = next["bulkOperation"]["id"].as_str().unwrap();
    let done = h.wait(&token, next_id).await;
    assert_eq!(done["status"], "COMPLETED");
    let v = h.graphql(&token, POLL, json!({"id": first})).await;
    assert_eq!(v["data"]["bulkOperation"]["status"], "EXPIRED");
    assert_eq!(
        h.lines(done["url"].as_str().unwrap()).await.len(),
        h.store.dataset(SHOP).products.len()
    );

    // Invalid queries are user errors, not GraphQL errors.
    for bad in [
        "{ shop { name } }",
        "{ orders { nodes { id nope } } }",
        "not graphql",
        "{ customers { nodes { orders { nodes { lineItems { nodes { id } } } } } } }",
    ] {
        let r = h.run(&token, bad, true).await;
        assert!(r["bulkOperation"].is_null(), "{bad}: {r}");
        assert_eq!(r["userErrors"][0]["code"], "INVALID", "{bad}: {r}");
    }

    // A missing scope fails the operation with ACCESS_DENIED.
    let r = h.run(&token, "{ customers { nodes { id } } }", true).await;
    let op = h
        .wait(&token, r["bulkOperation"]["id"].as_str().unwrap())
        .await;
    assert_eq!(op["status"], "FAILED");
    assert_eq!(op["errorCode"], "ACCESS_DENIED");

    // Unknown results are 404; operations of other shops are invisible.
    let resp = h
        .http
        .get(format!("{}/_bulk/nothing.jsonl", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn ungrouped_children_follow_the_page_of_their_parents() {
    let h = spawn().await;
    let token = h.store.issue_access_token(SHOP, "read_orders").unwrap();
    let r = h
        .run(
            &token,
            "{ orders { nodes { id lineItems { nodes { id quantity } } } } }",
            false,
        )
        .await;
    let op = h
        .wait(&token, r["bulkOperation"]["id"].as_str().unwrap())
        .await;
    let lines = h.lines(op["url"].as_str().unwrap()).await;
    let mut seen = HashSet::new();
    let mut out_of_place = 0;
    let mut last_root = None;
    for l in &lines {
        match l["__parentId"].as_str() {
            None => {
                seen.insert(l["id"].as_str().unwrap().to_string());
                last_root = l["id"].as_str().map(str::to_string);
            }
            Some(p) => {
                assert!(seen.contains(p), "a child comes after its parent");
                if Some(p) != last_root.as_deref() {
                    out_of_place += 1;
                }
            }
        }
    }
    assert!(
        out_of_place > 0,
        "without grouping, children are not next to their parent"
    );
}

#[tokio::test]
async fn large_shops_get_read_all_orders_and_a_year_of_orders() {
    let h = spawn().await;
    let shop = "bench-large.myshopify.com";
    let token = h.store.issue_access_token(shop, "read_orders").unwrap();
    let installed = h.store.installed_shops();
    let scope = &installed.iter().find(|i| i.shop == shop).unwrap().scope;
    assert!(scope.split(',').any(|s| s == "read_all_orders"), "{scope}");
    let resp = h
        .http
        .post(format!("{}/{shop}/admin/api/2026-10/graphql.json", h.base))
        .header("X-Shopify-Access-Token", &token)
        .json(&json!({"query": "{ ordersCount(limit: null) { count precision } }"}))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    let count = v["data"]["ordersCount"]["count"].as_i64().unwrap();
    assert!(count > 90_000, "{v}");
    // A normal shop asking the same is not granted more.
    h.store.issue_access_token(SHOP, "read_orders").unwrap();
    let installed = h.store.installed_shops();
    let scope = &installed.iter().find(|i| i.shop == SHOP).unwrap().scope;
    assert_eq!(scope, "read_orders");
}
