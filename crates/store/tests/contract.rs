//! The store contract: every test runs against SQLite and against
//! PostgreSQL. PostgreSQL comes from `TEST_DATABASE_URL` (an admin URL; each
//! test creates and drops its own database). Without it the PostgreSQL half
//! is skipped locally and fails in CI (`CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{Duration, Utc};
use hirecj_domain::{
    ConversationId, IntegrationStatus, MessageStatus, NewIntegration, NewMessage, OAuthState, Role,
    Secret, UserId,
};
use hirecj_store::{
    Cipher, Store, StoreError, StoreOptions, WEBHOOK_FUTURE_SKEW, WEBHOOK_REPLAY_WINDOW,
    WebhookDelivery,
};
use serde_json::json;

mod harness;

use harness::{with_postgres, with_sqlite};

contract!(migrations_are_tracked_and_idempotent, |store, url| {
    assert_eq!(store.schema_version().await.unwrap(), 12);
    assert!(store.migrate().await.unwrap().is_empty());
    store.ping().await.unwrap();
});

contract!(
    get_or_create_user_maps_one_shop_to_one_user,
    |store, url| {
        let (user, is_new) = store
            .get_or_create_user("cool-shop.myshopify.com", Some("owner@cool.example"), None)
            .await
            .unwrap();
        assert!(is_new);
        assert!(user.id.as_str().parse::<UserId>().is_ok());
        assert_eq!(user.email.as_deref(), Some("owner@cool.example"));

        let (again, is_new) = store
            .get_or_create_user(
                "cool-shop.myshopify.com",
                Some("other@x.example"),
                Some("Cool Shop"),
            )
            .await
            .unwrap();
        assert!(!is_new);
        assert_eq!(again.id, user.id);
        assert_eq!(
            again.email.as_deref(),
            Some("owner@cool.example"),
            "never overwritten"
        );
        assert_eq!(
            again.name.as_deref(),
            Some("Cool Shop"),
            "blanks are filled"
        );

        let (other, _) = store
            .get_or_create_user("other.myshopify.com", None, None)
            .await
            .unwrap();
        assert_ne!(other.id, user.id);
        assert_eq!(
            store
                .user_by_shop("cool-shop.myshopify.com")
                .await
                .unwrap()
                .unwrap()
                .id,
            user.id
        );
        assert!(store.user(&UserId::generate()).await.unwrap().is_none());
    }
);

contract!(
    concurrent_get_or_create_creates_exactly_one_user,
    |store, url| {
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .get_or_create_user("rush.myshopify.com", None, None)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut ids = std::collections::HashSet::new();
        let mut created = 0;
        for t in tasks {
            let (user, is_new) = t.await.unwrap();
            ids.insert(user.id);
            created += usize::from(is_new);
        }
        assert_eq!(created, 1);
        assert_eq!(ids.len(), 1);
    }
);

contract!(last_seen_moves_on_activity, |store, url| {
    let (user, _) = store
        .get_or_create_user("seen.myshopify.com", None, None)
        .await
        .unwrap();
    store.touch_user(&user.id).await.unwrap();
    let later = store.user(&user.id).await.unwrap().unwrap();
    assert!(later.last_seen_at >= user.last_seen_at);
    assert_eq!(later.created_at, user.created_at);
});

contract!(events_are_logged_per_user, |store, url| {
    let (user, _) = store
        .get_or_create_user("ev.myshopify.com", None, None)
        .await
        .unwrap();
    store
        .log_user_event(&user.id, "oauth_complete", json!({"first_time": true}))
        .await
        .unwrap();
    store
        .log_user_event(&user.id, "login", json!({}))
        .await
        .unwrap();
    let events = store.events_for_user(&user.id, 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, "oauth_complete");
    assert_eq!(events[0].data["first_time"], json!(true));
    assert_eq!(store.events_of_kind("login", 10).await.unwrap().len(), 1);
});

