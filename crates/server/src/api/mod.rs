//! The JSON API under `/api/v1` (described by `/api/openapi.json`):
//! who is signed in, sign-out, the workflow list, and a merchant's history
//! (conversations, transcripts, exports, profile, remembered facts).
//!
//! Errors are [`AppError`] bodies `{"error": {"code", "message"}}`: 401
//! without a signed-in merchant, 403 for another merchant's data, 404 for
//! what does not exist (or is not theirs), 400 for malformed ids or
//! parameters. Checks run in that order: 401, 400, 403, 404.

mod history;
mod me;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use hirecj_domain::UserId;

use crate::app::AppState;
use crate::error::AppError;

pub use history::{TranscriptMessage, conversation_title, owned_conversation};
pub use me::{Me, me_for};

/// The API's OpenAPI 3.1 description, served at `/api/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// The JSON API routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/me", get(me::me))
        .route("/api/v1/auth/logout", post(me::logout))
        .route("/api/v1/workflows", get(me::workflows))
        .route(
            "/api/v1/users/{user_id}/conversations",
            get(history::list_conversations),
        )
        .route(
            "/api/v1/users/{user_id}/conversations/{conversation_id}",
            get(history::conversation_detail),
        )
        .route(
            "/api/v1/users/{user_id}/conversations/{conversation_id}/export",
            get(history::export_conversation),
        )
        .route("/api/v1/users/{user_id}/profile", get(history::profile))
        .route(
            "/api/v1/users/{user_id}/store",
            get(history::store_freshness),
        )
        .route(
            "/api/v1/users/{user_id}/facts",
            get(history::list_facts).post(history::add_fact),
        )
        .route(
            "/api/v1/users/{user_id}/facts/{fact_id}",
            delete(history::delete_fact),
        )
}

async fn openapi() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        OPENAPI_JSON,
    )
        .into_response()
}

/// The merchant named in the path, if it is the signed-in one: 400 for a
/// malformed id, 403 for someone else.
pub(crate) fn same_user(signed_in: &UserId, requested: &str) -> Result<(), AppError> {
    let requested: UserId = requested
        .parse()
        .map_err(|e: hirecj_domain::InvalidId| AppError::BadRequest(e.to_string()))?;
    if &requested == signed_in {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// Refuses (403) a state-changing request that a browser sent from another
/// origin. The session cookie's `SameSite=Lax` keeps it off cross-site POSTs
/// and DELETEs, but not off those from a sibling subdomain (same site, other
/// origin), and a cross-site form POST to sign-out would still clear the
/// cookie. Browsers send `Origin` on every POST and DELETE; a request without
/// one (curl, a script) carries no ambient browser credentials to abuse.
pub(crate) fn same_origin(headers: &HeaderMap, public: &url::Url) -> Result<(), AppError> {
    if crate::chat::ws::origin_allowed(headers, public) {
        Ok(())
    } else {
        tracing::warn!("state-changing request from a foreign origin refused");
        Err(AppError::Forbidden)
    }
}

/// `Cache-Control: no-store`: per-merchant answers are never cached.
pub(crate) const NO_STORE: (header::HeaderName, HeaderValue) =
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
