//! The wire formats the conformance suite scripts the mock model in: one
//! [`Wire`] per HTTP provider, each building the same *answers* (text,
//! tool calls, a mid-stream error, error statuses) in its own format, so a
//! scenario says what the model answers once and every wire sends it.
//!
//! Streams are built from the test kit's frame primitives
//! ([`hirecj_testkit::model::anthropic::event`], [`hirecj_testkit::model::openai::data`]);
//! the mock model itself is the test kit's.

use std::sync::Arc;
use std::time::Duration;

use hirecj_agent::model::anthropic::{AnthropicConfig, AnthropicProvider};
use hirecj_agent::model::openai::{OpenAiConfig, OpenAiProvider};
use hirecj_agent::model::{ApiErrorKind, HttpConfig, ModelProvider, Usage};
use hirecj_testkit::model::{MockModel, MockResponse, anthropic, openai};
use serde_json::{Value, json};

/// The API key every wire provider is given: errors must never show it.
pub const API_KEY: &str = "sk-conformance-secret";
/// The model name every wire provider is given.
pub const MODEL: &str = "conformance-model";

/// One piece of a scripted answer, in the order the model produces it.
#[derive(Clone, Copy, Debug)]
pub enum Part<'a> {
    /// Text, streamed as these deltas.
    Text(&'a [&'a str]),
    /// A tool call whose argument JSON arrives in these raw pieces (cut
    /// anywhere; no pieces at all means no arguments).
    Tool {
        id: &'a str,
        name: &'a str,
        pieces: &'a [&'a str],
    },
}

/// How a scripted answer ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The answer is complete.
    EndTurn,
    /// The model asks for the tool calls it made.
    ToolUse,
}

/// A mid-stream error as a wire reports it, and how the provider must type it.
pub struct StreamError {
    pub kind: ApiErrorKind,
    pub message: &'static str,
}

/// An HTTP provider's wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Anthropic,
    OpenAi,
}

impl Wire {
    /// The provider under test, talking to `mock` with `http`'s limits.
    /// Base URLs end in `/` on purpose: providers must not double it.
    pub fn provider_at(self, base: &str, http: HttpConfig) -> Arc<dyn ModelProvider> {
        match self {
            Self::Anthropic => Arc::new(
                AnthropicProvider::new(
                    AnthropicConfig::new(API_KEY, MODEL)
                        .with_base_url(format!("{base}/"))
                        .with_http(http),
                )
                .expect("an Anthropic provider"),
            ),
            Self::OpenAi => Arc::new(
                OpenAiProvider::new(
                    OpenAiConfig::new(API_KEY, MODEL)
                        .with_base_url(format!("{base}/v1/"))
                        .with_http(http),
                )
                .expect("an OpenAI-compatible provider"),
            ),
        }
    }

    /// The provider under test, talking to `mock`.
    pub fn provider(self, mock: &MockModel, http: HttpConfig) -> Arc<dyn ModelProvider> {
        self.provider_at(&mock.base(), http)
    }

