//! The one mock model: an HTTP server on `127.0.0.1:0` that answers every
//! request with the next scripted [`MockResponse`] (the last one repeats),
//! sent in flushed chunks with optional delays, stalls and a gate the test
//! opens, and records what it was asked.
//!
//! It does not parse requests or route by path: the same server is an
//! Anthropic endpoint (`POST {base}/v1/messages`) or an OpenAI-compatible
//! one (`POST {base}/v1/chat/completions`, base URL [`MockModel::openai_base_url`])
//! depending on what the script sends. [`openai`] and [`anthropic`] build
//! the streams in each wire format (`/work/shared/reference/llm.md`):
//! text, tool calls, errors after 200, and error statuses; tests that check
//! a parser's edge cases write the body themselves and use
//! [`MockResponse::sse`], which cuts it at odd byte positions.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};
use futures::{StreamExt as _, stream};
use tokio::sync::watch;

/// Chunk size [`MockResponse::sse`] cuts streams into: small and odd so that
/// boundaries fall mid-line, mid-JSON and mid-UTF-8 (a mock that writes one
/// buffered body never exercises an incremental parser).
pub const CHUNK: usize = 7;

/// One scripted response.
#[derive(Clone, Debug)]
pub struct MockResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, written and flushed piece by piece.
    pub chunks: Vec<Vec<u8>>,
    /// Pause before each chunk (zero: yield instead).
    pub delay: Duration,
    /// Extra pause before chunk number `.0`: a model that stalls mid-stream,
    /// or (at 0) one that takes its time to answer.
    pub stall: Option<(usize, Duration)>,
    /// Before this chunk, wait until the model's gate is open
    /// ([`MockModel::hold`], [`MockModel::release`]): a reply the test
    /// catches in the middle.
    pub gate_before: Option<usize>,
}

impl MockResponse {
    /// A 200 `text/event-stream` response cut into [`CHUNK`]-byte pieces,
    /// 2 ms apart.
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
            gate_before: None,
        }
    }

    /// Like [`MockResponse::sse`] with another chunk size and no delay.
    pub fn sse_chunked(body: impl AsRef<str>, size: usize) -> Self {
        let mut r = Self::sse(body);
        r.chunks = r
            .chunks
            .concat()
            .chunks(size.max(1))
            .map(<[u8]>::to_vec)
            .collect();
        r.delay = Duration::ZERO; // yield between chunks instead of sleeping
        r
    }

    /// A 200 `text/event-stream` response with one chunk per event (whole
    /// SSE frames), no delay: the shape a real server flushes.
    pub fn sse_events(events: Vec<String>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            chunks: events.into_iter().map(String::into_bytes).collect(),
            delay: Duration::ZERO,
            stall: None,
            gate_before: None,
        }
    }

    /// A non-streaming response with `body` (JSON) in one piece.
    pub fn status(status: u16, body: impl AsRef<str>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![body.as_ref().as_bytes().to_vec()],
            delay: Duration::ZERO,
            stall: None,
            gate_before: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Pauses `pause` before chunk `chunk`.
    pub fn stall_before(mut self, chunk: usize, pause: Duration) -> Self {
        self.stall = Some((chunk, pause));
        self
    }

    /// Waits for the model's gate before chunk `chunk`.
    pub fn gate_before(mut self, chunk: usize) -> Self {
        self.gate_before = Some(chunk);
        self
    }
}

/// Streams in the OpenAI-compatible Chat Completions wire format: `data:`
/// lines of `chat.completion.chunk` objects, ending with `data: [DONE]`.
pub mod openai {
    use serde_json::{Value, json};

    use super::MockResponse;

    /// One `data:` line.
    pub fn data(v: &Value) -> String {
        format!("data: {v}\n\n")
    }

    /// One chunk with `delta` and `finish_reason`.
    pub fn chunk(delta: Value, finish: Option<&str>) -> String {
        data(&json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "model": "mock-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        }))
    }

    /// The end of every stream.
    pub const DONE: &str = "data: [DONE]\n\n";

    /// The events of a text answer streamed as `pieces`: one chunk per
    /// piece, then `finish_reason: stop` and `[DONE]`.
    pub fn text_events(pieces: &[&str]) -> Vec<String> {
        let mut events: Vec<String> = pieces
            .iter()
            .map(|p| chunk(json!({"content": p}), None))
            .collect();
        events.push(chunk(json!({}), Some("stop")));
        events.push(DONE.to_owned());
        events
    }

    /// A text answer, one flushed chunk per piece.
    pub fn text(pieces: &[&str]) -> MockResponse {
        MockResponse::sse_events(text_events(pieces))
    }

    /// One tool call (`arguments` a JSON string, sent in two pieces as
    /// servers do), then `finish_reason: tool_calls` and `[DONE]`.
    pub fn tool_call(id: &str, name: &str, arguments: &Value) -> MockResponse {
        let args = arguments.to_string();
        let (head, tail) = args.split_at(args.len() / 2);
        MockResponse::sse_events(vec![
            chunk(
                json!({"tool_calls": [{"index": 0, "id": id, "type": "function",
                                       "function": {"name": name, "arguments": ""}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": head}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": tail}}]}),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
            DONE.to_owned(),
        ])
    }

    /// An error status with the OpenAI error body.
    pub fn error(status: u16, kind: &str, message: &str) -> MockResponse {
        MockResponse::status(
            status,
            json!({"error": {"message": message, "type": kind, "param": null, "code": kind}})
                .to_string(),
        )
    }
}

/// Streams in the Anthropic Messages wire format: `event:`/`data:` frames
/// from `message_start` to `message_stop`.
pub mod anthropic {
    use serde_json::{Value, json};

    use super::MockResponse;

