//! One conversation of 2,000 turns with the offline brain on SQLite, as a
//! merchant who keeps one chat going for months would have it: what CJ
//! reads, sends and stores per turn stays bounded, and what the merchant
//! said at turn 5 is still known at turn 1,500 (through the rolling
//! summary: it is neither in the messages sent nor a remembered fact).
//! Per-turn latency is printed, not asserted (`hirecj-bench --long` is
//! where it is measured; README).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use hirecj_domain::ConversationId;
use hirecj_server::chat::protocol::{ClientFrame, ServerFrame};
use hirecj_testkit::app::TestApp;
use hirecj_testkit::ws::ChatClient;
use support::start_app;

/// The conversation budget of these tests (tokens).
const BUDGET: usize = 3_000;
/// The chat allows 120 frames a minute per connection: a long
/// conversation reconnects (resumes) this often.
const RECONNECT_EVERY: usize = 100;
const QUESTIONS: &[&str] = &[
    "How many orders did I get last week?",
    "What are my best sellers?",
    "What can you do?",
    "Show me my recent orders.",
    "Hi CJ",
];
const STATED: &str = "Our return window is 45 days, and we ship from Leeds.";
const RECALL: &str = "What did I tell you about our return window?";

struct Run {
    id: ConversationId,
    latencies: Vec<Duration>,
    replies: Vec<String>,
    /// Bytes of every message's text.
    text_bytes: usize,
}

async fn settings(debug: bool) -> TestApp {
    let budget = BUDGET.to_string();
    start_app(&[
        ("HIRECJ_DEBUG", if debug { "true" } else { "false" }),
        ("HIRECJ_LOG", "error"),
        ("HIRECJ_CONTEXT_TOKENS", budget.as_str()),
        ("HIRECJ_TURNS_PER_MINUTE_ADDRESS", "1000000"),
        ("HIRECJ_TURNS_PER_MINUTE_SESSION", "1000000"),
        ("HIRECJ_TURNS_PER_MINUTE_MERCHANT", "1000000"),
    ])
    .await
}

/// `turns` messages in one visitor conversation; `say(t)` is turn `t`'s
/// (0-based) message.
async fn converse(app: &TestApp, turns: usize, say: impl Fn(usize) -> String) -> Run {
    let cookie = app.visitor_cookie().await;
    let mut ws: ChatClient = app.chat(&cookie).await;
    let started = ws
        .start_in(hirecj_agent::workflow::AD_HOC_SUPPORT)
        .await
        .expect("an ad hoc conversation starts");
    let ServerFrame::ConversationStarted {
        conversation_id: id,
        last_seq,
        ..
    } = started.into_typed()
    else {
        panic!("no conversation_started");
    };
    let mut last_seq = last_seq;
    let (mut latencies, mut replies, mut text_bytes) = (Vec::new(), Vec::new(), 0);
    for t in 0..turns {
        if t > 0 && t % RECONNECT_EVERY == 0 {
            ws = app.chat(&cookie).await;
            ws.resume(id, last_seq)
                .await
                .expect("the conversation resumes");
        }
        let text = say(t);
        let started = Instant::now();
        ws.send(&ClientFrame::Message {
            text: text.clone(),
            client_id: format!("m{t}"),
        })
        .await
        .unwrap();
        let got = ws.until("cj_message").await;
        if got.is_err() {
            let m = app.messages(id).await;
            let c = app.state.store.conversation(id).await.unwrap().unwrap();
            panic!(
                "turn {t}: {got:?}\nlast: {:?}\nconv last_seq {} through {}",
                &m[m.len().saturating_sub(3)..],
                c.last_seq,
                c.summary_through
            );
        }
        let reply = match got.unwrap().into_typed() {
            ServerFrame::CjMessage { message } => message,
            other => panic!("turn {t}: {other:?}"),
        };
        latencies.push(started.elapsed());
        last_seq = reply.seq;
        text_bytes += text.len() + reply.content.len();
        replies.push(reply.content);
    }
    Run {
        id,
        latencies,
        replies,
        text_bytes,
    }
}

