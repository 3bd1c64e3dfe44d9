//! The one chat WebSocket client, on the server's own typed frames
//! ([`ClientFrame`] out, [`ServerFrame`] in).
//!
//! Every text frame the server sends is parsed into a [`ServerFrame`]; one
//! that does not parse is an error ([`WsError::OutsideProtocol`]), so every
//! test and the bench check the protocol as a side effect. The client uses
//! the server's types rather than a mirror of them: a mirror would be a
//! second definition of the protocol that could drift from the one the
//! server serialises, which is the thing under test. A received [`Frame`]
//! also keeps the JSON it came in, because tests assert the wire shape
//! (`frame["protocol"] == 1`) as `docs/protocol.md` documents it.
//! [`ChatClient::send_json`] and [`ChatClient::send_text`] send what no
//! [`ClientFrame`] can express, for tests of the server's refusals.

use std::fmt;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use hirecj_domain::ConversationId;
pub use hirecj_server::chat::protocol::{ClientFrame, ServerFrame, WireMessage};
use serde::Deserialize as _;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The frames that only report progress on a turn.
const PROGRESS: [&str; 2] = ["cj_thinking", "cj_delta"];

/// What can go wrong talking to the chat socket.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("{url}: {reason}")]
    BadRequest { url: String, reason: String },
    #[error("the WebSocket upgrade was refused with HTTP {status}")]
    Refused { status: u16 },
    #[error("no {waiting_for} within {} s", .after.as_secs())]
    Timeout {
        waiting_for: String,
        after: Duration,
    },
    #[error("the connection closed while waiting for {waiting_for}")]
    Closed { waiting_for: String },
    #[error("WebSocket: {0}")]
    Socket(#[from] tungstenite::Error),
    #[error("a frame outside the protocol ({error}): {text}")]
    OutsideProtocol {
        text: String,
        error: serde_json::Error,
    },
    #[error("error frame while waiting for {waiting_for}: {code} {message}")]
    ErrorFrame {
        waiting_for: String,
        code: String,
        message: String,
    },
    #[error("expected {expected}, got {got}")]
    Unexpected { expected: String, got: Box<Frame> },
}

impl WsError {
    /// The code of an `error` frame, when that is what this is.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Self::ErrorFrame { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// One frame from the server: the typed frame and the JSON it came in.
#[derive(Debug, Clone)]
pub struct Frame {
    typed: ServerFrame,
    json: Value,
}

impl Frame {
    fn parse(text: &str) -> Result<Self, WsError> {
        let outside = |error| WsError::OutsideProtocol {
            text: text.to_owned(),
            error,
        };
        let json: Value = serde_json::from_str(text).map_err(outside)?;
        let typed = ServerFrame::deserialize(&json).map_err(outside)?;
        Ok(Self { typed, json })
    }

    /// The `type` field.
    pub fn kind(&self) -> &str {
        self.json["type"].as_str().unwrap_or_default()
    }

    pub fn typed(&self) -> &ServerFrame {
        &self.typed
    }

    pub fn into_typed(self) -> ServerFrame {
        self.typed
    }

    pub fn json(&self) -> &Value {
        &self.json
    }

    fn is_progress(&self) -> bool {
        PROGRESS.contains(&self.kind())
    }
}

/// Indexes the frame's JSON, like a `serde_json::Value`.
impl std::ops::Index<&str> for Frame {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        &self.json[key]
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.json.fmt(f)
    }
}

/// How to open the socket.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The `Cookie` header (`hirecj_session=…`); none sends no cookie.
    pub cookie: Option<String>,
    /// The `Origin` header; the server refuses a foreign one.
    pub origin: Option<String>,
    /// An `X-Forwarded-For` header, as a proxy in front of the app sets it.
    pub forwarded_for: Option<String>,
    /// The read buffer: the bench holds thousands of sockets and asks for a
    /// small one; `None` keeps tungstenite's default.
    pub read_buffer: Option<usize>,
    /// Longest wait for the upgrade and then for any one expected frame.
    pub wait: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            cookie: None,
            origin: None,
            forwarded_for: None,
            read_buffer: None,
            wait: Duration::from_secs(20),
        }
    }
}

/// A connected chat socket.
pub struct ChatClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    wait: Duration,
}

impl fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatClient").finish_non_exhaustive()
    }
}

