//! HTTP sessions: the identity layer of the web app.
//!
//! The session cookie holds a random token (256 bits); the store keeps only
//! its SHA-256 hash as the session id. The cookie is `HttpOnly`,
//! `SameSite=Lax`, `Path=/`, `Secure` when `HIRECJ_PUBLIC_URL` is https,
//! `Domain` from `HIRECJ_COOKIE_DOMAIN` when set, and lives 30 days. Its
//! name is `__Host-hirecj_session` on https without a cookie domain (no
//! other site, sibling subdomains included, can then plant one), else
//! `hirecj_session`. A request carrying two different session cookies is
//! refused rather than guessed at.
//!
//! A visitor's session starts short-lived ([`VISITOR_TTL`]): a client that
//! never opens the chat leaves a row that expires within minutes. Opening
//! the chat's WebSocket is its first use, which extends it to
//! [`SESSION_TTL`].
//!
//! Extractors: [`CurrentSession`] (the live session, if any) and
//! [`RequireUser`] (a session that belongs to a merchant, else 401).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use chrono::Utc;
use cookie::time::Duration as CookieDuration;
use cookie::{Cookie, SameSite};
use hirecj_domain::{Secret, UserId, WebSession};
use hirecj_store::{Store, StoreError};

use crate::app::AppState;
use crate::config::Settings;
use crate::error::AppError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "hirecj_session";
/// The session cookie's name on https without `HIRECJ_COOKIE_DOMAIN`.
pub const HOST_SESSION_COOKIE: &str = "__Host-hirecj_session";
/// How long a visitor's session lives until its first use.
pub const VISITOR_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// The cookie that binds a pending Shopify install to the browser.
pub const OAUTH_STATE_COOKIE: &str = "hirecj_oauth_state";
/// The path the OAuth state cookie is sent to.
pub const OAUTH_STATE_PATH: &str = "/api/v1/shopify";
/// How long a session lives.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::days(30);
/// How long a pending install (and its cookie) lives.
pub const OAUTH_STATE_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// Cookie values longer than this are not looked up (tokens are 43 chars).
const MAX_TOKEN_LEN: usize = 128;

/// How cookies are written, from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookiePolicy {
    /// `Secure` attribute: the public URL is https.
    pub secure: bool,
    /// `Domain` attribute of the session cookie.
    pub domain: Option<String>,
}

impl CookiePolicy {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            secure: settings.public_url.scheme() == "https",
            domain: settings.cookie_domain.clone(),
        }
    }

    fn header(cookie: &Cookie<'_>) -> HeaderValue {
        // Names, tokens (base64url), hex states, paths and validated domains
        // are all visible ASCII, so this cannot fail; fall back to nothing.
        HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The session cookie's name under this policy.
    pub fn session_name(&self) -> &'static str {
        if self.secure && self.domain.is_none() {
            HOST_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    fn session_cookie<'a>(&self, value: &'a str, max_age: CookieDuration) -> Cookie<'a> {
        let mut builder = Cookie::build((self.session_name(), value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
            .max_age(max_age);
        if let Some(domain) = &self.domain {
            builder = builder.domain(domain.clone());
        }
        builder.build()
    }

    /// `Set-Cookie` for a new session token.
    pub fn set_session(&self, token: &Secret) -> HeaderValue {
        Self::header(&self.session_cookie(
            token.expose(),
            CookieDuration::seconds(SESSION_TTL.num_seconds()),
        ))
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear_session(&self) -> HeaderValue {
        Self::header(&self.session_cookie("", CookieDuration::ZERO))
    }

    fn state_cookie<'a>(&self, value: &'a str, max_age: CookieDuration) -> Cookie<'a> {
        Cookie::build((OAUTH_STATE_COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path(OAUTH_STATE_PATH)
            .secure(self.secure)
            .max_age(max_age)
            .build()
    }

    /// `Set-Cookie` binding an OAuth `state` to this browser for 10 minutes.
    pub fn set_oauth_state(&self, state: &str) -> HeaderValue {
        Self::header(&self.state_cookie(
            state,
            CookieDuration::seconds(OAUTH_STATE_TTL.num_seconds()),
        ))
    }

    /// `Set-Cookie` that removes the OAuth state cookie.
    pub fn clear_oauth_state(&self) -> HeaderValue {
        Self::header(&self.state_cookie("", CookieDuration::ZERO))
    }
}

/// Every value of cookie `name` in the request (a browser may send two
/// cookies of one name, e.g. a host-only and a domain one).
pub fn cookie_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()))
        .filter_map(Result::ok)
        .filter(|c| c.name() == name && !c.value().is_empty())
        .map(|c| c.value().to_owned())
        .collect()
}

