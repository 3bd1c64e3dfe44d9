//! Anthropic Messages API client (streaming).
//!
//! `POST {base}/v1/messages` with `stream: true`. Prompt caching: the last
//! tool and the last system block marked [`SystemBlock::cache`] carry
//! `cache_control: {"type":"ephemeral"}`. The body is serialized with a fixed
//! field order (`model`, `max_tokens`, `stream`, `temperature`, `metadata`,
//! `tools`, `system`, `messages`), which is also the cache prefix order, so two
//! turns of one conversation share a byte-identical prefix up to and past the
//! breakpoints (see [`build_request_body`]).
//!
//! [`SystemBlock::cache`]: super::SystemBlock::cache

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::http::{ErrorBody, HttpConfig, Sender, StreamDecoder, build_client, drive, short};
use super::sse::SseEvent;
use super::{
    ApiErrorKind, ContentBlock, ModelError, ModelEvent, ModelProvider, ModelRequest, ModelStream,
    Role, StopReason, ToolCall, Usage, parse_tool_input,
};

/// Production base URL (the official SDKs read `ANTHROPIC_BASE_URL`).
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The `anthropic-version` header value.
pub const API_VERSION: &str = "2023-06-01";
const PROVIDER: &str = "anthropic";

/// Settings of an [`AnthropicProvider`].
#[derive(Clone)]
pub struct AnthropicConfig {
    /// The API key (sent as `x-api-key`; never logged).
    pub api_key: String,
    /// Model id, e.g. `claude-sonnet-4-5`.
    pub model: String,
    /// Base URL without the `/v1/messages` path.
    pub base_url: String,
    /// Timeouts and retries.
    pub http: HttpConfig,
}

impl AnthropicConfig {
    /// Settings with the production base URL and default timeouts.
    pub fn new(api_key: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            model: model.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            http: HttpConfig::default(),
        }
    }

    /// Replaces the base URL.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Replaces the HTTP settings.
    pub fn with_http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }
}

impl std::fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicConfig")
            .field("api_key", &"<redacted>")
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("http", &self.http)
            .finish()
    }
}

/// The Anthropic Messages API behind [`ModelProvider`].
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    cfg: AnthropicConfig,
    url: String,
    key: HeaderValue,
    client: reqwest::Client,
}

impl AnthropicProvider {
    /// Builds the provider; fails on an API key that is not a valid header
    /// value or when the HTTP client cannot be created.
    pub fn new(cfg: AnthropicConfig) -> Result<Self, ModelError> {
        let mut key = HeaderValue::from_str(&cfg.api_key).map_err(|_| {
            ModelError::Config("the Anthropic API key contains invalid characters".into())
        })?;
        key.set_sensitive(true);
        let client = build_client(&cfg.http)?;
        let url = format!("{}/v1/messages", cfg.base_url.trim_end_matches('/'));
        Ok(Self {
            cfg,
            url,
            key,
            client,
        })
    }

    /// The full endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[async_trait]
impl ModelProvider for AnthropicProvider {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn model(&self) -> &str {
        &self.cfg.model
    }

    async fn stream(
        &self,
        req: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        let body = Bytes::from(build_request_body(&self.cfg.model, &req)?);
        let (client, url, key) = (self.client.clone(), self.url.clone(), self.key.clone());
        let sender = Sender {
            provider: PROVIDER,
            first_event_by: Sender::first_event_by(&self.cfg.http),
            cfg: self.cfg.http.clone(),
            request_id_header: "request-id",
            parse_error: parse_error_body,
            build: Arc::new(move || {
                client
                    .post(&url)
                    .header("x-api-key", key.clone())
                    .header("anthropic-version", API_VERSION)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone())
            }),
        };
        let (resp, meta) = sender.send(&cancel, 0).await?;
        let events = drive::<Decoder>(sender, resp, &meta, cancel);
        Ok(ModelStream::new(meta, events))
    }

    fn request_body(&self, req: &ModelRequest) -> Option<Vec<u8>> {
        build_request_body(&self.cfg.model, req).ok()
    }
}

// ---------------------------------------------------------------------------
// Request body

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<WireMetadata<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<WireSystem<'a>>,
    messages: Vec<WireMessage<'a>>,
}

