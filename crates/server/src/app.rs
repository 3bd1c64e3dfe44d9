//! Building and running the HTTP application.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse as _;
use axum::routing::get;
use hirecj_store::{Cipher, Store, StoreOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::chat::engine::Engine;
use crate::chat::{self, ChatLimits, ChatService};
use crate::config::Settings;
use crate::limits::{SocketCounts, TurnBudget};
use crate::metrics::{self, Metrics};
use crate::mirror::Mirror;
use crate::net::ServeOptions;
use crate::session::SessionEvents;
use crate::shopify::ShopifyRuntime;
use crate::{health, net, secret_key, shopify};
use hirecj_agent::workflow::Catalog;

/// Everything a handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub metrics: Metrics,
    /// Shopify: configuration, HTTP and Admin clients, cache.
    pub shopify: ShopifyRuntime,
    /// Live conversations: messages, CJ's turns, the post-OAuth step.
    pub chat: ChatService,
    /// Open chat WebSockets per session and per client address.
    pub sockets: SocketCounts,
    /// Turn budgets per session, merchant and address.
    pub budget: TurnBudget,
    /// Sessions ended (signed out) on any replica, for open sockets.
    pub sessions: SessionEvents,
    /// The store mirror: registration after installs, backfills.
    pub mirror: Mirror,
}

