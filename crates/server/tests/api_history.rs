//! The JSON API over real HTTP: who is signed in, sign-out, workflows, the
//! history API (401/403/404/400, pagination, detail, exports, profile,
//! facts) and the OpenAPI description.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hirecj_domain::{ConversationId, NewMessage, Role, User};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use serde_json::{Value, json};

mod support;

use support::{TestApp, start_app};

/// A conversation of `user` with a merchant message and CJ's reply.
async fn conversation(app: &TestApp, user: &User, question: &str, answer: &str) -> ConversationId {
    let store = &app.state.store;
    let id = ConversationId::generate();
    store
        .create_conversation(id, Some(&user.id), None, "ad_hoc_support")
        .await
        .unwrap();
    store
        .append_message(id, &NewMessage::new(Role::System, "conversation started"))
        .await
        .unwrap();
    store
        .append_message(id, &NewMessage::new(Role::Merchant, question))
        .await
        .unwrap();
    store
        .append_message(id, &NewMessage::new(Role::Cj, answer))
        .await
        .unwrap();
    id
}

async fn status(app: &TestApp, path: &str, cookie: Option<&str>) -> StatusCode {
    app.get(path, cookie).await.status()
}

async fn json(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

async fn error_code(r: reqwest::Response) -> String {
    json(r).await["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn history_routes_refuse_without_a_signed_in_merchant() {
    let app = start_app(&[]).await;
    let (alice, _) = app.merchant("alice.myshopify.com").await;
    let conv = conversation(&app, &alice, "hi", "hello").await;
    let visitor = app.visitor_cookie().await;
    let u = &alice.id;
    let paths = [
        format!("/api/v1/users/{u}/conversations"),
        format!("/api/v1/users/{u}/conversations/{conv}"),
        format!("/api/v1/users/{u}/conversations/{conv}/export?format=json"),
        format!("/api/v1/users/{u}/profile"),
        format!("/api/v1/users/{u}/facts"),
    ];
    for path in &paths {
        let r = app.get(path, None).await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{path} without cookie"
        );
        assert_eq!(error_code(r).await, "unauthorized");
        // An anonymous (visitor) session is not a merchant.
        assert_eq!(
            status(&app, path, Some(&visitor)).await,
            StatusCode::UNAUTHORIZED,
            "{path} as visitor"
        );
        // A forged cookie neither.
        assert_eq!(
            status(&app, path, Some("hirecj_session=forged")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = app
        .http
        .delete(app.url(&format!("/api/v1/users/{u}/facts/{}", uuid::Uuid::now_v7())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_merchants_data_is_forbidden_and_missing_things_are_404() {
    let app = start_app(&[]).await;
    let (alice, alice_cookie) = app.merchant("alice.myshopify.com").await;
    let (bob, bob_cookie) = app.merchant("bob.myshopify.com").await;
    let alice_conv = conversation(&app, &alice, "hi", "hello").await;
    let bob_conv = conversation(&app, &bob, "yo", "hey").await;
    let a = &alice.id;
    let b = &bob.id;

    // Bob asks for anything under Alice's id: 403.
    for path in [
        format!("/api/v1/users/{a}/conversations"),
        format!("/api/v1/users/{a}/conversations/{alice_conv}"),
        format!("/api/v1/users/{a}/conversations/{alice_conv}/export?format=markdown"),
        format!("/api/v1/users/{a}/profile"),
        format!("/api/v1/users/{a}/facts"),
    ] {
        let r = app.get(&path, Some(&bob_cookie)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(error_code(r).await, "forbidden");
    }
    let fact = app
        .state
        .store
        .add_fact(&alice.id, "Ships from Portland", None)
        .await
        .unwrap()
        .unwrap();
    let r = app
        .http
        .delete(app.url(&format!("/api/v1/users/{a}/facts/{}", fact.id)))
        .header(COOKIE, &bob_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Bob under his own id cannot delete Alice's fact either: 404.
    let r = app
        .http
        .delete(app.url(&format!("/api/v1/users/{b}/facts/{}", fact.id)))
        .header(COOKIE, &bob_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.state.store.facts(&alice.id).await.unwrap().len(), 1);

    // Alice asking for Bob's conversation under her own id: it is not hers, 404.
    for path in [
        format!("/api/v1/users/{a}/conversations/{bob_conv}"),
        format!("/api/v1/users/{a}/conversations/{bob_conv}/export?format=json"),
        format!(
            "/api/v1/users/{a}/conversations/{}",
            ConversationId::generate()
        ),
    ] {
        let r = app.get(&path, Some(&alice_cookie)).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_code(r).await, "not_found");
    }
    // Malformed ids and parameters: 400.
    for path in [
        "/api/v1/users/usr_NOPE/conversations".to_owned(),
        "/api/v1/users/alice/profile".to_owned(),
        format!("/api/v1/users/{a}/conversations/not-a-uuid"),
        format!("/api/v1/users/{a}/conversations?limit=0"),
        format!("/api/v1/users/{a}/conversations?limit=abc"),
        format!("/api/v1/users/{a}/conversations?limit=101"),
        format!("/api/v1/users/{a}/conversations?offset=-1"),
        format!("/api/v1/users/{a}/conversations/{alice_conv}/export?format=pdf"),
    ] {
        let r = app.get(&path, Some(&alice_cookie)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(error_code(r).await, "bad_request");
    }
    let r = app
        .http
        .delete(app.url(&format!("/api/v1/users/{a}/facts/nope")))
        .header(COOKIE, &alice_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn conversations_are_paginated_newest_first() {
    let app = start_app(&[]).await;
    let (alice, cookie) = app.merchant("alice.myshopify.com").await;
    let (bob, _) = app.merchant("bob.myshopify.com").await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(conversation(&app, &alice, &format!("question {i}"), "answer").await);
    }
    conversation(&app, &bob, "not alice's", "no").await;
    ids.reverse(); // newest first

    let a = &alice.id;
    let first = json(
        app.get(
            &format!("/api/v1/users/{a}/conversations?limit=10"),
            Some(&cookie),
        )
        .await,
    )
    .await;
    assert_eq!(first["total"], 25);
    assert_eq!(first["limit"], 10);
    assert_eq!(first["offset"], 0);
    let page: Vec<&str> = first["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = ids[..10].iter().map(ToString::to_string).collect();
    assert_eq!(page, expected);
    let item = &first["conversations"][0];
    assert_eq!(item["workflow"], "ad_hoc_support");
    assert_eq!(item["message_count"], 3);
    assert!(item["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(item["started_at"].is_string());
    assert!(item.get("ended_at").is_some());

    let last = json(
        app.get(
            &format!("/api/v1/users/{a}/conversations?limit=10&offset=20"),
            Some(&cookie),
        )
        .await,
    )
    .await;
    let page: Vec<&str> = last["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = ids[20..].iter().map(ToString::to_string).collect();
    assert_eq!(page, expected);
    assert_eq!(last["total"], 25);

    // Default page size 20; beyond the end is an empty page, not an error.
    let default = json(
        app.get(&format!("/api/v1/users/{a}/conversations"), Some(&cookie))
            .await,
    )
    .await;
    assert_eq!(default["conversations"].as_array().unwrap().len(), 20);
    let beyond = json(
        app.get(
            &format!("/api/v1/users/{a}/conversations?offset=100"),
            Some(&cookie),
        )
        .await,
    )
    .await;
    assert!(beyond["conversations"].as_array().unwrap().is_empty());
    assert_eq!(beyond["total"], 25);
}

#[tokio::test]
async fn a_conversation_has_all_its_messages_with_sanitized_html() {
    let app = start_app(&[]).await;
    let (alice, cookie) = app.merchant("alice.myshopify.com").await;
    let conv = conversation(
        &app,
        &alice,
        "<script>alert(1)</script> how many orders?",
        "You had **64 orders** last week. <img src=x onerror=alert(2)> [x](javascript:alert(3))",
    )
    .await;
    let r = app
        .get(
            &format!("/api/v1/users/{}/conversations/{conv}", alice.id),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = json(r).await;
    assert_eq!(body["id"], conv.to_string());
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "merchant", "cj"]);
    let seqs: Vec<i64> = messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    let cj = &messages[2];
    let html = cj["html"].as_str().unwrap();
    assert!(html.contains("<strong>64 orders</strong>"), "{html}");
    assert!(
        !html.contains("onerror") && !html.contains("javascript:"),
        "{html}"
    );
    let merchant_html = messages[1]["html"].as_str().unwrap();
    assert!(!merchant_html.contains("<script"), "{merchant_html}");
    assert_eq!(cj["status"], "complete");
}

#[tokio::test]
async fn exports_are_valid_json_and_readable_markdown() {
    let app = start_app(&[]).await;
    let (alice, cookie) = app.merchant("alice.myshopify.com").await;
    let conv = conversation(
        &app,
        &alice,
        "How many orders did I get last week?",
        "You had **64 orders** last week.",
    )
    .await;
    let base = format!("/api/v1/users/{}/conversations/{conv}/export", alice.id);

    let r = app.get(&format!("{base}?format=json"), Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let cd = r.headers()[CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cd.starts_with("attachment;") && cd.contains(&format!("hirecj-conversation-{conv}.json")),
        "{cd}"
    );
    let doc: Value = serde_json::from_str(&r.text().await.unwrap()).expect("valid JSON");
    assert_eq!(doc["id"], conv.to_string());
    assert_eq!(doc["messages"].as_array().unwrap().len(), 3);
    assert!(doc["exported_at"].is_string());

    // Without a format: JSON.
    let r = app.get(&base, Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::OK);
    serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap();

    let r = app
        .get(&format!("{base}?format=markdown"), Some(&cookie))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    let cd = r.headers()[CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cd.contains(".md\""), "{cd}");
    let md = r.text().await.unwrap();
    assert!(md.starts_with("# "), "{md}");
    assert!(md.contains("- Started: "), "{md}");
    assert!(md.contains("**Merchant**"), "{md}");
    assert!(md.contains("**CJ**"), "{md}");
    assert!(md.contains("How many orders did I get last week?"), "{md}");
    assert!(md.contains("You had **64 orders** last week."), "{md}");
    assert!(
        !md.contains("conversation started"),
        "system events are left out: {md}"
    );
    let merchant_at = md.find("**Merchant**").unwrap();
    let cj_at = md.find("**CJ**").unwrap();
    assert!(merchant_at < cj_at, "turns in order");
    // The workflow by its plain name, never its id.
    assert!(!md.contains("ad_hoc_support"), "{md}");
    // Times on the shop's clock once its zone is known (UTC before).
    assert!(md.contains(" UTC\n"), "{md}");
    app.state
        .store
        .mirror_register_shop(
            "alice.myshopify.com",
            "Asia/Tokyo".parse().unwrap(),
            Some("JPY"),
            None,
        )
        .await
        .unwrap();
    let md = app
        .get(&format!("{base}?format=markdown"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    let started = md.lines().find(|l| l.starts_with("- Started: ")).unwrap();
    assert!(started.ends_with(" JST"), "{md}");
}

#[tokio::test]
async fn profile_and_facts() {
    let app = start_app(&[]).await;
    let (alice, cookie) = app.merchant("alice.myshopify.com").await;
    conversation(&app, &alice, "a", "b").await;
    conversation(&app, &alice, "c", "d").await;
    let a = &alice.id;

    let profile = json(
        app.get(&format!("/api/v1/users/{a}/profile"), Some(&cookie))
            .await,
    )
    .await;
    assert_eq!(profile["user_id"], a.to_string());
    assert_eq!(profile["shop_domain"], "alice.myshopify.com");
    assert_eq!(profile["email"], "owner@example.com");
    assert_eq!(profile["name"], "Owner");
    assert!(profile["created_at"].is_string() && profile["last_seen"].is_string());
    assert_eq!(profile["stats"]["total_conversations"], 2);
    assert_eq!(profile["stats"]["total_messages"], 6);
    assert_eq!(profile["store_connected"], false);

    let store = &app.state.store;
    let f1 = store
        .add_fact(&alice.id, "Ships from Portland", None)
        .await
        .unwrap()
        .unwrap();
    let f2 = store
        .add_fact(&alice.id, "Black Friday sale starts Nov 28", None)
        .await
        .unwrap()
        .unwrap();
    let facts = json(
        app.get(&format!("/api/v1/users/{a}/facts"), Some(&cookie))
            .await,
    )
    .await;
    let texts: Vec<&str> = facts["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["Ships from Portland", "Black Friday sale starts Nov 28"]
    );

    let delete = |id: String| {
        app.http
            .delete(app.url(&format!("/api/v1/users/{a}/facts/{id}")))
            .header(COOKIE, &cookie)
            .send()
    };
    assert_eq!(
        delete(f1.id.to_string()).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(f1.id.to_string()).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let facts = json(
        app.get(&format!("/api/v1/users/{a}/facts"), Some(&cookie))
            .await,
    )
    .await;
    assert_eq!(facts["facts"].as_array().unwrap().len(), 1);
    assert_eq!(facts["facts"][0]["id"], f2.id.to_string());

    // Undo after Forget: CJ remembers it again, once.
    let remember = |body: serde_json::Value| {
        app.http
            .post(app.url(&format!("/api/v1/users/{a}/facts")))
            .header(COOKIE, &cookie)
            .json(&body)
            .send()
    };
    let again = remember(json!({"text": "Ships from Portland"}))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["text"], "Ships from Portland");
    let twice = remember(json!({"text": "ships  from portland"}))
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::OK);
    assert_eq!(
        twice.json::<serde_json::Value>().await.unwrap()["already_known"],
        true
    );
    for bad in [
        json!({"text": "short"}),
        json!({"text": "x".repeat(201)}),
        json!({"text": "Ships from Leeds", "extra": 1}),
        json!({"fact": "Ships from Leeds"}),
    ] {
        let r = remember(bad.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let facts = json(
        app.get(&format!("/api/v1/users/{a}/facts"), Some(&cookie))
            .await,
    )
    .await;
    assert_eq!(facts["facts"].as_array().unwrap().len(), 2, "{facts}");
}

#[tokio::test]
async fn me_issues_a_session_and_logout_revokes_it() {
    let app = start_app(&[]).await;
    // A first visit: an anonymous session is created and its cookie set.
    let r = app.get("/api/v1/me", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("hirecj_session=") && set.contains("HttpOnly"),
        "{set}"
    );
    let visitor_cookie = set.split(';').next().unwrap().to_owned();
    let me = json(r).await;
    assert_eq!(me["user_id"], Value::Null);
    assert_eq!(me["store_connected"], false);
    assert!(me["debug"].is_boolean());

    // The same browser again: the session is reused, no new cookie.
    let r = app.get("/api/v1/me", Some(&visitor_cookie)).await;
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert_eq!(json(r).await["user_id"], Value::Null);

    // A merchant.
    let (alice, cookie) = app.merchant("alice.myshopify.com").await;
    let me = json(app.get("/api/v1/me", Some(&cookie)).await).await;
    assert_eq!(me["user_id"], alice.id.to_string());
    assert_eq!(me["shop_domain"], "alice.myshopify.com");
    assert_eq!(me["store_connected"], false);
    assert_eq!(me["needs_reconnect"], false);

    // Shopify refused the store's access: the merchant is told where to
    // reconnect, in the API and in every page's header.
    let store = &app.state.store;
    store
        .upsert_integration(&hirecj_domain::NewIntegration {
            user_id: alice.id.clone(),
            provider: "shopify".into(),
            shop_domain: "alice.myshopify.com".into(),
            access_token: "shpat_x".to_owned().into(),
            refresh_token: None,
            scopes: "read_orders".into(),
            token_expires_at: None,
            refresh_expires_at: None,
        })
        .await
        .unwrap();
    // The offer is always in the header (the chat shows it live), hidden
    // while the store is connected.
    let header = |html: &str| {
        html.contains("id=\"reconnect-link\"") && !html.contains("id=\"reconnect-link\" href=\"/api/v1/shopify/install?shop=alice.myshopify.com\" hidden")
    };
    let page = app
        .get("/history", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(!header(&page), "connected: no reconnect link");
    store
        .set_integration_status(
            "shopify",
            "alice.myshopify.com",
            hirecj_domain::IntegrationStatus::NeedsReconnect,
        )
        .await
        .unwrap();
    let me = json(app.get("/api/v1/me", Some(&cookie)).await).await;
    assert_eq!(
        (&me["store_connected"], &me["needs_reconnect"]),
        (&Value::Bool(false), &Value::Bool(true))
    );
    let page = app
        .get("/history", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(header(&page), "{page}");
    assert!(
        page.contains("href=\"/api/v1/shopify/install?shop=alice.myshopify.com\""),
        "{page}"
    );

    // Sign out: the cookie is cleared and the session no longer works.
    let r = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cleared = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cleared.starts_with("hirecj_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(
        status(
            &app,
            &format!("/api/v1/users/{}/conversations", alice.id),
            Some(&cookie)
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    let me = json(app.get("/api/v1/me", Some(&cookie)).await).await;
    assert_eq!(me["user_id"], Value::Null);
    // Signing out twice (or without a session) is fine.
    let r = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn state_changing_requests_from_another_origin_are_refused() {
    let app = start_app(&[]).await;
    let (alice, cookie) = app.merchant("alice.myshopify.com").await;
    let fact = app
        .state
        .store
        .add_fact(&alice.id, "Ships from Portland", None)
        .await
        .unwrap()
        .unwrap();
    let own_origin = format!("http://{}", app.addr);
    // A sibling subdomain is the same site (SameSite=Lax sends the cookie)
    // but another origin; so is a page that sends `Origin: null`.
    for foreign in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let r = app
            .http
            .delete(app.url(&format!("/api/v1/users/{}/facts/{}", alice.id, fact.id)))
            .header(COOKIE, &cookie)
            .header("Origin", foreign)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{foreign}");
        let r = app
            .http
            .post(app.url("/api/v1/auth/logout"))
            .header(COOKIE, &cookie)
            .header("Origin", foreign)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{foreign}");
        assert!(r.headers().get(SET_COOKIE).is_none(), "{foreign}");
    }
    // Nothing changed: the fact is there and the session still works.
    assert_eq!(app.state.store.facts(&alice.id).await.unwrap().len(), 1);
    let me = json(app.get("/api/v1/me", Some(&cookie)).await).await;
    assert_eq!(me["user_id"], alice.id.to_string());

    // The app's own pages (same origin) may do both.
    let r = app
        .http
        .delete(app.url(&format!("/api/v1/users/{}/facts/{}", alice.id, fact.id)))
        .header(COOKIE, &cookie)
        .header("Origin", &own_origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .header(COOKIE, &cookie)
        .header("Origin", &own_origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let me = json(app.get("/api/v1/me", Some(&cookie)).await).await;
    assert_eq!(me["user_id"], Value::Null);
}

#[tokio::test]
async fn workflows_and_openapi() {
    let app = start_app(&[]).await;
    let r = app.get("/api/v1/workflows", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json(r).await;
    let names: Vec<&str> = body["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    for required in ["shopify_onboarding", "shopify_post_auth", "ad_hoc_support"] {
        assert!(names.contains(&required), "{names:?}");
    }
    let w = &body["workflows"][0];
    assert!(w["description"].is_string());
    assert!(w["requirements"]["authentication"].is_string());

    let r = app.get("/api/openapi.json", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let spec = json(r).await;
    assert_eq!(spec["openapi"], "3.1.0");
    for path in [
        "/api/v1/me",
        "/api/v1/auth/logout",
        "/api/v1/workflows",
        "/api/v1/users/{user_id}/conversations",
        "/api/v1/users/{user_id}/conversations/{conversation_id}",
        "/api/v1/users/{user_id}/conversations/{conversation_id}/export",
        "/api/v1/users/{user_id}/profile",
        "/api/v1/users/{user_id}/facts",
        "/api/v1/users/{user_id}/facts/{fact_id}",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} undocumented");
    }
    // Every $ref resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap().to_owned());
                    } else {
                        refs(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&spec, &mut all);
    for r in all {
        let pointer = r.trim_start_matches('#');
        assert!(spec.pointer(pointer).is_some(), "dangling {r}");
    }
}
