//! The chat WebSocket over real sockets: every frame type, resume without
//! loss or duplicates, one turn at a time, Stop, and malformed frames.
//! CJ is either the offline brain or a mock OpenAI-compatible server whose
//! stream the test holds open, so a turn can be caught in the middle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{WAIT, start_app, start_with_mock_model};

#[tokio::test]
async fn a_visitor_is_greeted_once_and_resumes_without_duplicates() {
    let app = start_app(&[]).await;
    let cookie = app.visitor_cookie().await;
    let mut ws = app.chat(&cookie).await;

    ws.send_json(json!({"type": "start_conversation"}))
        .await
        .unwrap();
    let started = ws.expect("conversation_started").await.unwrap();
    assert_eq!(started["workflow"], "shopify_onboarding");
    assert_eq!(started["protocol"], 1);
    let conversation_id = started["conversation_id"].as_str().unwrap().to_owned();

    let greeting = ws.expect("cj_message").await.unwrap();
    assert_eq!(greeting["role"], "cj");
    assert!(
        greeting["html"]
            .as_str()
            .unwrap()
            .contains("data-ui-element"),
        "{greeting}"
    );
    assert_eq!(greeting["ui_elements"][0]["type"], "oauth_button");
    let greeting_seq = greeting["seq"].as_i64().unwrap();

    // Reconnect from scratch: the greeting comes from history, exactly once,
    // and the first action does not run again.
    drop(ws);
    let mut ws = app.chat(&cookie).await;
    ws.send_json(
        json!({"type": "start_conversation", "conversation_id": conversation_id, "last_seq": 0}),
    )
    .await
    .unwrap();
    let resumed = ws.expect("conversation_started").await.unwrap();
    let messages = resumed["messages"].as_array().unwrap();
    assert_eq!(messages.iter().filter(|m| m["role"] == "cj").count(), 1);
    assert_eq!(resumed["last_seq"].as_i64().unwrap(), greeting_seq);
    ws.send_json(json!({"type": "ping", "nonce": "n1"}))
        .await
        .unwrap();
    let pong = ws.expect("pong").await.unwrap();
    assert_eq!(
        pong["nonce"], "n1",
        "no second greeting arrived before the pong"
    );

    // Resuming from the newest seq sends nothing old.
    let mut ws2 = app.chat(&cookie).await;
    ws2.send_json(json!({"type": "start_conversation", "conversation_id": conversation_id, "last_seq": greeting_seq})).await.unwrap();
    let resumed = ws2.expect("conversation_started").await.unwrap();
    assert_eq!(resumed["messages"].as_array().unwrap().len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn messages_are_acknowledged_then_answered_and_resends_are_idempotent() {
    let app = start_app(&[]).await;
    let cookie = app.visitor_cookie().await;
    let mut ws = app.chat(&cookie).await;
    ws.send_json(json!({"type": "start_conversation"}))
        .await
        .unwrap();
    let started = ws.expect("conversation_started").await.unwrap();
    let id = started["conversation_id"].as_str().unwrap().to_owned();
    ws.expect("cj_message").await.unwrap();

    ws.send_json(json!({"type": "message", "text": "What can you do for me?", "client_id": "c-1"}))
        .await
        .unwrap();
    let ack = ws.expect("message_ack").await.unwrap();
    assert_eq!(ack["client_id"], "c-1");
    let seq = ack["seq"].as_i64().unwrap();
    let (seen, reply) = ws.collect_until("cj_message").await.unwrap();
    assert!(
        seen.iter().any(|f| f["type"] == "cj_delta"),
        "the reply streams: {seen:?}"
    );
    assert!(reply["seq"].as_i64().unwrap() > seq);
    let streamed: String = seen
        .iter()
        .filter(|f| f["type"] == "cj_delta")
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        streamed,
        reply["content"].as_str().unwrap(),
        "deltas add up to the message"
    );

    // The same client id again: acknowledged with the same seq, stored once, not answered twice.
    ws.send_json(json!({"type": "message", "text": "What can you do for me?", "client_id": "c-1"}))
        .await
        .unwrap();
    let again = ws.expect("message_ack").await.unwrap();
    assert_eq!(again["seq"].as_i64().unwrap(), seq);
    ws.send_json(json!({"type": "ping"})).await.unwrap();
    ws.expect("pong").await.unwrap();

    let stored = app.messages(&id).await;
    assert_eq!(
        stored
            .iter()
            .filter(|m| m.client_id.as_deref() == Some("c-1"))
            .count(),
        1
    );
    assert_eq!(
        stored
            .iter()
            .filter(|m| m.role == hirecj_domain::Role::Cj)
            .count(),
        2
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_connection_stays_usable() {
    let app = start_app(&[]).await;
    let cookie = app.visitor_cookie().await;
    let mut ws = app.chat(&cookie).await;

    ws.send_text("this is not json").await.unwrap();
    assert_eq!(ws.expect("error").await.unwrap()["code"], "bad_frame");
    ws.send_json(json!({"type": "warp_drive"})).await.unwrap();
    assert_eq!(ws.expect("error").await.unwrap()["code"], "bad_frame");
    ws.send_json(json!({"type": "message", "text": "hi", "client_id": "x"}))
        .await
        .unwrap();
    assert_eq!(ws.expect("error").await.unwrap()["code"], "no_conversation");

    ws.send_json(json!({"type": "start_conversation"}))
        .await
        .unwrap();
    ws.expect("conversation_started").await.unwrap();
    ws.expect("cj_message").await.unwrap();
    ws.send_json(json!({"type": "message", "text": "   ", "client_id": "e"}))
        .await
        .unwrap();
    assert_eq!(ws.expect("error").await.unwrap()["code"], "invalid_message");
    ws.send_json(json!({"type": "message", "text": "x".repeat(8001), "client_id": "long"}))
        .await
        .unwrap();
    let e = ws.expect("error").await.unwrap();
    assert_eq!(e["code"], "invalid_message");
    assert!(e["message"].as_str().unwrap().contains("8000"), "{e}");
    ws.send_json(json!({"type": "start_conversation", "workflow": "no_such_workflow"}))
        .await
        .unwrap();
    assert_eq!(
        ws.expect("error").await.unwrap()["code"],
        "unknown_workflow"
    );
    // A workflow that needs what a visitor lacks and names no way on
    // (crisis response needs a signed-in merchant) is refused.
    ws.send_json(json!({"type": "start_conversation", "workflow": "crisis_response"}))
        .await
        .unwrap();
    assert_eq!(
        ws.expect("error").await.unwrap()["code"],
        "requirement_not_met"
    );
    ws.send_json(json!({"type": "start_conversation", "conversation_id": uuid::Uuid::now_v7()}))
        .await
        .unwrap();
    assert_eq!(ws.expect("error").await.unwrap()["code"], "not_found");
    ws.send_json(json!({"type": "ping"})).await.unwrap();
    ws.expect("pong").await.unwrap();
    // One that names where to go without a store (`not_connected` in its
    // YAML) goes there, as the evals do: the daily briefing sends a
    // visitor to onboarding.
    ws.send_json(json!({"type": "start_conversation", "workflow": "daily_briefing"}))
        .await
        .unwrap();
    let started = ws.expect("conversation_started").await.unwrap();
    assert_eq!(started["workflow"], "shopify_onboarding", "{started}");
    app.stop().await;
}

#[tokio::test]
async fn a_conversation_belongs_to_the_session_that_started_it() {
    let app = start_app(&[]).await;
    let owner = app.visitor_cookie().await;
    let stranger = app.visitor_cookie().await;
    let mut ws = app.chat(&owner).await;
    ws.send_json(json!({"type": "start_conversation"}))
        .await
        .unwrap();
    let id = ws.expect("conversation_started").await.unwrap()["conversation_id"].clone();

    let mut other = app.chat(&stranger).await;
    other
        .send_json(json!({"type": "start_conversation", "conversation_id": id, "last_seq": 0}))
        .await
        .unwrap();
    assert_eq!(other.expect("error").await.unwrap()["code"], "forbidden");

    assert_eq!(
        app.chat_refusal("", None).await,
        Some(401),
        "no session, no socket"
    );
    assert_eq!(
        app.chat_refusal(&owner, Some("http://evil.example")).await,
        Some(403),
        "a foreign origin is refused"
    );
    app.stop().await;
}

#[tokio::test]
async fn debug_workflow_switch_and_end() {
    let app = start_app(&[("HIRECJ_DEBUG", "true")]).await;
    let cookie = app.visitor_cookie().await;
    let mut ws = app.chat(&cookie).await;
    ws.send_json(json!({"type": "start_conversation"}))
        .await
        .unwrap();
    let started = ws.expect("conversation_started").await.unwrap();
    assert_eq!(started["debug"], true, "the operator turned debug on");
    let id = started["conversation_id"].clone();
    ws.expect("cj_message").await.unwrap();

    ws.send_json(json!({"type": "debug_request"}))
        .await
        .unwrap();
    let debug = ws.expect("debug_response").await.unwrap();
    let trace = &debug["traces"][0]["trace"];
    assert_eq!(trace["workflow"], "shopify_onboarding", "{debug}");
    assert_eq!(trace["provider"], "offline");
    assert!(trace["total_ms"].is_u64(), "{trace}");

    ws.send_json(json!({"type": "switch_workflow", "workflow": "ad_hoc_support"}))
        .await
        .unwrap();
    let updated = ws.expect("workflow_updated").await.unwrap();
    assert_eq!(updated["workflow"], "ad_hoc_support");
    assert_eq!(updated["previous"], "shopify_onboarding");

    ws.send_json(json!({"type": "end_conversation"}))
        .await
        .unwrap();
    let ended = ws.expect("conversation_ended").await.unwrap();
    assert_eq!(ended["conversation_id"], id);
    app.stop().await;
}

#[tokio::test]
async fn one_turn_at_a_time_and_stop_keeps_what_was_said() {
    let (model, app, cookie) = start_with_mock_model().await;
    let mut ws = app.chat(&cookie).await;
    let id = ws.start_ad_hoc().await.unwrap();

    model.hold();
    ws.send_json(json!({"type": "message", "text": "Tell me a long story", "client_id": "m1"}))
        .await
        .unwrap();
    ws.expect("message_ack").await.unwrap();
    let first = ws.expect("cj_delta").await.unwrap();
    assert_eq!(first["text"], "Once upon");
    assert_eq!(
        first["restart"], true,
        "the first piece of the reply: {first:?}"
    );

    ws.send_json(json!({"type": "message", "text": "and another", "client_id": "m2"}))
        .await
        .unwrap();
    let refused = ws.expect("error").await.unwrap();
    assert_eq!(refused["code"], "turn_in_progress");
    assert_eq!(refused["retryable"], true);

    // A resend of the message being answered (a client that lost the
    // ack) gets its original ack, not a refusal.
    ws.send_json(json!({"type": "message", "text": "Tell me a long story", "client_id": "m1"}))
        .await
        .unwrap();
    let again = ws.expect("message_ack").await.unwrap();
    assert_eq!(again["client_id"], "m1");
    assert_eq!(again["seq"], 1);

    ws.send_json(json!({"type": "stop"})).await.unwrap();
    let stopped = ws.expect("cj_message").await.unwrap();
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(stopped["content"], "Once upon");

    let stored = app.messages(&id).await;
    assert_eq!(stored.len(), 2, "m2 was refused, not stored: {stored:?}");
    assert_eq!(stored[1].status, hirecj_domain::MessageStatus::Stopped);

    // After the stop, the next message runs normally.
    model.release();
    ws.send_json(json!({"type": "message", "text": "ok, short one", "client_id": "m3"}))
        .await
        .unwrap();
    ws.expect("message_ack").await.unwrap();
    let (streamed, done) = ws.collect_until("cj_message").await.unwrap();
    assert_eq!(done["status"], "complete");
    assert_eq!(done["content"], "Once upon a time.");
    // Its pieces (joined when they wait together) start the reply once.
    let pieces: Vec<_> = streamed.iter().filter(|f| f.kind() == "cj_delta").collect();
    let restarts: Vec<bool> = pieces.iter().map(|f| f["restart"] == true).collect();
    assert_eq!(restarts.first(), Some(&true), "{streamed:?}");
    assert!(!restarts[1..].contains(&true), "{streamed:?}");
    let text: String = pieces.iter().filter_map(|f| f["text"].as_str()).collect();
    assert_eq!(text, "Once upon a time.");
    app.stop().await;
}

#[tokio::test]
async fn ending_a_conversation_mid_reply_keeps_it_ended() {
    let (model, app, cookie) = start_with_mock_model().await;
    let mut ws = app.chat(&cookie).await;
    let id = ws.start_ad_hoc().await.unwrap();
    model.hold();
    ws.send_json(json!({"type": "message", "text": "Tell me a long story", "client_id": "e1"}))
        .await
        .unwrap();
    ws.expect("message_ack").await.unwrap();
    ws.expect("cj_delta").await.unwrap();

    ws.send_json(json!({"type": "end_conversation"}))
        .await
        .unwrap();
    loop {
        // The stopped reply may come first.
        let frame = ws.next().await.unwrap();
        match frame["type"].as_str() {
            Some("conversation_ended") => break,
            Some("cj_message" | "cj_delta" | "cj_thinking") => {}
            _ => panic!("unexpected {frame}"),
        }
    }
    // What was said is kept (stopped), and storing it does not reopen the
    // conversation that was just ended.
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.messages(&id).await.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stopped reply was not stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let stored = app.messages(&id).await;
    assert_eq!(stored[1].status, hirecj_domain::MessageStatus::Stopped);
    let conversation = app.state.store.conversation(id).await.unwrap().unwrap();
    assert!(conversation.ended_at.is_some(), "{conversation:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_reply_in_progress_survives_a_dropped_connection() {
    let (model, app, cookie) = start_with_mock_model().await;
    let mut ws = app.chat(&cookie).await;
    let id = ws.start_ad_hoc().await.unwrap();

    model.hold();
    ws.send_json(json!({"type": "message", "text": "hello", "client_id": "h1"}))
        .await
        .unwrap();
    let ack = ws.expect("message_ack").await.unwrap();
    ws.expect("cj_delta").await.unwrap();
    drop(ws); // the connection drops mid-reply

    let mut ws = app.chat(&cookie).await;
    ws.send_json(
        json!({"type": "start_conversation", "conversation_id": id, "last_seq": ack["seq"]}),
    )
    .await
    .unwrap();
    let resumed = ws.expect("conversation_started").await.unwrap();
    assert_eq!(
        resumed["messages"].as_array().unwrap().len(),
        0,
        "the reply is not stored yet"
    );
    model.release();
    let reply = ws.expect("cj_message").await.unwrap();
    assert_eq!(reply["content"], "Once upon a time.");

    // A third connection from the start sees each message exactly once.
    let mut ws = app.chat(&cookie).await;
    ws.send_json(json!({"type": "start_conversation", "conversation_id": id, "last_seq": 0}))
        .await
        .unwrap();
    let all = ws.expect("conversation_started").await.unwrap();
    let seqs: Vec<i64> = all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2]);
    ws.send_json(json!({"type": "ping"})).await.unwrap();
    ws.expect("pong").await.unwrap();
    app.stop().await;
}

/// Two messages sent back to back (or from two tabs): the second is either
/// refused with `turn_in_progress` or answered; it is never stored while a
/// turn that cannot see it runs, which would leave it unanswered with a
/// reply to the first one stored after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_is_never_stored_behind_a_turn_that_cannot_see_it() {
    // Many quick turns from one browser: not what the turn budgets are for.
    // Debug keeps each turn's request in its trace: what the turn saw.
    let (_model, app, cookie) = support::start_with_mock_model_and(&[
        ("HIRECJ_TURNS_PER_MINUTE_SESSION", "1000"),
        ("HIRECJ_TURNS_PER_MINUTE_ADDRESS", "1000"),
        ("HIRECJ_DEBUG", "true"),
    ])
    .await;
    for round in 0..15 {
        let mut a = app.chat(&cookie).await;
        let id = a.start_ad_hoc().await.unwrap();
        let mut b = app.chat(&cookie).await;
        b.send_json(json!({"type": "start_conversation", "conversation_id": id}))
            .await
            .unwrap();
        b.expect("conversation_started").await.unwrap();
        let first = format!("first question {round}");
        let second = format!("second question {round}");
        let (sent_a, sent_b) = tokio::join!(
            a.send_json(json!({"type": "message", "text": first, "client_id": "q1"})),
            b.send_json(json!({"type": "message", "text": second, "client_id": "q2"})),
        );
        sent_a.unwrap();
        sent_b.unwrap();
        // Let every turn finish.
        let conversation: hirecj_domain::ConversationId = id;
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut quiet = 0;
        while quiet < 10 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "turns never settled"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            quiet = if app.state.chat.is_running(conversation) {
                0
            } else {
                quiet + 1
            };
        }
        let stored = app.messages(&id).await;
        let traces = app.state.store.traces(conversation).await.unwrap();
        let mut latest_merchant: Option<&str> = None;
        for m in &stored {
            match m.role {
                hirecj_domain::Role::Merchant => latest_merchant = Some(&m.content),
                hirecj_domain::Role::Cj => {
                    let trace = traces
                        .iter()
                        .find(|t| t.turn == m.seq)
                        .map(|t| t.data.to_string())
                        .unwrap_or_default();
                    let asked = latest_merchant.unwrap_or_default();
                    assert!(
                        trace.contains(asked),
                        "round {round}: the reply at seq {} did not see {asked:?}: {stored:?}",
                        m.seq
                    );
                }
                hirecj_domain::Role::System => {}
            }
        }
        assert_eq!(
            stored.last().map(|m| m.role),
            Some(hirecj_domain::Role::Cj),
            "round {round}: a message is unanswered: {stored:?}"
        );
    }
    app.stop().await;
}

