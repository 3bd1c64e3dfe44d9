//! The agent loop end to end: real Anthropic / OpenAI clients against
//! in-process mock servers that stream in small chunks, real tools over the
//! real Shopify fetcher and an in-process development store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::{MockResponse, mock, test_http};
use hirecj_agent::model::anthropic::{AnthropicConfig, AnthropicProvider};
use hirecj_agent::model::openai::{OpenAiConfig, OpenAiProvider};
use hirecj_agent::tools::ToolContext;
use hirecj_agent::turn::{
    HistoryEntry, MerchantContext, TurnConfig, TurnEvent, TurnInput, run_turn,
};
use hirecj_agent::workflow::{AD_HOC_SUPPORT, Catalog};
use hirecj_eval::devstore::DevStoreSource;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const SHOP: &str = "eval-candles.myshopify.com";

fn frame(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

fn anthropic_stream(blocks: &[Value], deltas: &[Vec<Value>], stop: &str) -> String {
    let mut s = frame(
        "message_start",
        &json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048,"output_tokens":1}}}),
    );
    for (i, (b, ds)) in blocks.iter().zip(deltas).enumerate() {
        s += &frame(
            "content_block_start",
            &json!({"type":"content_block_start","index":i,"content_block":b}),
        );
        s += &frame("ping", &json!({"type":"ping"}));
        for d in ds {
            s += &frame(
                "content_block_delta",
                &json!({"type":"content_block_delta","index":i,"delta":d}),
            );
        }
        s += &frame(
            "content_block_stop",
            &json!({"type":"content_block_stop","index":i}),
        );
    }
    s += &frame(
        "message_delta",
        &json!({"type":"message_delta","delta":{"stop_reason":stop,"stop_sequence":null},"usage":{"output_tokens":20}}),
    );
    s + &frame("message_stop", &json!({"type":"message_stop"}))
}

fn text_block(pieces: &[&str]) -> (Value, Vec<Value>) {
    (
        json!({"type":"text","text":""}),
        pieces
            .iter()
            .map(|p| json!({"type":"text_delta","text":p}))
            .collect(),
    )
}

fn tool_block(id: &str, name: &str, pieces: &[&str]) -> (Value, Vec<Value>) {
    (
        json!({"type":"tool_use","id":id,"name":name,"input":{}}),
        pieces
            .iter()
            .map(|p| json!({"type":"input_json_delta","partial_json":p}))
            .collect(),
    )
}

fn stream_of(parts: Vec<(Value, Vec<Value>)>, stop: &str) -> String {
    let (blocks, deltas): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    anthropic_stream(&blocks, &deltas, stop)
}

