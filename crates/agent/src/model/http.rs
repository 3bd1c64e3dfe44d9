//! HTTP plumbing shared by the providers: client construction, sending with
//! bounded retries, and the SSE-to-[`ModelEvent`] stream driver with an idle
//! timeout and cancellation.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use rand::Rng;
use reqwest::header::HeaderMap;
use tokio_util::sync::CancellationToken;

use super::error::{error_chain, truncate};
use super::sse::{SseEvent, SseParser};
use super::{ApiErrorKind, ModelError, ModelEvent, ResponseMeta};

/// Timeouts and retries of a provider's HTTP client.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Limit for establishing the TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Limit for receiving the response headers after sending the request.
    pub response_timeout: Duration,
    /// Limit for the gap between two chunks of a streaming response.
    pub idle_timeout: Duration,
    /// Retry behaviour until the first event.
    pub retry: RetryPolicy,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(90),
            retry: RetryPolicy::default(),
        }
    }
}

/// Bounded exponential backoff with jitter for retryable failures that
/// happen before the first event (429 except quota/spend limits, 500, 502,
/// 503, 504, 529, connection failures, timeouts, retryable `error` events).
/// HTTP retries and stream re-sends share `max_attempts`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 disables retries).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles per retry.
    pub initial_backoff: Duration,
    /// Backoff ceiling.
    pub max_backoff: Duration,
    /// A `retry-after` longer than this is not waited for: the error is
    /// returned instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Backoff before retry number `retry` (1-based): exponential, capped,
    /// with "equal jitter" (a random point in the upper half).
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let base = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let jitter: f64 = rand::thread_rng().gen_range(0.5..=1.0);
        base.mul_f64(jitter)
    }
}

/// Builds the shared `reqwest` client.
pub(crate) fn build_client(cfg: &HttpConfig) -> Result<reqwest::Client, ModelError> {
    reqwest::Client::builder()
        .connect_timeout(cfg.connect_timeout)
        // Small writes (a request's last bytes) go at once, never held
        // for the server's delayed ACK (reqwest's default, stated).
        .tcp_nodelay(true)
        .build()
        .map_err(|e| ModelError::Config(error_chain(&e)))
}

/// What a provider extracted from an error response body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ErrorBody {
    pub kind: ApiErrorKind,
    pub message: String,
    pub request_id: Option<String>,
}

/// Largest error body read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Parses `retry-after-ms` (milliseconds) or `retry-after` (seconds);
/// HTTP-date values are ignored.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(ms) = get("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    get("retry-after").map(Duration::from_secs_f64)
}

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn read_error_body(resp: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = MAX_ERROR_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    body
}

/// Builds one HTTP request (called once per attempt).
pub(crate) type BuildRequest = Arc<dyn Fn() -> reqwest::RequestBuilder + Send + Sync>;

/// Everything needed to send (and re-send) one model request.
#[derive(Clone)]
pub(crate) struct Sender {
    pub provider: &'static str,
    pub cfg: HttpConfig,
    /// Response header that carries the provider's request id.
    pub request_id_header: &'static str,
    /// Parses an error response body (which may not be JSON).
    pub parse_error: fn(u16, &[u8]) -> ErrorBody,
    /// Builds the request; must produce the same bytes every time.
    pub build: BuildRequest,
    /// When the wait for the model's first event ends, whatever the
    /// attempts (see [`Sender::first_event_by`]).
    pub first_event_by: tokio::time::Instant,
}

impl Sender {
    /// The end of the wait for a call's first event when it starts now:
    /// `response_timeout` covers every attempt together, so a model that
    /// never starts answering keeps the merchant waiting that long, not
    /// once per attempt.
    pub fn first_event_by(cfg: &HttpConfig) -> tokio::time::Instant {
        tokio::time::Instant::now() + cfg.response_timeout
    }

    /// What is left of the wait for the first event.
    fn before_first_event(&self) -> Duration {
        self.first_event_by
            .saturating_duration_since(tokio::time::Instant::now())
    }

    fn first_event_timeout(&self, what: &'static str) -> ModelError {
        ModelError::Timeout {
            provider: self.provider.to_owned(),
            what,
            after: self.cfg.response_timeout,
        }
    }