/// With debug off a turn's stored trace is bounded, whatever the length of
/// the conversation: the model requests are not kept, only how many
/// messages they carried and their size. With debug on the debug panel's
/// trace keeps each request whole.
#[tokio::test]
async fn traces_do_not_grow_with_the_conversation_unless_debug_is_on() {
    let fast = [
        ("HIRECJ_TURNS_PER_MINUTE_SESSION", "10000"),
        ("HIRECJ_TURNS_PER_MINUTE_MERCHANT", "10000"),
        ("HIRECJ_TURNS_PER_MINUTE_ADDRESS", "10000"),
    ];
    let turns = 60;
    for debug in ["false", "true"] {
        let mut env = fast.to_vec();
        env.push(("HIRECJ_DEBUG", debug));
        let app = start_app(&env).await;
        let cookie = app.visitor_cookie().await;
        let mut ws = app.chat(&cookie).await;
        let id = ws.start_ad_hoc().await.unwrap();
        for n in 0..turns {
            ws.send_json(json!({"type": "message", "text": format!("Question number {n}: how does CJ help with returns?"), "client_id": format!("t{n}")}))
                .await
                .unwrap();
            ws.until("cj_message").await.unwrap();
        }
        let traces = app.state.store.traces(id).await.unwrap();
        assert!(traces.len() >= turns, "{}", traces.len());
        let sizes: Vec<usize> = traces
            .iter()
            .map(|t| serde_json::to_string(&t.data).unwrap().len())
            .collect();
        let (first, last) = (sizes[1], sizes[sizes.len() - 1]);
        let last_trace = &traces[traces.len() - 1].data;
        let carried = last_trace["rounds"][0]["request"]["messages"].clone();
        if debug == "false" {
            assert!(
                sizes.iter().all(|&n| n <= 4_096),
                "every trace under 4 KB: {sizes:?}"
            );
            assert!(last <= first + 64, "flat: {first} then {last} bytes");
            assert_eq!(last_trace["rounds"][0]["request"]["omitted"], true);
            assert!(
                carried.as_u64().unwrap() >= 1,
                "the request's messages are counted: {carried}"
            );
            assert!(last_trace["rounds"][0]["request_bytes"].as_u64().unwrap() > 0);
        } else {
            // The request as the model received it (its history bounded by
            // the context budget: `long_conversation.rs`).
            assert!(
                carried.as_array().unwrap().len() >= 3,
                "debug keeps the whole request: {last_trace}"
            );
            assert!(last > first, "{first} then {last} bytes");
        }
        println!("debug {debug}: trace {first} bytes at turn 2, {last} at turn {turns}");
        app.stop().await;
    }
}

