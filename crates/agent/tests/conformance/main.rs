//! The provider conformance suite: every scenario runs on every provider
//! (like the store's two-backend `contract!` suite), and each provider
//! declares what it can be tested on ([`subject::Capability`]); a scenario
//! needing a capability a provider lacks is skipped for it, by that
//! declaration, and says so.
//!
//! A scenario says what the model answers once ([`wire::Part`]); each wire
//! ([`wire::Wire`]) scripts the mock model in its own format. What only one
//! wire format has (Anthropic's `ping` events and `cache_control`,
//! OpenAI's tool calls by `index` and `[DONE]`) lives in `tests/anthropic.rs`
//! and `tests/openai.rs`.
//!
//! Adding a provider: a `Subject` constructor in `subject.rs` (its
//! capabilities, and its `Wire` in `wire.rs` if it speaks a new format) and
//! its line in [`for_each_provider!`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod subject;
mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{collect, test_http, text_of};
use hirecj_agent::model::{ApiErrorKind, ModelError, ModelEvent, ModelProvider, StopReason};
use hirecj_testkit::model::{CHUNK, MockModel, MockResponse};
use subject::{Capability, Subject, USAGE, first_event, request};
use tokio_util::sync::CancellationToken;
use wire::{Finish, Part};

/// Runs `scenario` on `subject` if it declares every capability in `needs`.
async fn run<F, Fut>(subject: Subject, needs: &[Capability], scenario: F)
where
    F: FnOnce(Subject) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(missing) = needs.iter().find(|c| !subject.capabilities.contains(c)) {
        eprintln!(
            "skipped: the {} provider declares no {missing:?} capability",
            subject.name
        );
        return;
    }
    scenario(subject).await;
}

/// One test per provider for `$scenario`: the list of every provider.
macro_rules! for_each_provider {
    ($scenario:ident, $needs:expr) => {
        #[tokio::test]
        async fn anthropic() {
            run(Subject::anthropic(), &$needs, $scenario).await;
        }
        #[tokio::test]
        async fn openai() {
            run(Subject::openai(), &$needs, $scenario).await;
        }
        #[tokio::test]
        async fn offline() {
            run(Subject::offline(), &$needs, $scenario).await;
        }
    };
}

