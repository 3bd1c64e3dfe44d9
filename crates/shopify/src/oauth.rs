//! The OAuth authorization-code grant: callback verification, the random
//! `state`, the code exchange and the token refresh.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::RngCore;
use serde_json::{Value, json};

use crate::config::ShopifyConfig;
use crate::domain::{ShopDomain, ShopDomainError};
use crate::error::{ShopifyError, request_id, shorten_body};
use crate::signing;
use hirecj_domain::Secret;

/// How far the callback's `timestamp` may be from now, either direction.
pub const MAX_CLOCK_SKEW_SECS: i64 = 90;

/// A callback whose signature, timestamp and shop were checked. The `state`
/// still has to be checked against the one stored when the flow began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCallback {
    /// The shop, canonical.
    pub shop: ShopDomain,
    /// The single-use authorization code, to exchange for a token.
    pub code: Secret,
    /// The `state` Shopify echoed back.
    pub state: String,
    /// Shopify's `host` param (base64 of `admin.shopify.com/store/{name}`),
    /// when sent.
    pub host: Option<String>,
    /// The callback's `timestamp`, unix seconds.
    pub timestamp: i64,
}

/// Why a callback was refused. [`CallbackError::code`] gives the stable
/// string the app puts in `/chat?oauth_error=…`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The merchant cancelled (`error=access_denied`).
    #[error("the store owner declined to install the app")]
    AccessDenied,
    /// Shopify reported another OAuth error in `error`.
    #[error("Shopify reported an OAuth error: {0}")]
    OAuthError(String),
    /// A required parameter is absent or empty.
    #[error("the callback lacks the `{0}` parameter")]
    MissingParam(&'static str),
    /// A parameter appears more than once.
    #[error("the callback repeats the `{0}` parameter")]
    DuplicateParam(String),
    /// The HMAC does not match the parameters.
    #[error("the callback signature is invalid")]
    InvalidHmac,
    /// `timestamp` is not an integer.
    #[error("the callback timestamp is not a number")]
    InvalidTimestamp,
    /// `timestamp` is more than 90 s from now.
    #[error("the callback timestamp is {skew_secs} s away from now (more than 90 s)")]
    StaleTimestamp {
        /// `timestamp - now`, in seconds.
        skew_secs: i64,
    },
    /// `shop` is not a canonical `name.myshopify.com`.
    #[error("the callback shop is invalid: {0}")]
    InvalidShop(ShopDomainError),
}

impl CallbackError {
    /// A stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::OAuthError(_) => "oauth_error",
            Self::MissingParam(_) => "missing_param",
            Self::DuplicateParam(_) => "duplicate_param",
            Self::InvalidHmac => "invalid_hmac",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::StaleTimestamp { .. } => "stale_timestamp",
            Self::InvalidShop(_) => "invalid_shop",
        }
    }
}

/// Verifies an OAuth callback from its raw query pairs, in order:
/// a Shopify `error` (`access_denied` when cancelled), required parameters
/// (`hmac`, `shop`, `code`, `state`, `timestamp`), no repeated parameter,
/// the HMAC over all parameters but `hmac`/`signature` (constant time), the
/// timestamp within [`MAX_CLOCK_SKEW_SECS`] of `now` (unix seconds), and the
/// shop (already canonical).
pub fn verify_callback(
    params: &[(String, String)],
    client_secret: &Secret,
    now: i64,
) -> Result<VerifiedCallback, CallbackError> {
    if let Some(error) = single(params, "error")? {
        return Err(if error == "access_denied" {
            CallbackError::AccessDenied
        } else {
            CallbackError::OAuthError(error.chars().take(100).collect())
        });
    }
    required(params, "hmac")?;
    let shop = required(params, "shop")?;
    let code = required(params, "code")?;
    let state = required(params, "state")?;
    let timestamp = required(params, "timestamp")?;
    let host = single(params, "host")?;
    for (i, (k, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(other, _)| other == k) {
            return Err(CallbackError::DuplicateParam(k.chars().take(50).collect()));
        }
    }
    let pairs = params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if !signing::verify_query(pairs, client_secret.expose()) {
        return Err(CallbackError::InvalidHmac);
    }
    let timestamp: i64 = timestamp
        .parse()
        .map_err(|_| CallbackError::InvalidTimestamp)?;
    let skew_secs = timestamp.saturating_sub(now);
    if skew_secs.abs() > MAX_CLOCK_SKEW_SECS {
        return Err(CallbackError::StaleTimestamp { skew_secs });
    }
    let shop = ShopDomain::parse_exact(shop).map_err(CallbackError::InvalidShop)?;
    Ok(VerifiedCallback {
        shop,
        code: Secret::new(code),
        state: state.to_owned(),
        host: host.map(str::to_owned),
        timestamp,
    })
}