/// A second tab with the conversation open (idle, not the one that sent)
/// sees CJ's reply stream live and then the reply, once.
#[tokio::test]
async fn an_idle_tab_sees_the_reply_another_tab_asked_for() {
    let (model, app, cookie) = start_with_mock_model().await;
    let mut one = app.chat(&cookie).await;
    let id = one.start_ad_hoc().await.unwrap();
    let mut two = app.chat(&cookie).await;
    two.resume(id, 0).await.unwrap();

    model.hold();
    one.send_json(json!({"type": "message", "text": "Tell me a story", "client_id": "m1"}))
        .await
        .unwrap();
    let ack = one.expect("message_ack").await.unwrap();
    assert_eq!(one.until("cj_delta").await.unwrap()["text"], "Once upon");
    // The other tab shows the merchant's message, then CJ's reply.
    let (before, asked) = two.collect_until("merchant_message").await.unwrap();
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(asked["content"], "Tell me a story");
    assert_eq!(asked["role"], "merchant");
    assert_eq!(asked["client_id"], "m1");
    assert_eq!(asked["seq"], ack["seq"]);
    assert_eq!(two.until("cj_delta").await.unwrap()["text"], "Once upon");
    model.release();
    let (rest, on_two) = two.collect_until("cj_message").await.unwrap();
    assert!(
        rest.iter()
            .any(|f| f.kind() == "cj_delta" && f["text"] == " a time."),
        "{rest:?}"
    );
    let (between, on_one) = one.collect_until("cj_message").await.unwrap();
    assert!(
        between.iter().all(|f| f.kind() != "merchant_message"),
        "{between:?}"
    );
    assert_eq!(on_two["seq"], on_one["seq"]);
    assert_eq!(on_two["content"], "Once upon a time.");

    // Neither tab gets the reply twice, nor the sender its own message.
    for tab in [&mut one, &mut two] {
        tab.send_json(json!({"type": "ping", "nonce": "after"}))
            .await
            .unwrap();
        let next = tab.next().await.unwrap();
        assert_eq!(next.kind(), "pong", "{next:?}");
    }
    assert_eq!(model.request_count(), 1);
    app.stop().await;
}

