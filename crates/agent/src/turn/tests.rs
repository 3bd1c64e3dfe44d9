use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::model::anthropic::{AnthropicConfig, AnthropicProvider};
use crate::model::{ModelStream, ResponseMeta};
use crate::tools::ToolName;
use crate::workflow::{AD_HOC_SUPPORT, Catalog, SHOPIFY_ONBOARDING, SHOPIFY_POST_AUTH};
use hirecj_testkit::store::FakeStore;

type Script = Vec<Result<ModelEvent, ModelError>>;

/// A provider that plays scripted event lists, one per call, and records
/// the requests.
struct Scripted {
    scripts: Mutex<VecDeque<Script>>,
    requests: Mutex<Vec<ModelRequest>>,
    /// Wait forever after the first event of every call.
    hang: bool,
}

impl Scripted {
    fn new(scripts: Vec<Script>) -> Self {
        Self {
            scripts: Mutex::new(scripts.into()),
            requests: Mutex::new(Vec::new()),
            hang: false,
        }
    }
    fn requests(&self) -> Vec<ModelRequest> {
        self.requests.lock().unwrap().clone()
    }
}

#[async_trait]
impl ModelProvider for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn model(&self) -> &str {
        "script-1"
    }
    async fn stream(
        &self,
        req: ModelRequest,
        _cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        self.requests.lock().unwrap().push(req);
        let script = self.scripts.lock().unwrap().pop_front().unwrap_or_default();
        let hang = self.hang;
        let s = futures::stream::iter(script).chain(futures::stream::once(async move {
            if hang {
                futures::future::pending::<()>().await;
            }
            Err(ModelError::Protocol {
                provider: "scripted".into(),
                message: "script exhausted".into(),
            })
        }));
        // End the stream after the Stop event like a real provider.
        let mut done = false;
        let s = s.take_while(move |e| {
            let keep = !done;
            if matches!(e, Ok(ModelEvent::Stop { .. })) {
                done = true;
            }
            futures::future::ready(keep)
        });
        Ok(ModelStream::new(ResponseMeta::default(), s))
    }
}

fn text(t: &str) -> Result<ModelEvent, ModelError> {
    Ok(ModelEvent::TextDelta(t.into()))
}
fn tool(id: &str, name: &str, input: Value) -> Result<ModelEvent, ModelError> {
    Ok(ModelEvent::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        input,
    }))
}
fn end(reason: StopReason) -> Vec<Result<ModelEvent, ModelError>> {
    vec![
        Ok(ModelEvent::Usage(Usage {
            input_tokens: 10,
            output_tokens: 5,
            cache_read_tokens: 100,
            cache_write_tokens: 0,
        })),
        Ok(ModelEvent::Stop { reason }),
    ]
}

fn catalog() -> Catalog {
    Catalog::embedded().unwrap()
}

fn input<'a>(
    c: &'a Catalog,
    wf: &str,
    connected: bool,
    history: Vec<HistoryEntry>,
) -> TurnInput<'a> {
    TurnInput {
        conversation_id: "conv-1".into(),
        workflow: c.workflow(wf).unwrap(),
        persona: c.persona(),
        merchant: MerchantContext {
            shop_name: connected.then(|| "Eval Candles".into()),
            shop_domain: connected.then(|| "eval-candles.myshopify.com".into()),
            connected,
            needs_reconnect: false,
            last_visit: None,
            ..MerchantContext::default()
        },
        facts: vec![],
        history,
        system_event: None,
        summary: None,
        today: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
    }
}

fn connected_tools() -> ToolContext {
    ToolContext::connected(Arc::new(FakeStore::default()))
}

