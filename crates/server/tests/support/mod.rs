//! Shared helpers for the server's integration tests: the app on port 0, a
//! WebSocket client, and a mock OpenAI-compatible model whose stream the
//! test can hold open.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use futures::{SinkExt as _, StreamExt as _};
use hirecj_server::{App, LoadOptions, Settings};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// Longest wait for any one expected frame or response.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: hirecj_server::AppState,
    /// A client that does not follow redirects.
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start_app(extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut app = start_app_in(dir.path(), extra).await;
    app._dir = Some(dir);
    app
}

/// The app on the data directory `dir` (two apps on one directory share
/// the SQLite database and the secret key, like two replicas).
pub async fn start_app_in(dir: &std::path::Path, extra: &[(&str, &str)]) -> TestApp {
    let mut env: HashMap<String, String> = HashMap::from([
        ("HIRECJ_BIND".into(), "127.0.0.1:0".into()),
        ("HIRECJ_DATA_DIR".into(), dir.display().to_string()),
        ("HIRECJ_LOG".into(), "warn".into()),
    ]);
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let settings = Settings::load(&LoadOptions {
        env,
        ..Default::default()
    })
    .unwrap();
    let app = App::build(settings).await.unwrap();
    let addr = app.local_addr();
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run(shutdown.clone()));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        addr,
        state,
        http,
        shutdown,
        handle: Some(handle),
        _dir: None,
    }
}

/// The app answering through a [`MockModel`], with a visitor's cookie.
pub async fn start_with_mock_model() -> (MockModel, TestApp, String) {
    start_with_mock_model_and(&[]).await
}

/// [`start_with_mock_model`] with more settings.
pub async fn start_with_mock_model_and(extra: &[(&str, &str)]) -> (MockModel, TestApp, String) {
    let model = MockModel::start().await;
    let base_url = model.base_url();
    let mut env = vec![
        ("HIRECJ_MODEL_PROVIDER", "openai"),
        ("OPENAI_BASE_URL", base_url.as_str()),
    ];
    env.extend_from_slice(extra);
    let app = start_app(&env).await;
    let cookie = app.visitor_cookie().await;
    (model, app, cookie)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A new anonymous browser session; returns the `Cookie` header value.
    pub async fn visitor_cookie(&self) -> String {
        let (token, _) = self
            .state
            .store
            .create_session(None, chrono::Utc::now() + chrono::Duration::days(1))
            .await
            .unwrap();
        format!("hirecj_session={}", token.expose())
    }

    pub async fn messages(&self, id: &str) -> Vec<hirecj_domain::Message> {
        self.state
            .store
            .messages(id.parse().unwrap(), 0)
            .await
            .unwrap()
    }

    /// A merchant with a signed-in session: the user and the `Cookie` value.
    pub async fn merchant(&self, shop: &str) -> (hirecj_domain::User, String) {
        let (user, _) = self
            .state
            .store
            .get_or_create_user(shop, Some("owner@example.com"), Some("Owner"))
            .await
            .unwrap();
        let (token, _) = self
            .state
            .store
            .create_session(
                Some(&user.id),
                chrono::Utc::now() + chrono::Duration::days(1),
            )
            .await
            .unwrap();
        (user, format!("hirecj_session={}", token.expose()))
    }

    /// `GET path`, with a `Cookie` header when given; redirects not followed.
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(c) = cookie {
            req = req.header(reqwest::header::COOKIE, c);
        }
        req.send().await.unwrap()
    }

    /// Stops the app and waits (bounded) for it to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(WAIT, handle).await;
        }
    }
}

/// A WebSocket client speaking the chat protocol.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

fn request(
    addr: SocketAddr,
    cookie: &str,
    origin: Option<&str>,
) -> tungstenite::handshake::client::Request {
    let mut req = format!("ws://{addr}/ws/chat")
        .into_client_request()
        .unwrap();
    if !cookie.is_empty() {
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
    }
    if let Some(origin) = origin {
        req.headers_mut().insert("origin", origin.parse().unwrap());
    }
    req
}

impl Ws {
    pub async fn connect(addr: SocketAddr, cookie: &str) -> Self {
        let origin = format!("http://{addr}");
        let (stream, _) = tokio_tungstenite::connect_async(request(addr, cookie, Some(&origin)))
            .await
            .unwrap();
        Self { stream }
    }

    /// Connects as a client behind the app's proxy at `forwarded_for`
    /// (`X-Forwarded-For`); the HTTP status of a refused upgrade otherwise.
    pub async fn connect_from(
        addr: SocketAddr,
        cookie: &str,
        forwarded_for: &str,
    ) -> Result<Self, u16> {
        let mut req = request(addr, cookie, Some(&format!("http://{addr}")));
        req.headers_mut()
            .insert("x-forwarded-for", forwarded_for.parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Ok((stream, _)) => Ok(Self { stream }),
            Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("unexpected WebSocket error: {e}"),
        }
    }