/// Why the request's session could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SessionLookupError {
    #[error(
        "this request carries two different session cookies; clear this site's cookies and sign in again"
    )]
    Ambiguous,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SessionLookupError> for AppError {
    fn from(e: SessionLookupError) -> Self {
        match e {
            SessionLookupError::Ambiguous => Self::BadRequest(e.to_string()),
            SessionLookupError::Store(e) => Self::Store(e),
        }
    }
}

/// The live session named by the request's session cookie (`name`), if
/// any. Two different values of it are refused: a cookie planted for a
/// parent domain must not decide who the browser is.
pub async fn session_from_headers(
    store: &Store,
    name: &str,
    headers: &HeaderMap,
) -> Result<Option<WebSession>, SessionLookupError> {
    let mut tokens = cookie_values(headers, name);
    tokens.sort_unstable();
    tokens.dedup();
    match tokens.as_slice() {
        [] => Ok(None),
        [token] if token.len() <= MAX_TOKEN_LEN => Ok(store.session_by_token(token).await?),
        [_] => Ok(None),
        _ => {
            tracing::warn!("a request with two different session cookies was refused");
            Err(SessionLookupError::Ambiguous)
        }
    }
}

/// The live session of a request made to the app with these settings.
pub async fn request_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<WebSession>, SessionLookupError> {
    let policy = CookiePolicy::from_settings(&state.settings);
    session_from_headers(&state.store, policy.session_name(), headers).await
}

/// Starts a session (anonymous when `user` is `None`) and returns it with
/// the `Set-Cookie` header that hands its token to the browser. A
/// visitor's session lives [`VISITOR_TTL`] until its first use
/// ([`first_use`]); a merchant's lives [`SESSION_TTL`].
pub async fn start_session(
    store: &Store,
    policy: &CookiePolicy,
    user: Option<&UserId>,
) -> Result<(WebSession, HeaderValue), StoreError> {
    let ttl = if user.is_some() {
        SESSION_TTL
    } else {
        VISITOR_TTL
    };
    let (token, session) = store.create_session(user, Utc::now() + ttl).await?;
    tracing::debug!(user = user.map(UserId::as_str), "started a session");
    Ok((session, policy.set_session(&token)))
}

/// How often each replica asks the database for sessions signed out
/// elsewhere (only while it has chat sockets open).
pub const REVOCATION_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Sessions that ended (signed out), for the chat sockets open on them: a
/// sign-out on this replica reaches them at once, one on another replica
/// within [`REVOCATION_POLL`] ([`SessionEvents::follow_store`]).
#[derive(Debug, Clone)]
pub struct SessionEvents {
    ended: tokio::sync::broadcast::Sender<std::sync::Arc<str>>,
}

impl Default for SessionEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionEvents {
    pub fn new() -> Self {
        let (ended, _) = tokio::sync::broadcast::channel(1024);
        Self { ended }
    }

    /// Session `id` has ended.
    pub fn ended(&self, id: &str) {
        let _ = self.ended.send(std::sync::Arc::from(id));
    }