contract!(sessions_are_stored_hashed_and_revocable, |store, url| {
    let (user, _) = store
        .get_or_create_user("s.myshopify.com", None, None)
        .await
        .unwrap();
    let (token, session) = store
        .create_session(Some(&user.id), Utc::now() + Duration::days(30))
        .await
        .unwrap();
    assert_ne!(token.expose(), session.id, "only the hash is the id");
    let found = store
        .session_by_token(token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, session);
    assert!(
        store
            .session_by_token("not-a-token")
            .await
            .unwrap()
            .is_none()
    );

    store.revoke_session(&session.id).await.unwrap();
    assert!(
        store
            .session_by_token(token.expose())
            .await
            .unwrap()
            .is_none()
    );

    let (expired, _) = store
        .create_session(None, Utc::now() - Duration::seconds(1))
        .await
        .unwrap();
    assert!(
        store
            .session_by_token(expired.expose())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.purge_expired(Utc::now()).await.unwrap() >= 1);
});

contract!(sessions_extend_and_report_revocations, |store, url| {
    let before = Utc::now() - Duration::seconds(1);
    let (token, visitor) = store
        .create_session(None, Utc::now() + Duration::minutes(10))
        .await
        .unwrap();
    let later = Utc::now() + Duration::days(30);
    store.extend_session(&visitor.id, later).await.unwrap();
    let extended = store
        .session_by_token(token.expose())
        .await
        .unwrap()
        .unwrap();
    assert!(extended.expires_at > Utc::now() + Duration::days(29));
    assert!(
        store
            .sessions_revoked_since(before)
            .await
            .unwrap()
            .is_empty()
    );
    let (_, other) = store
        .create_session(None, Utc::now() + Duration::days(1))
        .await
        .unwrap();
    store.revoke_session(&visitor.id).await.unwrap();
    let revoked = store.sessions_revoked_since(before).await.unwrap();
    assert_eq!(revoked, vec![visitor.id.clone()]);
    assert!(!revoked.contains(&other.id));
    assert!(
        store
            .sessions_revoked_since(Utc::now() + Duration::seconds(1))
            .await
            .unwrap()
            .is_empty()
    );
    // A revoked session is not brought back by extending it.
    store.extend_session(&visitor.id, later).await.unwrap();
    assert!(
        store
            .session_by_token(token.expose())
            .await
            .unwrap()
            .is_none()
    );
});

contract!(oauth_states_are_single_use_and_expire, |store, url| {
    let conversation = ConversationId::generate();
    let pending = OAuthState {
        shop_domain: "a.myshopify.com".into(),
        conversation_id: Some(conversation),
        session_id: Some("sess".into()),
        created_at: Utc::now(),
        expires_at: Utc::now() + Duration::minutes(10),
    };
    store.create_oauth_state("state-1", &pending).await.unwrap();
    let taken = store.take_oauth_state("state-1").await.unwrap().unwrap();
    assert_eq!(taken.shop_domain, "a.myshopify.com");
    assert_eq!(taken.conversation_id, Some(conversation));
    assert_eq!(taken.session_id.as_deref(), Some("sess"));
    assert!(
        store.take_oauth_state("state-1").await.unwrap().is_none(),
        "replay"
    );
    assert!(
        store
            .take_oauth_state("never-issued")
            .await
            .unwrap()
            .is_none()
    );

    let stale = OAuthState {
        expires_at: Utc::now() - Duration::seconds(1),
        ..pending
    };
    store.create_oauth_state("state-2", &stale).await.unwrap();
    assert!(
        store.take_oauth_state("state-2").await.unwrap().is_none(),
        "expired"
    );
});

contract!(replayed_state_wins_once_under_concurrency, |store, url| {
    let pending = OAuthState {
        shop_domain: "race.myshopify.com".into(),
        conversation_id: None,
        session_id: None,
        created_at: Utc::now(),
        expires_at: Utc::now() + Duration::minutes(10),
    };
    store.create_oauth_state("racy", &pending).await.unwrap();
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_oauth_state("racy").await.unwrap().is_some() })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
});

