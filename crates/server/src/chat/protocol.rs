//! The chat WebSocket protocol, version 1: JSON text frames with a `type`
//! field, one enum each way. `docs/protocol.md` documents it with an example
//! exchange; keep the two in step.

use hirecj_domain::{ConversationId, Message, MessageStatus, Role};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bumped on any incompatible change to the frames below.
pub const PROTOCOL_VERSION: u32 = 1;

/// What the browser sends.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Opens a conversation: a new one, or an existing one from `last_seq`.
    StartConversation {
        #[serde(default)]
        conversation_id: Option<ConversationId>,
        #[serde(default)]
        workflow: Option<String>,
        /// The newest sequence number the client already shows.
        #[serde(default)]
        last_seq: i64,
    },
    /// A merchant message. `client_id` makes a resend idempotent.
    Message { text: String, client_id: String },
    /// Moves the open conversation to another workflow.
    SwitchWorkflow { workflow: String },
    /// Stops CJ's reply in progress; what was said is kept.
    Stop,
    /// Ends (archives) the open conversation.
    EndConversation,
    Ping {
        #[serde(default)]
        nonce: Option<String>,
    },
    /// Asks for the open conversation's per-turn traces (debug mode only).
    DebugRequest {
        #[serde(default)]
        turn: Option<i64>,
    },
}

/// A stored message as the browser shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireMessage {
    pub seq: i64,
    pub role: Role,
    pub content: String,
    pub html: String,
    pub ui_elements: Value,
    pub status: MessageStatus,
    /// The id the client gave a merchant message, so a page can match its
    /// own unacknowledged messages exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl WireMessage {
    pub fn from_message(m: &Message) -> Self {
        Self {
            seq: m.seq,
            role: m.role,
            content: m.content.clone(),
            html: crate::chat::render::markdown_to_html(&m.content, &m.ui_elements),
            ui_elements: m.ui_elements.clone(),
            status: m.status,
            client_id: m.client_id.clone(),
            created_at: m.created_at,
        }
    }
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    ConversationStarted {
        protocol: u32,
        conversation_id: ConversationId,
        workflow: String,
        /// Messages after the client's `last_seq`, in order.
        messages: Vec<WireMessage>,
        last_seq: i64,
        store_connected: bool,
        debug: bool,
    },
    MessageAck {
        client_id: String,
        seq: i64,
    },
    /// A merchant message another tab (or the internal API) sent, as
    /// stored: every other socket with the conversation open shows it.
    MerchantMessage {
        #[serde(flatten)]
        message: WireMessage,
    },
    CjThinking {
        /// The reply's `seq` once stored, as in `cj_delta`: a status for a
        /// reply the client already has is stale. (A replica of an older
        /// build sends none: read as 0 and dropped as stale; only the
        /// status line is lost.)
        #[serde(default)]
        turn: i64,
        status: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool: Option<String>,
    },
    CjDelta {
        turn: i64,
        text: String,
        /// The first piece of this attempt at the reply: text shown for
        /// `turn` before it (an attempt cut by a crash, now written again)
        /// is dropped.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        restart: bool,
    },
    CjMessage {
        #[serde(flatten)]
        message: WireMessage,
    },
    WorkflowUpdated {
        workflow: String,
        previous: String,
    },
    ConversationEnded {
        conversation_id: ConversationId,
    },
    Error {
        code: String,
        message: String,
        retryable: bool,
        /// Seconds until a refused request may succeed (`rate_limited`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    DebugResponse {
        traces: Vec<Value>,
    },
}

impl ServerFrame {
    /// Joins `next` onto this frame when both are pieces of the same reply
    /// (`cj_delta` of one turn, `next` not restarting it): one frame says
    /// what the two did. False, and nothing changed, otherwise.
    pub fn absorb(&mut self, next: &ServerFrame) -> bool {
        match (self, next) {
            (
                ServerFrame::CjDelta { turn, text, .. },
                ServerFrame::CjDelta {
                    turn: next_turn,
                    text: more,
                    restart: false,
                },
            ) if turn == next_turn => {
                text.push_str(more);
                true
            }
            _ => false,
        }
    }

    pub fn error(code: &str, message: impl Into<String>, retryable: bool) -> Self {
        Self::Error {
            code: code.to_owned(),
            message: message.into(),
            retryable,
            retry_after: None,
        }
    }

    /// `rate_limited`: try again after `retry_after` (whole seconds, at least 1).
    pub fn rate_limited(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        Self::Error {
            code: "rate_limited".to_owned(),
            message: message.into(),
            retryable: true,
            retry_after: Some(retry_after.as_secs().max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_from_their_documented_shape() {
        let f: ClientFrame = serde_json::from_str(r#"{"type":"start_conversation"}"#).unwrap();
        assert_eq!(
            f,
            ClientFrame::StartConversation {
                conversation_id: None,
                workflow: None,
                last_seq: 0
            }
        );
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"message","text":"hi","client_id":"c1"}"#).unwrap();
        assert!(matches!(f, ClientFrame::Message { .. }));
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"launch_missiles"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"message"}"#).is_err());
    }

    #[test]
    fn server_frames_carry_their_type() {
        let v = serde_json::to_value(ServerFrame::MessageAck {
            client_id: "c".into(),
            seq: 3,
        })
        .unwrap();
        assert_eq!(v["type"], "message_ack");
        assert_eq!(v["seq"], 3);
    }

    #[test]
    fn pieces_of_one_reply_join_and_nothing_else_does() {
        let delta = |turn, text: &str, restart| ServerFrame::CjDelta {
            turn,
            text: text.into(),
            restart,
        };
        let mut first = delta(4, "You had ", true);
        assert!(first.absorb(&delta(4, "64 orders", false)));
        assert_eq!(first, delta(4, "You had 64 orders", true));
        // Another turn's piece, a restart, or any other frame stays apart.
        for other in [
            delta(6, " last week", false),
            delta(4, "You had", true),
            ServerFrame::MessageAck {
                client_id: "c".into(),
                seq: 5,
            },
        ] {
            assert!(!first.absorb(&other), "{other:?}");
        }
        assert_eq!(first, delta(4, "You had 64 orders", true));
        let mut ack = ServerFrame::MessageAck {
            client_id: "c".into(),
            seq: 5,
        };
        assert!(!ack.absorb(&delta(4, "x", false)));
    }
}
