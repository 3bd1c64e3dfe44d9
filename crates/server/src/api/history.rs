//! A merchant's history: conversations (paginated, newest first), full
//! transcripts, exports (JSON, Markdown), the profile, and the facts CJ
//! remembers (listed and deletable).

use std::fmt::Write as _;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hirecj_domain::mirror::ShopTimeZone;
use hirecj_domain::{
    Conversation, ConversationId, FactId, IntegrationStatus, Message, MessageStatus, Role, UserId,
};
use hirecj_store::Store;
use serde::Serialize;
use serde_json::{Value, json};

use super::{NO_STORE, same_user};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::session::RequireUser;
use hirecj_agent::workflow::Catalog;

/// Default and largest page sizes of the conversation list.
pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;
/// Offsets beyond this are refused (nobody pages that far; it bounds the query).
pub const MAX_OFFSET: i64 = 1_000_000;

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn int_param(
    pairs: &[(String, String)],
    name: &str,
    default: i64,
    min: i64,
    max: i64,
) -> AppResult<i64> {
    match pairs.iter().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                AppError::BadRequest(format!("{name} must be a whole number from {min} to {max}"))
            }),
    }
}

fn parse_conversation_id(s: &str) -> AppResult<ConversationId> {
    s.parse()
        .map_err(|e: hirecj_domain::InvalidId| AppError::BadRequest(e.to_string()))
}

/// A human title for a conversation: its stored title, else its
/// workflow's title (from the workflow's YAML).
pub fn conversation_title(catalog: &Catalog, title: Option<&str>, workflow: &str) -> String {
    if let Some(t) = title.map(str::trim).filter(|t| !t.is_empty()) {
        return t.to_owned();
    }
    match catalog.workflow(workflow) {
        Some(w) => w.title.clone(),
        // A workflow this build no longer has (an old conversation).
        None => "Conversation".to_owned(),
    }
}

/// One message of a transcript, as the API and the pages show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TranscriptMessage {
    pub seq: i64,
    pub role: Role,
    pub content: String,
    /// Sanitized HTML of the markdown (UI elements as empty slots).
    pub html: String,
    pub ui_elements: Value,
    pub status: MessageStatus,
    pub created_at: DateTime<Utc>,
}

impl TranscriptMessage {
    pub fn from_message(m: &Message) -> Self {
        Self {
            seq: m.seq,
            role: m.role,
            content: m.content.clone(),
            html: crate::chat::render::markdown_to_html(&m.content, &m.ui_elements),
            ui_elements: m.ui_elements.clone(),
            status: m.status,
            created_at: m.created_at,
        }
    }
}

/// The conversation `id` if it belongs to `user`; 404 otherwise (another
/// merchant's conversation is not revealed to exist).
pub async fn owned_conversation(
    store: &Store,
    user: &UserId,
    id: ConversationId,
) -> AppResult<Conversation> {
    match store.conversation(id).await? {
        Some(c) if c.user_id.as_ref() == Some(user) => Ok(c),
        _ => Err(AppError::NotFound("conversation")),
    }
}

fn conversation_json(catalog: &Catalog, c: &Conversation, messages: &[TranscriptMessage]) -> Value {
    json!({
        "id": c.id,
        "workflow": c.workflow,
        "title": conversation_title(catalog, c.title.as_deref(), &c.workflow),
        "started_at": c.started_at,
        "updated_at": c.updated_at,
        "ended_at": c.ended_at,
        "last_seq": c.last_seq,
        "message_count": messages.len(),
        "messages": messages,
    })
}