struct Events(Mutex<Vec<TurnEvent>>);
impl Events {
    fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }
    fn sink(&self) -> impl Fn(TurnEvent) + Send + Sync + '_ {
        |e| self.0.lock().unwrap().push(e)
    }
    fn all(&self) -> Vec<TurnEvent> {
        self.0.lock().unwrap().clone()
    }
    fn text(&self) -> String {
        self.all()
            .into_iter()
            .filter_map(|e| match e {
                TurnEvent::TextDelta { text } => Some(text),
                _ => None,
            })
            .collect()
    }
}

#[tokio::test]
async fn text_only_turn_streams_and_parses_markers() {
    let c = catalog();
    let mut script = vec![
        text("Hi, I'm CJ.\n{{oa"),
        text("uth:shop"),
        text("ify}}\nReady?"),
    ];
    script.extend(end(StopReason::EndTurn));
    let p = Scripted::new(vec![script]);
    let ev = Events::new();
    let mut inp = input(&c, SHOPIFY_ONBOARDING, false, vec![]);
    inp.system_event = c
        .workflow(SHOPIFY_ONBOARDING)
        .unwrap()
        .behavior
        .initial_action
        .clone();
    let out = run_turn(
        &p,
        &ToolContext::disconnected(),
        inp,
        &TurnConfig::default(),
        &ev.sink(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(out.error, None);
    assert_eq!(out.text, "Hi, I'm CJ.\n__OAUTH_BUTTON_1__\nReady?");
    assert_eq!(out.ui_elements.len(), 1);
    assert_eq!(ev.text(), out.text);
    for e in ev.all() {
        if let TurnEvent::TextDelta { text } = e {
            assert!(!text.contains("{{"), "half marker leaked: {text}");
        }
    }
    let reqs = p.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].tools.is_empty(), "no tools without a store");
    let first = &reqs[0].messages[0];
    assert_eq!(first.role, Role::User);
    match &first.content[0] {
        ContentBlock::Text { text } => assert!(text.starts_with("[system event] System event:")),
        other => panic!("{other:?}"),
    }
    assert_eq!(out.usage.cache_read_tokens, 100);
    assert!(out.trace.time_to_first_token_ms.is_some());
}

#[tokio::test]
async fn markers_removed_when_connected() {
    let c = catalog();
    let mut script = vec![text("Connected already.\n{{oauth:shopify}}\n")];
    script.extend(end(StopReason::EndTurn));
    let p = Scripted::new(vec![script]);
    let inp = input(&c, AD_HOC_SUPPORT, true, vec![HistoryEntry::merchant("hi")]);
    let out = run_turn(
        &p,
        &connected_tools(),
        inp,
        &TurnConfig::default(),
        &|_| {},
        CancellationToken::new(),
    )
    .await;
    assert!(out.ui_elements.is_empty());
    assert!(!out.text.contains("oauth"));
}

