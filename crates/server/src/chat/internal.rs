//! `POST /api/v1/internal/session/initiate`: the post-OAuth step as an
//! internal API, for deployments that split the auth part from the agent
//! part. A thin adapter over [`ChatService::prepare_post_oauth`], the same
//! code the OAuth callback runs. Bearer `HIRECJ_INTERNAL_TOKEN`; 401 without
//! it (and always 401 when no token is configured).
//!
//! A visitor's conversation is linked to the merchant only under the same
//! check as the OAuth callback: `session_token` (the browser's session
//! cookie, as the auth part saw it) must name the session that started the
//! conversation. Someone else's conversation is refused with 403.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use hirecj_domain::{ConversationId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;

use crate::app::AppState;
use crate::chat::Link;
use crate::error::{AppError, AppResult};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitiateRequest {
    pub shop_domain: String,
    #[serde(default)]
    pub is_new: bool,
    #[serde(default)]
    pub conversation_id: Option<ConversationId>,
    pub user_id: UserId,
    /// The browser's session cookie value, to link its visitor conversation.
    #[serde(default)]
    pub session_token: Option<String>,
}

fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(expected) = &state.settings.internal_token else {
        return false;
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    given.as_bytes().ct_eq(expected.expose().as_bytes()).into()
}

pub async fn initiate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<InitiateRequest>, axum::extract::rejection::JsonRejection>,
) -> AppResult<Json<Value>> {
    if !authorized(&state, &headers) {
        return Err(AppError::Unauthorized);
    }
    let Json(req) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let user = state
        .store
        .user(&req.user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    if !user
        .shop_domain
        .eq_ignore_ascii_case(req.shop_domain.trim())
    {
        return Err(AppError::BadRequest(
            "shop_domain does not belong to user_id".into(),
        ));
    }
    let conversation = match req.conversation_id {
        None => None,
        Some(id) => {
            let session = match req.session_token.as_deref() {
                Some(token) if token.len() <= 128 => state.store.session_by_token(token).await?,
                _ => None,
            };
            match state
                .chat
                .link_conversation(id, session.as_ref().map(|s| s.id.as_str()), &user.id)
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?
            {
                Link::Owned => Some(id),
                Link::Missing => None,
                Link::Refused => return Err(AppError::Forbidden),
            }
        }
    };
    let conversation_id = state
        .chat
        .prepare_post_oauth(&user, conversation)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let messages = state.store.messages(conversation_id, 0).await?;
    let prepared = messages
        .last()
        .is_some_and(|m| m.role == hirecj_domain::Role::Cj);
    tracing::info!(%conversation_id, user_id = %user.id, is_new = req.is_new, prepared, "session initiated");
    Ok(Json(json!({
        "conversation_id": conversation_id,
        "user_id": user.id,
        "prepared": prepared,
    })))
}
