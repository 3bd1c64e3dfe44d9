//! Three `hirecj serve` replicas on one PostgreSQL database behind a real
//! load balancer (Debian's `haproxy`: round robin, WebSockets passed
//! through, `/readyz` as its health check), as an operator runs them. A
//! rolling restart of all three (SIGTERM one at a time, each started again
//! on its port) during a load of 100 conversations × 10 messages ends with
//! every acknowledged message stored once and exactly one CJ reply after
//! each: the clients do what the page does (reconnect through the load
//! balancer, resume by sequence number, send again what was not
//! acknowledged, same `client_id`). And through the same balancer: two
//! tabs on two replicas see the same live frames and one reply per
//! message; messages sent through two replicas at once get one reply
//! each, in order; a replica killed (SIGKILL) while writing a reply leaves
//! it to another, which writes it once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hirecj_domain::ConversationId;
use hirecj_testkit::app::ServerProcess;
use hirecj_testkit::model::{MockModel, openai};
use hirecj_testkit::postgres::ScratchDatabase;
use hirecj_testkit::ws::{ChatClient, ClientFrame, ConnectOptions, Frame};
use reqwest::cookie::{CookieStore as _, Jar};

const CONVERSATIONS: usize = 100;
const MESSAGES: usize = 10;
/// Between a reply and the next message: the load spans the restarts.
const PAUSE: Duration = Duration::from_millis(400);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `haproxy` on `PATH`, or `None` (skipped) outside CI.
fn haproxy() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join("haproxy"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "haproxy must be installed in CI (.ci/run installs it)"
        );
        eprintln!("haproxy not installed: skipping");
    }
    found
}

