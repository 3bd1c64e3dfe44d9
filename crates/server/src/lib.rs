//! The HireCJ web application: configuration, the axum app, its middleware
//! (request ids, logs, metrics, timeouts, body limits) and graceful shutdown.

pub mod app;
pub mod config;
pub mod error;
mod health;
pub mod metrics;
pub mod secret_key;
pub mod telemetry;

pub use app::{App, AppState, StartError};
pub use config::{ConfigError, LoadOptions, Settings};
pub use error::{AppError, AppResult};
