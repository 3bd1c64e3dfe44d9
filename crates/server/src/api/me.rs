//! `GET /api/v1/me`, `POST /api/v1/auth/logout` and `GET /api/v1/workflows`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hirecj_domain::{IntegrationStatus, WebSession};
use hirecj_store::Store;
use serde::Serialize;
use serde_json::json;

use super::NO_STORE;
use crate::app::AppState;
use crate::error::AppResult;
use crate::session::{CookiePolicy, CurrentSession, start_session};

/// Who the browser is, as the page needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Me {
    /// The merchant (`usr_…`), or `null` for a visitor.
    pub user_id: Option<String>,
    pub shop_domain: Option<String>,
    /// The merchant's Shopify store is connected (an active integration).
    pub store_connected: bool,
    /// Shopify refused the store's access: the merchant must reconnect.
    pub needs_reconnect: bool,
    /// The debug panel is available.
    pub debug: bool,
}

/// What `session` (if any) says about the browser.
pub async fn me_for(store: &Store, session: Option<&WebSession>, debug: bool) -> AppResult<Me> {
    let Some(user_id) = session.and_then(|s| s.user_id.as_ref()) else {
        return Ok(Me {
            user_id: None,
            shop_domain: None,
            store_connected: false,
            needs_reconnect: false,
            debug,
        });
    };
    let user = store.user(user_id).await?;
    let status = store
        .integration_for_user(user_id, crate::shopify::PROVIDER)
        .await?
        .map(|i| i.status);
    Ok(Me {
        user_id: Some(user_id.to_string()),
        shop_domain: user.map(|u| u.shop_domain),
        store_connected: status == Some(IntegrationStatus::Active),
        needs_reconnect: status == Some(IntegrationStatus::NeedsReconnect),
        debug,
    })
}

/// `GET /api/v1/me`: who is signed in. A browser without a live session
/// gets an anonymous one (cookie set here), so the chat page can open the
/// WebSocket and a visitor's conversation survives a reload.
pub async fn me(
    State(state): State<AppState>,
    CurrentSession(current): CurrentSession,
) -> AppResult<Response> {
    let mut set_cookie = None;
    let session = match current {
        Some(s) => s,
        None => {
            let policy = CookiePolicy::from_settings(&state.settings);
            let (session, cookie) = start_session(&state.store, &policy, None).await?;
            set_cookie = Some(cookie);
            session
        }
    };
    let me = me_for(&state.store, Some(&session), state.settings.debug).await?;
    let mut response = ([NO_STORE], Json(me)).into_response();
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// `POST /api/v1/auth/logout`: revokes the session on the server and clears
/// the cookie. Idempotent: without a session it only clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentSession(current): CurrentSession,
) -> AppResult<Response> {
    super::same_origin(&headers, &state.settings.public_url)?;
    if let Some(session) = current {
        state.store.revoke_session(&session.id).await?;
        state.sessions.ended(&session.id);
        tracing::info!(
            user = session.user_id.as_ref().map(|u| u.as_str()),
            "signed out"
        );
    }
    let policy = CookiePolicy::from_settings(&state.settings);
    let mut response = (
        StatusCode::OK,
        [NO_STORE],
        Json(json!({"signed_out": true})),
    )
        .into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, policy.clear_session());
    Ok(response)
}

/// `GET /api/v1/workflows`: every workflow with its description,
/// requirements and initiator, by name.
pub async fn workflows(State(state): State<AppState>) -> Response {
    let mut workflows = state.chat.catalog().summaries();
    workflows.sort_by(|a, b| a.name.cmp(&b.name));
    Json(json!({ "workflows": workflows })).into_response()
}
