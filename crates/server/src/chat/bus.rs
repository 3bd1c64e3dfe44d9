//! Live turn frames across replicas. The replica that runs a conversation's
//! turn publishes its frames (`cj_thinking`, `cj_delta`, `cj_message`, …);
//! every socket with that conversation open gets them, on this replica and
//! on the others: those following the turn (they opened the conversation
//! while it ran) through [`FrameBus::subscribe`], the rest through
//! [`FrameBus::announcements`], which also carries the messages CJ posts
//! outside a turn. On PostgreSQL frames travel by `LISTEN`/`NOTIFY` on one
//! channel; on SQLite (one process) nothing travels.
//!
//! Delivery is best effort: a frame published while the listening
//! connection reconnects, or one too large for a notification, is lost.
//! Followers therefore also read the store ([`super::ChatService`]'s
//! `watch_elsewhere`), which holds every reply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hirecj_domain::ConversationId;
use hirecj_store::{NOTIFY_PAYLOAD_MAX, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use super::protocol::ServerFrame;

/// The notification channel every replica listens on.
const CHANNEL: &str = "hirecj_turn_frames";
/// Frames waiting to be published; beyond this they are dropped (the
/// store still has every reply).
const QUEUE: usize = 4_096;
/// Frames a follower may fall behind by (every socket with a conversation
/// open holds one such channel, mostly idle: kept small).
const SLOTS: usize = 16;
/// How long the listener waits before listening again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// One published frame: which conversation, which replica sent it, and
/// whether it is a turn's frame or an announcement (a frame outside any
/// turn, for every socket with the conversation open).
#[derive(Serialize, Deserialize)]
struct Envelope {
    conversation: ConversationId,
    from: String,
    frame: ServerFrame,
    #[serde(default)]
    announcement: bool,
}

type Channels<T> = Mutex<HashMap<ConversationId, broadcast::Sender<T>>>;
type Followers = Channels<ServerFrame>;

/// A frame for the sockets that have a conversation open.
#[derive(Debug, Clone)]
pub enum OpenFrame {
    /// A frame of a turn: a socket already following that turn (through
    /// its own channel) skips it.
    Turn(ServerFrame),
    /// A message CJ posts outside any turn: for every socket.
    Announcement(ServerFrame),
}

/// Frames to and from the other replicas. Cheap to clone.
#[derive(Clone)]
pub struct FrameBus {
    inner: Arc<Inner>,
}

struct Inner {
    /// This replica (its own frames come back by `NOTIFY`: skipped).
    owner: String,
    /// Local sockets following turns that other replicas run.
    followers: Followers,
    /// Local sockets with a conversation open: turn frames and
    /// announcements.
    open: Channels<OpenFrame>,
    /// To the publishing task; `None` when there is nobody to tell.
    outgoing: Option<mpsc::Sender<Envelope>>,
}

impl FrameBus {
    /// The bus of the replica `owner` over `store`: on PostgreSQL it starts
    /// a task publishing frames and one listening for the others'.
    pub fn new(store: &Store, owner: &str) -> Self {
        let remote = store.backend() == hirecj_store::Backend::Postgres;
        let (outgoing, queued) = if remote {
            let (tx, rx) = mpsc::channel(QUEUE);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let bus = Self {
            inner: Arc::new(Inner {
                owner: owner.to_owned(),
                followers: Mutex::new(HashMap::new()),
                open: Mutex::new(HashMap::new()),
                outgoing,
            }),
        };
        if let Some(queued) = queued {
            tokio::spawn(publish(store.clone(), queued));
            tokio::spawn(listen(store.clone(), Arc::downgrade(&bus.inner)));
        }
        bus
    }

    /// Whether frames travel to other replicas.
    pub fn is_remote(&self) -> bool {
        self.inner.outgoing.is_some()
    }

    /// Sends `frame` of `conversation`'s turn to every socket with the
    /// conversation open, here and on the other replicas (those queued;
    /// dropped if the queue is full).
    pub fn publish(&self, conversation: ConversationId, frame: ServerFrame) {
        deliver_in(
            &self.inner.open,
            conversation,
            OpenFrame::Turn(frame.clone()),
        );
        self.send_out(conversation, frame, false);
    }

    /// Sends `frame` to every socket, on every replica, that has
    /// `conversation` open (a message CJ posts outside a turn).
    pub fn announce(&self, conversation: ConversationId, frame: ServerFrame) {
        deliver_in(
            &self.inner.open,
            conversation,
            OpenFrame::Announcement(frame.clone()),
        );
        self.send_out(conversation, frame, true);
    }

    fn send_out(&self, conversation: ConversationId, frame: ServerFrame, announcement: bool) {
        if let Some(outgoing) = &self.inner.outgoing {
            let envelope = Envelope {
                conversation,
                from: self.inner.owner.clone(),
                frame,
                announcement,
            };
            if outgoing.try_send(envelope).is_err() {
                tracing::warn!(conversation_id = %conversation, "frames for other replicas dropped: the queue is full");
            }
        }
    }

    /// The frames other replicas publish for `conversation`'s turn, from
    /// now on.
    pub fn subscribe(&self, conversation: ConversationId) -> broadcast::Receiver<ServerFrame> {
        subscribe_in(&self.inner.followers, conversation)
    }

    /// Turn frames and announcements for `conversation`, from any replica,
    /// from now on.
    pub fn announcements(&self, conversation: ConversationId) -> broadcast::Receiver<OpenFrame> {
        subscribe_in(&self.inner.open, conversation)
    }
}

fn lock<T>(
    map: &Channels<T>,
) -> std::sync::MutexGuard<'_, HashMap<ConversationId, broadcast::Sender<T>>> {
    // Single inserts, removals and sends: a poisoned map is consistent.
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn subscribe_in<T: Clone>(
    map: &Channels<T>,
    conversation: ConversationId,
) -> broadcast::Receiver<T> {
    let mut map = lock(map);
    if map.len() >= 64 {
        map.retain(|_, tx| tx.receiver_count() > 0);
    }
    map.entry(conversation)
        .or_insert_with(|| broadcast::channel(SLOTS).0)
        .subscribe()
}

fn deliver_in<T>(map: &Channels<T>, conversation: ConversationId, frame: T) {
    let mut map = lock(map);
    if let Some(tx) = map.get(&conversation)
        && tx.send(frame).is_err()
    {
        map.remove(&conversation);
    }
}

impl Inner {
    fn deliver(&self, envelope: Envelope) {
        if envelope.from == self.owner {
            return;
        }
        if envelope.announcement {
            deliver_in(
                &self.open,
                envelope.conversation,
                OpenFrame::Announcement(envelope.frame),
            );
        } else {
            deliver_in(
                &self.followers,
                envelope.conversation,
                envelope.frame.clone(),
            );
            deliver_in(
                &self.open,
                envelope.conversation,
                OpenFrame::Turn(envelope.frame),
            );
        }
    }
}

/// Publishes queued frames until the bus is gone: what is queued when the
/// task wakes goes out together, in as few notifications as the payload
/// limit allows (one under light load; fewer round trips under heavy load).
async fn publish(store: Store, mut queued: mpsc::Receiver<Envelope>) {
    let mut batch: Vec<String> = Vec::new();
    while let Some(first) = queued.recv().await {
        let mut next = Some(first);
        while let Some(envelope) = next {
            match serde_json::to_string(&envelope) {
                // Too large for a notification: followers read the reply
                // from the store.
                Ok(one) if one.len() + 2 > NOTIFY_PAYLOAD_MAX => {}
                Ok(one) => {
                    let size: usize = 1 + batch.iter().map(|e| e.len() + 1).sum::<usize>();
                    if size + one.len() + 1 > NOTIFY_PAYLOAD_MAX {
                        send(&store, &mut batch).await;
                    }
                    batch.push(one);
                }
                Err(e) => tracing::warn!(error = %e, "could not encode a turn frame"),
            }
            next = queued.try_recv().ok();
        }
        send(&store, &mut batch).await;
    }
}

/// Sends `batch` (encoded envelopes) as one notification: a JSON array.
async fn send(store: &Store, batch: &mut Vec<String>) {
    if batch.is_empty() {
        return;
    }
    let payload = format!("[{}]", batch.join(","));
    batch.clear();
    if let Err(e) = store.notify(CHANNEL, &payload).await {
        tracing::warn!(error = %e, "could not publish turn frames");
    }
}

/// Listens for the other replicas' frames and hands them to this one's
/// followers, until the bus or the store is gone.
async fn listen(store: Store, bus: Weak<Inner>) {
    while bus.strong_count() > 0 {
        let mut listener = match store.listen(CHANNEL).await {
            Ok(Some(listener)) => listener,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other replicas' turn frames; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        loop {
            let received = listener.recv().await;
            let Some(inner) = bus.upgrade() else {
                return;
            };
            match received {
                Ok(Some(payload)) => match serde_json::from_str::<Vec<Envelope>>(&payload) {
                    Ok(envelopes) => envelopes.into_iter().for_each(|e| inner.deliver(e)),
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable turn frames from another replica")
                    }
                },
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other replicas' turn frames failed; listening again");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }
}
