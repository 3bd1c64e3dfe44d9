//! The install flow against the built-in development store, mounted under
//! `/devstore` when no Shopify app is configured, over real HTTP: the
//! consent page, Install, the signed callback, and what the app stores.
//! Also: throttling (a drained bucket makes fetches wait, not fail) and the
//! development store's signed `app/uninstalled` webhook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod shopify_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hirecj_domain::IntegrationStatus;
use hirecj_server::shopify::service;
use hirecj_shopify::{MemoryCache, ShopifyDataFetcher};
use hirecj_store::{Cipher, Store, StoreError, StoreOptions};
use serde_json::json;
use shopify_support::*;

const SHOP: &str = "dev-shop.myshopify.com";

#[tokio::test]
async fn full_install_against_the_mounted_development_store() {
    let app = start_app(&[]).await;
    assert!(app.state.shopify.dev_store);
    let browser = browser();
    let callback = consent(&app, &browser, "dev-shop", "install").await;
    for param in ["code", "hmac", "host", "shop", "state", "timestamp"] {
        assert!(
            query_param(&callback, param).is_some(),
            "{param} in {callback}"
        );
    }

    let r = browser.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let to = location(&r);
    assert!(
        to == "/chat" || to.starts_with("/chat?conversation_id="),
        "{to}"
    );
    let session = set_cookie(&r, "hirecj_session").expect("a session cookie");

    let store = &app.state.store;
    let user = store.user_by_shop(SHOP).await.unwrap().expect("a user");
    assert!(user.email.is_some(), "the shop's email was read");
    let s = store.session_by_token(&session).await.unwrap().unwrap();
    assert_eq!(s.user_id.as_ref(), Some(&user.id));
    let integration = store
        .integration_for_shop("shopify", SHOP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(integration.status, IntegrationStatus::Active);
    assert!(integration.access_token.is_some() && integration.refresh_token.is_some());
    let events = store.events_for_user(&user.id, 50).await.unwrap();
    let complete = events
        .iter()
        .find(|e| e.kind == "oauth_complete")
        .expect("an oauth_complete event");
    assert_eq!(complete.data, json!({"first_time": true, "shop": SHOP}));

    // Encrypted at rest.
    let db = format!(
        "sqlite://{}",
        app.state.settings.data_dir.join("hirecj.db").display()
    );
    let other = Store::connect(
        &db,
        Cipher::from_secret_key(b"some-other-key-some-other-key-00"),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    assert!(matches!(
        other.integration_for_shop("shopify", SHOP).await,
        Err(StoreError::Decrypt)
    ));
    other.close().await;

    let devstore = app.state.shopify.devstore.clone().unwrap();
    assert!(devstore.installed_shops().iter().any(|i| i.shop == SHOP));

    // The token works against the development store's Admin API.
    let fetcher = service::fetcher_for(store, &app.state.shopify, &user.id)
        .await
        .unwrap();
    let counts = fetcher.store_counts().await.unwrap();
    assert!(counts.products.count > 0);

    // A page on another site posts the development store's uninstall form:
    // refused, nothing changes.
    let uninstall_form = |origin: &str| {
        browser
            .post(format!("{}/devstore/_control/uninstall", app.base))
            .header("Origin", origin)
            .form(&[("shop", SHOP)])
            .send()
    };
    let r = uninstall_form("http://evil.example").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(devstore.installed_shops().iter().any(|i| i.shop == SHOP));
    let integration = store
        .integration_for_shop("shopify", SHOP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(integration.status, IntegrationStatus::Active);

    // Uninstalling from the development store's own page sends a signed
    // app/uninstalled webhook (the payload names the shop) to the app,
    // which wipes the tokens.
    let r = uninstall_form(app.base.as_str()).await.unwrap();
    assert_eq!(r.status(), 303);
    let message = location(&r);
    assert!(message.contains("answered+HTTP+200"), "{message}");
    assert!(devstore.installed_shops().is_empty());
    let integration = store
        .integration_for_shop("shopify", SHOP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(integration.status, IntegrationStatus::Uninstalled);
    assert!(integration.access_token.is_none());
}

#[tokio::test]
async fn cancelling_on_the_consent_page_stores_nothing() {
    let app = start_app(&[]).await;
    let browser = browser();
    let callback = consent(&app, &browser, "dev-shop", "cancel").await;
    let r = browser.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/chat?oauth_error=access_denied");
    assert!(app.state.store.user_by_shop(SHOP).await.unwrap().is_none());
    assert!(
        app.state
            .store
            .integration_for_shop("shopify", SHOP)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_drained_bucket_makes_fetches_wait_and_succeed() {
    let app = start_app(&[]).await;
    let browser = browser();
    let callback = consent(&app, &browser, "dev-shop", "install").await;
    let r = browser.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let store = &app.state.store;
    let user = store.user_by_shop(SHOP).await.unwrap().unwrap();
    let access = service::access_token_for(store, &app.state.shopify, &user.id)
        .await
        .unwrap();
    let devstore = app.state.shopify.devstore.clone().unwrap();

    // A slow bucket, emptied: the next query is THROTTLED until it refills.
    devstore.set_bucket_limits(1000.0, 50.0);
    devstore.drain_bucket(SHOP);
    assert!(devstore.bucket_available(SHOP) < 1.0);
    let fetcher = ShopifyDataFetcher::new(
        app.state.shopify.admin.clone(),
        access.shop.clone(),
        access.token.clone(),
        Arc::new(MemoryCache::new()),
    )
    .with_granted_scopes(access.scopes.clone());
    let started = Instant::now();
    let counts = tokio::time::timeout(Duration::from_secs(30), fetcher.store_counts())
        .await
        .expect("the fetch finishes")
        .expect("the fetch waits and succeeds");
    assert!(counts.orders.count > 0);
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "the fetch waited for the bucket ({:?})",
        started.elapsed()
    );
}
