//! The page handlers and their templates.

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hirecj_domain::mirror::ShopTimeZone;
use hirecj_domain::{ConversationId, MessageStatus, Role, UserId, WebSession};

use super::assets;
use crate::api::{Me, TranscriptMessage, conversation_title, me_for};
use crate::app::AppState;
use crate::chat::service::{ChatError, ChatService, Owner, TurnHandle};
use crate::error::AppError;
use crate::limits::{Charge, ClientAddress, Requester};
use crate::session::{CookiePolicy, CurrentSession, first_use, start_session};

/// Conversations per history page.
const PAGE_SIZE: i64 = 20;

/// What every page's layout needs.
pub struct Layout {
    pub title: String,
    pub css: &'static str,
    pub page_js: &'static str,
    pub favicon: &'static str,
    /// The signed-in merchant (for the header), if any.
    pub user_id: Option<String>,
    pub shop_domain: Option<String>,
    /// Shopify refused the store's access: the header offers to reconnect.
    pub needs_reconnect: bool,
}

impl Layout {
    fn new(title: impl Into<String>, me: Option<&Me>) -> Self {
        Self {
            title: title.into(),
            css: assets::url("app.css"),
            page_js: assets::url("page.js"),
            favicon: assets::url("favicon.svg"),
            user_id: me.and_then(|m| m.user_id.clone()),
            shop_domain: me.and_then(|m| m.shop_domain.clone()),
            needs_reconnect: me.is_some_and(|m| m.needs_reconnect),
        }
    }
}

/// The merchant's shop's time zone (from its store mirror), or UTC when
/// it is not known yet.
pub(crate) async fn shop_zone(state: &AppState, user: &UserId) -> ShopTimeZone {
    let shop = match state.store.user(user).await {
        Ok(Some(u)) => u.shop_domain,
        _ => return ShopTimeZone::UTC,
    };
    match state.store.mirror_sync(&shop).await {
        Ok(Some(sync)) => sync.time_zone,
        _ => ShopTimeZone::UTC,
    }
}

/// Security headers of every page. `connect-src` names the WebSocket origin
/// explicitly (`'self'` covers ws: only in recent browsers).
fn page_headers(state: &AppState) -> HeaderMap {
    let url = &state.settings.public_url;
    let ws_scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    let host = url.host_str().unwrap_or("localhost");
    let ws_origin = match url.port() {
        Some(port) => format!("{ws_scheme}://{host}:{port}"),
        None => format!("{ws_scheme}://{host}"),
    };
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {ws_origin}; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self'; object-src 'none'"
    );
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h
}

fn render(state: &AppState, status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            page_headers(state),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "something went wrong").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
}

/// An error as a page (the JSON API keeps its JSON errors).
fn error_page(state: &AppState, error: &AppError, me: Option<&Me>) -> Response {
    let status = error.status();
    let (heading, message) = match error {
        AppError::NotFound(what) => (
            "Not found".to_owned(),
            format!("That {what} does not exist, or it is not yours."),
        ),
        AppError::BadRequest(m) => ("That link is not valid".to_owned(), m.clone()),
        AppError::Forbidden => (
            "Not yours".to_owned(),
            "That belongs to another merchant.".to_owned(),
        ),
        AppError::Unauthorized => (
            "Connect your store first".to_owned(),
            "Connect your Shopify store in the chat to keep a history.".to_owned(),
        ),
        other => {
            tracing::error!(error = %other, "page failed");
            (
                "Something went wrong".to_owned(),
                "Something went wrong on our side; please try again.".to_owned(),
            )
        }
    };
    let page = ErrorPage {
        layout: Layout::new(heading.clone(), me),
        heading,
        message,
    };
    render(state, status, &page)
}

/// The newest messages the chat page renders for a browser without
/// scripts (the rest are under History).
const NO_SCRIPT_MESSAGES: i64 = 20;

/// How long `POST /chat` waits for CJ's reply before showing the page
/// without it (the reply is stored and shows on the next load).
const NO_SCRIPT_REPLY_WAIT: Duration = Duration::from_secs(90);