    /// Sends the request until it succeeds, fails with a non-retryable
    /// error, or the attempts run out. `attempts_used` counts attempts
    /// already spent on this call (0 for a fresh call). Never logs request
    /// bodies or headers (the API key lives there).
    pub async fn send(
        &self,
        cancel: &CancellationToken,
        attempts_used: u32,
    ) -> Result<(reqwest::Response, ResponseMeta), ModelError> {
        let provider = self.provider;
        let started = Instant::now();
        let mut attempt = attempts_used;
        loop {
            attempt += 1;
            let left = self.before_first_event();
            if left.is_zero() {
                return Err(self.first_event_timeout("response headers"));
            }
            let send = tokio::time::timeout(left, (self.build)().send());
            let outcome = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(ModelError::Cancelled),
                r = send => r,
            };
            let (err, wait_hint) = match outcome {
                Err(_) => (
                    ModelError::Timeout {
                        provider: provider.to_owned(),
                        what: "response headers",
                        after: self.cfg.response_timeout,
                    },
                    None,
                ),
                Ok(Err(e)) if e.is_connect() && e.is_timeout() => (
                    ModelError::Timeout {
                        provider: provider.to_owned(),
                        what: "connect",
                        after: self.cfg.connect_timeout,
                    },
                    None,
                ),
                Ok(Err(e)) => (ModelError::transport(provider, &e), None),
                Ok(Ok(resp)) => {
                    let status = resp.status().as_u16();
                    let request_id = header_string(resp.headers(), self.request_id_header);
                    if resp.status().is_success() {
                        tracing::debug!(
                            provider,
                            status,
                            request_id = request_id.as_deref().unwrap_or("-"),
                            attempt,
                            "model response started"
                        );
                        let meta = ResponseMeta {
                            request_id,
                            attempts: attempt,
                            time_to_headers: started.elapsed(),
                        };
                        return Ok((resp, meta));
                    }
                    let hint = retry_after(resp.headers());
                    let body = tokio::select! {
                        biased;
                        () = cancel.cancelled() => return Err(ModelError::Cancelled),
                        b = tokio::time::timeout(self.cfg.response_timeout, read_error_body(resp)) => b.unwrap_or_default(),
                    };
                    let parsed = (self.parse_error)(status, &body);
                    let err = ModelError::Api {
                        provider: provider.to_owned(),
                        status: Some(status),
                        kind: parsed.kind,
                        message: parsed.message,
                        request_id: request_id.or(parsed.request_id),
                        retry_after: hint,
                    };
                    (err, hint)
                }
            };
            let Some(delay) = self.retry_delay(&err, attempt, wait_hint) else {
                tracing::warn!(provider, attempt, error = %err, "model request failed");
                return Err(err);
            };
            if delay >= self.before_first_event() {
                tracing::warn!(provider, attempt, error = %err, "model request failed; no time left to retry");
                return Err(err);
            }
            tracing::warn!(provider, attempt, ?delay, error = %err, "model request failed; retrying");
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(ModelError::Cancelled),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// How long to wait before retrying after `err` on attempt `attempt`, or
    /// `None` when it must not be retried (not retryable, attempts exhausted,
    /// or `retry-after` beyond [`RetryPolicy::max_retry_after`]).
    fn retry_delay(
        &self,
        err: &ModelError,
        attempt: u32,
        wait_hint: Option<Duration>,
    ) -> Option<Duration> {
        let policy = &self.cfg.retry;
        if !err.is_retryable() || attempt >= policy.max_attempts {
            return None;
        }
        match wait_hint {
            Some(d) if d > policy.max_retry_after => None,
            Some(d) => Some(d),
            None => Some(policy.backoff(attempt)),
        }
    }
}

/// Turns a provider's SSE events into [`ModelEvent`]s.
pub(crate) trait StreamDecoder: Send + 'static {
    /// Handles one SSE event, pushing produced events to `out`. Returns
    /// `Ok(true)` when the response is complete (nothing more is read).
    fn on_event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<bool, ModelError>;

    /// The body ended before `on_event` reported completion. Either finish
    /// leniently (push the final events) or return the error.
    fn on_eof(&mut self, out: &mut VecDeque<ModelEvent>) -> Result<(), ModelError>;
}

struct DriverState<D> {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    parser: SseParser,
    decoder: D,
    queue: VecDeque<Result<ModelEvent, ModelError>>,
    done: bool,
    /// Events the decoder produced so far (on any attempt).
    produced: usize,
    /// HTTP attempts spent on this call.
    attempts: u32,
    /// A retryable failure before any event: re-send instead of failing.
    retry: Option<ModelError>,
    sender: Sender,
    cancel: CancellationToken,
}

impl<D: StreamDecoder + Default> DriverState<D> {
    fn process(&mut self, events: Vec<SseEvent>) {
        for ev in events {
            if self.done {
                break;
            }
            let mut out = VecDeque::new();
            let result = self.decoder.on_event(ev, &mut out);
            self.push_events(out);
            match result {
                Ok(false) => {}
                Ok(true) => self.done = true,
                Err(e) => self.fail(e),
            }
        }
    }

    fn push_events(&mut self, out: VecDeque<ModelEvent>) {
        self.produced += out.len();
        self.queue.extend(out.into_iter().map(Ok));
    }