#[derive(Serialize)]
struct WireMetadata<'a> {
    user_id: &'a str,
}

#[derive(Serialize)]
struct CacheControl {
    #[serde(rename = "type")]
    kind: &'static str,
}

const EPHEMERAL: CacheControl = CacheControl { kind: "ephemeral" };

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
}

#[derive(Serialize)]
struct WireSystem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Vec<WireBlock<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Cow<'a, Value>,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "is_empty_str")]
        content: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

fn is_empty_str(s: &&str) -> bool {
    s.is_empty()
}

/// Serializes `req` exactly as [`AnthropicProvider`] sends it.
///
/// Deterministic: identical input gives identical bytes. Wire rules applied:
/// empty text blocks and empty messages are dropped (the API rejects them);
/// consecutive messages of one role are merged, with `tool_result` blocks first
/// in a user message (all results of a turn go in one user message); a
/// `tool_use` input that is not an object is sent as `{}`; an empty
/// `tool_result` content is omitted; the last tool and
/// the last cacheable system block get `cache_control: {"type":"ephemeral"}`.
pub fn build_request_body(model: &str, req: &ModelRequest) -> Result<Vec<u8>, ModelError> {
    let last_tool = req.tools.len().checked_sub(1);
    let tools = req
        .tools
        .iter()
        .enumerate()
        .map(|(i, t)| WireTool {
            name: &t.name,
            description: &t.description,
            input_schema: &t.input_schema,
            cache_control: (Some(i) == last_tool).then_some(EPHEMERAL),
        })
        .collect();

    let system_blocks: Vec<_> = req.system.iter().filter(|b| !b.text.is_empty()).collect();
    let last_cached = system_blocks.iter().rposition(|b| b.cache);
    let system = system_blocks
        .iter()
        .enumerate()
        .map(|(i, b)| WireSystem {
            kind: "text",
            text: &b.text,
            cache_control: (Some(i) == last_cached).then_some(EPHEMERAL),
        })
        .collect();

    let mut messages: Vec<WireMessage<'_>> = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let blocks: Vec<WireBlock<'_>> = m.content.iter().filter_map(wire_block).collect();
        if blocks.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => messages.push(WireMessage {
                role,
                content: blocks,
            }),
        }
    }
    for m in messages.iter_mut().filter(|m| m.role == "user") {
        // Stable partition: tool results first.
        let (mut results, others): (Vec<_>, Vec<_>) = std::mem::take(&mut m.content)
            .into_iter()
            .partition(|b| matches!(b, WireBlock::ToolResult { .. }));
        results.extend(others);
        m.content = results;
    }

    let wire = WireRequest {
        model,
        max_tokens: req.max_tokens,
        stream: true,
        temperature: req.temperature,
        metadata: req
            .metadata_user_id
            .as_deref()
            .map(|user_id| WireMetadata { user_id }),
        tools,
        system,
        messages,
    };
    serde_json::to_vec(&wire).map_err(|e| ModelError::Config(format!("request serialization: {e}")))
}

fn wire_block(b: &ContentBlock) -> Option<WireBlock<'_>> {
    match b {
        ContentBlock::Text { text } if text.is_empty() => None,
        ContentBlock::Text { text } => Some(WireBlock::Text { text }),
        ContentBlock::ToolUse { id, name, input } => Some(WireBlock::ToolUse {
            id,
            name,
            input: if input.is_object() {
                Cow::Borrowed(input)
            } else {
                Cow::Owned(Value::Object(serde_json::Map::new()))
            },
        }),
        ContentBlock::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => Some(WireBlock::ToolResult {
            tool_use_id,
            content,
            is_error: *is_error,
        }),
    }
}

// ---------------------------------------------------------------------------
// Errors

fn kind_from_type(error_type: &str, message: &str) -> ApiErrorKind {
    match error_type {
        "invalid_request_error" => ApiErrorKind::InvalidRequest,
        "authentication_error" => ApiErrorKind::Authentication,
        "billing_error" => ApiErrorKind::Billing,
        "permission_error" => ApiErrorKind::Permission,
        "not_found_error" => ApiErrorKind::NotFound,
        "request_too_large" => ApiErrorKind::RequestTooLarge,
        "rate_limit_error" if is_spend_limit(message) => ApiErrorKind::QuotaExceeded,
        "rate_limit_error" => ApiErrorKind::RateLimited,
        "api_error" => ApiErrorKind::Server,
        "timeout_error" => ApiErrorKind::Timeout,
        "overloaded_error" => ApiErrorKind::Overloaded,
        other => ApiErrorKind::Other(other.to_owned()),
    }
}

