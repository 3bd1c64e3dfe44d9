//! Typed model-call errors.

use std::time::Duration;

/// The category of an error the provider reported (HTTP status or an `error`
/// event in the stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// 400: the request was malformed (a bug on our side, or too long a prompt).
    InvalidRequest,
    /// 401: bad API key.
    Authentication,
    /// 402: billing problem.
    Billing,
    /// 403: the key may not use this resource.
    Permission,
    /// 404: unknown model or endpoint.
    NotFound,
    /// 413: request too large.
    RequestTooLarge,
    /// 429: rate limited; retryable.
    RateLimited,
    /// 429 for a spend limit or exhausted quota; not retryable.
    QuotaExceeded,
    /// 500 and other server faults; retryable.
    Server,
    /// 504 / `timeout_error`: the provider timed out; retryable.
    Timeout,
    /// 529 / 503 / `overloaded_error`: the provider is overloaded; retryable.
    Overloaded,
    /// Anything else, with the provider's error type.
    Other(String),
}

impl ApiErrorKind {
    /// Whether a request failing this way may be sent again unchanged.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Server | Self::Timeout | Self::Overloaded
        )
    }

    /// Classifies by HTTP status when the body gave no usable type.
    pub fn from_status(status: u16) -> Self {
        match status {
            400 => Self::InvalidRequest,
            401 => Self::Authentication,
            402 => Self::Billing,
            403 => Self::Permission,
            404 => Self::NotFound,
            413 => Self::RequestTooLarge,
            429 => Self::RateLimited,
            504 => Self::Timeout,
            503 | 529 => Self::Overloaded,
            500..=599 => Self::Server,
            other => Self::Other(format!("http_{other}")),
        }
    }
}

/// Why a model call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The provider answered with an error (an HTTP error status, or an
    /// `error` payload inside a 200 stream, where `status` is `None`).
    #[error("{provider} API error ({kind:?}{}): {message}{}",
        status.map(|s| format!(", HTTP {s}")).unwrap_or_default(),
        request_id.as_deref().map(|r| format!(" [request {r}]")).unwrap_or_default())]
    Api {
        /// Provider name.
        provider: String,
        /// HTTP status, when the error came as a status.
        status: Option<u16>,
        /// Category.
        kind: ApiErrorKind,
        /// The provider's message (truncated).
        message: String,
        /// The provider's request id, when known.
        request_id: Option<String>,
        /// The wait the provider asked for (`retry-after`), when given.
        retry_after: Option<Duration>,
    },
    /// The connection failed or broke (DNS, TCP, TLS, reset mid-stream).
    #[error("{provider} transport error: {message}")]
    Transport {
        /// Provider name.
        provider: String,
        /// What happened.
        message: String,
    },
    /// No connection, headers or stream data within the configured time.
    #[error("{provider} timed out: {what} after {after:?}")]
    Timeout {
        /// Provider name.
        provider: String,
        /// Which wait: `"connect"`, `"response headers"` or `"idle stream"`.
        what: &'static str,
        /// The limit that was hit.
        after: Duration,
    },
    /// The stream broke the protocol (bad JSON, ended before its end marker).
    #[error("{provider} protocol error: {message}")]
    Protocol {
        /// Provider name.
        provider: String,
        /// What was wrong.
        message: String,
    },
    /// The caller cancelled the call.
    #[error("model call cancelled")]
    Cancelled,
    /// The provider could not be set up (bad base URL, TLS init).
    #[error("model configuration error: {0}")]
    Config(String),
}

impl ModelError {
    /// Whether the same request may be sent again (rate limits, overload,
    /// server faults, timeouts and connection failures). The providers retry
    /// these themselves until the stream has produced its first event.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { kind, .. } => kind.is_retryable(),
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Protocol { .. } | Self::Cancelled | Self::Config(_) => false,
        }
    }

    pub(crate) fn protocol(provider: &str, message: impl Into<String>) -> Self {
        Self::Protocol {
            provider: provider.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn transport(provider: &str, err: &reqwest::Error) -> Self {
        Self::Transport {
            provider: provider.to_owned(),
            message: error_chain(err),
        }
    }
}

/// Formats an error with its sources ("a: b: c").
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Cuts provider-supplied text to a loggable length on a char boundary.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        for s in [429, 500, 502, 503, 504, 529] {
            assert!(ApiErrorKind::from_status(s).is_retryable(), "{s}");
        }
        for s in [400, 401, 402, 403, 404, 413, 418] {
            assert!(!ApiErrorKind::from_status(s).is_retryable(), "{s}");
        }
        assert!(!ApiErrorKind::QuotaExceeded.is_retryable());
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
