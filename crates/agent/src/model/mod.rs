//! The provider-neutral model interface (DESIGN.md §4.5).
//!
//! Every language-model backend implements [`ModelProvider`]: it takes a
//! [`ModelRequest`] (system blocks, conversation history, tool specs) and
//! returns a [`ModelStream`] of [`ModelEvent`]s: text deltas, complete parsed
//! tool calls, token usage and the stop reason. The agent loop only ever sees
//! these types; it never knows which provider runs.
//!
//! Event order on a successful stream: any number of [`ModelEvent::TextDelta`]
//! and [`ModelEvent::ToolCall`] / [`ModelEvent::MalformedToolCall`] events in
//! the order the model produced them, then exactly one [`ModelEvent::Usage`]
//! and finally exactly one [`ModelEvent::Stop`]. A stream that fails yields one
//! `Err(ModelError)` and then ends.
//!
//! Model output is untrusted input: malformed streams become [`ModelError`]s
//! and malformed tool arguments become [`ModelEvent::MalformedToolCall`]; no
//! input makes a provider panic.

pub mod anthropic;
mod config;
mod error;
mod http;
pub mod openai;
pub(crate) mod sse;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use config::{DEFAULT_ANTHROPIC_MODEL, DEFAULT_OPENAI_MODEL, ModelConfig, ProviderConfig};
pub use error::{ApiErrorKind, ModelError};
pub use http::{HttpConfig, RetryPolicy};

/// A streaming language-model backend.
///
/// Implementations must be cheap to share (`Arc<dyn ModelProvider>`) and must
/// never panic on anything the remote side sends.
#[async_trait]
pub trait ModelProvider: Send + Sync {
    /// Short provider name for logs and traces, e.g. `"anthropic"`.
    fn name(&self) -> &str;

    /// The model identifier sent to the provider, e.g. `"claude-sonnet-4-5"`.
    fn model(&self) -> &str;

    /// Starts one model call.
    ///
    /// Resolves once the provider accepted the request (HTTP 200 received).
    /// Retryable failures (429 except spend/quota limits, 500, 502, 503,
    /// 504, 529, connection failures, timeouts, and a retryable `error`
    /// event or broken stream before the first event) are retried
    /// internally within one bounded attempt budget, honouring
    /// `retry-after`. Once the stream has produced an event, a failure is
    /// its last item and is never retried (something may already have
    /// reached the merchant).
    /// Cancelling `cancel` ends the call promptly with
    /// [`ModelError::Cancelled`].
    async fn stream(
        &self,
        req: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError>;

    /// The exact request body [`ModelProvider::stream`] would send for `req`,
    /// for per-turn traces ("the prompt as sent"). `None` for providers
    /// without a wire format.
    fn request_body(&self, req: &ModelRequest) -> Option<Vec<u8>> {
        let _ = req;
        None
    }
}

/// One model call's input, independent of the provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// System prompt blocks, in order. Put stable blocks (persona, workflow)
    /// first and mark the last stable one with `cache: true`; volatile blocks
    /// (merchant context, facts) follow unmarked.
    pub system: Vec<SystemBlock>,
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// Tools the model may call, in a stable order (the order is part of the
    /// cached prompt prefix).
    pub tools: Vec<ToolSpec>,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Sampling temperature; provider default when `None`.
    pub temperature: Option<f32>,
    /// Opaque end-user id for the provider's abuse monitoring (never an
    /// e-mail or a shop domain).
    pub metadata_user_id: Option<String>,
}

/// One block of the system prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemBlock {
    /// The text.
    pub text: String,
    /// Whether this block ends a cacheable prefix. Providers with explicit
    /// prompt caching place their cache breakpoint after the last block with
    /// `cache: true`; others ignore the flag.
    pub cache: bool,
}

impl SystemBlock {
    /// A block that belongs to the stable, cacheable prefix.
    pub fn cached(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            cache: true,
        }
    }

    /// A block that changes between turns or conversations.
    pub fn volatile(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            cache: false,
        }
    }
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The merchant, system events, and tool results.
    User,
    /// The model (CJ).
    Assistant,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// Its content blocks, in order.
    pub content: Vec<ContentBlock>,
}

impl Message {
    /// A user message with a single text block.
    pub fn user_text(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![ContentBlock::Text { text: text.into() }],
        }
    }

    /// An assistant message with a single text block.
    pub fn assistant_text(text: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: vec![ContentBlock::Text { text: text.into() }],
        }
    }
}

/// A piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call the assistant made (assistant messages only).
    ToolUse {
        /// Provider-assigned call id, echoed by the matching result.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments (a JSON object).
        input: serde_json::Value,
    },
    /// The result of a tool call (user messages only). All results answering
    /// one assistant turn belong in one user message.
    ToolResult {
        /// The id of the [`ContentBlock::ToolUse`] this answers.
        tool_use_id: String,
        /// The result, usually compact JSON.
        content: String,
        /// Whether the tool failed; `content` then describes the failure.
        is_error: bool,
    },
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Name, `^[a-zA-Z0-9_-]{1,64}$`.
    pub name: String,
    /// What the tool does and when to use it.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub input_schema: serde_json::Value,
}

/// A complete tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id; echo it in the [`ContentBlock::ToolResult`].
    pub id: String,
    /// Tool name as the model wrote it (not validated against the offered tools).
    pub name: String,
    /// Parsed arguments; always a JSON object (`{}` when the model sent none).
    pub input: serde_json::Value,
}

