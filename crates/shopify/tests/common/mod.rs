//! A minimal fake Shopify for the tests: an axum server on 127.0.0.1:0 that
//! records every request and answers with what the test's closure says.
//! Paths follow the admin base template `http://{addr}/shops/{shop}`.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hirecj_shopify::{ShopDomain, ShopifyConfig};
use serde_json::Value;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
    pub raw: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The GraphQL `query` of the body.
    pub fn query(&self) -> &str {
        self.json.get("query").and_then(Value::as_str).unwrap_or("")
    }

    pub fn variables(&self) -> &Value {
        self.json.get("variables").unwrap_or(&Value::Null)
    }
}

/// What the fake answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = Arc<dyn Fn(&Recorded, usize) -> Reply + Send + Sync>;

/// The running fake.
pub struct FakeShopify {
    pub addr: std::net::SocketAddr,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeShopify {
    /// Starts the fake; `handler` gets each request and its index (0-based).
    pub async fn start<F>(handler: F) -> Self
    where
        F: Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    {
        let handler: Handler = Arc::new(handler);
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let recorded = requests.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let handler = handler.clone();
                let recorded = recorded.clone();
                async move {
                    let raw = String::from_utf8_lossy(&body).into_owned();
                    let req = Recorded {
                        method,
                        path: uri.path().to_owned(),
                        headers,
                        json: serde_json::from_str(&raw).unwrap_or(Value::Null),
                        raw,
                    };
                    let index = {
                        let mut all = recorded.lock().unwrap();
                        all.push(req.clone());
                        all.len() - 1
                    };
                    let reply = handler(&req, index);
                    let mut response: Response =
                        (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
                    for (k, v) in reply.headers {
                        response.headers_mut().insert(
                            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                            v.parse().unwrap(),
                        );
                    }
                    response
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, requests }
    }

    /// The admin base template pointing at this fake.
    pub fn base_template(&self) -> String {
        format!("http://{}/shops/{{shop}}", self.addr)
    }

    /// A configuration pointing at this fake.
    pub fn config(&self) -> ShopifyConfig {
        let mut config = ShopifyConfig::new(
            "test-client-id",
            "test-client-secret",
            "http://127.0.0.1/api/v1/shopify/callback",
        );
        config.admin_base_url = self.base_template();
        config.request_timeout = std::time::Duration::from_secs(5);
        config
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

pub fn shop() -> ShopDomain {
    ShopDomain::parse("test-shop").unwrap()
}

/// A `extensions.cost` block.
pub fn cost(requested: f64, available: f64, restore: f64) -> Value {
    serde_json::json!({
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": requested,
            "throttleStatus": {
                "maximumAvailable": 1000.0,
                "currentlyAvailable": available,
                "restoreRate": restore
            }
        }
    })
}