contract!(messages_are_numbered_per_conversation, |store, url| {
    let (user, _) = store
        .get_or_create_user("m.myshopify.com", None, None)
        .await
        .unwrap();
    let id = ConversationId::generate();
    let conversation = store
        .create_conversation(id, Some(&user.id), None, "ad_hoc_support")
        .await
        .unwrap();
    assert_eq!(conversation.last_seq, 0);
    assert_eq!(conversation.workflow, "ad_hoc_support");

    let (first, _) = store
        .append_message(id, &NewMessage::new(Role::Cj, "Hi, I'm CJ."))
        .await
        .unwrap();
    let mut question = NewMessage::new(Role::Merchant, "How many orders?");
    question.client_id = Some("c-1".into());
    let (second, inserted) = store.append_message(id, &question).await.unwrap();
    assert!(inserted);
    let (resent, inserted) = store.append_message(id, &question).await.unwrap();
    assert!(
        !inserted,
        "a resend with the same client id is not stored twice"
    );
    assert_eq!(resent, second);
    let mut answer = NewMessage::new(Role::Cj, "You had 12 orders.");
    answer.ui_elements = json!([{"id": "x", "type": "oauth_button", "provider": "shopify"}]);
    let (third, _) = store.append_message(id, &answer).await.unwrap();

    assert_eq!((first.seq, second.seq, third.seq), (1, 2, 3));
    let all = store.messages(id, 0).await.unwrap();
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(all[2].ui_elements[0]["provider"], "shopify");
    let after = store.messages(id, 1).await.unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].client_id.as_deref(), Some("c-1"));

    store
        .set_message_status(id, 3, MessageStatus::Stopped)
        .await
        .unwrap();
    assert_eq!(
        store.messages(id, 2).await.unwrap()[0].status,
        MessageStatus::Stopped
    );
    assert!(matches!(
        store
            .set_message_status(id, 99, MessageStatus::Stopped)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .append_message(ConversationId::generate(), &NewMessage::new(Role::Cj, "x"))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.conversation(id).await.unwrap().unwrap().last_seq, 3);
});

contract!(
    concurrent_appends_get_distinct_contiguous_numbers,
    |store, url| {
        let id = ConversationId::generate();
        store
            .create_conversation(id, None, Some("sess"), "shopify_onboarding")
            .await
            .unwrap();
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut m = NewMessage::new(Role::Merchant, format!("message {i}"));
                    m.client_id = Some(format!("c-{i}"));
                    store.append_message(id, &m).await.unwrap().0.seq
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        seqs.sort();
        assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    }
);

contract!(
    conversations_change_workflow_owner_state_and_end,
    |store, url| {
        let id = ConversationId::generate();
        let c = store
            .create_conversation(id, None, Some("visitor"), "shopify_onboarding")
            .await
            .unwrap();
        assert_eq!(c.session_id.as_deref(), Some("visitor"));
        assert!(c.user_id.is_none());
        let (user, _) = store
            .get_or_create_user("w.myshopify.com", None, None)
            .await
            .unwrap();
        store.set_conversation_user(id, &user.id).await.unwrap();
        store
            .set_conversation_workflow(id, "shopify_post_auth")
            .await
            .unwrap();
        store
            .set_conversation_state(id, &json!({"initial_action_done": true}))
            .await
            .unwrap();
        store
            .set_conversation_title(id, "Store connected")
            .await
            .unwrap();
        let c = store.conversation(id).await.unwrap().unwrap();
        assert_eq!(c.user_id, Some(user.id.clone()));
        assert_eq!(c.workflow, "shopify_post_auth");
        assert_eq!(c.state["initial_action_done"], json!(true));
        assert_eq!(c.title.as_deref(), Some("Store connected"));
        assert!(c.ended_at.is_none());

        store.end_conversation(id).await.unwrap();
        let ended = store
            .conversation(id)
            .await
            .unwrap()
            .unwrap()
            .ended_at
            .unwrap();
        store.end_conversation(id).await.unwrap();
        assert_eq!(
            store.conversation(id).await.unwrap().unwrap().ended_at,
            Some(ended)
        );
        assert!(matches!(
            store
                .set_conversation_workflow(ConversationId::generate(), "x")
                .await,
            Err(StoreError::NotFound(_))
        ));

        let idle = ConversationId::generate();
        store
            .create_conversation(idle, None, None, "ad_hoc_support")
            .await
            .unwrap();
        assert_eq!(
            store
                .end_idle_conversations(Utc::now() - Duration::hours(1))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .end_idle_conversations(Utc::now() + Duration::seconds(1))
                .await
                .unwrap(),
            1
        );
        assert!(
            store
                .conversation(idle)
                .await
                .unwrap()
                .unwrap()
                .ended_at
                .is_some()
        );
    }
);