/// Declares one conformance scenario and runs it on every provider.
macro_rules! conformance {
    ($(#[$doc:meta])* $name:ident, needs = [$($need:ident),*], |$subject:ident| $body:block) => {
        $(#[$doc])*
        mod $name {
            use super::*;

            async fn scenario($subject: Subject) $body

            for_each_provider!(scenario, [$(Capability::$need),*]);
        }
    };
}

/// A mock model serving `script` (the last entry repeats).
async fn mock(script: Vec<MockResponse>) -> MockModel {
    MockModel::start(script).await.unwrap()
}

/// Starts a call on a fresh request and fails on a refused call.
async fn call(p: &Arc<dyn ModelProvider>) -> hirecj_agent::model::ModelStream {
    p.stream(request("x"), CancellationToken::new())
        .await
        .unwrap()
}

/// Starts a call that the provider must refuse.
async fn refused(p: &Arc<dyn ModelProvider>) -> ModelError {
    p.stream(request("x"), CancellationToken::new())
        .await
        .unwrap_err()
}

/// Waits (bounded) until `condition` holds.
async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in 5 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// --- every provider --------------------------------------------------------

conformance!(
    /// Text streams as deltas (multi-byte characters intact), then one
    /// usage, then `EndTurn`; the request body a provider reports for
    /// traces is the one it sent (none without a wire).
    text_streams_then_usage_then_stop, needs = [], |subject| {
        let served = subject.answering_text().await;
        let stream = served.stream().await;
        if served.mock.is_some() {
            assert_eq!(stream.meta().request_id.as_deref(), Some("req_test_1"));
        }
        assert_eq!(stream.meta().attempts, 1);
        let (events, err) = collect(stream).await;
        assert!(err.is_none(), "{err:?}");
        assert!(!served.expected.text.is_empty());
        served.expected.assert_matches(&events);
        let body = served.provider.request_body(&served.request);
        match &served.mock {
            Some(mock) => assert_eq!(body, Some(mock.requests()[0].body.clone())),
            None => assert_eq!(body, None),
        }
    }
);

conformance!(
    /// Tool calls arrive whole, with parsed object arguments (`{}` when
    /// none were sent), after the text before them, then usage and
    /// `ToolUse`.
    tool_calls_then_usage_then_stop, needs = [], |subject| {
        let served = subject.answering_with_tools().await;
        let (events, err) = collect(served.stream().await).await;
        assert!(err.is_none(), "{err:?}");
        assert!(!served.expected.calls.is_empty());
        served.expected.assert_matches(&events);
    }
);

conformance!(
    /// Cancelling a running stream ends it promptly with `Cancelled`, and
    /// nothing follows.
    cancellation_ends_the_stream, needs = [], |subject| {
        let served = subject.answering_text_held().await;
        let cancel = CancellationToken::new();
        let mut stream = served
            .provider
            .stream(served.request.clone(), cancel.clone())
            .await
            .unwrap();
        assert!(matches!(
            first_event(&mut stream).await,
            ModelEvent::TextDelta(_)
        ));
        cancel.cancel();
        let started = Instant::now();
        let (_, err) = collect(stream).await;
        assert_eq!(err, Some(ModelError::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(3));
    }
);

// --- providers with a wire -------------------------------------------------

conformance!(
    /// The call is one POST to the wire's path; the body carries the
    /// model, `stream: true` and `max_tokens`.
    request_is_one_streaming_post, needs = [Wire], |subject| {
        let wire = subject.wire();
        let served = subject.answering_text().await;
        let (_, err) = collect(served.stream().await).await;
        assert!(err.is_none(), "{err:?}");
        let requests = served.mock.as_ref().unwrap().requests();
        assert_eq!(requests.len(), 1);
        let r = &requests[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, wire.path());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body = r.json();
        assert_eq!(body["model"], wire::MODEL);
        assert_eq!(body["stream"], true);
        assert_eq!(body["max_tokens"], 1024);
    }
);

conformance!(
    /// The same stream cut into chunks of any size (1 byte, mid-UTF-8,
    /// whole) gives the same events, through a trait object as the turn
    /// loop holds it.
    any_chunk_size_gives_the_same_events, needs = [Wire], |subject| {
        let wire = subject.wire();
        let body = wire.answer(
            &[
                Part::Text(&["Grüße ", "🎉 done"]),
                Part::Tool { id: "toolu_z", name: "get_shopify_top_products", pieces: &["{\"li", "mit\": 3}"] },
            ],
            Finish::ToolUse,
            USAGE,
        );
        let mut expected = None;
        for size in [1, 2, 3, 5, 64, 4096] {
            let server = mock(vec![MockResponse::sse_chunked(&body, size)]).await;
            let p = wire.provider(&server, test_http());
            let (events, err) = collect(call(&p).await).await;
            assert!(err.is_none(), "size {size}: {err:?}");
            assert_eq!(text_of(&events), "Grüße 🎉 done");
            match &expected {
                None => expected = Some(events),
                Some(e) => assert_eq!(&events, e, "size {size}"),
            }
        }
    }
);

conformance!(
    /// Arguments that are not a JSON object become a `MalformedToolCall`
    /// carrying the raw text (for the model to correct), and the stream
    /// goes on to its usage and stop.
    malformed_tool_arguments_are_reported_not_fatal, needs = [Wire], |subject| {
        let wire = subject.wire();
        let body = wire.answer(
            &[
                Part::Tool { id: "t1", name: "lookup_shopify_customer", pieces: &["{\"a\": tru"] },
                Part::Tool { id: "t2", name: "get_shopify_store_counts", pieces: &["[1]"] },
            ],
            Finish::ToolUse,
            USAGE,
        );
        let server = mock(vec![MockResponse::sse(body)]).await;
        let (events, err) = collect(call(&wire.provider(&server, test_http())).await).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(events.len(), 4, "{events:?}");
        assert!(
            matches!(&events[0], ModelEvent::MalformedToolCall { id, name, raw, .. }
                if id == "t1" && name == "lookup_shopify_customer" && raw == "{\"a\": tru"),
            "{events:?}"
        );
        assert!(
            matches!(&events[1], ModelEvent::MalformedToolCall { id, raw, error, .. }
                if id == "t2" && raw == "[1]" && error.contains("object")),
            "{events:?}"
        );
        assert_eq!(events[2], ModelEvent::Usage(USAGE));
        assert_eq!(events[3], ModelEvent::Stop { reason: StopReason::ToolUse });
    }
);

conformance!(
    /// An error inside the 200 stream after text reached the caller is the
    /// stream's typed last item and is never retried.
    error_after_the_first_event_ends_the_stream_unretried, needs = [Wire], |subject| {
        let wire = subject.wire();
        let (body, expected) = wire.error_after(&[Part::Text(&["Hel"])]);
        let server = mock(vec![MockResponse::sse(body)]).await;
        let (events, err) = collect(call(&wire.provider(&server, test_http())).await).await;
        assert_eq!(events, vec![ModelEvent::TextDelta("Hel".into())]);
        match err {
            Some(ModelError::Api { kind, status, message, .. }) => {
                assert_eq!(kind, expected.kind);
                assert_eq!(status, None);
                assert_eq!(message, expected.message);
            }
            other => panic!("expected an API error, got {other:?}"),
        }
        assert_eq!(server.requests().len(), 1);
    }
);

conformance!(
    /// A stream that ends before the wire's end is a protocol error after
    /// the text it did carry; a tool call it cut is never emitted.
    cut_stream_is_a_protocol_error, needs = [Wire], |subject| {
        let wire = subject.wire();
        let server = mock(vec![MockResponse::sse(wire.cut(&[Part::Text(&["partial"])]))]).await;
        let (events, err) = collect(call(&wire.provider(&server, test_http())).await).await;
        assert_eq!(text_of(&events), "partial");
        assert!(matches!(err, Some(ModelError::Protocol { .. })), "{err:?}");

        let body = wire.cut(&[Part::Tool { id: "t", name: "get_shopify_store_counts", pieces: &["{}"] }]);
        // Cut inside the call: Anthropic's block never closes.
        let body = match body.rfind("event: content_block_stop") {
            Some(at) => body[..at].to_owned(),
            None => body,
        };
        let server = mock(vec![MockResponse::sse(body)]).await;
        let (events, err) = collect(call(&wire.provider(&server, test_http())).await).await;
        assert!(events.iter().all(|e| !matches!(e, ModelEvent::ToolCall(_))), "{events:?}");
        assert!(matches!(err, Some(ModelError::Protocol { .. })), "{err:?}");
    }
);

conformance!(
    /// A tool round: the second request echoes the assistant's text and
    /// tool calls and carries every result (failures marked) in the wire's
    /// shape; each request's bytes are what `request_body` reports.
    tool_results_round_trip, needs = [Wire], |subject| {
        let wire = subject.wire();
        let turn1 = wire.answer(
            &[
                Part::Text(&["Checking."]),
                Part::Tool { id: "toolu_a", name: "get_shopify_store_overview", pieces: &[""] },
                Part::Tool { id: "toolu_b", name: "lookup_shopify_customer", pieces: &["{\"email\":", "\"a@b.co\"}"] },
            ],
            Finish::ToolUse,
            USAGE,
        );
        let turn2 = wire.answer(&[Part::Text(&["You have 3 orders."])], Finish::EndTurn, USAGE);
        let server = mock(vec![MockResponse::sse(turn1), MockResponse::sse(turn2)]).await;
        let p = wire.provider(&server, test_http());

        let first = request("How is my store doing?");
        let (events, err) = collect(p.stream(first.clone(), CancellationToken::new()).await.unwrap()).await;
        assert!(err.is_none(), "{err:?}");
        let second = common::with_tool_round(&first, &events, |call| {
            (format!("{{\"tool\":\"{}\",\"orders\":3}}", call.name), call.name == "lookup_shopify_customer")
        });
        let (events, err) = collect(p.stream(second.clone(), CancellationToken::new()).await.unwrap()).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(text_of(&events), "You have 3 orders.");

        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(Some(requests[0].body.clone()), p.request_body(&first));
        assert_eq!(Some(requests[1].body.clone()), p.request_body(&second));
        wire.assert_tool_round(&requests[1].json());
    }
);

// --- providers over a network ----------------------------------------------

conformance!(
    /// A retryable "overloaded" status, then success: one more request,
    /// the caller sees only the answer.
    overloaded_then_success, needs = [Network], |subject| {
        let wire = subject.wire();
        let ok = wire.answer(&[Part::Text(&["fine"])], Finish::EndTurn, USAGE);
        let server = mock(vec![wire.overloaded(), MockResponse::sse(ok)]).await;
        let (events, err) = collect(call(&wire.provider(&server, test_http())).await).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(text_of(&events), "fine");
        assert_eq!(server.requests().len(), 2);
    }
);

conformance!(
    /// Server errors are retried within the bounded attempt budget, then
    /// reported typed.
    server_errors_exhaust_bounded_attempts, needs = [Network], |subject| {
        let wire = subject.wire();
        let server = mock(vec![wire.server_error()]).await;
        let err = refused(&wire.provider(&server, test_http())).await;
        assert!(
            matches!(err, ModelError::Api { kind: ApiErrorKind::Server, status: Some(500), .. }),
            "{err:?}"
        );
        assert_eq!(server.requests().len(), 3, "max_attempts = 3");
    }
);

conformance!(
    /// A rate limit's wait header is honoured before the retry, which
    /// sends the same bytes.
    rate_limit_waits_for_retry_after, needs = [Network], |subject| {
        let wire = subject.wire();
        let (limited, wait) = wire.rate_limited();
        let ok = wire.answer(&[Part::Text(&["ok"])], Finish::EndTurn, USAGE);
        let server = mock(vec![limited, MockResponse::sse(ok)]).await;
        let started = Instant::now();
        let stream = call(&wire.provider(&server, test_http())).await;
        assert!(started.elapsed() >= wait.mul_f64(0.95), "retry-after honoured");
        assert_eq!(stream.meta().attempts, 2);
        let (events, err) = collect(stream).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(text_of(&events), "ok");
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].body, requests[1].body, "the retry sends the same bytes");
    }
);

conformance!(
    /// A `retry-after` beyond the limit is not waited for: the rate limit
    /// is reported at once, with the wait it asked for.
    retry_after_beyond_the_limit_is_not_waited_for, needs = [Network], |subject| {
        let wire = subject.wire();
        let server = mock(vec![wire.rate_limited_for_ten_minutes()]).await;
        let started = Instant::now();
        let err = refused(&wire.provider(&server, test_http())).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        match err {
            ModelError::Api { kind, retry_after, .. } => {
                assert_eq!(kind, ApiErrorKind::RateLimited);
                assert_eq!(retry_after, Some(Duration::from_secs(600)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(server.requests().len(), 1);
    }
);

conformance!(
    /// A spend or quota limit is a 429 that waiting does not cure: never
    /// retried, even with a `retry-after`.
    quota_429_is_not_retried, needs = [Network], |subject| {
        let wire = subject.wire();
        let server = mock(vec![wire.quota_exceeded()]).await;
        let err = refused(&wire.provider(&server, test_http())).await;
        assert!(
            matches!(err, ModelError::Api { kind: ApiErrorKind::QuotaExceeded, status: Some(429), .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert_eq!(server.requests().len(), 1);
    }
);

conformance!(
    /// A 400 is the caller's mistake: not retried, typed, with the
    /// provider's request id when its body has one.
    invalid_request_is_not_retried, needs = [Network], |subject| {
        let wire = subject.wire();
        let (response, request_id) = wire.invalid_request();
        let server = mock(vec![response]).await;
        match refused(&wire.provider(&server, test_http())).await {
            ModelError::Api { kind, request_id: got, .. } => {
                assert_eq!(kind, ApiErrorKind::InvalidRequest);
                if let Some(id) = request_id {
                    assert_eq!(got.as_deref(), Some(id));
                }
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(server.requests().len(), 1);
    }
);

conformance!(
    /// An error status whose body is not JSON (a proxy's 413 page) is
    /// still typed from the status.
    non_json_error_body_is_typed_by_status, needs = [Network], |subject| {
        let wire = subject.wire();
        let server = mock(vec![MockResponse::status(413, "<html>Request Entity Too Large</html>")]).await;
        let err = refused(&wire.provider(&server, test_http())).await;
        assert!(
            matches!(err, ModelError::Api { kind: ApiErrorKind::RequestTooLarge, status: Some(413), .. }),
            "{err:?}"
        );
    }
);

conformance!(
    /// A refused connection is a retryable transport error that shows no
    /// secret.
    connection_refused_is_a_retryable_transport_error, needs = [Network], |subject| {
        let wire = subject.wire();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = refused(&wire.provider_at(&format!("http://{addr}"), test_http())).await;
        assert!(matches!(err, ModelError::Transport { .. }), "{err:?}");
        assert!(err.is_retryable());
        assert!(!err.to_string().contains(wire::API_KEY), "no secrets in errors");
        assert!(!format!("{err:?}").contains(wire::API_KEY), "no secrets in errors");
    }
);

conformance!(
    /// Cancelling while the provider waits to retry ends the call at once.
    cancellation_during_retry_backoff, needs = [Network], |subject| {
        let wire = subject.wire();
        let server = mock(vec![wire.overloaded().header("retry-after", "3")]).await;
        let p = wire.provider(&server, test_http());
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let call = tokio::spawn({
            let cancel = cancel.clone();
            async move { p.stream(request("x"), cancel).await.map(|_| ()) }
        });
        wait_until(|| server.request_count() >= 1).await;
        cancel.cancel();
        assert_eq!(call.await.unwrap().unwrap_err(), ModelError::Cancelled);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(server.request_count(), 1);
    }
);

conformance!(
    /// A stream that goes quiet after its first event times out (idle) and
    /// is not retried: something already reached the caller.
    idle_timeout_between_chunks, needs = [Network], |subject| {
        let wire = subject.wire();
        let mut http = test_http();
        http.idle_timeout = Duration::from_millis(200);
        let body = wire.answer(&[Part::Text(&["slow", "er"])], Finish::EndTurn, USAGE);
        let stall_at = body.find("\"er\"").unwrap() / CHUNK;
        let server = mock(vec![MockResponse::sse(body).stall_before(stall_at, Duration::from_secs(2))]).await;
        let (events, err) = collect(call(&wire.provider(&server, http)).await).await;
        assert_eq!(text_of(&events), "slow", "{err:?}");
        assert!(
            matches!(err, Some(ModelError::Timeout { what: "idle stream", .. })),
            "{err:?}"
        );
        assert_eq!(server.requests().len(), 1);
    }
);

conformance!(
    /// A model that never starts answering is given up on after the
    /// response timeout once, not once per attempt: the merchant is not
    /// kept on "Thinking…" for the attempts times the timeout.
    the_wait_for_a_first_event_is_bounded_across_attempts, needs = [Network], |subject| {
        let wire = subject.wire();
        let mut http = test_http();
        http.response_timeout = Duration::from_millis(300);
        http.idle_timeout = Duration::from_secs(30);
        let silent = || {
            let body = wire.answer(&[Part::Text(&["late"])], Finish::EndTurn, USAGE);
            MockResponse::sse(body).stall_before(0, Duration::from_secs(30))
        };
        let server = mock(vec![silent(), silent(), silent()]).await;
        let (events, err) = collect(call(&wire.provider(&server, http)).await).await;
        assert!(events.is_empty(), "{events:?}");
        assert!(
            matches!(err, Some(ModelError::Timeout { after, .. }) if after == Duration::from_millis(300)),
            "{err:?}"
        );
        assert_eq!(server.requests().len(), 1, "no time was left for a retry");
    }
);

conformance!(
    /// Failures before any event (an error inside the 200 stream, a stall)
    /// are retried transparently, within the attempt budget the HTTP
    /// retries share.
    failures_before_any_event_are_retried_transparently, needs = [Network], |subject| {
        let wire = subject.wire();
        let (early_error, expected) = wire.error_after(&[]);
        let mut http = test_http();
        http.idle_timeout = Duration::from_millis(200);
        let never = wire.answer(&[Part::Text(&["never"])], Finish::EndTurn, USAGE);
        let lucky = wire.answer(&[Part::Text(&["third time lucky"])], Finish::EndTurn, USAGE);
        let server = mock(vec![
            MockResponse::sse(early_error.clone()),
            MockResponse::sse(never).stall_before(2, Duration::from_secs(2)),
            MockResponse::sse(lucky),
        ])
        .await;
        let (events, err) = collect(call(&wire.provider(&server, http)).await).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(text_of(&events), "third time lucky");
        assert_eq!(server.requests().len(), 3);

        let server = mock(vec![MockResponse::sse(early_error)]).await;
        let (events, err) = collect(call(&wire.provider(&server, test_http())).await).await;
        assert!(events.is_empty(), "{events:?}");
        assert!(
            matches!(&err, Some(ModelError::Api { kind, .. }) if *kind == expected.kind),
            "{err:?}"
        );
        assert_eq!(server.requests().len(), 3, "max_attempts = 3");
    }
);
