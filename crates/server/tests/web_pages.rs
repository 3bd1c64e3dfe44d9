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

    // Without scripts the page says how the chat works there, and the
    // composer posts (a message never goes into a URL); the chat without
    // scripts is `the_chat_works_without_javascript`.
    let html = app.get("/chat", Some(&cookie)).await.text().await.unwrap();
    assert!(html.contains("<noscript>") && html.contains("Without JavaScript"));
    assert!(html.contains("method=\"post\" action=\"/chat\""), "{html}");
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
    // CJ's Connect button, on a page without the chat's script, in words.
    let offered = ConversationId::generate();
    store
        .create_conversation(offered, Some(&alice.id), None, "shopify_onboarding")
        .await
        .unwrap();
    let mut greeting = NewMessage::new(Role::Cj, "Connect your store:\n\n__OAUTH_BUTTON_1__");
    greeting.ui_elements = serde_json::json!([{"id": "oauth_button_1", "type": "oauth_button", "provider": "shopify"}]);
    store.append_message(offered, &greeting).await.unwrap();
    let html = app
        .get(&format!("/history/{offered}"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("[Connect Shopify button]"), "{html}");

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

/// The chat without scripts, as a browser with JavaScript off uses it:
/// the composer posts, the reply is written while the request waits, and
/// the conversation comes back rendered by the server.
#[tokio::test]
async fn the_chat_works_without_javascript() {
    let app = start_app(&[]).await;
    let page = app.get("/chat", None).await;
    let cookie = page.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    assert!(html.contains("<noscript>"), "{html}");
    assert!(html.contains("method=\"post\" action=\"/chat\""), "{html}");
    assert!(
        html.contains("Hi, I'm CJ") && html.contains("Connect your Shopify store below"),
        "a visitor without scripts is greeted before the first message: {html}"
    );
    let post = |fields: Vec<(&'static str, String)>, origin: Option<String>| {
        let mut req = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(app.url("/chat"))
            .header(reqwest::header::COOKIE, cookie.clone())
            .form(&fields);
        if let Some(o) = origin {
            req = req.header(reqwest::header::ORIGIN, o);
        }
        req.send()
    };

    // A first message: a new conversation, CJ's greeting, then the answer.
    let sent = post(
        vec![
            ("message", "What can you help me with?".into()),
            ("conversation_id", String::new()),
            ("client_id", "noscript-1".into()),
        ],
        Some(app.url("")),
    )
    .await
    .unwrap();
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let to = sent.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with("/chat?conversation_id=") && to.ends_with("#latest"),
        "{to}"
    );
    let id: ConversationId = to
        .trim_start_matches("/chat?conversation_id=")
        .trim_end_matches("#latest")
        .parse()
        .unwrap();
    let stored = app.messages(id).await;
    let roles: Vec<Role> = stored
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| m.role)
        .collect();
    assert_eq!(
        roles,
        [Role::Cj, Role::Merchant, Role::Cj],
        "greeting, question, answer"
    );
    let answer = stored.last().unwrap().content.clone();

    // The conversation as the server renders it: every message, the
    // answer last, the store's connect form (no scripts to draw it), and
    // the form posting to this conversation.
    let html = app
        .get(to.trim_end_matches("#latest"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    let first_line: String = answer.lines().next().unwrap().chars().take(20).collect();
    assert!(html.contains("What can you help me with?"), "{html}");
    assert!(html.contains(&first_line), "{html}");
    assert!(html.contains("id=\"latest\""), "{html}");
    assert!(
        html.contains("action=\"/api/v1/shopify/install\""),
        "{html}"
    );
    assert!(
        html.contains(&format!("name=\"conversation_id\" value=\"{id}\"")),
        "{html}"
    );

    // A second message in the same conversation; the same form sent twice
    // (a double click, a resubmitted page) is stored once.
    for _ in 0..2 {
        let again = post(
            vec![
                ("message", "And my best sellers?".into()),
                ("conversation_id", id.to_string()),
                ("client_id", "noscript-2".into()),
            ],
            Some(app.url("")),
        )
        .await
        .unwrap();
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
    }
    let stored = app.messages(id).await;
    let asked = stored
        .iter()
        .filter(|m| m.content == "And my best sellers?")
        .count();
    assert_eq!(asked, 1, "{stored:#?}");
    assert_eq!(stored.last().unwrap().role, Role::Cj, "answered");

    // Refused: another site's form, an empty message, someone else's
    // conversation; nothing is stored.
    let before = app.messages(id).await.len();
    let foreign = post(
        vec![
            ("message", "hi".into()),
            ("conversation_id", id.to_string()),
        ],
        Some("https://evil.example".into()),
    )
    .await
    .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let empty = post(
        vec![
            ("message", "  ".into()),
            ("conversation_id", id.to_string()),
        ],
        Some(app.url("")),
    )
    .await
    .unwrap();
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert!(
        empty
            .text()
            .await
            .unwrap()
            .contains("The message was empty")
    );
    assert_eq!(app.messages(id).await.len(), before);
    let other = app.visitor_cookie().await;
    let theirs = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/chat"))
        .header(reqwest::header::COOKIE, other.clone())
        .form(&[("message", "hi"), ("conversation_id", &id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), StatusCode::FORBIDDEN);
    // Nor does their page show this conversation.
    let page = app
        .get(&format!("/chat?conversation_id={id}"), Some(&other))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("What can you help me with?"));
    assert_eq!(app.messages(id).await.len(), before);
    app.stop().await;
}
