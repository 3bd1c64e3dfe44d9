//! `/ws/chat`: one WebSocket per open chat page. Frames are parsed into
//! [`ClientFrame`]s; a malformed one gets an `error` frame and the connection
//! stays usable. CJ's turns run in their own tasks; their frames are
//! forwarded here, and a `cj_message` the client already has (by `seq`) is
//! never sent twice.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt as _, StreamExt as _};
use hirecj_domain::ConversationId;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::protocol::{ClientFrame, PROTOCOL_VERSION, ServerFrame, WireMessage};
use super::service::{ChatError, ChatService, Owner};
use crate::app::AppState;

/// Largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Merchant messages (and other frames) per minute per connection.
const FRAMES_PER_MINUTE: u32 = 120;
const MESSAGES_PER_MINUTE: u32 = 30;
/// The server pings this often; a connection silent for three intervals is closed.
const PING_EVERY: Duration = Duration::from_secs(30);

impl axum::extract::FromRequestParts<AppState> for Owner {
    type Rejection = crate::error::AppError;

    /// The browser's session: required (the chat page creates one).
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let crate::session::CurrentSession(session) =
            crate::session::CurrentSession::from_request_parts(parts, state).await?;
        let session = session.ok_or(crate::error::AppError::Unauthorized)?;
        Ok(Owner {
            session_id: session.id,
            user_id: session.user_id,
        })
    }
}

/// Is `origin` the app's own public origin?
pub(crate) fn origin_allowed(headers: &HeaderMap, public: &url::Url) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        // Browsers always send Origin on WebSocket upgrades; other clients
        // (the bench, tests, curl) may not.
        None => true,
        Some(origin) => url::Url::parse(origin).is_ok_and(|o| {
            o.origin().ascii_serialization() == public.origin().ascii_serialization()
        }),
    }
}

/// `GET /ws/chat` (upgrade).
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    owner: Owner,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.settings.public_url) {
        tracing::warn!(%peer, "WebSocket from a foreign origin refused");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let chat = state.chat.clone();
    // Small buffers: chat frames are small, and the default 128 KiB read
    // buffer is kept for the whole life of every connection.
    ws.read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| {
            let span = tracing::info_span!("ws", %peer, user_id = ?owner.user_id.as_ref().map(|u| u.to_string()));
            connection(socket, chat, owner).instrument(span)
        })
}

/// Per-connection state.
struct Connection {
    chat: ChatService,
    owner: Owner,
    out: mpsc::Sender<ServerFrame>,
    conversation: Option<ConversationId>,
    forwarder: Option<JoinHandle<()>>,
    window_start: Instant,
    frames_in_window: u32,
    messages_in_window: u32,
}

