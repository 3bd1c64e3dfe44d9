//! OpenAI-compatible Chat Completions client (streaming).
//!
//! `POST {base}/chat/completions` where `base` is an `OPENAI_BASE_URL`-style
//! URL that usually ends in `/v1` (OpenAI, Ollama, vLLM, llama.cpp). The
//! stream is `data:` lines ending with `data: [DONE]`; text comes in
//! `delta.content`, tool calls in `delta.tool_calls[]` fragments.
//!
//! Tolerated server quirks: tool-call fragments without `index` (keyed by
//! `id`, or continuing the previous call), whole tool calls in one chunk,
//! missing or empty `arguments` (→ `{}`), `arguments` sent as an object,
//! usage on every chunk (the last one wins), a missing `[DONE]` after a
//! `finish_reason`, `finish_reason: "stop"` on a turn with tool calls, and
//! `{"error": …}` lines mid-stream (→ an error).

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::http::{ErrorBody, HttpConfig, Sender, StreamDecoder, build_client, drive, short};
use super::sse::SseEvent;
use super::{
    ApiErrorKind, ContentBlock, ModelError, ModelEvent, ModelProvider, ModelRequest, ModelStream,
    Role, StopReason, ToolCall, Usage, parse_tool_input,
};

/// Production base URL (the official SDKs read `OPENAI_BASE_URL`).
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
const PROVIDER: &str = "openai";

/// Which request field carries the output-token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokensField {
    /// `max_tokens`: understood by compatible servers (Ollama, vLLM, llama.cpp).
    MaxTokens,
    /// `max_completion_tokens`: required by OpenAI's newer models.
    MaxCompletionTokens,
}

/// Settings of an [`OpenAiProvider`].
#[derive(Clone)]
pub struct OpenAiConfig {
    /// Bearer token; `None` or empty sends no `Authorization` header (local
    /// servers). Never logged.
    pub api_key: Option<String>,
    /// Model id, e.g. `gpt-4.1` or `llama3.1:8b`.
    pub model: String,
    /// Base URL, usually ending in `/v1`; `/chat/completions` is appended.
    pub base_url: String,
    /// Token-limit field; `None` picks `max_completion_tokens` for
    /// `api.openai.com` and `max_tokens` elsewhere.
    pub max_tokens_field: Option<MaxTokensField>,
    /// Timeouts and retries.
    pub http: HttpConfig,
}

impl OpenAiConfig {
    /// Settings for OpenAI itself with default timeouts.
    pub fn new(api_key: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            api_key: Some(api_key.into()),
            model: model.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            max_tokens_field: None,
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

    fn resolved_max_tokens_field(&self) -> MaxTokensField {
        self.max_tokens_field.unwrap_or_else(|| {
            if self.base_url.contains("://api.openai.com") {
                MaxTokensField::MaxCompletionTokens
            } else {
                MaxTokensField::MaxTokens
            }
        })
    }
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("max_tokens_field", &self.max_tokens_field)
            .field("http", &self.http)
            .finish()
    }
}

/// An OpenAI-compatible Chat Completions server behind [`ModelProvider`].
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    cfg: OpenAiConfig,
    url: String,
    auth: Option<HeaderValue>,
    max_tokens_field: MaxTokensField,
    client: reqwest::Client,
}

impl OpenAiProvider {
    /// Builds the provider; fails on an API key that is not a valid header
    /// value or when the HTTP client cannot be created.
    pub fn new(cfg: OpenAiConfig) -> Result<Self, ModelError> {
        let auth = match cfg.api_key.as_deref().filter(|k| !k.is_empty()) {
            Some(key) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                    ModelError::Config("the OpenAI API key contains invalid characters".into())
                })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let client = build_client(&cfg.http)?;
        let url = format!("{}/chat/completions", cfg.base_url.trim_end_matches('/'));
        let max_tokens_field = cfg.resolved_max_tokens_field();
        Ok(Self {
            cfg,
            url,
            auth,
            max_tokens_field,
            client,
        })
    }

    /// The full endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[async_trait]
