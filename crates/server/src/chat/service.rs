//! The conversation service: opening conversations, storing merchant
//! messages, running CJ's turns one at a time per conversation, stopping
//! them, switching workflows, and preparing the post-OAuth turn.
//!
//! Durability: a merchant message is stored before it is acknowledged and a
//! CJ message before its `cj_message` frame. A turn runs in its own task, so a
//! dropped connection does not lose the reply; whoever opens the
//! conversation next gets it from the store (or live, on this replica).
//! A conversation whose newest message is not CJ's (a merchant message or a
//! system event whose turn was interrupted, e.g. by a crash) gets its reply
//! when it is next opened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hirecj_agent::context::fold_point;
use hirecj_agent::turn::HistoryEntry;
use hirecj_agent::workflow::{Catalog, ConversationState, Standing, WorkflowRefusal};
use hirecj_domain::{
    Conversation, ConversationId, Message, MessageStatus, NewMessage, Role, User, UserId,
};
use hirecj_store::{ReplyWrites, Store, StoreError, TurnLease};
use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::bus::FrameBus;
use super::engine::{Engine, TurnContext, TurnOutput};
use super::protocol::{ServerFrame, WireMessage};

/// Who is talking: the browser session and, once Shopify is connected, the
/// merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub session_id: String,
    pub user_id: Option<UserId>,
}

/// What became of a conversation named by an install (the OAuth callback
/// or the internal initiate API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// It is the merchant's (already, or linked now).
    Owned,
    /// No such conversation (yet).
    Missing,
    /// Someone else's: another merchant's, or a visitor's whose session
    /// did not start the install.
    Refused,
}

impl From<WorkflowRefusal> for ChatError {
    fn from(refusal: WorkflowRefusal) -> Self {
        match refusal {
            WorkflowRefusal::Unknown(name) => Self::UnknownWorkflow(name),
            refused @ WorkflowRefusal::RequirementNotMet { .. } => {
                Self::RequirementNotMet(refused.to_string())
            }
        }
    }
}

/// Why a chat operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("conversation not found")]
    NotFound,
    #[error("this conversation belongs to someone else")]
    Forbidden,
    #[error("{0}")]
    Invalid(String),
    #[error("CJ is still answering; wait for the reply or press Stop")]
    TurnInProgress,
    #[error("unknown workflow {0:?}")]
    UnknownWorkflow(String),
    #[error("{0}")]
    RequirementNotMet(String),
    #[error("no conversation is open; send start_conversation first")]
    NoConversation,
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("CJ could not answer: {0}")]
    Turn(String),
    /// A budget of turns or frames is spent (see [`crate::limits`]).
    #[error(transparent)]
    RateLimited(#[from] crate::limits::BudgetExceeded),
    /// This server is shutting down: it finishes the replies it is writing
    /// and starts no new one; the page reconnects (to another replica).
    #[error("CJ's server is restarting; reconnecting in a moment")]
    Restarting,
}

impl ChatError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Invalid(_) => "invalid_message",
            Self::TurnInProgress => "turn_in_progress",
            Self::UnknownWorkflow(_) => "unknown_workflow",
            Self::RequirementNotMet(_) => "requirement_not_met",
            Self::NoConversation => "no_conversation",
            Self::Store(e) if e.is_unavailable() => "store_unavailable",
            Self::Store(_) => "internal",
            Self::Turn(_) => "turn_failed",
            Self::RateLimited(_) => "rate_limited",
            Self::Restarting => "server_restarting",
        }
    }

    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::TurnInProgress
                | Self::Store(_)
                | Self::Turn(_)
                | Self::RateLimited(_)
                | Self::Restarting
        )
    }

    pub fn to_frame(&self) -> ServerFrame {
        if let Self::RateLimited(e) = self {
            return ServerFrame::rate_limited(e.to_string(), e.retry_after);
        }
        let message = match self {
            Self::Store(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "CJ's database is unavailable");
                "CJ can't reach its storage just now; your message will go again in a moment"
                    .to_owned()
            }
            Self::Store(e) => {
                tracing::error!(error = %e, "chat storage error");
                "something went wrong on our side; please try again".to_owned()
            }
            Self::Turn(e) => {
                tracing::warn!(error = %e, "turn failed");
                "CJ could not answer just now; please try again in a moment".to_owned()
            }
            other => other.to_string(),
        };
        ServerFrame::error(self.code(), message, self.retryable())
    }
}

/// Limits for merchant input.
#[derive(Debug, Clone)]
pub struct ChatLimits {
    pub max_message_chars: usize,
    /// How long the OAuth callback waits for the prepared post-OAuth turn.
    pub post_oauth_budget: Duration,
    /// How long this replica's claim on a conversation's turn lasts
    /// without renewal (renewed every third of it while the turn runs).
    pub turn_lease: Duration,
    /// How long a reply written while the database is out is kept, and
    /// saved as soon as it is back.
    pub kept_reply: Duration,
}

impl Default for ChatLimits {
    fn default() -> Self {
        Self {
            max_message_chars: 8_000,
            post_oauth_budget: Duration::from_secs(10),
            turn_lease: Duration::from_secs(30),
            kept_reply: Duration::from_secs(300),
        }
    }
}

struct RunningTurn {
    /// The merchant's Stop: the reply so far is kept, marked stopped.
    stop: CancellationToken,
    /// Abandons the turn: nothing is stored (the reply is owed again).
    abort: CancellationToken,
    frames: broadcast::Sender<ServerFrame>,
    /// Tells this turn from a later one of the same conversation.
    generation: u64,
    /// Whether other sockets may follow it: not while the merchant message
    /// it answers is still being stored (it may not be, and then the turn
    /// is dropped unseen).
    visible: bool,
}

struct Inner {
    store: Store,
    catalog: Arc<Catalog>,
    engine: Engine,
    limits: ChatLimits,
    debug: bool,
    running: Mutex<HashMap<ConversationId, RunningTurn>>,
    /// This replica, as the owner of the turns it claims in the database
    /// (one turn at a time per conversation across replicas).
    owner: String,
    /// Turn frames to and from the other replicas.
    bus: FrameBus,
    /// Conversations whose turn a merchant message just claimed (in the
    /// statement that stored it), and when: the turn that answers it needs
    /// no second claim while that one is fresh.
    claimed: Mutex<HashMap<ConversationId, std::time::Instant>>,
    /// Held while a merchant message is checked and stored, and while a turn
    /// is decided on and registered: a message is either refused because a
    /// turn runs, or stored before the turn reads the history. (Striped by
    /// conversation id; a few conversations share one.)
    gates: Vec<tokio::sync::Mutex<()>>,
    generations: std::sync::atomic::AtomicU64,
    /// Every turn's task, so a shutdown can wait for the replies being
    /// written.
    turns: TaskTracker,
    /// Every chat WebSocket, so a shutdown can wait for them to close.
    sockets: TaskTracker,
    /// Cancelled when the server starts shutting down.
    draining: CancellationToken,
}

/// The conversation service. Cheap to clone.
#[derive(Clone)]
pub struct ChatService {
    inner: Arc<Inner>,
}

/// What [`ChatService::post_message`] did with a merchant message.
pub struct Posted {
    /// The stored message (for a resend, the one stored the first time).
    pub message: Message,
    /// Whether it was stored now (false for a resend).
    pub new: bool,
    /// CJ's reply to it, started while the message was being stored;
    /// `None` when the reply starts the usual way ([`ChatService::ensure_reply`]).
    pub reply: Option<TurnHandle>,
}