impl axum::extract::FromRef<AppState> for Metrics {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("workflows and prompts: {0}")]
    Content(String),
    #[error("{0}")]
    Model(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    SecretKey(#[from] secret_key::SecretKeyError),
    #[error("cannot open the database: {0}")]
    Store(#[from] hirecj_store::StoreError),
    #[error("Shopify setup: {0}")]
    Shopify(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A built application, bound to its port, ready to run.
pub struct App {
    listener: TcpListener,
    router: Router,
    state: AppState,
    /// Connections accepted at once, fitted to the open-file limit.
    max_connections: usize,
}

/// Prepares the data directory, the secret key and the database (with
/// migrations). Shared by `serve` and `migrate`.
pub async fn open_store(settings: &Settings) -> Result<Store, StartError> {
    open_store_with_key(settings).await.map(|(store, _)| store)
}

/// [`open_store`], also returning the secret key (for keys derived from it).
async fn open_store_with_key(settings: &Settings) -> Result<(Store, Vec<u8>), StartError> {
    private_data_dir(&settings.data_dir).map_err(|source| StartError::DataDir {
        path: settings.data_dir.display().to_string(),
        source,
    })?;
    let key = secret_key::load_or_create(
        settings.secret_key.as_ref().map(|s| s.expose()),
        &settings.data_dir,
    )?;
    if !settings.is_embedded_database() && settings.secret_key.is_none() {
        tracing::warn!(
            "HIRECJ_SECRET_KEY is not set: tokens are encrypted with a key kept in the data \
             directory; replicas sharing this database must share HIRECJ_SECRET_KEY"
        );
    }
    let store = Store::open(
        settings.database_url.expose(),
        Cipher::from_secret_key(&key),
        &StoreOptions::default(),
    )
    .await?;
    Ok((store, key))
}

/// Creates the data directory (database, secret key) readable by its owner
/// only (0700), and tightens one an older start left wider.
fn private_data_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        tracing::info!(dir = %dir.display(), "made the data directory private (0700)");
    }
    Ok(())
}

impl App {
    /// Opens the store and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let listener =
            TcpListener::bind(settings.bind)
                .await
                .map_err(|source| StartError::Bind {
                    addr: settings.bind,
                    source,
                })?;
        Self::build_with_listener(settings, listener).await
    }

    /// Like [`App::build`], on a listener the caller bound (tests bind
    /// first to learn the port, then put it in `HIRECJ_PUBLIC_URL`).
    /// A public URL whose port is 0 (derived from `HIRECJ_BIND=…:0`) gets
    /// the port actually bound.
    pub async fn build_with_listener(
        mut settings: Settings,
        listener: TcpListener,
    ) -> Result<Self, StartError> {
        if settings.public_url.port() == Some(0)
            && let Ok(addr) = listener.local_addr()
        {
            let _ = settings.public_url.set_port(Some(addr.port()));
        }
        let (store, key) = open_store_with_key(&settings).await?;
        let shopify = ShopifyRuntime::from_settings(&settings, &key).await?;
        if shopify.dev_store {
            tracing::warn!(
                admin = %shopify.config.admin_base_url,
                "DEVELOPMENT STORE: Shopify is simulated by the built-in development store; \
                 anyone who reaches this server can install, uninstall and redact its shops. \
                 Not for merchants: set SHOPIFY_CLIENT_ID and SHOPIFY_CLIENT_SECRET for real Shopify"
            );
        } else {
            tracing::info!(
                client_id = %shopify.config.client_id,
                admin = %shopify.config.admin_base_url,
                api_version = %shopify.config.api_version,
                "Shopify: the app talks to real Shopify"
            );
        }
        let catalog = Arc::new(
            Catalog::load(settings.content_dir.as_deref())
                .map_err(|e| StartError::Content(e.to_string()))?,
        );
        let provider = settings.model.build().map_err(|e| {
            StartError::Model(format!(
                "cannot set up the {} model provider: {e}",
                settings.model.provider.name()
            ))
        })?;
        tracing::info!(
            provider = provider.name(),
            model = provider.model(),
            "CJ's model"
        );
        let engine = Engine::new(
            provider,
            catalog.clone(),
            store.clone(),
            shopify.clone(),
            settings.model.turn_config(),
        );
        let chat = ChatService::new(
            store.clone(),
            catalog,
            engine,
            ChatLimits {
                post_oauth_budget: settings.prepare_budget,
                turn_lease: settings.turn_lease,
                kept_reply: settings.kept_reply,
                ..ChatLimits::default()
            },
            settings.debug,
        );
        let budget = match &settings.redis_url {
            Some(url) => TurnBudget::connect(settings.limits.clone(), url.expose()).await,
            None => TurnBudget::in_process(settings.limits.clone()),
        };
        let max_connections = net::fit_connections(settings.limits.max_connections);
        let mirror = Mirror::new(
            store.clone(),
            shopify.clone(),
            format!("{}{}", settings.public_base(), shopify::WEBHOOKS_PATH),
            settings.mirror_reconcile,
            settings.mirror_lease,
        );
        let state = AppState {
            settings: Arc::new(settings),
            mirror,
            store,
            metrics: Metrics::new(),
            shopify,
            chat,
            sockets: SocketCounts::default(),
            budget,
            sessions: SessionEvents::new(),
        };
        Ok(Self {
            router: router(state.clone()),
            listener,
            state,
            max_connections,
        })
    }

    /// The address actually listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.settings.bind)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests
    /// and the replies CJ is writing finish within the configured shutdown
    /// timeout; chat WebSockets close with 1001 once their reply is out.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let options = ServeOptions {
            header_timeout: self.state.settings.limits.header_timeout,
            max_connections: self.max_connections,
            grace: self.state.settings.shutdown_timeout,
        };
        let housekeeping = tokio::spawn(housekeeping(self.state.clone(), shutdown.clone()));
        let history_read = self.state.mirror.history_read();
        let backfills = tokio::spawn(self.state.mirror.clone().run(shutdown.clone()));
        tokio::spawn(announce_history_read(self.state.clone(), history_read));
        let revocations = tokio::spawn(
            self.state
                .sessions
                .clone()
                .follow_store(self.state.store.clone(), shutdown.clone()),
        );
        // Chat WebSockets are upgraded out of the HTTP connections that
        // `net::serve` drains: the chat drains its own, in the same grace.
        let chat = self.state.chat.clone();
        let (grace, on_shutdown) = (options.grace, shutdown.clone());
        let chat_drained = tokio::spawn(async move {
            on_shutdown.cancelled().await;
            chat.drain();
            if tokio::time::timeout(grace, chat.drained()).await.is_err() {
                tracing::warn!(
                    grace_secs = grace.as_secs(),
                    "replies still being written did not finish in time; stopping anyway"
                );
            }
        });
        let result = net::serve(
            self.listener,
            self.router,
            shutdown,
            options,
            self.state.metrics.clone(),
        )
        .await;
        let _ = chat_drained.await;
        housekeeping.abort();
        revocations.abort();
        // A backfill stopped here resumes on the next start (or on
        // another replica once its lease lapses).
        backfills.abort();
        self.state.store.close().await;
        result
    }
}