    /// One SSE frame.
    pub fn event(kind: &str, data: &Value) -> String {
        format!("event: {kind}\ndata: {data}\n\n")
    }

    fn message_start() -> String {
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": "msg_mock", "type": "message", "role": "assistant", "model": "mock-model",
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        )
    }

    fn message_end(stop_reason: &str) -> [String; 2] {
        [
            event(
                "message_delta",
                &json!({"type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                        "usage": {"output_tokens": 5}}),
            ),
            event("message_stop", &json!({"type": "message_stop"})),
        ]
    }

    /// The events of a text answer streamed as `pieces` in one text block.
    pub fn text_events(pieces: &[&str]) -> Vec<String> {
        let mut events = vec![
            message_start(),
            event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}}),
            ),
        ];
        events.extend(pieces.iter().map(|p| {
            event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": p}}),
            )
        }));
        events.push(event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": 0}),
        ));
        events.extend(message_end("end_turn"));
        events
    }

    /// A text answer, one flushed chunk per event.
    pub fn text(pieces: &[&str]) -> MockResponse {
        MockResponse::sse_events(text_events(pieces))
    }

    /// One `tool_use` block whose input JSON arrives in two pieces (the
    /// first `""`, as real streams often start), `stop_reason: tool_use`.
    pub fn tool_use(id: &str, name: &str, input: &Value) -> MockResponse {
        let json = input.to_string();
        let (head, tail) = json.split_at(json.len() / 2);
        let delta = |partial: &str| {
            event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": partial}}),
            )
        };
        let mut events = vec![
            message_start(),
            event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
            ),
            delta(""),
            delta(head),
            delta(tail),
            event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": 0}),
            ),
        ];
        events.extend(message_end("tool_use"));
        MockResponse::sse_events(events)
    }

    /// An `error` event after HTTP 200 (e.g. `overloaded_error`), after
    /// `message_start`.
    pub fn error_event(kind: &str, message: &str) -> MockResponse {
        MockResponse::sse_events(vec![
            message_start(),
            event(
                "error",
                &json!({"type": "error", "error": {"type": kind, "message": message}}),
            ),
        ])
    }

    /// An error status with the Anthropic error body.
    pub fn error(status: u16, kind: &str, message: &str) -> MockResponse {
        MockResponse::status(
            status,
            json!({"type": "error", "error": {"type": kind, "message": message},
                   "request_id": "req_mock"})
            .to_string(),
        )
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
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
struct Shared {
    script: Arc<Vec<MockResponse>>,
    /// Every request, when recording (the bench turns it off: thousands of
    /// prompts would only grow its memory).
    requests: Option<Arc<Mutex<Vec<Recorded>>>>,
    /// Requests so far (a watch, so a test can wait for one).
    count: Arc<watch::Sender<usize>>,
    gate: Arc<watch::Sender<bool>>,
}

/// A running mock model; it stops when dropped.
pub struct MockModel {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl MockModel {
    /// Serves `script[n]` to the n-th request (the last entry repeats) and
    /// records every request.
    pub async fn start(script: Vec<MockResponse>) -> std::io::Result<Self> {
        Self::serve(script, true).await
    }

    /// Like [`MockModel::start`] but keeps only the count of requests.
    pub async fn start_unrecorded(script: Vec<MockResponse>) -> std::io::Result<Self> {
        Self::serve(script, false).await
    }

    async fn serve(script: Vec<MockResponse>, record: bool) -> std::io::Result<Self> {
        if script.is_empty() {
            return Err(std::io::Error::other("a mock model needs a script"));
        }
        let (gate, _) = watch::channel(true);
        let shared = Shared {
            script: Arc::new(script),
            requests: record.then(|| Arc::new(Mutex::new(Vec::new()))),
            count: Arc::new(watch::channel(0).0),
            gate: Arc::new(gate),
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// `http://127.0.0.1:port` (the Anthropic base URL).
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:port/v1`, what `OPENAI_BASE_URL` takes.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The requests so far (empty when not recording).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.as_ref().map_or_else(Vec::new, |r| {
            r.lock().unwrap_or_else(PoisonError::into_inner).clone()
        })
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        *self.shared.count.borrow()
    }

    /// Waits until `n` requests have arrived (each recorded by then).
    pub async fn wait_for_requests(&self, n: usize) {
        let mut count = self.shared.count.subscribe();
        let _ = count.wait_for(|c| *c >= n).await;
    }

    /// Closes the gate: responses with [`MockResponse::gate_before`] wait
    /// there until [`MockModel::release`].
    pub fn hold(&self) {
        self.shared.gate.send_replace(false);
    }

    /// Opens the gate (it starts open).
    pub fn release(&self) {
        self.shared.gate.send_replace(true);
    }
}

impl Drop for MockModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(requests) = &shared.requests {
        requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Recorded {
                method,
                path: uri.path().to_owned(),
                headers,
                body: body.to_vec(),
            });
    }
    let mut n = 0;
    shared.count.send_modify(|c| {
        n = *c;
        *c += 1;
    });
    let Some(resp) = shared
        .script
        .get(n.min(shared.script.len().saturating_sub(1)))
        .cloned()
    else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let MockResponse {
        status,
        headers,
        chunks,
        delay,
        stall,
        gate_before,
    } = resp;
    let gate = shared.gate.subscribe();
    let chunks = stream::iter(chunks.into_iter().enumerate()).then(move |(i, c)| {
        let mut gate = gate.clone();
        async move {
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
            if gate_before == Some(i) {
                let _ = gate.wait_for(|open| *open).await;
            }
            Ok::<_, Infallible>(Bytes::from(c))
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(k),
            axum::http::HeaderValue::try_from(v),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
