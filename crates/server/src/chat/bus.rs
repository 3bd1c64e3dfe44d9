//! Live turn frames across replicas. The replica that runs a conversation's
//! turn publishes its frames (`cj_thinking`, `cj_delta`, `cj_message`, …);
//! every socket with that conversation open gets them, on this replica and
//! on the others, through [`FrameBus::announcements`] (its one path for
//! live frames, which also carries the messages CJ posts outside a turn);
//! a replica waiting for another's turn to end also reads them through
//! [`FrameBus::subscribe`]. On PostgreSQL frames travel by `LISTEN`/`NOTIFY` on one
//! channel; on SQLite (one process) nothing travels.
//!
//! Delivery is best effort: a frame published while the listening
//! connection reconnects, or one too large for a notification, is lost.
//! Followers therefore also read the store ([`super::ChatService`]'s
//! `watch_elsewhere`), which holds every reply.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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
/// Frames a socket may fall behind by. Every conversation open on a
/// socket holds one such channel, mostly idle; it carries every live frame
/// of the conversation's turns (a reply's pieces come in bursts, and one
/// that starts while the merchant's message commits is held back until
/// the commit, then sent at once), so it holds a burst.
const SLOTS: usize = 64;
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
    /// A frame of a turn.
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
    /// Frames dropped so far because the queue was full.
    dropped: AtomicU64,
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
                dropped: AtomicU64::new(0),
            }),
        };
        if let Some(queued) = queued {
            tokio::spawn(publish(store.clone(), owner.to_owned(), queued));
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
                // Logged at the 1st, 2nd, 4th, 8th… drop: a burst is not a
                // flood of lines.
                let dropped = self.inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(conversation_id = %conversation, dropped,
                        "frames for other replicas dropped: the queue is full");
                }
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
/// Pieces of one reply queued back to back are joined into one `cj_delta`
/// (a reply streams in fewer, larger pieces to the other replicas as load
/// grows, never out of order).
async fn publish(store: Store, owner: String, mut queued: mpsc::Receiver<Envelope>) {
    let mut pending: Vec<Envelope> = Vec::new();
    while let Some(first) = queued.recv().await {
        let mut next = Some(first);
        while let Some(envelope) = next {
            push_coalesced(&mut pending, envelope);
            next = queued.try_recv().ok();
        }
        let mut batch: Vec<String> = Vec::new();
        let mut size = owner.len() + 3;
        for envelope in pending.drain(..) {
            match serde_json::to_string(&envelope) {
                // Too large for a notification: followers read the reply
                // from the store.
                Ok(one) if owner.len() + one.len() + 3 > NOTIFY_PAYLOAD_MAX => {}
                Ok(one) => {
                    if size + one.len() + 1 > NOTIFY_PAYLOAD_MAX {
                        send(&store, &owner, &mut batch).await;
                        size = owner.len() + 3;
                    }
                    size += one.len() + 1;
                    batch.push(one);
                }
                Err(e) => tracing::warn!(error = %e, "could not encode a turn frame"),
            }
        }
        send(&store, &owner, &mut batch).await;
    }
}

/// Appends `envelope` to `pending`, joining a `cj_delta` to the one just
/// before it when both are pieces of the same reply.
fn push_coalesced(pending: &mut Vec<Envelope>, envelope: Envelope) {
    if let Some(last) = pending.last_mut()
        && last.conversation == envelope.conversation
        && !last.announcement
        && !envelope.announcement
        && last.frame.absorb(&envelope.frame)
    {
        return;
    }
    pending.push(envelope);
}

/// Sends `batch` (encoded envelopes) as one notification: the sender, a
/// newline, then a JSON array (the sender first, so that a replica skips
/// its own notifications without reading them).
async fn send(store: &Store, owner: &str, batch: &mut Vec<String>) {
    if batch.is_empty() {
        return;
    }
    let payload = format!("{owner}\n[{}]", batch.join(","));
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
                Ok(Some(payload)) => {
                    let Some((from, envelopes)) = payload.split_once('\n') else {
                        tracing::warn!("unreadable turn frames from another replica");
                        continue;
                    };
                    if from == inner.owner {
                        continue;
                    }
                    match serde_json::from_str::<Vec<Envelope>>(envelopes) {
                        Ok(envelopes) => envelopes.into_iter().for_each(|e| inner.deliver(e)),
                        Err(e) => {
                            tracing::warn!(error = %e, "unreadable turn frames from another replica")
                        }
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(conversation: ConversationId, turn: i64, text: &str, restart: bool) -> Envelope {
        Envelope {
            conversation,
            from: "replica-a".into(),
            frame: ServerFrame::CjDelta {
                turn,
                text: text.into(),
                restart,
            },
            announcement: false,
        }
    }

    fn texts(pending: &[Envelope]) -> Vec<String> {
        pending
            .iter()
            .map(|e| match &e.frame {
                ServerFrame::CjDelta { text, restart, .. } => {
                    format!("{text}{}", if *restart { "!" } else { "" })
                }
                _ => "other".into(),
            })
            .collect()
    }

    #[test]
    fn pieces_of_one_reply_queued_together_travel_as_one() {
        let (a, b) = (ConversationId::generate(), ConversationId::generate());
        let mut pending = Vec::new();
        for e in [
            delta(a, 2, "Once ", true),
            delta(a, 2, "upon ", false),
            delta(a, 2, "a time", false),
            // Another conversation in between: order kept, nothing joined
            // across it.
            delta(b, 5, "Hello", false),
            delta(a, 2, ".", false),
            // A new attempt at the reply starts afresh.
            delta(a, 2, "Once", true),
            // The next turn's pieces are its own.
            delta(a, 4, "Next", false),
        ] {
            push_coalesced(&mut pending, e);
        }
        assert_eq!(
            texts(&pending),
            ["Once upon a time!", "Hello", ".", "Once!", "Next"]
        );
    }
}