/// Periodic upkeep: ends conversations idle for longer than
/// `HIRECJ_CONVERSATION_IDLE_MINUTES` (the seeds' archival step, kept in the
/// database rather than in a cache's TTL), deletes expired sessions (a
/// visitor's that was never used expires within minutes) and OAuth states,
/// and turn traces older than `HIRECJ_TRACE_RETENTION_DAYS`.
/// One replica at a time does it, under a lease it renews every round; if
/// that replica dies, another takes over once the lease lapses.
async fn housekeeping(state: AppState, shutdown: CancellationToken) {
    const EVERY: Duration = Duration::from_secs(60);
    let idle = chrono::Duration::from_std(state.settings.conversation_idle)
        .unwrap_or(chrono::Duration::minutes(30));
    let owner = format!("replica-{}", uuid::Uuid::new_v4().simple());
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = chrono::Utc::now();
        // Held for two and a half rounds: a missed round keeps it.
        let until = now + chrono::Duration::seconds(150);
        match state.store.claim_job("housekeeping", &owner, until).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim the housekeeping");
                continue;
            }
        }
        match state.store.end_idle_conversations(now - idle).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ended = n, "ended idle conversations"),
            Err(e) => tracing::warn!(error = %e, "could not end idle conversations"),
        }
        if let Err(e) = state.store.purge_expired(now).await {
            tracing::warn!(error = %e, "could not purge expired sessions");
        }
        purge_old_traces(&state, now, &shutdown).await;
    }
}

/// Deletes turn traces older than the retention window, a batch at a time
/// (a round deletes at most `ROUND` of them; a backlog goes over rounds).
async fn purge_old_traces(
    state: &AppState,
    now: chrono::DateTime<chrono::Utc>,
    shutdown: &CancellationToken,
) {
    const BATCH: u32 = 2_000;
    const ROUND: u64 = 50_000;
    let retention = chrono::Duration::from_std(state.settings.trace_retention)
        .unwrap_or(chrono::Duration::days(30));
    let before = now - retention;
    let mut deleted = 0;
    while deleted < ROUND && !shutdown.is_cancelled() {
        match state.store.purge_traces(before, BATCH).await {
            Ok(n) => {
                deleted += n;
                if n < u64::from(BATCH) {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not delete old turn traces");
                break;
            }
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, %before, "deleted turn traces past their retention");
    }
}

/// The routes and the middleware around them.
pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    let request_id = HeaderName::from_static("x-request-id");
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/ws/chat", get(chat::ws::upgrade))
        .route(
            "/api/v1/internal/session/initiate",
            axum::routing::post(chat::internal::initiate),
        )
        .route("/metrics", get(metrics::endpoint))
        .merge(shopify::routes())
        .merge(crate::web::routes())
        .merge(crate::api::routes());
    // The built-in development store, when no Shopify app is configured.
    let routes = match &state.shopify.devstore {
        Some(devstore) => routes.nest_service(shopify::DEVSTORE_PREFIX, devstore.clone().router()),
        None => routes,
    };

    routes
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let id = req
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            // The path only: query strings carry OAuth codes and states.
                            tracing::info_span!(
                                "request",
                                request_id = %id,
                                method = %req.method(),
                                path = %req.uri().path(),
                            )
                        })
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(axum::middleware::from_fn_with_state(
                    settings.public_url.scheme() == "https",
                    security_headers,
                ))
                .layer(axum::middleware::from_fn_with_state(
                    state.metrics.clone(),
                    metrics::track,
                ))
                .layer(axum::middleware::from_fn_with_state(
                    Arc::new(settings.public_url.clone()),
                    canonical_loopback_host,
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    settings.request_timeout,
                ))
                .layer(DefaultBodyLimit::max(settings.body_limit)),
        )
        .with_state(state)
}

/// On a development machine the app is reachable as `localhost` and as
/// `127.0.0.1`, but cookies, the WebSocket origin check and the OAuth
/// redirect are tied to `HIRECJ_PUBLIC_URL`. A page opened under the other
/// loopback name is redirected to the public URL, so a merchant who typed
/// `localhost` does not end up with a session the callback cannot see.
async fn canonical_loopback_host(
    State(public): State<Arc<url::Url>>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let loopback = |h: &str| matches!(h, "localhost" | "127.0.0.1" | "[::1]" | "::1");
    let public_host = public.host_str().unwrap_or_default();
    let public_port = public.port_or_known_default();
    let is_page = request.method() == axum::http::Method::GET
        && matches!(request.uri().path(), "/" | "/chat" | "/history" | "/memory");
    if is_page
        && loopback(public_host)
        && let Some(host) = request
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
    {
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) if !n.ends_with(']') || n.starts_with('[') => (n, p.parse::<u16>().ok()),
            _ => (host, None),
        };
        if loopback(name) && name != public_host && port == public_port {
            let target = format!(
                "{}{}",
                public.as_str().trim_end_matches('/'),
                request.uri().path_and_query().map_or("/", |p| p.as_str())
            );
            return axum::response::Redirect::temporary(&target).into_response();
        }
    }
    next.run(request).await
}

