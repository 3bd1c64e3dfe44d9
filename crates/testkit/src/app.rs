//! The one app launcher, two ways: [`TestApp`] runs the app in this process
//! (the server tests: they reach into its state), [`ServerProcess`] runs a
//! `serve` command as a child process (the CLI tests and the bench: they
//! kill it, measure its memory, or run two of them).

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use hirecj_server::{App, AppState, LoadOptions, Settings};
use tokio_util::sync::CancellationToken;

use crate::ws::{ChatClient, ConnectOptions, WsError};

/// Longest wait for any one expected frame or response in tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// The app in this process on `127.0.0.1:0`, on a temporary data directory
/// (SQLite) unless the settings say otherwise. It stops when dropped.
///
/// Test-only: setting it up panics on failure, like the test would.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:port`, the app's public URL (no trailing slash).
    pub base: String,
    pub state: AppState,
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

#[allow(clippy::unwrap_used, clippy::expect_used)]
impl TestApp {
    /// The app with `extra` settings over a fresh data directory.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary data directory");
        let mut app = Self::start_in(dir.path(), extra).await;
        app._dir = Some(dir);
        app
    }

    /// The app on the data directory `dir` (two apps on one directory share
    /// the SQLite database and the secret key, like two replicas).
    pub async fn start_in(dir: &Path, extra: &[(&str, &str)]) -> Self {
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
        .expect("the test's settings load");
        let app = App::build(settings).await.expect("the app starts");
        let addr = app.local_addr();
        let state = app.state().clone();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app.run(shutdown.clone()));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        Self {
            addr,
            base: format!("http://{addr}"),
            state,
            http,
            shutdown,
            handle: Some(handle),
            _dir: None,
        }
    }

    /// `http://127.0.0.1:port` + `path`.
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

    /// The stored messages of conversation `id` (a `ConversationId` or its
    /// text, as a frame carried it).
    pub async fn messages(&self, id: impl std::fmt::Display) -> Vec<hirecj_domain::Message> {
        self.state
            .store
            .messages(id.to_string().parse().unwrap(), 0)
            .await
            .unwrap()
    }

    /// `GET path`, with a `Cookie` header when given; redirects not followed.
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(c) = cookie {
            req = req.header(reqwest::header::COOKIE, c);
        }
        req.send().await.unwrap()
    }

    /// `ws://127.0.0.1:port/ws/chat`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/chat", self.addr)
    }

    /// The options of a browser page of this app with `cookie`.
    pub fn page_options(&self, cookie: &str) -> ConnectOptions {
        ConnectOptions {
            cookie: (!cookie.is_empty()).then(|| cookie.to_owned()),
            origin: Some(self.url("")),
            wait: WAIT,
            ..ConnectOptions::default()
        }
    }

    /// The chat socket as the app's own page opens it with `cookie`.
    pub async fn chat(&self, cookie: &str) -> ChatClient {
        ChatClient::connect(&self.ws_url(), &self.page_options(cookie))
            .await
            .unwrap()
    }

    /// The chat socket with these options: the refusal, if any.
    pub async fn try_chat(&self, options: &ConnectOptions) -> Result<ChatClient, WsError> {
        ChatClient::connect(&self.ws_url(), options).await
    }

    /// The chat socket of a page behind the app's proxy, the client at
    /// `forwarded_for` (`X-Forwarded-For`); the HTTP status of a refusal.
    pub async fn chat_from(&self, cookie: &str, forwarded_for: &str) -> Result<ChatClient, u16> {
        let options = ConnectOptions {
            forwarded_for: Some(forwarded_for.to_owned()),
            ..self.page_options(cookie)
        };
        refusal_status(self.try_chat(&options).await)
    }

    /// The HTTP status the upgrade with `cookie` (and `origin`, when given;
    /// no `Origin` header otherwise) is refused with, or `None`.
    pub async fn chat_refusal(&self, cookie: &str, origin: Option<&str>) -> Option<u16> {
        let options = ConnectOptions {
            origin: origin.map(str::to_owned),
            ..self.page_options(cookie)
        };
        refusal_status(self.try_chat(&options).await).err()
    }

    /// Stops the app and waits (bounded) for it to finish, whatever the
    /// outcome.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(WAIT, handle).await;
        }
    }

    /// Stops the app and returns how its server ended: a test of graceful
    /// shutdown asserts it is `Ok`.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.shutdown.cancel();
        let Some(handle) = self.handle.take() else {
            return Ok(());
        };
        match tokio::time::timeout(WAIT, handle).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(std::io::Error::other(e)),
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}

/// A refused upgrade as its HTTP status; any other failure panics (tests).
fn refusal_status(result: Result<ChatClient, WsError>) -> Result<ChatClient, u16> {
    match result {
        Ok(client) => Ok(client),
        Err(WsError::Refused { status }) => Err(status),
        Err(e) => panic!("unexpected WebSocket error: {e}"),
    }
}

/// Why a [`ServerProcess`] did not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot start {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} exited before it was listening (see its output above)")]
    Exited(PathBuf),
    #[error("{exe} did not start listening within {} s", .after.as_secs())]
    Slow { exe: PathBuf, after: Duration },
    #[error("no address in the server's first line {0:?}")]
    NoAddress(String),
}

/// A `serve` command running as a child process on `127.0.0.1:0`, its
/// environment cleared but for `PATH` and what the caller sets. It is
/// killed when dropped.
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    /// How long the server may take to print its address.
    const START: Duration = Duration::from_secs(60);

    /// Runs `exe serve` with `env` (over `HIRECJ_BIND=127.0.0.1:0` and
    /// `HIRECJ_LOG=warn`) in `dir`, and waits for the line that names its
    /// address. Its stderr is this process's; its stdout is drained.
    pub fn start(exe: &Path, dir: &Path, env: &[(&str, &str)]) -> Result<Self, LaunchError> {
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HIRECJ_BIND", "127.0.0.1:0")
            .env("HIRECJ_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|source| LaunchError::Spawn {
            exe: exe.to_owned(),
            source,
        })?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LaunchError::Exited(exe.to_owned()));
        };
        // The first stdout line names the address; keep draining the rest so
        // the server never blocks on a full pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let mut process = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = match rx.recv_timeout(Self::START) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => return Err(LaunchError::Exited(exe.to_owned())),
            Err(_) => {
                return Err(LaunchError::Slow {
                    exe: exe.to_owned(),
                    after: Self::START,
                });
            }
        };
        process.addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .ok_or(LaunchError::NoAddress(line))?;
        Ok(process)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `ws://127.0.0.1:port/ws/chat`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/chat", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, then wait: a crash, with nothing flushed or shut down.
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()?;
        self.child.wait().map(drop)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new anonymous browser session from `GET {base}/api/v1/me`: the
/// `Cookie` header value.
pub async fn new_session(http: &reqwest::Client, base: &str) -> Result<String, String> {
    let r = http
        .get(format!("{base}/api/v1/me"))
        .send()
        .await
        .map_err(|e| format!("GET /api/v1/me: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("GET /api/v1/me: {}", r.status()));
    }
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.trim_start().starts_with("hirecj_session="))
        .map(|pair| pair.trim().to_owned())
        .ok_or_else(|| "GET /api/v1/me set no session cookie".to_owned())
}