/// `GET /api/v1/users/{user_id}/conversations?limit=&offset=`
pub async fn list_conversations(
    State(state): State<AppState>,
    RequireUser { user_id, .. }: RequireUser,
    Path(requested): Path<String>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    same_user(&user_id, &requested)?;
    let pairs = query_pairs(raw.as_deref());
    let limit = int_param(&pairs, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let offset = int_param(&pairs, "offset", 0, 0, MAX_OFFSET)?;
    let page = state
        .store
        .conversations_for_user(&user_id, limit, offset)
        .await?;
    let catalog = state.chat.catalog();
    let conversations: Vec<Value> = page
        .items
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "workflow": c.workflow,
                "title": conversation_title(catalog, c.title.as_deref(), &c.workflow),
                "started_at": c.started_at,
                "updated_at": c.updated_at,
                "ended_at": c.ended_at,
                "message_count": c.message_count,
            })
        })
        .collect();
    Ok((
        [NO_STORE],
        Json(json!({
            "conversations": conversations,
            "total": page.total,
            "limit": limit,
            "offset": offset,
        })),
    )
        .into_response())
}

/// `GET /api/v1/users/{user_id}/conversations/{conversation_id}`: the
/// conversation with every message (system events included, marked by role).
pub async fn conversation_detail(
    State(state): State<AppState>,
    RequireUser { user_id, .. }: RequireUser,
    Path((requested, conversation)): Path<(String, String)>,
) -> AppResult<Response> {
    same_user(&user_id, &requested)?;
    let id = parse_conversation_id(&conversation)?;
    let c = owned_conversation(&state.store, &user_id, id).await?;
    let messages: Vec<TranscriptMessage> = state
        .store
        .messages(id, 0)
        .await?
        .iter()
        .map(TranscriptMessage::from_message)
        .collect();
    Ok((
        [NO_STORE],
        Json(conversation_json(state.chat.catalog(), &c, &messages)),
    )
        .into_response())
}

/// Replaces UI placeholders (`__OAUTH_BUTTON_1__`) by a readable note, and
/// a chart's by its numbers as a table.
fn strip_placeholders(content: &str, ui_elements: &Value) -> String {
    let mut text = content.to_owned();
    for e in ui_elements.as_array().into_iter().flatten() {
        let Some(id) = e.get("id").and_then(Value::as_str) else {
            continue;
        };
        let note = match e.get("type").and_then(Value::as_str) {
            Some("oauth_button") => format!("_{}_", crate::chat::render::CONNECT_BUTTON_NOTE),
            Some("chart") => match crate::chat::render::chart_of(ui_elements, id) {
                Some(chart) => crate::chat::chart::markdown(&chart),
                None => "_[chart]_".to_owned(),
            },
            _ => "_[interactive element]_".to_owned(),
        };
        text = text.replace(&format!("__{}__", id.to_ascii_uppercase()), &note);
    }
    text
}

/// A conversation as a readable Markdown document: a title, its dates on
/// the shop's clock, then each turn under **Merchant** or **CJ** (system
/// events are left out).
pub fn markdown_export(
    catalog: &Catalog,
    c: &Conversation,
    messages: &[Message],
    zone: ShopTimeZone,
) -> String {
    let fmt = |t: &DateTime<Utc>| zone.clock(*t);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}\n",
        conversation_title(catalog, c.title.as_deref(), &c.workflow)
    );
    let _ = writeln!(out, "- Conversation: `{}`", c.id);
    let workflow = catalog
        .workflow(&c.workflow)
        .map_or(c.workflow.as_str(), |w| w.title.as_str());
    let _ = writeln!(out, "- Workflow: {workflow}");
    let _ = writeln!(out, "- Started: {}", fmt(&c.started_at));
    match &c.ended_at {
        Some(ended) => {
            let _ = writeln!(out, "- Ended: {}", fmt(ended));
        }
        None => {
            let _ = writeln!(out, "- Last activity: {}", fmt(&c.updated_at));
        }
    }
    let _ = writeln!(out, "- Exported: {}", fmt(&Utc::now()));
    for m in messages {
        let who = match m.role {
            Role::Merchant => "Merchant",
            Role::Cj => "CJ",
            Role::System => continue,
        };
        let _ = writeln!(out, "\n---\n\n**{who}** · {}\n", fmt(&m.created_at));
        let _ = writeln!(
            out,
            "{}",
            strip_placeholders(m.content.trim_end(), &m.ui_elements)
        );
        match m.status {
            MessageStatus::Complete => {}
            MessageStatus::Stopped => out.push_str("\n_(stopped)_\n"),
            MessageStatus::Interrupted => out.push_str("\n_(interrupted)_\n"),
        }
    }
    out
}

