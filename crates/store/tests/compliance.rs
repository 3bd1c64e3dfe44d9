//! The compliance contract (`customers/redact`, `shop/redact`), on SQLite
//! and on PostgreSQL (`TEST_DATABASE_URL`, as in `contract.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use hirecj_domain::{
    ConversationId, IntegrationStatus, NewIntegration, NewMessage, OAuthState, Role, Secret, UserId,
};
use hirecj_store::{Store, WebhookDelivery};
use serde_json::json;

mod harness;

use harness::{with_postgres, with_sqlite};

const EMAIL: &str = "Jane.Doe@example.com";
const PHONE: &str = "+15550100";
const CUSTOMER_ID: &str = "207119551";

/// A merchant with one conversation, messages, a trace, facts, events, an
/// integration and a session, all mentioning the customer.
async fn seed(store: &Store, shop: &str) -> (UserId, ConversationId) {
    let (user, _) = store
        .get_or_create_user(shop, Some("owner@shop.example"), None)
        .await
        .unwrap();
    let conv = ConversationId::generate();
    store
        .create_conversation(conv, Some(&user.id), None, "ad_hoc_support")
        .await
        .unwrap();
    store
        .set_conversation_title(conv, "About jane.doe@example.com")
        .await
        .unwrap();
    store
        .append_message(
            conv,
            &NewMessage::new(
                Role::Merchant,
                "What did jane.doe@example.com order? Her phone is +15550100.",
            ),
        )
        .await
        .unwrap();
    store
        .append_message(
            conv,
            &NewMessage::new(
                Role::Cj,
                "Customer gid://shopify/Customer/207119551 placed 3 orders.",
            ),
        )
        .await
        .unwrap();
    store
        .append_message(conv, &NewMessage::new(Role::Merchant, "Thanks!"))
        .await
        .unwrap();
    store
        .save_trace(conv, 1, &json!({"tool": "customer_lookup", "result": {"id": 207119551, "email": "jane.doe@example.com"}}))
        .await
        .unwrap();
    store
        .add_fact(
            &user.id,
            "Jane (jane.doe@example.com) is our best customer",
            Some(conv),
        )
        .await
        .unwrap();
    store
        .add_fact(&user.id, "We ship from Ohio", None)
        .await
        .unwrap();
    store
        .log_event(
            Some(&user.id),
            Some(conv),
            "customer_data_request",
            json!({"customer": {"id": 207119551, "email": EMAIL, "phone": PHONE}}),
        )
        .await
        .unwrap();
    store
        .log_user_event(&user.id, "oauth_complete", json!({"shop": shop}))
        .await
        .unwrap();
    store
        .upsert_integration(&NewIntegration {
            user_id: user.id.clone(),
            provider: "shopify".into(),
            shop_domain: shop.into(),
            access_token: Secret::new("shpat_seed"),
            refresh_token: Some(Secret::new("shprt_seed")),
            scopes: "read_orders".into(),
            token_expires_at: Some(Utc::now() + Duration::hours(1)),
            refresh_expires_at: None,
        })
        .await
        .unwrap();
    store
        .create_session(Some(&user.id), Utc::now() + Duration::days(1))
        .await
        .unwrap();
    (user.id, conv)
}

/// A delivery with an empty JSON body.
fn webhook<'a>(id: Option<&'a str>, topic: &'a str, shop: &'a str) -> WebhookDelivery<'a> {
    WebhookDelivery {
        webhook_id: id,
        topic,
        shop,
        body: b"{}",
    }
}

fn mentions(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("jane.doe@example.com") || t.contains("+15550100") || t.contains("207119551")
}

