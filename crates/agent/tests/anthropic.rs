//! The Anthropic client against an in-process mock that streams in chunks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{MockResponse, MockServer, collect, mock, test_http, text_of};
use hirecj_agent::model::anthropic::{AnthropicConfig, AnthropicProvider, build_request_body};
use hirecj_agent::model::{
    ApiErrorKind, ContentBlock, Message, ModelError, ModelEvent, ModelProvider, ModelRequest, Role,
    StopReason, SystemBlock, ToolCall, ToolSpec, Usage,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const MODEL: &str = "claude-test";

fn provider(server: &MockServer) -> AnthropicProvider {
    AnthropicProvider::new(
        AnthropicConfig::new("sk-ant-secret", MODEL)
            .with_base_url(format!("{}/", server.base()))
            .with_http(test_http()),
    )
    .unwrap()
}

// --- stream builders -------------------------------------------------------

fn frame(event: &str, data: &str) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

fn message_start() -> String {
    frame(
        "message_start",
        r#"{"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-test", "stop_reason": null, "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048, "output_tokens": 1}}}"#,
    )
}

fn text_block(index: u32, pieces: &[&str]) -> String {
    let mut s = frame(
        "content_block_start",
        &json!({"type":"content_block_start","index":index,"content_block":{"type":"text","text":""}}).to_string(),
    );
    for p in pieces {
        s += &frame(
            "content_block_delta",
            &json!({"type":"content_block_delta","index":index,"delta":{"type":"text_delta","text":p}}).to_string(),
        );
    }
    s + &frame(
        "content_block_stop",
        &json!({"type":"content_block_stop","index":index}).to_string(),
    )
}

fn tool_block(index: u32, id: &str, name: &str, pieces: &[&str]) -> String {
    let mut s = frame(
        "content_block_start",
        &json!({"type":"content_block_start","index":index,"content_block":{"type":"tool_use","id":id,"name":name,"input":{}}}).to_string(),
    );
    for p in pieces {
        s += &frame(
            "content_block_delta",
            &json!({"type":"content_block_delta","index":index,"delta":{"type":"input_json_delta","partial_json":p}}).to_string(),
        );
    }
    s + &frame(
        "content_block_stop",
        &json!({"type":"content_block_stop","index":index}).to_string(),
    )
}

fn message_end(stop_reason: &str, output_tokens: u64) -> String {
    frame(
        "message_delta",
        &json!({"type":"message_delta","delta":{"stop_reason":stop_reason,"stop_sequence":null},"usage":{"output_tokens":output_tokens}}).to_string(),
    ) + &frame("message_stop", r#"{"type": "message_stop"}"#)
}

fn text_stream(pieces: &[&str]) -> String {
    message_start() + &text_block(0, pieces) + &message_end("end_turn", 15)
}

const EXPECTED_USAGE: Usage = Usage {
    input_tokens: 12,
    output_tokens: 15,
    cache_read_tokens: 2048,
    cache_write_tokens: 0,
};

fn tool_specs() -> Vec<ToolSpec> {
    ["get_shopify_store_overview", "lookup_shopify_customer"]
        .iter()
        .map(|n| ToolSpec {
            name: (*n).into(),
            description: format!("{n} description"),
            input_schema: json!({"type":"object","properties":{"email":{"type":"string"}}}),
        })
        .collect()
}

fn request(messages: Vec<Message>) -> ModelRequest {
    ModelRequest {
        system: vec![
            SystemBlock::cached("You are CJ."),
            SystemBlock::cached("Workflow: ad_hoc_support."),
            SystemBlock::volatile("Shop: demo.myshopify.com (connected)."),
        ],
        messages,
        tools: tool_specs(),
        max_tokens: 1024,
        temperature: Some(0.3),
        metadata_user_id: Some("usr_abcdefgh".into()),
    }
}

async fn run(server: &MockServer, req: ModelRequest) -> (Vec<ModelEvent>, Option<ModelError>) {
    let stream = provider(server)
        .stream(req, CancellationToken::new())
        .await
        .unwrap();
    collect(stream).await
}

// --- tests -----------------------------------------------------------------

#[tokio::test]
async fn text_only() {
    let server = mock(vec![
        MockResponse::sse(text_stream(&[
            "Hello",
            ", wörld 👋",
            "! You sold 12 orders.",
        ]))
        .header("request-id", "req_test_1"),
    ])
    .await;
    let p = provider(&server);
    let stream = p
        .stream(
            request(vec![Message::user_text("hi")]),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(stream.meta().request_id.as_deref(), Some("req_test_1"));
    assert_eq!(stream.meta().attempts, 1);
    let (events, err) = collect(stream).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "Hello, wörld 👋! You sold 12 orders.");
    let n = events.len();
    assert_eq!(events[n - 2], ModelEvent::Usage(EXPECTED_USAGE));
    assert_eq!(
        events[n - 1],
        ModelEvent::Stop {
            reason: StopReason::EndTurn
        }
    );

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some("sk-ant-secret"));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(body["metadata"]["user_id"], "usr_abcdefgh");
    assert_eq!(
        body["system"][1]["cache_control"],
        json!({"type":"ephemeral"})
    );
    assert!(body["system"][2].get("cache_control").is_none());
    assert_eq!(
        body["tools"][1]["cache_control"],
        json!({"type":"ephemeral"})
    );
    assert!(body["tools"][0].get("cache_control").is_none());
}

#[tokio::test]
async fn tool_call_with_json_split_mid_token() {
    let body = message_start()
        + &text_block(0, &["Let me look that up."])
        + &tool_block(
            1,
            "toolu_01",
            "lookup_shopify_customer",
            &[
                "",
                "{\"em",
                "ail\": \"ja",
                "ne@exam",
                "ple.com\", \"note\": \"caf\u{e9} \\u00e9\\\"q",
                "\\\"\"}",
            ],
        )
        + &message_end("tool_use", 40);
    let server = mock(vec![MockResponse::sse(body)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("find jane")])).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        events,
        vec![
            ModelEvent::TextDelta("Let me look that up.".into()),
            ModelEvent::ToolCall(ToolCall {
                id: "toolu_01".into(),
                name: "lookup_shopify_customer".into(),
                input: json!({"email": "jane@example.com", "note": "café é\"q\""}),
            }),
            ModelEvent::Usage(Usage {
                output_tokens: 40,
                ..EXPECTED_USAGE
            }),
            ModelEvent::Stop {
                reason: StopReason::ToolUse
            },
        ]
    );
}