/// `POST /chat` (form `message`, `conversation_id`, `client_id`): the chat
/// without scripts. The page's script talks over the WebSocket and never
/// posts; a browser without scripts sends the composer here. The message
/// is stored (once per `client_id`, so a resubmitted form is not stored
/// twice), CJ's reply is written while the request waits, and the browser
/// is sent back to the conversation (`303`), where the server renders it.
/// A new conversation first gets CJ's greeting. Same budgets as the
/// WebSocket; the message never lands in a URL.
pub async fn chat_without_script(
    State(state): State<AppState>,
    CurrentSession(current): CurrentSession,
    address: ClientAddress,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(e) = crate::api::same_origin(&headers, &state.settings.public_url) {
        return error_page(&state, &e, None);
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let (session, cookie) = match session_or_new(&state, current).await {
        Ok(v) => v,
        Err(page) => return *page,
    };
    let session = match first_use(&state.store, session).await {
        Ok(s) => s,
        Err(e) => return error_page(&state, &AppError::from(e), None),
    };
    let owner = Owner {
        session_id: session.id.clone(),
        user_id: session.user_id.clone(),
    };
    let not_sent = |why: String| {
        let page = ErrorPage {
            layout: Layout::new("Your message was not sent", None),
            heading: "Your message was not sent".to_owned(),
            message: why,
        };
        render(&state, StatusCode::BAD_REQUEST, &page)
    };
    let requested = match field("conversation_id").map(str::parse::<ConversationId>) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return not_sent("That conversation id is not valid.".to_owned()),
    };
    let Some(text) = field("message") else {
        return not_sent("The message was empty. Go back to the chat and type one.".to_owned());
    };
    let client_id = field("client_id")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("noscript-{}", uuid::Uuid::new_v4().simple()));
    let who = Requester {
        session_id: &owner.session_id,
        user_id: owner.user_id.as_ref(),
        address,
    };
    let charge = if requested.is_some() {
        Charge::Turn
    } else {
        Charge::Conversation
    };
    if let Err(spent) = state.budget.charge(&who, charge).await {
        return chat_error_page(&state, &ChatError::from(spent));
    }
    let chat = &state.chat;
    let result = async {
        let conversation = chat.open(&owner, requested, None).await?;
        let id = conversation.id;
        // What CJ owes first: the greeting of a new conversation, or the
        // reply being written to an earlier message (another tab's).
        settle(chat, id).await?;
        let posted = match chat.post_message(id, text, &client_id).await {
            Err(ChatError::TurnInProgress) => {
                settle(chat, id).await?;
                chat.post_message(id, text, &client_id).await?
            }
            posted => posted?,
        };
        if let Some(reply) = posted.reply {
            wait_for(reply).await;
        }
        settle(chat, id).await?;
        Ok::<_, ChatError>(id)
    }
    .await;
    let mut response = match result {
        Ok(id) => Redirect::to(&format!("/chat?conversation_id={id}#latest")).into_response(),
        Err(e) => chat_error_page(&state, &e),
    };
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// The browser's session, or a new anonymous one with the cookie that
/// carries it.
async fn session_or_new(
    state: &AppState,
    current: Option<WebSession>,
) -> Result<(WebSession, Option<HeaderValue>), Box<Response>> {
    if let Some(session) = current {
        return Ok((session, None));
    }
    let policy = CookiePolicy::from_settings(&state.settings);
    match start_session(&state.store, &policy, None).await {
        Ok((session, cookie)) => Ok((session, Some(cookie))),
        Err(e) => Err(Box::new(error_page(state, &AppError::from(e), None))),
    }
}

/// Waits (bounded) until CJ owes the conversation nothing: each reply
/// owed is written, a workflow's next first action included.
async fn settle(chat: &ChatService, id: ConversationId) -> Result<(), ChatError> {
    let wait = async {
        for _ in 0..3 {
            let Some(turn) = chat.ensure_reply(id).await? else {
                return Ok(());
            };
            wait_for(turn).await;
        }
        Ok(())
    };
    match tokio::time::timeout(NO_SCRIPT_REPLY_WAIT, wait).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(conversation_id = %id, "the reply took longer than the page waits; it shows on the next load");
            Ok(())
        }
    }
}

/// Until `turn` is over (stored or failed).
async fn wait_for(mut turn: TurnHandle) {
    match turn.done.take() {
        Some(done) => {
            let _ = done.await;
        }
        None => while turn.frames.recv().await.is_ok() {},
    }
}