contract!(
    history_is_paginated_newest_first_with_counts,
    |store, url| {
        let (user, _) = store
            .get_or_create_user("h.myshopify.com", None, None)
            .await
            .unwrap();
        let (stranger, _) = store
            .get_or_create_user("x.myshopify.com", None, None)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..5 {
            let id = ConversationId::generate();
            store
                .create_conversation(id, Some(&user.id), None, "ad_hoc_support")
                .await
                .unwrap();
            for j in 0..i {
                store
                    .append_message(id, &NewMessage::new(Role::Merchant, format!("{i}.{j}")))
                    .await
                    .unwrap();
            }
            ids.push(id);
        }
        store
            .create_conversation(
                ConversationId::generate(),
                Some(&stranger.id),
                None,
                "ad_hoc_support",
            )
            .await
            .unwrap();

        let page = store.conversations_for_user(&user.id, 2, 0).await.unwrap();
        assert_eq!(page.total, 5);
        assert_eq!(
            page.items.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![ids[4], ids[3]]
        );
        assert_eq!(page.items[0].message_count, 4);
        let last = store.conversations_for_user(&user.id, 2, 4).await.unwrap();
        assert_eq!(last.items.len(), 1);
        assert_eq!(last.items[0].id, ids[0]);
        assert_eq!(last.items[0].message_count, 0);

        let stats = store.profile_stats(&user.id).await.unwrap();
        assert_eq!(stats.total_conversations, 5);
        assert_eq!(stats.total_messages, 10);
        assert!(stats.first_conversation_at <= stats.last_conversation_at);
        let none = store.profile_stats(&UserId::generate()).await.unwrap();
        assert_eq!(none.total_conversations, 0);
        assert!(none.first_conversation_at.is_none());
    }
);

contract!(
    facts_are_remembered_once_and_deleted_by_owner_only,
    |store, url| {
        let (user, _) = store
            .get_or_create_user("f.myshopify.com", None, None)
            .await
            .unwrap();
        let (other, _) = store
            .get_or_create_user("g.myshopify.com", None, None)
            .await
            .unwrap();
        let conv = ConversationId::generate();
        store
            .create_conversation(conv, Some(&user.id), None, "ad_hoc_support")
            .await
            .unwrap();
        let fact = store
            .add_fact(&user.id, "We sell handmade candles.", Some(conv))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fact.source_conversation_id, Some(conv));
        assert!(
            store
                .add_fact(&user.id, "  we sell HANDMADE   candles ", None)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .add_fact(&user.id, "  ...  ", None)
                .await
                .unwrap()
                .is_none()
        );
        store
            .add_fact(&user.id, "Our busiest month is December.", None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.facts(&user.id).await.unwrap().len(), 2);

        assert!(
            !store.delete_fact(&other.id, fact.id).await.unwrap(),
            "not the owner"
        );
        assert!(store.delete_fact(&user.id, fact.id).await.unwrap());
        assert!(!store.delete_fact(&user.id, fact.id).await.unwrap());
        assert_eq!(store.facts(&user.id).await.unwrap().len(), 1);
    }
);