fn single<'a>(
    params: &'a [(String, String)],
    key: &'static str,
) -> Result<Option<&'a str>, CallbackError> {
    let mut found = params.iter().filter(|(k, _)| k == key);
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some((_, v)), None) => Ok(Some(v.as_str())),
        (Some(_), Some(_)) => Err(CallbackError::DuplicateParam(key.to_owned())),
    }
}

fn required<'a>(
    params: &'a [(String, String)],
    key: &'static str,
) -> Result<&'a str, CallbackError> {
    match single(params, key)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(CallbackError::MissingParam(key)),
    }
}

/// A fresh OAuth `state`: 32 random bytes from the OS, lowercase hex.
pub fn random_state() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the token endpoint granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The access token (`shpat_…` / `shpua_…`).
    pub access_token: Secret,
    /// The granted scopes, comma-separated as Shopify sends them.
    pub scope: String,
    /// When the access token expires; `None` for a non-expiring token.
    pub expires_at: Option<DateTime<Utc>>,
    /// The refresh token of an expiring offline token.
    pub refresh_token: Option<Secret>,
    /// When the refresh token expires.
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
}

impl TokenGrant {
    /// The granted scopes, one per item.
    pub fn scopes(&self) -> Vec<String> {
        split_scopes(&self.scope)
    }

    /// True when the grant includes `scope` (e.g. `read_all_orders`).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().iter().any(|s| s == scope)
    }

    /// True when the access token expires within `margin` of `now`: refresh
    /// it before using it.
    pub fn needs_refresh(&self, now: DateTime<Utc>, margin: std::time::Duration) -> bool {
        let margin = ChronoDuration::from_std(margin).unwrap_or(ChronoDuration::zero());
        self.expires_at.is_some_and(|at| at - margin <= now)
    }
}