/// `GET /api/v1/users/{user_id}/conversations/{conversation_id}/export?format=json|markdown`
pub async fn export_conversation(
    State(state): State<AppState>,
    RequireUser { user_id, .. }: RequireUser,
    Path((requested, conversation)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    same_user(&user_id, &requested)?;
    let id = parse_conversation_id(&conversation)?;
    let pairs = query_pairs(raw.as_deref());
    let format = pairs
        .iter()
        .find(|(k, _)| k == "format")
        .map_or("json", |(_, v)| v.as_str());
    let markdown = match format {
        "json" => false,
        "markdown" | "md" => true,
        _ => {
            return Err(AppError::BadRequest(
                "format must be json or markdown".to_owned(),
            ));
        }
    };
    let c = owned_conversation(&state.store, &user_id, id).await?;
    let messages = state.store.messages(id, 0).await?;
    let (body, content_type, ext) = if markdown {
        (
            markdown_export(
                state.chat.catalog(),
                &c,
                &messages,
                crate::web::shop_zone(&state, &user_id).await,
            ),
            "text/markdown; charset=utf-8",
            "md",
        )
    } else {
        let transcript: Vec<TranscriptMessage> = messages
            .iter()
            .map(TranscriptMessage::from_message)
            .collect();
        let mut doc = conversation_json(state.chat.catalog(), &c, &transcript);
        doc["exported_at"] = json!(Utc::now());
        doc["format"] = json!("hirecj.conversation.v1");
        (
            serde_json::to_string_pretty(&doc).map_err(|e| AppError::Internal(e.to_string()))?,
            "application/json",
            "json",
        )
    };
    let disposition = format!("attachment; filename=\"hirecj-conversation-{id}.{ext}\"");
    let disposition =
        HeaderValue::from_str(&disposition).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
            NO_STORE,
        ],
        body,
    )
        .into_response())
}

