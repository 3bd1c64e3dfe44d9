//! The providers under test: each one declares what it can be tested on
//! ([`Capability`]) and, for the shared scenarios every provider runs, how
//! it is made to give a text answer or ask for tools.

use std::sync::Arc;

use futures::StreamExt as _;
use hirecj_agent::model::{
    Message, ModelEvent, ModelProvider, ModelRequest, ModelStream, StopReason, SystemBlock,
    ToolCall, Usage,
};
use hirecj_agent::offline::OfflineProvider;
use hirecj_agent::tools::{ToolName, tool_specs};
use hirecj_testkit::model::{MockModel, MockResponse};
use serde_json::json;

use super::common::test_http;
use super::wire::{Finish, Part, Wire};

/// What a provider can be tested on, beyond the scenarios every provider
/// runs (text, tool calls, usage, stop reason, cancellation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// It speaks a wire format, so the mock model can script exactly what
    /// it receives: chunking, malformed arguments, mid-stream errors,
    /// cut streams, the bytes it sends.
    Wire,
    /// It reaches its model over the network: error statuses, retries,
    /// `retry-after`, timeouts, refused connections.
    Network,
}

/// One provider under test.
pub struct Subject {
    pub name: &'static str,
    pub capabilities: &'static [Capability],
    /// How to script the mock model for it; `None` for a provider that
    /// needs no model server.
    pub wire: Option<Wire>,
}

impl Subject {
    pub fn anthropic() -> Self {
        Self {
            name: "anthropic",
            capabilities: &[Capability::Wire, Capability::Network],
            wire: Some(Wire::Anthropic),
        }
    }

    pub fn openai() -> Self {
        Self {
            name: "openai",
            capabilities: &[Capability::Wire, Capability::Network],
            wire: Some(Wire::OpenAi),
        }
    }

    /// The offline brain: no network, and it decides what it says from the
    /// request alone, so the shared scenarios ask it real questions.
    pub fn offline() -> Self {
        Self {
            name: "offline",
            capabilities: &[],
            wire: None,
        }
    }

    /// The wire of a provider whose scenario declared `needs = [Wire]`.
    pub fn wire(&self) -> Wire {
        self.wire
            .expect("a scenario needing a wire runs only on providers that declare one")
    }

    /// The provider, asked something it answers with text only.
    pub async fn answering_text(&self) -> Served {
        self.serve(Answer::Text, None).await
    }

    /// The provider, asked something it answers with tool calls.
    pub async fn answering_with_tools(&self) -> Served {
        self.serve(Answer::Tools, None).await
    }

    /// Like [`Subject::answering_text`], but a scripted model holds its
    /// answer after the first text delta until the test releases it.
    pub async fn answering_text_held(&self) -> Served {
        self.serve(Answer::Text, Some(Hold)).await
    }

    async fn serve(&self, answer: Answer, hold: Option<Hold>) -> Served {
        let Some(wire) = self.wire else {
            let request = request(answer.question());
            let offline = OfflineProvider::new();
            let (text, calls) = offline.reply(&request);
            let stop = if calls.is_empty() {
                StopReason::EndTurn
            } else {
                StopReason::ToolUse
            };
            return Served {
                provider: Arc::new(offline),
                request,
                mock: None,
                expected: Expected {
                    text,
                    calls,
                    usage: None,
                    stop,
                },
            };
        };
        let (parts, finish, usage) = answer.script();
        let events = wire.events(&parts, finish, usage);
        let response = match hold {
            None => MockResponse::sse(events.concat()),
            Some(Hold) => {
                // The chunk after the one carrying the first text delta.
                let first_delta = events
                    .iter()
                    .position(|e| e.contains(&format!("\"{}\"", TEXT[0])))
                    .expect("a text delta");
                MockResponse::sse_events(events).gate_before(first_delta + 1)
            }
        };
        let mock = MockModel::start(vec![
            response.header(wire.request_id_header(), "req_test_1"),
        ])
        .await
        .expect("a mock model");
        if hold.is_some() {
            mock.hold();
        }
        Served {
            provider: wire.provider(&mock, test_http()),
            request: request(answer.question()),
            mock: Some(mock),
            expected: answer.expected(usage),
        }
    }
}

/// A request like the turn loop builds: workflow heading, merchant
/// context with a connected store, three tools, and `question`.
pub fn request(question: &str) -> ModelRequest {
    ModelRequest {
        system: vec![
            SystemBlock::cached("You are CJ."),
            SystemBlock::cached("# Current workflow: ad_hoc_support\nAnswer the merchant."),
            SystemBlock::volatile(
                "Store: connected: demo.myshopify.com\nToday's date: 2026-11-26 (Thursday)",
            ),
        ],
        messages: vec![Message::user_text(question)],
        tools: tool_specs([
            ToolName::StoreCounts.as_str(),
            ToolName::StoreOverview.as_str(),
            ToolName::LookupCustomer.as_str(),
        ]),
        max_tokens: 1024,
        temperature: Some(0.3),
        metadata_user_id: Some("usr_abcdefgh".into()),
    }
}