    /// Ids of sessions as they end. A receiver that lags must check its own
    /// session in the store.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<str>> {
        self.ended.subscribe()
    }

    /// Announces sessions revoked on any replica until `shutdown`.
    pub async fn follow_store(self, store: Store, shutdown: tokio_util::sync::CancellationToken) {
        // Revocations are stamped by the replica that made them: look back
        // a little further than the last poll to allow for clock skew.
        const OVERLAP: chrono::Duration = chrono::Duration::seconds(5);
        let mut since = Utc::now();
        let mut tick = tokio::time::interval(REVOCATION_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = Utc::now();
            if self.ended.receiver_count() == 0 {
                since = now;
                continue;
            }
            match store.sessions_revoked_since(since - OVERLAP).await {
                Ok(ids) => {
                    for id in ids {
                        self.ended(&id);
                    }
                    since = now;
                }
                Err(e) => tracing::warn!(error = %e, "could not read signed-out sessions"),
            }
        }
    }
}

/// Marks a session used (the chat opened): a visitor's short-lived session
/// now lives [`SESSION_TTL`]. Returns the session as it now is.
pub async fn first_use(store: &Store, mut session: WebSession) -> Result<WebSession, StoreError> {
    let full = Utc::now() + SESSION_TTL;
    let short_lived = session.expires_at <= session.created_at + VISITOR_TTL;
    if session.user_id.is_none() && short_lived {
        store.extend_session(&session.id, full).await?;
        session.expires_at = full;
    }
    Ok(session)
}

/// The browser's live session, if it has one.
#[derive(Debug, Clone)]
pub struct CurrentSession(pub Option<WebSession>);

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(request_session(state, &parts.headers).await?))
    }
}

/// A session that belongs to a merchant; 401 otherwise.
#[derive(Debug, Clone)]
pub struct RequireUser {
    pub user_id: UserId,
}

impl FromRequestParts<AppState> for RequireUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = request_session(state, &parts.headers)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let user_id = session.user_id.ok_or(AppError::Unauthorized)?;
        Ok(Self { user_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_attributes() {
        let plain = CookiePolicy {
            secure: false,
            domain: None,
        };
        let c = plain.set_session(&Secret::new("tok"));
        let c = c.to_str().unwrap_or_default();
        assert!(c.starts_with("hirecj_session=tok"), "{c}");
        for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(!c.contains("Secure") && !c.contains("Domain"), "{c}");

        let https = CookiePolicy {
            secure: true,
            domain: Some(".example.com".into()),
        };
        let c = https.set_session(&Secret::new("tok"));
        let c = c.to_str().unwrap_or_default();
        assert!(
            c.contains("Secure") && c.contains("Domain=example.com"),
            "{c}"
        );

        let s = https.set_oauth_state("abc");
        let s = s.to_str().unwrap_or_default();
        assert!(s.contains("hirecj_oauth_state=abc") && s.contains("Path=/api/v1/shopify"));
        assert!(s.contains("Max-Age=600") && s.contains("Secure") && !s.contains("Domain"));
        let cleared = plain.clear_oauth_state();
        assert!(cleared.to_str().unwrap_or_default().contains("Max-Age=0"));
    }

    #[test]
    fn the_host_prefix_on_https_without_a_cookie_domain() {
        let host = CookiePolicy {
            secure: true,
            domain: None,
        };
        assert_eq!(host.session_name(), HOST_SESSION_COOKIE);
        let c = host.set_session(&Secret::new("tok"));
        let c = c.to_str().unwrap_or_default();
        assert!(c.starts_with("__Host-hirecj_session=tok"), "{c}");
        assert!(c.contains("Secure") && c.contains("Path=/") && !c.contains("Domain"));
        let shared = CookiePolicy {
            secure: true,
            domain: Some(".example.com".into()),
        };
        assert_eq!(shared.session_name(), SESSION_COOKIE);
    }

    #[test]
    fn reads_cookie_values() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; hirecj_session=x; b=2"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("hirecj_session=y"));
        assert_eq!(cookie_values(&h, SESSION_COOKIE), vec!["x", "y"]);
        assert!(cookie_values(&h, "missing").is_empty());
    }
}
