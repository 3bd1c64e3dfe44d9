//! The database drops while CJ writes a reply (PostgreSQL behind a TCP
//! proxy the test cuts): the merchant is told `store_unavailable`
//! (retryable), not `internal`; the reply is kept and stored once the
//! database is back, then sent as its `cj_message`, once. A message sent
//! while the database is out gets `store_unavailable` too, and its resend
//! (same `client_id`) once the database is back is acknowledged and
//! answered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use hirecj_testkit::postgres::ScratchDatabase;
use serde_json::json;
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A TCP proxy to PostgreSQL that the test can cut (every connection
/// dropped, new ones closed at once) and restore.
struct CuttableProxy {
    port: u16,
    state: Arc<Mutex<ProxyState>>,
}

#[derive(Default)]
struct ProxyState {
    cut: bool,
    links: JoinSet<()>,
}

impl CuttableProxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let accepting = state.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut state = accepting.lock().unwrap();
                if state.cut {
                    drop(client);
                    continue;
                }
                state.links.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { port, state }
    }

    fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.cut = true;
        state.links.abort_all();
    }

    fn restore(&self) {
        self.state.lock().unwrap().cut = false;
    }
}

/// A scratch PostgreSQL database (`None` without `TEST_DATABASE_URL`),
/// a proxy in front of it, and the database's URL through the proxy.
async fn database_behind_a_proxy(
    prefix: &str,
) -> Option<(ScratchDatabase, CuttableProxy, url::Url)> {
    let scratch = ScratchDatabase::create(prefix).await?;
    let upstream = scratch.url.clone();
    let host = upstream.host_str().unwrap_or("127.0.0.1");
    let upstream_addr = tokio::net::lookup_host((host, upstream.port().unwrap_or(5432)))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = CuttableProxy::start(upstream_addr).await;
    let mut db = upstream;
    db.set_host(Some("127.0.0.1")).unwrap();
    db.set_port(Some(proxy.port)).unwrap();
    Some((scratch, proxy, db))
}

/// The next `error` frame, past progress frames (anything else fails).
async fn next_error(ws: &mut hirecj_testkit::ws::ChatClient) -> hirecj_testkit::ws::Frame {
    loop {
        let frame = ws.next().await.unwrap();
        match frame.kind() {
            "error" => return frame,
            "cj_thinking" | "cj_delta" => {}
            other => panic!("expected an error frame, got {other}: {frame:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_written_while_the_database_is_out_is_kept_and_stored_once() {
    let Some((scratch, proxy, db)) = database_behind_a_proxy("hirecj_outage").await else {
        return;
    };
    let (model, app, cookie) = start_with_mock_model_and(&[("DATABASE_URL", db.as_str())]).await;
    let mut ws = app.chat(&cookie).await;
    let id = ws.start_ad_hoc().await.unwrap();

    // CJ is mid-reply when the database goes.
    model.hold();
    ws.send_json(json!({"type": "message", "text": "Tell me a story", "client_id": "m1"}))
        .await
        .unwrap();
    ws.expect("message_ack").await.unwrap();
    let first = ws.until("cj_delta").await.unwrap();
    assert_eq!(first["text"], "Once upon");
    proxy.cut();
    model.release();
    let outage = next_error(&mut ws).await;
    assert_eq!(outage["code"], "store_unavailable", "{outage:?}");
    assert_eq!(outage["retryable"], true);

    // A message sent meanwhile is refused the same way, nothing stored.
    ws.send_json(json!({"type": "message", "text": "Are you there?", "client_id": "m2"}))
        .await
        .unwrap();
    let refused = next_error(&mut ws).await;
    assert_eq!(refused["code"], "store_unavailable", "{refused:?}");
    assert_eq!(refused["retryable"], true);

    // The database is back: the kept reply is stored and sent, once.
    proxy.restore();
    let reply = ws.until("cj_message").await.unwrap();
    assert_eq!(reply["content"], "Once upon a time.");
    assert_eq!(reply["status"], "complete");
    assert_eq!(reply["seq"], 2);

    // The page sends m2 again (same client_id): acknowledged, answered.
    ws.send_json(json!({"type": "message", "text": "Are you there?", "client_id": "m2"}))
        .await
        .unwrap();
    let ack = ws.until("message_ack").await.unwrap();
    assert_eq!(ack["seq"], 3);
    let second = ws.until("cj_message").await.unwrap();
    assert_eq!(second["seq"], 4);

    let stored = app.messages(&id).await;
    let roles: Vec<String> = stored
        .iter()
        .map(|m| format!("{} {}", m.role.as_str(), m.content))
        .collect();
    assert_eq!(
        roles,
        [
            "merchant Tell me a story",
            "cj Once upon a time.",
            "merchant Are you there?",
            "cj Once upon a time.",
        ],
        "one reply per message"
    );
    app.stop().await;
    scratch.drop().await;
}

/// The database stays out longer than a kept reply is kept: the merchant
/// is told the turn failed (retryable), so the page stops waiting, and the
/// message is answered when the conversation is next opened, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_cannot_be_saved_in_time_is_answered_on_the_next_open() {
    let Some((scratch, proxy, db)) = database_behind_a_proxy("hirecj_long_outage").await else {
        return;
    };

    let (model, app, cookie) = start_with_mock_model_and(&[
        ("DATABASE_URL", db.as_str()),
        ("HIRECJ_KEPT_REPLY_SECS", "1"),
        ("HIRECJ_TURN_LEASE_SECS", "3"),
    ])
    .await;
    let mut ws = app.chat(&cookie).await;
    let id = ws.start_ad_hoc().await.unwrap();

    model.hold();
    ws.send_json(json!({"type": "message", "text": "Tell me a story", "client_id": "m1"}))
        .await
        .unwrap();
    ws.expect("message_ack").await.unwrap();
    ws.until("cj_delta").await.unwrap();
    proxy.cut();
    model.release();
    let outage = next_error(&mut ws).await;
    assert_eq!(outage["code"], "store_unavailable", "{outage:?}");
    // Still out when the kept reply's time is up.
    let failed = next_error(&mut ws).await;
    assert_eq!(failed["code"], "turn_failed", "{failed:?}");
    assert_eq!(failed["retryable"], true);

    // Back: opening the conversation again answers the message, once.
    proxy.restore();
    let mut again = app.chat(&cookie).await;
    again.resume(id, 1).await.unwrap();
    let reply = again.until("cj_message").await.unwrap();
    assert_eq!(reply["seq"], 2);
    assert_eq!(reply["content"], "Once upon a time.");
    let stored = app.messages(&id).await;
    let roles: Vec<String> = stored
        .iter()
        .map(|m| format!("{} {}", m.role.as_str(), m.content))
        .collect();
    assert_eq!(
        roles,
        ["merchant Tell me a story", "cj Once upon a time."],
        "one reply"
    );
    app.stop().await;
    scratch.drop().await;
}