#[tokio::test]
async fn two_tool_calls_in_one_turn() {
    let body = message_start()
        + &tool_block(0, "toolu_a", "get_shopify_store_overview", &[])
        + &tool_block(
            1,
            "toolu_b",
            "get_shopify_orders_last_week",
            &["", "{\"limit\"", ": 5}"],
        )
        + &message_end("tool_use", 30);
    let server = mock(vec![MockResponse::sse(body)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("how am I doing")])).await;
    assert!(err.is_none(), "{err:?}");
    let calls: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::ToolCall(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            ToolCall {
                id: "toolu_a".into(),
                name: "get_shopify_store_overview".into(),
                input: json!({}),
            },
            ToolCall {
                id: "toolu_b".into(),
                name: "get_shopify_orders_last_week".into(),
                input: json!({"limit": 5}),
            },
        ]
    );
}

#[tokio::test]
async fn ping_and_unknown_events_between_deltas_are_ignored() {
    let ping = frame("ping", r#"{"type": "ping"}"#);
    let body = ping.clone()
        + &message_start()
        + &ping
        + &frame(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        )
        + &frame(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
        )
        + &frame(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        )
        + &frame(
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
        )
        + &frame(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"A"}}"#,
        )
        + &ping
        + &ping
        + &frame("brand_new_event", r#"{"type":"brand_new_event","x":1}"#)
        + &frame(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{}}}"#,
        )
        + ": a comment line\n\n"
        + &frame(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"B"}}"#,
        )
        + &frame(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        )
        + &ping
        + &message_end("end_turn", 15);
    let server = mock(vec![MockResponse::sse(body)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("x")])).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        events,
        vec![
            ModelEvent::TextDelta("A".into()),
            ModelEvent::TextDelta("B".into()),
            ModelEvent::Usage(EXPECTED_USAGE),
            ModelEvent::Stop {
                reason: StopReason::EndTurn
            },
        ]
    );
}

