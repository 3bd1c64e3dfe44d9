//! `/ws/chat`: one WebSocket per open chat page. Frames are parsed into
//! [`ClientFrame`]s; a malformed one gets an `error` frame and the connection
//! stays usable. CJ's turns run in their own tasks; their frames are
//! forwarded here, and a `cj_message` the client already has (by `seq`) is
//! never sent twice.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::stream::SplitSink;
use futures::{SinkExt as _, StreamExt as _};
use hirecj_domain::{ConversationId, WebSession};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::bus::OpenFrame;
use super::protocol::{ClientFrame, PROTOCOL_VERSION, ServerFrame, WireMessage};
use super::service::{ChatError, ChatService, Owner};
use crate::app::AppState;
use crate::error::AppError;
use crate::limits::{Charge, ClientAddress, Requester, SocketSlot, TurnBudget};
use crate::net::ConnectionSlot;
use crate::session::{first_use, request_session};

/// Largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Frames of any kind per minute per connection (turns have their own
/// budgets, per session, merchant and address: [`TurnBudget`]).
const FRAMES_PER_MINUTE: u32 = 120;
/// The server pings this often; a connection silent for three intervals is closed.
const PING_EVERY: Duration = Duration::from_secs(30);
/// The close code of a socket whose session ended (signed out or expired),
/// after an `error` frame with code `session_ended`.
pub const SESSION_ENDED_CLOSE: u16 = 4401;

/// The close code of every socket when the server shuts down (RFC 6455's
/// "going away"): the page reconnects, to another replica if there is one.
pub const GOING_AWAY_CLOSE: u16 = 1001;

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

/// `GET /ws/chat` (upgrade): the origin must be the app's, the session
/// live, and the session and the client's address under their socket caps.
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    address: ClientAddress,
    connection_slot: Option<Extension<ConnectionSlot>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.settings.public_url) {
        tracing::warn!(%peer, "WebSocket from a foreign origin refused");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let session = match request_session(&state, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return AppError::Unauthorized.into_response(),
        Err(e) => return AppError::from(e).into_response(),
    };
    let slot = match state
        .sockets
        .open(&state.settings.limits, &session.id, address)
    {
        Ok(slot) => slot,
        Err(refusal) => {
            tracing::warn!(%peer, %refusal, "WebSocket refused at its cap");
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "30")],
                format!("{refusal}; close one first"),
            )
                .into_response();
        }
    };
    // Opening the chat is a visitor session's first use: it now lives long.
    let session = match first_use(&state.store, session).await {
        Ok(session) => session,
        Err(e) => return AppError::from(e).into_response(),
    };
    let live = Live {
        draining: state.chat.draining(),
        chat: state.chat.clone(),
        budget: state.budget.clone(),
        ended: state.sessions.subscribe(),
        address,
        _slots: (slot, connection_slot.map(|Extension(s)| s)),
    };
    // Small buffers: chat frames are small, and the default 128 KiB read
    // buffer is kept for the whole life of every connection.
    ws.read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| {
            let span = tracing::info_span!("ws", %peer, user_id = ?session.user_id.as_ref().map(|u| u.to_string()));
            let chat = live.chat.clone();
            chat.track_socket(connection(socket, live, session).instrument(span))
        })
}

/// What a connection needs from the app, taken at the upgrade.
struct Live {
    /// Cancelled when the server starts shutting down.
    draining: CancellationToken,
    chat: ChatService,
    budget: TurnBudget,
    ended: broadcast::Receiver<std::sync::Arc<str>>,
    address: ClientAddress,
    /// Held while the socket is open: its place under the per-session and
    /// per-address caps, and under the connection cap.
    _slots: (SocketSlot, Option<ConnectionSlot>),
}

/// Per-connection state.
struct Connection {
    chat: ChatService,
    budget: TurnBudget,
    owner: Owner,
    address: ClientAddress,
    out: mpsc::Sender<ServerFrame>,
    conversation: Option<ConversationId>,
    /// The open conversation's live frames: every frame of its turns (this
    /// replica's or another's) and the messages CJ posts outside a turn.
    /// The one path by which turn frames reach this socket, taken before
    /// the conversation's history is read, so nothing falls between.
    open: Option<(ConversationId, broadcast::Receiver<OpenFrame>)>,
    /// Starts the reply owed, waits for the turn to end and makes sure its
    /// final message is delivered (the writer drops a second copy).
    forwarder: Option<JoinHandle<()>>,
    window_start: Instant,
    frames_in_window: u32,
}

