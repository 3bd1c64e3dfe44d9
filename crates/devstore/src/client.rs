//! A client of a running development store's control endpoints (what
//! `hirecj devstore orders …` uses against a running app's store).

use std::time::Duration;

use serde_json::Value as Json;

/// How long one control call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a control call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The base URL is not an `http(s)` URL.
    #[error("invalid development store URL {0:?}")]
    Url(String),
    /// The store could not be reached or did not answer in time.
    #[error("cannot reach the development store at {url}: {source}")]
    Transport {
        /// The URL called.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The store refused the call (its `error` message, or the body).
    #[error("the development store answered HTTP {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// What it said.
        message: String,
    },
}

/// Calls the `_control` endpoints of a development store served at
/// `base_url` (e.g. `http://127.0.0.1:8000/devstore`).
#[derive(Debug, Clone)]
pub struct ControlClient {
    base: String,
    http: reqwest::Client,
}

impl ControlClient {
    /// A client for the store at `base_url`, with a 30 s timeout per call.
    pub fn new(base_url: &str) -> Result<ControlClient, ControlError> {
        let parsed =
            url::Url::parse(base_url).map_err(|_| ControlError::Url(base_url.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ControlError::Url(base_url.to_string()));
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|source| ControlError::Transport {
                url: base_url.to_string(),
                source,
            })?;
        Ok(ControlClient {
            base: base_url.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// Posts `form` to `/_control/{path}` (e.g. `orders/refund`) and
    /// returns the JSON answer.
    pub async fn post(&self, path: &str, form: &[(&str, String)]) -> Result<Json, ControlError> {
        let url = format!("{}/_control/{}", self.base, path.trim_start_matches('/'));
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let transport = |source| ControlError::Transport {
            url: url.clone(),
            source,
        };
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(transport)?;
        let json: Option<Json> = serde_json::from_str(&text).ok();
        if !(200..300).contains(&status) {
            let message = json
                .as_ref()
                .and_then(|j| j.get("error"))
                .and_then(Json::as_str)
                .map_or_else(|| text.chars().take(300).collect(), str::to_string);
            return Err(ControlError::Refused { status, message });
        }
        json.ok_or(ControlError::Refused {
            status,
            message: "the answer is not JSON".to_string(),
        })
    }
}
