//! The install flow: `GET /api/v1/shopify/install` and
//! `GET /api/v1/shopify/callback`.
//!
//! The callback checks, in order: the HMAC over all query parameters, the
//! timestamp (±90 s) and the shop ([`verify_callback`]); the state cookie
//! equals the query `state`; the stored state exists, is unexpired and
//! unused (and is used up now); it was started for the same shop and by the
//! same browser session. Only then is the code exchanged. Every failure
//! stores nothing and redirects to `/chat?oauth_error=<code>`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use hirecj_domain::{ConversationId, NewIntegration, OAuthState, UserId, WebSession};
use hirecj_shopify::{ShopDomain, TokenGrant, exchange_code, random_state, verify_callback};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq as _;

use super::PROVIDER;
use crate::app::AppState;
use crate::chat::Link;
use crate::error::AppError;
use crate::session::{
    CookiePolicy, CurrentSession, OAUTH_STATE_COOKIE, OAUTH_STATE_TTL, SessionLookupError,
    cookie_values, session_from_headers, start_session,
};

/// How long the callback waits for the shop's name and email.
const SHOP_IDENTITY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A 302 to `location` with extra `Set-Cookie` headers.
fn found(location: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    match HeaderValue::from_str(location) {
        Ok(v) => {
            response.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => {
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/chat"));
        }
    }
    with_cookies(response, cookies)
}

fn with_cookies(mut response: Response, cookies: Vec<HeaderValue>) -> Response {
    for c in cookies {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// 400 for a bad install request: JSON with `mode=json`, else a small page.
fn install_error(json_mode: bool, code: &'static str, message: &str) -> Response {
    tracing::info!(code, "Shopify install refused");
    if json_mode {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    } else {
        let page = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Connect Shopify</title></head>\
             <body><h1>We could not connect that store</h1><p>{}</p>\
             <p><a href=\"/chat\">Back to CJ</a></p></body></html>",
            crate::web::escape_html(message)
        );
        (StatusCode::BAD_REQUEST, Html(page)).into_response()
    }
}

/// `GET /api/v1/shopify/install?shop=…[&conversation_id=…][&mode=json]`:
/// validates the shop, makes sure the browser has a session, stores a
/// single-use state bound to that session (and to the browser by a cookie)
/// and sends the merchant to Shopify's authorize page (302, or
/// `{"redirect_url": …}` with `mode=json`).
pub async fn install(
    State(state): State<AppState>,
    CurrentSession(current): CurrentSession,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let pairs = query_pairs(raw.as_deref());
    let json_mode = first(&pairs, "mode") == Some("json");
    let shop = match ShopDomain::parse(first(&pairs, "shop").unwrap_or("")) {
        Ok(shop) => shop,
        Err(e) => return Ok(install_error(json_mode, e.code(), &e.to_string())),
    };
    let conversation_id = match first(&pairs, "conversation_id").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<ConversationId>() {
            Ok(id) => Some(id),
            Err(_) => {
                return Ok(install_error(
                    json_mode,
                    "invalid_conversation_id",
                    "the conversation id is not valid",
                ));
            }
        },
    };
    let policy = CookiePolicy::from_settings(&state.settings);
    let mut cookies = Vec::new();
    let session = match current {
        Some(session) => session,
        None => {
            let (session, cookie) = start_session(&state.store, &policy, None).await?;
            cookies.push(cookie);
            session
        }
    };
    let oauth_state = random_state();
    let now = Utc::now();
    state
        .store
        .create_oauth_state(
            &oauth_state,
            &OAuthState {
                shop_domain: shop.as_str().to_owned(),
                conversation_id,
                session_id: Some(session.id.clone()),
                created_at: now,
                expires_at: now + OAUTH_STATE_TTL,
            },
        )
        .await?;
    cookies.push(policy.set_oauth_state(&oauth_state));
    let url = state.shopify.config.authorize_url(&shop, &oauth_state);
    tracing::info!(%shop, conversation_id = conversation_id.map(|c| c.to_string()), "Shopify install started");
    if json_mode {
        Ok(with_cookies(
            Json(json!({"redirect_url": url})).into_response(),
            cookies,
        ))
    } else {
        Ok(found(&url, cookies))
    }
}

/// Why a callback was refused: a stable code for `/chat?oauth_error=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackFailure {
    /// From [`hirecj_shopify::CallbackError::code`] (`invalid_hmac`,
    /// `missing_param`, `stale_timestamp`, `access_denied`, …).
    Verify(&'static str),
    /// No state cookie, or it differs from the query `state`: the flow was
    /// started in another browser.
    StateMismatch,
    /// The state is unknown, expired or already used.
    InvalidState,
    /// The state was started for another shop.
    ShopMismatch,
    /// The state was started by another session.
    SessionMismatch,
    /// Shopify refused the code, or could not be reached.
    TokenExchange,
    /// Storing the result failed.
    Server,
}

impl CallbackFailure {
    pub fn code(self) -> &'static str {
        match self {
            Self::Verify(code) => code,
            Self::StateMismatch => "state_mismatch",
            Self::InvalidState => "invalid_state",
            Self::ShopMismatch => "shop_mismatch",
            Self::SessionMismatch => "session_mismatch",
            Self::TokenExchange => "token_exchange_failed",
            Self::Server => "server_error",
        }
    }
}

