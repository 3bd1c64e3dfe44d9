//! In-process mock model servers on 127.0.0.1:0 that send scripted responses
//! in small, flushed, delayed chunks (cut mid-line and mid-JSON), and record
//! every request.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use futures::{StreamExt, stream};
use hirecj_agent::model::{HttpConfig, ModelError, ModelEvent, ModelStream, RetryPolicy};

/// One scripted response.
#[derive(Clone, Debug)]
pub struct MockResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub chunks: Vec<Vec<u8>>,
    /// Pause before each chunk.
    pub delay: Duration,
    /// Extra pause before chunk number `.0`.
    pub stall: Option<(usize, Duration)>,
}

/// Chunk size used to cut streams: small and odd so that boundaries fall
/// mid-line, mid-JSON and mid-UTF-8.
pub const CHUNK: usize = 7;

impl MockResponse {
    /// A 200 `text/event-stream` response cut into [`CHUNK`]-byte pieces.
    pub fn sse(body: impl AsRef<str>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            chunks: body
                .as_ref()
                .as_bytes()
                .chunks(CHUNK)
                .map(<[u8]>::to_vec)
                .collect(),
            delay: Duration::from_millis(2),
            stall: None,
        }
    }

    /// Like [`MockResponse::sse`] with another chunk size.
    pub fn sse_chunked(body: impl AsRef<str>, size: usize) -> Self {
        let mut r = Self::sse(body);
        r.chunks = r.chunks.concat().chunks(size).map(<[u8]>::to_vec).collect();
        r.delay = Duration::ZERO; // yield between chunks instead of sleeping
        r
    }

    /// A non-streaming response with `body` in one piece.
    pub fn status(status: u16, body: impl AsRef<str>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![body.as_ref().as_bytes().to_vec()],
            delay: Duration::ZERO,
            stall: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn stall_before(mut self, chunk: usize, pause: Duration) -> Self {
        self.stall = Some((chunk, pause));
        self
    }
}

/// A request as the mock received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
struct MockState {
    script: Arc<Vec<MockResponse>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

/// A running mock server.
pub struct MockServer {
    pub base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl MockServer {
    /// Serves `script[n]` to the n-th request (the last entry repeats).
    pub async fn start(script: Vec<MockResponse>) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = MockState {
            script: Arc::new(script),
            requests: requests.clone(),
        };
        let app = Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            requests,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn handle(
    State(state): State<MockState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = {
        let mut reqs = state.requests.lock().unwrap();
        reqs.push(Recorded {
            method,
            path: uri.path().to_owned(),
            headers,
            body: body.to_vec(),
        });
        reqs.len() - 1
    };
    let resp = state.script[n.min(state.script.len() - 1)].clone();
    let delay = resp.delay;
    let stall = resp.stall;
    let chunks = stream::iter(resp.chunks.into_iter().enumerate()).then(move |(i, c)| async move {
        if delay.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(delay).await;
        }
        if let Some((at, pause)) = stall
            && at == i
        {
            tokio::time::sleep(pause).await;
        }
        Ok::<_, Infallible>(Bytes::from(c))
    });
    let mut builder = Response::builder().status(StatusCode::from_u16(resp.status).unwrap());
    for (k, v) in &resp.headers {
        builder = builder.header(k, v);
    }
    builder.body(Body::from_stream(chunks)).unwrap()
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