/// `GET /api/v1/users/{user_id}/profile`
pub async fn profile(
    State(state): State<AppState>,
    RequireUser { user_id, .. }: RequireUser,
    Path(requested): Path<String>,
) -> AppResult<Response> {
    same_user(&user_id, &requested)?;
    let user = state
        .store
        .user(&user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let stats = state.store.profile_stats(&user_id).await?;
    let store_connected = state
        .store
        .integration_for_user(&user_id, crate::shopify::PROVIDER)
        .await?
        .is_some_and(|i| i.status == IntegrationStatus::Active);
    Ok((
        [NO_STORE],
        Json(json!({
            "user_id": user.id,
            "shop_domain": user.shop_domain,
            "email": user.email,
            "name": user.name,
            "created_at": user.created_at,
            "last_seen": user.last_seen_at,
            "store_connected": store_connected,
            "stats": stats,
        })),
    )
        .into_response())
}

/// `GET /api/v1/users/{user_id}/store`: how fresh CJ's copy of the
/// merchant's store is (the mirror's backfill, last event, last
/// reconcile).
pub async fn store_freshness(
    State(state): State<AppState>,
    RequireUser { user_id, .. }: RequireUser,
    Path(requested): Path<String>,
) -> AppResult<Response> {
    same_user(&user_id, &requested)?;
    let user = state
        .store
        .user(&user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let connected = state
        .store
        .integration_for_user(&user_id, crate::shopify::PROVIDER)
        .await?
        .is_some_and(|i| i.status == IntegrationStatus::Active);
    let mirror = state.mirror.sync(&user.shop_domain).await?.map(|s| {
        json!({
            "backfill": s.state.as_str(),
            "orders_mirrored": s.orders_mirrored,
            "objects_mirrored": s.objects_mirrored,
            "backfill_started_at": s.started_at,
            "backfill_completed_at": s.completed_at,
            "covers_since": s.covers_since,
            "last_event_at": s.last_event_at,
            "last_reconcile_at": s.last_reconcile_at,
            "time_zone": s.time_zone.name(),
            "currency": s.currency,
        })
    });
    Ok((
        [NO_STORE],
        Json(json!({
            "shop_domain": user.shop_domain,
            "store_connected": connected,
            "mirror": mirror,
        })),
    )
        .into_response())
}

/// `GET /api/v1/users/{user_id}/facts`: what CJ remembers, oldest first.
pub async fn list_facts(
    State(state): State<AppState>,
    RequireUser { user_id, .. }: RequireUser,
    Path(requested): Path<String>,
) -> AppResult<Response> {
    same_user(&user_id, &requested)?;
    let facts: Vec<Value> = state
        .store
        .facts(&user_id)
        .await?
        .into_iter()
        .map(|f| {
            json!({
                "id": f.id,
                "text": f.text,
                "source_conversation_id": f.source_conversation_id,
                "created_at": f.created_at,
            })
        })
        .collect();
    Ok(([NO_STORE], Json(json!({ "facts": facts }))).into_response())
}

/// A fact the merchant asks CJ to remember: again, after Forget (Undo).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFact {
    text: String,
    /// The conversation it came from, kept when it is the merchant's own.
    #[serde(default)]
    source_conversation_id: Option<String>,
}

/// `POST /api/v1/users/{user_id}/facts`: 201 with the fact; 200 with
/// `already_known` when CJ remembers it already.
pub async fn add_fact(
    State(state): State<AppState>,
    headers: HeaderMap,
    RequireUser { user_id, .. }: RequireUser,
    Path(requested): Path<String>,
    body: Result<Json<NewFact>, axum::extract::rejection::JsonRejection>,
) -> AppResult<Response> {
    use hirecj_agent::memory::{MAX_FACT_CHARS, MIN_FACT_CHARS};
    same_user(&user_id, &requested)?;
    super::same_origin(&headers, &state.settings.public_url)?;
    let Json(new) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let text = new.text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !(MIN_FACT_CHARS..=MAX_FACT_CHARS).contains(&text.chars().count()) {
        return Err(AppError::BadRequest(format!(
            "a fact is {MIN_FACT_CHARS} to {MAX_FACT_CHARS} characters"
        )));
    }
    let mut source = None;
    if let Some(id) = new
        .source_conversation_id
        .as_deref()
        .and_then(|s| s.parse::<ConversationId>().ok())
        && let Some(c) = state.store.conversation(id).await?
        && c.user_id.as_ref() == Some(&user_id)
    {
        source = Some(id);
    }
    match state.store.add_fact(&user_id, &text, source).await? {
        Some(f) => {
            tracing::info!(user = %user_id, fact = %f.id, "fact remembered at the merchant's request");
            Ok((
                StatusCode::CREATED,
                [NO_STORE],
                Json(json!({
                    "id": f.id,
                    "text": f.text,
                    "source_conversation_id": f.source_conversation_id,
                    "created_at": f.created_at,
                })),
            )
                .into_response())
        }
        None => Ok(([NO_STORE], Json(json!({ "already_known": true }))).into_response()),
    }
}

/// `DELETE /api/v1/users/{user_id}/facts/{fact_id}`: 204, or 404 when the
/// merchant has no such fact.
pub async fn delete_fact(
    State(state): State<AppState>,
    headers: HeaderMap,
    RequireUser { user_id, .. }: RequireUser,
    Path((requested, fact)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    same_user(&user_id, &requested)?;
    super::same_origin(&headers, &state.settings.public_url)?;
    let id: FactId = fact
        .parse()
        .map_err(|e: hirecj_domain::InvalidId| AppError::BadRequest(e.to_string()))?;
    if state.store.delete_fact(&user_id, id).await? {
        tracing::info!(user = %user_id, fact = %id, "fact forgotten");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound("fact"))
    }
}
