//! The web app's pages and assets over real HTTP: hashed, immutable assets
//! with the right types; pages that reference them; the session the chat
//! page issues; history, transcript and memory pages and their refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hirecj_domain::{ConversationId, NewMessage, Role};
use hirecj_server::web::assets;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, SET_COOKIE};

mod support;

use support::start_app;

#[tokio::test]
async fn assets_are_served_by_content_hash_and_cached_forever() {
    let app = start_app(&[]).await;
    for (name, ty) in [
        ("chat.js", "text/javascript"),
        ("page.js", "text/javascript"),
        ("app.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let url = assets::url(name);
        let stem = name.split('.').next().unwrap();
        let re_ok = url.starts_with(&format!("/assets/{stem}."))
            && url
                .split('.')
                .nth(1)
                .is_some_and(|h| h.len() == 10 && h.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(re_ok, "{url}");
        let r = app.get(url, None).await;
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        assert!(
            r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with(ty),
            "{url}"
        );
        assert_eq!(
            r.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let body = r.bytes().await.unwrap();
        assert_eq!(assets::content_hash(&body), url.split('.').nth(1).unwrap());
    }
    // An old or unknown hash is not served (and not cached).
    let r = app.get("/assets/chat.0000000000.js", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(
        app.get("/assets/chat.js", None).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn landing_and_chat_pages() {
    let app = start_app(&[]).await;
    let r = app.get("/", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = r.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("Start chatting") && html.contains("href=\"/chat\""));
    assert!(html.contains(assets::url("app.css")));

    // The chat page gives a new browser a session at once.
    let r = app.get("/chat", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("hirecj_session="), "{cookie}");
    let html = r.text().await.unwrap();
    assert!(html.contains(assets::url("chat.js")));
    assert!(html.contains("role=\"log\"") && html.contains("aria-live=\"polite\""));
    assert!(html.contains("id=\"status\"") && html.contains("role=\"status\""));
    assert!(html.contains("<label for=\"input\""));
    assert!(html.contains("data-user-id=\"\""));
    // A second visit keeps the session.
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let r = app.get("/chat", Some(&cookie)).await;
    assert!(r.headers().get(SET_COOKIE).is_none());

    // An OAuth error is explained, never echoed.
    let r = app
        .get(
            "/chat?oauth_error=%3Cscript%3Ealert(1)%3C/script%3E",
            Some(&cookie),
        )
        .await;
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"oauth-error\"") && html.contains("Try again"));
    assert!(!html.contains("<script>alert"), "reflected");
    let html = app
        .get("/chat?oauth_error=access_denied", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("You cancelled the install"), "{html}");

    // Without scripts: the page says the chat needs them, and a sent
    // message is posted (never put in a URL), stored nowhere, and answered
    // with a page that says so.
    let html = app.get("/chat", Some(&cookie)).await.text().await.unwrap();
    assert!(html.contains("<noscript>") && html.contains("needs JavaScript"));
    assert!(html.contains("method=\"post\" action=\"/chat\""), "{html}");
    let r = app
        .http
        .post(app.url("/chat"))
        .header(reqwest::header::COOKIE, &cookie)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body("message=How+many+orders%3F")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("Your message was not sent") && html.contains("needs JavaScript"));
    assert!(!html.contains("How many orders"), "not echoed");
}

#[tokio::test]
async fn history_memory_and_transcript_pages() {
    let app = start_app(&[]).await;
    // Visitors are told to connect first.
    let r = app.get("/history", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("Connect your"));
    assert_eq!(
        app.get("/memory", None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let (alice, cookie) = app.merchant("alice.myshopify.com").await;
    let (bob, _) = app.merchant("bob.myshopify.com").await;
    let store = &app.state.store;
    let mut ids = Vec::new();
    for i in 0..23 {
        let id = ConversationId::generate();
        store
            .create_conversation(id, Some(&alice.id), None, "ad_hoc_support")
            .await
            .unwrap();
        store
            .append_message(
                id,
                &NewMessage::new(Role::Merchant, format!("<b>question</b> {i}")),
            )
            .await
            .unwrap();
        store
            .append_message(
                id,
                &NewMessage::new(Role::Cj, "**Answer** <script>alert(1)</script>"),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    let bobs = ConversationId::generate();
    store
        .create_conversation(bobs, Some(&bob.id), None, "ad_hoc_support")
        .await
        .unwrap();

    let r = app.get("/history", Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("23 conversations"), "{html}");
    // Times in UTC until the shop's time zone is known, relative to today...
    assert!(html.contains("Today, "), "{html}");
    assert!(html.contains(" UTC<") || html.contains(" UTC "), "{html}");
    // ...then on the shop's clock (Tokyo has no daylight saving).
    store
        .mirror_register_shop(
            "alice.myshopify.com",
            "Asia/Tokyo".parse().unwrap(),
            Some("JPY"),
            None,
        )
        .await
        .unwrap();
    let html = app
        .get("/history", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(" JST"), "{html}");
    assert!(!html.contains(" UTC"), "{html}");
    // Newest first, 20 per page.
    let newest = html.find(&ids[22].to_string()).unwrap();
    let older = html.find(&ids[3].to_string()).unwrap();
    assert!(newest < older);
    assert!(!html.contains(&ids[2].to_string()), "page 1 holds 20");
    assert!(html.contains("href=\"/history?page=2\""));
    let page2 = app
        .get("/history?page=2", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(page2.contains(&ids[0].to_string()) && page2.contains(&ids[2].to_string()));
    assert!(!page2.contains(&bobs.to_string()));
    assert!(html.contains("View conversation history"));

    // A transcript: rendered markdown, sanitized; merchant text escaped.
    let r = app
        .get(&format!("/history/{}", ids[0]), Some(&cookie))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("<strong>Answer</strong>"), "{html}");
    // The workflow by its name for people, not its id.
    assert!(!html.contains("ad_hoc_support"), "{html}");
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<b>question</b>"), "{html}");
    assert!(html.contains(&format!(
        "/api/v1/users/{}/conversations/{}/export?format=markdown",
        alice.id, ids[0]
    )));
    // Someone else's, unknown, malformed.
    assert_eq!(
        app.get(&format!("/history/{bobs}"), Some(&cookie))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(
            &format!("/history/{}", ConversationId::generate()),
            Some(&cookie)
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/history/nope", Some(&cookie)).await.status(),
        StatusCode::BAD_REQUEST
    );

    // Memory.
    let html = app
        .get("/memory", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("does not remember anything"));
    let fact = store
        .add_fact(&alice.id, "Ships <fast> from Portland", None)
        .await
        .unwrap()
        .unwrap();
    let html = app
        .get("/memory", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Ships &lt;fast&gt; from Portland")
            || html.contains("Ships &#60;fast&#62; from Portland"),
        "{html}"
    );
    assert!(html.contains(&format!("data-forget=\"{}\"", fact.id)));
}
