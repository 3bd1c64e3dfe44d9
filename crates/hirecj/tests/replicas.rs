//! Real `hirecj serve` processes: nothing acknowledged is lost when one is
//! killed with SIGKILL mid-reply, and two processes on one PostgreSQL
//! database behave as one app (OAuth completes on one, the chat on the other
//! gets the prepared message).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use hirecj_testkit::app::{ServerProcess, WAIT};
use hirecj_testkit::model::{MockModel, openai};
use hirecj_testkit::postgres::ScratchDatabase;
use hirecj_testkit::ws::{ChatClient, ClientFrame, ConnectOptions};
use reqwest::cookie::{CookieStore as _, Jar};
use sqlx::Connection as _;

/// A running `hirecj serve` in `dir` with `env`.
fn serve(dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
    ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_hirecj")), dir, env).unwrap()
}

fn browser(jar: Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser session cookie from `GET /api/v1/me`.
async fn session(server: &ServerProcess, jar: &Arc<Jar>) -> String {
    let r = browser(jar.clone())
        .get(server.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let base = url::Url::parse(&server.url("/")).unwrap();
    jar.cookies(&base).unwrap().to_str().unwrap().to_owned()
}

async fn chat(server: &ServerProcess, cookie: &str) -> ChatClient {
    let options = ConnectOptions {
        cookie: Some(cookie.to_owned()),
        wait: WAIT,
        ..ConnectOptions::default()
    };
    ChatClient::connect(&server.ws_url(), &options)
        .await
        .unwrap()
}

/// A mock OpenAI-compatible model that answers "All " then, once released,
/// "good.".
async fn held_model() -> MockModel {
    let model = MockModel::start(vec![openai::text(&["All ", "good."]).gate_before(1)])
        .await
        .unwrap();
    model.hold();
    model
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_reply_loses_nothing_acknowledged_and_duplicates_nothing() {
    let model = held_model().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let base = model.openai_base_url();
    let env = [
        ("HIRECJ_DATA_DIR", data.as_str()),
        ("HIRECJ_MODEL_PROVIDER", "openai"),
        ("OPENAI_BASE_URL", base.as_str()),
        // The killed process's claim on the turn lapses after this.
        ("HIRECJ_TURN_LEASE_SECS", "3"),
    ];
    let mut first = serve(dir.path(), &env);
    let jar = Arc::new(Jar::default());
    let cookie = session(&first, &jar).await;

    let mut ws = chat(&first, &cookie).await;
    let id = ws.start_ad_hoc().await.unwrap();
    ws.send(&ClientFrame::Message {
        text: "How are things?".into(),
        client_id: "k1".into(),
    })
    .await
    .unwrap();
    let ack = ws.expect("message_ack").await.unwrap();
    assert_eq!(ack["seq"], 1);
    let delta = ws.expect("cj_delta").await.unwrap();
    assert_eq!(delta["text"], "All ");
    assert!(model.request_count() > 0);

    first.kill().unwrap();

    let second = serve(dir.path(), &env);
    model.release();
    let mut ws = chat(&second, &cookie).await;
    let resumed = ws.resume(id, 0).await.unwrap();
    let messages = resumed["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        1,
        "the acknowledged message survived, nothing half-written: {resumed}"
    );
    assert_eq!(messages[0]["content"], "How are things?");
    let reply = ws.expect("cj_message").await.unwrap();
    assert_eq!(
        reply["content"], "All good.",
        "the interrupted reply is produced again"
    );
    assert_eq!(reply["seq"], 2);

    let mut ws = chat(&second, &cookie).await;
    let all = ws.resume(id, 0).await.unwrap();
    let seqs: Vec<i64> = all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2], "each message exactly once");
    ws.send(&ClientFrame::Ping { nonce: None }).await.unwrap();
    ws.expect("pong").await.unwrap();
}

/// Runs the development-store install from `server` like a browser.
async fn install(
    server: &ServerProcess,
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
    let Some(scratch) = ScratchDatabase::create("hirecj_replicas").await else {
        return;
    };
    let db = scratch.url.clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let key = "replica-shared-secret-key-0123456789abcdef";
    let start = |dir: &tempfile::TempDir| {
        serve(
            dir.path(),
            &[
                ("DATABASE_URL", db.as_str()),
                ("HIRECJ_SECRET_KEY", key),
                ("HIRECJ_DATA_DIR", &dir.path().display().to_string()),
            ],
        )
    };
    let a = start(&dir_a);
    let b = start(&dir_b);

    // The visitor starts on A: onboarding, greeting, Connect Shopify.
    let jar = Arc::new(Jar::default());
    let visitor = session(&a, &jar).await;
    let mut ws = chat(&a, &visitor).await;
    ws.send(&ClientFrame::StartConversation {
        conversation_id: None,
        workflow: None,
        last_seq: 0,
    })
    .await
    .unwrap();
    let id = ws.expect("conversation_started").await.unwrap()["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.expect("cj_message").await.unwrap();
    let landed = install(&a, &browser(jar.clone()), "twin-peaks", &id).await;
    assert_eq!(landed, format!("/chat?conversation_id={id}"));

    // The chat lands on B: the message A prepared is there at once.
    let merchant = jar
        .cookies(&url::Url::parse(&a.url("/")).unwrap())
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut ws = chat(&b, &merchant).await;
    let opened = ws.resume(id.parse().unwrap(), 0).await.unwrap();
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
    ws.send(&ClientFrame::Ping { nonce: None }).await.unwrap();
    ws.expect("pong").await.unwrap();

    drop((a, b));
    scratch.drop().await;
}

/// A free port on 127.0.0.1 (bound, then released for a child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `hirecj devstore --port N`: the development store on its own, as every
/// replica's Shopify. Killed on drop.
struct StandaloneStore(std::process::Child);

impl Drop for StandaloneStore {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn standalone_store(dir: &Path, port: u16, env: &[(&str, &str)]) -> StandaloneStore {
    use std::io::BufRead as _;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hirecj"));
    cmd.args(["devstore", "--port", &port.to_string()])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HIRECJ_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    let store = StandaloneStore(child);
    let line = rx.recv_timeout(WAIT).unwrap().unwrap().unwrap();
    assert!(line.contains("development store on http://"), "{line}");
    store
}

/// Two replicas on one PostgreSQL database and one Shopify (the
/// development store on its own): the install on one registers the store
/// mirror, exactly one replica runs its backfill, and the other answers
/// from the mirror it did not fill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_database_share_one_store_mirror() {
    let Some(scratch) = ScratchDatabase::create("hirecj_replicas").await else {
        return;
    };
    let db = scratch.url.clone();

    let key = "mirror-replicas-secret-key-0123456789abcdef";
    let (port_a, port_store) = (free_port(), free_port());
    let a_url = format!("http://127.0.0.1:{port_a}");
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let dir_of = |i: usize| dirs[i].path().display().to_string();
    // The store sends the merchant back to replica A (its app URL).
    let (store_dir, a_dir, b_dir) = (dir_of(0), dir_of(1), dir_of(2));
    let _shopify = standalone_store(
        dirs[0].path(),
        port_store,
        &[
            ("HIRECJ_SECRET_KEY", key),
            ("HIRECJ_DATA_DIR", &store_dir),
            ("HIRECJ_PUBLIC_URL", &a_url),
        ],
    );
    let admin_base = format!("http://127.0.0.1:{port_store}/devstore/{{shop}}");
    let replica = |dir: &tempfile::TempDir, data: &str, extra: &[(&str, &str)]| {
        let mut env = vec![
            ("DATABASE_URL", db.as_str()),
            ("HIRECJ_SECRET_KEY", key),
            ("HIRECJ_DATA_DIR", data),
            ("SHOPIFY_ADMIN_BASE_URL", admin_base.as_str()),
        ];
        env.extend_from_slice(extra);
        serve(dir.path(), &env)
    };
    let bind_a = format!("127.0.0.1:{port_a}");
    let a = replica(
        &dirs[1],
        &a_dir,
        &[("HIRECJ_BIND", &bind_a), ("HIRECJ_PUBLIC_URL", &a_url)],
    );
    let b = replica(&dirs[2], &b_dir, &[]);

    // The merchant installs through A.
    let jar = Arc::new(Jar::default());
    let visitor = session(&a, &jar).await;
    let mut ws = chat(&a, &visitor).await;
    let id = ws.start_ad_hoc().await.unwrap().to_string();
    drop(ws);
    let landed = install(&a, &browser(jar.clone()), "shared-mirror", &id).await;
    assert!(landed.starts_with("/chat"), "{landed}");
    let (merchant, user) = merchant(&b, &jar).await;

    // One backfill, seen the same from both replicas.
    let freshness = backfill_complete(&b, &user, &merchant, WAIT).await;
    let orders = freshness["orders_mirrored"].as_i64().unwrap();
    assert!(orders > 100, "{freshness}");
    let mut conn = sqlx::PgConnection::connect(db.as_str()).await.unwrap();
    let (mirrored, claims): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM mirror_orders WHERE shop = $1),
                (SELECT COUNT(*) FROM mirror_shops WHERE shop = $1)",
    )
    .bind("shared-mirror.myshopify.com")
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((mirrored, claims), (orders, 1));

    // B answers "What sells best?" from the mirror A's backfill filled.
    let mut ws = chat(&b, &merchant).await;
    ws.start_ad_hoc().await.unwrap();
    ws.send(&ClientFrame::Message {
        text: "What sells best?".into(),
        client_id: "best-1".into(),
    })
    .await
    .unwrap();
    let reply = ws.until("cj_message").await.unwrap();
    let text = reply.json()["content"].as_str().unwrap().to_owned();
    assert!(text.contains("Best sellers"), "{text}");
    assert!(!text.contains("partial"), "{text}");
    drop(ws);

    drop(conn);
    drop((a, b));
    scratch.drop().await;
}

