//! The HTTP skeleton over real sockets: health, readiness (including a
//! database that goes away and comes back), metrics, request ids and
//! graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hirecj_testkit::app::TestApp;
use hirecj_testkit::postgres::ScratchDatabase;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// The app with `extra` settings (the test kit's launcher).
async fn start(extra: &[(&str, &str)]) -> TestApp {
    TestApp::start(extra).await
}

#[tokio::test]
async fn health_readiness_metrics_and_request_ids() {
    let app = start(&[]).await;
    let http = reqwest::Client::new();

    let r = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID request id: {generated}");

    let r = http
        .get(app.url("/readyz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-request-id"],
        "trace-me-123",
        "an incoming id is kept"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["database"], "sqlite");

    assert_eq!(
        http.get(app.url("/nope")).send().await.unwrap().status(),
        404
    );

    let metrics = http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"hirecj_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("hirecj_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_data_directory_keeps_the_database_and_the_key_across_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data");
    let data_str = data.display().to_string();
    let first = start(&[("HIRECJ_DATA_DIR", &data_str)]).await;
    first.shutdown().await.unwrap();
    let key = std::fs::read(data.join("secret.key")).unwrap();
    assert!(data.join("hirecj.db").exists());

    let second = start(&[("HIRECJ_DATA_DIR", &data_str)]).await;
    let r = reqwest::get(second.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    second.shutdown().await.unwrap();
    assert_eq!(
        std::fs::read(data.join("secret.key")).unwrap(),
        key,
        "the key is reused"
    );
}

/// PostgreSQL going away turns /readyz into 503 without stopping the
/// process, and it recovers when the database is back.
#[tokio::test]
async fn readiness_follows_postgres() {
    let Some(scratch) = ScratchDatabase::create("hirecj_ready").await else {
        return;
    };
    let url = scratch.url.clone();
    let app = start(&[("DATABASE_URL", url.as_str())]).await;
    let http = reqwest::Client::new();
    let ready = |http: reqwest::Client, u: String| async move {
        http.get(u).send().await.unwrap().status().as_u16()
    };
    assert_eq!(ready(http.clone(), app.url("/readyz")).await, 200);

    scratch.remove().await;
    assert_eq!(ready(http.clone(), app.url("/readyz")).await, 503);
    assert_eq!(
        ready(http.clone(), app.url("/healthz")).await,
        200,
        "the process is still alive"
    );

    scratch.recreate().await;
    let mut status = 0;
    for _ in 0..50 {
        status = ready(http.clone(), app.url("/readyz")).await;
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200, "readiness recovers once PostgreSQL is back");
    app.shutdown().await.unwrap();
    scratch.drop().await;
}

/// Shutdown stops accepting connections but lets an in-flight request finish.
#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let (entered_tx, entered_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let entered = std::sync::Arc::new(std::sync::Mutex::new(Some(entered_tx)));
    let release = std::sync::Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let router = Router::new().route(
        "/slow",
        get(move || {
            let tx = entered.lock().unwrap().take();
            let release = release.clone();
            let _ = &entered;
            async move {
                if let Some(tx) = tx {
                    let _ = tx.send(());
                }
                if let Some(rx) = release.lock().await.take() {
                    let _ = rx.await;
                }
                "finished"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(hirecj_server::net::serve(
        listener,
        router,
        shutdown.clone(),
        hirecj_server::net::ServeOptions {
            header_timeout: Duration::from_secs(10),
            max_connections: 100,
            grace: Duration::from_secs(30),
        },
        hirecj_server::metrics::Metrics::new(),
    ));

    let request = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
    entered_rx.await.unwrap();
    shutdown.cancel();
    // New connections are refused once shutdown has begun.
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "the listener closes on shutdown");
    release_tx.send(()).unwrap();
    let response = request.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    server.await.unwrap().unwrap();
}

/// A page opened as `localhost` goes to the public URL's host, where the
/// cookies, the WebSocket origin and the OAuth redirect live.
#[tokio::test]
async fn the_other_loopback_name_is_redirected_to_the_public_url() {
    let app = start(&[]).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let port = app.addr.port();
    let r = http
        .get(app.url("/chat?conversation_id=x"))
        .header("host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(
        r.headers()["location"],
        format!("http://127.0.0.1:{port}/chat?conversation_id=x").as_str()
    );
    let same = http.get(app.url("/chat")).send().await.unwrap();
    assert_eq!(same.status(), 200, "the public host itself is served");
    let api = http
        .get(app.url("/healthz"))
        .header("host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200, "APIs are not redirected");
    app.shutdown().await.unwrap();
}

/// Once the shutdown's drain starts, readiness answers 503 (the load
/// balancer stops sending merchants here) while liveness stays 200.
#[tokio::test]
async fn readiness_fails_as_soon_as_the_drain_starts() {
    let app = start(&[]).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(app.url("/readyz")).send().await.unwrap().status(),
        200
    );
    app.state.chat.drain();
    let r = http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "draining", "{body}");
    assert_eq!(
        http.get(app.url("/healthz")).send().await.unwrap().status(),
        200
    );
}