/// A turn that was started (or was already running) for a conversation.
pub struct TurnHandle {
    /// Live frames of the turn (thinking, deltas, the final message).
    pub frames: broadcast::Receiver<ServerFrame>,
    /// Resolves when the turn is over (stored or failed).
    pub done: Option<oneshot::Receiver<()>>,
}

/// How many locks the conversations' gates are striped over.
const GATES: u128 = 64;
/// How long ending a conversation waits for its stopped reply to be stored.
const END_WAIT: Duration = Duration::from_secs(5);

/// The longest wait between two tries at storing a kept reply.
const KEPT_REPLY_RETRY_MAX: Duration = Duration::from_secs(5);

impl ChatService {
    pub fn new(
        store: Store,
        catalog: Arc<Catalog>,
        engine: Engine,
        limits: ChatLimits,
        debug: bool,
    ) -> Self {
        let owner = format!("replica-{}", uuid::Uuid::new_v4().simple());
        let bus = FrameBus::new(&store, &owner);
        Self {
            inner: Arc::new(Inner {
                store,
                catalog,
                engine,
                limits,
                debug,
                running: Mutex::new(HashMap::new()),
                owner,
                bus,
                claimed: Mutex::new(HashMap::new()),
                gates: (0..GATES).map(|_| tokio::sync::Mutex::new(())).collect(),
                generations: std::sync::atomic::AtomicU64::new(0),
                turns: TaskTracker::new(),
                sockets: TaskTracker::new(),
                draining: CancellationToken::new(),
            }),
        }
    }

    /// Starts the shutdown's drain: the replies being written finish, no
    /// new turn starts ([`ChatError::Restarting`]), and each WebSocket
    /// closes with 1001 once the reply it follows is out.
    pub fn drain(&self) {
        self.inner.draining.cancel();
        self.inner.turns.close();
        self.inner.sockets.close();
    }

    /// Cancelled when the drain starts.
    pub fn draining(&self) -> CancellationToken {
        self.inner.draining.clone()
    }

    /// Resolves once, after [`Self::drain`], every turn has ended and every
    /// WebSocket has closed.
    pub async fn drained(&self) {
        self.inner.turns.wait().await;
        self.inner.sockets.wait().await;
    }

    /// `socket` (a chat WebSocket's task), counted until it ends.
    pub fn track_socket<F: std::future::Future>(
        &self,
        socket: F,
    ) -> tokio_util::task::task_tracker::TrackedFuture<F> {
        self.inner.sockets.track_future(socket)
    }

    /// The gate of `conversation` (see [`Inner::gates`]).
    fn gate(&self, conversation: ConversationId) -> &tokio::sync::Mutex<()> {
        let i = usize::try_from(conversation.0.as_u128() % GATES).unwrap_or(0);
        &self.inner.gates[i % self.inner.gates.len()]
    }