/// What a successful callback produced.
struct Installed {
    user_id: UserId,
    conversation_id: Option<ConversationId>,
    new_session_cookie: HeaderValue,
}

/// `GET /api/v1/shopify/callback`: see the module docs. Always a 302: to
/// `/chat?conversation_id=…` on success (with a fresh session cookie), to
/// `/chat?oauth_error=<code>` on any failure.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let policy = CookiePolicy::from_settings(&state.settings);
    let clear_state = policy.clear_oauth_state();
    match complete_install(&state, &policy, &headers, raw.as_deref()).await {
        Ok(done) => {
            // The store mirror is registered first, so CJ's first message
            // can say how far its reading of the store has come; the
            // backfill itself runs in the background.
            state.mirror.register(&done.user_id).await;
            // CJ's first message after the install, prepared before the
            // redirect so it is waiting when the chat opens. Within its time
            // budget; on failure the turn runs live when the chat connects.
            let prepared = match state.store.user(&done.user_id).await {
                Ok(Some(user)) => state
                    .chat
                    .prepare_post_oauth(&user, done.conversation_id)
                    .await
                    .map_err(
                        |e| tracing::warn!(error = %e, "could not prepare the post-OAuth turn"),
                    )
                    .ok(),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "could not load the merchant after install");
                    None
                }
            };
            let done = Installed {
                conversation_id: prepared.or(done.conversation_id),
                ..done
            };
            let location = match done.conversation_id {
                Some(c) => format!("/chat?conversation_id={c}"),
                None => "/chat".to_owned(),
            };
            // The webhooks that keep the mirror current are subscribed in
            // the background, then the backfill starts, so that changes
            // made while it reads are delivered: the prepared message above
            // came from a few live queries, not from the mirror.
            let mirror = state.mirror.clone();
            let user_id = done.user_id.clone();
            tokio::spawn(async move {
                mirror.subscribe(&user_id).await;
                mirror.wake();
            });
            tracing::info!(user = %done.user_id, "Shopify install complete");
            found(&location, vec![done.new_session_cookie, clear_state])
        }
        Err(failure) => {
            tracing::warn!(code = failure.code(), "Shopify install callback refused");
            found(
                &format!("/chat?oauth_error={}", failure.code()),
                vec![clear_state],
            )
        }
    }
}

