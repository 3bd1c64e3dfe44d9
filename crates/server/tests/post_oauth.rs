//! The post-OAuth step over real HTTP and WebSocket against the built-in
//! development store: a visitor's onboarding conversation, Connect Shopify,
//! Install on the consent page, and CJ's first message — built from the
//! store's own numbers — already stored when the chat opens. Also the
//! internal API that runs the same step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use reqwest::cookie::{CookieStore as _, Jar};
use serde_json::{Value, json};
use support::start_app;

fn browser(jar: Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Runs the install in the development store like a merchant's browser:
/// install → consent page → Install → callback. Returns where the callback
/// redirected.
async fn install(
    app: &support::TestApp,
    http: &reqwest::Client,
    shop: &str,
    conversation: &str,
) -> String {
    let r = http
        .get(app.url(&format!(
            "/api/v1/shopify/install?shop={shop}&conversation_id={conversation}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let authorize = location(&r);
    assert!(authorize.contains("/devstore/"), "{authorize}");
    let page = http.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Install"));

    let url = url::Url::parse(&authorize).unwrap();
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("decision".into(), "install".into()));
    let mut post_url = url.clone();
    post_url.set_query(None);
    let r = http.post(post_url).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    let callback = location(&r);
    assert!(callback.contains("/api/v1/shopify/callback?"), "{callback}");
    let r = http.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 302);
    location(&r)
}

#[tokio::test]
async fn the_first_message_after_install_is_waiting_with_the_stores_numbers() {
    let app = start_app(&[]).await;
    // The mirror's export stays running: CJ's note that the whole history
    // is read (its own test, in store_mirror.rs) does not arrive mid-test.
    let devstore = app.state.shopify.devstore.clone().unwrap();
    devstore.hold_bulk_operations("candle-cove.myshopify.com");
    let base = url::Url::parse(&app.url("/")).unwrap();
    let jar = Arc::new(Jar::default());
    let visitor = app.visitor_cookie().await;
    jar.add_cookie_str(&format!("{visitor}; Path=/"), &base);
    let http = browser(jar.clone());

    // The visitor's onboarding conversation, with CJ's greeting.
    let mut ws = app.chat(&visitor).await;
    ws.send_json(json!({"type": "start_conversation"}))
        .await
        .unwrap();
    let started = ws.expect("conversation_started").await.unwrap();
    let conversation = started["conversation_id"].as_str().unwrap().to_owned();
    ws.expect("cj_message").await.unwrap();
    drop(ws);

    let landed = install(&app, &http, "candle-cove", &conversation).await;
    assert_eq!(landed, format!("/chat?conversation_id={conversation}"));

    // The merchant's fresh session opens the same conversation: the
    // prepared message is already stored.
    let cookie = jar.cookies(&base).unwrap().to_str().unwrap().to_owned();
    assert_ne!(cookie, visitor, "a fresh session after OAuth");
    let mut ws = app.chat(&cookie).await;
    ws.send_json(
        json!({"type": "start_conversation", "conversation_id": conversation, "last_seq": 0}),
    )
    .await
    .unwrap();
    let opened = ws.expect("conversation_started").await.unwrap();
    assert_eq!(opened["store_connected"], true);
    assert_eq!(
        opened["workflow"], "ad_hoc_support",
        "post-auth moves on after its summary"
    );
    let messages = opened["messages"].as_array().unwrap();
    let prepared = messages.last().unwrap();
    assert_eq!(prepared["role"], "cj", "{opened}");
    let text = prepared["content"].as_str().unwrap();

    // Its numbers are the store's: the same fetch the tools make.
    let user = app
        .state
        .store
        .user_by_shop("candle-cove.myshopify.com")
        .await
        .unwrap()
        .unwrap();
    let fetcher = hirecj_server::shopify::service::fetcher_for(
        &app.state.store,
        &app.state.shopify,
        &user.id,
    )
    .await
    .unwrap();
    let week = fetcher.orders_last_week().await.unwrap();
    assert!(
        text.contains(&format!("Orders: {}", week.orders)),
        "{text}\nexpected {} orders",
        week.orders
    );
    // Written the way the shop writes money (the development store's
    // format, read at install).
    let revenue = hirecj_shopify::MoneyFormat::parse("${{amount}}")
        .unwrap()
        .format(week.revenue);
    assert!(
        text.contains(&revenue),
        "{text}\nexpected revenue {revenue}"
    );

    // It says how far CJ's reading of the whole history has come (the
    // mirror was registered before the message was prepared; a small
    // store may even be read already).
    assert!(
        text.contains("your full order history") || text.contains("I've read all"),
        "{text}"
    );

    // Nothing more is owed: no second summary arrives.
    ws.send_json(json!({"type": "ping"})).await.unwrap();
    ws.expect("pong").await.unwrap();

    // A question about last week is answered with the same number.
    ws.send_json(json!({"type": "message", "text": "how many orders did I get last week?", "client_id": "q1"})).await.unwrap();
    ws.expect("message_ack").await.unwrap();
    let (progress, answer) = ws.collect_until("cj_message").await.unwrap();
    assert!(
        progress
            .iter()
            .any(|f| f["type"] == "cj_thinking" && f["tool"] == "get_shopify_orders_last_week"),
        "{progress:?}"
    );
    assert!(
        answer["content"]
            .as_str()
            .unwrap()
            .contains(&week.orders.to_string()),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_internal_api_prepares_the_same_step_behind_a_bearer_token() {
    let token = "internal-token-0123456789";
    let app = start_app(&[("HIRECJ_INTERNAL_TOKEN", token)]).await;
    let jar = Arc::new(Jar::default());
    let http = browser(jar.clone());
    let conversation = uuid::Uuid::now_v7().to_string();
    install(&app, &http, "quiet-pines", &conversation).await;
    let user = app
        .state
        .store
        .user_by_shop("quiet-pines.myshopify.com")
        .await
        .unwrap()
        .unwrap();

    let body = json!({"shop_domain": "quiet-pines.myshopify.com", "is_new": false, "conversation_id": null, "user_id": user.id});
    let url = app.url("/api/v1/internal/session/initiate");
    let r = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = reqwest::Client::new()
        .post(&url)
        .bearer_auth("wrong-token-000000000")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["prepared"], true, "{answer}");
    let id = answer["conversation_id"].as_str().unwrap();
    let messages = app.messages(id).await;
    assert_eq!(messages.last().unwrap().role, hirecj_domain::Role::Cj);

    let wrong_shop = json!({"shop_domain": "other.myshopify.com", "user_id": user.id});
    let r = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .json(&wrong_shop)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn when_the_model_is_too_slow_the_redirect_still_happens_and_the_turn_runs_live() {
    let model = support::story_model().await;
    model.hold();
    let app = start_app(&[
        ("HIRECJ_MODEL_PROVIDER", "openai"),
        ("OPENAI_BASE_URL", &model.openai_base_url()),
        ("HIRECJ_PREPARE_BUDGET_MS", "200"),
    ])
    .await;
    let base = url::Url::parse(&app.url("/")).unwrap();
    let jar = Arc::new(Jar::default());
    let http = browser(jar.clone());
    let conversation = uuid::Uuid::now_v7().to_string();
    let landed = install(&app, &http, "slow-model", &conversation).await;
    assert!(landed.starts_with("/chat?conversation_id="), "{landed}");
    let id = landed
        .trim_start_matches("/chat?conversation_id=")
        .to_owned();

    let cookie = jar.cookies(&base).unwrap().to_str().unwrap().to_owned();
    let mut ws = app.chat(&cookie).await;
    ws.send_json(json!({"type": "start_conversation", "conversation_id": id, "last_seq": 0}))
        .await
        .unwrap();
    let opened = ws.expect("conversation_started").await.unwrap();
    assert!(
        opened["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["role"] != "cj"),
        "nothing half-made was stored: {opened}"
    );
    assert_eq!(opened["workflow"], "shopify_post_auth");
    model.release();
    let live = ws.expect("cj_message").await.unwrap();
    assert_eq!(live["content"], "Once upon a time.");
    assert_eq!(
        ws.expect("workflow_updated").await.unwrap()["workflow"],
        "ad_hoc_support"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_connected_merchant_skips_onboarding_and_cj_remembers_what_they_say() {
    let app = start_app(&[]).await;
    let base = url::Url::parse(&app.url("/")).unwrap();
    let jar = Arc::new(Jar::default());
    let http = browser(jar.clone());
    install(
        &app,
        &http,
        "wick-and-wax",
        &uuid::Uuid::now_v7().to_string(),
    )
    .await;
    let cookie = jar.cookies(&base).unwrap().to_str().unwrap().to_owned();

    let mut ws = app.chat(&cookie).await;
    ws.send_json(json!({"type": "start_conversation", "workflow": "shopify_onboarding"}))
        .await
        .unwrap();
    let started = ws.expect("conversation_started").await.unwrap();
    assert_eq!(
        started["workflow"], "ad_hoc_support",
        "already connected: onboarding is skipped"
    );

    ws.send_json(json!({"type": "message", "text": "We sell hand-poured soy candles from Vermont.", "client_id": "f1"})).await.unwrap();
    ws.expect("message_ack").await.unwrap();
    ws.expect("cj_message").await.unwrap();
    // Facts are extracted just after the reply; wait until they are stored.
    let user = app
        .state
        .store
        .user_by_shop("wick-and-wax.myshopify.com")
        .await
        .unwrap()
        .unwrap();
    let mut facts = Vec::new();
    for _ in 0..100_000 {
        facts = app.state.store.facts(&user.id).await.unwrap();
        if !facts.is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(
        facts
            .iter()
            .any(|f| f.text.to_lowercase().contains("soy candles")),
        "the fact is remembered: {facts:?}"
    );
    app.stop().await;
}