/// CJ's reply starts while the merchant's message is being stored: the
/// model is asked while the database still holds the message's commit
/// back (another connection has SQLite's write lock), and the merchant
/// still gets the ack first, then the reply, which is stored after it.
#[tokio::test]
async fn the_model_is_asked_while_the_message_commits_and_the_ack_comes_first() {
    use sqlx::Connection;

    let dir = tempfile::tempdir().unwrap();
    let model = support::story_model().await;
    let base_url = model.openai_base_url();
    let app = support::start_app_in(
        dir.path(),
        &[
            ("HIRECJ_MODEL_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", base_url.as_str()),
        ],
    )
    .await;
    let cookie = app.visitor_cookie().await;
    let mut ws = app.chat(&cookie).await;
    let id = ws.start_ad_hoc().await.unwrap();
    let asked = model.request_count();

    let database = format!("sqlite://{}", dir.path().join("hirecj.db").display());
    let mut blocker = sqlx::SqliteConnection::connect(&database).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    ws.send_json(json!({"type": "message", "text": "How are sales this week?", "client_id": "m1"}))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, model.wait_for_requests(asked + 1))
        .await
        .expect("the model is asked before the message can be stored");
    let request = model.requests().last().unwrap().json();
    assert!(
        request.to_string().contains("How are sales this week?"),
        "the request carries the message being stored: {request}"
    );
    assert!(
        app.messages(&id).await.is_empty(),
        "nothing is stored while the write lock is held"
    );
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    drop(blocker);

    let ack = ws.next().await.unwrap();
    assert_eq!(
        ack.kind(),
        "message_ack",
        "the ack comes first: {:?}",
        ack.json()
    );
    assert_eq!(ack["seq"], 1);
    let (streamed, done) = ws.collect_until("cj_message").await.unwrap();
    assert!(streamed.iter().all(|f| f.kind() != "error"), "{streamed:?}");
    assert_eq!(done["content"], "Once upon a time.");
    assert_eq!(done["seq"], 2);
    let stored = app.messages(&id).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[0].content, "How are sales this week?");
    assert_eq!(model.request_count(), asked + 1, "asked once");
    app.stop().await;
}
