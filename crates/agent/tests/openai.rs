//! What only the OpenAI-compatible Chat Completions wire has, against the
//! test kit's mock model: its request shape, `data:` lines with comments and
//! `[DONE]`, usage chunks, tool calls keyed by `index` (or without one), and
//! the quirks of compatible servers. Everything every provider must do is in
//! the conformance suite (`tests/conformance/`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MockResponse, MockServer, collect, mock, test_http, text_of};
use hirecj_agent::model::openai::{OpenAiConfig, OpenAiProvider};
use hirecj_agent::model::{
    Message, ModelError, ModelEvent, ModelProvider, ModelRequest, StopReason, SystemBlock,
    ToolCall, ToolSpec, Usage,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const MODEL: &str = "gpt-test";

fn provider(server: &MockServer) -> OpenAiProvider {
    OpenAiProvider::new(
        OpenAiConfig::new("sk-openai-secret", MODEL)
            .with_base_url(format!("{}/v1", server.base()))
            .with_http(test_http()),
    )
    .unwrap()
}

fn data(v: Value) -> String {
    format!("data: {v}\n\n")
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    data(json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    }))
}

fn usage_chunk(prompt: u64, completion: u64, cached: u64) -> String {
    data(json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                  "prompt_tokens_details": {"cached_tokens": cached}}
    }))
}

const DONE: &str = "data: [DONE]\n\n";

fn request(messages: Vec<Message>) -> ModelRequest {
    ModelRequest {
        system: vec![
            SystemBlock::cached("You are CJ."),
            SystemBlock::volatile("Shop: demo (connected)."),
        ],
        messages,
        tools: vec![
            ToolSpec {
                name: "get_shopify_store_counts".into(),
                description: "Counts".into(),
                input_schema: json!({"type":"object","properties":{}}),
            },
            ToolSpec {
                name: "lookup_shopify_customer".into(),
                description: "Customer by email".into(),
                input_schema: json!({"type":"object","properties":{"email":{"type":"string"}},"required":["email"]}),
            },
        ],
        max_tokens: 512,
        temperature: Some(0.2),
        metadata_user_id: Some("usr_abcdefgh".into()),
    }
}

async fn run(server: &MockServer, req: ModelRequest) -> (Vec<ModelEvent>, Option<ModelError>) {
    let s = provider(server)
        .stream(req, CancellationToken::new())
        .await
        .unwrap();
    collect(s).await
}

