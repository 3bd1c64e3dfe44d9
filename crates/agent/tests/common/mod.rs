//! Shared helpers of the provider tests. The mock model is the test kit's
//! ([`hirecj_testkit::model`]): scripted responses in small, flushed,
//! delayed chunks (cut mid-line and mid-JSON), every request recorded.

#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use hirecj_agent::model::{HttpConfig, ModelError, ModelEvent, ModelStream, RetryPolicy};
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