/// The merchant's session cookie (from `jar`) and user id, as `server`
/// sees them.
async fn merchant(server: &ServerProcess, jar: &Jar) -> (String, String) {
    let cookie = jar
        .cookies(&url::Url::parse(&server.url("/")).unwrap())
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let me: serde_json::Value = reqwest::Client::new()
        .get(server.url("/api/v1/me"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user = me["user_id"].as_str().unwrap().to_owned();
    (cookie, user)
}

/// Waits (at most `wait`) until `server` shows the merchant's store mirror
/// complete; returns that state.
async fn backfill_complete(
    server: &ServerProcess,
    user: &str,
    cookie: &str,
    wait: std::time::Duration,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let mirror = mirror_state(server, user, cookie).await;
        match mirror["backfill"].as_str() {
            Some("complete") => return mirror,
            Some("failed") => panic!("the backfill failed: {mirror}"),
            _ => {}
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no backfill: {mirror}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The store mirror's state as `GET /api/v1/users/{id}/store` shows it.
async fn mirror_state(server: &ServerProcess, user: &str, cookie: &str) -> serde_json::Value {
    let body: serde_json::Value = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/users/{user}/store")))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["mirror"].clone()
}

/// A `hirecj serve` killed with SIGKILL in the middle of a backfill (its
/// orders export still running at Shopify): started again, it resumes the
/// same export once its old claim lapses, and the mirror ends complete
/// with every order the export held. Shopify ran three exports in all
/// (orders, products, customers): none was started twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_killed_mid_way_resumes_after_a_restart() {
    let key = "mirror-restart-secret-key-0123456789abcdef";
    let (port_app, port_store) = (free_port(), free_port());
    let app_url = format!("http://127.0.0.1:{port_app}");
    let bind = format!("127.0.0.1:{port_app}");
    let store_dir = tempfile::tempdir().unwrap();
    let app_dir = tempfile::tempdir().unwrap();
    let store_data = store_dir.path().display().to_string();
    let app_data = app_dir.path().display().to_string();
    let _shopify = standalone_store(
        store_dir.path(),
        port_store,
        &[
            ("HIRECJ_SECRET_KEY", key),
            ("HIRECJ_DATA_DIR", &store_data),
            ("HIRECJ_PUBLIC_URL", &app_url),
        ],
    );
    let admin_base = format!("http://127.0.0.1:{port_store}/devstore/{{shop}}");
    let env = [
        ("HIRECJ_SECRET_KEY", key),
        ("HIRECJ_DATA_DIR", app_data.as_str()),
        ("SHOPIFY_ADMIN_BASE_URL", admin_base.as_str()),
        ("HIRECJ_BIND", bind.as_str()),
        ("HIRECJ_PUBLIC_URL", app_url.as_str()),
        ("HIRECJ_MIRROR_LEASE_SECS", "5"),
    ];
    let shop = "resumed-mirror";
    let control = format!("http://127.0.0.1:{port_store}/devstore/_control/bulk?shop={shop}");
    let http = reqwest::Client::new();
    let bulk = |hold: Option<bool>| {
        let url = match hold {
            Some(h) => format!("{control}&hold={h}"),
            None => control.clone(),
        };
        let http = http.clone();
        async move {
            let r = http.post(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    // Shopify takes its time over the export.
    bulk(Some(true)).await;

    let first = serve(app_dir.path(), &env);
    let jar = Arc::new(Jar::default());
    let visitor = session(&first, &jar).await;
    let mut ws = chat(&first, &visitor).await;
    let id = ws.start_ad_hoc().await.unwrap().to_string();
    drop(ws);
    let landed = install(&first, &browser(jar.clone()), shop, &id).await;
    assert!(landed.starts_with("/chat"), "{landed}");
    let (merchant, user) = merchant(&first, &jar).await;

    // The orders export runs and the backfill waits on it: kill the app.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mirror = mirror_state(&first, &user, &merchant).await;
        let ops = bulk(None).await;
        let running = ops["operations"]
            .as_array()
            .is_some_and(|o| o.len() == 1 && o[0]["status"] == "RUNNING");
        if mirror["backfill"] == "running" && running {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{mirror} {ops}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut first = first;
    first.kill().unwrap();

    // Shopify finishes the export while the app is down; the app comes
    // back and picks the backfill up where it stood.
    bulk(Some(false)).await;
    let second = serve(app_dir.path(), &env);
    // The dead process's claim lapses first (5 s here, 60 by default).
    let mirror = backfill_complete(&second, &user, &merchant, 3 * WAIT).await;
    let ops = bulk(None).await;
    let ops = ops["operations"].as_array().unwrap().clone();
    assert_eq!(ops.len(), 3, "one export each, none started twice: {ops:?}");
    assert!(
        ops[0]["query"].as_str().unwrap().contains("orders"),
        "{ops:?}"
    );
    let exported = ops[0]["root_object_count"].as_i64().unwrap();
    assert!(exported > 100, "{ops:?}");
    assert_eq!(
        mirror["orders_mirrored"].as_i64(),
        Some(exported),
        "{mirror}"
    );
}

/// SIGTERM while CJ writes a reply: the reply is finished and sent, the
/// socket then closes with 1001 (going away), the process exits 0, and the
/// reply is stored once: nothing is regenerated on the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_reply_finishes_it_then_closes_with_1001() {
    let model = held_model().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let base = model.openai_base_url();
    let env = [
        ("HIRECJ_DATA_DIR", data.as_str()),
        ("HIRECJ_MODEL_PROVIDER", "openai"),
        ("OPENAI_BASE_URL", base.as_str()),
        ("HIRECJ_SHUTDOWN_TIMEOUT_SECS", "20"),
    ];
    let mut first = serve(dir.path(), &env);
    let jar = Arc::new(Jar::default());
    let cookie = session(&first, &jar).await;
    let mut ws = chat(&first, &cookie).await;
    let id = ws.start_ad_hoc().await.unwrap();
    ws.send(&ClientFrame::Message {
        text: "How are things?".into(),
        client_id: "t1".into(),
    })
    .await
    .unwrap();
    ws.expect("message_ack").await.unwrap();
    let delta = ws.expect("cj_delta").await.unwrap();
    assert_eq!(delta["text"], "All ");

    let status = std::process::Command::new("kill")
        .args(["-TERM", &first.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    model.release();
    let (frames, code) = ws.until_closed().await.unwrap();
    let reply = frames
        .iter()
        .find(|f| f.kind() == "cj_message")
        .unwrap_or_else(|| panic!("no reply before the close: {frames:?}"));
    assert_eq!(reply["content"], "All good.");
    assert_eq!(code, Some(1001), "{frames:?}");
    let deadline = std::time::Instant::now() + WAIT;
    let exit = loop {
        if let Some(exit) = first.exited() {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "still running");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0));

    let second = serve(dir.path(), &env);
    let mut ws = chat(&second, &cookie).await;
    let all = ws.resume(id, 0).await.unwrap();
    let messages = fields(&all, "content");
    assert_eq!(
        messages,
        vec![
            (1, "How are things?".to_owned()),
            (2, "All good.".to_owned())
        ]
    );
    ws.send(&ClientFrame::Ping { nonce: None }).await.unwrap();
    ws.expect("pong").await.unwrap();
    assert_eq!(model.request_count(), 1, "the reply was not written twice");
}

/// Each message of a `conversation_started` frame as (seq, its `field`).
fn fields(started: &hirecj_testkit::ws::Frame, field: &str) -> Vec<(i64, String)> {
    started["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seq"].as_i64().unwrap(),
                m[field].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Two replicas on one PostgreSQL database, a tab on each, one
/// conversation: while A writes CJ's reply, opening the conversation on B
/// starts no second reply and a message sent to B waits its turn; B's tab
/// gets the rest of A's reply live, then the reply. Then A is killed
/// mid-reply: once its claim lapses, B writes the reply, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_write_one_reply_per_message() {
    let Some(scratch) = ScratchDatabase::create("hirecj_replicas").await else {
        return;
    };
    let db = scratch.url.clone();
    let model = held_model().await;
    let base = model.openai_base_url();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let start = |dir: &tempfile::TempDir| {
        serve(
            dir.path(),
            &[
                ("DATABASE_URL", db.as_str()),
                (
                    "HIRECJ_SECRET_KEY",
                    "replica-shared-secret-key-0123456789abcdef",
                ),
                ("HIRECJ_DATA_DIR", &dir.path().display().to_string()),
                ("HIRECJ_MODEL_PROVIDER", "openai"),
                ("OPENAI_BASE_URL", base.as_str()),
                ("HIRECJ_TURN_LEASE_SECS", "3"),
            ],
        )
    };
    let mut a = start(&dir_a);
    let b = start(&dir_b);
    let jar = Arc::new(Jar::default());
    let cookie = session(&a, &jar).await;

    let mut tab_a = chat(&a, &cookie).await;
    let id = tab_a.start_ad_hoc().await.unwrap();
    tab_a
        .send(&ClientFrame::Message {
            text: "How are things?".into(),
            client_id: "m1".into(),
        })
        .await
        .unwrap();
    tab_a.expect("message_ack").await.unwrap();
    assert_eq!(tab_a.expect("cj_delta").await.unwrap()["text"], "All ");

    // B: the same conversation, while A's reply is half written.
    let mut tab_b = chat(&b, &cookie).await;
    let opened = tab_b.resume(id, 0).await.unwrap();
    assert_eq!(opened["messages"].as_array().unwrap().len(), 1, "{opened}");
    tab_b
        .send(&ClientFrame::Message {
            text: "And sales?".into(),
            client_id: "m2".into(),
        })
        .await
        .unwrap();
    let refused = tab_b.expect("error").await.unwrap();
    assert_eq!(refused["code"], "turn_in_progress", "{refused}");
    // The resend of A's message through B gets its original ack.
    tab_b
        .send(&ClientFrame::Message {
            text: "How are things?".into(),
            client_id: "m1".into(),
        })
        .await
        .unwrap();
    assert_eq!(tab_b.expect("message_ack").await.unwrap()["seq"], 1);

    model.release();
    let on_a = tab_a.expect("cj_message").await.unwrap();
    // B's tab follows A's turn live (PostgreSQL LISTEN/NOTIFY): the rest
    // of the reply streams in, then the reply.
    let (live, on_b) = tab_b.collect_until("cj_message").await.unwrap();
    assert!(
        live.iter()
            .any(|f| f.kind() == "cj_delta" && f["text"] == "good."),
        "{live:?}"
    );
    assert_eq!(on_a["content"], "All good.");
    assert_eq!(
        (on_b["seq"].clone(), on_b["content"].clone()),
        (on_a["seq"].clone(), on_a["content"].clone())
    );
    assert_eq!(model.request_count(), 1, "one reply, written once");

    // A dies while writing the next reply; B's tab reopens the
    // conversation and gets the reply from B once A's claim lapses.
    model.hold();
    tab_a
        .send(&ClientFrame::Message {
            text: "And sales?".into(),
            client_id: "m3".into(),
        })
        .await
        .unwrap();
    assert_eq!(tab_a.expect("message_ack").await.unwrap()["seq"], 3);
    assert_eq!(tab_a.expect("cj_delta").await.unwrap()["text"], "All ");
    a.kill().unwrap();
    model.release();
    let mut tab_b = chat(&b, &cookie).await;
    tab_b.resume(id, 2).await.unwrap();
    let reply = tab_b.expect("cj_message").await.unwrap();
    assert_eq!(
        (reply["seq"].as_i64(), reply["content"].as_str()),
        (Some(4), Some("All good."))
    );

    let mut tab_b = chat(&b, &cookie).await;
    let all = tab_b.resume(id, 0).await.unwrap();
    let roles = fields(&all, "role");
    assert_eq!(
        roles,
        vec![
            (1, "merchant".to_owned()),
            (2, "cj".to_owned()),
            (3, "merchant".to_owned()),
            (4, "cj".to_owned())
        ],
        "one reply after each message"
    );
    drop((a, b));
    scratch.drop().await;
}