/// Splits a comma-separated scope list.
pub fn split_scopes(scope: &str) -> Vec<String> {
    scope
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Exchanges an authorization code for an expiring offline token:
/// `POST {token_url}` with JSON `{client_id, client_secret, code, expiring:"1"}`.
/// Also accepts answers without expiry (non-expiring tokens).
pub async fn exchange_code(
    http: &reqwest::Client,
    config: &ShopifyConfig,
    shop: &ShopDomain,
    code: &str,
) -> Result<TokenGrant, ShopifyError> {
    let body = json!({
        "client_id": config.client_id,
        "client_secret": config.client_secret.expose(),
        "code": code,
        "expiring": "1",
    });
    token_request(http, config, shop, &body).await
}

/// Refreshes an expiring offline token:
/// `POST {token_url}` with JSON
/// `{client_id, client_secret, refresh_token, grant_type:"refresh_token"}`.
pub async fn refresh_token(
    http: &reqwest::Client,
    config: &ShopifyConfig,
    shop: &ShopDomain,
    refresh_token: &Secret,
) -> Result<TokenGrant, ShopifyError> {
    let body = json!({
        "client_id": config.client_id,
        "client_secret": config.client_secret.expose(),
        "refresh_token": refresh_token.expose(),
        "grant_type": "refresh_token",
    });
    token_request(http, config, shop, &body).await
}

async fn token_request(
    http: &reqwest::Client,
    config: &ShopifyConfig,
    shop: &ShopDomain,
    body: &Value,
) -> Result<TokenGrant, ShopifyError> {
    let response = http
        .post(config.token_url(shop))
        .header(reqwest::header::ACCEPT, "application/json")
        .json(body)
        .timeout(config.request_timeout)
        .send()
        .await
        .map_err(ShopifyError::from_reqwest)?;
    let status = response.status();
    let request_id = request_id(response.headers());
    let text = response.text().await.map_err(ShopifyError::from_reqwest)?;
    if !status.is_success() {
        tracing::warn!(%shop, status = status.as_u16(), ?request_id, "Shopify token request refused");
        return Err(token_rejected(status.as_u16(), &text, request_id));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| ShopifyError::Decode {
        message: format!("token response is not JSON: {e}"),
        request_id: request_id.clone(),
    })?;
    parse_grant(&value, Utc::now()).ok_or_else(|| ShopifyError::Decode {
        message: "token response lacks `access_token`".to_owned(),
        request_id,
    })
}

fn token_rejected(status: u16, body: &str, request_id: Option<String>) -> ShopifyError {
    let value: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| -> Option<String> {
        match value.as_ref()?.get(name)? {
            Value::Null => None,
            Value::String(s) => Some(shorten_body(s)),
            other => Some(shorten_body(&other.to_string())),
        }
    };
    let error = field("error");
    let error_description = field("error_description");
    let mut errors = field("errors");
    if error.is_none() && error_description.is_none() && errors.is_none() && !body.trim().is_empty()
    {
        errors = Some(shorten_body(body));
    }
    ShopifyError::TokenRejected {
        status,
        error,
        error_description,
        errors,
        request_id,
    }
}

/// Reads a token answer; `expires_in` values may be numbers or numeric strings.
fn parse_grant(value: &Value, now: DateTime<Utc>) -> Option<TokenGrant> {
    let access_token = value.get("access_token")?.as_str()?;
    if access_token.is_empty() {
        return None;
    }
    let seconds = |name: &str| -> Option<i64> {
        match value.get(name)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let at =
        |secs: Option<i64>| secs.and_then(|s| now.checked_add_signed(ChronoDuration::seconds(s)));
    Some(TokenGrant {
        access_token: Secret::new(access_token),
        scope: value
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        expires_at: at(seconds("expires_in")),
        refresh_token: value
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(Secret::new),
        refresh_token_expires_at: at(seconds("refresh_token_expires_in")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_64_hex_and_random() {
        let a = random_state();
        let b = random_state();
        assert_eq!(a.len(), 64);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn parse_grant_forms() {
        let now = Utc::now();
        let plain = parse_grant(&json!({"access_token": "t", "scope": "read_orders"}), now);
        assert!(plain.as_ref().is_some_and(|g| g.expires_at.is_none()
            && g.refresh_token.is_none()
            && g.scopes() == vec!["read_orders".to_owned()]));
        let expiring = parse_grant(
            &json!({"access_token": "t", "scope": "a,b", "expires_in": 3600,
                    "refresh_token": "shprt_x", "refresh_token_expires_in": "7776000"}),
            now,
        );
        let Some(g) = expiring else {
            panic!("no grant")
        };
        assert_eq!(g.expires_at, Some(now + ChronoDuration::seconds(3600)));
        assert_eq!(
            g.refresh_token_expires_at,
            Some(now + ChronoDuration::seconds(7_776_000))
        );
        assert_eq!(
            g.refresh_token.as_ref().map(Secret::expose),
            Some("shprt_x")
        );
        assert!(g.has_scope("b"));
        assert!(g.needs_refresh(
            now + ChronoDuration::seconds(3500),
            std::time::Duration::from_secs(300)
        ));
        assert!(!g.needs_refresh(now, std::time::Duration::from_secs(300)));
        assert!(parse_grant(&json!({"scope": "x"}), now).is_none());
        assert!(!format!("{g:?}").contains("shprt_x"));
    }

    #[test]
    fn rejected_token_keeps_shopify_text() {
        let e = token_rejected(
            400,
            r#"{"error":"invalid_request","error_description":"The authorization code was not found or was already used"}"#,
            Some("rid".into()),
        );
        assert!(e.to_string().contains("already used"));
        assert_eq!(e.request_id(), Some("rid"));
        let e = token_rejected(400, r#"{"errors":"bad code"}"#, None);
        assert!(
            matches!(&e, ShopifyError::TokenRejected { errors: Some(m), .. } if m == "bad code")
        );
        let e = token_rejected(400, "oops <html>", None);
        assert!(e.to_string().contains("oops"));
    }
}
