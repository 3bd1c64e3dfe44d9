//! Shared helpers of the provider tests. The mock model is the test kit's
//! ([`hirecj_testkit::model`]): scripted responses in small, flushed,
//! delayed chunks (cut mid-line and mid-JSON), every request recorded.

#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use hirecj_agent::model::{
    ContentBlock, HttpConfig, Message, ModelError, ModelEvent, ModelRequest, ModelStream,
    RetryPolicy, Role, ToolCall,
};
pub use hirecj_testkit::model::{CHUNK, MockModel as MockServer, MockResponse};

/// A mock model serving `script` (the n-th request gets `script[n]`, the
/// last entry repeats).
pub async fn mock(script: Vec<MockResponse>) -> MockServer {
    MockServer::start(script).await.unwrap()
}

/// HTTP settings for tests: fast backoff, short idle timeout.
pub fn test_http() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(3),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(5),
        },
    }
}

/// Drains a stream: the events, and the error that ended it, if any.
pub async fn collect(mut s: ModelStream) -> (Vec<ModelEvent>, Option<ModelError>) {
    let mut events = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(ev) => events.push(ev),
            Err(e) => {
                assert!(s.next().await.is_none(), "stream continues after an error");
                return (events, Some(e));
            }
        }
    }
    (events, None)
}

/// The concatenated text deltas.
pub fn text_of(events: &[ModelEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// The request after a tool round, as the turn loop builds it: `first`
/// plus the assistant's turn from `events` (its text, then its tool calls)
/// and ONE user message with every result, `answer(call)` giving each
/// result's content and whether the tool failed.
pub fn with_tool_round(
    first: &ModelRequest,
    events: &[ModelEvent],
    answer: impl Fn(&ToolCall) -> (String, bool),
) -> ModelRequest {
    let mut assistant = Vec::new();
    let text = text_of(events);
    if !text.is_empty() {
        assistant.push(ContentBlock::Text { text });
    }
    let mut results = Vec::new();
    for event in events {
        if let ModelEvent::ToolCall(call) = event {
            assistant.push(ContentBlock::ToolUse {
                id: call.id.clone(),
                name: call.name.clone(),
                input: call.input.clone(),
            });
            let (content, is_error) = answer(call);
            results.push(ContentBlock::ToolResult {
                tool_use_id: call.id.clone(),
                content,
                is_error,
            });
        }
    }
    let mut next = first.clone();
    next.messages.push(Message {
        role: Role::Assistant,
        content: assistant,
    });
    next.messages.push(Message {
        role: Role::User,
        content: results,
    });
    next
}