impl ModelProvider for OpenAiProvider {
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
        let body = Bytes::from(build_request_body(
            &self.cfg.model,
            self.max_tokens_field,
            &req,
        )?);
        let (client, url, auth) = (self.client.clone(), self.url.clone(), self.auth.clone());
        let sender = Sender {
            provider: PROVIDER,
            first_event_by: Sender::first_event_by(&self.cfg.http),
            cfg: self.cfg.http.clone(),
            request_id_header: "x-request-id",
            parse_error: parse_error_body,
            build: Arc::new(move || {
                let rb = client
                    .post(&url)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
                match &auth {
                    Some(auth) => rb.header(AUTHORIZATION, auth.clone()),
                    None => rb,
                }
            }),
        };
        let (resp, meta) = sender.send(&cancel, 0).await?;
        let events = drive::<Decoder>(sender, resp, &meta, cancel);
        Ok(ModelStream::new(meta, events))
    }

    fn request_body(&self, req: &ModelRequest) -> Option<Vec<u8>> {
        build_request_body(&self.cfg.model, self.max_tokens_field, req).ok()
    }
}

// ---------------------------------------------------------------------------
// Request body

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
enum WireMessage<'a> {
    System {
        content: String,
    },
    User {
        content: String,
    },
    Assistant {
        content: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireToolCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: String,
    },
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireCallFunction<'a>,
}

#[derive(Serialize)]
struct WireCallFunction<'a> {
    name: &'a str,
    arguments: String,
}

/// Serializes `req` exactly as [`OpenAiProvider`] sends it (deterministic).
///
/// Mapping: system blocks joined by a blank line into one `system` message;
/// user text blocks joined into one `user` message, preceded by one `tool`
/// message per tool result (`tool_call_id`; failed results are prefixed with
/// `"Error: "`); assistant text plus `tool_calls` whose `arguments` is a JSON
/// string.
pub fn build_request_body(
    model: &str,
    max_tokens_field: MaxTokensField,
    req: &ModelRequest,
) -> Result<Vec<u8>, ModelError> {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    let system = req
        .system
        .iter()
        .map(|b| b.text.as_str())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    if !system.is_empty() {
        messages.push(WireMessage::System { content: system });
    }
    for m in &req.messages {
        let text = m
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
        match m.role {
            Role::User => {
                for b in &m.content {
                    if let ContentBlock::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                    } = b
                    {
                        messages.push(WireMessage::Tool {
                            tool_call_id: tool_use_id,
                            content: if *is_error {
                                format!("Error: {content}")
                            } else {
                                content.clone()
                            },
                        });
                    }
                }
                if !text.is_empty() {
                    messages.push(WireMessage::User { content: text });
                }
            }
            Role::Assistant => {
                let tool_calls: Vec<_> = m
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        ContentBlock::ToolUse { id, name, input } => Some(WireToolCall {
                            id,
                            kind: "function",
                            function: WireCallFunction {
                                name,
                                arguments: if input.is_object() {
                                    input.to_string()
                                } else {
                                    "{}".to_owned()
                                },
                            },
                        }),
                        _ => None,
                    })
                    .collect();
                if text.is_empty() && tool_calls.is_empty() {
                    continue;
                }
                messages.push(WireMessage::Assistant {
                    content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
                    tool_calls,
                });
            }
        }
    }
    let tools = req
        .tools
        .iter()
        .map(|t| WireTool {
            kind: "function",
            function: WireFunction {
                name: &t.name,
                description: &t.description,
                parameters: &t.input_schema,
            },
        })
        .collect();
    let (max_tokens, max_completion_tokens) = match max_tokens_field {
        MaxTokensField::MaxTokens => (Some(req.max_tokens), None),
        MaxTokensField::MaxCompletionTokens => (None, Some(req.max_tokens)),
    };
    let wire = WireRequest {
        model,
        messages,
        tools,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        max_tokens,
        max_completion_tokens,
        temperature: req.temperature,
        user: req.metadata_user_id.as_deref(),
    };
    serde_json::to_vec(&wire).map_err(|e| ModelError::Config(format!("request serialization: {e}")))
}