#[tokio::test]
async fn error_event_after_200_is_a_typed_error_and_not_retried() {
    let body = message_start()
        + &frame(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        )
        + &frame(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#,
        )
        + &frame(
            "error",
            r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#,
        );
    let server = mock(vec![MockResponse::sse(body)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("x")])).await;
    assert_eq!(events, vec![ModelEvent::TextDelta("Hel".into())]);
    match err {
        Some(ModelError::Api {
            kind,
            status,
            message,
            ..
        }) => {
            assert_eq!(kind, ApiErrorKind::Overloaded);
            assert_eq!(status, None);
            assert_eq!(message, "Overloaded");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn rate_limit_with_retry_after_then_success() {
    let server = mock(vec![
        MockResponse::status(
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_429"}"#,
        )
        .header("retry-after", "1"),
        MockResponse::sse(text_stream(&["ok"])),
    ]).await;
    let started = Instant::now();
    let stream = provider(&server)
        .stream(
            request(vec![Message::user_text("x")]),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "retry-after honoured"
    );
    assert_eq!(stream.meta().attempts, 2);
    let (events, err) = collect(stream).await;
    assert!(err.is_none());
    assert_eq!(text_of(&events), "ok");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, reqs[1].body, "the retry sends the same bytes");
}

#[tokio::test]
async fn overloaded_529_then_success() {
    let server = mock(vec![
        MockResponse::status(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
        MockResponse::sse(text_stream(&["fine"])),
    ])
    .await;
    let (events, err) = run(&server, request(vec![Message::user_text("x")])).await;
    assert!(err.is_none());
    assert_eq!(text_of(&events), "fine");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn server_errors_exhaust_bounded_attempts() {
    let server = mock(vec![MockResponse::status(
        500,
        r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
    )])
    .await;
    let err = provider(&server)
        .stream(
            request(vec![Message::user_text("x")]),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ModelError::Api {
            kind: ApiErrorKind::Server,
            status: Some(500),
            ..
        }
    ));
    assert_eq!(server.requests().len(), 3, "max_attempts = 3");
}

#[tokio::test]
async fn spend_limit_429_and_400_are_not_retried() {
    let server = mock(vec![MockResponse::status(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your specified API usage limits. You will regain access on 2026-12-01."}}"#,
    )
    .header("retry-after", "1")]).await;
    let err = provider(&server)
        .stream(
            request(vec![Message::user_text("x")]),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ModelError::Api {
            kind: ApiErrorKind::QuotaExceeded,
            ..
        }
    ));
    assert!(!err.is_retryable());
    assert_eq!(server.requests().len(), 1);

    let server = mock(vec![MockResponse::status(
        400,
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: bad"},"request_id":"req_x"}"#,
    )]).await;
    let err = provider(&server)
        .stream(
            request(vec![Message::user_text("x")]),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    match err {
        ModelError::Api {
            kind, request_id, ..
        } => {
            assert_eq!(kind, ApiErrorKind::InvalidRequest);
            assert_eq!(request_id.as_deref(), Some("req_x"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn non_json_413_is_a_typed_error() {
    let server = mock(vec![MockResponse::status(
        413,
        "<html>Request Entity Too Large</html>",
    )])
    .await;
    let err = provider(&server)
        .stream(
            request(vec![Message::user_text("x")]),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ModelError::Api {
            kind: ApiErrorKind::RequestTooLarge,
            status: Some(413),
            ..
        }
    ));
}

#[tokio::test]
async fn stream_cut_before_message_stop_is_an_error() {
    let body = message_start() + &text_block(0, &["partial"]);
    let server = mock(vec![MockResponse::sse(body)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("x")])).await;
    assert_eq!(text_of(&events), "partial");
    assert!(
        matches!(err, Some(ModelError::Protocol { ref message, .. }) if message.contains("message_stop")),
        "{err:?}"
    );
    // A tool call whose block never closed is not emitted either.
    let block = tool_block(0, "t", "get_shopify_store_counts", &["{}"]);
    let cut = block.rfind("event: content_block_stop").unwrap();
    let body = message_start() + &block[..cut];
    let server = mock(vec![MockResponse::sse(body)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("x")])).await;
    assert!(events.iter().all(|e| !matches!(e, ModelEvent::ToolCall(_))));
    assert!(err.is_some());
}

#[tokio::test]
async fn idle_timeout_between_chunks() {
    let mut http = test_http();
    http.idle_timeout = Duration::from_millis(200);
    // Stall inside the second text delta: the first one was already
    // produced, so the failure is not retried.
    let body = text_stream(&["slow", "er"]);
    let stall_at = (body.find("\"er\"").unwrap()) / common::CHUNK;
    let server = mock(vec![
        MockResponse::sse(body).stall_before(stall_at, Duration::from_secs(2)),
    ])
    .await;
    let p = AnthropicProvider::new(
        AnthropicConfig::new("k", MODEL)
            .with_base_url(server.base())
            .with_http(http),
    )
    .unwrap();
    let s = p
        .stream(
            request(vec![Message::user_text("x")]),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    let (events, err) = collect(s).await;
    assert_eq!(
        text_of(&events),
        "slow",
        "{err:?} {}",
        server.requests().len()
    );
    assert!(
        matches!(
            err,
            Some(ModelError::Timeout {
                what: "idle stream",
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn failures_before_any_event_are_retried_transparently() {
    // An overloaded error event right after message_start, then an idle
    // stall before any content: both retried, the third attempt succeeds.
    let overloaded = frame("ping", r#"{"type": "ping"}"#)
        + &message_start()
        + &frame(
            "error",
            r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#,
        );
    let mut http = test_http();
    http.idle_timeout = Duration::from_millis(200);
    let server = mock(vec![
        MockResponse::sse(overloaded.clone()),
        MockResponse::sse(text_stream(&["never"])).stall_before(2, Duration::from_secs(2)),
        MockResponse::sse(text_stream(&["third time lucky"])),
    ])
    .await;
    let p = AnthropicProvider::new(
        AnthropicConfig::new("k", MODEL)
            .with_base_url(server.base())
            .with_http(http),
    )
    .unwrap();
    let s = p
        .stream(
            request(vec![Message::user_text("x")]),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    let (events, err) = collect(s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "third time lucky");
    assert_eq!(server.requests().len(), 3);

    // The attempt budget is shared with the HTTP-level retries.
    let server = mock(vec![MockResponse::sse(overloaded)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("x")])).await;
    assert!(events.is_empty());
    assert!(
        matches!(
            err,
            Some(ModelError::Api {
                kind: ApiErrorKind::Overloaded,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 3, "max_attempts = 3");
}

#[tokio::test]
async fn cancellation_ends_the_stream() {
    let server = mock(vec![
        MockResponse::sse(text_stream(&["a", "b", "c"])).stall_before(20, Duration::from_secs(5)),
    ])
    .await;
    let cancel = CancellationToken::new();
    let s = provider(&server)
        .stream(request(vec![Message::user_text("x")]), cancel.clone())
        .await
        .unwrap();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.cancel();
    });
    let started = Instant::now();
    let (_, err) = collect(s).await;
    assert_eq!(err, Some(ModelError::Cancelled));
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A tool turn: the first call asks for two tools; the second request must
/// echo the assistant's tool_use blocks and carry both results in ONE user
/// message. Also checks the cacheable prefix is byte-identical across turns.
#[tokio::test]
async fn tool_results_round_trip_and_prefix_stays_identical() {
    let turn1 = message_start()
        + &text_block(0, &["Checking."])
        + &tool_block(1, "toolu_a", "get_shopify_store_overview", &[""])
        + &tool_block(
            2,
            "toolu_b",
            "lookup_shopify_customer",
            &["{\"email\":", "\"a@b.co\"}"],
        )
        + &message_end("tool_use", 20);
    let server = mock(vec![
        MockResponse::sse(turn1),
        MockResponse::sse(text_stream(&["You have 3 orders."])),
    ])
    .await;
    let p = provider(&server);

    let mut history = vec![Message::user_text("How is my store doing?")];
    let first = request(history.clone());
    let (events, err) = collect(
        p.stream(first.clone(), CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    assert!(err.is_none());

    // Build the assistant turn and the tool results as the agent loop would.
    let mut assistant = Vec::new();
    let mut results = Vec::new();
    for e in &events {
        match e {
            ModelEvent::TextDelta(t) => assistant.push(ContentBlock::Text { text: t.clone() }),
            ModelEvent::ToolCall(c) => {
                assistant.push(ContentBlock::ToolUse {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    input: c.input.clone(),
                });
                results.push(ContentBlock::ToolResult {
                    tool_use_id: c.id.clone(),
                    content: format!("{{\"tool\":\"{}\",\"orders\":3}}", c.name),
                    is_error: c.name == "lookup_shopify_customer",
                });
            }
            _ => {}
        }
    }
    history.push(Message {
        role: Role::Assistant,
        content: assistant,
    });
    history.push(Message {
        role: Role::User,
        content: results,
    });
    let second = request(history);
    let (events, err) = collect(
        p.stream(second.clone(), CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    assert!(err.is_none());
    assert_eq!(text_of(&events), "You have 3 orders.");

    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let body2 = reqs[1].json();
    let msgs = body2["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(
        msgs[1],
        json!({"role":"assistant","content":[
            {"type":"text","text":"Checking."},
            {"type":"tool_use","id":"toolu_a","name":"get_shopify_store_overview","input":{}},
            {"type":"tool_use","id":"toolu_b","name":"lookup_shopify_customer","input":{"email":"a@b.co"}}
        ]})
    );
    assert_eq!(
        msgs[2],
        json!({"role":"user","content":[
            {"type":"tool_result","tool_use_id":"toolu_a","content":"{\"tool\":\"get_shopify_store_overview\",\"orders\":3}"},
            {"type":"tool_result","tool_use_id":"toolu_b","content":"{\"tool\":\"lookup_shopify_customer\",\"orders\":3}","is_error":true}
        ]})
    );

    // The bytes on the wire are exactly what build_request_body produces.
    let b1 = &reqs[0].body;
    let b2 = &reqs[1].body;
    assert_eq!(b1, &build_request_body(MODEL, &first).unwrap());
    assert_eq!(Some(b1.clone()), p.request_body(&first));
    assert_eq!(b2, &build_request_body(MODEL, &second).unwrap());

    // Everything up to the last cache breakpoint is byte-identical...
    let marker = br#""cache_control":{"type":"ephemeral"}}"#;
    let breakpoint = b1
        .windows(marker.len())
        .rposition(|w| w == marker)
        .expect("a cache breakpoint")
        + marker.len();
    assert!(breakpoint > 0);
    assert_eq!(&b1[..breakpoint], &b2[..breakpoint]);
    // ...and so is the whole first turn: turn 2 only appends messages.
    let open_end = b1.len() - 2; // strip the closing `]}`
    assert_eq!(&b1[open_end..], b"]}");
    assert_eq!(&b1[..open_end], &b2[..open_end]);
    assert_eq!(b2[open_end], b',');
    // Sanity: the prefix order is tools → system → messages.
    let s1 = String::from_utf8(b1.clone()).unwrap();
    let (t, s, m) = (
        s1.find("\"tools\"").unwrap(),
        s1.find("\"system\"").unwrap(),
        s1.find("\"messages\"").unwrap(),
    );
    assert!(t < s && s < m);
    let _: Value = serde_json::from_slice(b2).unwrap();
}

#[tokio::test]
async fn any_chunk_size_gives_the_same_events() {
    let body = message_start()
        + &text_block(0, &["Grüße ", "🎉 done"])
        + &tool_block(
            1,
            "toolu_z",
            "get_shopify_top_products",
            &["{\"li", "mit\": 3}"],
        )
        + &message_end("tool_use", 15);
    let mut expected = None;
    for size in [1, 2, 3, 5, 64, 4096] {
        let server = mock(vec![MockResponse::sse_chunked(&body, size)]).await;
        // Through a trait object, as the agent loop holds it.
        let p: Arc<dyn ModelProvider> = Arc::new(provider(&server));
        let (events, err) = collect(
            p.stream(
                request(vec![Message::user_text("x")]),
                CancellationToken::new(),
            )
            .await
            .unwrap(),
        )
        .await;
        assert!(err.is_none(), "size {size}: {err:?}");
        assert_eq!(text_of(&events), "Grüße 🎉 done");
        match &expected {
            None => expected = Some(events),
            Some(e) => assert_eq!(&events, e, "size {size}"),
        }
    }
}

#[tokio::test]
async fn retry_after_beyond_the_limit_is_not_waited_for() {
    let server = mock(vec![
        MockResponse::status(
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        )
        .header("retry-after", "600"),
    ])
    .await;
    let started = Instant::now();
    let err = provider(&server)
        .stream(
            request(vec![Message::user_text("x")]),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    match err {
        ModelError::Api {
            kind, retry_after, ..
        } => {
            assert_eq!(kind, ApiErrorKind::RateLimited);
            assert_eq!(retry_after, Some(Duration::from_secs(600)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn connection_refused_is_a_retryable_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let p = AnthropicProvider::new(
        AnthropicConfig::new("k", MODEL)
            .with_base_url(format!("http://{addr}"))
            .with_http(test_http()),
    )
    .unwrap();
    let err = p
        .stream(
            request(vec![Message::user_text("x")]),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("sk-"), "no secrets in errors");
}

#[tokio::test]
async fn cancellation_during_retry_backoff() {
    let server = mock(vec![
        MockResponse::status(529, "{}").header("retry-after", "3"),
    ])
    .await;
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.cancel();
    });
    let started = Instant::now();
    let err = provider(&server)
        .stream(request(vec![Message::user_text("x")]), cancel)
        .await
        .unwrap_err();
    assert_eq!(err, ModelError::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(2));
}