contract!(integration_tokens_are_encrypted_at_rest, |store, url| {
    let (user, _) = store
        .get_or_create_user("t.myshopify.com", None, None)
        .await
        .unwrap();
    let new = NewIntegration {
        user_id: user.id.clone(),
        provider: "shopify".into(),
        shop_domain: "t.myshopify.com".into(),
        access_token: Secret::new("shpat_plaintext_token"),
        refresh_token: Some(Secret::new("shprt_refresh")),
        scopes: "read_orders".into(),
        token_expires_at: Some(Utc::now() + Duration::hours(1)),
        refresh_expires_at: None,
    };
    let stored = store.upsert_integration(&new).await.unwrap();
    assert_eq!(stored.status, IntegrationStatus::Active);
    assert_eq!(
        stored.access_token.as_ref().unwrap().expose(),
        "shpat_plaintext_token"
    );
    assert_eq!(
        store
            .integration_for_user(&user.id, "shopify")
            .await
            .unwrap()
            .unwrap()
            .shop_domain,
        "t.myshopify.com"
    );

    // The same database read with another key cannot see the token: it is
    // not stored in plain text.
    let stranger = Store::connect(
        &url,
        Cipher::from_secret_key(b"some other key"),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    assert!(matches!(
        stranger
            .integration_for_shop("shopify", "t.myshopify.com")
            .await,
        Err(StoreError::Decrypt)
    ));
    stranger.close().await;

    assert!(
        store
            .set_integration_status(
                "shopify",
                "t.myshopify.com",
                IntegrationStatus::NeedsReconnect
            )
            .await
            .unwrap()
    );
    let flagged = store
        .integration_for_shop("shopify", "t.myshopify.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flagged.status, IntegrationStatus::NeedsReconnect);
    assert!(flagged.access_token.is_some());

    store
        .set_integration_status("shopify", "t.myshopify.com", IntegrationStatus::Uninstalled)
        .await
        .unwrap();
    let gone = store
        .integration_for_shop("shopify", "t.myshopify.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.status, IntegrationStatus::Uninstalled);
    assert!(gone.access_token.is_none() && gone.refresh_token.is_none());
    assert!(
        !store
            .set_integration_status("shopify", "nope.myshopify.com", IntegrationStatus::Active)
            .await
            .unwrap()
    );

    let reinstalled = store.upsert_integration(&new).await.unwrap();
    assert_eq!(reinstalled.status, IntegrationStatus::Active);
});

fn delivery<'a>(
    id: Option<&'a str>,
    topic: &'a str,
    shop: &'a str,
    body: &'a [u8],
) -> WebhookDelivery<'a> {
    WebhookDelivery {
        webhook_id: id,
        topic,
        shop,
        body,
    }
}

contract!(webhook_deliveries_are_processed_once, |store, url| {
    let shop = "a.myshopify.com";
    let body = br#"{"myshopify_domain":"a.myshopify.com"}"#;
    let first = delivery(Some("wh-1"), "app/uninstalled", shop, body);
    assert!(store.record_webhook(&first).await.unwrap());
    assert!(
        !store.record_webhook(&first).await.unwrap(),
        "Shopify's retry of one delivery"
    );
    // A different delivery (another id, another body) is new.
    let other = delivery(Some("wh-2"), "app/uninstalled", shop, b"{}");
    assert!(store.record_webhook(&other).await.unwrap());
});

contract!(
    a_replayed_body_is_a_duplicate_whatever_its_id,
    |store, url| {
        let shop = "a.myshopify.com";
        let body = br#"{"shop_id":1,"shop_domain":"a.myshopify.com"}"#;
        assert!(
            store
                .record_webhook(&delivery(Some("wh-1"), "shop/redact", shop, body))
                .await
                .unwrap()
        );
        // The same signed body under a new id, or under none.
        for id in [Some("wh-new"), None] {
            assert!(
                !store
                    .record_webhook(&delivery(id, "shop/redact", shop, body))
                    .await
                    .unwrap(),
                "{id:?}"
            );
        }
        // The refused replay left its new id unrecorded: the id alone is new.
        assert!(
            store
                .record_webhook(&delivery(Some("wh-new"), "shop/redact", shop, b"{}"))
                .await
                .unwrap()
        );
        // The body is remembered per shop and topic.
        assert!(
            store
                .record_webhook(&delivery(None, "customers/redact", shop, body))
                .await
                .unwrap()
        );
        assert!(
            store
                .record_webhook(&delivery(None, "shop/redact", "b.myshopify.com", body))
                .await
                .unwrap()
        );
        // Without an id the body alone deduplicates.
        let body = br#"{"customer":{"id":7}}"#;
        let no_id = delivery(None, "customers/redact", shop, body);
        assert!(store.record_webhook(&no_id).await.unwrap());
        assert!(!store.record_webhook(&no_id).await.unwrap());
    }
);

contract!(
    forgetting_a_failed_delivery_lets_its_retry_through,
    |store, url| {
        let body = br#"{"shop_domain":"a.myshopify.com"}"#;
        let d = delivery(Some("wh-9"), "shop/redact", "a.myshopify.com", body);
        assert!(store.record_webhook(&d).await.unwrap());
        assert!(store.forget_webhook(&d).await.unwrap());
        assert!(!store.forget_webhook(&d).await.unwrap());
        assert!(store.record_webhook(&d).await.unwrap(), "the retry is new");
        assert!(!store.record_webhook(&d).await.unwrap());
        // Forgetting a delivery without an id forgets its body.
        let d = delivery(None, "shop/redact", "b.myshopify.com", body);
        assert!(store.record_webhook(&d).await.unwrap());
        assert!(store.forget_webhook(&d).await.unwrap());
        assert!(store.record_webhook(&d).await.unwrap());
    }
);

contract!(webhook_records_outlive_the_replay_window, |store, url| {
    let body = br#"{"shop_domain":"a.myshopify.com"}"#;
    let d = delivery(Some("wh-old"), "shop/redact", "a.myshopify.com", body);
    assert!(store.record_webhook(&d).await.unwrap());
    let window = Duration::from_std(WEBHOOK_REPLAY_WINDOW).unwrap();
    let skew = Duration::from_std(WEBHOOK_FUTURE_SKEW).unwrap();
    // Purging as of any time within the window (plus skew) keeps the record.
    store
        .purge_expired(Utc::now() + window + skew - Duration::minutes(1))
        .await
        .unwrap();
    assert!(!store.record_webhook(&d).await.unwrap(), "still remembered");
    let same_id = delivery(Some("wh-old"), "app/uninstalled", "b.myshopify.com", b"{}");
    assert!(!store.record_webhook(&same_id).await.unwrap(), "the id too");
    // Once the window has passed, both the id and the body are purged.
    assert_eq!(
        store
            .purge_expired(Utc::now() + window + skew + Duration::minutes(1))
            .await
            .unwrap(),
        2
    );
    assert!(store.record_webhook(&d).await.unwrap());
});

contract!(turn_traces_belong_to_their_conversation, |store, url| {
    let a = ConversationId::generate();
    let b = ConversationId::generate();
    store
        .create_conversation(a, None, None, "ad_hoc_support")
        .await
        .unwrap();
    store
        .create_conversation(b, None, None, "ad_hoc_support")
        .await
        .unwrap();
    store
        .save_trace(a, 1, &json!({"model": "offline"}))
        .await
        .unwrap();
    store
        .save_trace(a, 2, &json!({"model": "offline", "tools": []}))
        .await
        .unwrap();
    store
        .save_trace(a, 2, &json!({"model": "replaced"}))
        .await
        .unwrap();
    store
        .save_trace(b, 1, &json!({"model": "other"}))
        .await
        .unwrap();
    let traces = store.traces(a).await.unwrap();
    assert_eq!(traces.len(), 2);
    assert_eq!(traces[1].data["model"], "replaced");
    assert_eq!(store.traces(b).await.unwrap().len(), 1);
    let second = store.traces_of(a, Some(2)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0].turn, &second[0].data["model"]),
        (2, &json!("replaced"))
    );
    assert!(store.traces_of(a, Some(9)).await.unwrap().is_empty());

    // The retention window: nothing stored before an hour ago goes; then
    // everything before now, oldest first, `limit` at a time.
    let hour_ago = Utc::now() - Duration::hours(1);
    assert_eq!(store.purge_traces(hour_ago, 10).await.unwrap(), 0);
    let later = Utc::now() + Duration::seconds(1);
    assert_eq!(store.purge_traces(later, 2).await.unwrap(), 2);
    assert_eq!(store.purge_traces(later, 2).await.unwrap(), 1);
    assert!(store.traces(a).await.unwrap().is_empty());
    assert!(store.traces(b).await.unwrap().is_empty());
});