fn input<'a>(catalog: &'a Catalog, history: Vec<HistoryEntry>) -> TurnInput<'a> {
    TurnInput {
        conversation_id: "conv-e2e".into(),
        workflow: catalog.workflow(AD_HOC_SUPPORT).unwrap(),
        persona: catalog.persona(),
        merchant: MerchantContext {
            shop_name: Some("Eval Candles".into()),
            shop_domain: Some(SHOP.into()),
            connected: true,
            needs_reconnect: false,
            last_visit: None,
            ..MerchantContext::default()
        },
        facts: vec![],
        history,
        system_event: None,
        summary: None,
        today: Utc::now().date_naive(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_tool_turn_then_text_turn() {
    let devstore = DevStoreSource::start().await.unwrap();
    let tools = ToolContext::connected(Arc::new(devstore.fetcher(SHOP).unwrap()));
    let round1 = stream_of(
        vec![
            text_block(&["Let me ", "check."]),
            tool_block("toolu_1", "get_shopify_orders_last_week", &["", "{", "}"]),
            tool_block(
                "toolu_2",
                "get_shopify_top_products",
                &["{\"da", "ys\": 7, \"li", "mit\": 3}"],
            ),
        ],
        "tool_use",
    );
    let round2 = stream_of(
        vec![text_block(&[
            "Last week: ",
            "solid.\n{{oa",
            "uth:shopify}}",
        ])],
        "end_turn",
    );
    let turn2 = stream_of(vec![text_block(&["Sure."])], "end_turn");
    let server = mock(vec![
        MockResponse::sse(round1),
        MockResponse::sse(round2),
        MockResponse::sse(turn2),
    ])
    .await;
    let provider = AnthropicProvider::new(
        AnthropicConfig::new("sk-ant-secret", "claude-test")
            .with_base_url(format!("{}/", server.base()))
            .with_http(test_http()),
    )
    .unwrap();
    let catalog = Catalog::embedded().unwrap();
    let events = Mutex::new(Vec::new());
    let sink = |e: TurnEvent| events.lock().unwrap().push(e);

    let q1 = HistoryEntry::merchant("How did last week go?");
    let out = run_turn(
        &provider,
        &tools,
        input(&catalog, vec![q1.clone()]),
        &TurnConfig::default(),
        &sink,
        CancellationToken::new(),
    )
    .await;
    assert_eq!(out.error, None, "{:?}", out.error);
    assert_eq!(out.text, "Let me check.\n\nLast week: solid.\n");
    assert!(out.ui_elements.is_empty(), "connected: no button");
    assert_eq!(
        out.tools_called,
        vec!["get_shopify_orders_last_week", "get_shopify_top_products"]
    );
    assert_eq!(
        out.trace.tool_calls[1].arguments,
        json!({"days": 7, "limit": 3})
    );
    assert!(out.trace.tool_calls.iter().all(|t| !t.is_error));
    assert_eq!(out.usage.cache_read_tokens, 4096);
    assert_eq!(out.trace.rounds.len(), 2);
    assert_eq!(out.trace.rounds[0].request["model"], "claude-test");
    assert!(out.trace.time_to_first_token_ms.is_some());
    let evs = events.lock().unwrap().clone();
    assert!(evs.iter().any(|e| matches!(e, TurnEvent::ToolFinished { name, ok: true, .. } if name == "get_shopify_top_products")));

    // The second request carries the assistant's tool_use blocks and both
    // results in one user message, in Anthropic's wire shape.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let second = reqs[1].json();
    let msgs = second["messages"].as_array().unwrap();
    let assistant = &msgs[msgs.len() - 2];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(
        assistant["content"][0],
        json!({"type":"text","text":"Let me check."})
    );
    assert_eq!(assistant["content"][1]["type"], "tool_use");
    assert_eq!(
        assistant["content"][2]["input"],
        json!({"days": 7, "limit": 3})
    );
    let results = &msgs[msgs.len() - 1];
    assert_eq!(results["role"], "user");
    assert_eq!(results["content"][0]["type"], "tool_result");
    assert_eq!(results["content"][0]["tool_use_id"], "toolu_1");
    assert_eq!(results["content"][1]["tool_use_id"], "toolu_2");
    let week: Value =
        serde_json::from_str(results["content"][0]["content"].as_str().unwrap()).unwrap();
    assert!(week["orders"].is_u64());
    let tool_names: Vec<_> = second["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = tool_names.clone();
    sorted.sort();
    assert_eq!(tool_names, sorted);
    assert!(tool_names.iter().all(|n| n != "shop"));

    // Turn 2 of the same conversation: the bytes before the volatile block
    // (tools, persona, workflow: the cached prefix) are identical.
    let history = vec![
        q1,
        HistoryEntry::cj(out.text.clone()),
        HistoryEntry::merchant("thanks, and best sellers?"),
    ];
    let out2 = run_turn(
        &provider,
        &tools,
        input(&catalog, history),
        &TurnConfig::default(),
        &|_| {},
        CancellationToken::new(),
    )
    .await;
    assert_eq!(out2.text, "Sure.");
    let reqs = server.requests();
    let a = String::from_utf8(reqs[0].body.clone()).unwrap();
    let b = String::from_utf8(reqs[2].body.clone()).unwrap();
    let cut = |s: &str| s[..s.find("# Merchant context").unwrap()].to_owned();
    assert_eq!(cut(&a), cut(&b));
    assert!(cut(&a).contains("cache_control"));
    assert_ne!(a, b);
}

fn openai_data(v: Value) -> String {
    format!("data: {v}\n\n")
}

fn openai_chunk(delta: Value, finish: Option<&str>) -> String {
    openai_data(json!({
        "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_whole_tool_call_without_index() {
    let devstore = DevStoreSource::start().await.unwrap();
    let tools = ToolContext::connected(Arc::new(devstore.fetcher(SHOP).unwrap()));
    let round1 = openai_chunk(json!({"role":"assistant","content":null}), None)
        + &openai_chunk(
            json!({"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_shopify_store_counts","arguments":"{}"}}]}),
            None,
        )
        + &openai_chunk(json!({}), Some("tool_calls"))
        + "data: [DONE]\n\n";
    let round2 = openai_chunk(json!({"content":"You have "}), None)
        + &openai_chunk(json!({"content":"customers."}), Some("stop"))
        + "data: [DONE]\n\n";
    let server = mock(vec![MockResponse::sse(round1), MockResponse::sse(round2)]).await;
    let provider = OpenAiProvider::new(
        OpenAiConfig::new("sk-openai-secret", "gpt-test")
            .with_base_url(format!("{}/v1", server.base()))
            .with_http(test_http()),
    )
    .unwrap();
    let catalog = Catalog::embedded().unwrap();
    let out = run_turn(
        &provider,
        &tools,
        input(
            &catalog,
            vec![HistoryEntry::merchant("How many customers?")],
        ),
        &TurnConfig::default(),
        &|_| {},
        CancellationToken::new(),
    )
    .await;
    assert_eq!(out.error, None, "{:?}", out.error);
    assert_eq!(out.text, "You have customers.");
    assert_eq!(out.tools_called, vec!["get_shopify_store_counts"]);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let second = reqs[1].json();
    let msgs = second["messages"].as_array().unwrap();
    let tool_msg = msgs.last().unwrap();
    assert_eq!(tool_msg["role"], "tool");
    assert_eq!(tool_msg["tool_call_id"], "call_1");
    let counts: Value = serde_json::from_str(tool_msg["content"].as_str().unwrap()).unwrap();
    assert!(counts["customers"]["count"].is_u64());
    let assistant = &msgs[msgs.len() - 2];
    assert_eq!(
        assistant["tool_calls"][0]["function"]["name"],
        "get_shopify_store_counts"
    );
}