    pub fn debug_enabled(&self) -> bool {
        self.inner.debug
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Is the merchant's store connected (an active Shopify integration)?
    pub async fn store_connected(&self, user: Option<&UserId>) -> Result<bool, ChatError> {
        let Some(user) = user else { return Ok(false) };
        Ok(self
            .inner
            .store
            .integration_for_user(user, "shopify")
            .await?
            .is_some_and(|i| i.status == hirecj_domain::IntegrationStatus::Active))
    }

    fn check_owner(conversation: &Conversation, owner: &Owner) -> Result<(), ChatError> {
        let allowed = match (&conversation.user_id, &owner.user_id) {
            (Some(conv_user), Some(user)) => conv_user == user,
            (Some(_), None) => false,
            (None, _) => conversation.session_id.as_deref() == Some(owner.session_id.as_str()),
        };
        if allowed {
            Ok(())
        } else {
            Err(ChatError::Forbidden)
        }
    }

    /// Loads a conversation the owner may use.
    pub async fn conversation_for(
        &self,
        owner: &Owner,
        id: ConversationId,
    ) -> Result<Conversation, ChatError> {
        let conversation = self
            .inner
            .store
            .conversation(id)
            .await?
            .ok_or(ChatError::NotFound)?;
        Self::check_owner(&conversation, owner)?;
        Ok(conversation)
    }

    /// The workflow a new conversation (or a switch) lands in: the
    /// workflow state machine's answer (`agent::workflow`).
    async fn choose_workflow(
        &self,
        owner: &Owner,
        requested: Option<&str>,
    ) -> Result<String, ChatError> {
        let standing = Standing {
            authenticated: owner.user_id.is_some(),
            store_connected: self.store_connected(owner.user_id.as_ref()).await?,
        };
        let opening = self.inner.catalog.open_workflow(requested, standing)?;
        Ok(opening.workflow.name.clone())
    }

    /// Opens an existing conversation (checking ownership) or starts a new one.
    pub async fn open(
        &self,
        owner: &Owner,
        id: Option<ConversationId>,
        workflow: Option<&str>,
    ) -> Result<Conversation, ChatError> {
        if let Some(id) = id {
            return self.conversation_for(owner, id).await;
        }
        let workflow = self.choose_workflow(owner, workflow).await?;
        let id = ConversationId::generate();
        let session = if owner.user_id.is_none() {
            Some(owner.session_id.as_str())
        } else {
            None
        };
        let conversation = self
            .inner
            .store
            .create_conversation(id, owner.user_id.as_ref(), session, &workflow)
            .await?;
        tracing::info!(conversation_id = %id, workflow, "conversation started");
        Ok(conversation)
    }

    pub async fn messages_after(
        &self,
        id: ConversationId,
        after_seq: i64,
    ) -> Result<Vec<Message>, ChatError> {
        Ok(self.inner.store.messages(id, after_seq).await?)
    }

    /// Validates and stores a merchant message, starting CJ's reply to it
    /// while it is stored (see [`Posted`]; a resend with the same
    /// `client_id` is not stored again).
    pub async fn post_message(
        &self,
        conversation: ConversationId,
        text: &str,
        client_id: &str,
    ) -> Result<Posted, ChatError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ChatError::Invalid("the message is empty".into()));
        }
        let chars = text.chars().count();
        if chars > self.inner.limits.max_message_chars {
            return Err(ChatError::Invalid(format!(
                "the message is {chars} characters long; the limit is {}",
                self.inner.limits.max_message_chars
            )));
        }
        if client_id.is_empty() || client_id.len() > 100 {
            return Err(ChatError::Invalid(
                "client_id must be 1 to 100 characters".into(),
            ));
        }
        if self.inner.draining.is_cancelled() {
            return Err(ChatError::Restarting);
        }
        let _gate = self.gate(conversation).lock().await;
        if self.is_running(conversation) {
            // A resend of a message already stored (its turn may be the
            // one running) gets its original ack, as the protocol promises;
            // only a new message waits for the turn to end.
            let store = &self.inner.store;
            return match store.message_by_client_id(conversation, client_id).await? {
                Some(stored) => Ok(Posted {
                    message: stored,
                    new: false,
                    reply: None,
                }),
                None => Err(ChatError::TurnInProgress),
            };
        }
        let mut message = NewMessage::new(Role::Merchant, text);
        message.client_id = Some(client_id.to_owned());
        // Stored only if no other replica runs a turn of the conversation;
        // the message claims the turn that answers it. CJ's reply starts
        // while it is stored: its history is read and the model called
        // meanwhile, and it counts only once the message is stored as
        // expected (the ack, sent after this returns, still waits for that).
        let store = &self.inner.store;
        let claim = TurnLease::Claim {
            owner: &self.inner.owner,
            until: self.lease_until(),
        };
        let (committed, stored_as) = oneshot::channel();
        let (stored, early) = tokio::join!(
            store.append_message_in_turn(conversation, &message, claim),
            self.start_early(conversation, &message, stored_as),
        );
        match stored {
            Ok((stored, new)) => {
                if new {
                    // The merchant's other tabs, on any replica, show it
                    // (the sender's socket has it from its ack).
                    self.inner.bus.announce(
                        conversation,
                        ServerFrame::MerchantMessage {
                            message: WireMessage::from_message(&stored),
                        },
                    );
                }
                let reply = match early {
                    Some(Early::Started(early)) if new && early.seq == stored.seq => {
                        self.confirm_early(conversation, early, committed, &stored)
                    }
                    Some(Early::Started(early)) => {
                        self.drop_early(conversation, &early);
                        None
                    }
                    Some(Early::Read(ctx)) if new && ctx.turn == stored.seq + 1 => {
                        Some(self.answer_read(*ctx, &stored))
                    }
                    Some(Early::Read(_)) | None => None,
                };
                if new && reply.is_none() {
                    self.note_claim(conversation);
                }
                Ok(Posted {
                    message: stored,
                    new,
                    reply,
                })
            }
            Err(e) => {
                if let Some(Early::Started(early)) = early {
                    self.drop_early(conversation, &early);
                }
                match e {
                    StoreError::TurnClaimed => {
                        match store.message_by_client_id(conversation, client_id).await? {
                            Some(stored) => Ok(Posted {
                                message: stored,
                                new: false,
                                reply: None,
                            }),
                            None => Err(ChatError::TurnInProgress),
                        }
                    }
                    e => Err(e.into()),
                }
            }
        }
    }

    /// Starts CJ's reply to `message` while it is being stored (the
    /// caller holds the conversation's gate and no turn runs): reads what
    /// the turn needs as if the message were stored next, and starts the
    /// turn, unseen by other sockets until [`Self::confirm_early`]. When
    /// the read finds the message stored already (the commit won the
    /// race), the turn is not started; what was read is kept for
    /// [`Self::answer_read`], which starts it once the message is known to
    /// be this post's. `None` when the reply is not an answer to this
    /// message (the workflow's first action is still due) or cannot be
    /// prepared now; it then starts the usual way once the message is
    /// stored.
    async fn start_early(
        &self,
        id: ConversationId,
        message: &NewMessage,
        committed: oneshot::Receiver<Message>,
    ) -> Option<Early> {
        let store = &self.inner.store;
        let (mut conversation, mut history) = store.conversation_and_history(id).await.ok()??;
        if self.initial_action_pending(&conversation) {
            return None;
        }
        // The message itself, if its commit came before this read.
        let stored = history
            .iter()
            .position(|m| m.client_id.is_some() && m.client_id == message.client_id);
        let before = &history[..stored.unwrap_or(history.len())];
        // A resend of an older stored message is not answered again; and
        // while the newest message before this one is not CJ's, its reply is
        // owed or being written (on another replica, whose claim will refuse
        // this message): no model call is paid for a message that may not be
        // stored.
        if stored.is_some_and(|i| i + 1 != history.len())
            || before.last().is_some_and(|m| m.role != Role::Cj)
        {
            return None;
        }
        let user = match &conversation.user_id {
            Some(u) => store.user(u).await.ok()?,
            None => None,
        };
        if let Some(i) = stored {
            let seq = history[i].seq;
            return Some(Early::Read(Box::new(TurnContext {
                conversation,
                history,
                user,
                turn: seq + 1,
            })));
        }
        let seq = conversation.last_seq + 1;
        history.retain(|m| m.seq < seq);
        history.push(Message {
            conversation_id: id,
            seq,
            role: message.role,
            content: message.content.clone(),
            ui_elements: message.ui_elements.clone(),
            status: message.status,
            client_id: message.client_id.clone(),
            created_at: chrono::Utc::now(),
        });
        conversation.last_seq = seq;
        let ctx = TurnContext {
            conversation: conversation.clone(),
            history,
            user,
            turn: seq + 1,
        };
        let work = TurnWork::Early {
            ctx: Box::new(ctx),
            committed,
        };
        let started = self.start_turn(conversation, work, false);
        Some(Early::Started(EarlyTurn { seq, started }))
    }

    /// Starts CJ's reply to `stored`, this post's message, from what
    /// [`Self::start_early`] read after its commit (the caller holds the
    /// conversation's gate; the message's claim is this replica's): no
    /// second read.
    fn answer_read(&self, ctx: TurnContext, stored: &Message) -> TurnHandle {
        let id = ctx.conversation.id;
        let conversation = ctx.conversation.clone();
        let (tell, committed) = oneshot::channel();
        let _ = tell.send(stored.clone());
        let work = TurnWork::Early {
            ctx: Box::new(ctx),
            committed,
        };
        let started = self.start_turn(conversation, work, true);
        self.relay(id, started.relay);
        started.handle
    }

    /// The message an early turn answers is stored as it expected: the turn
    /// becomes the conversation's running turn, followed by every socket
    /// with it open. `None` if the turn is already over (it failed before
    /// it could be told).
    fn confirm_early(
        &self,
        id: ConversationId,
        early: EarlyTurn,
        committed: oneshot::Sender<Message>,
        stored: &Message,
    ) -> Option<TurnHandle> {
        let StartedTurn {
            handle,
            relay,
            generation,
        } = early.started;
        let registered = match self.running().get_mut(&id) {
            Some(turn) if turn.generation == generation => {
                turn.visible = true;
                true
            }
            _ => false,
        };
        if !registered || committed.send(stored.clone()).is_err() {
            self.release(id, generation);
            return None;
        }
        self.relay(id, relay);
        Some(handle)
    }

    /// The message an early turn answers was not stored as it expected (a
    /// resend, another replica's turn, a failure): the turn ends unseen and
    /// stores nothing.
    fn drop_early(&self, id: ConversationId, early: &EarlyTurn) {
        if let Some(turn) = self.running().get(&id)
            && turn.generation == early.started.generation
        {
            turn.abort.cancel();
        }
        self.release(id, early.started.generation);
    }

    /// Notes that this replica just claimed `conversation`'s turn.
    fn note_claim(&self, conversation: ConversationId) {
        let fresh = self.inner.limits.turn_lease / 2;
        let mut claimed = self
            .inner
            .claimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if claimed.len() >= 1_024 {
            claimed.retain(|_, at| at.elapsed() < fresh);
        }
        claimed.insert(conversation, std::time::Instant::now());
    }

    /// Whether this replica claimed `conversation`'s turn within half a
    /// lease (so the claim is still its own); forgets the note.
    fn take_fresh_claim(&self, conversation: ConversationId) -> bool {
        let fresh = self.inner.limits.turn_lease / 2;
        self.inner
            .claimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&conversation)
            .is_some_and(|at| at.elapsed() < fresh)
    }

    /// When a claim on a turn made now lapses.
    fn lease_until(&self) -> chrono::DateTime<chrono::Utc> {
        let lease = chrono::TimeDelta::from_std(self.inner.limits.turn_lease)
            .unwrap_or(chrono::TimeDelta::seconds(30));
        chrono::Utc::now() + lease
    }

    /// Keeps this replica's claim on the turn of `id` while it runs:
    /// renews it every third of the lease until `released` (the reply is
    /// stored, which released it). If another replica took the claim (this
    /// one could not renew in time), the turn is abandoned: the other one
    /// writes the reply.
    async fn keep_turn(
        &self,
        id: ConversationId,
        abort: &CancellationToken,
        released: &CancellationToken,
    ) {
        let every = self.inner.limits.turn_lease / 3;
        loop {
            tokio::select! {
                () = released.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            match self
                .inner
                .store
                .renew_turn(id, &self.inner.owner, self.lease_until())
                .await
            {
                Ok(true) => {}
                Ok(false) if released.is_cancelled() => return,
                Ok(false) => {
                    tracing::warn!(conversation_id = %id, "the turn's claim passed to another replica; abandoning it");
                    abort.cancel();
                    return;
                }
                Err(e) => {
                    tracing::warn!(conversation_id = %id, error = %e, "could not renew the turn's claim");
                }
            }
        }
    }

    pub fn is_running(&self, conversation: ConversationId) -> bool {
        self.running().contains_key(&conversation)
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, RunningTurn>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (single inserts and removes), so a poisoned lock is still usable.
        self.inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Live frames of the turn running for `conversation`, if any.
    pub fn subscribe(
        &self,
        conversation: ConversationId,
    ) -> Option<broadcast::Receiver<ServerFrame>> {
        self.running()
            .get(&conversation)
            .filter(|t| t.visible)
            .map(|t| t.frames.subscribe())
    }

    /// Stops the turn running for `conversation`. Returns whether one was.
    pub fn stop(&self, conversation: ConversationId) -> bool {
        match self.running().get(&conversation) {
            Some(turn) => {
                turn.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// Takes turn `generation` of `conversation` off the running map (a
    /// later turn of the same conversation is left alone).
    fn release(&self, conversation: ConversationId, generation: u64) {
        let mut running = self.running();
        if running
            .get(&conversation)
            .is_some_and(|t| t.generation == generation)
        {
            running.remove(&conversation);
        }
    }

    /// Abandons the running turn without storing it.
    fn abort(&self, conversation: ConversationId) {
        if let Some(turn) = self.running().get(&conversation) {
            turn.abort.cancel();
        }
    }

    /// Makes sure the conversation gets CJ's reply: runs the workflow's
    /// initial action if it has not run in this conversation, or answers an
    /// unanswered merchant message or system event. Returns `None` when
    /// nothing is owed, or a handle on the (new or already running) turn.
    pub async fn ensure_reply(&self, id: ConversationId) -> Result<Option<TurnHandle>, ChatError> {
        if let Some(frames) = self.subscribe(id) {
            return Ok(Some(TurnHandle { frames, done: None }));
        }
        let _gate = self.gate(id).lock().await;
        // A turn of this replica is registered under the gate and leaves
        // the map only after its reply is stored: checked before the
        // conversation is read, a turn that is not running has stored
        // what it wrote.
        if let Some(frames) = self.subscribe(id) {
            return Ok(Some(TurnHandle { frames, done: None }));
        }
        let store = &self.inner.store;
        let (conversation, last) = store
            .conversation_with_last_role(id)
            .await?
            .ok_or(ChatError::NotFound)?;
        let owes = self.owes(&conversation, last);
        let Some(needs_initial) = owes else {
            return Ok(None);
        };
        // The reply stays owed: the next open (on any replica) writes it.
        if self.inner.draining.is_cancelled() {
            return Err(ChatError::Restarting);
        }
        // One turn at a time per conversation across replicas: another
        // replica that holds the claim writes this reply.
        let fresh = self.take_fresh_claim(id);
        if !fresh
            && !store
                .claim_turn(id, &self.inner.owner, self.lease_until())
                .await?
        {
            tracing::info!(conversation_id = %id, "another replica is answering this conversation");
            return Ok(Some(self.watch_elsewhere(id, conversation.last_seq)));
        }
        let (conversation, needs_initial) = if fresh {
            (conversation, needs_initial)
        } else {
            // Another replica's turn may have stored its reply (which
            // released its claim) after the read above: read again.
            let (again, last) = store
                .conversation_with_last_role(id)
                .await?
                .ok_or(ChatError::NotFound)?;
            let owes = if again.last_seq == conversation.last_seq {
                owes
            } else {
                self.owes(&again, last)
            };
            let Some(needs_initial) = owes else {
                store.release_turn(id, &self.inner.owner).await?;
                return Ok(None);
            };
            (again, needs_initial)
        };

        let work = if needs_initial {
            TurnWork::Initial
        } else {
            TurnWork::Answer
        };
        let started = self.start_turn(conversation, work, true);
        self.relay(id, started.relay);
        Ok(Some(started.handle))
    }

    /// Registers a turn of `conversation` as running (the caller holds the
    /// conversation's gate and no turn runs) and starts its task.
    fn start_turn(&self, conversation: Conversation, work: TurnWork, visible: bool) -> StartedTurn {
        let id = conversation.id;
        let (frames, receiver) = broadcast::channel(256);
        let relay = frames.subscribe();
        let abort = CancellationToken::new();
        let stop = abort.child_token();
        let generation = self
            .inner
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.running().insert(
            id,
            RunningTurn {
                stop: stop.clone(),
                abort: abort.clone(),
                frames: frames.clone(),
                generation,
                visible,
            },
        );
        let (done_tx, done_rx) = oneshot::channel();
        let service = self.clone();
        self.inner.turns.spawn(async move {
            let deregister = Deregister {
                service: service.clone(),
                id,
                generation,
            };
            let released = CancellationToken::new();
            let turn = ConversationTurn {
                conversation,
                frames: frames.clone(),
                stop,
                abort: abort.clone(),
                generation,
                released: released.clone(),
            };
            let work = async {
                match work {
                    TurnWork::Initial => service.run_initial_action(turn).await,
                    TurnWork::Answer => service.answer(turn).await,
                    TurnWork::Early { ctx, committed } => {
                        service.answer_early(turn, *ctx, committed).await
                    }
                }
            };
            tokio::pin!(work);
            let outcome = tokio::select! {
                outcome = &mut work => outcome,
                () = service.keep_turn(id, &abort, &released) => work.await,
            };
            if let Err(e) = outcome {
                tracing::error!(conversation_id = %id, error = %e, "turn failed");
                let _ = frames.send(e.to_frame());
            }
            if !released.is_cancelled()
                && let Err(e) = service
                    .inner
                    .store
                    .release_turn(id, &service.inner.owner)
                    .await
            {
                // It lapses on its own.
                tracing::warn!(conversation_id = %id, error = %e, "could not release the turn's claim");
            }
            drop(deregister);
            let _ = done_tx.send(());
        });
        StartedTurn {
            handle: TurnHandle {
                frames: receiver,
                done: Some(done_rx),
            },
            relay,
            generation,
        }
    }

    /// Sends the frames of `id`'s turn (`frames`, subscribed when the turn
    /// started) to every tab with the conversation open, on any replica.
    /// Pieces of the reply that are already waiting go as one `cj_delta`
    /// (nothing waits to be joined): a reply written faster than it is
    /// relayed costs a frame per burst, not per piece, on every socket.
    fn relay(&self, id: ConversationId, mut frames: broadcast::Receiver<ServerFrame>) {
        let bus = self.inner.bus.clone();
        tokio::spawn(async move {
            loop {
                let mut frame = match frames.recv().await {
                    Ok(frame) => frame,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                // Until nothing waits (or the channel closed, or lagged:
                // the skipped pieces are lost, as without joining).
                while let Ok(next) = frames.try_recv() {
                    if !frame.absorb(&next) {
                        bus.publish(id, std::mem::replace(&mut frame, next));
                    }
                }
                bus.publish(id, frame);
            }
        });
    }

    /// Announcements for `id` (messages CJ posts outside a turn), from any
    /// replica, for a socket that has the conversation open.
    pub fn announcements(&self, id: ConversationId) -> broadcast::Receiver<super::bus::OpenFrame> {
        self.inner.bus.announcements(id)
    }

    /// CJ tells the merchant that it has read their store's order history
    /// (`orders` orders, since `since` or all of it, as of `read_at`): a
    /// message in their newest conversation, sent to every socket that has
    /// it open. Nothing is posted into an archived conversation, one begun
    /// after `read_at` (its merchant could already ask anything), nor where
    /// a reply is owed or being written (the merchant can always ask how
    /// fresh CJ's numbers are).
    pub async fn announce_history_read(
        &self,
        user: &UserId,
        orders: i64,
        since: Option<chrono::NaiveDate>,
        read_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, ChatError> {
        let store = &self.inner.store;
        let page = store.conversations_for_user(user, 1, 0).await?;
        let Some(newest) = page
            .items
            .first()
            .filter(|c| c.ended_at.is_none() && c.started_at <= read_at)
        else {
            return Ok(false);
        };
        let id = newest.id;
        let _gate = self.gate(id).lock().await;
        if self.is_running(id) || self.inner.draining.is_cancelled() {
            return Ok(false);
        }
        let Some(conversation) = store.conversation(id).await? else {
            return Ok(false);
        };
        let last = store.messages(id, conversation.last_seq - 1).await?;
        if last.last().is_none_or(|m| m.role != Role::Cj) {
            return Ok(false);
        }
        if !store
            .claim_turn(id, &self.inner.owner, self.lease_until())
            .await?
        {
            return Ok(false);
        }
        let note = NewMessage::new(Role::Cj, history_read_text(orders, since));
        let release = TurnLease::Release {
            owner: &self.inner.owner,
        };
        let (stored, _) = store.append_message_in_turn(id, &note, release).await?;
        tracing::info!(conversation_id = %id, orders, "CJ said the store's history is read");
        self.inner.bus.announce(
            id,
            ServerFrame::CjMessage {
                message: WireMessage::from_message(&stored),
            },
        );
        Ok(true)
    }

    /// Follows a turn of `id` that another replica runs: forwards the
    /// frames that replica publishes (its deltas, live) and ends with its
    /// reply; the store is read too (every `every`), since a frame may be
    /// lost between replicas: a CJ message after `after_seq` there is sent
    /// and ends the follow. It also ends when the other replica's claim is
    /// gone without a reply (it died or gave the turn up), so the follower
    /// asks for the reply again and this replica writes it. Runs until
    /// nobody follows.
    fn watch_elsewhere(&self, id: ConversationId, after_seq: i64) -> TurnHandle {
        let (frames, receiver) = broadcast::channel(256);
        let service = self.clone();
        let every = (self.inner.limits.turn_lease / 20)
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        let mut live = self.inner.bus.subscribe(id);
        tokio::spawn(async move {
            let store = &service.inner.store;
            let owner = &service.inner.owner;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            while frames.receiver_count() > 0 && !service.inner.draining.is_cancelled() {
                tokio::select! {
                    received = live.recv() => match received {
                        Ok(frame) => {
                            let reply = matches!(frame, ServerFrame::CjMessage { .. });
                            let _ = frames.send(frame);
                            if reply {
                                return;
                            }
                            continue;
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        // The bus is gone (never while the service lives):
                        // the store alone, at the tick.
                        Err(broadcast::error::RecvError::Closed) => {
                            tick.tick().await;
                        }
                    },
                    _ = tick.tick() => {}
                }
                let replies: Vec<Message> = match store.messages(id, after_seq).await {
                    Ok(m) => m.into_iter().filter(|m| m.role == Role::Cj).collect(),
                    Err(e) => {
                        tracing::warn!(conversation_id = %id, error = %e, "could not follow another replica's turn");
                        continue;
                    }
                };
                if !replies.is_empty() {
                    for m in &replies {
                        let _ = frames.send(ServerFrame::CjMessage {
                            message: WireMessage::from_message(m),
                        });
                    }
                    return;
                }
                match store.turn_claimed_elsewhere(id, owner).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        tracing::warn!(conversation_id = %id, error = %e, "could not follow another replica's turn");
                    }
                }
            }
        });
        TurnHandle {
            frames: receiver,
            done: None,
        }
    }

    /// Whether `conversation`, whose newest message has the role `last`, is
    /// owed a turn: `Some(false)` a reply to its newest message (a merchant
    /// message or a system event),
    /// `Some(true)` its workflow's initial action, `None` nothing.
    fn owes(&self, conversation: &Conversation, last: Option<Role>) -> Option<bool> {
        if last.is_some_and(|role| role != Role::Cj) {
            return Some(false);
        }
        self.initial_action_pending(conversation).then_some(true)
    }

    fn initial_action_pending(&self, conversation: &Conversation) -> bool {
        let state = ConversationState::from_json(&conversation.state);
        self.inner
            .catalog
            .initial_action_pending(&conversation.workflow, &state)
    }

    /// Runs the workflow's initial action: records it in the
    /// conversation's state first, so it can never run twice (if this turn
    /// is interrupted, the unanswered system event gets its reply on the
    /// next open), stores it as a system event, then answers it.
    async fn run_initial_action(&self, mut turn: ConversationTurn) -> Result<(), ChatError> {
        let conversation = &mut turn.conversation;
        let store = &self.inner.store;
        let mut state = ConversationState::from_json(&conversation.state);
        state.mark_initial_action_done(&conversation.workflow);
        let state = state.to_json();
        store
            .set_conversation_state(conversation.id, &state)
            .await?;
        conversation.state = state;
        let action = self
            .inner
            .catalog
            .workflow(&conversation.workflow)
            .and_then(|w| w.behavior.initial_action.clone())
            .unwrap_or_default();
        let (event, _) = store
            .append_message(conversation.id, &NewMessage::new(Role::System, action))
            .await?;
        // CJ's reply follows the event: its turn number is the next one.
        conversation.last_seq = event.seq;
        self.answer(turn).await
    }

    /// Answers the conversation's newest message (a merchant message or a
    /// system event): runs the agent, stores the reply and its trace, moves
    /// the workflow on, releases the turn, sends the reply, then remembers
    /// facts. An abandoned turn stores nothing.
    async fn answer(&self, turn: ConversationTurn) -> Result<(), ChatError> {
        let ctx = self.turn_context(&turn.conversation).await?;
        let output = self.run_agent(&turn, &ctx).await;
        self.keep_answer(turn, ctx, output).await
    }

    /// Answers a merchant message that was being stored when the turn
    /// started ([`Self::start_early`]): the model runs while it commits.
    /// Nothing is stored, and no error shown, unless `committed` brings the
    /// stored message.
    async fn answer_early(
        &self,
        turn: ConversationTurn,
        mut ctx: TurnContext,
        committed: oneshot::Receiver<Message>,
    ) -> Result<(), ChatError> {
        let (output, committed) = tokio::join!(self.run_agent(&turn, &ctx), committed);
        let Ok(stored) = committed else {
            // Not this replica's claim to release.
            turn.released.cancel();
            return Ok(());
        };
        if let Some(last) = ctx.history.last_mut() {
            *last = stored;
        }
        self.keep_answer(turn, ctx, output).await
    }

    /// Stores what the agent answered (see [`Self::answer`]).
    async fn keep_answer(
        &self,
        turn: ConversationTurn,
        ctx: TurnContext,
        output: Result<Option<TurnOutput>, ChatError>,
    ) -> Result<(), ChatError> {
        let Some(output) = output? else {
            return Ok(());
        };
        let transition = self.transition_after(&ctx, &output);
        let stored = match self.store_reply(&ctx, &output, transition.as_ref()).await {
            Ok(stored) => stored,
            Err(ChatError::Store(e)) if e.is_unavailable() => {
                tracing::warn!(conversation_id = %ctx.conversation.id, error = %e,
                    "the database is out; CJ's reply is kept until it is back");
                let _ = turn.frames.send(ServerFrame::error(
                    "store_unavailable",
                    "CJ's reply is written but can't be saved just now; it appears here as soon \
                     as it is saved",
                    true,
                ));
                match self
                    .store_kept_reply(&turn, &ctx, &output, transition.as_ref())
                    .await
                {
                    Ok(Some(stored)) => stored,
                    Ok(None) => return Ok(()),
                    Err(ChatError::Store(e)) if e.is_unavailable() => {
                        // Still out: the reply is dropped, the page stops
                        // waiting, and the message is owed a reply.
                        tracing::warn!(conversation_id = %ctx.conversation.id, error = %e,
                            "the database stayed out; CJ's kept reply is dropped");
                        let _ = turn.frames.send(ServerFrame::error(
                            "turn_failed",
                            "CJ's reply couldn't be saved. Open this conversation again in a \
                             moment and CJ will answer your message.",
                            true,
                        ));
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        turn.released.cancel();
        self.publish_reply(&turn, &stored, transition.map(|t| t.frame));
        self.after_reply(&ctx, &stored).await
    }

    /// What the agent needs: the stored messages after the conversation's
    /// summary (what the model is sent, and no more), the merchant and the
    /// turn number (the sequence number CJ's reply will get).
    async fn turn_context(&self, conversation: &Conversation) -> Result<TurnContext, ChatError> {
        let store = &self.inner.store;
        let history = store
            .messages(conversation.id, conversation.summary_through)
            .await?;
        let user = match &conversation.user_id {
            Some(u) => store.user(u).await?,
            None => None,
        };
        Ok(TurnContext {
            conversation: conversation.clone(),
            history,
            user,
            turn: conversation.last_seq + 1,
        })
    }

    /// Runs the agent turn, streaming its frames. `None` when the turn was
    /// abandoned (by the post-OAuth budget): nothing is stored, so the reply
    /// is still owed and runs again when the chat opens.
    async fn run_agent(
        &self,
        turn: &ConversationTurn,
        ctx: &TurnContext,
    ) -> Result<Option<TurnOutput>, ChatError> {
        let output = self
            .inner
            .engine
            .run(ctx, &turn.frames, turn.stop.clone())
            .await;
        match output {
            _ if turn.abort.is_cancelled() => {
                tracing::info!(conversation_id = %ctx.conversation.id, "turn abandoned; it will run again when the chat opens");
                Ok(None)
            }
            Ok(output) => Ok(Some(output)),
            Err(e) => Err(ChatError::Turn(e.to_string())),
        }
    }

    /// Stores CJ's reply (complete or stopped), releasing the turn, with
    /// everything the turn writes in the same transaction: its trace, a
    /// title for a conversation that has none, the workflow's transition
    /// and the merchant's last-seen time.
    async fn store_reply(
        &self,
        ctx: &TurnContext,
        output: &TurnOutput,
        transition: Option<&Transition>,
    ) -> Result<Message, ChatError> {
        let mut reply = NewMessage::new(Role::Cj, output.text.clone());
        reply.ui_elements = output.ui_elements.clone();
        reply.status = output.status;
        // The whole requests only in debug mode (the debug panel shows
        // them); otherwise a trace bounded per turn.
        let trace = if self.inner.debug {
            output.trace.to_json()
        } else {
            output.trace.to_compact_json()
        };
        let title = ctx
            .conversation
            .title
            .is_none()
            .then(|| title_from(&ctx.history, &output.trace))
            .flatten();
        let writes = ReplyWrites {
            trace: Some(&trace),
            title: title.as_deref(),
            workflow: transition.map(|t| (t.workflow.as_str(), &t.state)),
            seen: ctx.user.as_ref().map(|u| &u.id),
        };
        Ok(self
            .inner
            .store
            .append_reply(ctx.conversation.id, &reply, &self.inner.owner, writes)
            .await?)
    }

    /// Stores a reply that could not be stored because the database was
    /// out: tries again, waiting longer each time (up to
    /// [`KEPT_REPLY_RETRY_MAX`]), for [`ChatLimits::kept_reply`]. Before each
    /// try the turn is claimed again: if another replica holds it, or the
    /// conversation has moved on (the reply was stored after all, or
    /// another replica answered while this one's claim had lapsed), the
    /// kept reply is not stored twice. `None` when it is not stored (the
    /// turn abandoned, or the reply someone else's); an error when the
    /// database stays out past the window (the merchant's message is then
    /// still owed a reply, written when the conversation is next opened).
    async fn store_kept_reply(
        &self,
        turn: &ConversationTurn,
        ctx: &TurnContext,
        output: &TurnOutput,
        transition: Option<&Transition>,
    ) -> Result<Option<Message>, ChatError> {
        let id = ctx.conversation.id;
        let deadline = tokio::time::Instant::now() + self.inner.limits.kept_reply;
        let mut wait = Duration::from_millis(250);
        loop {
            tokio::select! {
                () = turn.abort.cancelled() => return Ok(None),
                () = tokio::time::sleep(wait) => {}
            }
            match self.try_store_kept_reply(ctx, output, transition).await {
                Ok(stored) => {
                    if stored.is_some() {
                        tracing::info!(conversation_id = %id, "the kept reply is stored");
                    }
                    return Ok(stored);
                }
                Err(ChatError::Store(e))
                    if e.is_unavailable() && tokio::time::Instant::now() < deadline =>
                {
                    wait = (wait * 2).min(KEPT_REPLY_RETRY_MAX);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One try of [`ChatService::store_kept_reply`].
    async fn try_store_kept_reply(
        &self,
        ctx: &TurnContext,
        output: &TurnOutput,
        transition: Option<&Transition>,
    ) -> Result<Option<Message>, ChatError> {
        let store = &self.inner.store;
        let id = ctx.conversation.id;
        if !store
            .claim_turn(id, &self.inner.owner, self.lease_until())
            .await?
        {
            tracing::info!(conversation_id = %id, "another replica answers; the kept reply is dropped");
            return Ok(None);
        }
        let conversation = store.conversation(id).await?.ok_or(ChatError::NotFound)?;
        if conversation.last_seq >= ctx.turn {
            // The outage hit after the reply's own commit, or another
            // replica answered meanwhile.
            store.release_turn(id, &self.inner.owner).await?;
            let next = store.messages(id, ctx.turn - 1).await?;
            return Ok(next
                .into_iter()
                .next()
                .filter(|m| m.seq == ctx.turn && m.role == Role::Cj && m.content == output.text));
        }
        self.store_reply(ctx, output, transition).await.map(Some)
    }

    /// After a complete answer to a system event (the initial action), the
    /// workflow state machine's `initial_action_completed` transition, if
    /// the workflow has one: stored with the reply, announced after it.
    /// Transitions happen in code, never by the model.
    fn transition_after(&self, ctx: &TurnContext, output: &TurnOutput) -> Option<Transition> {
        let answered_event = ctx.history.last().is_some_and(|m| m.role == Role::System);
        if !answered_event || output.status != MessageStatus::Complete {
            return None;
        }
        let conversation = &ctx.conversation;
        let mut state = ConversationState::from_json(&conversation.state);
        let next = self
            .inner
            .catalog
            .complete_initial_action(&conversation.workflow, &mut state)?;
        Some(Transition {
            workflow: next.name.clone(),
            state: state.to_json(),
            frame: ServerFrame::WorkflowUpdated {
                workflow: next.name.clone(),
                previous: conversation.workflow.clone(),
            },
        })
    }

    /// Releases the turn, then sends the reply (and the workflow change).
    /// The turn is over for the merchant: a next message may start a new
    /// one as soon as this reply is seen.
    fn publish_reply(
        &self,
        turn: &ConversationTurn,
        stored: &Message,
        transition: Option<ServerFrame>,
    ) {
        self.release(turn.conversation.id, turn.generation);
        let _ = turn.frames.send(ServerFrame::CjMessage {
            message: WireMessage::from_message(stored),
        });
        if let Some(frame) = transition {
            let _ = turn.frames.send(frame);
        }
    }

    /// Work after the reply is out: facts the merchant stated in the message
    /// just answered, and the conversation's summary when it is due.
    async fn after_reply(&self, ctx: &TurnContext, reply: &Message) -> Result<(), ChatError> {
        let store = &self.inner.store;
        let id = ctx.conversation.id;
        if let Some(user) = &ctx.user
            && let Some(said) = ctx.history.last().filter(|m| m.role == Role::Merchant)
        {
            for fact in self.inner.engine.extract_facts(&said.content).await {
                if let Some(f) = store.add_fact(&user.id, &fact, Some(id)).await? {
                    tracing::info!(conversation_id = %id, fact_id = %f.id, "remembered a fact");
                }
            }
        }
        self.refresh_summary(ctx, reply).await
    }

    /// Folds the oldest messages after the summary into it once the
    /// conversation passes three quarters of its context budget
    /// ([`hirecj_agent::context`]). A summary that cannot be written now is
    /// tried again after the next reply; meanwhile requests stay within the
    /// budget by leaving the oldest messages out.
    async fn refresh_summary(&self, ctx: &TurnContext, reply: &Message) -> Result<(), ChatError> {
        let conversation = &ctx.conversation;
        let messages: Vec<&Message> = ctx.history.iter().chain([reply]).collect();
        let parts: Vec<(Role, &str)> = messages
            .iter()
            .map(|m| (m.role, m.content.as_str()))
            .collect();
        let engine = &self.inner.engine;
        let previous = conversation.summary.as_deref();
        let Some(fold) = fold_point(engine.context_tokens(), previous, &parts) else {
            return Ok(());
        };
        let through = messages[fold - 1].seq;
        let folded: Vec<HistoryEntry> = messages[..fold]
            .iter()
            .map(|m| HistoryEntry::from(*m))
            .collect();
        let summary = match engine.summarise(previous, &folded).await {
            Ok(summary) => summary,
            Err(e) => {
                tracing::warn!(conversation_id = %conversation.id, error = %e,
                    "the conversation's summary could not be written; trying after the next reply");
                return Ok(());
            }
        };
        let written = self
            .inner
            .store
            .set_conversation_summary(
                conversation.id,
                conversation.summary_through,
                &summary,
                through,
            )
            .await?;
        tracing::info!(conversation_id = %conversation.id, through, bytes = summary.len(), written,
            "summarised the conversation's older messages");
        Ok(())
    }

    /// Moves the conversation to another workflow (checked like a new one).
    pub async fn switch_workflow(
        &self,
        owner: &Owner,
        id: ConversationId,
        workflow: &str,
    ) -> Result<(String, String), ChatError> {
        let conversation = self.conversation_for(owner, id).await?;
        if self.is_running(id) {
            return Err(ChatError::TurnInProgress);
        }
        let next = self.choose_workflow(owner, Some(workflow)).await?;
        self.inner
            .store
            .set_conversation_workflow(id, &next)
            .await?;
        Ok((conversation.workflow, next))
    }

    /// Ends (archives) a conversation.
    pub async fn end(&self, owner: &Owner, id: ConversationId) -> Result<(), ChatError> {
        self.conversation_for(owner, id).await?;
        // Storing a message reopens a conversation, so a reply in progress is
        // stopped and stored (what was said is kept) before the end is.
        if let Some(mut frames) = self.subscribe(id) {
            self.stop(id);
            let finished = async {
                while !matches!(
                    frames.recv().await,
                    Err(broadcast::error::RecvError::Closed)
                ) {}
            };
            if tokio::time::timeout(END_WAIT, finished).await.is_err() {
                tracing::warn!(conversation_id = %id, "the stopped turn did not finish before the end");
            }
        }
        self.inner.store.end_conversation(id).await?;
        Ok(())
    }

    /// The conversation's per-turn traces (debug mode only).
    pub async fn traces(
        &self,
        id: ConversationId,
        turn: Option<i64>,
    ) -> Result<Vec<Value>, ChatError> {
        Ok(self
            .inner
            .store
            .traces_of(id, turn)
            .await?
            .into_iter()
            .map(|t| json!({"turn": t.turn, "created_at": t.created_at, "trace": t.data}))
            .collect())
    }

    /// Gives conversation `id` to merchant `user` if it is a visitor's
    /// conversation of `session` (the browser session that started the
    /// install), or already the merchant's. The one check both the OAuth
    /// callback and the internal initiate API apply.
    pub async fn link_conversation(
        &self,
        id: ConversationId,
        session: Option<&str>,
        user: &UserId,
    ) -> Result<Link, ChatError> {
        let Some(conversation) = self.inner.store.conversation(id).await? else {
            return Ok(Link::Missing);
        };
        if conversation.user_id.as_ref() == Some(user) {
            return Ok(Link::Owned);
        }
        let visitors = conversation.user_id.is_none()
            && session.is_some()
            && conversation.session_id.as_deref() == session;
        if !visitors {
            tracing::warn!(conversation_id = %id, "an install named a conversation of someone else; not linked");
            return Ok(Link::Refused);
        }
        self.inner.store.set_conversation_user(id, user).await?;
        Ok(Link::Owned)
    }

    /// The post-OAuth step, prepared before the redirect: continues the
    /// merchant's conversation (linked by [`Self::link_conversation`]) or
    /// starts one, moves it on `shopify_connected` and runs CJ's first
    /// turn there within the time budget. If the budget runs out the turn
    /// is stopped and nothing is stored for it: it runs live when the chat
    /// opens.
    pub async fn prepare_post_oauth(
        &self,
        user: &User,
        conversation: Option<ConversationId>,
    ) -> Result<ConversationId, ChatError> {
        let existing = match conversation {
            Some(id) => self.inner.store.conversation(id).await?,
            None => None,
        };
        // Only the merchant's own conversation is continued, moved where
        // its workflow's `shopify_connected` transition says.
        let existing = existing.filter(|c| c.user_id.as_ref() == Some(&user.id));
        let next = &self
            .inner
            .catalog
            .on_store_connected(existing.as_ref().map(|c| c.workflow.as_str()))
            .name;
        let id = match existing {
            Some(c) => {
                if c.workflow != *next {
                    self.inner
                        .store
                        .set_conversation_workflow(c.id, next)
                        .await?;
                }
                c.id
            }
            None => {
                let id = ConversationId::generate();
                self.inner
                    .store
                    .create_conversation(id, Some(&user.id), None, next)
                    .await?;
                id
            }
        };
        if let Some(handle) = self.ensure_reply(id).await?
            && let Some(done) = handle.done
        {
            match tokio::time::timeout(self.inner.limits.post_oauth_budget, done).await {
                Ok(_) => tracing::info!(conversation_id = %id, "post-OAuth message prepared"),
                Err(_) => {
                    tracing::warn!(conversation_id = %id, "post-OAuth turn ran out of time; it will run when the chat opens");
                    self.abort(id);
                }
            }
        }
        Ok(id)
    }
}

/// A workflow transition, written with the reply that causes it.
struct Transition {
    workflow: String,
    state: Value,
    frame: ServerFrame,
}

/// One turn of a conversation, as the task that runs it holds it: what
/// every step of [`ChatService::answer`] reads besides the service.
struct ConversationTurn {
    /// The conversation as read when the turn was registered, kept in step
    /// with the turn's own writes (the initial action's state and event).
    conversation: Conversation,
    /// Live frames for everyone following the turn.
    frames: broadcast::Sender<ServerFrame>,
    /// The merchant's Stop: the reply so far is kept, marked stopped.
    stop: CancellationToken,
    /// Abandons the turn: nothing is stored (the reply is owed again).
    abort: CancellationToken,
    /// Which registration of the conversation this turn is (see
    /// [`ChatService::release`]).
    generation: u64,
    /// Cancelled once the reply is stored, which released the turn's
    /// claim in the database.
    released: CancellationToken,
}

/// What a turn's task does.
enum TurnWork {
    /// The workflow's initial action.
    Initial,
    /// A reply to the conversation's newest message.
    Answer,
    /// A reply to a merchant message still being stored (see
    /// [`ChatService::answer_early`]).
    Early {
        ctx: Box<TurnContext>,
        committed: oneshot::Receiver<Message>,
    },
}

/// A turn registered and started by [`ChatService::start_turn`].
struct StartedTurn {
    /// For the socket that asked for it.
    handle: TurnHandle,
    /// For every other socket (see [`ChatService::relay`]).
    relay: broadcast::Receiver<ServerFrame>,
    generation: u64,
}

/// What [`ChatService::start_early`] did for a message being stored.
enum Early {
    /// Started the reply before the message was stored.
    Started(EarlyTurn),
    /// Found the message stored already, with everything its reply needs.
    Read(Box<TurnContext>),
}

/// A turn started before the message it answers was stored.
struct EarlyTurn {
    /// The sequence number the message was expected to get.
    seq: i64,
    started: StartedTurn,
}

/// Takes a turn off the running map when its task ends, also when it ends
/// by a panic: a conversation is never left refusing every message with
/// `turn_in_progress` (and its followers never left waiting) until a restart.
struct Deregister {
    service: ChatService,
    id: ConversationId,
    generation: u64,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        self.service.release(self.id, self.generation);
    }
}

/// What CJ says once the store's order history is read.
fn history_read_text(orders: i64, since: Option<chrono::NaiveDate>) -> String {
    let count = thousands(orders);
    let read = match since {
        Some(day) => format!(
            "all {count} orders since {} (as far back as Shopify lets me see)",
            day.format("%-d %B %Y")
        ),
        None => format!("all {count} of your orders, your whole history"),
    };
    format!(
        "I've finished reading your store: {read}. Ask me about any period now, for \
         example \"Compare this month with last month.\""
    )
}

/// `n` with thousands separators: 100833 → "100,833".
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A short title for a conversation at the end of its first exchange
/// (the first reply to a merchant message): what the tools it used were
/// about ("Best sellers"), else the merchant's first line.
fn title_from(history: &[Message], trace: &hirecj_agent::turn::TurnTrace) -> Option<String> {
    let first = history.iter().find(|m| m.role == Role::Merchant)?;
    if let Some(title) =
        hirecj_agent::tools::title_from_tools(trace.tool_calls.iter().map(|c| c.name.as_str()))
    {
        return Some(title);
    }
    let line = first.content.lines().next()?.trim();
    if line.is_empty() {
        return None;
    }
    let mut title: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        title.push('…');
    }
    Some(title)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use hirecj_agent::model::{ModelError, ModelProvider, ModelRequest, ModelStream};

    /// A provider with a bug: it panics.
    struct Panics;

    #[async_trait::async_trait]
    impl ModelProvider for Panics {
        fn name(&self) -> &str {
            "panics"
        }

        fn model(&self) -> &str {
            "panics"
        }

        async fn stream(
            &self,
            _req: ModelRequest,
            _cancel: CancellationToken,
        ) -> Result<ModelStream, ModelError> {
            panic!("a bug in a model provider");
        }
    }

    #[test]
    fn the_history_note_counts_like_people_do() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_833), "100,833");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
        let since = chrono::NaiveDate::from_ymd_opt(2026, 9, 30);
        assert!(
            history_read_text(4_210, since).contains("all 4,210 orders since 30 September 2026")
        );
        assert!(history_read_text(12, None).contains("all 12 of your orders, your whole history"));
    }

    #[tokio::test]
    async fn a_turn_that_panics_does_not_wedge_its_conversation() {
        let dir = tempfile::tempdir().unwrap();
        let env = HashMap::from([
            ("HIRECJ_BIND".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "HIRECJ_DATA_DIR".to_owned(),
                dir.path().display().to_string(),
            ),
            ("HIRECJ_LOG".to_owned(), "warn".to_owned()),
        ]);
        let settings = crate::Settings::load(&crate::LoadOptions {
            env,
            ..Default::default()
        })
        .unwrap();
        let app = crate::App::build(settings).await.unwrap();
        let state = app.state().clone();
        let catalog = Arc::new(Catalog::load(None).unwrap());
        let engine = Engine::new(
            Arc::new(Panics),
            catalog.clone(),
            state.store.clone(),
            state.shopify.clone(),
            state.settings.model.turn_config(),
        );
        let chat = ChatService::new(
            state.store.clone(),
            catalog,
            engine,
            ChatLimits::default(),
            false,
        );
        let owner = Owner {
            session_id: "s".into(),
            user_id: None,
        };
        let c = chat
            .open(&owner, None, Some("ad_hoc_support"))
            .await
            .unwrap();
        let posted = chat.post_message(c.id, "hello", "m1").await.unwrap();
        // The reply starts while the message is stored; if its task is
        // already gone by then (it panicked first), the usual way.
        let handle = match posted.reply {
            Some(handle) => handle,
            None => chat.ensure_reply(c.id).await.unwrap().unwrap(),
        };
        // The task panicked: `done` is never sent, but the turn is over.
        assert!(handle.done.unwrap().await.is_err());
        assert!(!chat.is_running(c.id));
        let posted = chat.post_message(c.id, "hello again", "m2").await.unwrap();
        assert!(posted.new && posted.message.seq == 2);
    }
}