contract!(
    a_reply_is_stored_with_its_trace_title_workflow_and_the_merchant_seen,
    |store, url| {
        use hirecj_store::{ReplyWrites, TurnLease};
        let (user, _) = store
            .get_or_create_user("reply.myshopify.com", None, None)
            .await
            .unwrap();
        let id = ConversationId::generate();
        store
            .create_conversation(id, Some(&user.id), None, "shopify_onboarding")
            .await
            .unwrap();
        let soon = Utc::now() + Duration::seconds(30);
        let mut question = NewMessage::new(Role::Merchant, "How many orders?");
        question.client_id = Some("q-1".into());
        let claim = TurnLease::Claim {
            owner: "a",
            until: soon,
        };
        store
            .append_message_in_turn(id, &question, claim)
            .await
            .unwrap();

        let trace = json!({"model": "offline", "tool_calls": []});
        let state = json!({"step": 2});
        let mut answer = NewMessage::new(Role::Cj, "You had **12** orders.");
        answer.ui_elements = json!([{"id": "oauth_button_1", "type": "oauth_button"}]);
        let writes = ReplyWrites {
            trace: Some(&trace),
            title: Some("Orders this week"),
            workflow: Some(("ad_hoc_support", &state)),
            seen: Some(&user.id),
        };
        let reply = store.append_reply(id, &answer, "a", writes).await.unwrap();
        assert_eq!(
            (
                reply.seq,
                reply.role,
                reply.content.as_str(),
                &reply.ui_elements
            ),
            (2, Role::Cj, "You had **12** orders.", &answer.ui_elements)
        );
        assert_eq!(
            store.messages(id, 0).await.unwrap(),
            vec![
                store
                    .message_by_client_id(id, "q-1")
                    .await
                    .unwrap()
                    .unwrap(),
                reply.clone()
            ]
        );
        let conversation = store.conversation(id).await.unwrap().unwrap();
        assert_eq!(
            (
                conversation.last_seq,
                conversation.title.as_deref(),
                conversation.workflow.as_str(),
                &conversation.state
            ),
            (2, Some("Orders this week"), "ad_hoc_support", &state)
        );
        let traces = store.traces_of(id, Some(2)).await.unwrap();
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].data, trace);
        let seen = store.user(&user.id).await.unwrap().unwrap();
        assert!(seen.last_seen_at >= user.last_seen_at);
        assert!(
            !store.turn_claimed_elsewhere(id, "b").await.unwrap(),
            "the reply released the turn"
        );

        // A title is kept once given; the next reply's writes only what it has.
        let mut again = NewMessage::new(Role::Merchant, "And sales?");
        again.client_id = Some("q-2".into());
        store
            .append_message_in_turn(id, &again, claim)
            .await
            .unwrap();
        let writes = ReplyWrites {
            title: Some("Another title"),
            ..ReplyWrites::default()
        };
        let second = store
            .append_reply(id, &NewMessage::new(Role::Cj, "$1,200."), "a", writes)
            .await
            .unwrap();
        assert_eq!(second.seq, 4);
        let conversation = store.conversation(id).await.unwrap().unwrap();
        assert_eq!(
            (conversation.title.as_deref(), &conversation.state),
            (Some("Orders this week"), &state)
        );
        assert!(store.traces_of(id, Some(4)).await.unwrap().is_empty());

        // A reply to a conversation that is gone stores nothing at all.
        let gone = ConversationId::generate();
        let writes = ReplyWrites {
            trace: Some(&trace),
            seen: Some(&user.id),
            ..ReplyWrites::default()
        };
        let missing = store
            .append_reply(gone, &NewMessage::new(Role::Cj, "Hello?"), "a", writes)
            .await;
        assert!(
            matches!(missing, Err(StoreError::NotFound(_))),
            "{missing:?}"
        );
        assert!(store.traces(gone).await.unwrap().is_empty());

        // The store still takes writes: nothing was left half done.
        store
            .append_message(id, &NewMessage::new(Role::System, "still here"))
            .await
            .unwrap();
    }
);

