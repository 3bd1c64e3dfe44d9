//! Liveness and readiness.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::AppState;

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers and the server is not shutting
/// down. 503 with a reason otherwise (a load balancer sends no new
/// merchant here once draining starts).
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let backend = state.store.backend().as_str();
    if state.chat.draining().is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "draining", "database": backend, "reason": "the server is shutting down"}),
            ),
        );
    }
    match tokio::time::timeout(Duration::from_secs(3), state.store.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": backend})),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({"status": "unavailable", "database": backend, "reason": format!("database unreachable: {e}")}),
                ),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "unavailable", "database": backend, "reason": "database did not answer within 3 s"}),
            ),
        ),
    }
}