/// Token counts of one model call.
///
/// `input_tokens` counts only uncached prompt tokens; the whole prompt is
/// [`Usage::total_input_tokens`] = `input + cache_read + cache_write`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens neither read from nor written to the cache.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Prompt tokens served from the prompt cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the prompt cache.
    pub cache_write_tokens: u64,
}

impl Usage {
    /// All prompt tokens, cached or not.
    pub fn total_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_write_tokens)
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// The model finished its answer.
    EndTurn,
    /// `max_tokens` was reached; the answer is cut.
    MaxTokens,
    /// The model wants the requested tool calls run.
    ToolUse,
    /// A stop sequence was generated.
    StopSequence,
    /// The model or a content filter declined.
    Refusal,
    /// Anything else, with the provider's raw value.
    Other(String),
}

/// One item of a [`ModelStream`].
#[derive(Debug, Clone, PartialEq)]
pub enum ModelEvent {
    /// A piece of answer text, to show as it arrives.
    TextDelta(String),
    /// A complete tool call with parsed arguments.
    ToolCall(ToolCall),
    /// A tool call whose arguments were not a JSON object. Answer it with an
    /// error [`ContentBlock::ToolResult`] (echo it with `input: {}`) so the
    /// model can correct itself.
    MalformedToolCall {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// The raw argument text as received.
        raw: String,
        /// Why it was rejected.
        error: String,
    },
    /// Final token usage (totals, not increments).
    Usage(Usage),
    /// The model stopped; always the last event of a successful stream.
    Stop {
        /// Why.
        reason: StopReason,
    },
}

/// Facts about the HTTP exchange that started a [`ModelStream`] (a transparent
/// re-send before the first event is logged, not reflected here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseMeta {
    /// The provider's request id (`request-id` / `x-request-id` header).
    pub request_id: Option<String>,
    /// HTTP attempts made, retries included (1 when the first succeeded).
    pub attempts: u32,
    /// Time from the call to the successful response's headers, retries included.
    pub time_to_headers: Duration,
}

/// The event stream of one model call. Dropping it aborts the call.
pub struct ModelStream {
    meta: ResponseMeta,
    inner: BoxStream<'static, Result<ModelEvent, ModelError>>,
}

impl ModelStream {
    /// Wraps any event stream (for providers that are not HTTP based, such as
    /// an offline or scripted model).
    pub fn new(
        meta: ResponseMeta,
        inner: impl Stream<Item = Result<ModelEvent, ModelError>> + Send + 'static,
    ) -> Self {
        Self {
            meta,
            inner: Box::pin(inner),
        }
    }

    /// Request id, attempts and timing of the HTTP exchange.
    pub fn meta(&self) -> &ResponseMeta {
        &self.meta
    }
}

impl std::fmt::Debug for ModelStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelStream")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl Stream for ModelStream {
    type Item = Result<ModelEvent, ModelError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Validates that parsed tool arguments are an object, mapping empty input to
/// `{}`. Shared by the providers.
pub(crate) fn parse_tool_input(raw: &str) -> Result<serde_json::Value, String> {
    if raw.trim().is_empty() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(serde_json::Value::Null) => Ok(serde_json::Value::Object(serde_json::Map::new())),
        Ok(other) => Err(format!(
            "tool arguments must be a JSON object, got {}",
            json_kind(&other)
        )),
        Err(e) => Err(format!("tool arguments are not valid JSON: {e}")),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The text of one model call without tools: the deltas until the model
/// stops, or until more than `max_bytes` arrived (the rest is not read).
/// For the small side calls (fact extraction, the conversation summary).
pub async fn complete(
    provider: &dyn ModelProvider,
    req: ModelRequest,
    max_bytes: usize,
) -> Result<String, ModelError> {
    use futures::StreamExt as _;
    let mut stream = provider.stream(req, CancellationToken::new()).await?;
    let mut answer = String::new();
    while let Some(event) = stream.next().await {
        match event? {
            ModelEvent::TextDelta(t) => {
                answer.push_str(&t);
                if answer.len() > max_bytes {
                    break;
                }
            }
            ModelEvent::Stop { .. } => break,
            _ => {}
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_input_parsing() {
        assert_eq!(parse_tool_input("").unwrap(), json!({}));
        assert_eq!(parse_tool_input("  ").unwrap(), json!({}));
        assert_eq!(parse_tool_input("null").unwrap(), json!({}));
        assert_eq!(parse_tool_input(r#"{"a": 1}"#).unwrap(), json!({"a":1}));
        assert!(parse_tool_input("[1]").is_err());
        assert!(parse_tool_input(r#"{"a": "#).is_err());
    }

    #[test]
    fn usage_total() {
        let u = Usage {
            input_tokens: 3,
            output_tokens: 9,
            cache_read_tokens: 100,
            cache_write_tokens: 20,
        };
        assert_eq!(u.total_input_tokens(), 123);
        let huge = Usage {
            input_tokens: u64::MAX,
            cache_read_tokens: 5,
            ..Usage::default()
        };
        assert_eq!(huge.total_input_tokens(), u64::MAX);
    }

    #[test]
    fn api_keys_never_appear_in_debug_output() {
        let a = anthropic::AnthropicProvider::new(anthropic::AnthropicConfig::new(
            "sk-ant-SECRET",
            "m",
        ))
        .unwrap();
        let o = openai::OpenAiProvider::new(openai::OpenAiConfig::new("sk-SECRET", "m")).unwrap();
        for text in [format!("{a:?}"), format!("{o:?}")] {
            assert!(!text.contains("SECRET"), "{text}");
        }
    }
}
