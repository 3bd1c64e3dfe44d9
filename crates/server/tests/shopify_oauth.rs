//! The Shopify install flow and webhooks over real HTTP, against a minimal
//! fake Shopify written here (proof that nothing depends on the
//! development store).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod shopify_support;

use std::sync::atomic::Ordering;

use hirecj_domain::{ConversationId, IntegrationStatus, NewMessage, Role};
use hirecj_server::shopify::service;
use hirecj_store::{Cipher, Store, StoreError, StoreOptions};
use serde_json::{Value, json};
use shopify_support::*;

const SHOP: &str = "cool-shop.myshopify.com";

/// Asserts the redirect of a refused callback and that nothing was stored
/// for `shop`.
async fn assert_refused(app: &TestApp, r: reqwest::Response, code: &str, shop: &str) {
    assert_eq!(r.status(), 302, "{code}");
    assert_eq!(location(&r), format!("/chat?oauth_error={code}"));
    let store = &app.state.store;
    assert!(
        store.user_by_shop(shop).await.unwrap().is_none(),
        "{code}: no user for {shop}"
    );
    assert!(
        store
            .integration_for_shop("shopify", shop)
            .await
            .unwrap()
            .is_none(),
        "{code}: no integration for {shop}"
    );
    assert!(
        store
            .events_of_kind("oauth_complete", 10)
            .await
            .unwrap()
            .iter()
            .all(|e| e.data["shop"] != shop),
        "{code}: no event for {shop}"
    );
}

#[tokio::test]
async fn full_install_stores_an_encrypted_token_a_user_an_event_and_a_fresh_session() {
    let fake = FakeShopify::start().await;
    let app = start_app_with_fake(&fake).await;
    let browser = browser();
    let conversation = ConversationId::generate();

    let r = browser
        .get(format!("{}/api/v1/shopify/install", app.base))
        .query(&[
            ("shop", "Cool-Shop"),
            ("conversation_id", &conversation.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let anonymous = set_cookie(&r, "hirecj_session").expect("an anonymous session");
    let state_cookie = set_cookie(&r, "hirecj_oauth_state").expect("the state cookie");
    let authorize = location(&r);
    assert!(
        authorize.starts_with(&format!(
            "http://{}/{SHOP}/admin/oauth/authorize?",
            fake.addr.unwrap()
        )),
        "{authorize}"
    );
    assert_eq!(
        query_param(&authorize, "client_id").as_deref(),
        Some(CLIENT_ID)
    );
    assert_eq!(
        query_param(&authorize, "redirect_uri"),
        Some(format!("{}/api/v1/shopify/callback", app.base))
    );
    assert_eq!(
        query_param(&authorize, "scope").as_deref(),
        Some("read_products,read_orders,read_customers")
    );
    let state = query_param(&authorize, "state").unwrap();
    assert_eq!(state, state_cookie);
    assert_eq!(fake.token_requests(), 0);
    // The visitor's conversation, owned by the anonymous session.
    let visitor = app
        .state
        .store
        .session_by_token(&anonymous)
        .await
        .unwrap()
        .unwrap();
    app.state
        .store
        .create_conversation(conversation, None, Some(&visitor.id), "shopify_onboarding")
        .await
        .unwrap();

    // Shopify redirects back with a signed callback.
    let params = sign(
        callback_params(SHOP, &state, "good-code", now()),
        CLIENT_SECRET,
    );
    let r = browser
        .get(callback_url(&app.base, &params))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        location(&r),
        format!("/chat?conversation_id={conversation}")
    );
    let session = set_cookie(&r, "hirecj_session").expect("a fresh session cookie");
    assert_ne!(session, anonymous);
    assert_eq!(
        set_cookie(&r, "hirecj_oauth_state").as_deref(),
        Some(""),
        "the state cookie is cleared"
    );
    assert_eq!(fake.token_requests(), 1);

    let store = &app.state.store;
    let user = store.user_by_shop(SHOP).await.unwrap().expect("a user");
    assert_eq!(user.email.as_deref(), Some("owner@fake.example"));
    assert_eq!(user.name.as_deref(), Some(&*format!("Shop {SHOP}")));
    let integration = store
        .integration_for_shop("shopify", SHOP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(integration.user_id, user.id);
    assert_eq!(integration.status, IntegrationStatus::Active);
    let token = integration.access_token.unwrap();
    assert!(token.expose().starts_with("shpat_fake_"));
    assert!(integration.refresh_token.is_some());
    assert!(integration.token_expires_at.is_some() && integration.refresh_expires_at.is_some());

    // At rest the token is encrypted: another key cannot read it.
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

    let events = store.events_for_user(&user.id, 10).await.unwrap();
    let complete: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "oauth_complete")
        .collect();
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0].data, json!({"first_time": true, "shop": SHOP}));
    assert_eq!(complete[0].conversation_id, Some(conversation));
    let linked = store.conversation(conversation).await.unwrap().unwrap();
    assert_eq!(
        linked.user_id.as_ref(),
        Some(&user.id),
        "the conversation is the merchant's now"
    );

    // The new cookie is the merchant's session; the anonymous one is over.
    let s = store.session_by_token(&session).await.unwrap().unwrap();
    assert_eq!(s.user_id.as_ref(), Some(&user.id));
    assert!(store.session_by_token(&anonymous).await.unwrap().is_none());

    // Installing again finds the same user: first_time false.
    let state = start_install(&app, &browser, SHOP).await;
    let params = sign(
        callback_params(SHOP, &state, "good-code", now()),
        CLIENT_SECRET,
    );
    let r = browser
        .get(callback_url(&app.base, &params))
        .send()
        .await
        .unwrap();
    assert_installed(&r);
    let events = store.events_of_kind("oauth_complete", 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].data["first_time"], false);
    assert_eq!(events[0].user_id.as_ref(), Some(&user.id));
}

