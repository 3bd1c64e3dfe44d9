//! The merchant's web app: server-rendered pages (askama templates checked
//! at compile time) and the embedded, content-hashed assets they use.
//!
//! - `/` what CJ is, "Start chatting";
//! - `/chat` the chat (a thin client of `/ws/chat`, `assets/chat.js`);
//! - `/history`, `/history/{id}` the merchant's conversations and transcripts;
//! - `/memory` what CJ remembers, each fact deletable;
//! - `/assets/{name.hash.ext}` the embedded CSS and JavaScript.
//!
//! All message HTML comes from the server's sanitizer
//! ([`crate::chat::render::markdown_to_html`]); templates escape everything
//! else. Pages send a strict Content-Security-Policy (scripts and styles
//! from this origin only), so even a sanitizer miss could not run script.

pub mod assets;
mod pages;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;

/// The page and asset routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::index))
        .route("/chat", get(pages::chat).post(pages::chat_without_script))
        .route("/history", get(pages::history))
        .route("/history/{conversation_id}", get(pages::conversation))
        .route("/memory", get(pages::memory))
        .route("/favicon.ico", get(pages::favicon))
        .route("/assets/{file}", get(assets::serve))
}

pub use pages::oauth_error_message;
pub(crate) use pages::shop_zone;

/// Escapes text for HTML content and attribute values (for the few bits of
/// markup built outside the templates).
pub(crate) fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