async fn complete_install(
    state: &AppState,
    policy: &CookiePolicy,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<Installed, CallbackFailure> {
    let store = &state.store;
    let config = &state.shopify.config;
    let params = query_pairs(raw);
    let verified = verify_callback(&params, &config.client_secret, Utc::now().timestamp())
        .map_err(|e| {
            tracing::info!(code = e.code(), reason = %e, "Shopify callback did not verify");
            CallbackFailure::Verify(e.code())
        })?;
    let shop = verified.shop.clone();

    let cookie_matches = cookie_values(headers, OAUTH_STATE_COOKIE)
        .iter()
        .any(|c| bool::from(c.as_bytes().ct_eq(verified.state.as_bytes())));
    if !cookie_matches {
        return Err(CallbackFailure::StateMismatch);
    }
    let server_error = |what: &'static str| {
        move |e: hirecj_store::StoreError| {
            tracing::error!(%e, what, "store failure during the Shopify callback");
            CallbackFailure::Server
        }
    };
    let pending = store
        .take_oauth_state(&verified.state)
        .await
        .map_err(server_error("take_oauth_state"))?
        .ok_or(CallbackFailure::InvalidState)?;
    if pending.shop_domain != shop.as_str() {
        tracing::warn!(%shop, "the OAuth state was started for another shop");
        return Err(CallbackFailure::ShopMismatch);
    }
    // Two session cookies are as good as none: the install is refused.
    let current: Option<WebSession> =
        match session_from_headers(store, policy.session_name(), headers).await {
            Ok(current) => current,
            Err(SessionLookupError::Ambiguous) => return Err(CallbackFailure::SessionMismatch),
            Err(SessionLookupError::Store(e)) => return Err(server_error("session lookup")(e)),
        };
    let same_session = matches!(
        (&pending.session_id, &current),
        (Some(expected), Some(current)) if *expected == current.id
    );
    if !same_session {
        return Err(CallbackFailure::SessionMismatch);
    }
    let Some(old_session) = current else {
        return Err(CallbackFailure::SessionMismatch);
    };

    let grant: TokenGrant = exchange_code(&state.shopify.http, config, &shop, verified.code.expose())
        .await
        .map_err(|e| {
            tracing::warn!(%shop, code = e.code(), request_id = e.request_id(), error = %e, "Shopify code exchange failed");
            CallbackFailure::TokenExchange
        })?;

    let (name, email) = shop_identity(state, &shop, &grant).await;
    let (user, is_new) = store
        .get_or_create_user(shop.as_str(), email.as_deref(), name.as_deref())
        .await
        .map_err(server_error("get_or_create_user"))?;
    store
        .upsert_integration(&NewIntegration {
            user_id: user.id.clone(),
            provider: PROVIDER.to_owned(),
            shop_domain: shop.as_str().to_owned(),
            access_token: grant.access_token.clone(),
            refresh_token: grant.refresh_token.clone(),
            scopes: grant.scope.clone(),
            token_expires_at: grant.expires_at,
            refresh_expires_at: grant.refresh_token_expires_at,
        })
        .await
        .map_err(server_error("upsert_integration"))?;
    // A reinstall starts from a clean cache.
    if let Err(e) = hirecj_shopify::clear_shop(state.shopify.cache.as_ref(), &shop).await {
        tracing::warn!(%shop, error = %e, "could not clear the shop's cache");
    }
    let linked = link_conversation(state, pending.conversation_id, &old_session, &user.id).await;
    store
        .log_event(
            Some(&user.id),
            linked.stored,
            "oauth_complete",
            json!({"first_time": is_new, "shop": shop.as_str()}),
        )
        .await
        .map_err(server_error("log_event"))?;
    // A fresh session for the merchant: the anonymous one ends here.
    store
        .revoke_session(&old_session.id)
        .await
        .map_err(server_error("revoke_session"))?;
    state.sessions.ended(&old_session.id);
    let (_, new_session_cookie) = start_session(store, policy, Some(&user.id))
        .await
        .map_err(server_error("create_session"))?;
    tracing::info!(%shop, user = %user.id, first_time = is_new, "Shopify store connected");
    Ok(Installed {
        user_id: user.id,
        conversation_id: linked.redirect,
        new_session_cookie,
    })
}

/// The conversation an install was started from, after linking.
#[derive(Debug, Clone, Copy)]
struct Linked {
    /// Where to send the merchant (`/chat?conversation_id=…`).
    redirect: Option<ConversationId>,
    /// The stored conversation now owned by the merchant, for the event.
    stored: Option<ConversationId>,
}

/// Gives the conversation the install was started from to the merchant,
/// if it belongs to the session that started it (or to the merchant
/// already). A conversation that does not exist yet keeps its id for the
/// redirect; one that belongs to someone else is dropped.
async fn link_conversation(
    state: &AppState,
    conversation: Option<ConversationId>,
    session: &WebSession,
    user: &UserId,
) -> Linked {
    let none = Linked {
        redirect: None,
        stored: None,
    };
    let Some(id) = conversation else {
        return none;
    };
    match state
        .chat
        .link_conversation(id, Some(session.id.as_str()), user)
        .await
    {
        Ok(Link::Owned) => Linked {
            redirect: Some(id),
            stored: Some(id),
        },
        Ok(Link::Missing) => Linked {
            redirect: Some(id),
            stored: None,
        },
        Ok(Link::Refused) => none,
        Err(e) => {
            tracing::warn!(conversation = %id, error = %e, "could not link the conversation");
            none
        }
    }
}

#[derive(Deserialize)]
struct IdentityData {
    shop: Identity,
}

#[derive(Deserialize)]
struct Identity {
    name: Option<String>,
    email: Option<String>,
}

/// The shop's name and email from the Admin API, or nothing: the install
/// never fails for want of them.
async fn shop_identity(
    state: &AppState,
    shop: &ShopDomain,
    grant: &TokenGrant,
) -> (Option<String>, Option<String>) {
    let query = state.shopify.admin.query::<IdentityData>(
        shop,
        &grant.access_token,
        hirecj_shopify::queries::SHOP_IDENTITY,
        json!({}),
    );
    match tokio::time::timeout(SHOP_IDENTITY_TIMEOUT, query).await {
        Ok(Ok(data)) => (
            data.shop.name.filter(|s| !s.is_empty()),
            data.shop.email.filter(|s| !s.is_empty()),
        ),
        Ok(Err(e)) => {
            tracing::info!(%shop, code = e.code(), "could not read the shop's name and email");
            (None, None)
        }
        Err(_) => {
            tracing::info!(%shop, "reading the shop's name and email timed out");
            (None, None)
        }
    }
}
