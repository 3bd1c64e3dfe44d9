//! The development store's mutable data, webhook subscriptions and
//! deliveries, over real HTTP on loopback: a receiver app records every
//! delivery; the tests wait on its channel (never a fixed sleep).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use hirecj_devstore::{
    CancelOrder, Delivery, DeliveryFaults, DeliveryOutcome, DevStore, DevStoreConfig,
    FinancialStatus, FulfillmentStatus, NewCustomer, NewLineItem, NewOrder, NewProduct, NewRefund,
    OrderUpdate, ProductUpdate, RefundLine, WebhookTopic,
};
use hirecj_shopify::signing::verify_webhook;
use hirecj_shopify::{AdminClient, Secret, ShopDomain, ShopifyConfig, Subscribed};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const SHOP: &str = "cool-shirts.myshopify.com";
const SECRET: &str = "devstore-client-secret";
const SCOPES: &str = "read_orders,read_products,read_customers";
const WAIT: Duration = Duration::from_secs(20);

/// One delivery the receiver got.
#[derive(Debug, Clone)]
struct Received {
    topic: String,
    shop: String,
    webhook_id: String,
    event_id: String,
    api_version: String,
    triggered_at: String,
    signed: bool,
    body: Value,
}

async fn receive(
    State(tx): State<mpsc::UnboundedSender<Received>>,
    headers: HeaderMap,
    body: Bytes,
) {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let signed = verify_webhook(&body, &h("x-shopify-hmac-sha256"), SECRET);
    let _ = tx.send(Received {
        topic: h("x-shopify-topic"),
        shop: h("x-shopify-shop-domain"),
        webhook_id: h("x-shopify-webhook-id"),
        event_id: h("x-shopify-event-id"),
        api_version: h("x-shopify-api-version"),
        triggered_at: h("x-shopify-triggered-at"),
        signed,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
}

struct Harness {
    base: String,
    hook_url: String,
    store: DevStore,
    http: reqwest::Client,
    token: String,
    rx: mpsc::UnboundedReceiver<Received>,
    addr: std::net::SocketAddr,
}

async fn listen(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn spawn() -> Harness {
    let (tx, rx) = mpsc::unbounded_channel();
    let receiver = listen(Router::new().route("/hooks", post(receive)).with_state(tx)).await;
    let hook_url = format!("http://{receiver}/hooks");
    let store = DevStore::new(DevStoreConfig {
        app_webhook_url: hook_url.clone(),
        ..DevStoreConfig::default()
    });
    let addr = listen(Router::new().nest("/devstore", store.clone().router())).await;
    let token = store.issue_access_token(SHOP, SCOPES).unwrap();
    Harness {
        base: format!("http://{addr}/devstore"),
        hook_url,
        store,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        token,
        rx,
        addr,
    }
}

impl Harness {
    async fn graphql(&self, query: &str, variables: Value) -> Value {
        let resp = self
            .http
            .post(format!(
                "{}/{SHOP}/admin/api/2026-10/graphql.json",
                self.base
            ))
            .header("X-Shopify-Access-Token", &self.token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        assert!(v.get("errors").is_none(), "{v}");
        v
    }

    async fn subscribe(&self, topic: &str) -> Value {
        let v = self
            .graphql(
                hirecj_shopify::webhook_subscriptions::WEBHOOK_SUBSCRIPTION_CREATE,
                json!({"topic": topic, "webhookSubscription": {"uri": self.hook_url, "format": "JSON"}}),
            )
            .await;
        v["data"]["webhookSubscriptionCreate"].clone()
    }

    /// The next `n` deliveries, in arrival order.
    async fn next(&mut self, n: usize) -> Vec<Received> {
        let mut out = Vec::new();
        for _ in 0..n {
            let got = tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("only {} of {n} deliveries arrived: {out:#?}", out.len())
                })
                .unwrap();
            assert!(got.signed, "bad signature on {}", got.topic);
            assert_eq!(got.shop, SHOP);
            assert_eq!(got.api_version, "2026-10");
            assert!(!got.webhook_id.is_empty() && !got.event_id.is_empty());
            assert!(!got.triggered_at.is_empty());
            out.push(got);
        }
        out
    }

    /// Nothing more arrives once the store says all deliveries are done.
    async fn nothing_more(&mut self) {
        assert!(self.store.wait_for_deliveries(SHOP, WAIT).await);
        assert!(self.rx.try_recv().is_err(), "an unexpected delivery");
    }

    async fn control(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}/_control/{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

fn topics(got: &[Received]) -> Vec<&str> {
    got.iter().map(|r| r.topic.as_str()).collect()
}

fn keys(v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(*k).is_some(), "missing {k} in {v}");
    }
}

const LIST: &str = "query { webhookSubscriptions(first: 50) { nodes { id topic uri format } pageInfo { hasNextPage } } }";

#[tokio::test]
async fn subscriptions_are_created_listed_refused_twice_and_deleted() {
    let h = spawn().await;
    let created = h.subscribe("ORDERS_CREATE").await;
    assert_eq!(created["userErrors"], json!([]));
    let sub = &created["webhookSubscription"];
    assert_eq!(sub["topic"], "ORDERS_CREATE");
    assert_eq!(sub["uri"], h.hook_url.as_str());
    assert_eq!(sub["format"], "JSON");
    let id = sub["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("gid://shopify/WebhookSubscription/"));

    let again = h.subscribe("ORDERS_CREATE").await;
    assert!(again["webhookSubscription"].is_null());
    assert_eq!(
        again["userErrors"][0]["message"],
        "Address for this topic has already been taken"
    );
    let bad = h
        .graphql(
            hirecj_shopify::webhook_subscriptions::WEBHOOK_SUBSCRIPTION_CREATE,
            json!({"topic": "ORDERS_PAID", "webhookSubscription": {"uri": "not a url"}}),
        )
        .await;
    assert_eq!(
        bad["data"]["webhookSubscriptionCreate"]["userErrors"][0]["message"],
        "Address is invalid"
    );

    let list = h.graphql(LIST, json!({})).await;
    let nodes = list["data"]["webhookSubscriptions"]["nodes"]
        .as_array()
        .unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["id"], id.as_str());
    assert_eq!(h.store.webhook_subscriptions(SHOP).len(), 1);
    // Another shop sees none of them.
    assert!(h.store.webhook_subscriptions("other-shop").is_empty());

    let deleted = h
        .graphql(
            "mutation D($id: ID!) { webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId userErrors { field message } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        deleted["data"]["webhookSubscriptionDelete"]["deletedWebhookSubscriptionId"],
        id.as_str()
    );
    let list = h.graphql(LIST, json!({})).await;
    assert_eq!(list["data"]["webhookSubscriptions"]["nodes"], json!([]));
}

#[tokio::test]
async fn the_app_client_subscribes_and_takes_an_existing_subscription_as_success() {
    let h = spawn().await;
    let mut config = ShopifyConfig::new("id", "secret", "http://127.0.0.1/cb");
    config.admin_base_url = format!("http://{}/devstore/{{shop}}", h.addr);
    let client = AdminClient::new(AdminClient::http_client().unwrap(), &config);
    let shop = ShopDomain::parse(SHOP).unwrap();
    let token = Secret::new(h.token.clone());
    for topic in hirecj_shopify::MIRROR_TOPICS {
        let first = client
            .create_webhook_subscription(&shop, &token, topic, &h.hook_url)
            .await
            .unwrap();
        assert!(
            matches!(&first, Subscribed::Created(s) if s.topic == *topic),
            "{first:?}"
        );
        let second = client
            .create_webhook_subscription(&shop, &token, topic, &h.hook_url)
            .await
            .unwrap();
        assert_eq!(second, Subscribed::AlreadySubscribed);
    }
    assert_eq!(
        h.store.webhook_subscriptions(SHOP).len(),
        hirecj_shopify::MIRROR_TOPICS.len()
    );
    let err = client
        .create_webhook_subscription(&shop, &token, "ORDERS_CREATE", "ftp://nowhere")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Address is invalid"), "{err}");
}

#[tokio::test]
async fn every_topic_arrives_signed_with_the_documented_payload() {
    let mut h = spawn().await;
    for topic in hirecj_shopify::MIRROR_TOPICS {
        assert_eq!(h.subscribe(topic).await["userErrors"], json!([]));
    }
    let ds = h.store.dataset(SHOP);
    let product = ds
        .products
        .iter()
        .find(|p| p.status == hirecj_devstore::ProductStatus::Active)
        .unwrap()
        .clone();
    let variant = product.variants[0].clone();
    let customer = ds.customers[0].clone();

    // orders/create + orders/paid.
    let order = h
        .store
        .create_order(
            SHOP,
            NewOrder {
                line_items: vec![NewLineItem {
                    variant_id: variant.id,
                    quantity: 2,
                }],
                customer_id: Some(customer.id),
                tags: vec!["vip".into(), "gift".into()],
                note: Some("leave at the door".into()),
                ..NewOrder::default()
            },
        )
        .unwrap();
    let got = h.next(2).await;
    assert_eq!(topics(&got), ["orders/create", "orders/paid"]);
    let o = &got[0].body;
    keys(
        o,
        &[
            "id",
            "admin_graphql_api_id",
            "name",
            "created_at",
            "updated_at",
            "cancelled_at",
            "processed_at",
            "financial_status",
            "fulfillment_status",
            "currency",
            "total_price",
            "subtotal_price",
            "total_discounts",
            "total_tax",
            "email",
            "tags",
            "source_name",
            "customer",
            "line_items",
            "refunds",
        ],
    );
    assert_eq!(o["id"], order.id);
    assert_eq!(
        o["admin_graphql_api_id"],
        format!("gid://shopify/Order/{}", order.id)
    );
    assert_eq!(o["name"], order.name());
    assert_eq!(o["financial_status"], "paid");
    assert!(o["fulfillment_status"].is_null());
    assert!(o["cancelled_at"].is_null());
    assert_eq!(o["currency"], "USD");
    assert_eq!(o["total_price"], hirecj_devstore::format_cents(order.total));
    assert_eq!(
        o["subtotal_price"],
        hirecj_devstore::format_cents(variant.price * 2)
    );
    assert_eq!(o["tags"], "vip, gift");
    assert_eq!(o["note"], "leave at the door");
    assert_eq!(o["source_name"], "web");
    assert_eq!(o["customer"]["id"], customer.id);
    assert_eq!(o["customer"]["email"], customer.email.as_str());
    keys(
        &o["customer"],
        &["first_name", "last_name", "admin_graphql_api_id"],
    );
    let line = &o["line_items"][0];
    assert_eq!(line["product_id"], product.id);
    assert_eq!(line["variant_id"], variant.id);
    assert_eq!(line["quantity"], 2);
    assert_eq!(line["price"], hirecj_devstore::format_cents(variant.price));
    keys(
        line,
        &["id", "title", "variant_title", "sku", "total_discount"],
    );
    // Times carry the shop's offset, not Z.
    let created = o["created_at"].as_str().unwrap();
    assert!(
        !created.ends_with('Z') || ds.shop.utc_offset_seconds == 0,
        "{created}"
    );
    assert!(chrono::DateTime::parse_from_rfc3339(created).is_ok());
    assert_eq!(got[1].body["id"], order.id);

    // orders/updated + orders/fulfilled.
    let updated = h
        .store
        .update_order(
            SHOP,
            order.id,
            OrderUpdate {
                fulfillment_status: Some(FulfillmentStatus::Fulfilled),
                tags: Some(vec!["vip".into()]),
                ..OrderUpdate::default()
            },
        )
        .unwrap();
    assert!(updated.updated_at > order.updated_at);
    let got = h.next(2).await;
    assert_eq!(topics(&got), ["orders/updated", "orders/fulfilled"]);
    assert_eq!(got[0].body["fulfillment_status"], "fulfilled");
    assert_eq!(got[0].body["tags"], "vip");

    // refunds/create + orders/updated.
    let line_id = order.line_items[0].id;
    let (refunded, refund) = h
        .store
        .refund_order(
            SHOP,
            order.id,
            NewRefund {
                amount: None,
                note: Some("Wrong size".into()),
                line_items: vec![RefundLine {
                    line_item_id: line_id,
                    quantity: 1,
                }],
            },
        )
        .unwrap();
    assert_eq!(refund.amount, variant.price);
    assert_eq!(
        refunded.financial_status,
        FinancialStatus::PartiallyRefunded
    );
    let got = h.next(2).await;
    assert_eq!(topics(&got), ["refunds/create", "orders/updated"]);
    let r = &got[0].body;
    keys(
        r,
        &[
            "id",
            "admin_graphql_api_id",
            "created_at",
            "note",
            "transactions",
            "refund_line_items",
        ],
    );
    assert_eq!(r["order_id"], order.id);
    assert_eq!(r["note"], "Wrong size");
    assert_eq!(
        r["transactions"][0]["amount"],
        hirecj_devstore::format_cents(variant.price)
    );
    assert_eq!(r["transactions"][0]["kind"], "refund");
    assert_eq!(r["transactions"][0]["status"], "success");
    assert_eq!(r["refund_line_items"][0]["line_item_id"], line_id);
    assert_eq!(r["refund_line_items"][0]["quantity"], 1);
    assert_eq!(got[1].body["financial_status"], "partially_refunded");
    assert_eq!(got[1].body["refunds"].as_array().unwrap().len(), 1);

    // Cancel with a refund of the rest: refunds/create, orders/cancelled, orders/updated.
    let cancelled = h
        .store
        .cancel_order(
            SHOP,
            order.id,
            CancelOrder {
                reason: Some("customer".into()),
                refund: true,
            },
        )
        .unwrap();
    assert_eq!(cancelled.financial_status, FinancialStatus::Refunded);
    assert_eq!(cancelled.total_refunded, cancelled.total);
    let got = h.next(3).await;
    assert_eq!(
        topics(&got),
        ["refunds/create", "orders/cancelled", "orders/updated"]
    );
    assert!(got[1].body["cancelled_at"].is_string());
    assert_eq!(got[1].body["cancel_reason"], "customer");
    assert_eq!(got[1].body["financial_status"], "refunded");
    assert_eq!(got[1].body["refunds"].as_array().unwrap().len(), 2);
    // A second cancellation is refused and sends nothing.
    assert!(
        h.store
            .cancel_order(SHOP, order.id, CancelOrder::default())
            .is_err()
    );

    // A cancelled order may be deleted: orders/delete. Its id and number
    // are never given again; an open order may not be deleted.
    h.store.delete_order(SHOP, order.id).unwrap();
    let got = h.next(1).await;
    assert_eq!(topics(&got), ["orders/delete"]);
    assert_eq!(got[0].body, json!({"id": order.id}));
    assert!(h.store.dataset(SHOP).order(order.id).is_none());
    let open = h
        .store
        .create_order(
            SHOP,
            NewOrder {
                financial_status: Some(FinancialStatus::Pending),
                fulfillment_status: Some(FulfillmentStatus::Unfulfilled),
                ..NewOrder::default()
            },
        )
        .unwrap();
    assert!(open.id > order.id && open.number > order.number, "{open:?}");
    assert_eq!(topics(&h.next(1).await), ["orders/create"]);
    assert!(h.store.delete_order(SHOP, open.id).is_err());
    assert!(h.store.delete_order(SHOP, order.id).is_err());

    // Products.
    let p = h
        .store
        .create_product(
            SHOP,
            NewProduct {
                title: "Limited Tee".into(),
                price: 3_000,
                ..NewProduct::default()
            },
        )
        .unwrap();
    h.store
        .update_product(
            SHOP,
            p.id,
            ProductUpdate {
                price: Some(2_500),
                ..ProductUpdate::default()
            },
        )
        .unwrap();
    h.store.delete_product(SHOP, p.id).unwrap();
    let got = h.next(3).await;
    assert_eq!(
        topics(&got),
        ["products/create", "products/update", "products/delete"]
    );
    keys(
        &got[0].body,
        &[
            "id",
            "admin_graphql_api_id",
            "title",
            "status",
            "variants",
            "created_at",
            "updated_at",
        ],
    );
    assert_eq!(got[0].body["title"], "Limited Tee");
    assert_eq!(got[0].body["status"], "active");
    assert_eq!(got[1].body["variants"][0]["price"], "25.00");
    assert_eq!(got[2].body, json!({"id": p.id}));
    let again = h
        .store
        .create_product(
            SHOP,
            NewProduct {
                title: "Limited Tee".into(),
                price: 3_000,
                ..NewProduct::default()
            },
        )
        .unwrap();
    assert_ne!(again.id, p.id, "a deleted product's id is not given again");
    assert_eq!(topics(&h.next(1).await), ["products/create"]);

    // Customers.
    let c = h
        .store
        .create_customer(
            SHOP,
            NewCustomer {
                email: "new.buyer@example.com".into(),
                first_name: "New".into(),
                last_name: "Buyer".into(),
                phone: None,
            },
        )
        .unwrap();
    h.store
        .update_customer(
            SHOP,
            c.id,
            hirecj_devstore::CustomerUpdate {
                last_name: Some("Shopper".into()),
                ..Default::default()
            },
        )
        .unwrap();
    h.store.delete_customer(SHOP, c.id).unwrap();
    let got = h.next(3).await;
    assert_eq!(
        topics(&got),
        ["customers/create", "customers/update", "customers/delete"]
    );
    assert_eq!(got[0].body["email"], "new.buyer@example.com");
    assert_eq!(got[1].body["last_name"], "Shopper");
    assert_eq!(got[2].body, json!({"id": c.id}));
    // A customer with orders cannot be deleted.
    assert!(h.store.delete_customer(SHOP, customer.id).is_err());

    // bulk_operations/finish.
    let run = h
        .graphql(
            hirecj_shopify::bulk::RUN_BULK_QUERY,
            json!({"query": hirecj_shopify::bulk::PRODUCTS_BULK_QUERY, "groupObjects": true}),
        )
        .await;
    let op_id = run["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"].clone();
    let got = h.next(1).await;
    assert_eq!(topics(&got), ["bulk_operations/finish"]);
    let b = &got[0].body;
    assert_eq!(b["admin_graphql_api_id"], op_id);
    assert_eq!(b["status"], "completed");
    assert_eq!(b["type"], "query");
    assert!(b["error_code"].is_null());
    keys(b, &["completed_at", "created_at"]);

    // app/uninstalled: once (the subscription is at the app's own URL),
    // then the shop's subscriptions are gone.
    h.store.uninstall(SHOP).await.unwrap();
    let got = h.next(1).await;
    assert_eq!(topics(&got), ["app/uninstalled"]);
    assert_eq!(got[0].body["myshopify_domain"], SHOP);
    assert!(h.store.webhook_subscriptions(SHOP).is_empty());
    h.nothing_more().await;
}

#[tokio::test]
async fn delivery_faults_duplicate_reorder_and_drop_as_planned() {
    let mut h = spawn().await;
    h.subscribe("ORDERS_UPDATED").await;
    let order = h.store.create_order(SHOP, NewOrder::default()).unwrap();
    h.store.plan_deliveries(
        SHOP,
        [
            Delivery::Duplicate,
            Delivery::Hold,
            Delivery::Send,
            Delivery::Drop,
            Delivery::Send,
        ],
    );
    for n in 1..=5 {
        h.store
            .update_order(
                SHOP,
                order.id,
                OrderUpdate {
                    note: Some(Some(format!("change {n}"))),
                    ..OrderUpdate::default()
                },
            )
            .unwrap();
    }
    let got = h.next(5).await;
    let notes: Vec<&str> = got
        .iter()
        .map(|r| r.body["note"].as_str().unwrap())
        .collect();
    // 1 twice (the same webhook id, as a retry), 3 before the held 2, 4 never.
    assert_eq!(
        notes,
        ["change 1", "change 1", "change 3", "change 2", "change 5"]
    );
    assert_eq!(got[0].webhook_id, got[1].webhook_id);
    assert_ne!(got[1].webhook_id, got[2].webhook_id);
    h.nothing_more().await;
    let log = h.store.delivery_log(SHOP);
    assert_eq!(log.len(), 6);
    let dropped: Vec<_> = log
        .iter()
        .filter(|r| r.outcome == DeliveryOutcome::Dropped)
        .collect();
    assert_eq!(dropped.len(), 1);
    assert!(dropped[0].body.contains("change 4"));
    assert!(
        log.iter()
            .filter(|r| r.outcome != DeliveryOutcome::Dropped)
            .all(|r| r.outcome == DeliveryOutcome::Answered(200))
    );

    // A held delivery with nothing after it waits for a release.
    h.store.plan_deliveries(SHOP, [Delivery::Hold]);
    h.store
        .update_order(SHOP, order.id, OrderUpdate::default())
        .unwrap();
    h.nothing_more().await;
    h.store.release_held_deliveries(SHOP);
    assert_eq!(topics(&h.next(1).await), ["orders/updated"]);
}

#[tokio::test]
async fn random_faults_are_reproducible_from_their_seed() {
    async fn run(seed: u64) -> Vec<(Delivery, String)> {
        let mut h = spawn().await;
        h.subscribe("ORDERS_CREATE").await;
        h.store.set_delivery_faults(
            SHOP,
            Some(DeliveryFaults {
                duplicate: 0.2,
                hold: 0.2,
                drop: 0.1,
                seed,
            }),
        );
        for k in 0..30 {
            h.store
                .create_order(
                    SHOP,
                    NewOrder {
                        seed: Some(k),
                        ..NewOrder::default()
                    },
                )
                .unwrap();
        }
        h.store.release_held_deliveries(SHOP);
        assert!(h.store.wait_for_deliveries(SHOP, WAIT).await);
        let log = h.store.delivery_log(SHOP);
        let sent = log
            .iter()
            .filter(|r| r.outcome != DeliveryOutcome::Dropped)
            .count();
        assert_eq!(h.next(sent).await.len(), sent);
        h.nothing_more().await;
        log.into_iter()
            .map(|r| {
                let v: Value = serde_json::from_str(&r.body).unwrap();
                (r.delivery, v["line_items"].to_string())
            })
            .collect()
    }
    let mut a = run(7).await;
    let mut b = run(7).await;
    // Dropped ones are recorded at once, sent ones when sent.
    a.sort_by(|x, y| {
        x.1.cmp(&y.1)
            .then(format!("{:?}", x.0).cmp(&format!("{:?}", y.0)))
    });
    b.sort_by(|x, y| {
        x.1.cmp(&y.1)
            .then(format!("{:?}", x.0).cmp(&format!("{:?}", y.0)))
    });
    assert_eq!(a, b);
    for kind in [
        Delivery::Duplicate,
        Delivery::Hold,
        Delivery::Drop,
        Delivery::Send,
    ] {
        assert!(
            a.iter().any(|(d, _)| *d == kind),
            "no {kind:?} in 30 deliveries"
        );
    }
}

#[tokio::test]
async fn the_api_and_bulk_operations_serve_the_changed_data() {
    let h = spawn().await;
    let before = h.store.dataset(SHOP);
    let order = h
        .store
        .create_order(
            SHOP,
            NewOrder {
                seed: Some(1),
                ..NewOrder::default()
            },
        )
        .unwrap();
    // The snapshot taken before is untouched (copy on write).
    assert!(before.order(order.id).is_none());
    let (_, refund) = h
        .store
        .refund_order(
            SHOP,
            order.id,
            NewRefund {
                amount: Some(500),
                note: Some("Damaged in transit".into()),
                line_items: Vec::new(),
            },
        )
        .unwrap();
    let doomed = before.products[0].id;
    h.store.delete_product(SHOP, doomed).unwrap();

    let one = h
        .graphql(
            "query O($id: ID!) { order(id: $id) { name note displayFinancialStatus totalRefundedSet { shopMoney { amount } } refunds { id note } } }",
            json!({"id": format!("gid://shopify/Order/{}", order.id)}),
        )
        .await;
    let o = &one["data"]["order"];
    assert_eq!(o["name"], order.name());
    assert_eq!(o["displayFinancialStatus"], "PARTIALLY_REFUNDED");
    assert_eq!(o["totalRefundedSet"]["shopMoney"]["amount"], "5.00");
    assert_eq!(
        o["refunds"][0]["id"],
        format!("gid://shopify/Refund/{}", refund.id)
    );
    let newest = h
        .graphql(
            "{ orders(first: 1, reverse: true) { nodes { id } } ordersCount(limit: null) { count } }",
            json!({}),
        )
        .await;
    assert_eq!(
        newest["data"]["orders"]["nodes"][0]["id"],
        format!("gid://shopify/Order/{}", order.id)
    );

    // Bulk: the new order with its refund; the deleted product is gone.
    let run = |query: String| {
        let h = &h;
        async move {
            let v = h
                .graphql(
                    hirecj_shopify::bulk::RUN_BULK_QUERY,
                    json!({"query": query, "groupObjects": true}),
                )
                .await;
            let id = v["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"].clone();
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let p = h
                    .graphql(hirecj_shopify::bulk::BULK_OPERATION, json!({"id": id}))
                    .await;
                let op = p["data"]["bulkOperation"].clone();
                if op["status"] == "COMPLETED" {
                    let text = h
                        .http
                        .get(op["url"].as_str().unwrap())
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap();
                    return text
                        .lines()
                        .map(|l| serde_json::from_str::<Value>(l).unwrap())
                        .collect::<Vec<_>>();
                }
                assert!(tokio::time::Instant::now() < deadline, "{op}");
                // Polling, as the app does (not waiting for a delivery).
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let lines = run(hirecj_shopify::bulk::orders_bulk_query(None)).await;
    let mine = lines
        .iter()
        .find(|l| l["id"] == format!("gid://shopify/Order/{}", order.id))
        .expect("the new order is in the bulk result");
    assert_eq!(mine["refunds"][0]["note"], "Damaged in transit");
    assert_eq!(mine["displayFinancialStatus"], "PARTIALLY_REFUNDED");
    let products = run(hirecj_shopify::bulk::PRODUCTS_BULK_QUERY.to_string()).await;
    assert_eq!(products.len(), before.products.len() - 1);
    assert!(
        !products
            .iter()
            .any(|p| p["id"] == format!("gid://shopify/Product/{doomed}"))
    );
}

#[tokio::test]
async fn control_endpoints_change_orders_and_refuse_cross_site_posts() {
    let mut h = spawn().await;
    h.subscribe("ORDERS_CREATE").await;
    h.subscribe("REFUNDS_CREATE").await;
    let ds = h.store.dataset(SHOP);
    let variant = ds
        .products
        .iter()
        .find(|p| p.status == hirecj_devstore::ProductStatus::Active)
        .unwrap()
        .variants[0]
        .id
        .to_string();

    let resp = h
        .control(
            "orders",
            &[
                ("shop", SHOP),
                ("line", &format!("{variant}:3")),
                ("tags", "vip,gift"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let created: Value = resp.json().await.unwrap();
    let order = &created["order"];
    assert_eq!(order["line_items"][0]["quantity"], 3);
    assert_eq!(order["tags"], "vip, gift");
    let name = order["name"].as_str().unwrap().to_string();
    assert_eq!(topics(&h.next(1).await), ["orders/create"]);

    // Refund by the order's name, with the per-change fault option.
    let resp = h
        .control(
            "orders/refund",
            &[
                ("shop", SHOP),
                ("id", &name),
                ("amount", "1.50"),
                ("note", "Arrived late"),
                ("delivery", "duplicate"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let refunded: Value = resp.json().await.unwrap();
    assert_eq!(refunded["refund"]["transactions"][0]["amount"], "1.50");
    assert_eq!(refunded["order"]["financial_status"], "partially_refunded");
    let got = h.next(2).await;
    assert_eq!(topics(&got), ["refunds/create", "refunds/create"]);
    assert_eq!(got[0].webhook_id, got[1].webhook_id);

    let resp = h
        .control(
            "orders/cancel",
            &[("shop", SHOP), ("id", &name), ("refund", "true")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let cancelled: Value = resp.json().await.unwrap();
    assert_eq!(cancelled["order"]["financial_status"], "refunded");
    assert_eq!(topics(&h.next(1).await), ["refunds/create"]);

    let resp = h
        .control(
            "orders/update",
            &[("shop", SHOP), ("id", &name), ("note", "checked")],
        )
        .await;
    assert_eq!(resp.status(), 200);

    // Errors: unknown order 404, refused change 422, bad form 400.
    let resp = h
        .control("orders/refund", &[("shop", SHOP), ("id", "1")])
        .await;
    assert_eq!(resp.status(), 404);
    let resp = h
        .control("orders/cancel", &[("shop", SHOP), ("id", &name)])
        .await;
    assert_eq!(resp.status(), 422);
    let resp = h
        .control("orders", &[("shop", SHOP), ("line", "x:y")])
        .await;
    assert_eq!(resp.status(), 400);

    // Cross-site form posts are refused before anything changes.
    let resp = h
        .http
        .post(format!("{}/_control/orders", h.base))
        .header("origin", "http://evil.example")
        .form(&[("shop", SHOP)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // The delivery controls answer the subscriptions and recent deliveries.
    let resp = h
        .control(
            "deliveries",
            &[("shop", SHOP), ("drop", "1"), ("seed", "3")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let state: Value = resp.json().await.unwrap();
    assert_eq!(state["subscriptions"].as_array().unwrap().len(), 2);
    assert!(!state["recent_deliveries"].as_array().unwrap().is_empty());
    h.control("orders", &[("shop", SHOP)]).await;
    h.nothing_more().await;

    // The library's control client speaks to the same endpoints.
    let client = hirecj_devstore::ControlClient::new(&h.base).unwrap();
    let out = client
        .post(
            "orders",
            &[("shop", SHOP.to_string()), ("seed", "5".to_string())],
        )
        .await
        .unwrap();
    assert!(out["order"]["id"].is_u64());
    let err = client
        .post(
            "orders/refund",
            &[("shop", SHOP.to_string()), ("id", "1".to_string())],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn changes_bump_updated_at_and_keep_ids_in_creation_order() {
    let h = spawn().await;
    let now = chrono::Utc::now();
    let mut last = None;
    let mut ids = HashMap::new();
    for k in 0..5 {
        let o = h
            .store
            .create_order(
                SHOP,
                NewOrder {
                    seed: Some(k),
                    ..NewOrder::default()
                },
            )
            .unwrap();
        assert!(o.created_at <= now + chrono::Duration::seconds(2));
        if let Some(prev) = last {
            assert!(o.id > prev);
        }
        last = Some(o.id);
        ids.insert(o.id, o.number);
    }
    let ds = h.store.dataset(SHOP);
    assert!(
        ds.orders
            .windows(2)
            .all(|w| w[0].id < w[1].id && w[0].created_at <= w[1].created_at)
    );
    for (id, number) in ids {
        assert_eq!(ds.order(id).unwrap().number, number);
    }
    // Three quick changes to one order: strictly increasing updated_at.
    let id = last.unwrap();
    let mut previous = ds.order(id).unwrap().updated_at;
    for _ in 0..3 {
        let o = h
            .store
            .update_order(SHOP, id, OrderUpdate::default())
            .unwrap();
        assert!(o.updated_at > previous);
        previous = o.updated_at;
    }
    // An order of later today (not shown yet) cannot be changed.
    if let Some(future) = ds
        .orders
        .iter()
        .find(|o| o.created_at > chrono::Utc::now() + chrono::Duration::minutes(1))
    {
        assert!(
            h.store
                .update_order(SHOP, future.id, OrderUpdate::default())
                .is_err()
        );
    }
}

#[tokio::test]
async fn webhook_topics_parse_both_spellings() {
    for t in WebhookTopic::ALL {
        assert_eq!(t.as_str().parse::<WebhookTopic>().unwrap(), t);
        assert_eq!(t.graphql_name().parse::<WebhookTopic>().unwrap(), t);
    }
}