// ---------------------------------------------------------------------------
// Errors

fn is_quota(error: &Value) -> bool {
    ["code", "type"].iter().any(|k| {
        matches!(
            error.get(*k).and_then(Value::as_str),
            Some("insufficient_quota" | "billing_hard_limit_reached")
        )
    })
}

fn kind_from_error(status: Option<u16>, error: &Value) -> ApiErrorKind {
    if is_quota(error) {
        return ApiErrorKind::QuotaExceeded;
    }
    if let Some(s) = status {
        return ApiErrorKind::from_status(s);
    }
    if let Some(code) = error.get("code").and_then(Value::as_u64) {
        return u16::try_from(code)
            .map(ApiErrorKind::from_status)
            .unwrap_or_else(|_| ApiErrorKind::Other(code.to_string()));
    }
    let t = error
        .get("type")
        .and_then(Value::as_str)
        .or_else(|| error.get("code").and_then(Value::as_str))
        .unwrap_or("unknown");
    match t {
        "invalid_request_error" => ApiErrorKind::InvalidRequest,
        "authentication_error" | "invalid_api_key" => ApiErrorKind::Authentication,
        "rate_limit_exceeded" | "rate_limit_error" => ApiErrorKind::RateLimited,
        "server_error" | "api_error" | "internal_error" => ApiErrorKind::Server,
        "overloaded_error" | "service_unavailable" => ApiErrorKind::Overloaded,
        "timeout" | "timeout_error" => ApiErrorKind::Timeout,
        other => ApiErrorKind::Other(other.to_owned()),
    }
}

fn error_message(error: &Value) -> String {
    match error {
        Value::String(s) => short(s),
        _ => short(
            error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error"),
        ),
    }
}

/// Parses `{"error":{"message","type","param","code"}}`; falls back to the
/// status and the raw text.
fn parse_error_body(status: u16, body: &[u8]) -> ErrorBody {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(error) => ErrorBody {
            kind: kind_from_error(Some(status), error),
            message: error_message(error),
            request_id: None,
        },
        None => ErrorBody {
            kind: ApiErrorKind::from_status(status),
            message: short(String::from_utf8_lossy(body).trim()),
            request_id: None,
        },
    }
}

// ---------------------------------------------------------------------------
// Stream decoding

#[derive(Debug, Default)]
struct PartialCall {
    index: Option<u64>,
    id: String,
    name: String,
    args: String,
}

#[derive(Default)]
struct Decoder {
    calls: Vec<PartialCall>,
    usage: Option<Usage>,
    finish: Option<String>,
}