/// The load balancer, killed on drop.
struct Balancer(Child);

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn balancer(exe: &Path, dir: &Path, port: u16, replicas: &[u16]) -> Balancer {
    let mut config = format!(
        "global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    option redispatch
    retries 5
frontend chat
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fall 1 rise 1
"
    );
    for (i, p) in replicas.iter().enumerate() {
        config.push_str(&format!("    server r{i} 127.0.0.1:{p} check\n"));
    }
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    Balancer(
        Command::new(exe)
            .args(["-db", "-f"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// One replica on its fixed port.
fn replica(dir: &Path, port: u16, env: &[(&str, &str)]) -> ServerProcess {
    let bind = format!("127.0.0.1:{port}");
    let data = dir.display().to_string();
    let mut env = env.to_vec();
    env.push(("HIRECJ_BIND", &bind));
    env.push(("HIRECJ_DATA_DIR", &data));
    ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_hirecj")), dir, &env).unwrap()
}

/// Waits until `url` answers 200.
async fn until_ok(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never answered 200");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a conversation's client knows: (seq, role, client_id) per message.
type Seen = Vec<(i64, String, Option<String>)>;

fn note(seen: &mut Seen, m: &serde_json::Value) {
    let seq = m["seq"].as_i64().unwrap();
    if !seen.iter().any(|(s, _, _)| *s == seq) {
        seen.push((
            seq,
            m["role"].as_str().unwrap_or("merchant").to_owned(),
            m["client_id"].as_str().map(str::to_owned),
        ));
        seen.sort_by_key(|(s, _, _)| *s);
    }
}

/// Where message `client_id` stands: `None` not stored, `Some(false)`
/// stored and owed a reply, `Some(true)` answered.
fn standing(seen: &Seen, client_id: &str) -> Option<bool> {
    let at = seen
        .iter()
        .position(|(_, _, c)| c.as_deref() == Some(client_id))?;
    Some(seen[at + 1..].iter().any(|(_, role, _)| role == "cj"))
}

/// One merchant's conversation through the load balancer: `MESSAGES`
/// messages, each sent once its predecessor is answered, surviving
/// restarts as the page does. Returns the conversation and how many times
/// it reconnected.
async fn converse(url: String, cookie: String, tag: usize) -> (ConversationId, usize) {
    let options = ConnectOptions {
        cookie: Some(cookie),
        wait: Duration::from_secs(20),
        ..ConnectOptions::default()
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut id: Option<ConversationId> = None;
    let mut seen: Seen = Vec::new();
    let mut reconnects = 0;
    let mut next = 0;
    'connect: loop {
        assert!(
            Instant::now() < deadline,
            "conversation {tag} stalled: {seen:?}"
        );
        if reconnects > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        reconnects += 1;
        let Ok(mut ws) = ChatClient::connect(&url, &options).await else {
            continue;
        };
        let started = match id {
            None => ws.start_ad_hoc().await.map(|c| {
                id = Some(c);
                None
            }),
            Some(c) => ws.resume(c, 0).await.map(Some),
        };
        match started {
            Ok(Some(frame)) => {
                for m in frame["messages"].as_array().unwrap() {
                    note(&mut seen, m);
                }
            }
            Ok(None) => {}
            Err(_) => continue,
        }
        let mut sent = None;
        while next < MESSAGES {
            assert!(
                Instant::now() < deadline,
                "conversation {tag} stalled: {seen:?}"
            );
            let client_id = format!("c{tag}-{next}");
            match standing(&seen, &client_id) {
                Some(true) => {
                    next += 1;
                    tokio::time::sleep(PAUSE).await;
                    continue;
                }
                None if sent.as_deref() != Some(client_id.as_str()) => {
                    let frame = ClientFrame::Message {
                        text: format!("Message {next} of conversation {tag}"),
                        client_id: client_id.clone(),
                    };
                    if ws.send(&frame).await.is_err() {
                        continue 'connect;
                    }
                    sent = Some(client_id);
                }
                // Sent (and waiting for its ack), or owed a reply.
                _ => {}
            }
            let Ok(frame) = ws.next().await else {
                continue 'connect;
            };
            absorb(&frame, &mut seen, &mut sent);
        }
        return (id.unwrap(), reconnects - 1);
    }
}

fn absorb(frame: &Frame, seen: &mut Seen, sent: &mut Option<String>) {
    match frame.kind() {
        "message_ack" => {
            let message = serde_json::json!({
                "seq": frame["seq"], "role": "merchant", "client_id": frame["client_id"],
            });
            note(seen, &message);
        }
        "cj_message" => note(seen, frame.json()),
        "error" => {
            let code = frame["code"].as_str().unwrap_or_default();
            assert_eq!(frame["retryable"], true, "{frame:?}");
            assert_ne!(code, "internal", "{frame:?}");
            // Not stored: send it again.
            *sent = None;
        }
        _ => {}
    }
}

/// A scratch PostgreSQL database (dropped on [`Cluster::finish`]), three
/// replicas on it and the load balancer in front of them.
struct Cluster {
    scratch: Option<ScratchDatabase>,
    env: Vec<(String, String)>,
    dirs: [tempfile::TempDir; 3],
    ports: [u16; 3],
    replicas: Vec<ServerProcess>,
    lb_port: u16,
    _lb: Balancer,
    _lb_dir: tempfile::TempDir,
}

impl Cluster {
    /// `None` (skipped) outside CI without haproxy or PostgreSQL.
    async fn start(extra: &[(&str, &str)]) -> Option<Self> {
        let haproxy = haproxy()?;
        let scratch = ScratchDatabase::create("hirecj_balanced").await?;
        let db = scratch.url.clone();
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", db.as_str()),
            (
                "HIRECJ_SECRET_KEY",
                "balanced-replicas-secret-key-0123456789ab",
            ),
            ("HIRECJ_SHUTDOWN_TIMEOUT_SECS", "10"),
            ("HIRECJ_TURN_LEASE_SECS", "3"),
            // One visitor session carries the whole load.
            ("HIRECJ_WS_PER_SESSION", "1000"),
            ("HIRECJ_WS_PER_ADDRESS", "1000"),
            ("HIRECJ_TURNS_PER_MINUTE_SESSION", "100000"),
            ("HIRECJ_TURNS_PER_MINUTE_MERCHANT", "100000"),
            ("HIRECJ_TURNS_PER_MINUTE_ADDRESS", "100000"),
            ("HIRECJ_CONVERSATIONS_PER_HOUR", "100000"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
        let ports = [(); 3].map(|()| free_port());
        let mut cluster = Self {
            scratch: Some(scratch),
            env,
            replicas: Vec::new(),
            lb_port: free_port(),
            _lb_dir: tempfile::tempdir().unwrap(),
            _lb: Balancer(Command::new("true").spawn().unwrap()),
            dirs,
            ports,
        };
        cluster.replicas = (0..3).map(|i| cluster.replica(i)).collect();
        cluster._lb = balancer(
            &haproxy,
            cluster._lb_dir.path(),
            cluster.lb_port,
            &cluster.ports,
        );
        until_ok(&cluster.url("/readyz")).await;
        Some(cluster)
    }

    /// Replica `i`, started on its port.
    fn replica(&self, i: usize) -> ServerProcess {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        replica(self.dirs[i].path(), self.ports[i], &env)
    }

    /// `http://` the load balancer + `path`.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.lb_port)
    }

    /// The chat socket URL through the load balancer.
    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws/chat", self.lb_port)
    }

    /// A visitor's session cookie, from `GET /api/v1/me` through the
    /// balancer.
    async fn visitor(&self) -> String {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        let me = http.get(self.url("/api/v1/me")).send().await.unwrap();
        assert_eq!(me.status(), 200);
        jar.cookies(&url::Url::parse(&self.url("/")).unwrap())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// A tab: a chat socket through the balancer.
    async fn tab(&self, cookie: &str) -> ChatClient {
        let options = ConnectOptions {
            cookie: Some(cookie.to_owned()),
            ..ConnectOptions::default()
        };
        ChatClient::connect(&self.ws_url(), &options).await.unwrap()
    }

    async fn finish(mut self) {
        self.replicas.clear();
        if let Some(scratch) = self.scratch.take() {
            scratch.drop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_haproxy_survive_a_rolling_restart_under_load() {
    let Some(mut cluster) = Cluster::start(&[]).await else {
        return;
    };
    let cookie = cluster.visitor().await;
    let load: Vec<_> = (0..CONVERSATIONS)
        .map(|tag| tokio::spawn(converse(cluster.ws_url(), cookie.clone(), tag)))
        .collect();

    // The rolling restart: one replica at a time, SIGTERM, wait for its
    // exit, start it again on its port, wait until it is ready.
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let pid = cluster.replicas[i].pid().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(exit) = cluster.replicas[i].exited() {
                break exit;
            }
            assert!(Instant::now() < deadline, "replica {i} did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(exit.code(), Some(0), "replica {i} stopped cleanly");
        cluster.replicas[i] = cluster.replica(i);
        until_ok(&format!("http://127.0.0.1:{}/readyz", cluster.ports[i])).await;
    }

    let mut conversations = Vec::new();
    let mut reconnects = 0;
    for task in load {
        let (id, n) = task.await.unwrap();
        conversations.push(id);
        reconnects += n;
    }
    assert!(reconnects > 0, "the restarts never touched the load");

    // What is stored, read through the load balancer: each message once,
    // in order, and exactly one reply after each.
    let mut ws = cluster.tab(&cookie).await;
    for (tag, id) in conversations.iter().enumerate() {
        let started = ws.resume(*id, 0).await.unwrap();
        let mut stored: Vec<String> = Vec::new();
        for m in started["messages"].as_array().unwrap() {
            match m["role"].as_str().unwrap() {
                "merchant" => stored.push(m["client_id"].as_str().unwrap().to_owned()),
                "cj" => stored.push("cj".to_owned()),
                _ => {}
            }
        }
        let want: Vec<String> = (0..MESSAGES)
            .flat_map(|i| [format!("c{tag}-{i}"), "cj".to_owned()])
            .collect();
        assert_eq!(stored, want, "conversation {tag}");
    }
    eprintln!("{CONVERSATIONS} conversations × {MESSAGES} messages; {reconnects} reconnects");
    cluster.finish().await;
}

/// Roles of a `conversation_started` frame's messages, in order.
fn roles(started: &Frame) -> Vec<String> {
    started["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect()
}

fn message(text: &str, client_id: &str) -> ClientFrame {
    ClientFrame::Message {
        text: text.to_owned(),
        client_id: client_id.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_on_different_replicas_behind_haproxy_share_one_reply_per_message() {
    let model = MockModel::start(vec![openai::text(&["All ", "good."]).gate_before(1)])
        .await
        .unwrap();
    let base = model.openai_base_url();
    let Some(mut cluster) = Cluster::start(&[
        ("HIRECJ_MODEL_PROVIDER", "openai"),
        ("OPENAI_BASE_URL", base.as_str()),
    ])
    .await
    else {
        return;
    };
    let cookie = cluster.visitor().await;

    // Two tabs: round robin puts them on two replicas.
    let mut one = cluster.tab(&cookie).await;
    let id = one.start_ad_hoc().await.unwrap();
    let mut two = cluster.tab(&cookie).await;
    two.resume(id, 0).await.unwrap();

    // One message: both tabs see it, the reply stream and the reply, once.
    model.hold();
    one.send(&message("How are things?", "m1")).await.unwrap();
    let ack = one.expect("message_ack").await.unwrap();
    assert_eq!(one.until("cj_delta").await.unwrap()["text"], "All ");
    let asked = two.until("merchant_message").await.unwrap();
    assert_eq!(
        (&asked["seq"], &asked["content"]),
        (&ack["seq"], &serde_json::json!("How are things?"))
    );
    assert_eq!(two.until("cj_delta").await.unwrap()["text"], "All ");
    model.release();
    let on_one = one.until("cj_message").await.unwrap();
    let on_two = two.until("cj_message").await.unwrap();
    assert_eq!(on_one["content"], "All good.");
    assert_eq!(
        (&on_one["seq"], &on_one["content"]),
        (&on_two["seq"], &on_two["content"])
    );
    assert_eq!(model.request_count(), 1);

    // Two messages at once, one through each tab: one turn at a time, so
    // one is refused (`turn_in_progress`) and goes again after the first
    // reply, as the page does; each gets one reply, in order.
    let (m2, m3) = (message("And sales?", "m2"), message("And refunds?", "m3"));
    let (a, b) = tokio::join!(one.send(&m2), two.send(&m3));
    a.unwrap();
    b.unwrap();
    let mut pending: Vec<(&mut ChatClient, &str, &str)> = vec![
        (&mut one, "And sales?", "m2"),
        (&mut two, "And refunds?", "m3"),
    ];
    for _ in 0..20 {
        let mut refused = Vec::new();
        for (i, (tab, _, _)) in pending.iter_mut().enumerate() {
            // This tab's message is acknowledged and answered, or refused.
            // The other tab's reply reaches this one too, and may come
            // before the refusal: it is not this message's answer.
            let mut acked = None;
            loop {
                let frame = tab.next().await.unwrap();
                match frame.kind() {
                    "message_ack" => acked = frame["seq"].as_i64(),
                    "cj_message" if acked.is_some_and(|seq| frame["seq"].as_i64() > Some(seq)) => {
                        break;
                    }
                    "error" => {
                        assert_eq!(frame["code"], "turn_in_progress", "{frame}");
                        refused.push(i);
                        break;
                    }
                    _ => {}
                }
            }
        }
        if refused.is_empty() {
            break;
        }
        // Only the refused go again (an answered tab has nothing to wait for).
        pending = pending
            .into_iter()
            .enumerate()
            .filter(|(i, _)| refused.contains(i))
            .map(|(_, p)| p)
            .collect();
        for (tab, text, client_id) in &mut pending {
            tab.send(&message(text, client_id)).await.unwrap();
        }
    }
    drop(pending);
    let mut reader = cluster.tab(&cookie).await;
    let all = reader.resume(id, 0).await.unwrap();
    assert_eq!(
        roles(&all),
        ["merchant", "cj", "merchant", "cj", "merchant", "cj"],
        "{all}"
    );

    // Replica 0 dies (SIGKILL) while writing a reply: the tab reconnects
    // through the balancer and gets the reply, written once by another
    // replica after the dead one's claim lapses.
    let options = ConnectOptions {
        cookie: Some(cookie.clone()),
        ..ConnectOptions::default()
    };
    let mut direct = ChatClient::connect(&cluster.replicas[0].ws_url(), &options)
        .await
        .unwrap();
    direct.resume(id, 6).await.unwrap();
    model.hold();
    let before = model.request_count();
    direct.send(&message("Anything else?", "m4")).await.unwrap();
    assert_eq!(direct.expect("message_ack").await.unwrap()["seq"], 7);
    assert_eq!(direct.until("cj_delta").await.unwrap()["text"], "All ");
    cluster.replicas[0].kill().unwrap();
    model.release();
    let mut again = cluster.tab(&cookie).await;
    again.resume(id, 7).await.unwrap();
    let reply = again.until("cj_message").await.unwrap();
    assert_eq!(
        (reply["seq"].as_i64(), reply["content"].as_str()),
        (Some(8), Some("All good."))
    );
    assert_eq!(
        model.request_count(),
        before + 2,
        "the dead replica's try, then one more"
    );
    // (The reader tab, idle with the conversation open, saw that reply go
    // by live: a fresh tab reads what is stored.)
    let mut reader = cluster.tab(&cookie).await;
    let all = reader.resume(id, 0).await.unwrap();
    assert_eq!(
        roles(&all),
        [
            "merchant", "cj", "merchant", "cj", "merchant", "cj", "merchant", "cj"
        ],
        "{all}"
    );
    cluster.finish().await;
}