/// A chat error as a page: what the merchant can do about it, never the
/// storage's own words.
fn chat_error_page(state: &AppState, e: &ChatError) -> Response {
    let (status, message) = match e {
        ChatError::Forbidden => (
            StatusCode::FORBIDDEN,
            "That conversation belongs to someone else.".to_owned(),
        ),
        ChatError::NotFound => (
            StatusCode::NOT_FOUND,
            "That conversation does not exist.".to_owned(),
        ),
        ChatError::Invalid(why) => (StatusCode::BAD_REQUEST, format!("{why}.")),
        ChatError::RateLimited(spent) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "You have sent a lot of messages; try again in {} seconds.",
                spent.retry_after.as_secs().max(1)
            ),
        ),
        ChatError::TurnInProgress | ChatError::Restarting => (
            StatusCode::SERVICE_UNAVAILABLE,
            "CJ is busy with this conversation; go back and send your message again in a moment."
                .to_owned(),
        ),
        other => {
            tracing::error!(error = %other, "a message sent without scripts failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong on our side; go back and try again.".to_owned(),
            )
        }
    };
    let page = ErrorPage {
        layout: Layout::new("Your message was not sent", None),
        heading: "Your message was not sent".to_owned(),
        message,
    };
    render(state, status, &page)
}

async fn whoami(state: &AppState, session: Option<&WebSession>) -> Result<Me, AppError> {
    me_for(&state.store, session, state.settings.debug).await
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    layout: Layout,
}

/// `GET /`
pub async fn index(
    State(state): State<AppState>,
    CurrentSession(session): CurrentSession,
) -> Response {
    let me = whoami(&state, session.as_ref()).await.ok();
    let page = IndexPage {
        layout: Layout::new("HireCJ — your AI customer-experience agent", me.as_ref()),
    };
    render(&state, StatusCode::OK, &page)
}

/// `GET /favicon.ico`: the embedded icon. A temporary redirect: the target
/// changes with the icon's hash.
pub async fn favicon() -> Redirect {
    Redirect::temporary(assets::url("favicon.svg"))
}

/// A friendly sentence for an `oauth_error` code from the Shopify callback.
pub fn oauth_error_message(code: &str) -> &'static str {
    match code {
        "access_denied" => "You cancelled the install on Shopify, so nothing was connected.",
        "state_mismatch" | "invalid_state" | "session_mismatch" | "stale_timestamp" => {
            "That connection attempt expired or was started in another browser tab."
        }
        "invalid_hmac" | "missing_param" | "invalid_shop" | "shop_mismatch" => {
            "We could not verify Shopify's answer, so nothing was connected."
        }
        "token_exchange_failed" => "Shopify did not complete the connection just now.",
        _ => "Something went wrong while connecting your store.",
    }
}

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    layout: Layout,
    chat_js: &'static str,
    user_id: String,
    store_connected: bool,
    debug: bool,
    oauth_error: Option<&'static str>,
    /// The chat as a browser without scripts gets it.
    noscript: NoScriptChat,
}

/// The conversation rendered by the server, inside `<noscript>` (a page
/// with scripts never parses it): its newest messages, the conversation
/// the form posts to, a fresh `client_id` for that post.
struct NoScriptChat {
    conversation_id: String,
    messages: Vec<PageMessage>,
    older: bool,
    client_id: String,
}

impl NoScriptChat {
    /// For the conversation `?conversation_id=` names, when the session
    /// may read it; else an empty chat (the post starts a conversation).
    async fn load(state: &AppState, session: &WebSession, requested: Option<&str>) -> Self {
        let mut chat = Self {
            conversation_id: String::new(),
            messages: Vec::new(),
            older: false,
            client_id: format!("noscript-{}", uuid::Uuid::new_v4().simple()),
        };
        let Some(id) = requested.and_then(|s| s.parse::<ConversationId>().ok()) else {
            return chat;
        };
        let owner = Owner {
            session_id: session.id.clone(),
            user_id: session.user_id.clone(),
        };
        let Ok(c) = state.chat.conversation_for(&owner, id).await else {
            return chat;
        };
        let after = (c.last_seq - NO_SCRIPT_MESSAGES).max(0);
        let Ok(messages) = state.chat.messages_after(id, after).await else {
            return chat;
        };
        let zone = match &session.user_id {
            Some(user) => shop_zone(state, user).await,
            None => ShopTimeZone::UTC,
        };
        chat.conversation_id = id.to_string();
        chat.older = after > 0;
        chat.messages = page_messages(&messages, zone);
        chat
    }
}