/// Why the reader stopped.
enum Ending {
    /// The client went away, closed, or fell silent.
    Client,
    /// The session was signed out or expired: the page is told so.
    SessionEnded(&'static str),
    /// The server is shutting down: the reply being written is sent, then
    /// the socket closes with 1001 (going away) and the page reconnects.
    Restarting,
}

/// Sends the newest stored CJ messages of `id` (the writer drops any the
/// client already has): for a reply whose live frames this socket missed.
/// An error when the socket is gone.
async fn catch_up(
    chat: &ChatService,
    id: ConversationId,
    out: &mpsc::Sender<ServerFrame>,
) -> Result<(), ()> {
    let Ok(Some(c)) = chat.store().conversation(id).await else {
        return Ok(());
    };
    let Ok(recent) = chat.messages_after(id, (c.last_seq - 10).max(0)).await else {
        return Ok(());
    };
    for m in recent.iter().filter(|m| m.role == hirecj_domain::Role::Cj) {
        let frame = ServerFrame::CjMessage {
            message: WireMessage::from_message(m),
        };
        out.send(frame).await.map_err(|_| ())?;
    }
    Ok(())
}

/// Serialises frames to the socket and never sends a stored CJ message the
/// client already has, nor a piece of one. Ends when every sender is gone, or on `close`
/// (after what is already queued).
async fn write_frames(
    mut sink: SplitSink<WebSocket, WsMessage>,
    mut outbox: mpsc::Receiver<ServerFrame>,
    mut close: oneshot::Receiver<CloseFrame>,
) {
    let mut last_seq = 0i64;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut close_pending = true;
    loop {
        tokio::select! {
            biased;
            closing = &mut close, if close_pending => {
                close_pending = false;
                if let Ok(close_frame) = closing {
                    while let Ok(frame) = outbox.try_recv() {
                        if !deliver(&mut sink, &mut last_seq, frame).await {
                            return;
                        }
                    }
                    // Sending the close frame flushes what is fed.
                    let _ = sink.send(WsMessage::Close(Some(close_frame))).await;
                    return;
                }
            }
            frame = outbox.recv() => {
                let Some(frame) = frame else { break };
                if !deliver(&mut sink, &mut last_seq, frame).await {
                    return;
                }
                // Frames already queued go in the same write: one flush
                // (one system call) for a burst of pieces, none held back.
                while let Ok(frame) = outbox.try_recv() {
                    if !deliver(&mut sink, &mut last_seq, frame).await {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            _ = ping.tick() => {
                if sink.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    }
    // Every sender is gone; a close code sent just before still counts.
    match close.try_recv() {
        Ok(close_frame) => {
            let _ = sink.send(WsMessage::Close(Some(close_frame))).await;
        }
        Err(_) => {
            let _ = sink.close().await;
        }
    }
}

/// Queues one frame for the socket unless the client already has it
/// (the caller flushes); false when the socket is gone.
async fn deliver(
    sink: &mut SplitSink<WebSocket, WsMessage>,
    last_seq: &mut i64,
    frame: ServerFrame,
) -> bool {
    if !admit(last_seq, &frame) {
        return true;
    }
    let Ok(text) = serde_json::to_string(&frame) else {
        return true;
    };
    sink.feed(WsMessage::Text(text.into())).await.is_ok()
}

/// Whether the client, whose newest message is `last_seq`, needs `frame`
/// (and the newest message it will have once sent).
fn admit(last_seq: &mut i64, frame: &ServerFrame) -> bool {
    match frame {
        ServerFrame::ConversationStarted { last_seq: seq, .. } => *last_seq = *seq,
        ServerFrame::CjMessage { message } => {
            if message.seq <= *last_seq {
                return false;
            }
            *last_seq = message.seq;
        }
        ServerFrame::MessageAck { seq, .. } => *last_seq = (*last_seq).max(*seq),
        // Another tab's message: not to the tab that sent it (its ack came
        // first), nor twice.
        ServerFrame::MerchantMessage { message } => {
            if message.seq <= *last_seq {
                return false;
            }
            *last_seq = message.seq;
        }
        // A piece of a reply the client already has whole, or its status (a
        // turn's final message and its live frames reach a socket by two
        // paths: a late status would show "Thinking…" after the reply).
        ServerFrame::CjDelta { turn, .. } | ServerFrame::CjThinking { turn, .. }
            if *turn <= *last_seq =>
        {
            return false;
        }
        _ => {}
    }
    true
}

async fn connection(socket: WebSocket, live: Live, session: WebSession) {
    let (sink, mut stream) = socket.split();
    let (out, outbox) = mpsc::channel::<ServerFrame>(256);
    let (close_tx, close_rx) = oneshot::channel();
    let writer = tokio::spawn(write_frames(sink, outbox, close_rx));

    let Live {
        draining,
        chat,
        budget,
        mut ended,
        address,
        _slots,
    } = live;
    let mut conn = Connection {
        chat,
        budget,
        owner: Owner {
            session_id: session.id.clone(),
            user_id: session.user_id.clone(),
        },
        address,
        out,
        conversation: None,
        open: None,
        forwarder: None,
        window_start: Instant::now(),
        frames_in_window: 0,
    };
    let idle = tokio::time::sleep(PING_EVERY * 3);
    tokio::pin!(idle);
    let expiry = tokio::time::sleep(
        (session.expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default(),
    );
    tokio::pin!(expiry);
    let mut watching_sessions = true;
    let ending = loop {
        if conn.open.as_ref().map(|(id, _)| *id) != conn.conversation {
            conn.open = conn
                .conversation
                .map(|id| (id, conn.chat.announcements(id)));
        }
        let message = tokio::select! {
            note = async {
                match conn.open.as_mut() {
                    Some((_, rx)) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                match note {
                    Ok(OpenFrame::Announcement(frame) | OpenFrame::Turn(frame)) => {
                        conn.send(frame).await;
                    }
                    // A reply's pieces were skipped; its final message
                    // still comes through the forwarder.
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "a slow connection skipped turn frames");
                    }
                    Err(broadcast::error::RecvError::Closed) => conn.open = None,
                }
                continue;
            }
            next = stream.next() => match next {
                None | Some(Err(_)) => break Ending::Client,
                Some(Ok(m)) => m,
            },
            () = &mut idle => {
                tracing::info!("closing an idle WebSocket");
                break Ending::Client;
            }
            () = &mut expiry => break Ending::SessionEnded("Your session has expired."),
            () = draining.cancelled() => break Ending::Restarting,
            id = ended.recv(), if watching_sessions => {
                match id {
                    Ok(id) if *id == *session.id => break Ending::SessionEnded("You were signed out."),
                    Ok(_) => continue,
                    // Missed some: ask the store whether this one is live.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        match conn.chat.store().session(&session.id).await {
                            Ok(None) => break Ending::SessionEnded("You were signed out."),
                            Ok(Some(_)) | Err(_) => continue,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        watching_sessions = false;
                        continue;
                    }
                }
            }
        };
        idle.as_mut()
            .reset(tokio::time::Instant::now() + PING_EVERY * 3);
        match message {
            WsMessage::Text(text) => {
                if let Some(retry_after) = conn.over_frame_rate() {
                    conn.send(ServerFrame::rate_limited(
                        "too many frames; slow down",
                        retry_after,
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
            WsMessage::Close(_) => break Ending::Client,
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
        }
    };
    if let Some(f) = conn.forwarder.take() {
        if matches!(ending, Ending::Restarting) {
            // The reply this page follows is finished and sent first.
            let _ = f.await;
        } else {
            f.abort();
        }
    }
    if matches!(ending, Ending::Restarting) {
        tracing::info!("closing a WebSocket: the server is shutting down");
        let _ = close_tx.send(CloseFrame {
            code: GOING_AWAY_CLOSE,
            reason: "server restarting".into(),
        });
    } else if let Ending::SessionEnded(why) = ending {
        tracing::info!(reason = why, "closing a WebSocket whose session ended");
        conn.send(ServerFrame::error("session_ended", why, false))
            .await;
        let _ = close_tx.send(CloseFrame {
            code: SESSION_ENDED_CLOSE,
            reason: "session ended".into(),
        });
    }
    drop(conn);
    let _ = writer.await;
}

impl Connection {
    async fn send(&self, frame: ServerFrame) {
        let _ = self.out.send(frame).await;
    }

    /// Counts a frame; `Some(wait)` when this connection sent too many.
    fn over_frame_rate(&mut self) -> Option<Duration> {
        const WINDOW: Duration = Duration::from_secs(60);
        if self.window_start.elapsed() >= WINDOW {
            self.window_start = Instant::now();
            self.frames_in_window = 0;
        }
        self.frames_in_window += 1;
        (self.frames_in_window > FRAMES_PER_MINUTE)
            .then(|| WINDOW.saturating_sub(self.window_start.elapsed()))
    }

    /// What a frame costs in CJ turns: every frame that can start one is
    /// charged here, before it is handled.
    fn charge_of(frame: &ClientFrame) -> Option<Charge> {
        match frame {
            ClientFrame::Message { .. } | ClientFrame::SwitchWorkflow { .. } => Some(Charge::Turn),
            ClientFrame::StartConversation {
                conversation_id: None,
                ..
            } => Some(Charge::Conversation),
            ClientFrame::StartConversation { .. }
            | ClientFrame::Stop
            | ClientFrame::EndConversation
            | ClientFrame::Ping { .. }
            | ClientFrame::DebugRequest { .. } => None,
        }
    }

    async fn handle(&mut self, frame: ClientFrame) {
        if let Some(charge) = Self::charge_of(&frame) {
            let who = Requester {
                session_id: &self.owner.session_id,
                user_id: self.owner.user_id.as_ref(),
                address: self.address,
            };
            if let Err(spent) = self.budget.charge(&who, charge).await {
                self.send(ChatError::from(spent).to_frame()).await;
                return;
            }
        }
        let result = match frame {
            ClientFrame::StartConversation {
                conversation_id,
                workflow,
                last_seq,
            } => {
                self.start(conversation_id, workflow.as_deref(), last_seq)
                    .await
            }
            ClientFrame::Message { text, client_id } => self.message(&text, &client_id).await,
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

    /// Whether this socket follows a turn through its own forwarder.
    fn following(&self) -> bool {
        self.forwarder.as_ref().is_some_and(|f| !f.is_finished())
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
        self.open = Some((conversation.id, self.chat.announcements(conversation.id)));
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
        let posted = self.chat.post_message(id, text, client_id).await?;
        self.send(ServerFrame::MessageAck {
            client_id: client_id.to_owned(),
            seq: posted.message.seq,
        })
        .await;
        // The reply's frames queued since it started follow the ack. A
        // resend while this connection follows the turn keeps following it
        // (re-subscribing could drop a frame in between).
        if let Some(reply) = posted.reply {
            self.follow(id, Some(reply.frames));
        } else if posted.new || !self.following() {
            self.follow(id, None);
        }
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
        self.open = None;
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
                            Ok(None) => {
                                // Nothing owed: a reply may have finished
                                // before this forwarder could follow it,
                                // carried by the one it replaced (a fast
                                // turn started by the previous forwarder's
                                // last check). It is sent from storage; the
                                // writer drops what the client has.
                                let _ = catch_up(&chat, id, &out).await;
                                return;
                            }
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
                            // The live frames reach the socket through its
                            // open conversation's channel; the final message
                            // goes this way too, in case that channel lagged
                            // (the writer sends it once).
                            Ok(frame @ ServerFrame::CjMessage { .. }) => {
                                if out.send(frame).await.is_err() {
                                    return;
                                }
                            }
                            Ok(frame) => failed |= matches!(frame, ServerFrame::Error { .. }),
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
                    // Skipped frames may include the final message.
                    if lagged && catch_up(&chat, id, &out).await.is_err() {
                        return;
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

#[cfg(test)]
mod tests {
    use super::*;
    use hirecj_domain::{MessageStatus, Role};

    fn cj(seq: i64) -> ServerFrame {
        ServerFrame::CjMessage {
            message: WireMessage {
                seq,
                role: Role::Cj,
                content: "Hi".into(),
                html: "<p>Hi</p>".into(),
                ui_elements: serde_json::json!([]),
                status: MessageStatus::Complete,
                client_id: None,
                created_at: chrono::Utc::now(),
            },
        }
    }

    fn thinking(turn: i64) -> ServerFrame {
        ServerFrame::CjThinking {
            turn,
            status: "Looking at last week's orders…".into(),
            tool: None,
        }
    }

    fn delta(turn: i64) -> ServerFrame {
        ServerFrame::CjDelta {
            turn,
            text: "You had".into(),
            restart: false,
        }
    }

    /// A turn's final message and its live frames reach a socket by two
    /// paths: whatever of a reply arrives after the reply itself is
    /// dropped, so the page never shows "Thinking…" under a finished reply.
    #[test]
    fn nothing_of_a_reply_follows_the_reply() {
        let mut last = 3;
        assert!(admit(&mut last, &thinking(4)));
        assert!(admit(&mut last, &delta(4)));
        assert!(admit(&mut last, &cj(4)));
        assert_eq!(last, 4);
        assert!(!admit(&mut last, &thinking(4)), "a late status");
        assert!(!admit(&mut last, &delta(4)), "a late piece");
        assert!(!admit(&mut last, &cj(4)), "the reply again");
        // The next turn's frames pass.
        assert!(admit(
            &mut last,
            &ServerFrame::MessageAck {
                client_id: "c-2".into(),
                seq: 5
            }
        ));
        assert!(admit(&mut last, &thinking(6)));
        assert!(admit(&mut last, &delta(6)));
    }
}