/// A 429 that reports a spend/usage/credit limit rather than a rate limit:
/// waiting will not help.
fn is_spend_limit(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["spend", "billing", "credit balance", "usage limit", "quota"]
        .iter()
        .any(|needle| m.contains(needle))
}

/// Parses `{"type":"error","error":{"type","message"},"request_id"}`; falls
/// back to the status and the raw text (a 413 may not be JSON).
fn parse_error_body(status: u16, body: &[u8]) -> ErrorBody {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(short)
        .unwrap_or_else(|| short(String::from_utf8_lossy(body).trim()));
    let kind = match error.and_then(|e| e.get("type")).and_then(Value::as_str) {
        Some(t) => kind_from_type(t, &message),
        None if status == 429 && is_spend_limit(&message) => ApiErrorKind::QuotaExceeded,
        None => ApiErrorKind::from_status(status),
    };
    let request_id = parsed
        .as_ref()
        .and_then(|v| v.get("request_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    ErrorBody {
        kind,
        message,
        request_id,
    }
}

// ---------------------------------------------------------------------------
// Stream decoding

enum Block {
    Text,
    Tool {
        id: String,
        name: String,
        json: String,
        initial: Option<Value>,
    },
    Other,
}

#[derive(Default)]
struct Decoder {
    blocks: HashMap<u64, Block>,
    usage: Usage,
    stop: Option<StopReason>,
}

fn map_stop_reason(s: &str) -> StopReason {
    match s {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" => StopReason::MaxTokens,
        "tool_use" => StopReason::ToolUse,
        "stop_sequence" => StopReason::StopSequence,
        "refusal" => StopReason::Refusal,
        other => StopReason::Other(other.to_owned()),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

impl Decoder {
    /// Usage values are cumulative: each one present replaces the total.
    fn apply_usage(&mut self, usage: Option<&Value>) {
        let Some(u) = usage else { return };
        let get = |k: &str| u.get(k).and_then(Value::as_u64);
        if let Some(v) = get("input_tokens") {
            self.usage.input_tokens = v;
        }
        if let Some(v) = get("output_tokens") {
            self.usage.output_tokens = v;
        }
        if let Some(v) = get("cache_read_input_tokens") {
            self.usage.cache_read_tokens = v;
        }
        if let Some(v) = get("cache_creation_input_tokens") {
            self.usage.cache_write_tokens = v;
        }
    }

    fn finish_block(block: Block, out: &mut VecDeque<ModelEvent>) {
        let Block::Tool {
            id,
            name,
            json,
            initial,
        } = block
        else {
            return;
        };
        let parsed = if json.trim().is_empty() {
            match initial {
                Some(v @ Value::Object(_)) => Ok(v),
                _ => parse_tool_input(""),
            }
        } else {
            parse_tool_input(&json)
        };
        out.push_back(match parsed {
            Ok(input) => ModelEvent::ToolCall(ToolCall { id, name, input }),
            Err(error) => ModelEvent::MalformedToolCall {
                id,
                name,
                raw: json,
                error,
            },
        });
    }
}

const KNOWN_EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
];

impl StreamDecoder for Decoder {
    fn on_event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<bool, ModelError> {
        let data: Value = match serde_json::from_str(&event.data) {
            Ok(v) => v,
            Err(e) => {
                let name = event.event.as_deref().unwrap_or("");
                if KNOWN_EVENTS.contains(&name) {
                    return Err(ModelError::protocol(
                        PROVIDER,
                        format!("invalid JSON in `{name}` event: {e}"),
                    ));
                }
                return Ok(false); // unknown, non-JSON event: ignore
            }
        };
        let kind = str_field(&data, "type")
            .or(event.event.as_deref())
            .unwrap_or("");
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => {
                self.apply_usage(data.get("message").and_then(|m| m.get("usage")));
            }
            "content_block_start" => {
                let cb = data.get("content_block").unwrap_or(&Value::Null);
                let block = match str_field(cb, "type") {
                    Some("text") => {
                        if let Some(t) = str_field(cb, "text").filter(|t| !t.is_empty()) {
                            out.push_back(ModelEvent::TextDelta(t.to_owned()));
                        }
                        Block::Text
                    }
                    Some("tool_use") => Block::Tool {
                        id: str_field(cb, "id").unwrap_or_default().to_owned(),
                        name: str_field(cb, "name").unwrap_or_default().to_owned(),
                        json: String::new(),
                        initial: cb.get("input").cloned(),
                    },
                    _ => Block::Other,
                };
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                let delta = data.get("delta").unwrap_or(&Value::Null);
                match str_field(delta, "type") {
                    Some("text_delta") => {
                        if let Some(t) = str_field(delta, "text").filter(|t| !t.is_empty()) {
                            out.push_back(ModelEvent::TextDelta(t.to_owned()));
                        }
                    }
                    Some("input_json_delta") => {
                        if let Some(Block::Tool { json, .. }) = self.blocks.get_mut(&index) {
                            json.push_str(str_field(delta, "partial_json").unwrap_or_default());
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(block) = self.blocks.remove(&index) {
                    Self::finish_block(block, out);
                }
            }
            "message_delta" => {
                if let Some(r) = data
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    self.stop = Some(map_stop_reason(r));
                }
                self.apply_usage(data.get("usage"));
            }
            "message_stop" => {
                // Blocks never closed still count if they are complete tool calls.
                let mut open: Vec<_> = self.blocks.drain().collect();
                open.sort_by_key(|(i, _)| *i);
                for (_, block) in open {
                    Self::finish_block(block, out);
                }
                out.push_back(ModelEvent::Usage(self.usage));
                let reason = self
                    .stop
                    .take()
                    .unwrap_or_else(|| StopReason::Other("missing".into()));
                out.push_back(ModelEvent::Stop { reason });
                return Ok(true);
            }
            "error" => {
                let err = data.get("error").unwrap_or(&Value::Null);
                let message = short(str_field(err, "message").unwrap_or("stream error"));
                let kind = kind_from_type(str_field(err, "type").unwrap_or("unknown"), &message);
                return Err(ModelError::Api {
                    provider: PROVIDER.to_owned(),
                    status: None,
                    kind,
                    message,
                    request_id: str_field(&data, "request_id").map(str::to_owned),
                    retry_after: None,
                });
            }
            _ => {} // ping and future event types
        }
        Ok(false)
    }

    fn on_eof(&mut self, _out: &mut VecDeque<ModelEvent>) -> Result<(), ModelError> {
        Err(ModelError::protocol(
            PROVIDER,
            "stream ended before message_stop",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Message, SystemBlock, ToolSpec};
    use serde_json::json;

    fn decode(frames: &[(&str, Value)]) -> (Vec<ModelEvent>, Option<ModelError>, bool) {
        let mut d = Decoder::default();
        let mut out = VecDeque::new();
        for (name, data) in frames {
            let ev = SseEvent {
                event: Some((*name).to_owned()),
                data: data.to_string(),
            };
            match d.on_event(ev, &mut out) {
                Ok(true) => return (out.into(), None, true),
                Ok(false) => {}
                Err(e) => return (out.into(), Some(e), false),
            }
        }
        (out.into(), None, false)
    }

    #[test]
    fn usage_is_replaced_not_added() {
        let (events, err, done) = decode(&[
            (
                "message_start",
                json!({"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":500,"cache_creation_input_tokens":0,"output_tokens":1}}}),
            ),
            (
                "message_delta",
                json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}),
            ),
            (
                "message_delta",
                json!({"type":"message_delta","delta":{},"usage":{"output_tokens":7}}),
            ),
            ("message_stop", json!({"type":"message_stop"})),
        ]);
        assert!(err.is_none() && done);
        assert_eq!(
            events,
            vec![
                ModelEvent::Usage(Usage {
                    input_tokens: 10,
                    output_tokens: 7,
                    cache_read_tokens: 500,
                    cache_write_tokens: 0
                }),
                ModelEvent::Stop {
                    reason: StopReason::EndTurn
                }
            ]
        );
    }

    #[test]
    fn malformed_tool_json_is_reported_not_panicking() {
        let (events, err, _) = decode(&[
            (
                "content_block_start",
                json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t1","name":"x","input":{}}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\": tru"}}),
            ),
            (
                "content_block_stop",
                json!({"type":"content_block_stop","index":0}),
            ),
        ]);
        assert!(err.is_none());
        assert!(
            matches!(&events[0], ModelEvent::MalformedToolCall { id, raw, .. } if id == "t1" && raw == "{\"a\": tru")
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        let mut d = Decoder::default();
        let mut out = VecDeque::new();
        for data in [
            "",
            "null",
            "[]",
            "{}",
            "{\"type\":5}",
            "{\"type\":\"content_block_delta\"}",
            "{\"type\":\"content_block_start\",\"index\":-1,\"content_block\":[]}",
            "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":-3}}",
            "{\"type\":\"error\"}",
        ] {
            let _ = d.on_event(
                SseEvent {
                    event: None,
                    data: data.into(),
                },
                &mut out,
            );
        }
    }

    #[test]
    fn error_bodies() {
        let b = parse_error_body(
            429,
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"},"request_id":"req_1"}"#,
        );
        assert_eq!(b.kind, ApiErrorKind::RateLimited);
        assert_eq!(b.request_id.as_deref(), Some("req_1"));
        let b = parse_error_body(
            429,
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your specified API usage limits."}}"#,
        );
        assert_eq!(b.kind, ApiErrorKind::QuotaExceeded);
        let b = parse_error_body(413, b"<html>Request Entity Too Large</html>");
        assert_eq!(b.kind, ApiErrorKind::RequestTooLarge);
        assert!(b.message.contains("Too Large"));
        let b = parse_error_body(529, b"");
        assert_eq!(b.kind, ApiErrorKind::Overloaded);
    }

    #[test]
    fn body_shape_and_cache_markers() {
        let req = ModelRequest {
            system: vec![
                SystemBlock::cached("persona"),
                SystemBlock::cached("workflow"),
                SystemBlock::volatile("context"),
                SystemBlock::volatile(""),
            ],
            messages: vec![
                Message::user_text("hi"),
                Message {
                    role: Role::Assistant,
                    content: vec![
                        ContentBlock::Text {
                            text: String::new(),
                        },
                        ContentBlock::ToolUse {
                            id: "a".into(),
                            name: "t".into(),
                            input: json!("not an object"),
                        },
                    ],
                },
                Message {
                    role: Role::User,
                    content: vec![ContentBlock::ToolResult {
                        tool_use_id: "a".into(),
                        content: "{}".into(),
                        is_error: true,
                    }],
                },
                Message {
                    role: Role::User,
                    content: vec![ContentBlock::Text {
                        text: "more".into(),
                    }],
                },
            ],
            tools: vec![
                ToolSpec {
                    name: "t".into(),
                    description: "d".into(),
                    input_schema: json!({"type":"object"}),
                },
                ToolSpec {
                    name: "u".into(),
                    description: "e".into(),
                    input_schema: json!({"type":"object"}),
                },
            ],
            max_tokens: 100,
            temperature: Some(0.25),
            metadata_user_id: Some("usr_12345678".into()),
        };
        let body: Value = serde_json::from_slice(&build_request_body("m", &req).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "m", "max_tokens": 100, "stream": true, "temperature": 0.25,
                "metadata": {"user_id": "usr_12345678"},
                "tools": [
                    {"name":"t","description":"d","input_schema":{"type":"object"}},
                    {"name":"u","description":"e","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}
                ],
                "system": [
                    {"type":"text","text":"persona"},
                    {"type":"text","text":"workflow","cache_control":{"type":"ephemeral"}},
                    {"type":"text","text":"context"}
                ],
                "messages": [
                    {"role":"user","content":[{"type":"text","text":"hi"}]},
                    {"role":"assistant","content":[{"type":"tool_use","id":"a","name":"t","input":{}}]},
                    {"role":"user","content":[
                        {"type":"tool_result","tool_use_id":"a","content":"{}","is_error":true},
                        {"type":"text","text":"more"}
                    ]}
                ]
            })
        );
    }
}
