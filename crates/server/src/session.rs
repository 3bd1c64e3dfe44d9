//! HTTP sessions: the identity layer of the web app.
//!
//! The `hirecj_session` cookie holds a random token (256 bits); the store
//! keeps only its SHA-256 hash as the session id. The cookie is `HttpOnly`,
//! `SameSite=Lax`, `Path=/`, `Secure` when `HIRECJ_PUBLIC_URL` is https,
//! `Domain` from `HIRECJ_COOKIE_DOMAIN` when set, and lives 30 days.
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

    fn session_cookie<'a>(&self, value: &'a str, max_age: CookieDuration) -> Cookie<'a> {
        let mut builder = Cookie::build((SESSION_COOKIE, value))
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

/// The live session named by the request's session cookie, if any.
pub async fn session_from_headers(
    store: &Store,
    headers: &HeaderMap,
) -> Result<Option<WebSession>, StoreError> {
    for token in cookie_values(headers, SESSION_COOKIE).iter().take(3) {
        if token.len() > MAX_TOKEN_LEN {
            continue;
        }
        if let Some(session) = store.session_by_token(token).await? {
            return Ok(Some(session));
        }
    }
    Ok(None)
}

/// Starts a session (anonymous when `user` is `None`) and returns it with
/// the `Set-Cookie` header that hands its token to the browser.
pub async fn start_session(
    store: &Store,
    policy: &CookiePolicy,
    user: Option<&UserId>,
) -> Result<(WebSession, HeaderValue), StoreError> {
    let (token, session) = store.create_session(user, Utc::now() + SESSION_TTL).await?;
    tracing::debug!(user = user.map(UserId::as_str), "started a session");
    Ok((session, policy.set_session(&token)))
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
        Ok(Self(
            session_from_headers(&state.store, &parts.headers).await?,
        ))
    }
}

/// A session that belongs to a merchant; 401 otherwise.
#[derive(Debug, Clone)]
pub struct RequireUser {
    pub user_id: UserId,
    pub session: WebSession,
}

impl FromRequestParts<AppState> for RequireUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = session_from_headers(&state.store, &parts.headers)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let user_id = session.user_id.clone().ok_or(AppError::Unauthorized)?;
        Ok(Self { user_id, session })
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