impl ChatClient {
    /// Opens `url` (`ws://host:port/ws/chat`).
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, WsError> {
        let bad = |reason: String| WsError::BadRequest {
            url: url.to_owned(),
            reason,
        };
        let mut req = url.into_client_request().map_err(|e| bad(e.to_string()))?;
        for (name, value) in [
            ("cookie", &options.cookie),
            ("origin", &options.origin),
            ("x-forwarded-for", &options.forwarded_for),
        ] {
            if let Some(value) = value {
                let value = HeaderValue::from_str(value)
                    .map_err(|_| bad(format!("the {name} header is not a valid header value")))?;
                req.headers_mut().insert(name, value);
            }
        }
        let config = options
            .read_buffer
            .map(|size| WebSocketConfig::default().read_buffer_size(size));
        let connect = tokio_tungstenite::connect_async_with_config(req, config, false);
        match tokio::time::timeout(options.wait, connect).await {
            Ok(Ok((stream, _))) => Ok(Self {
                stream,
                wait: options.wait,
            }),
            Ok(Err(tungstenite::Error::Http(response))) => Err(WsError::Refused {
                status: response.status().as_u16(),
            }),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(WsError::Timeout {
                waiting_for: "the WebSocket upgrade".to_owned(),
                after: options.wait,
            }),
        }
    }

    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), WsError> {
        let text = serde_json::to_string(frame).map_err(|error| WsError::OutsideProtocol {
            text: format!("{frame:?}"),
            error,
        })?;
        self.send_text(&text).await
    }

    /// Sends any JSON: frames no [`ClientFrame`] can express.
    pub async fn send_json(&mut self, frame: Value) -> Result<(), WsError> {
        self.send_text(&frame.to_string()).await
    }

    /// Sends raw text (not necessarily JSON).
    pub async fn send_text(&mut self, text: &str) -> Result<(), WsError> {
        Ok(self.stream.send(Message::text(text)).await?)
    }

    /// The next text frame, or `None` once the server has closed (with its
    /// close code, if it gave one).
    async fn read(&mut self, waiting_for: &str) -> Result<Result<Frame, Option<u16>>, WsError> {
        loop {
            let msg = tokio::time::timeout(self.wait, self.stream.next())
                .await
                .map_err(|_| WsError::Timeout {
                    waiting_for: waiting_for.to_owned(),
                    after: self.wait,
                })?;
            match msg {
                None => return Ok(Err(None)),
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Err(frame.map(|f| u16::from(f.code))));
                }
                Some(Ok(Message::Text(text))) => return Frame::parse(text.as_str()).map(Ok),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// The next frame, whatever it is.
    pub async fn next(&mut self) -> Result<Frame, WsError> {
        self.read("a frame").await?.map_err(|_| WsError::Closed {
            waiting_for: "a frame".to_owned(),
        })
    }

    /// The next frame of type `kind`, skipping progress frames (`cj_thinking`,
    /// `cj_delta`) and nothing else: an `error` frame is
    /// [`WsError::ErrorFrame`], any other is [`WsError::Unexpected`].
    pub async fn expect(&mut self, kind: &str) -> Result<Frame, WsError> {
        Ok(self.collect_until(kind).await?.1)
    }

    /// The progress frames up to the next frame of type `kind`, and that one
    /// (errors as in [`ChatClient::expect`]).
    pub async fn collect_until(&mut self, kind: &str) -> Result<(Vec<Frame>, Frame), WsError> {
        let mut seen = Vec::new();
        loop {
            let frame = self.next_while_waiting(kind).await?;
            if frame.kind() == kind {
                return Ok((seen, frame));
            }
            if frame.is_progress() {
                seen.push(frame);
                continue;
            }
            return Err(unexpected(kind, frame));
        }
    }

    /// The next frame of type `kind`, skipping every other frame except
    /// `error` ([`WsError::ErrorFrame`]).
    pub async fn until(&mut self, kind: &str) -> Result<Frame, WsError> {
        loop {
            let frame = self.next_while_waiting(kind).await?;
            if frame.kind() == kind {
                return Ok(frame);
            }
            if frame.kind() == "error" {
                return Err(unexpected(kind, frame));
            }
        }
    }

    async fn next_while_waiting(&mut self, kind: &str) -> Result<Frame, WsError> {
        self.read(kind).await?.map_err(|_| WsError::Closed {
            waiting_for: kind.to_owned(),
        })
    }

    /// Reads until the server closes the socket: the frames it sent first
    /// and the close code, if it gave one.
    pub async fn until_closed(&mut self) -> Result<(Vec<Frame>, Option<u16>), WsError> {
        let mut frames = Vec::new();
        loop {
            match self.read("the server to close the socket").await {
                Ok(Ok(frame)) => frames.push(frame),
                Ok(Err(code)) => return Ok((frames, code)),
                // A reset instead of a close frame: closed, without a code.
                Err(WsError::Socket(_)) => return Ok((frames, None)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Keeps reading (so the server's pings are answered) until the socket
    /// closes or fails; what arrives is dropped. For connections held idle.
    pub async fn hold_open(mut self) {
        while let Some(Ok(_)) = self.stream.next().await {}
    }

    /// Opens a new conversation in `workflow` and returns its
    /// `conversation_started` frame.
    pub async fn start_in(&mut self, workflow: &str) -> Result<Frame, WsError> {
        self.send(&ClientFrame::StartConversation {
            conversation_id: None,
            workflow: Some(workflow.to_owned()),
            last_seq: 0,
        })
        .await?;
        self.expect("conversation_started").await
    }

    /// Starts an `ad_hoc_support` conversation (merchant-initiated, so no
    /// greeting turn runs first) and returns its id.
    pub async fn start_ad_hoc(&mut self) -> Result<ConversationId, WsError> {
        let started = self
            .start_in(hirecj_agent::workflow::AD_HOC_SUPPORT)
            .await?;
        match started.into_typed() {
            ServerFrame::ConversationStarted {
                conversation_id, ..
            } => Ok(conversation_id),
            other => Err(WsError::Unexpected {
                expected: "conversation_started".to_owned(),
                got: Box::new(Frame {
                    json: serde_json::to_value(&other).unwrap_or_default(),
                    typed: other,
                }),
            }),
        }
    }

    /// Opens an existing conversation from `last_seq` and returns its
    /// `conversation_started` frame.
    pub async fn resume(
        &mut self,
        conversation_id: ConversationId,
        last_seq: i64,
    ) -> Result<Frame, WsError> {
        self.send(&ClientFrame::StartConversation {
            conversation_id: Some(conversation_id),
            workflow: None,
            last_seq,
        })
        .await?;
        self.expect("conversation_started").await
    }
}

fn unexpected(expected: &str, frame: Frame) -> WsError {
    match frame.typed() {
        ServerFrame::Error { code, message, .. } => WsError::ErrorFrame {
            waiting_for: expected.to_owned(),
            code: code.clone(),
            message: message.clone(),
        },
        _ => WsError::Unexpected {
            expected: expected.to_owned(),
            got: Box::new(frame),
        },
    }
}