contract!(
    redact_customer_scrubs_everything_of_that_shop_only,
    |store, url| {
        let (user, conv) = seed(&store, "scrub.myshopify.com").await;
        let (other, other_conv) = seed(&store, "other.myshopify.com").await;
        // An event recorded for the shop before it had a user.
        store
            .log_event(
                None,
                None,
                "customer_data_request",
                json!({"shop": "scrub.myshopify.com", "email": EMAIL}),
            )
            .await
            .unwrap();

        let counts = store
            .redact_customer("scrub.myshopify.com", &[EMAIL, PHONE, CUSTOMER_ID, ""])
            .await
            .unwrap();
        assert_eq!(counts.messages, 2, "{counts:?}");
        assert_eq!(counts.conversations, 1, "{counts:?}");
        assert_eq!(counts.facts, 1, "{counts:?}");
        assert_eq!(counts.events, 2, "{counts:?}");
        assert_eq!(counts.traces, 1, "{counts:?}");

        let messages = store.messages(conv, 0).await.unwrap();
        assert_eq!(messages.len(), 3);
        for m in &messages {
            assert!(!mentions(&m.content), "{}", m.content);
        }
        assert_eq!(
            messages[0].content,
            "What did [redacted] order? Her phone is [redacted]."
        );
        assert_eq!(
            messages[1].content,
            "Customer gid://shopify/Customer/[redacted] placed 3 orders."
        );
        assert_eq!(messages[2].content, "Thanks!");
        let c = store.conversation(conv).await.unwrap().unwrap();
        assert_eq!(c.title.as_deref(), Some("About [redacted]"));
        let facts = store.facts(&user).await.unwrap();
        assert_eq!(facts.len(), 2);
        assert!(facts.iter().all(|f| !mentions(&f.text)));
        assert!(
            facts
                .iter()
                .any(|f| f.text == "Jane ([redacted]) is our best customer")
        );
        for e in store.events_for_user(&user, 100).await.unwrap() {
            assert!(!mentions(&e.data.to_string()), "{}", e.data);
        }
        for e in store
            .events_of_kind("customer_data_request", 100)
            .await
            .unwrap()
        {
            if e.user_id.is_none() {
                assert_eq!(e.data["email"], "[redacted]");
            }
        }
        let traces = store.traces(conv).await.unwrap();
        assert_eq!(traces[0].data["result"]["id"], "[redacted]");
        assert!(!mentions(&traces[0].data.to_string()));
        // The user's own data and tokens are untouched.
        let integration = store
            .integration_for_user(&user, "shopify")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            integration.access_token.as_ref().map(Secret::expose),
            Some("shpat_seed")
        );

        // The other shop keeps everything.
        let theirs = store.messages(other_conv, 0).await.unwrap();
        assert!(mentions(&theirs[0].content));
        assert!(
            store
                .facts(&other)
                .await
                .unwrap()
                .iter()
                .any(|f| mentions(&f.text))
        );

        // Redacting again changes nothing.
        let again = store
            .redact_customer("scrub.myshopify.com", &[EMAIL, PHONE, CUSTOMER_ID])
            .await
            .unwrap();
        assert_eq!(again.total(), 0, "{again:?}");
        // Unknown shop or nothing to look for: nothing happens.
        assert_eq!(
            store
                .redact_customer("nobody.myshopify.com", &[EMAIL])
                .await
                .unwrap()
                .total(),
            0
        );
        assert_eq!(
            store
                .redact_customer("other.myshopify.com", &["", " ", "ab"])
                .await
                .unwrap()
                .total(),
            0
        );
    }
);

contract!(redacted_facts_that_collide_are_merged, |store, url| {
    let (user, _) = store
        .get_or_create_user("merge.myshopify.com", None, None)
        .await
        .unwrap();
    let user = user.id;
    store
        .add_fact(&user, "VIP: [redacted]", None)
        .await
        .unwrap();
    store
        .add_fact(&user, "VIP: jane.doe@example.com", None)
        .await
        .unwrap();
    let counts = store
        .redact_customer("merge.myshopify.com", &[EMAIL])
        .await
        .unwrap();
    assert_eq!(counts.facts, 1);
    let facts = store.facts(&user).await.unwrap();
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].text, "VIP: [redacted]");
});