#[tokio::test]
async fn json_mode_returns_the_redirect_url() {
    let fake = FakeShopify::start().await;
    let app = start_app_with_fake(&fake).await;
    let r = browser()
        .get(format!("{}/api/v1/shopify/install", app.base))
        .query(&[
            ("shop", "admin.shopify.com/store/json-shop"),
            ("mode", "json"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(set_cookie(&r, "hirecj_oauth_state").is_some());
    let body: Value = r.json().await.unwrap();
    let url = body["redirect_url"].as_str().unwrap();
    assert!(
        url.contains("/json-shop.myshopify.com/admin/oauth/authorize?"),
        "{url}"
    );
}

#[tokio::test]
async fn invalid_shops_are_refused_with_400() {
    let fake = FakeShopify::start().await;
    let app = start_app_with_fake(&fake).await;
    let browser = browser();
    for shop in [
        "evil.com",
        "shop.myshopify.com.evil.com",
        "a@b.myshopify.com",
        "-x.myshopify.com",
        "",
    ] {
        let r = browser
            .get(format!("{}/api/v1/shopify/install", app.base))
            .query(&[("shop", shop), ("mode", "json")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{shop:?}");
        assert!(set_cookie(&r, "hirecj_oauth_state").is_none());
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_shop", "{shop:?}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("myshopify.com")
        );

        let r = browser
            .get(format!("{}/api/v1/shopify/install", app.base))
            .query(&[("shop", shop)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{shop:?}");
        let page = r.text().await.unwrap();
        assert!(page.contains("could not connect"), "{page}");
        assert!(!page.contains("<script"), "input is escaped");
    }
    // No shop parameter at all.
    let r = browser
        .get(format!("{}/api/v1/shopify/install", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(fake.token_requests(), 0);
}

#[tokio::test]
async fn the_attack_table_stores_nothing_and_requests_no_token() {
    let fake = FakeShopify::start().await;
    let app = start_app_with_fake(&fake).await;
    let base = app.base.clone();

    // Forged HMAC.
    let b = browser();
    let state = start_install(&app, &b, "forged.myshopify.com").await;
    let params = sign(
        callback_params("forged.myshopify.com", &state, "c", now()),
        "not-the-secret",
    );
    let r = b.get(callback_url(&base, &params)).send().await.unwrap();
    assert_refused(&app, r, "invalid_hmac", "forged.myshopify.com").await;

    // A missing parameter (signed correctly without it).
    let b = browser();
    let state = start_install(&app, &b, "missing.myshopify.com").await;
    let mut params = callback_params("missing.myshopify.com", &state, "c", now());
    params.retain(|(k, _)| k != "code");
    let r = b
        .get(callback_url(&base, &sign(params, CLIENT_SECRET)))
        .send()
        .await
        .unwrap();
    assert_refused(&app, r, "missing_param", "missing.myshopify.com").await;

    // An extra parameter left out of the signature.
    let b = browser();
    let state = start_install(&app, &b, "extra.myshopify.com").await;
    let mut params = sign(
        callback_params("extra.myshopify.com", &state, "c", now()),
        CLIENT_SECRET,
    );
    params.push(("extra".into(), "1".into()));
    let r = b.get(callback_url(&base, &params)).send().await.unwrap();
    assert_refused(&app, r, "invalid_hmac", "extra.myshopify.com").await;

    // Stale and future timestamps.
    for (shop, skew) in [("stale.myshopify.com", -91), ("future.myshopify.com", 91)] {
        let b = browser();
        let state = start_install(&app, &b, shop).await;
        let params = sign(
            callback_params(shop, &state, "c", now() + skew),
            CLIENT_SECRET,
        );
        let r = b.get(callback_url(&base, &params)).send().await.unwrap();
        assert_refused(&app, r, "stale_timestamp", shop).await;
    }

    // State started in another browser: no state cookie there...
    let a = browser();
    let state = start_install(&app, &a, "victim.myshopify.com").await;
    let b = browser();
    let _ = start_install(&app, &b, "victim.myshopify.com").await;
    let params = sign(
        callback_params("victim.myshopify.com", &state, "c", now()),
        CLIENT_SECRET,
    );
    let r = b.get(callback_url(&base, &params)).send().await.unwrap();
    assert_refused(&app, r, "state_mismatch", "victim.myshopify.com").await;
    // ...and even with the state cookie copied, the session differs.
    let thief = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let state = start_install(&app, &a, "victim.myshopify.com").await;
    let params = sign(
        callback_params("victim.myshopify.com", &state, "c", now()),
        CLIENT_SECRET,
    );
    let r = thief
        .get(callback_url(&base, &params))
        .header("Cookie", format!("hirecj_oauth_state={state}"))
        .send()
        .await
        .unwrap();
    assert_refused(&app, r, "session_mismatch", "victim.myshopify.com").await;

    // State for another shop.
    let b = browser();
    let state = start_install(&app, &b, "mine.myshopify.com").await;
    let params = sign(
        callback_params("theirs.myshopify.com", &state, "c", now()),
        CLIENT_SECRET,
    );
    let r = b.get(callback_url(&base, &params)).send().await.unwrap();
    assert_refused(&app, r, "shop_mismatch", "theirs.myshopify.com").await;
    assert_refused_shop(&app, "mine.myshopify.com").await;

    // The merchant cancelled on Shopify.
    let b = browser();
    let state = start_install(&app, &b, "denied.myshopify.com").await;
    let params = sign(
        vec![
            ("error".into(), "access_denied".into()),
            ("shop".into(), "denied.myshopify.com".into()),
            ("state".into(), state.clone()),
            ("timestamp".into(), now().to_string()),
        ],
        CLIENT_SECRET,
    );
    let r = b.get(callback_url(&base, &params)).send().await.unwrap();
    assert_refused(&app, r, "access_denied", "denied.myshopify.com").await;

    // An unknown state (never issued), with a matching cookie.
    let b = browser();
    let _ = start_install(&app, &b, "unknown.myshopify.com").await;
    let params = sign(
        callback_params("unknown.myshopify.com", "f00d", "c", now()),
        CLIENT_SECRET,
    );
    let r = b
        .get(callback_url(&base, &params))
        .header("Cookie", "hirecj_oauth_state=f00d")
        .send()
        .await
        .unwrap();
    assert_refused(&app, r, "invalid_state", "unknown.myshopify.com").await;

    assert_eq!(
        fake.token_requests(),
        0,
        "no attack reached the token endpoint"
    );

    // Replayed state: a completed install's callback sent again, cookies
    // and all, is refused without a second token request.
    let b = browser();
    let r = b
        .get(format!("{base}/api/v1/shopify/install"))
        .query(&[("shop", "replay.myshopify.com")])
        .send()
        .await
        .unwrap();
    let anonymous = set_cookie(&r, "hirecj_session").unwrap();
    let state = query_param(&location(&r), "state").unwrap();
    let params = sign(
        callback_params("replay.myshopify.com", &state, "good-code", now()),
        CLIENT_SECRET,
    );
    let url = callback_url(&base, &params);
    let r = b.get(&url).send().await.unwrap();
    assert_installed(&r);
    assert_eq!(fake.token_requests(), 1);
    for cookie in [
        format!("hirecj_oauth_state={state}; hirecj_session={anonymous}"),
        format!("hirecj_oauth_state={state}"),
    ] {
        let r = thief
            .get(&url)
            .header("Cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(location(&r), "/chat?oauth_error=invalid_state");
    }
    let r = b.get(&url).send().await.unwrap();
    assert_eq!(location(&r), "/chat?oauth_error=state_mismatch");
    assert_eq!(fake.token_requests(), 1, "a replay makes no token request");
    let events = app
        .state
        .store
        .events_of_kind("oauth_complete", 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);

    // A code Shopify refuses: one token request, nothing stored.
    let b = browser();
    let state = start_install(&app, &b, "badcode.myshopify.com").await;
    let params = sign(
        callback_params("badcode.myshopify.com", &state, "bad-code", now()),
        CLIENT_SECRET,
    );
    let r = b.get(callback_url(&base, &params)).send().await.unwrap();
    assert_refused(&app, r, "token_exchange_failed", "badcode.myshopify.com").await;
    assert_eq!(fake.token_requests(), 2);
}

/// A successful callback: to the chat, on the conversation CJ continues in.
fn assert_installed(r: &reqwest::Response) {
    assert_eq!(r.status(), 302);
    let to = location(r);
    assert!(
        to == "/chat" || to.starts_with("/chat?conversation_id="),
        "{to}"
    );
}

async fn assert_refused_shop(app: &TestApp, shop: &str) {
    assert!(app.state.store.user_by_shop(shop).await.unwrap().is_none());
    assert!(
        app.state
            .store
            .integration_for_shop("shopify", shop)
            .await
            .unwrap()
            .is_none()
    );
}

/// Installs `shop` in a fresh browser; returns that browser.
async fn install(app: &TestApp, shop: &str) -> reqwest::Client {
    let b = browser();
    let state = start_install(app, &b, shop).await;
    let params = sign(
        callback_params(shop, &state, "good-code", now()),
        CLIENT_SECRET,
    );
    let r = b
        .get(callback_url(&app.base, &params))
        .send()
        .await
        .unwrap();
    assert_installed(&r);
    b
}

#[tokio::test]
async fn webhooks_verify_deduplicate_and_apply_each_topic() {
    let fake = FakeShopify::start().await;
    let app = start_app_with_fake(&fake).await;
    let store = &app.state.store;
    let http = reqwest::Client::new();
    let base = &app.base;
    install(&app, SHOP).await;
    let user = store.user_by_shop(SHOP).await.unwrap().unwrap();

    // Wrong or missing signature: 401, nothing recorded.
    let body = json!({"shop_id": 1, "shop_domain": SHOP});
    let r = webhook_request(&http, base, "shop/redact", SHOP, "w-0", &body, "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/api/v1/shopify/webhooks"))
        .header("X-Shopify-Topic", "shop/redact")
        .header("X-Shopify-Shop-Domain", SHOP)
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(store.user_by_shop(SHOP).await.unwrap().is_some());

    // customers/data_request, delivered twice: processed once.
    let request = json!({"shop_id": 1, "shop_domain": SHOP, "orders_requested": [299938],
                         "customer": {"id": 207119551, "email": "jane@example.com", "phone": "+15550100"},
                         "data_request": {"id": 9999}});
    for expected in ["recorded", "duplicate"] {
        let r = webhook_request(
            &http,
            base,
            "customers/data_request",
            SHOP,
            "w-1",
            &request,
            CLIENT_SECRET,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], expected);
    }
    let recorded = store
        .events_of_kind("customer_data_request", 10)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1, "a duplicate delivery is processed once");
    assert_eq!(recorded[0].user_id.as_ref(), Some(&user.id));
    assert_eq!(recorded[0].data["request"]["data_request"]["id"], 9999);

    // customers/redact scrubs the customer from stored messages.
    let conv = ConversationId::generate();
    store
        .create_conversation(conv, Some(&user.id), None, "ad_hoc_support")
        .await
        .unwrap();
    store
        .append_message(
            conv,
            &NewMessage::new(Role::Merchant, "Refund jane@example.com please"),
        )
        .await
        .unwrap();
    let redact = json!({"shop_id": 1, "shop_domain": SHOP,
                        "customer": {"id": 207119551, "email": "jane@example.com", "phone": "+15550100"},
                        "orders_to_redact": [299938]});
    let r = webhook_request(
        &http,
        base,
        "customers/redact",
        SHOP,
        "w-2",
        &redact,
        CLIENT_SECRET,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let messages = store.messages(conv, 0).await.unwrap();
    assert_eq!(messages[0].content, "Refund [redacted] please");
    let recorded = store
        .events_of_kind("customer_data_request", 10)
        .await
        .unwrap();
    assert!(!recorded[0].data.to_string().contains("jane@example.com"));

    // An unknown topic is acknowledged and ignored.
    let r = webhook_request(
        &http,
        base,
        "carts/create",
        SHOP,
        "w-3",
        &json!({}),
        CLIENT_SECRET,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ignored");

    // app/uninstalled wipes the tokens.
    let r = webhook_request(
        &http,
        base,
        "app/uninstalled",
        SHOP,
        "w-4",
        &json!({"id": 1, "myshopify_domain": SHOP}),
        CLIENT_SECRET,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let i = store
        .integration_for_shop("shopify", SHOP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(i.status, IntegrationStatus::Uninstalled);
    assert!(i.access_token.is_none() && i.refresh_token.is_none());
    let denied = service::access_token_for(store, &app.state.shopify, &user.id).await;
    assert!(matches!(denied, Err(service::AccessError::Uninstalled)));

    // shop/redact deletes the user and everything of the shop.
    let r = webhook_request(
        &http,
        base,
        "shop/redact",
        SHOP,
        "w-5",
        &body,
        CLIENT_SECRET,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "deleted");
    assert!(store.user_by_shop(SHOP).await.unwrap().is_none());
    assert!(store.user(&user.id).await.unwrap().is_none());
    assert!(store.conversation(conv).await.unwrap().is_none());
    assert!(
        store
            .integration_for_shop("shopify", SHOP)
            .await
            .unwrap()
            .is_none()
    );
}

/// Makes `shop`'s stored access token expire in a minute; returns the
/// integration as it was.
async fn expire_soon(store: &Store, shop: &str) -> hirecj_domain::Integration {
    let current = store
        .integration_for_shop("shopify", shop)
        .await
        .unwrap()
        .unwrap();
    store
        .upsert_integration(&hirecj_domain::NewIntegration {
            user_id: current.user_id.clone(),
            provider: current.provider.clone(),
            shop_domain: current.shop_domain.clone(),
            access_token: current.access_token.clone().unwrap(),
            refresh_token: current.refresh_token.clone(),
            scopes: current.scopes.clone(),
            token_expires_at: Some(chrono::Utc::now() + chrono::Duration::seconds(60)),
            refresh_expires_at: current.refresh_expires_at,
        })
        .await
        .unwrap();
    current
}

#[tokio::test]
async fn tokens_are_refreshed_before_expiry_and_a_refused_refresh_asks_to_reconnect() {
    let fake = FakeShopify::start().await;
    // Installs get hour-long tokens, so the install's background work (the
    // webhook subscriptions, the mirror's backfill) never refreshes one;
    // each token is then made to expire within the 5-minute margin here.
    // Any refresh from then on, by this test or by that background work,
    // is the one this test counts: refreshes of a shop are serialised.
    let app = start_app_with_fake(&fake).await;
    let store = &app.state.store;
    install(&app, SHOP).await;
    let user = store.user_by_shop(SHOP).await.unwrap().unwrap();

    let refreshes = fake.inner.refresh_requests.load(Ordering::SeqCst);
    let before = expire_soon(store, SHOP).await;
    let access = service::access_token_for(store, &app.state.shopify, &user.id)
        .await
        .unwrap();
    assert!(access.token.expose().starts_with("shpat_refreshed_"));
    assert_eq!(
        fake.inner.refresh_requests.load(Ordering::SeqCst),
        refreshes + 1
    );
    let after = store
        .integration_for_shop("shopify", SHOP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.access_token.as_ref(), Some(&access.token));
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "the rotated refresh token is kept"
    );
    assert!(after.token_expires_at > before.token_expires_at);

    // Fresh now: no second refresh.
    let again = service::access_token_for(store, &app.state.shopify, &user.id)
        .await
        .unwrap();
    assert_eq!(again.token, access.token);
    assert_eq!(
        fake.inner.refresh_requests.load(Ordering::SeqCst),
        refreshes + 1
    );
    let fetcher = service::fetcher_for(store, &app.state.shopify, &user.id)
        .await
        .unwrap();
    assert_eq!(fetcher.shop().as_str(), SHOP);

    // A refused refresh marks the integration for reconnection.
    install(&app, "other-shop.myshopify.com").await;
    let other = store
        .user_by_shop("other-shop.myshopify.com")
        .await
        .unwrap()
        .unwrap();
    fake.inner.refuse_refresh.store(true, Ordering::SeqCst);
    expire_soon(store, "other-shop.myshopify.com").await;
    let refused = service::access_token_for(store, &app.state.shopify, &other.id).await;
    assert!(
        matches!(refused, Err(service::AccessError::NeedsReconnect)),
        "{refused:?}"
    );
    // A 401 from the Admin API does the same.
    let unauthorized = hirecj_shopify::ShopifyError::Unauthorized { request_id: None };
    let shop = hirecj_shopify::ShopDomain::parse(SHOP).unwrap();
    assert!(service::note_shopify_error(store, &shop, &unauthorized).await);
    let i = store
        .integration_for_shop("shopify", SHOP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(i.status, IntegrationStatus::NeedsReconnect);
    assert!(matches!(
        service::access_token_for(store, &app.state.shopify, &user.id).await,
        Err(service::AccessError::NeedsReconnect)
    ));
}

#[tokio::test]
async fn an_install_cannot_take_someone_elses_conversation() {
    let fake = FakeShopify::start().await;
    let app = start_app_with_fake(&fake).await;
    let store = &app.state.store;
    // A visitor's conversation, owned by the visitor's session.
    let (_, visitor) = store
        .create_session(None, chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    let theirs = ConversationId::generate();
    store
        .create_conversation(theirs, None, Some(&visitor.id), "shopify_onboarding")
        .await
        .unwrap();

    // Another browser names it when installing its own shop.
    let b = browser();
    let r = b
        .get(format!("{}/api/v1/shopify/install", app.base))
        .query(&[("shop", "grabby"), ("conversation_id", &theirs.to_string())])
        .send()
        .await
        .unwrap();
    let state = query_param(&location(&r), "state").unwrap();
    let params = sign(
        callback_params("grabby.myshopify.com", &state, "good-code", now()),
        CLIENT_SECRET,
    );
    let r = b
        .get(callback_url(&app.base, &params))
        .send()
        .await
        .unwrap();
    assert_installed(&r);
    assert!(!location(&r).contains(&theirs.to_string()));
    let c = store.conversation(theirs).await.unwrap().unwrap();
    assert!(
        c.user_id.is_none(),
        "the visitor's conversation stays theirs"
    );
}

fn active(i: Option<hirecj_domain::Integration>) -> bool {
    i.is_some_and(|i| i.status == IntegrationStatus::Active && i.access_token.is_some())
}

async fn refused(r: reqwest::Response, code: &str) {
    assert_eq!(r.status(), 400, "{code}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
}

#[tokio::test]
async fn a_signed_delivery_cannot_be_aimed_at_another_shop() {
    let fake = FakeShopify::start().await;
    let app = start_app_with_fake(&fake).await;
    let store = &app.state.store;
    let http = reqwest::Client::new();
    let base = &app.base;
    const OTHER: &str = "other-shop.myshopify.com";
    install(&app, SHOP).await;
    install(&app, OTHER).await;

    // app/uninstalled signed for SHOP (its payload is the shop), posted
    // with OTHER's header: refused, OTHER stays installed.
    let uninstall_shop = json!({"id": 1, "name": "Cool", "domain": SHOP, "myshopify_domain": SHOP});
    let custom_domain = json!({"id": 1, "domain": "shop.example.com", "myshopify_domain": SHOP});
    let bare_domain = json!({"id": 1, "domain": SHOP});
    for (i, payload) in [&uninstall_shop, &custom_domain, &bare_domain]
        .into_iter()
        .enumerate()
    {
        let r = webhook_request(
            &http,
            base,
            "app/uninstalled",
            OTHER,
            &format!("x-{i}"),
            payload,
            CLIENT_SECRET,
        )
        .send()
        .await
        .unwrap();
        refused(r, "shop_mismatch").await;
    }
    // An uninstall that names no shop in its signed payload: refused.
    let r = webhook_request(
        &http,
        base,
        "app/uninstalled",
        OTHER,
        "x-3",
        &json!({"id": 1}),
        CLIENT_SECRET,
    )
    .send()
    .await
    .unwrap();
    refused(r, "shop_not_named").await;
    // shop/redact signed for SHOP, posted with OTHER's header.
    let redact_shop = json!({"shop_id": 1, "shop_domain": SHOP});
    let r = webhook_request(
        &http,
        base,
        "shop/redact",
        OTHER,
        "x-4",
        &redact_shop,
        CLIENT_SECRET,
    )
    .send()
    .await
    .unwrap();
    refused(r, "shop_mismatch").await;

    for shop in [SHOP, OTHER] {
        assert!(
            active(store.integration_for_shop("shopify", shop).await.unwrap()),
            "{shop}"
        );
        assert!(store.user_by_shop(shop).await.unwrap().is_some(), "{shop}");
    }
    assert!(
        store
            .events_of_kind("app_uninstalled", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Nothing was recorded: the same ids, rightly addressed, are processed.
    let r = webhook_request(
        &http,
        base,
        "app/uninstalled",
        SHOP,
        "x-0",
        &uninstall_shop,
        CLIENT_SECRET,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "uninstalled");
    assert!(!active(
        store.integration_for_shop("shopify", SHOP).await.unwrap()
    ));
    assert!(active(
        store.integration_for_shop("shopify", OTHER).await.unwrap()
    ));
}

#[tokio::test]
async fn a_replayed_delivery_is_not_processed_again() {
    let fake = FakeShopify::start().await;
    let app = start_app_with_fake(&fake).await;
    let store = &app.state.store;
    let http = reqwest::Client::new();
    let base = &app.base;
    let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    install(&app, SHOP).await;

    // The merchant uninstalls (the delivery is captured), then reinstalls.
    let uninstall = json!({"id": 1, "domain": SHOP, "myshopify_domain": SHOP,
                           "updated_at": "2026-11-02T10:00:00-05:00"});
    let r = webhook_request(
        &http,
        base,
        "app/uninstalled",
        SHOP,
        "u-1",
        &uninstall,
        CLIENT_SECRET,
    )
    .header("X-Shopify-Triggered-At", now())
    .send()
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "uninstalled");
    install(&app, SHOP).await;
    assert!(active(
        store.integration_for_shop("shopify", SHOP).await.unwrap()
    ));

    // The captured delivery replayed under a new id, fresh time, or with
    // neither header: a duplicate, the merchant stays installed.
    for (id, at) in [("u-2", Some(now())), ("u-3", None)] {
        let mut request = webhook_request(
            &http,
            base,
            "app/uninstalled",
            SHOP,
            id,
            &uninstall,
            CLIENT_SECRET,
        );
        if let Some(at) = at {
            request = request.header("X-Shopify-Triggered-At", at);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap()["status"],
            "duplicate",
            "{id}"
        );
    }
    assert!(active(
        store.integration_for_shop("shopify", SHOP).await.unwrap()
    ));
    assert_eq!(
        store
            .events_of_kind("app_uninstalled", 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // A delivery triggered before the replay window, or in the future:
    // refused, nothing recorded or deleted.
    let redact = json!({"shop_id": 1, "shop_domain": SHOP});
    let window = chrono::Duration::from_std(hirecj_store::WEBHOOK_REPLAY_WINDOW).unwrap();
    let stale = (chrono::Utc::now() - window - chrono::Duration::minutes(1)).to_rfc3339();
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    for (id, at, code) in [
        ("r-1", stale, "stale_delivery"),
        ("r-2", future, "future_delivery"),
    ] {
        let r = webhook_request(&http, base, "shop/redact", SHOP, id, &redact, CLIENT_SECRET)
            .header("X-Shopify-Triggered-At", at)
            .send()
            .await
            .unwrap();
        refused(r, code).await;
    }
    assert!(store.user_by_shop(SHOP).await.unwrap().is_some());
    assert!(active(
        store.integration_for_shop("shopify", SHOP).await.unwrap()
    ));

    // A delivery whose processing fails is forgotten: Shopify's retry is
    // processed again rather than taken for a duplicate.
    for _ in 0..2 {
        let bytes = b"not json".to_vec();
        let r = http
            .post(format!("{base}/api/v1/shopify/webhooks"))
            .header("X-Shopify-Topic", "customers/redact")
            .header("X-Shopify-Shop-Domain", SHOP)
            .header("X-Shopify-Webhook-Id", "c-1")
            .header("X-Shopify-Triggered-At", now())
            .header(
                "X-Shopify-Hmac-Sha256",
                hirecj_shopify::signing::sign_webhook(&bytes, CLIENT_SECRET),
            )
            .body(bytes)
            .send()
            .await
            .unwrap();
        refused(r, "invalid_payload").await;
    }
    // The refused shop/redact ids and body were not recorded either.
    let r = webhook_request(
        &http,
        base,
        "shop/redact",
        SHOP,
        "r-1",
        &redact,
        CLIENT_SECRET,
    )
    .header("X-Shopify-Triggered-At", now())
    .send()
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "deleted");
    assert!(store.user_by_shop(SHOP).await.unwrap().is_none());
}

/// A TCP proxy to `target` that can be cut (every connection dropped,
/// new ones refused) and restored: Redis going away and coming back.
struct CuttableProxy {
    addr: std::net::SocketAddr,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    kill: tokio::sync::broadcast::Sender<()>,
}

impl CuttableProxy {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (kill, _) = tokio::sync::broadcast::channel(4);
        let (is_cut, killer) = (cut.clone(), kill.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_cut.load(Ordering::SeqCst) {
                    continue;
                }
                let mut stop = killer.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = stop.recv() => {}
                    }
                });
            }
        });
        Self { addr, cut, kill }
    }

    fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let _ = self.kill.send(());
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Redis down when the app starts: the app starts anyway and connects in
/// the background. While Redis (the shop's cached data) is unreachable,
/// at start or later, an uninstall or a compliance webhook that must
/// delete that data answers 503, so Shopify delivers it again; the redelivery once Redis is
/// back is processed, not dropped as a duplicate.
#[tokio::test]
async fn a_compliance_webhook_fails_while_the_cache_cannot_be_cleared() {
    let Ok(redis) = std::env::var("TEST_REDIS_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "TEST_REDIS_URL must point at a Redis server in CI"
        );
        eprintln!("note: TEST_REDIS_URL is not set; skipping");
        return;
    };
    let target = reqwest::Url::parse(&redis).unwrap();
    let target = format!(
        "{}:{}",
        target.host_str().unwrap(),
        target.port().unwrap_or(6379)
    );
    let proxy = CuttableProxy::start(target).await;
    proxy.cut();
    let fake = FakeShopify::start().await;
    let template = fake.base_template();
    let redis_url = proxy.url();
    let app = start_app(&[
        ("SHOPIFY_CLIENT_ID", CLIENT_ID),
        ("SHOPIFY_CLIENT_SECRET", CLIENT_SECRET),
        ("SHOPIFY_ADMIN_BASE_URL", &template),
        ("REDIS_URL", &redis_url),
    ])
    .await;
    install(&app, SHOP).await;
    let store = &app.state.store;
    let http = reqwest::Client::new();
    let deliver = |topic: &'static str, id: &'static str, body: Value| {
        webhook_request(&http, &app.base, topic, SHOP, id, &body, CLIENT_SECRET).send()
    };
    // Shopify delivers until it gets a 2xx.
    let until_accepted = |topic: &'static str, id: &'static str, body: Value| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let r = deliver(topic, id, body.clone()).await.unwrap();
            if r.status() == 200 {
                break r.json::<Value>().await.unwrap();
            }
            assert_eq!(r.status(), 503);
            assert!(
                std::time::Instant::now() < deadline,
                "Redis never came back"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };

    // Down since the start.
    let customer = json!({
        "shop_id": 1,
        "shop_domain": SHOP,
        "customer": {"id": 7, "email": "ann@example.com"},
        "orders_to_redact": [],
    });
    let r = deliver("customers/redact", "w-redis-1", customer.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let refused: Value = r.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "cache_unavailable", "{refused}");
    proxy.restore();
    let answer = until_accepted("customers/redact", "w-redis-1", customer).await;
    assert_eq!(answer["status"], "redacted", "{answer}");

    // Gone again after it was reached: the uninstall, then the shop's
    // redaction, wait for it.
    proxy.cut();
    let shop_body = json!({"id": 1, "myshopify_domain": SHOP, "domain": SHOP});
    let r = deliver("app/uninstalled", "w-redis-3", shop_body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    proxy.restore();
    let answer = until_accepted("app/uninstalled", "w-redis-3", shop_body).await;
    assert_eq!(answer["status"], "uninstalled", "{answer}");
    proxy.cut();
    let body = json!({"shop_id": 1, "shop_domain": SHOP});
    let r = deliver("shop/redact", "w-redis-2", body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    proxy.restore();
    let answer = until_accepted("shop/redact", "w-redis-2", body).await;
    assert_ne!(answer["status"], "duplicate", "{answer}");
    assert!(store.user_by_shop(SHOP).await.unwrap().is_none());
}
