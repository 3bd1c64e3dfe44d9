//! The HireCJ web application: configuration, the axum app, its middleware
//! (request ids, logs, metrics, timeouts, body limits) and graceful shutdown.

pub(crate) mod api;
pub mod app;
pub mod chat;
pub mod config;
pub(crate) mod error;
mod health;
pub mod limits;
pub mod metrics;
pub mod mirror;
pub mod net;
pub(crate) mod secret_key;
pub(crate) mod session;
pub mod shopify;
pub mod telemetry;
pub mod web;

pub use app::{App, AppState, StartError};
pub use config::{ConfigError, LoadOptions, Settings};
pub use error::{AppError, AppResult};