/// Text deltas of the scripted text answer: multi-byte characters that the
/// mock's small chunks cut in the middle.
pub const TEXT: [&str; 3] = ["Hello", ", wörld 👋", "! You sold 12 orders."];

/// The usage every scripted answer reports.
pub const USAGE: Usage = Usage {
    input_tokens: 12,
    output_tokens: 15,
    cache_read_tokens: 2048,
    cache_write_tokens: 0,
};

/// The scripted tool answer: text, a call without arguments, and one whose
/// arguments are cut mid-key, mid-string and inside escapes.
pub const TOOL_PARTS: [Part<'static>; 3] = [
    Part::Text(&["Let me look that up."]),
    Part::Tool {
        id: "toolu_a",
        name: "get_shopify_store_overview",
        pieces: &[],
    },
    Part::Tool {
        id: "toolu_b",
        name: "lookup_shopify_customer",
        pieces: &[
            "",
            "{\"em",
            "ail\": \"ja",
            "ne@exam",
            "ple.com\", \"note\": \"caf\u{e9} \\u00e9\\\"q",
            "\\\"\"}",
        ],
    },
];

/// What [`TOOL_PARTS`] must parse into.
pub fn tool_calls() -> Vec<ToolCall> {
    vec![
        ToolCall {
            id: "toolu_a".into(),
            name: "get_shopify_store_overview".into(),
            input: json!({}),
        },
        ToolCall {
            id: "toolu_b".into(),
            name: "lookup_shopify_customer".into(),
            input: json!({"email": "jane@example.com", "note": "café é\"q\""}),
        },
    ]
}

#[derive(Clone, Copy)]
enum Answer {
    Text,
    Tools,
}

/// Marker: the scripted answer waits at the mock's gate.
#[derive(Clone, Copy)]
struct Hold;

impl Answer {
    /// What the offline brain is asked (scripted models ignore it).
    fn question(self) -> &'static str {
        match self {
            Self::Text => "hi",
            Self::Tools => "How many customers do I have?",
        }
    }

    fn script(self) -> (Vec<Part<'static>>, Finish, Usage) {
        match self {
            Self::Text => (vec![Part::Text(&TEXT)], Finish::EndTurn, USAGE),
            Self::Tools => (
                TOOL_PARTS.to_vec(),
                Finish::ToolUse,
                Usage {
                    output_tokens: 40,
                    ..USAGE
                },
            ),
        }
    }

    fn expected(self, usage: Usage) -> Expected {
        match self {
            Self::Text => Expected {
                text: TEXT.concat(),
                calls: Vec::new(),
                usage: Some(usage),
                stop: StopReason::EndTurn,
            },
            Self::Tools => Expected {
                text: "Let me look that up.".into(),
                calls: tool_calls(),
                usage: Some(usage),
                stop: StopReason::ToolUse,
            },
        }
    }
}

/// A provider set up to answer, with what it must stream.
pub struct Served {
    pub provider: Arc<dyn ModelProvider>,
    pub request: ModelRequest,
    /// The mock model behind a wire provider (kept alive with it).
    pub mock: Option<MockModel>,
    pub expected: Expected,
}

impl Served {
    /// Starts the call.
    pub async fn stream(&self) -> ModelStream {
        self.provider
            .stream(
                self.request.clone(),
                tokio_util::sync::CancellationToken::new(),
            )
            .await
            .expect("the call starts")
    }
}

/// What a conforming stream carries.
pub struct Expected {
    pub text: String,
    pub calls: Vec<ToolCall>,
    /// Exact totals when scripted; the offline brain's are its own.
    pub usage: Option<Usage>,
    pub stop: StopReason,
}

impl Expected {
    /// Checks the event contract of `ModelProvider`: text and tool calls in
    /// order, then exactly one usage, then exactly one stop, last.
    pub fn assert_matches(&self, events: &[ModelEvent]) {
        let n = events.len();
        assert!(n >= 2, "{events:?}");
        assert_eq!(
            events[n - 1],
            ModelEvent::Stop {
                reason: self.stop.clone()
            }
        );
        match (&events[n - 2], self.usage) {
            (ModelEvent::Usage(got), Some(want)) => assert_eq!(*got, want),
            (ModelEvent::Usage(_), None) => {}
            (other, _) => panic!("usage must come just before the stop, got {other:?}"),
        }
        let mut text = String::new();
        let mut calls = Vec::new();
        for event in &events[..n - 2] {
            match event {
                ModelEvent::TextDelta(t) => text.push_str(t),
                ModelEvent::ToolCall(c) => calls.push(c.clone()),
                other => panic!("unexpected {other:?} before the usage"),
            }
        }
        assert_eq!(text, self.text);
        assert_eq!(calls, self.calls);
    }
}

/// The first event of `stream`.
pub async fn first_event(stream: &mut ModelStream) -> ModelEvent {
    stream
        .next()
        .await
        .expect("an event")
        .expect("not an error")
}