contract!(
    delete_shop_data_removes_the_shop_and_nothing_else,
    |store, url| {
        let (user, conv) = seed(&store, "gone.myshopify.com").await;
        let (other, other_conv) = seed(&store, "stays.myshopify.com").await;
        store
            .create_oauth_state(
                "pending-state",
                &OAuthState {
                    shop_domain: "gone.myshopify.com".into(),
                    conversation_id: None,
                    session_id: None,
                    created_at: Utc::now(),
                    expires_at: Utc::now() + Duration::minutes(10),
                },
            )
            .await
            .unwrap();
        store
            .log_event(
                None,
                None,
                "customer_data_request",
                json!({"shop": "gone.myshopify.com"}),
            )
            .await
            .unwrap();
        let (token, _) = store
            .create_session(Some(&user), Utc::now() + Duration::days(1))
            .await
            .unwrap();
        assert!(
            store
                .record_webhook(&webhook(Some("wh-1"), "shop/redact", "gone.myshopify.com"))
                .await
                .unwrap()
        );

        assert!(store.delete_shop_data("gone.myshopify.com").await.unwrap());

        assert!(
            store
                .user_by_shop("gone.myshopify.com")
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.user(&user).await.unwrap().is_none());
        assert!(store.conversation(conv).await.unwrap().is_none());
        assert!(store.messages(conv, 0).await.unwrap().is_empty());
        assert!(store.traces(conv).await.unwrap().is_empty());
        assert!(store.facts(&user).await.unwrap().is_empty());
        assert!(store.events_for_user(&user, 100).await.unwrap().is_empty());
        assert!(
            store
                .integration_for_shop("shopify", "gone.myshopify.com")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .session_by_token(token.expose())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .take_oauth_state("pending-state")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .events_of_kind("customer_data_request", 100)
                .await
                .unwrap()
                .iter()
                .all(|e| e.user_id.is_some() && e.user_id.as_ref() != Some(&user)),
            "the shop's user-less events are gone"
        );
        assert!(
            !store
                .record_webhook(&webhook(Some("wh-1"), "shop/redact", "gone.myshopify.com"))
                .await
                .unwrap(),
            "delivery ids are kept"
        );

        // The other shop is intact.
        assert!(store.user(&other).await.unwrap().is_some());
        assert_eq!(store.messages(other_conv, 0).await.unwrap().len(), 3);
        assert_eq!(store.facts(&other).await.unwrap().len(), 2);
        assert!(
            store
                .integration_for_shop("shopify", "stays.myshopify.com")
                .await
                .unwrap()
                .is_some()
        );

        // Deleting again (or an unknown shop) finds nothing.
        assert!(!store.delete_shop_data("gone.myshopify.com").await.unwrap());
        assert!(!store.delete_shop_data("never.myshopify.com").await.unwrap());
    }
);

contract!(
    uninstall_wipes_tokens_and_forget_webhook_allows_a_retry,
    |store, url| {
        let (user, _) = seed(&store, "bye.myshopify.com").await;
        assert!(
            store
                .set_integration_status(
                    "shopify",
                    "bye.myshopify.com",
                    IntegrationStatus::Uninstalled
                )
                .await
                .unwrap()
        );
        let i = store
            .integration_for_user(&user, "shopify")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(i.status, IntegrationStatus::Uninstalled);
        assert!(i.access_token.is_none() && i.refresh_token.is_none());

        assert!(
            store
                .record_webhook(&webhook(
                    Some("wh-2"),
                    "app/uninstalled",
                    "bye.myshopify.com"
                ))
                .await
                .unwrap()
        );
        assert!(
            !store
                .record_webhook(&webhook(
                    Some("wh-2"),
                    "app/uninstalled",
                    "bye.myshopify.com"
                ))
                .await
                .unwrap()
        );
        assert!(
            store
                .forget_webhook(&webhook(
                    Some("wh-2"),
                    "app/uninstalled",
                    "bye.myshopify.com"
                ))
                .await
                .unwrap()
        );
        assert!(
            !store
                .forget_webhook(&webhook(
                    Some("wh-2"),
                    "app/uninstalled",
                    "bye.myshopify.com"
                ))
                .await
                .unwrap()
        );
        assert!(
            store
                .record_webhook(&webhook(
                    Some("wh-2"),
                    "app/uninstalled",
                    "bye.myshopify.com"
                ))
                .await
                .unwrap()
        );
    }
);