fn map_usage(u: &Value) -> Option<Usage> {
    let obj = u.as_object()?;
    let get = |k: &str| obj.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt = get("prompt_tokens");
    let cached = obj
        .get("prompt_tokens_details")
        .and_then(|d| d.get("cached_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(prompt);
    Some(Usage {
        input_tokens: prompt - cached,
        output_tokens: get("completion_tokens"),
        cache_read_tokens: cached,
        cache_write_tokens: 0,
    })
}

impl Decoder {
    fn slot(&mut self, index: Option<u64>, id: Option<&str>) -> &mut PartialCall {
        let pos = if let Some(i) = index {
            self.calls.iter().position(|c| c.index == Some(i))
        } else if let Some(id) = id {
            self.calls.iter().position(|c| c.id == id)
        } else if self.calls.is_empty() {
            None
        } else {
            Some(self.calls.len() - 1)
        };
        let pos = pos.unwrap_or_else(|| {
            self.calls.push(PartialCall {
                index,
                ..PartialCall::default()
            });
            self.calls.len() - 1
        });
        &mut self.calls[pos]
    }

    fn add_fragment(&mut self, frag: &Value) {
        let index = frag.get("index").and_then(Value::as_u64);
        let id = frag
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let function = frag.get("function").unwrap_or(&Value::Null);
        let call = self.slot(index, id);
        if let Some(id) = id
            && call.id.is_empty()
        {
            call.id = id.to_owned();
        }
        if let Some(name) = function
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            && call.name.is_empty()
        {
            call.name = name.to_owned();
        }
        match function.get("arguments") {
            Some(Value::String(piece)) => call.args.push_str(piece),
            Some(v @ Value::Object(_)) => call.args = v.to_string(),
            _ => {}
        }
    }

    fn finish(&mut self, out: &mut VecDeque<ModelEvent>) {
        let calls = std::mem::take(&mut self.calls);
        let had_calls = !calls.is_empty();
        for (n, c) in calls.into_iter().enumerate() {
            let id = if c.id.is_empty() {
                format!("call_{n}")
            } else {
                c.id
            };
            if c.name.is_empty() {
                out.push_back(ModelEvent::MalformedToolCall {
                    id,
                    name: c.name,
                    raw: c.args,
                    error: "tool call without a function name".into(),
                });
                continue;
            }
            out.push_back(match parse_tool_input(&c.args) {
                Ok(input) => ModelEvent::ToolCall(ToolCall {
                    id,
                    name: c.name,
                    input,
                }),
                Err(error) => ModelEvent::MalformedToolCall {
                    id,
                    name: c.name,
                    raw: c.args,
                    error,
                },
            });
        }
        out.push_back(ModelEvent::Usage(self.usage.unwrap_or_default()));
        let reason = match self.finish.as_deref() {
            Some("stop") if had_calls => StopReason::ToolUse,
            Some("stop") => StopReason::EndTurn,
            Some("length") => StopReason::MaxTokens,
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            Some("content_filter") => StopReason::Refusal,
            Some(other) => StopReason::Other(other.to_owned()),
            None if had_calls => StopReason::ToolUse,
            None => StopReason::Other("missing".into()),
        };
        out.push_back(ModelEvent::Stop { reason });
    }
}

impl StreamDecoder for Decoder {
    fn on_event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<bool, ModelError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.finish(out);
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            ModelError::protocol(PROVIDER, format!("invalid JSON in stream chunk: {e}"))
        })?;
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            return Err(ModelError::Api {
                provider: PROVIDER.to_owned(),
                status: None,
                kind: kind_from_error(None, error),
                message: error_message(error),
                request_id: None,
                retry_after: None,
            });
        }
        if let Some(u) = chunk.get("usage").and_then(map_usage) {
            self.usage = Some(u);
        }
        let choice = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("index").and_then(Value::as_u64) == Some(0))
                    .or_else(|| cs.first())
            });
        let Some(choice) = choice else {
            return Ok(false);
        };
        let delta = choice
            .get("delta")
            .or_else(|| choice.get("message"))
            .unwrap_or(&Value::Null);
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            out.push_back(ModelEvent::TextDelta(text.to_owned()));
        }
        if let Some(frags) = delta.get("tool_calls").and_then(Value::as_array) {
            for f in frags {
                self.add_fragment(f);
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(reason.to_owned());
        }
        Ok(false)
    }

    fn on_eof(&mut self, out: &mut VecDeque<ModelEvent>) -> Result<(), ModelError> {
        if self.finish.is_some() {
            // Lenient: some servers close without `[DONE]` after finishing.
            self.finish(out);
            Ok(())
        } else {
            Err(ModelError::protocol(
                PROVIDER,
                "stream ended before a finish_reason or [DONE]",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Message, SystemBlock, ToolSpec};
    use serde_json::json;

    fn run(lines: &[Value]) -> (Vec<ModelEvent>, Result<bool, ModelError>) {
        let mut d = Decoder::default();
        let mut out = VecDeque::new();
        let mut last = Ok(false);
        for l in lines {
            let data = match l {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            last = d.on_event(SseEvent { event: None, data }, &mut out);
            if !matches!(last, Ok(false)) {
                break;
            }
        }
        (out.into(), last)
    }

    #[test]
    fn fragments_keyed_by_index_and_by_id() {
        let (events, res) = run(&[
            json!({"choices":[{"index":0,"delta":{"tool_calls":[
                {"index":0,"id":"a","type":"function","function":{"name":"f","arguments":""}},
                {"index":1,"id":"b","type":"function","function":{"name":"g","arguments":"{\"x\""}}]}}]}),
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":":1}"}},{"index":0,"function":{"arguments":"{}"}}]}}]}),
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c","function":{"name":"h","arguments":{"y":2}}}]},"finish_reason":"stop"}]}),
            json!("[DONE]"),
        ]);
        assert!(matches!(res, Ok(true)));
        let calls: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ModelEvent::ToolCall(c) => Some((c.id.as_str(), c.name.as_str(), c.input.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            vec![
                ("a", "f", json!({})),
                ("b", "g", json!({"x":1})),
                ("c", "h", json!({"y":2}))
            ]
        );
        assert_eq!(
            events.last(),
            Some(&ModelEvent::Stop {
                reason: StopReason::ToolUse
            })
        );
    }

    #[test]
    fn cached_tokens_are_split_out() {
        let u = map_usage(&json!({"prompt_tokens":100,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":80}})).unwrap();
        assert_eq!(
            u,
            Usage {
                input_tokens: 20,
                output_tokens: 7,
                cache_read_tokens: 80,
                cache_write_tokens: 0
            }
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        for l in [
            json!({"choices": 5}),
            json!({"choices": [{"delta": {"tool_calls": [5, null, {"index": -1}]}}]}),
            json!({"choices": [{"delta": {"content": 7}, "finish_reason": 3}]}),
            json!({"usage": {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 9}}}),
            json!({"error": null}),
            json!("not json"),
        ] {
            let _ = run(&[l, json!("[DONE]")]);
        }
    }

    #[test]
    fn error_bodies() {
        let b = parse_error_body(
            429,
            br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(b.kind, ApiErrorKind::QuotaExceeded);
        let b = parse_error_body(
            429,
            br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(b.kind, ApiErrorKind::RateLimited);
        let b = parse_error_body(502, b"Bad Gateway");
        assert_eq!(b.kind, ApiErrorKind::Server);
    }

    #[test]
    fn body_mapping() {
        let req = ModelRequest {
            system: vec![SystemBlock::cached("a"), SystemBlock::volatile("b")],
            messages: vec![
                Message::user_text("hi"),
                Message {
                    role: Role::Assistant,
                    content: vec![ContentBlock::ToolUse {
                        id: "c1".into(),
                        name: "t".into(),
                        input: json!({"k": "v"}),
                    }],
                },
                Message {
                    role: Role::User,
                    content: vec![ContentBlock::ToolResult {
                        tool_use_id: "c1".into(),
                        content: "boom".into(),
                        is_error: true,
                    }],
                },
            ],
            tools: vec![ToolSpec {
                name: "t".into(),
                description: "d".into(),
                input_schema: json!({"type":"object"}),
            }],
            max_tokens: 50,
            temperature: None,
            metadata_user_id: None,
        };
        let body: Value = serde_json::from_slice(
            &build_request_body("m", MaxTokensField::MaxCompletionTokens, &req).unwrap(),
        )
        .unwrap();
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role":"system","content":"a\n\nb"},
                    {"role":"user","content":"hi"},
                    {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"t","arguments":"{\"k\":\"v\"}"}}]},
                    {"role":"tool","tool_call_id":"c1","content":"Error: boom"}
                ],
                "tools": [{"type":"function","function":{"name":"t","description":"d","parameters":{"type":"object"}}}],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_completion_tokens": 50
            })
        );
    }

    #[test]
    fn max_tokens_field_defaults_by_host() {
        let c = OpenAiConfig::new("k", "m");
        assert_eq!(
            c.resolved_max_tokens_field(),
            MaxTokensField::MaxCompletionTokens
        );
        let c = c.with_base_url("http://127.0.0.1:11434/v1");
        assert_eq!(c.resolved_max_tokens_field(), MaxTokensField::MaxTokens);
    }
}