async fn connection(socket: WebSocket, chat: ChatService, owner: Owner) {
    let (mut sink, mut stream) = socket.split();
    let (out, mut outbox) = mpsc::channel::<ServerFrame>(256);

    // The writer: serialises frames and never sends a stored CJ message the
    // client already has.
    let writer = tokio::spawn(async move {
        let mut last_seq = 0i64;
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                frame = outbox.recv() => {
                    let Some(frame) = frame else { break };
                    match &frame {
                        ServerFrame::ConversationStarted { last_seq: seq, .. } => last_seq = *seq,
                        ServerFrame::CjMessage { message } => {
                            if message.seq <= last_seq {
                                continue;
                            }
                            last_seq = message.seq;
                        }
                        ServerFrame::MessageAck { seq, .. } => last_seq = last_seq.max(*seq),
                        _ => {}
                    }
                    let Ok(text) = serde_json::to_string(&frame) else { continue };
                    if sink.send(WsMessage::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                _ = ping.tick() => {
                    if sink.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    });

    let mut conn = Connection {
        chat,
        owner,
        out,
        conversation: None,
        forwarder: None,
        window_start: Instant::now(),
        frames_in_window: 0,
        messages_in_window: 0,
    };
    loop {
        let next = tokio::time::timeout(PING_EVERY * 3, stream.next()).await;
        let message = match next {
            Err(_) => {
                tracing::info!("closing an idle WebSocket");
                break;
            }
            Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(m))) => m,
        };
        match message {
            WsMessage::Text(text) => {
                if !conn.within_rate(false) {
                    conn.send(ServerFrame::error(
                        "rate_limited",
                        "too many frames; slow down",
                        true,
                    ))
                    .await;
                    continue;
                }
                match serde_json::from_str::<ClientFrame>(text.as_str()) {
                    Ok(frame) => conn.handle(frame).await,
                    Err(e) => {
                        conn.send(ServerFrame::error(
                            "bad_frame",
                            format!("could not read that frame: {e}"),
                            false,
                        ))
                        .await;
                    }
                }
            }
            WsMessage::Binary(_) => {
                conn.send(ServerFrame::error(
                    "bad_frame",
                    "binary frames are not supported",
                    false,
                ))
                .await;
            }
            WsMessage::Close(_) => break,
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
        }
    }
    if let Some(f) = conn.forwarder.take() {
        f.abort();
    }
    drop(conn);
    let _ = writer.await;
}

impl Connection {
    async fn send(&self, frame: ServerFrame) {
        let _ = self.out.send(frame).await;
    }

    fn within_rate(&mut self, is_message: bool) -> bool {
        if self.window_start.elapsed() >= Duration::from_secs(60) {
            self.window_start = Instant::now();
            self.frames_in_window = 0;
            self.messages_in_window = 0;
        }
        if is_message {
            self.messages_in_window += 1;
            self.messages_in_window <= MESSAGES_PER_MINUTE
        } else {
            self.frames_in_window += 1;
            self.frames_in_window <= FRAMES_PER_MINUTE
        }
    }

    async fn handle(&mut self, frame: ClientFrame) {
        let result = match frame {
            ClientFrame::StartConversation {
                conversation_id,
                workflow,
                last_seq,
            } => {
                self.start(conversation_id, workflow.as_deref(), last_seq)
                    .await
            }
            ClientFrame::Message { text, client_id } => {
                if self.within_rate(true) {
                    self.message(&text, &client_id).await
                } else {
                    Err(ChatError::Invalid(
                        "too many messages; wait a minute".into(),
                    ))
                }
            }
            ClientFrame::SwitchWorkflow { workflow } => self.switch(&workflow).await,
            ClientFrame::Stop => match self.conversation {
                Some(id) => {
                    self.chat.stop(id);
                    Ok(())
                }
                None => Err(ChatError::NoConversation),
            },
            ClientFrame::EndConversation => self.end().await,
            ClientFrame::Ping { nonce } => {
                self.send(ServerFrame::Pong { nonce }).await;
                Ok(())
            }
            ClientFrame::DebugRequest { turn } => self.debug(turn).await,
        };
        if let Err(e) = result {
            self.send(e.to_frame()).await;
        }
    }

    fn current(&self) -> Result<ConversationId, ChatError> {
        self.conversation.ok_or(ChatError::NoConversation)
    }

    async fn start(
        &mut self,
        id: Option<ConversationId>,
        workflow: Option<&str>,
        last_seq: i64,
    ) -> Result<(), ChatError> {
        let conversation = self.chat.open(&self.owner, id, workflow).await?;
        if let Some(f) = self.forwarder.take() {
            f.abort();
        }
        self.conversation = Some(conversation.id);
        // Subscribe before reading history, so nothing falls between the two.
        let live = self.chat.subscribe(conversation.id);
        let messages = self
            .chat
            .messages_after(conversation.id, last_seq.max(0))
            .await?;
        let store_connected = self
            .chat
            .store_connected(self.owner.user_id.as_ref())
            .await?;
        let newest = messages.last().map_or(last_seq.max(0), |m| m.seq);
        self.send(ServerFrame::ConversationStarted {
            protocol: PROTOCOL_VERSION,
            conversation_id: conversation.id,
            workflow: conversation.workflow.clone(),
            messages: messages.iter().map(WireMessage::from_message).collect(),
            last_seq: newest,
            store_connected,
            debug: self.chat.debug_enabled(),
        })
        .await;
        tracing::info!(conversation_id = %conversation.id, after = last_seq, sent = messages.len(), "conversation opened");
        self.follow(conversation.id, live);
        Ok(())
    }

    async fn message(&mut self, text: &str, client_id: &str) -> Result<(), ChatError> {
        let id = self.current()?;
        let (stored, _new) = self.chat.post_message(id, text, client_id).await?;
        self.send(ServerFrame::MessageAck {
            client_id: client_id.to_owned(),
            seq: stored.seq,
        })
        .await;
        self.follow(id, None);
        Ok(())
    }

    async fn switch(&mut self, workflow: &str) -> Result<(), ChatError> {
        let id = self.current()?;
        let (previous, next) = self.chat.switch_workflow(&self.owner, id, workflow).await?;
        self.send(ServerFrame::WorkflowUpdated {
            workflow: next,
            previous,
        })
        .await;
        self.follow(id, None);
        Ok(())
    }

    async fn end(&mut self) -> Result<(), ChatError> {
        let id = self.current()?;
        self.chat.end(&self.owner, id).await?;
        if let Some(f) = self.forwarder.take() {
            f.abort();
        }
        self.conversation = None;
        self.send(ServerFrame::ConversationEnded {
            conversation_id: id,
        })
        .await;
        Ok(())
    }

    async fn debug(&self, turn: Option<i64>) -> Result<(), ChatError> {
        let id = self.current()?;
        if !self.chat.debug_enabled() {
            self.send(ServerFrame::error(
                "debug_disabled",
                "debugging is turned off on this server",
                false,
            ))
            .await;
            return Ok(());
        }
        let traces = self.chat.traces(id, turn).await?;
        self.send(ServerFrame::DebugResponse { traces }).await;
        Ok(())
    }

    /// Forwards the conversation's turn frames to this connection, starting
    /// CJ's reply if one is owed. A turn that ends without a message (it was
    /// abandoned) is started again, a bounded number of times.
    fn follow(
        &mut self,
        id: ConversationId,
        live: Option<tokio::sync::broadcast::Receiver<ServerFrame>>,
    ) {
        if let Some(f) = self.forwarder.take() {
            f.abort();
        }
        let chat = self.chat.clone();
        let out = self.out.clone();
        self.forwarder = Some(tokio::spawn(
            async move {
                let mut live = live;
                for _ in 0..3 {
                    let mut frames = match live.take() {
                        Some(rx) => rx,
                        None => match chat.ensure_reply(id).await {
                            Ok(Some(handle)) => handle.frames,
                            Ok(None) => return,
                            Err(e) => {
                                let _ = out.send(e.to_frame()).await;
                                return;
                            }
                        },
                    };
                    let mut failed = false;
                    let mut lagged = false;
                    loop {
                        match frames.recv().await {
                            Ok(frame) => {
                                failed |= matches!(frame, ServerFrame::Error { .. });
                                if out.send(frame).await.is_err() {
                                    return;
                                }
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                                tracing::warn!(
                                    skipped = n,
                                    "a slow connection skipped turn frames"
                                );
                                lagged = true;
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                        }
                    }
                    if lagged {
                        // Skipped frames may include the final message: send
                        // the newest stored CJ messages (the writer drops
                        // any the client already has).
                        if let Ok(Some(c)) = chat.store().conversation(id).await
                            && let Ok(recent) =
                                chat.messages_after(id, (c.last_seq - 10).max(0)).await
                        {
                            for m in recent.iter().filter(|m| m.role == hirecj_domain::Role::Cj) {
                                let frame = ServerFrame::CjMessage {
                                    message: WireMessage::from_message(m),
                                };
                                if out.send(frame).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    if failed {
                        // The merchant sees the error and may ask again; a
                        // failing model is not retried in a loop.
                        return;
                    }
                    // Either the reply arrived (a workflow transition may owe
                    // another, e.g. a new workflow's first action) or the turn
                    // was abandoned: check again.
                }
            }
            .in_current_span(),
        ));
    }
}
