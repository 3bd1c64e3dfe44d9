//! Real `hirecj serve` processes: nothing acknowledged is lost when one is
//! killed with SIGKILL mid-reply, and two processes on one PostgreSQL
//! database behave as one app (OAuth completes on one, the chat on the other
//! gets the prepared message).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::routing::post;
use futures::{SinkExt as _, StreamExt as _};
use reqwest::cookie::{CookieStore as _, Jar};
use serde_json::{Value, json};
use sqlx::Connection as _;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const WAIT: Duration = Duration::from_secs(30);

/// A running `hirecj serve`.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hirecj"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HIRECJ_BIND", "127.0.0.1:0")
            .env("HIRECJ_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().unwrap().unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap();
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn kill9(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn browser(jar: Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser session cookie from `GET /api/v1/me`.
async fn session(server: &Server, jar: &Arc<Jar>) -> String {
    let r = browser(jar.clone())
        .get(server.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let base = url::Url::parse(&server.url("/")).unwrap();
    jar.cookies(&base).unwrap().to_str().unwrap().to_owned()
}

struct Ws(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl Ws {
    async fn connect(server: &Server, cookie: &str) -> Self {
        let mut req = format!("ws://{}/ws/chat", server.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        Self(tokio_tungstenite::connect_async(req).await.unwrap().0)
    }

    async fn send(&mut self, v: Value) {
        self.0.send(Message::text(v.to_string())).await.unwrap();
    }

    async fn expect(&mut self, ty: &str) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.0.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == ty {
                return v;
            }
            assert!(
                v["type"] == "cj_thinking" || v["type"] == "cj_delta",
                "expected {ty}, got {v}"
            );
        }
    }
}

/// A mock OpenAI-compatible model that pauses after its first chunk until
/// released.
struct MockModel {
    addr: SocketAddr,
    released: watch::Sender<bool>,
    requests: Arc<AtomicBool>,
}

impl MockModel {
    async fn start() -> Self {
        let (released, _) = watch::channel(false);
        let rel = released.clone();
        let requests = Arc::new(AtomicBool::new(false));
        let seen = requests.clone();
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            post(move || {
                seen.store(true, Ordering::SeqCst);
                let mut rx = rel.subscribe();
                async move {
                    let chunk = |c: Option<&str>, finish: Option<&str>| {
                        let delta = c.map_or(json!({}), |c| json!({"content": c}));
                        format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
                    };
                    let first = chunk(Some("All "), None);
                    let rest = format!("{}{}data: [DONE]\n\n", chunk(Some("good."), None), chunk(None, Some("stop")));
                    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(
                        futures::stream::once(async move {
                            let _ = rx.wait_for(|r| *r).await;
                            Ok::<_, std::io::Error>(rest)
                        }),
                    );
                    axum::response::Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from_stream(body))
                        .unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            released,
            requests,
        }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_reply_loses_nothing_acknowledged_and_duplicates_nothing() {
    let model = MockModel::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let base = model.base_url();
    let env = [
        ("HIRECJ_DATA_DIR", data.as_str()),
        ("HIRECJ_MODEL_PROVIDER", "openai"),
        ("OPENAI_BASE_URL", base.as_str()),
    ];
    let mut first = Server::start(&env);
    let jar = Arc::new(Jar::default());
    let cookie = session(&first, &jar).await;

    let mut ws = Ws::connect(&first, &cookie).await;
    ws.send(json!({"type": "start_conversation", "workflow": "ad_hoc_support"}))
        .await;
    let id = ws.expect("conversation_started").await["conversation_id"].clone();
    ws.send(json!({"type": "message", "text": "How are things?", "client_id": "k1"}))
        .await;
    let ack = ws.expect("message_ack").await;
    assert_eq!(ack["seq"], 1);
    let delta = ws.expect("cj_delta").await;
    assert_eq!(delta["text"], "All ");
    assert!(model.requests.load(Ordering::SeqCst));

    first.kill9();

    let second = Server::start(&env);
    model.released.send_replace(true);
    let mut ws = Ws::connect(&second, &cookie).await;
    ws.send(json!({"type": "start_conversation", "conversation_id": id, "last_seq": 0}))
        .await;
    let resumed = ws.expect("conversation_started").await;
    let messages = resumed["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        1,
        "the acknowledged message survived, nothing half-written: {resumed}"
    );
    assert_eq!(messages[0]["content"], "How are things?");
    let reply = ws.expect("cj_message").await;
    assert_eq!(
        reply["content"], "All good.",
        "the interrupted reply is produced again"
    );
    assert_eq!(reply["seq"], 2);

    let mut ws = Ws::connect(&second, &cookie).await;
    ws.send(json!({"type": "start_conversation", "conversation_id": id, "last_seq": 0}))
        .await;
    let all = ws.expect("conversation_started").await;
    let seqs: Vec<i64> = all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2], "each message exactly once");
    ws.send(json!({"type": "ping"})).await;
    ws.expect("pong").await;
}

/// Runs the development-store install from `server` like a browser.
async fn install(
    server: &Server,
    http: &reqwest::Client,
    shop: &str,
    conversation: &str,
) -> String {
    let r = http
        .get(server.url(&format!(
            "/api/v1/shopify/install?shop={shop}&conversation_id={conversation}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let authorize = r.headers()["location"].to_str().unwrap().to_owned();
    let url = url::Url::parse(&authorize).unwrap();
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("decision".into(), "install".into()));
    let mut post_url = url.clone();
    post_url.set_query(None);
    let r = http.post(post_url).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    let r = http.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 302);
    r.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_database_act_as_one_app() {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "TEST_DATABASE_URL must be set in CI"
        );
        eprintln!("TEST_DATABASE_URL not set: skipping");
        return;
    };
    let name = format!("hirecj_replicas_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut db = url::Url::parse(&admin_url).unwrap();
    db.set_path(&format!("/{name}"));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let key = "replica-shared-secret-key-0123456789abcdef";
    let start = |dir: &tempfile::TempDir| {
        Server::start(&[
            ("DATABASE_URL", db.as_str()),
            ("HIRECJ_SECRET_KEY", key),
            ("HIRECJ_DATA_DIR", &dir.path().display().to_string()),
        ])
    };
    let a = start(&dir_a);
    let b = start(&dir_b);

    // The visitor starts on A: onboarding, greeting, Connect Shopify.
    let jar = Arc::new(Jar::default());
    let visitor = session(&a, &jar).await;
    let mut ws = Ws::connect(&a, &visitor).await;
    ws.send(json!({"type": "start_conversation"})).await;
    let id = ws.expect("conversation_started").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.expect("cj_message").await;
    let landed = install(&a, &browser(jar.clone()), "twin-peaks", &id).await;
    assert_eq!(landed, format!("/chat?conversation_id={id}"));

    // The chat lands on B: the message A prepared is there at once.
    let merchant = jar
        .cookies(&url::Url::parse(&a.url("/")).unwrap())
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut ws = Ws::connect(&b, &merchant).await;
    ws.send(json!({"type": "start_conversation", "conversation_id": id, "last_seq": 0}))
        .await;
    let opened = ws.expect("conversation_started").await;
    assert_eq!(opened["store_connected"], true);
    let last = opened["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "cj", "{opened}");
    assert!(
        last["content"].as_str().unwrap().contains("Orders:"),
        "{last}"
    );
    ws.send(json!({"type": "ping"})).await;
    ws.expect("pong").await;

    drop((a, b));
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}
