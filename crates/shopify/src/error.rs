//! The errors of every network call to Shopify.

use serde::{Deserialize, Serialize};

/// One entry of a GraphQL `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphQlError {
    /// Shopify's message.
    pub message: String,
    /// `extensions.code`, e.g. `THROTTLED`, `ACCESS_DENIED`,
    /// `MAX_COST_EXCEEDED`, `SHOP_INACTIVE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The response path the error belongs to, when given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<serde_json::Value>,
}

/// A failed call to Shopify. Variants that come from an HTTP response carry
/// Shopify's `x-request-id` to quote in support requests. No variant holds
/// a token or secret.
#[derive(Debug, thiserror::Error)]
pub enum ShopifyError {
    /// HTTP 401: the token is invalid or was revoked. The merchant must
    /// reconnect the store.
    #[error("Shopify rejected the access token: the store must be reconnected")]
    Unauthorized {
        /// `x-request-id` of the response.
        request_id: Option<String>,
    },
    /// HTTP 403: the app lacks a scope or access.
    #[error("Shopify refused access (403): {message}")]
    Forbidden {
        /// Shopify's message (shortened).
        message: String,
        /// `x-request-id` of the response.
        request_id: Option<String>,
    },
    /// HTTP 402 (frozen shop) or 423 (locked shop), or the GraphQL code
    /// `SHOP_INACTIVE`.
    #[error("the shop is not available (status {status}): {message}")]
    ShopUnavailable {
        /// HTTP status (200 for `SHOP_INACTIVE`).
        status: u16,
        /// Shopify's message (shortened).
        message: String,
        /// `x-request-id` of the response.
        request_id: Option<String>,
    },
    /// Still throttled after the allowed attempts or the total wait cap.
    #[error("Shopify kept throttling the request after {attempts} attempts")]
    Throttled {
        /// Requests made.
        attempts: u32,
        /// `x-request-id` of the last response.
        request_id: Option<String>,
    },
    /// GraphQL answered with `errors`.
    #[error("Shopify GraphQL error: {}", summarize(.errors))]
    GraphQl {
        /// The errors, as sent.
        errors: Vec<GraphQlError>,
        /// `x-request-id` of the response.
        request_id: Option<String>,
    },
    /// The token endpoint refused a code exchange or a refresh (400 and
    /// other non-success answers).
    #[error(
        "Shopify refused the token request (status {status}): {}",
        token_message(.error, .error_description, .errors)
    )]
    TokenRejected {
        /// HTTP status.
        status: u16,
        /// Shopify's `error` field.
        error: Option<String>,
        /// Shopify's `error_description` field.
        error_description: Option<String>,
        /// Shopify's `errors` field, or the raw body (shortened) when the
        /// body has none of these fields.
        errors: Option<String>,
        /// `x-request-id` of the response.
        request_id: Option<String>,
    },
    /// Any other unsuccessful HTTP status.
    #[error("Shopify answered HTTP {status}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The body (shortened).
        message: String,
        /// `x-request-id` of the response.
        request_id: Option<String>,
    },
    /// The request timed out.
    #[error("the request to Shopify timed out")]
    Timeout,
    /// The request could not be sent or its answer not read.
    #[error("could not reach Shopify: {0}")]
    Transport(#[source] reqwest::Error),
    /// The answer was not what Shopify sends.
    #[error("unexpected answer from Shopify: {message}")]
    Decode {
        /// What was wrong.
        message: String,
        /// `x-request-id` of the response.
        request_id: Option<String>,
    },
    /// A caller passed an argument that cannot be sent (e.g. an email with
    /// quotes, a date range that ends before it starts).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl ShopifyError {
    /// A stable machine code for the variant.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized { .. } => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::ShopUnavailable { .. } => "shop_unavailable",
            Self::Throttled { .. } => "throttled",
            Self::GraphQl { .. } => "graphql_error",
            Self::TokenRejected { .. } => "token_rejected",
            Self::Http { .. } => "http_error",
            Self::Timeout => "timeout",
            Self::Transport(_) => "transport_error",
            Self::Decode { .. } => "decode_error",
            Self::InvalidInput(_) => "invalid_input",
        }
    }

    /// True when the merchant must reconnect the store (HTTP 401).
    pub fn needs_reconnect(&self) -> bool {
        matches!(self, Self::Unauthorized { .. })
    }

    /// Shopify's `x-request-id`, when the error came from a response.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Unauthorized { request_id }
            | Self::Forbidden { request_id, .. }
            | Self::ShopUnavailable { request_id, .. }
            | Self::Throttled { request_id, .. }
            | Self::GraphQl { request_id, .. }
            | Self::TokenRejected { request_id, .. }
            | Self::Http { request_id, .. }
            | Self::Decode { request_id, .. } => request_id.as_deref(),
            Self::Timeout | Self::Transport(_) | Self::InvalidInput(_) => None,
        }
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else {
            Self::Transport(e.without_url())
        }
    }
}

fn token_message(
    error: &Option<String>,
    description: &Option<String>,
    errors: &Option<String>,
) -> String {
    let parts: Vec<&str> = [error, description, errors]
        .into_iter()
        .filter_map(|s| s.as_deref())
        .collect();
    if parts.is_empty() {
        "no details".to_owned()
    } else {
        parts.join(": ")
    }
}

fn summarize(errors: &[GraphQlError]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .take(3)
        .map(|e| match &e.code {
            Some(code) => format!("{} ({code})", e.message),
            None => e.message.clone(),
        })
        .collect();
    if parts.is_empty() {
        "no details".to_owned()
    } else {
        parts.join("; ")
    }
}

/// Bounds a response body quoted in an error.
pub(crate) fn shorten_body(body: &str) -> String {
    const MAX: usize = 300;
    let body = body.trim();
    if body.chars().count() <= MAX {
        body.to_owned()
    } else {
        let mut out: String = body.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// Reads `x-request-id` from a response.
pub(crate) fn request_id(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