/// Headers every response carries, whoever wrote it (pages, JSON, exports,
/// the development store, errors): `nosniff`; on HTML, framing refused
/// (`frame-ancestors 'none'` added to a policy that lacks it, and
/// `X-Frame-Options`); HSTS when the public URL is https.
async fn security_headers(
    State(https): State<bool>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        let framed = headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match framed {
            Some(policy) if policy.contains("frame-ancestors") => {}
            Some(policy) => {
                let joined = format!(
                    "{}; frame-ancestors 'none'",
                    policy.trim_end_matches([';', ' '])
                );
                if let Ok(v) = HeaderValue::from_str(&joined) {
                    headers.insert(header::CONTENT_SECURITY_POLICY, v);
                }
            }
            None => {
                headers.insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("frame-ancestors 'none'"),
                );
            }
        }
        headers
            .entry(header::X_FRAME_OPTIONS)
            .or_insert(HeaderValue::from_static("DENY"));
    }
    if https {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static("max-age=31536000"));
    }
    response
}

/// SIGINT and SIGTERM, listened for from the moment this is made: a signal
/// that arrives before anything awaits it is kept, not fatal. (Make it
/// before the server says it is listening: a supervisor may signal as soon
/// as it does.)
pub struct ShutdownSignals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    /// Installs the handlers now.
    pub fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(signal = name, error = %e, "cannot listen for the signal");
                None
            }
        };
        Self {
            interrupt: listen(SignalKind::interrupt(), "SIGINT"),
            terminate: listen(SignalKind::terminate(), "SIGTERM"),
        }
    }

    /// Resolves on SIGINT or SIGTERM.
    pub async fn recv(mut self) {
        async fn next(s: Option<&mut tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            () = next(self.interrupt.as_mut()) => tracing::info!("SIGINT received; shutting down"),
            () = next(self.terminate.as_mut()) => tracing::info!("SIGTERM received; shutting down"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM (listening from the first poll; see
/// [`ShutdownSignals`] to listen from earlier).
pub async fn shutdown_signal() {
    ShutdownSignals::install().recv().await;
}

/// Why [`serve_until_signal`] ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("server error: {0}")]
    Run(#[from] std::io::Error),
}

/// What `hirecj serve` does: builds the app, prints the line that names its
/// address (launchers read it from stdout), and runs until SIGINT or
/// SIGTERM. One function, so that the bench's own server runs exactly this.
pub async fn serve_until_signal(settings: Settings) -> Result<(), ServeError> {
    let public_url = settings.public_base();
    // Listening for signals before saying we listen: a SIGTERM that comes
    // right after the address is printed shuts down gracefully.
    let signals = ShutdownSignals::install();
    let app = App::build(settings).await?;
    let addr = app.local_addr();
    tracing::info!(%addr, database = app.state().store.backend().as_str(), "HireCJ is listening");
    println!("HireCJ is running on http://{addr} — open {public_url}/ in your browser");
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        signals.recv().await;
        trigger.cancel();
    });
    app.run(shutdown).await?;
    tracing::info!("HireCJ stopped");
    Ok(())
}

/// CJ tells each merchant whose store's history the mirror has just read
/// (see [`crate::chat::ChatService::announce_history_read`]).
async fn announce_history_read(
    state: AppState,
    mut read: tokio::sync::broadcast::Receiver<crate::mirror::HistoryRead>,
) {
    loop {
        let done = match read.recv().await {
            Ok(done) => done,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let user = match state.store.user_by_shop(&done.shop).await {
            Ok(Some(user)) => user,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(shop = %done.shop, error = %e, "could not find the merchant whose history was read");
                continue;
            }
        };
        if let Err(e) = state
            .chat
            .announce_history_read(&user.id, done.orders, done.since, done.at)
            .await
        {
            tracing::warn!(shop = %done.shop, error = %e, "could not tell the merchant their history is read");
        }
    }
}