contract!(
    a_turn_reads_its_conversation_and_history_in_one_view,
    |store, url| {
        let id = ConversationId::generate();
        store
            .create_conversation(id, None, None, "ad_hoc_support")
            .await
            .unwrap();
        let (conversation, history) = store.conversation_and_history(id).await.unwrap().unwrap();
        assert_eq!((conversation.id, conversation.last_seq), (id, 0));
        assert!(history.is_empty());

        for text in ["one", "two", "three", "four"] {
            store
                .append_message(id, &NewMessage::new(Role::Merchant, text))
                .await
                .unwrap();
        }
        store
            .set_conversation_summary(id, 0, "The merchant counted to two.", 2)
            .await
            .unwrap();
        let (conversation, history) = store.conversation_and_history(id).await.unwrap().unwrap();
        assert_eq!(conversation, store.conversation(id).await.unwrap().unwrap());
        assert_eq!(history, store.messages(id, 2).await.unwrap());
        assert_eq!(
            history
                .iter()
                .map(|m| (m.seq, m.content.as_str()))
                .collect::<Vec<_>>(),
            vec![(3, "three"), (4, "four")]
        );

        assert!(
            store
                .conversation_and_history(ConversationId::generate())
                .await
                .unwrap()
                .is_none()
        );
    }
);