/// `GET /chat[?conversation_id=…][&oauth_error=…]`: the chat shell. A
/// browser without a session gets an anonymous one here, so the WebSocket
/// can open at once.
pub async fn chat(
    State(state): State<AppState>,
    CurrentSession(current): CurrentSession,
    RawQuery(raw): RawQuery,
) -> Response {
    let (session, cookie) = match session_or_new(&state, current).await {
        Ok(v) => v,
        Err(page) => return *page,
    };
    let me = match whoami(&state, Some(&session)).await {
        Ok(me) => me,
        Err(e) => return error_page(&state, &e, None),
    };
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let oauth_error = query.get("oauth_error").map(|v| oauth_error_message(v));
    let noscript = NoScriptChat::load(
        &state,
        &session,
        query.get("conversation_id").map(String::as_str),
    )
    .await;
    let page = ChatPage {
        layout: Layout::new("Chat with CJ", Some(&me)),
        chat_js: assets::url("chat.js"),
        user_id: me.user_id.clone().unwrap_or_default(),
        store_connected: me.store_connected,
        debug: me.debug,
        oauth_error,
        noscript,
    };
    let mut response = render(&state, StatusCode::OK, &page);
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

struct HistoryItem {
    id: String,
    title: String,
    started: String,
    started_iso: String,
    message_count: i64,
    ended: bool,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    layout: Layout,
    items: Vec<HistoryItem>,
    total: i64,
    page: i64,
    pages: i64,
    prev: Option<i64>,
    next: Option<i64>,
}

/// The signed-in merchant, or the error page to show instead.
async fn require_merchant(
    state: &AppState,
    session: Option<&WebSession>,
) -> Result<(UserId, Me), Box<Response>> {
    let me = whoami(state, session)
        .await
        .map_err(|e| Box::new(error_page(state, &e, None)))?;
    match session.and_then(|s| s.user_id.clone()) {
        Some(user) => Ok((user, me)),
        None => Err(Box::new(error_page(
            state,
            &AppError::Unauthorized,
            Some(&me),
        ))),
    }
}

/// `GET /history[?page=N]`: the merchant's conversations, newest first.
pub async fn history(
    State(state): State<AppState>,
    CurrentSession(session): CurrentSession,
    RawQuery(raw): RawQuery,
) -> Response {
    let (user, me) = match require_merchant(&state, session.as_ref()).await {
        Ok(v) => v,
        Err(page) => return *page,
    };
    let page: i64 = url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
        .filter(|p| (1..=10_000).contains(p))
        .unwrap_or(1);
    let listing = match state
        .store
        .conversations_for_user(&user, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(&state, &AppError::from(e), Some(&me)),
    };
    let pages = ((listing.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let zone = shop_zone(&state, &user).await;
    let now = chrono::Utc::now();
    let items = listing
        .items
        .iter()
        .map(|c| HistoryItem {
            id: c.id.to_string(),
            title: conversation_title(state.chat.catalog(), c.title.as_deref(), &c.workflow),
            started: zone.relative(c.started_at, now),
            started_iso: c.started_at.to_rfc3339(),
            message_count: c.message_count,
            ended: c.ended_at.is_some(),
        })
        .collect();
    let view = HistoryPage {
        layout: Layout::new("Your conversations with CJ", Some(&me)),
        items,
        total: listing.total,
        page,
        pages,
        prev: (page > 1).then(|| page - 1),
        next: (page < pages).then(|| page + 1),
    };
    render(&state, StatusCode::OK, &view)
}

struct PageMessage {
    role: &'static str,
    who: &'static str,
    /// CJ's sanitized HTML; empty for a merchant message (shown as text).
    html: String,
    /// The merchant's text, escaped by the template.
    text: String,
    time: String,
    time_iso: String,
    note: &'static str,
}

/// The merchant's and CJ's messages as a page shows them (system events
/// are left out), times on the shop's clock.
fn page_messages(messages: &[hirecj_domain::Message], zone: ShopTimeZone) -> Vec<PageMessage> {
    messages
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| {
            let merchant = m.role == Role::Merchant;
            PageMessage {
                role: m.role.as_str(),
                who: if merchant { "You" } else { "CJ" },
                html: if merchant {
                    String::new()
                } else {
                    TranscriptMessage::from_message(m).html
                },
                text: if merchant {
                    m.content.clone()
                } else {
                    String::new()
                },
                time: zone.clock(m.created_at),
                time_iso: m.created_at.to_rfc3339(),
                note: match m.status {
                    MessageStatus::Complete => "",
                    MessageStatus::Stopped => "stopped",
                    MessageStatus::Interrupted => "interrupted",
                },
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "conversation.html")]
struct ConversationPage {
    layout: Layout,
    heading: String,
    started: String,
    ended: Option<String>,
    workflow: String,
    messages: Vec<PageMessage>,
    export_markdown: String,
    export_json: String,
}

/// `GET /history/{conversation_id}`: one conversation's full transcript.
pub async fn conversation(
    State(state): State<AppState>,
    CurrentSession(session): CurrentSession,
    Path(id): Path<String>,
) -> Response {
    let (user, me) = match require_merchant(&state, session.as_ref()).await {
        Ok(v) => v,
        Err(page) => return *page,
    };
    let Ok(id) = id.parse::<ConversationId>() else {
        return error_page(
            &state,
            &AppError::BadRequest("That conversation id is not valid.".to_owned()),
            Some(&me),
        );
    };
    let c = match crate::api::owned_conversation(&state.store, &user, id).await {
        Ok(c) => c,
        Err(e) => return error_page(&state, &e, Some(&me)),
    };
    let messages = match state.store.messages(id, 0).await {
        Ok(m) => m,
        Err(e) => return error_page(&state, &AppError::from(e), Some(&me)),
    };
    let zone = shop_zone(&state, &user).await;
    let messages = page_messages(&messages, zone);
    let heading = conversation_title(state.chat.catalog(), c.title.as_deref(), &c.workflow);
    let base = format!("/api/v1/users/{user}/conversations/{id}/export");
    let view = ConversationPage {
        layout: Layout::new(heading.clone(), Some(&me)),
        heading,
        started: zone.clock(c.started_at),
        ended: c.ended_at.map(|t| zone.clock(t)),
        workflow: state
            .chat
            .catalog()
            .workflow(&c.workflow)
            .map_or_else(|| "Conversation".to_owned(), |w| w.title.clone()),
        messages,
        export_markdown: format!("{base}?format=markdown"),
        export_json: format!("{base}?format=json"),
    };
    render(&state, StatusCode::OK, &view)
}

struct FactItem {
    id: String,
    text: String,
    created: String,
    /// The conversation it came from (Undo after Forget keeps it).
    source: Option<String>,
}

#[derive(Template)]
#[template(path = "memory.html")]
struct MemoryPage {
    layout: Layout,
    user_id: String,
    facts: Vec<FactItem>,
}

/// `GET /memory`: what CJ remembers, each fact with a Forget button.
pub async fn memory(
    State(state): State<AppState>,
    CurrentSession(session): CurrentSession,
) -> Response {
    let (user, me) = match require_merchant(&state, session.as_ref()).await {
        Ok(v) => v,
        Err(page) => return *page,
    };
    let facts = match state.store.facts(&user).await {
        Ok(f) => f,
        Err(e) => return error_page(&state, &AppError::from(e), Some(&me)),
    };
    let zone = shop_zone(&state, &user).await;
    let view = MemoryPage {
        layout: Layout::new("What CJ remembers", Some(&me)),
        user_id: user.to_string(),
        facts: facts
            .into_iter()
            .map(|f| FactItem {
                id: f.id.to_string(),
                text: f.text,
                created: zone.clock(f.created_at),
                source: f.source_conversation_id.map(|c| c.to_string()),
            })
            .collect(),
    };
    render(&state, StatusCode::OK, &view)
}