    fn fail(&mut self, e: ModelError) {
        self.done = true;
        let provider = self.sender.provider;
        if self.produced == 0 && self.sender.retry_delay(&e, self.attempts, None).is_some() {
            tracing::warn!(provider, attempt = self.attempts, error = %e, "model stream failed before any event; retrying");
            self.retry = Some(e);
        } else {
            tracing::warn!(provider, attempt = self.attempts, error = %e, "model stream failed");
            self.queue.push_back(Err(e));
        }
    }

    /// Re-sends the request after a retryable failure that happened before
    /// any event was produced; on success the stream continues with the new
    /// response as if nothing happened.
    async fn resend(&mut self, err: ModelError) {
        let Some(delay) = self.sender.retry_delay(&err, self.attempts, None) else {
            self.queue.push_back(Err(err));
            return;
        };
        if delay >= self.sender.before_first_event() {
            self.queue.push_back(Err(err));
            return;
        }
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => {
                self.queue.push_back(Err(ModelError::Cancelled));
                return;
            }
            () = tokio::time::sleep(delay) => {}
        }
        match self.sender.send(&self.cancel, self.attempts).await {
            Ok((resp, meta)) => {
                self.body = resp.bytes_stream().boxed();
                self.parser = SseParser::default();
                self.decoder = D::default();
                self.attempts = meta.attempts;
                self.done = false;
            }
            Err(e) => self.queue.push_back(Err(e)),
        }
    }
}

/// Drives a streaming response body through the SSE parser and a fresh
/// `D` decoder. A retryable failure (an `error` event such as
/// `overloaded_error`, a broken connection, an idle timeout) that happens
/// before the decoder produced any event is retried with `sender` within the
/// same attempt budget; once an event exists, failures end the stream.
pub(crate) fn drive<D: StreamDecoder + Default>(
    sender: Sender,
    resp: reqwest::Response,
    meta: &ResponseMeta,
    cancel: CancellationToken,
) -> impl Stream<Item = Result<ModelEvent, ModelError>> + Send + 'static {
    let state = DriverState {
        body: resp.bytes_stream().boxed(),
        parser: SseParser::default(),
        decoder: D::default(),
        queue: VecDeque::new(),
        done: false,
        produced: 0,
        attempts: meta.attempts,
        retry: None,
        sender,
        cancel,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.queue.pop_front() {
                return Some((item, st));
            }
            if let Some(err) = st.retry.take() {
                st.resend(err).await;
                continue;
            }
            if st.done {
                return None;
            }
            // Until the first event, the call's own deadline also holds.
            let mut idle = st.sender.cfg.idle_timeout;
            let mut first_event_due = false;
            if st.produced == 0 {
                let left = st.sender.before_first_event();
                if left < idle {
                    (idle, first_event_due) = (left, true);
                }
            }
            let next = tokio::select! {
                biased;
                () = st.cancel.cancelled() => {
                    st.done = true;
                    return Some((Err(ModelError::Cancelled), st));
                }
                r = tokio::time::timeout(idle, st.body.next()) => r,
            };
            let provider = st.sender.provider;
            match next {
                Err(_) if first_event_due => {
                    let timeout = st.sender.first_event_timeout("first event");
                    st.fail(timeout);
                }
                Err(_) => st.fail(ModelError::Timeout {
                    provider: provider.to_owned(),
                    what: "idle stream",
                    after: idle,
                }),
                Ok(Some(Err(e))) => st.fail(ModelError::transport(provider, &e)),
                Ok(Some(Ok(bytes))) => {
                    let mut events = Vec::new();
                    let fed = st.parser.feed(&bytes, &mut events);
                    st.process(events);
                    if fed.is_err() && !st.done {
                        st.fail(ModelError::protocol(provider, "SSE line too long"));
                    }
                }
                Ok(None) => {
                    let mut events = Vec::new();
                    st.parser.finish(&mut events);
                    st.process(events);
                    if !st.done {
                        let mut out = VecDeque::new();
                        let result = st.decoder.on_eof(&mut out);
                        st.push_events(out);
                        match result {
                            Ok(()) => st.done = true,
                            Err(e) => st.fail(e),
                        }
                    }
                }
            }
        }
    })
}

/// Shortens provider text for error messages.
pub(crate) fn short(text: &str) -> String {
    truncate(text, 500)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("-1"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(1),
        };
        for retry in 1..40 {
            let d = p.backoff(retry);
            let base = Duration::from_millis(100)
                .saturating_mul(2u32.saturating_pow(retry - 1))
                .min(Duration::from_millis(1000));
            assert!(d <= base && d >= base / 2, "{retry}: {d:?}");
        }
    }
}