fn calls(events: &[ModelEvent]) -> Vec<ToolCall> {
    events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::ToolCall(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn stop(events: &[ModelEvent]) -> StopReason {
    match events.last() {
        Some(ModelEvent::Stop { reason }) => reason.clone(),
        other => panic!("last event is not Stop: {other:?}"),
    }
}

#[tokio::test]
async fn text_with_usage_chunk_comments_and_done() {
    let body = chunk(json!({"role":"assistant","content":""}), None)
        + ": keep-alive\n\n"
        + &chunk(json!({"content":"Last week: "}), None)
        + &chunk(json!({"content":"42 orders, €1.234 🎉"}), None)
        + ": OPENROUTER PROCESSING\n\n"
        + &chunk(json!({}), Some("stop"))
        + &usage_chunk(100, 9, 64)
        + DONE;
    let server = mock(vec![
        MockResponse::sse(body).header("x-request-id", "req_oai_1"),
    ])
    .await;
    let s = provider(&server)
        .stream(
            request(vec![Message::user_text("orders?")]),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(s.meta().request_id.as_deref(), Some("req_oai_1"));
    let (events, err) = collect(s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "Last week: 42 orders, €1.234 🎉");
    assert_eq!(
        events[events.len() - 2],
        ModelEvent::Usage(Usage {
            input_tokens: 36,
            output_tokens: 9,
            cache_read_tokens: 64,
            cache_write_tokens: 0
        })
    );
    assert_eq!(stop(&events), StopReason::EndTurn);

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer sk-openai-secret"));
    let b = r.json();
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"], json!({"include_usage": true}));
    assert_eq!(b["max_tokens"], 512, "non-OpenAI hosts get max_tokens");
    assert_eq!(b["user"], "usr_abcdefgh");
    assert_eq!(
        b["messages"][0],
        json!({"role":"system","content":"You are CJ.\n\nShop: demo (connected)."})
    );
    assert_eq!(b["messages"][1], json!({"role":"user","content":"orders?"}));
    assert_eq!(
        b["tools"][1],
        json!({"type":"function","function":{"name":"lookup_shopify_customer","description":"Customer by email",
            "parameters":{"type":"object","properties":{"email":{"type":"string"}},"required":["email"]}}})
    );
}

#[tokio::test]
async fn tool_calls_split_across_chunks_by_index() {
    let body = chunk(
        json!({"role":"assistant","content":null,"tool_calls":[
            {"index":0,"id":"call_A","type":"function","function":{"name":"get_shopify_store_counts","arguments":""}}]}),
        None,
    ) + &chunk(
        json!({"tool_calls":[
            {"index":1,"id":"call_B","type":"function","function":{"name":"lookup_shopify_customer","arguments":""}}]}),
        None,
    ) + &chunk(
        json!({"tool_calls":[{"index":1,"function":{"arguments":"{\"em"}}]}),
        None,
    ) + &chunk(
        json!({"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}),
        None,
    ) + &chunk(
        json!({"tool_calls":[{"index":1,"function":{"arguments":"ail\": \"x@y.z\"}"}}]}),
        None,
    ) + &chunk(json!({}), Some("tool_calls"))
        + &usage_chunk(50, 20, 0)
        + DONE;
    let server = mock(vec![MockResponse::sse(body)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("x")])).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        calls(&events),
        vec![
            ToolCall {
                id: "call_A".into(),
                name: "get_shopify_store_counts".into(),
                input: json!({})
            },
            ToolCall {
                id: "call_B".into(),
                name: "lookup_shopify_customer".into(),
                input: json!({"email":"x@y.z"})
            },
        ]
    );
    assert_eq!(stop(&events), StopReason::ToolUse);
}

#[tokio::test]
async fn whole_tool_call_without_index_ollama_style() {
    // Ollama: the whole call in one chunk, no `index`, finish_reason "stop".
    let body = chunk(
        json!({"role":"assistant","content":"","tool_calls":[
            {"id":"call_x1","type":"function","function":{"name":"lookup_shopify_customer","arguments":"{\"email\":\"a@b.c\"}"}},
            {"id":"call_x2","type":"function","function":{"name":"get_shopify_store_counts","arguments":"{}"}}]}),
        None,
    ) + &chunk(json!({"role":"assistant","content":""}), Some("stop"))
        + &usage_chunk(10, 5, 0)
        + DONE;
    let server = mock(vec![MockResponse::sse(body)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("x")])).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        calls(&events),
        vec![
            ToolCall {
                id: "call_x1".into(),
                name: "lookup_shopify_customer".into(),
                input: json!({"email":"a@b.c"})
            },
            ToolCall {
                id: "call_x2".into(),
                name: "get_shopify_store_counts".into(),
                input: json!({})
            },
        ]
    );
    assert_eq!(stop(&events), StopReason::ToolUse);
}

#[tokio::test]
async fn empty_and_missing_arguments_become_empty_objects() {
    let body = chunk(
        json!({"tool_calls":[
            {"index":0,"id":"c0","type":"function","function":{"name":"get_shopify_store_counts","arguments":""}},
            {"index":1,"id":"c1","type":"function","function":{"name":"get_shopify_store_counts"}},
            {"index":2,"type":"function","function":{"name":"get_shopify_store_counts","arguments":null}}]}),
        Some("tool_calls"),
    ) + DONE;
    let server = mock(vec![MockResponse::sse(body)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("x")])).await;
    assert!(err.is_none(), "{err:?}");
    let got = calls(&events);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|c| c.input == json!({})));
    assert_eq!(got[2].id, "call_2", "a missing id is synthesised");
    // No usage chunk at all: usage is zero, not an error.
    assert_eq!(
        events[events.len() - 2],
        ModelEvent::Usage(Usage::default())
    );
}

#[tokio::test]
async fn usage_on_every_chunk_last_non_null_wins() {
    let with_usage = |delta: Value, finish: Option<&str>, usage: Value| {
        data(json!({"choices":[{"index":0,"delta":delta,"finish_reason":finish}],"usage":usage}))
    };
    let body = with_usage(
        json!({"content":"a"}),
        None,
        json!({"prompt_tokens":10,"completion_tokens":1}),
    ) + &with_usage(
        json!({"content":"b"}),
        None,
        json!({"prompt_tokens":10,"completion_tokens":2}),
    ) + &with_usage(
        json!({}),
        Some("length"),
        json!({"prompt_tokens":10,"completion_tokens":3}),
    ) + &data(json!({"choices":[],"usage":null}))
        + DONE;
    let server = mock(vec![MockResponse::sse(body)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("x")])).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "ab");
    assert_eq!(
        events[events.len() - 2],
        ModelEvent::Usage(Usage {
            input_tokens: 10,
            output_tokens: 3,
            ..Usage::default()
        })
    );
    assert_eq!(stop(&events), StopReason::MaxTokens);
}

#[tokio::test]
async fn missing_done_after_finish_is_tolerated() {
    let body = chunk(json!({"content":"done"}), None) + &chunk(json!({}), Some("stop"));
    let server = mock(vec![MockResponse::sse(body)]).await;
    let (events, err) = run(&server, request(vec![Message::user_text("x")])).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(stop(&events), StopReason::EndTurn);
}

#[tokio::test]
async fn local_server_without_api_key_sends_no_authorization() {
    let server = mock(vec![MockResponse::sse(
        chunk(json!({"content":"hi"}), Some("stop")) + DONE,
    )])
    .await;
    let mut cfg = OpenAiConfig::new("", MODEL)
        .with_base_url(format!("{}/v1/", server.base()))
        .with_http(test_http());
    cfg.api_key = None;
    let p = OpenAiProvider::new(cfg).unwrap();
    let (events, err) = collect(
        p.stream(
            request(vec![Message::user_text("x")]),
            CancellationToken::new(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert!(err.is_none());
    assert_eq!(text_of(&events), "hi");
    let r = &server.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert!(r.header("authorization").is_none());
}