    /// Reads until the server closes the socket: the JSON frames it sent
    /// first and the close code, if it gave one.
    pub async fn until_closed(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut frames = Vec::new();
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("the server did not close the socket in time");
            match msg {
                None | Some(Err(_)) => return (frames, None),
                Some(Ok(Message::Close(frame))) => {
                    return (frames, frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(Message::Text(t))) => {
                    frames.push(serde_json::from_str(t.as_str()).unwrap())
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The HTTP status of a refused upgrade, or `None` when it succeeded.
    pub async fn try_connect(addr: SocketAddr, cookie: &str) -> Option<u16> {
        Self::status_of(tokio_tungstenite::connect_async(request(addr, cookie, None)).await)
    }

    pub async fn try_connect_with_origin(
        addr: SocketAddr,
        cookie: &str,
        origin: &str,
    ) -> Option<u16> {
        Self::status_of(tokio_tungstenite::connect_async(request(addr, cookie, Some(origin))).await)
    }

    fn status_of<T>(r: Result<T, tungstenite::Error>) -> Option<u16> {
        match r {
            Ok(_) => None,
            Err(tungstenite::Error::Http(response)) => Some(response.status().as_u16()),
            Err(e) => panic!("unexpected WebSocket error: {e}"),
        }
    }

    /// Starts an `ad_hoc_support` conversation (merchant-initiated, so no
    /// greeting turn runs first) and returns its id.
    pub async fn start_ad_hoc(&mut self) -> String {
        self.send(serde_json::json!({"type": "start_conversation", "workflow": "ad_hoc_support"}))
            .await;
        self.expect("conversation_started").await["conversation_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    /// The next JSON frame.
    pub async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("no frame arrived in time")
                .expect("the connection closed")
                .unwrap();
            match msg {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next frame of type `ty`, skipping progress frames (`cj_thinking`,
    /// `cj_delta`) but nothing else.
    pub async fn expect(&mut self, ty: &str) -> Value {
        self.collect_until(ty).await.1
    }

    /// Frames up to the next one of type `ty`, and that one.
    pub async fn collect_until(&mut self, ty: &str) -> (Vec<Value>, Value) {
        let mut seen = Vec::new();
        loop {
            let frame = self.next().await;
            if frame["type"] == ty {
                return (seen, frame);
            }
            let progress = frame["type"] == "cj_thinking" || frame["type"] == "cj_delta";
            assert!(progress, "expected {ty}, got {frame}");
            seen.push(frame);
        }
    }
}

/// A mock OpenAI-compatible server: every completion streams "Once upon"
/// then " a time." in flushed chunks. While held, the stream pauses after
/// the first chunk until released.
pub struct MockModel {
    addr: SocketAddr,
    hold: Arc<AtomicBool>,
    released: watch::Sender<bool>,
}

impl MockModel {
    pub async fn start() -> Self {
        let hold = Arc::new(AtomicBool::new(false));
        let (released, _) = watch::channel(false);
        let (h, rel) = (hold.clone(), released.clone());
        let app = Router::new().route(
            "/v1/chat/completions",
            post(move || {
                let hold = h.load(Ordering::SeqCst);
                let mut rx = rel.subscribe();
                async move {
                    let stream = async_stream_body(hold, async move {
                        let _ = rx.wait_for(|r| *r).await;
                    });
                    axum::response::Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(stream)
                        .unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            hold,
            released,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn hold_after_first_chunk(&self, hold: bool) {
        self.hold.store(hold, Ordering::SeqCst);
        self.released.send_replace(!hold);
    }

    pub fn release(&self) {
        self.hold.store(false, Ordering::SeqCst);
        self.released.send_replace(true);
    }
}

fn chunk(content: Option<&str>, finish: Option<&str>) -> String {
    let delta = match content {
        Some(c) => serde_json::json!({"content": c}),
        None => serde_json::json!({}),
    };
    let body = serde_json::json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    format!("data: {body}\n\n")
}

fn async_stream_body(
    hold: bool,
    released: impl std::future::Future<Output = ()> + Send + 'static,
) -> Body {
    let first =
        futures::stream::once(async { Ok::<_, std::io::Error>(chunk(Some("Once upon"), None)) });
    let rest = futures::stream::once(async move {
        if hold {
            released.await;
        }
        Ok::<_, std::io::Error>(format!(
            "{}{}data: [DONE]\n\n",
            chunk(Some(" a time."), None),
            chunk(None, Some("stop"))
        ))
    });
    Body::from_stream(first.chain(rest))
}
