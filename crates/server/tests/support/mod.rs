//! The server tests' harness is the test kit's: the app in this process,
//! the chat client on the typed frames, and the mock model. What is here
//! only names the common setups.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

pub use hirecj_testkit::app::{TestApp, WAIT};
use hirecj_testkit::model::{MockModel, openai};

/// The app with `extra` settings on a fresh data directory.
pub async fn start_app(extra: &[(&str, &str)]) -> TestApp {
    TestApp::start(extra).await
}

/// The app on the data directory `dir` (two apps on one directory share
/// the SQLite database and the secret key, like two replicas).
pub async fn start_app_in(dir: &std::path::Path, extra: &[(&str, &str)]) -> TestApp {
    TestApp::start_in(dir, extra).await
}

/// A mock OpenAI-compatible model: every completion streams "Once upon"
/// then " a time." in flushed chunks; while it is held
/// ([`MockModel::hold`]) the stream pauses after the first chunk until
/// released.
pub async fn story_model() -> MockModel {
    MockModel::start(vec![
        openai::text(&["Once upon", " a time."]).gate_before(1),
    ])
    .await
    .unwrap()
}

/// The app answering through [`story_model`], with a visitor's cookie.
pub async fn start_with_mock_model() -> (MockModel, TestApp, String) {
    start_with_mock_model_and(&[]).await
}

/// [`start_with_mock_model`] with more settings.
pub async fn start_with_mock_model_and(extra: &[(&str, &str)]) -> (MockModel, TestApp, String) {
    let model = story_model().await;
    let base_url = model.openai_base_url();
    let mut env = vec![
        ("HIRECJ_MODEL_PROVIDER", "openai"),
        ("OPENAI_BASE_URL", base_url.as_str()),
    ];
    env.extend_from_slice(extra);
    let app = start_app(&env).await;
    let cookie = app.visitor_cookie().await;
    (model, app, cookie)
}