contract!(a_turn_is_claimed_by_one_owner_at_a_time, |store, url| {
    use hirecj_store::TurnLease;
    let id = ConversationId::generate();
    store
        .create_conversation(id, None, None, "ad_hoc_support")
        .await
        .unwrap();
    let soon = Utc::now() + Duration::seconds(30);

    // A merchant message claims the turn that answers it.
    let mut question = NewMessage::new(Role::Merchant, "How many orders?");
    question.client_id = Some("q-1".into());
    let claim_a = TurnLease::Claim {
        owner: "a",
        until: soon,
    };
    let (first, _) = store
        .append_message_in_turn(id, &question, claim_a)
        .await
        .unwrap();
    assert!(store.claim_turn(id, "a", soon).await.unwrap(), "its own");
    assert!(!store.claim_turn(id, "b", soon).await.unwrap());
    assert!(store.turn_claimed_elsewhere(id, "b").await.unwrap());
    assert!(!store.turn_claimed_elsewhere(id, "a").await.unwrap());

    // Another owner's message is refused and nothing is stored; a resend
    // of the stored one is its original.
    let mut other = NewMessage::new(Role::Merchant, "And sales?");
    other.client_id = Some("q-2".into());
    let claim_b = TurnLease::Claim {
        owner: "b",
        until: soon,
    };
    let refused = store.append_message_in_turn(id, &other, claim_b).await;
    assert!(
        matches!(refused, Err(StoreError::TurnClaimed)),
        "{refused:?}"
    );
    let (resent, new) = store
        .append_message_in_turn(id, &question, claim_b)
        .await
        .unwrap();
    assert_eq!((resent, new), (first, false));
    assert_eq!(store.conversation(id).await.unwrap().unwrap().last_seq, 1);

    // Renewal is the owner's; the reply releases the claim.
    assert!(store.renew_turn(id, "a", soon).await.unwrap());
    assert!(!store.renew_turn(id, "b", soon).await.unwrap());
    let release_b = TurnLease::Release { owner: "b" };
    store
        .append_message_in_turn(id, &NewMessage::new(Role::Cj, "Not mine."), release_b)
        .await
        .unwrap();
    assert!(
        store.turn_claimed_elsewhere(id, "b").await.unwrap(),
        "not b's to release"
    );
    let release_a = TurnLease::Release { owner: "a" };
    store
        .append_message_in_turn(id, &NewMessage::new(Role::Cj, "12 orders."), release_a)
        .await
        .unwrap();
    assert!(!store.turn_claimed_elsewhere(id, "a").await.unwrap());
    let (_, new) = store
        .append_message_in_turn(id, &other, claim_b)
        .await
        .unwrap();
    assert!(new, "free again: b's message claims it");

    // A lapsed claim is anyone's; release is the owner's alone.
    let past = Utc::now() - Duration::seconds(1);
    assert!(store.claim_turn(id, "b", past).await.unwrap());
    assert!(!store.turn_claimed_elsewhere(id, "a").await.unwrap());
    assert!(store.claim_turn(id, "a", soon).await.unwrap());
    store.release_turn(id, "b").await.unwrap();
    assert!(store.turn_claimed_elsewhere(id, "b").await.unwrap());
    store.release_turn(id, "a").await.unwrap();
    assert!(!store.turn_claimed_elsewhere(id, "b").await.unwrap());

    // No conversation: not found, not claimed.
    let missing = store
        .append_message_in_turn(ConversationId::generate(), &question, claim_a)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    let _ = url;
});

contract!(
    a_periodic_job_runs_on_one_replica_at_a_time,
    |store, url| {
        let soon = Utc::now() + Duration::seconds(150);
        assert!(store.claim_job("housekeeping", "a", soon).await.unwrap());
        assert!(!store.claim_job("housekeeping", "b", soon).await.unwrap());
        assert!(
            store.claim_job("housekeeping", "a", soon).await.unwrap(),
            "renewed"
        );
        assert!(
            store.claim_job("other-job", "b", soon).await.unwrap(),
            "per job"
        );
        // a's lease lapses (it died): b takes over, and a is then refused.
        let past = Utc::now() - Duration::seconds(1);
        assert!(store.claim_job("housekeeping", "a", past).await.unwrap());
        assert!(store.claim_job("housekeeping", "b", soon).await.unwrap());
        assert!(!store.claim_job("housekeeping", "a", soon).await.unwrap());
        let _ = url;
    }
);
