//! What only the Anthropic Messages wire has, against the test kit's mock
//! model: its headers and `cache_control` breakpoints, `ping` and unknown
//! events, `message_stop`, and the byte-stable cacheable prefix. Everything
//! every provider must do is in the conformance suite (`tests/conformance/`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MockResponse, MockServer, collect, mock, test_http, text_of};
use hirecj_agent::model::anthropic::{AnthropicConfig, AnthropicProvider, build_request_body};
use hirecj_agent::model::{
    Message, ModelError, ModelEvent, ModelProvider, ModelRequest, StopReason, SystemBlock,
    ToolSpec, Usage,
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

/// What only the Anthropic wire carries: its auth and version headers,
/// `metadata.user_id`, and the cache breakpoint after the last cached system
/// block and the last tool (the conformance suite checks the rest).
#[tokio::test]
async fn request_headers_metadata_and_cache_breakpoints() {
    let server = mock(vec![
        MockResponse::sse(text_stream(&[
            "Hello",
            ", wörld 👋",
            "! You sold 12 orders.",
        ]))
        .header("request-id", "req_test_1"),
    ])
    .await;
    let (_, err) = run(&server, request(vec![Message::user_text("hi")])).await;
    assert!(err.is_none(), "{err:?}");

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.header("x-api-key"), Some("sk-ant-secret"));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    let body = r.json();
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

/// `ping` anywhere, unknown events, unknown block and delta types and SSE
/// comments are skipped without a trace.
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

/// A stream cut before `message_stop` names what it missed.
#[tokio::test]
async fn cut_stream_error_names_message_stop() {
    let body = message_start() + &text_block(0, &["partial"]);
    let server = mock(vec![MockResponse::sse(body)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("x")])).await;
    assert_eq!(text_of(&events), "partial");
    assert!(
        matches!(err, Some(ModelError::Protocol { ref message, .. }) if message.contains("message_stop")),
        "{err:?}"
    );
}

/// The cacheable prefix is byte-identical across a tool round: the second
/// request only appends messages, and the prefix order is tools → system →
/// messages (the round trip's message shapes are in the conformance suite).
#[tokio::test]
async fn cacheable_prefix_stays_byte_identical_across_a_tool_round() {
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

    let first = request(vec![Message::user_text("How is my store doing?")]);
    let (events, err) = collect(
        p.stream(first.clone(), CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    assert!(err.is_none(), "{err:?}");
    let second = common::with_tool_round(&first, &events, |c| {
        (format!("{{\"tool\":\"{}\",\"orders\":3}}", c.name), false)
    });
    let (_, err) = collect(
        p.stream(second.clone(), CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    assert!(err.is_none(), "{err:?}");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);

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