#[tokio::test]
async fn tool_round_runs_calls_concurrently_and_feeds_results_back() {
    let c = catalog();
    let mut r1 = vec![
        text("Let me look."),
        tool("t1", ToolName::StoreOverview.as_str(), json!({})),
        tool("t2", ToolName::OrdersLastWeek.as_str(), json!({})),
    ];
    r1.extend(end(StopReason::ToolUse));
    let mut r2 = vec![text("You had 42 orders.")];
    r2.extend(end(StopReason::EndTurn));
    let p = Scripted::new(vec![r1, r2]);
    let ev = Events::new();
    let mut inp = input(&c, SHOPIFY_POST_AUTH, true, vec![]);
    inp.system_event = Some("the store was connected".into());
    let out = run_turn(
        &p,
        &connected_tools(),
        inp,
        &TurnConfig::default(),
        &ev.sink(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(out.error, None);
    assert_eq!(out.text, "Let me look.\n\nYou had 42 orders.");
    assert_eq!(
        out.tools_called,
        vec![
            ToolName::StoreOverview.as_str(),
            ToolName::OrdersLastWeek.as_str()
        ]
    );
    let reqs = p.requests();
    assert_eq!(reqs.len(), 2);
    let second = &reqs[1].messages;
    let n = second.len();
    assert_eq!(second[n - 2].role, Role::Assistant);
    assert!(
        matches!(&second[n - 2].content[0], ContentBlock::Text { text } if text == "Let me look.")
    );
    assert!(matches!(&second[n - 2].content[1], ContentBlock::ToolUse { id, .. } if id == "t1"));
    assert_eq!(second[n - 1].role, Role::User);
    assert_eq!(second[n - 1].content.len(), 2, "all results in one message");
    match &second[n - 1].content[1] {
        ContentBlock::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => {
            assert_eq!(tool_use_id, "t2");
            assert!(!is_error);
            assert!(content.contains(r#""orders":42"#));
        }
        other => panic!("{other:?}"),
    }
    // Events: started/finished for both tools, usage, thinking with tool.
    let events = ev.all();
    let started = events
        .iter()
        .filter(|e| matches!(e, TurnEvent::ToolStarted { .. }))
        .count();
    let finished = events
        .iter()
        .filter(|e| matches!(e, TurnEvent::ToolFinished { ok: true, .. }))
        .count();
    assert_eq!((started, finished), (2, 2));
    assert!(events.iter().any(|e| matches!(e, TurnEvent::Thinking { tool: Some(t), status } if t == ToolName::OrdersLastWeek.as_str() && status.contains("last week"))));
    // Trace.
    assert_eq!(out.trace.rounds.len(), 2);
    assert_eq!(out.trace.tool_calls.len(), 2);
    assert_eq!(out.trace.usage.input_tokens, 20);
    assert_eq!(out.trace.tools_offered.len(), 5);
    let j = out.trace.to_json();
    assert_eq!(j["workflow"], SHOPIFY_POST_AUTH);
    assert!(j["rounds"][0]["request"]["system"].is_array());
}

#[tokio::test]
async fn failing_and_unknown_tools_become_error_results() {
    let c = catalog();
    let mut r1 = vec![
        tool("t1", "get_other_shop_data", json!({"shop": "x"})),
        Ok(ModelEvent::MalformedToolCall {
            id: "t2".into(),
            name: ToolName::StoreCounts.as_str().into(),
            raw: "{oops".into(),
            error: "bad json".into(),
        }),
        tool("t3", ToolName::StoreCounts.as_str(), json!({})),
    ];
    r1.extend(end(StopReason::ToolUse));
    let mut r2 = vec![text("Your access expired; please reconnect Shopify.")];
    r2.extend(end(StopReason::EndTurn));
    let p = Scripted::new(vec![r1, r2]);
    let tools = ToolContext::connected(Arc::new(FakeStore {
        unauthorized: true,
        ..FakeStore::default()
    }));
    let inp = input(
        &c,
        AD_HOC_SUPPORT,
        true,
        vec![HistoryEntry::merchant("how many products?")],
    );
    let out = run_turn(
        &p,
        &tools,
        inp,
        &TurnConfig::default(),
        &|_| {},
        CancellationToken::new(),
    )
    .await;
    assert_eq!(out.error, None);
    assert!(out.needs_reconnect);
    let reqs = p.requests();
    let results = &reqs[1].messages.last().unwrap().content;
    assert_eq!(results.len(), 3);
    for r in results {
        assert!(
            matches!(r, ContentBlock::ToolResult { is_error: true, .. }),
            "{r:?}"
        );
    }
    assert!(
        matches!(&results[2], ContentBlock::ToolResult { content, .. } if content.contains("reconnect"))
    );
}

#[tokio::test]
async fn round_limit_ends_the_turn() {
    let c = catalog();
    let mk = || {
        let mut r = vec![tool("t", ToolName::StoreCounts.as_str(), json!({}))];
        r.extend(end(StopReason::ToolUse));
        r
    };
    let p = Scripted::new(vec![mk(), mk(), mk(), mk()]);
    let config = TurnConfig {
        max_rounds: 3,
        ..TurnConfig::default()
    };
    let inp = input(
        &c,
        AD_HOC_SUPPORT,
        true,
        vec![HistoryEntry::merchant("loop")],
    );
    let out = run_turn(
        &p,
        &connected_tools(),
        inp,
        &config,
        &|_| {},
        CancellationToken::new(),
    )
    .await;
    assert_eq!(p.requests().len(), 3);
    assert_eq!(out.error.unwrap().code, "tool_rounds_exhausted");
}

#[tokio::test]
async fn model_error_mid_stream_keeps_partial_text() {
    let c = catalog();
    let p = Scripted::new(vec![vec![
        text("Partial "),
        Err(ModelError::Api {
            provider: "scripted".into(),
            status: None,
            kind: crate::model::ApiErrorKind::Overloaded,
            message: "overloaded".into(),
            request_id: None,
            retry_after: None,
        }),
    ]]);
    let inp = input(&c, AD_HOC_SUPPORT, true, vec![HistoryEntry::merchant("hi")]);
    let out = run_turn(
        &p,
        &connected_tools(),
        inp,
        &TurnConfig::default(),
        &|_| {},
        CancellationToken::new(),
    )
    .await;
    assert_eq!(out.text, "Partial ");
    let err = out.error.unwrap();
    assert_eq!(err.code, "model_error");
    assert!(err.retryable);
}

#[tokio::test]
async fn cancel_returns_what_was_said() {
    let c = catalog();
    let mut p = Scripted::new(vec![vec![text("Half an ans")]]);
    p.hang = true;
    let cancel = CancellationToken::new();
    let ev = Events::new();
    let inp = input(&c, AD_HOC_SUPPORT, true, vec![HistoryEntry::merchant("hi")]);
    let c2 = cancel.clone();
    let canceller = async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        c2.cancel();
    };
    let tools = connected_tools();
    let config = TurnConfig::default();
    let sink = ev.sink();
    let (out, ()) = tokio::join!(run_turn(&p, &tools, inp, &config, &sink, cancel), canceller);
    assert!(out.stopped);
    assert_eq!(out.error, None);
    assert_eq!(out.text, "Half an ans");
    assert!(out.trace.stopped);
}

#[tokio::test]
async fn no_input_is_an_error_not_a_call() {
    let c = catalog();
    let p = Scripted::new(vec![]);
    let inp = input(
        &c,
        AD_HOC_SUPPORT,
        true,
        vec![HistoryEntry::merchant("q"), HistoryEntry::cj("a")],
    );
    let out = run_turn(
        &p,
        &connected_tools(),
        inp,
        &TurnConfig::default(),
        &|_| {},
        CancellationToken::new(),
    )
    .await;
    assert_eq!(out.error.unwrap().code, "no_input");
    assert!(p.requests().is_empty());
}

#[test]
fn history_mapping() {
    let c = catalog();
    let mut inp = input(
        &c,
        SHOPIFY_ONBOARDING,
        false,
        vec![
            HistoryEntry::cj("Hi!\n__OAUTH_BUTTON_1__\nConnect?"),
            HistoryEntry::merchant("what is this"),
            HistoryEntry::merchant("hello?"),
            HistoryEntry::system("[system event] shopify_connected"),
        ],
    );
    inp.system_event = Some("follow up".into());
    let m = history_messages(&inp, 24_000);
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].role, Role::User, "starts with the initial action");
    assert_eq!(
        m[1],
        Message::assistant_text("Hi!\n{{oauth:shopify}}\nConnect?")
    );
    assert_eq!(
        m[2],
        Message::user_text(
            "what is this\n\nhello?\n\n[system event] shopify_connected\n\n[system event] follow up"
        )
    );
}

#[test]
fn placeholder_round_trip() {
    assert_eq!(
        placeholders_to_markers("a __OAUTH_BUTTON_12__ b"),
        "a {{oauth:shopify}} b"
    );
    assert_eq!(
        placeholders_to_markers("__OAUTH_BUTTON_x__"),
        "__OAUTH_BUTTON_x__"
    );
    assert_eq!(
        placeholders_to_markers("__OAUTH_BUTTON_"),
        "__OAUTH_BUTTON_"
    );
}

#[test]
fn volatile_block_has_context_facts_and_date() {
    let c = catalog();
    let mut inp = input(&c, SHOPIFY_ONBOARDING, false, vec![]);
    inp.facts = vec!["We sell hand-poured candles".into()];
    let blocks = system_blocks(&inp);
    assert_eq!(blocks.len(), 3);
    assert!(blocks[0].cache && blocks[1].cache && !blocks[2].cache);
    assert!(
        blocks[1]
            .text
            .starts_with("# Current workflow: shopify_onboarding")
    );
    let v = &blocks[2].text;
    assert!(v.contains("Store: not connected"));
    assert!(v.contains(CONNECT_BUTTON_AVAILABLE));
    assert!(v.contains("Today's date: 2026-11-26 (Thursday)"));
    assert!(v.contains("- We sell hand-poured candles"));
    assert!(v.contains("welcome them back"));
    assert!(
        !v.contains(MONEY_FORMAT_PREFIX),
        "not connected: no shop settings"
    );
}

#[test]
fn volatile_block_tells_how_the_shop_writes_money_and_where_its_admin_is() {
    let c = catalog();
    let mut inp = input(&c, AD_HOC_SUPPORT, true, vec![]);
    inp.merchant.money_format = Some("{{amount_with_comma_separator}} €".into());
    inp.merchant.time_zone = Some("Europe/Paris".into());
    inp.merchant.admin_url = Some("https://bougies.myshopify.com/admin".into());
    let v = &system_blocks(&inp)[2].text;
    assert!(
        v.contains("Shop money format: {{amount_with_comma_separator}} €\n"),
        "{v}"
    );
    assert!(v.contains("e.g. 1.234,56 €."), "{v}");
    assert!(v.contains("Shop time zone: Europe/Paris\n"), "{v}");
    assert!(
        v.contains("Shopify admin: https://bougies.myshopify.com/admin (link an order as [#1001](https://bougies.myshopify.com/admin/orders/"),
        "{v}"
    );
    // An unusable format is left out, not passed on.
    inp.merchant.money_format = Some("{{price}}".into());
    let v = &system_blocks(&inp)[2].text;
    assert!(!v.contains(MONEY_FORMAT_PREFIX), "{v}");
}

/// Across two turns of one conversation, the Anthropic request bytes up to
/// the cache breakpoint (tools, persona, workflow) are identical.
#[test]
fn cacheable_prefix_is_byte_identical_across_turns() {
    let c = catalog();
    let provider = AnthropicProvider::new(AnthropicConfig::new("k", "claude-x")).unwrap();
    let tools = connected_tools();
    let config = TurnConfig::default();
    let mut t1 = input(
        &c,
        AD_HOC_SUPPORT,
        true,
        vec![HistoryEntry::merchant("orders last week?")],
    );
    t1.facts = vec![];
    let mut t2 = input(
        &c,
        AD_HOC_SUPPORT,
        true,
        vec![
            HistoryEntry::merchant("orders last week?"),
            HistoryEntry::cj("42 orders."),
            HistoryEntry::merchant("and best sellers?"),
        ],
    );
    t2.facts = vec!["We sell candles".into()];
    t2.today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let b1 = provider
        .request_body(&build_request(&t1, &tools, &config))
        .unwrap();
    let b2 = provider
        .request_body(&build_request(&t2, &tools, &config))
        .unwrap();
    let s1 = String::from_utf8(b1).unwrap();
    let s2 = String::from_utf8(b2).unwrap();
    let marker = "# Merchant context";
    let p1 = &s1[..s1.find(marker).unwrap()];
    let p2 = &s2[..s2.find(marker).unwrap()];
    assert_eq!(p1, p2);
    assert!(p1.contains("cache_control"));
    assert!(p1.contains(r#""tools""#) && p1.contains("# Current workflow: ad_hoc_support"));
    assert_ne!(s1, s2);
}

/// A summarised conversation: the summary is part of the cached prefix,
/// identical between refreshes whatever the newer messages, and the
/// history sent stays within the budget.
#[test]
fn the_summary_is_cached_and_the_history_bounded() {
    let c = catalog();
    let provider = AnthropicProvider::new(AnthropicConfig::new("k", "claude-x")).unwrap();
    let tools = connected_tools();
    let config = TurnConfig {
        context_tokens: 1_000,
        ..TurnConfig::default()
    };
    let summary = "The merchant said:\n- Our return window is 45 days".to_owned();
    let long: Vec<HistoryEntry> = (0..200)
        .flat_map(|i| {
            [
                HistoryEntry::merchant(format!("Question {i}?")),
                HistoryEntry::cj("An answer of some length. ".repeat(4)),
            ]
        })
        .chain([HistoryEntry::merchant("And today?")])
        .collect();
    let mut t1 = input(&c, AD_HOC_SUPPORT, true, long[..301].to_vec());
    t1.summary = Some(summary.clone());
    let mut t2 = input(&c, AD_HOC_SUPPORT, true, long.clone());
    t2.summary = Some(summary);
    let r1 = build_request(&t1, &tools, &config);
    let r2 = build_request(&t2, &tools, &config);
    let s1 = String::from_utf8(provider.request_body(&r1).unwrap()).unwrap();
    let s2 = String::from_utf8(provider.request_body(&r2).unwrap()).unwrap();
    let marker = "# Merchant context";
    let p1 = &s1[..s1.find(marker).unwrap()];
    assert_eq!(p1, &s2[..s2.find(marker).unwrap()]);
    assert!(p1.contains("# Earlier in this conversation") && p1.contains("45 days"));
    // The newest messages only, within the budget.
    for r in [&r1, &r2] {
        let sent: usize = r
            .messages
            .iter()
            .flat_map(|m| &m.content)
            .map(|b| match b {
                ContentBlock::Text { text } => text.len(),
                _ => 0,
            })
            .sum();
        assert!(sent <= 4 * 1_000, "{sent} bytes of history");
        assert_eq!(r.messages[0].role, Role::User);
    }
    assert!(s2.contains("And today?") && !s2.contains("Question 3?"));
    assert!(s2.contains("Conversation: continuing"));
}

#[test]
fn needs_reconnect_offers_no_tools_and_says_so() {
    let c = catalog();
    let mut inp = input(
        &c,
        AD_HOC_SUPPORT,
        true,
        vec![HistoryEntry::merchant("orders?")],
    );
    inp.merchant.needs_reconnect = true;
    let req = build_request(&inp, &connected_tools(), &TurnConfig::default());
    assert!(req.tools.is_empty());
    assert!(req.system[2].text.contains("must reconnect"));
    assert!(req.system[2].text.contains(CONNECT_BUTTON_AVAILABLE));
    inp.merchant.needs_reconnect = false;
    let req = build_request(&inp, &connected_tools(), &TurnConfig::default());
    assert_eq!(req.tools.len(), ToolName::ALL.len());
    assert!(!req.system[2].text.contains(CONNECT_BUTTON_AVAILABLE));
}

/// The order of a tool round's events is what the merchant's screen shows
/// (consecutive text deltas merged: the parser may split them).
#[tokio::test]
async fn a_tool_round_reports_its_steps_in_order() {
    let c = catalog();
    let mut r1 = vec![
        text("Let me look."),
        tool("t1", ToolName::StoreCounts.as_str(), json!({})),
    ];
    r1.extend(end(StopReason::ToolUse));
    let mut r2 = vec![text("Done.")];
    r2.extend(end(StopReason::EndTurn));
    let p = Scripted::new(vec![r1, r2]);
    let ev = Events::new();
    let inp = input(&c, AD_HOC_SUPPORT, true, vec![HistoryEntry::merchant("hi")]);
    let out = run_turn(
        &p,
        &connected_tools(),
        inp,
        &TurnConfig::default(),
        &ev.sink(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(out.error, None);
    let mut steps: Vec<String> = Vec::new();
    for e in ev.all() {
        let step = match e {
            TurnEvent::Thinking { status, tool: None } => format!("thinking {status}"),
            TurnEvent::Thinking { tool: Some(t), .. } => format!("thinking {t}"),
            TurnEvent::ToolStarted { name, .. } => format!("started {name}"),
            TurnEvent::ToolFinished { name, ok, .. } => format!("finished {name} {ok}"),
            TurnEvent::TextDelta { text } => {
                if let Some(last) = steps.last_mut().filter(|s| s.starts_with("text ")) {
                    last.push_str(&text);
                    continue;
                }
                format!("text {text}")
            }
            TurnEvent::Usage { usage } => format!("usage {}", usage.input_tokens),
        };
        steps.push(step);
    }
    let counts = ToolName::StoreCounts.as_str();
    assert_eq!(
        steps,
        vec![
            "thinking Thinking…".to_owned(),
            "text Let me look.".to_owned(),
            "usage 10".to_owned(),
            format!("thinking {counts}"),
            format!("started {counts}"),
            format!("finished {counts} true"),
            "thinking Putting it together…".to_owned(),
            "text \n\nDone.".to_owned(),
            "usage 20".to_owned(),
        ]
    );
}

/// The decision after each model call, step by step.
#[test]
fn after_a_model_call_the_turn_goes_on_only_for_tools_within_the_limit() {
    let c = catalog();
    let p = Scripted::new(vec![]);
    let tools = connected_tools();
    let config = TurnConfig::default();
    let sink = |_: TurnEvent| {};
    let inp = input(&c, AD_HOC_SUPPORT, true, vec![HistoryEntry::merchant("hi")]);
    let turn = || Turn::start(&p, &tools, &inp, &config, &sink, CancellationToken::new());
    let asks_for_a_tool = || RoundReply {
        requested: vec![Requested::Call(ToolCall {
            id: "t".into(),
            name: ToolName::StoreCounts.as_str().into(),
            input: json!({}),
        })],
        stop: Some(StopReason::ToolUse),
        ..RoundReply::default()
    };

    // A stream that ends without a stop reason was cut off: worth a retry.
    let mut cut_off = turn();
    let reply = RoundReply {
        text: "Hal".into(),
        ..RoundReply::default()
    };
    assert!(!cut_off.continue_with_tools(&reply, 1, 8));
    let failure = cut_off.error.unwrap();
    assert_eq!(failure.code, "model_error");
    assert!(failure.retryable);

    // An answer ends the turn without a failure.
    let mut answered = turn();
    let reply = RoundReply {
        stop: Some(StopReason::EndTurn),
        ..RoundReply::default()
    };
    assert!(!answered.continue_with_tools(&reply, 1, 8));
    assert_eq!(answered.error, None);

    // Tools: a tool round below the limit, a failure at it.
    let mut below = turn();
    assert!(below.continue_with_tools(&asks_for_a_tool(), 7, 8));
    assert_eq!(below.error, None);
    let mut at_limit = turn();
    assert!(!at_limit.continue_with_tools(&asks_for_a_tool(), 8, 8));
    assert_eq!(at_limit.error.unwrap().code, "tool_rounds_exhausted");

    // A stopped turn goes no further, whatever the model asked for.
    let mut stopped = turn();
    stopped.stopped = true;
    assert!(!stopped.continue_with_tools(&asks_for_a_tool(), 1, 8));
    assert_eq!(stopped.error, None);
}