    /// The path every call is posted to.
    pub fn path(self) -> &'static str {
        match self {
            Self::Anthropic => "/v1/messages",
            Self::OpenAi => "/v1/chat/completions",
        }
    }

    /// The response header carrying the provider's request id.
    pub fn request_id_header(self) -> &'static str {
        match self {
            Self::Anthropic => "request-id",
            Self::OpenAi => "x-request-id",
        }
    }

    /// A complete answer: `parts`, then the stop and `usage`.
    pub fn answer(self, parts: &[Part<'_>], finish: Finish, usage: Usage) -> String {
        self.events(parts, finish, usage).concat()
    }

    /// [`Wire::answer`] as separate events (one flushed chunk each).
    pub fn events(self, parts: &[Part<'_>], finish: Finish, usage: Usage) -> Vec<String> {
        let mut events = self.start(usage);
        events.extend(self.parts(parts));
        events.extend(self.end(finish, usage));
        events
    }

    /// An answer cut off after `parts`: no stop, no end of stream.
    pub fn cut(self, parts: &[Part<'_>]) -> String {
        let mut events = self.start(Usage::default());
        events.extend(self.parts(parts));
        events.concat()
    }

    /// `parts`, then an error inside the 200 stream.
    pub fn error_after(self, parts: &[Part<'_>]) -> (String, StreamError) {
        let mut events = self.start(Usage::default());
        events.extend(self.parts(parts));
        let error = match self {
            Self::Anthropic => {
                events.push(anthropic::event(
                    "error",
                    &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                ));
                StreamError {
                    kind: ApiErrorKind::Overloaded,
                    message: "Overloaded",
                }
            }
            Self::OpenAi => {
                let message = "The server had an error while processing your request.";
                events.push(openai::data(&json!({"error": {
                    "message": message, "type": "server_error", "param": null, "code": null}})));
                events.push(openai::DONE.to_owned());
                StreamError {
                    kind: ApiErrorKind::Server,
                    message,
                }
            }
        };
        (events.concat(), error)
    }

    fn start(self, usage: Usage) -> Vec<String> {
        match self {
            Self::Anthropic => vec![anthropic::event(
                "message_start",
                &json!({"type": "message_start", "message": {
                    "id": "msg_1", "type": "message", "role": "assistant", "content": [],
                    "model": MODEL, "stop_reason": null,
                    "usage": {"input_tokens": usage.input_tokens,
                              "cache_creation_input_tokens": usage.cache_write_tokens,
                              "cache_read_input_tokens": usage.cache_read_tokens,
                              "output_tokens": 1}}}),
            )],
            Self::OpenAi => Vec::new(),
        }
    }

    fn parts(self, parts: &[Part<'_>]) -> Vec<String> {
        let mut events = Vec::new();
        let mut tools = 0;
        for (index, part) in parts.iter().enumerate() {
            match (self, *part) {
                (Self::Anthropic, Part::Text(pieces)) => {
                    events.push(block_start(index, json!({"type": "text", "text": ""})));
                    events.extend(
                        pieces
                            .iter()
                            .map(|p| block_delta(index, json!({"type": "text_delta", "text": p}))),
                    );
                    events.push(block_stop(index));
                }
                (Self::Anthropic, Part::Tool { id, name, pieces }) => {
                    events.push(block_start(
                        index,
                        json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    ));
                    events.extend(pieces.iter().map(|p| {
                        block_delta(
                            index,
                            json!({"type": "input_json_delta", "partial_json": p}),
                        )
                    }));
                    events.push(block_stop(index));
                }
                (Self::OpenAi, Part::Text(pieces)) => {
                    events.extend(
                        pieces
                            .iter()
                            .map(|p| openai::chunk(json!({"content": p}), None)),
                    );
                }
                (Self::OpenAi, Part::Tool { id, name, pieces }) => {
                    events.push(openai::chunk(
                        json!({"tool_calls": [{"index": tools, "id": id, "type": "function",
                                               "function": {"name": name, "arguments": ""}}]}),
                        None,
                    ));
                    events.extend(pieces.iter().map(|p| {
                        openai::chunk(
                            json!({"tool_calls": [{"index": tools, "function": {"arguments": p}}]}),
                            None,
                        )
                    }));
                    tools += 1;
                }
            }
        }
        events
    }

    fn end(self, finish: Finish, usage: Usage) -> Vec<String> {
        match self {
            Self::Anthropic => vec![
                anthropic::event(
                    "message_delta",
                    &json!({"type": "message_delta",
                            "delta": {"stop_reason": match finish {
                                Finish::EndTurn => "end_turn",
                                Finish::ToolUse => "tool_use",
                            }, "stop_sequence": null},
                            "usage": {"output_tokens": usage.output_tokens}}),
                ),
                anthropic::event("message_stop", &json!({"type": "message_stop"})),
            ],
            Self::OpenAi => {
                let prompt = usage.total_input_tokens();
                vec![
                    openai::chunk(
                        json!({}),
                        Some(match finish {
                            Finish::EndTurn => "stop",
                            Finish::ToolUse => "tool_calls",
                        }),
                    ),
                    openai::data(&json!({
                        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "choices": [],
                        "usage": {"prompt_tokens": prompt,
                                  "completion_tokens": usage.output_tokens,
                                  "total_tokens": prompt + usage.output_tokens,
                                  "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens}}})),
                    openai::DONE.to_owned(),
                ]
            }
        }
    }

    /// A retryable "overloaded" status: Anthropic's 529, a compatible
    /// server's 503.
    pub fn overloaded(self) -> MockResponse {
        match self {
            Self::Anthropic => anthropic::error(529, "overloaded_error", "Overloaded"),
            Self::OpenAi => {
                openai::error(503, "server_error", "The engine is currently overloaded")
            }
        }
    }

    /// A 500.
    pub fn server_error(self) -> MockResponse {
        match self {
            Self::Anthropic => anthropic::error(500, "api_error", "Internal server error"),
            Self::OpenAi => openai::error(500, "server_error", "Internal server error"),
        }
    }

    /// A plain rate limit, with the wait header this wire's servers send
    /// (`retry-after` seconds; OpenAI's `retry-after-ms`) and that wait.
    pub fn rate_limited(self) -> (MockResponse, Duration) {
        match self {
            Self::Anthropic => (
                anthropic::error(
                    429,
                    "rate_limit_error",
                    "Number of request tokens has exceeded your per-minute rate limit",
                )
                .header("retry-after", "1"),
                Duration::from_secs(1),
            ),
            Self::OpenAi => (
                openai::error(
                    429,
                    "rate_limit_exceeded",
                    "Rate limit reached for requests",
                )
                .header("retry-after-ms", "300"),
                Duration::from_millis(300),
            ),
        }
    }

    /// A rate limit whose `retry-after` is far beyond any wait worth making.
    pub fn rate_limited_for_ten_minutes(self) -> MockResponse {
        match self {
            Self::Anthropic => anthropic::error(429, "rate_limit_error", "slow down"),
            Self::OpenAi => openai::error(429, "rate_limit_exceeded", "slow down"),
        }
        .header("retry-after", "600")
    }

    /// A 429 that waiting does not cure: Anthropic's spend limit (sent with
    /// a `retry-after` that must be ignored), OpenAI's `insufficient_quota`.
    pub fn quota_exceeded(self) -> MockResponse {
        match self {
            Self::Anthropic => anthropic::error(
                429,
                "rate_limit_error",
                "You have reached your specified API usage limits. You will regain access on 2026-12-01.",
            )
            .header("retry-after", "1"),
            Self::OpenAi => MockResponse::status(
                429,
                r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
            ),
        }
    }

    /// A 400, and the request id the provider must read from it, if the
    /// wire's error body carries one.
    pub fn invalid_request(self) -> (MockResponse, Option<&'static str>) {
        match self {
            Self::Anthropic => (
                MockResponse::status(
                    400,
                    r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: bad"},"request_id":"req_x"}"#,
                ),
                Some("req_x"),
            ),
            Self::OpenAi => (
                openai::error(400, "invalid_request_error", "messages: bad"),
                None,
            ),
        }
    }

    /// Checks the second request of a tool round (`second`, the JSON body):
    /// the assistant's text and both tool calls echoed, then the results
    /// (the second one a failure), in this wire's shape.
    pub fn assert_tool_round(self, second: &Value) {
        let messages = second["messages"].as_array().expect("messages");
        match self {
            Self::Anthropic => {
                // All results answering one turn in ONE user message.
                assert_eq!(messages.len(), 3);
                assert_eq!(
                    messages[1],
                    json!({"role":"assistant","content":[
                        {"type":"text","text":"Checking."},
                        {"type":"tool_use","id":"toolu_a","name":"get_shopify_store_overview","input":{}},
                        {"type":"tool_use","id":"toolu_b","name":"lookup_shopify_customer","input":{"email":"a@b.co"}}
                    ]})
                );
                assert_eq!(
                    messages[2],
                    json!({"role":"user","content":[
                        {"type":"tool_result","tool_use_id":"toolu_a","content":"{\"tool\":\"get_shopify_store_overview\",\"orders\":3}"},
                        {"type":"tool_result","tool_use_id":"toolu_b","content":"{\"tool\":\"lookup_shopify_customer\",\"orders\":3}","is_error":true}
                    ]})
                );
            }
            Self::OpenAi => {
                // System, user, assistant with `tool_calls` (arguments a
                // JSON string), then one `tool` message per call.
                assert_eq!(messages.len(), 5);
                assert_eq!(
                    messages[2],
                    json!({"role":"assistant","content":"Checking.","tool_calls":[
                        {"id":"toolu_a","type":"function","function":{"name":"get_shopify_store_overview","arguments":"{}"}},
                        {"id":"toolu_b","type":"function","function":{"name":"lookup_shopify_customer","arguments":"{\"email\":\"a@b.co\"}"}}
                    ]})
                );
                assert_eq!(
                    messages[3],
                    json!({"role":"tool","tool_call_id":"toolu_a","content":"{\"tool\":\"get_shopify_store_overview\",\"orders\":3}"})
                );
                assert_eq!(
                    messages[4],
                    json!({"role":"tool","tool_call_id":"toolu_b","content":"Error: {\"tool\":\"lookup_shopify_customer\",\"orders\":3}"})
                );
            }
        }
    }
}

fn block_start(index: usize, block: Value) -> String {
    anthropic::event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index, "content_block": block}),
    )
}

fn block_delta(index: usize, delta: Value) -> String {
    anthropic::event(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": index, "delta": delta}),
    )
}

fn block_stop(index: usize) -> String {
    anthropic::event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    )
}
