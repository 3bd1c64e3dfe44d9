//! The one application error, mapped to HTTP responses. Internal causes are
//! logged with their chain; merchants get a clear message and no internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("sign in first")]
    Unauthorized,
    #[error("that belongs to someone else")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] hirecj_store::StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// A database that cannot be reached answers 503 `store_unavailable`
    /// with `Retry-After`, not 500 `internal`.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(hirecj_store::StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::Store(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unavailable(_) => "unavailable",
            Self::Store(e) if e.is_unavailable() => "store_unavailable",
            Self::Store(hirecj_store::StoreError::NotFound(_)) => "not_found",
            Self::Store(_) | Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let store_unavailable = matches!(&self, Self::Store(e) if e.is_unavailable());
        let message = if store_unavailable {
            tracing::warn!(error = %self, "the database is unavailable");
            "HireCJ can't reach its storage just now; please try again in a moment".to_owned()
        } else if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %self, cause = ?std::error::Error::source(&self), "request failed");
            "something went wrong on our side; please try again".to_owned()
        } else {
            self.to_string()
        };
        let body = Json(json!({"error": {"code": self.code(), "message": message}}));
        if store_unavailable {
            // Worth another try shortly.
            return (status, [(axum::http::header::RETRY_AFTER, "5")], body).into_response();
        }
        (status, body).into_response()
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_a_503_worth_retrying() {
        let e = AppError::Store(hirecj_store::StoreError::Database(
            sqlx::Error::PoolTimedOut,
        ));
        assert_eq!(e.code(), "store_unavailable");
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "5");
        let other = AppError::Store(hirecj_store::StoreError::Corrupt("bad row".into()));
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(other.code(), "internal");
    }
}
