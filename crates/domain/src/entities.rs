//! The records HireCJ keeps. The store persists them; everything else reads
//! and builds them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ConversationId, FactId, Secret, UserId};

/// A merchant, identified by their shop: one shop, one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub shop_domain: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// What a user's conversation history adds up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileStats {
    pub total_conversations: i64,
    pub total_messages: i64,
    pub first_conversation_at: Option<DateTime<Utc>>,
    pub last_conversation_at: Option<DateTime<Utc>>,
}

/// A browser's session. The cookie holds a random token; only its hash is
/// stored, as `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebSession {
    pub id: String,
    pub user_id: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// A pending Shopify install: single use, short lived, bound to the browser
/// session that started it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthState {
    pub shop_domain: String,
    pub conversation_id: Option<ConversationId>,
    pub session_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Where a merchant's connection to a provider stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    Active,
    /// The provider refused the token (HTTP 401): the merchant must reconnect.
    NeedsReconnect,
    Uninstalled,
}

impl IntegrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::NeedsReconnect => "needs_reconnect",
            Self::Uninstalled => "uninstalled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "needs_reconnect" => Some(Self::NeedsReconnect),
            "uninstalled" => Some(Self::Uninstalled),
            _ => None,
        }
    }
}

/// A merchant's connected store. Tokens are decrypted only when read.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    pub user_id: UserId,
    pub provider: String,
    pub shop_domain: String,
    pub access_token: Option<Secret>,
    pub refresh_token: Option<Secret>,
    pub scopes: String,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub status: IntegrationStatus,
    pub installed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The tokens an install or a refresh produced.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIntegration {
    pub user_id: UserId,
    pub provider: String,
    pub shop_domain: String,
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub scopes: String,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

/// A conversation: who owns it, which workflow it is in, and how far its
/// messages go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub user_id: Option<UserId>,
    pub session_id: Option<String>,
    pub workflow: String,
    pub title: Option<String>,
    /// Conversation state the agent keeps between turns (e.g. whether the
    /// workflow's first action already ran).
    pub state: Value,
    /// The sequence number of the newest message (0 when empty).
    pub last_seq: i64,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The rolling summary of the messages up to `summary_through`, which
    /// the model gets in their place (a long conversation's context is
    /// bounded). `None` until the conversation outgrows the budget.
    pub summary: Option<String>,
    /// The sequence number of the last message the summary covers (0:
    /// none).
    pub summary_through: i64,
}

/// One line of a user's conversation list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub id: ConversationId,
    pub workflow: String,
    pub title: Option<String>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub message_count: i64,
}

/// A page of results with the total it was cut from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Merchant,
    Cj,
    /// An event from the system (e.g. "the store was connected"), shown to CJ.
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merchant => "merchant",
            Self::Cj => "cj",
            Self::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "merchant" => Some(Self::Merchant),
            "cj" => Some(Self::Cj),
            "system" => Some(Self::System),
            _ => None,
        }
    }
}

/// Whether a message was said in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Complete,
    /// The merchant pressed Stop; the text is what was said until then.
    Stopped,
    /// The server stopped in the middle of the turn.
    Interrupted,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Stopped => "stopped",
            Self::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "complete" => Some(Self::Complete),
            "stopped" => Some(Self::Stopped),
            "interrupted" => Some(Self::Interrupted),
            _ => None,
        }
    }
}

/// One message of a conversation, numbered by `seq` (1, 2, 3, … per
/// conversation, never reused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub conversation_id: ConversationId,
    pub seq: i64,
    pub role: Role,
    pub content: String,
    pub ui_elements: Value,
    pub status: MessageStatus,
    /// The id the client gave a merchant message, so a resend is not stored twice.
    pub client_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A message about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub role: Role,
    pub content: String,
    pub ui_elements: Value,
    pub status: MessageStatus,
    pub client_id: Option<String>,
}

impl NewMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            ui_elements: Value::Array(Vec::new()),
            status: MessageStatus::Complete,
            client_id: None,
        }
    }
}

/// Something that happened, for audit and analytics (`oauth_complete`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    pub user_id: Option<UserId>,
    pub conversation_id: Option<ConversationId>,
    pub kind: String,
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

/// How two statements of one fact are recognised as the same (the store
/// deduplicates on it, fact extraction skips what is known by it): case,
/// runs of whitespace and punctuation at the ends do not matter.
pub fn normalize_fact(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_lowercase()
}

/// A durable fact a merchant told CJ about their business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub id: FactId,
    pub user_id: UserId,
    pub text: String,
    pub source_conversation_id: Option<ConversationId>,
    pub created_at: DateTime<Utc>,
}

/// What CJ did on one turn: model, prompt, tool calls, tokens, timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnTrace {
    pub conversation_id: ConversationId,
    pub turn: i64,
    pub data: Value,
    pub created_at: DateTime<Utc>,
}