fn p50_ms(window: &[Duration]) -> f64 {
    let mut v: Vec<f64> = window.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Each turn's first model request: (bytes, messages).
async fn requests(app: &TestApp, id: ConversationId) -> Vec<(usize, usize)> {
    let traces = app.state.store.traces(id).await.unwrap();
    traces
        .iter()
        .filter_map(|t| {
            let round = t.data.pointer("/rounds/0")?;
            let bytes = round["request_bytes"].as_u64()? as usize;
            let messages = match &round["request"]["messages"] {
                serde_json::Value::Array(m) => m.len(),
                other => other.as_u64()? as usize,
            };
            Some((bytes, messages))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_turns_cost_the_same_as_the_first_and_remember_turn_five() {
    const TURNS: usize = 2_000;
    let app = settings(false).await;
    let before = app.state.store.database_bytes().await.unwrap();
    let run = converse(&app, TURNS, |t| match t {
        4 => STATED.to_owned(),
        1_499 => RECALL.to_owned(),
        t => QUESTIONS[t % QUESTIONS.len()].to_owned(),
    })
    .await;
    let after = app.state.store.database_bytes().await.unwrap();

    // Turn 1,500 knows what turn 5 said, from the summary alone.
    let recall = &run.replies[1_499];
    assert!(recall.contains("45 days"), "turn 1,500: {recall}");
    let conversation = app.state.store.conversation(run.id).await.unwrap().unwrap();
    let summary = conversation.summary.as_deref().expect("a summary");
    assert!(summary.contains("45 days"), "{summary}");
    assert!(
        conversation.summary_through > 3_500,
        "the summary covers the old messages: {}",
        conversation.summary_through
    );

    // Every request within the budget: what a turn sends (and so reads)
    // does not grow with the conversation.
    let sent = requests(&app, run.id).await;
    assert!(sent.len() >= TURNS, "{} traces", sent.len());
    let first = sent[0].0;
    let cap = first + BUDGET * 4 * 5 / 4;
    let largest = sent.iter().map(|r| r.0).max().unwrap();
    assert!(largest <= cap, "largest request {largest} bytes > {cap}");
    let most_messages = sent[TURNS / 2..].iter().map(|r| r.1).max().unwrap();
    assert!(
        most_messages <= 60,
        "{most_messages} messages in one request"
    );

    // Storage per turn: a compact trace and the two messages.
    let growth = after.saturating_sub(before) as usize;
    let per_turn = growth / TURNS;
    let text_per_turn = run.text_bytes / TURNS;
    eprintln!(
        "long conversation, debug off: {TURNS} turns, database {growth} bytes more: {per_turn} \
         bytes per turn ({text_per_turn} of them message text); largest request {largest} bytes \
         (first {first}); turn latency p50 first 100 {:.2} ms, last 100 {:.2} ms",
        p50_ms(&run.latencies[..100]),
        p50_ms(&run.latencies[TURNS - 100..])
    );
    assert!(
        per_turn <= 4_096 + text_per_turn,
        "{per_turn} bytes per turn, {text_per_turn} of text"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_debug_on_a_turn_stores_what_the_model_received_and_that_is_bounded_too() {
    const TURNS: usize = 300;
    let app = settings(true).await;
    let before = app.state.store.database_bytes().await.unwrap();
    let run = converse(&app, TURNS, |t| QUESTIONS[t % QUESTIONS.len()].to_owned()).await;
    let after = app.state.store.database_bytes().await.unwrap();
    let traces = app.state.store.traces(run.id).await.unwrap();
    let last = traces.last().unwrap();
    // The debug panel's view: the request as sent, messages and all.
    assert!(
        last.data
            .pointer("/rounds/0/request/messages")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|m| !m.is_empty()),
        "{}",
        last.data
    );
    let growth = after.saturating_sub(before) as usize;
    let first_half = requests(&app, run.id).await;
    let largest = first_half.iter().map(|r| r.0).max().unwrap();
    assert!(largest <= first_half[0].0 + BUDGET * 4 * 5 / 4, "{largest}");
    eprintln!(
        "long conversation, debug on: {TURNS} turns, {} bytes per turn; largest request {largest} \
         bytes",
        growth / TURNS
    );
    app.stop().await;
}
