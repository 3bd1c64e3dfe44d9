#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The GraphQL Admin client against a fake Shopify: headers, 401, throttling
//! (as 200 `THROTTLED` and as 429), 503, typed errors with request ids.

mod common;

use std::time::{Duration, Instant};

use common::{FakeShopify, Reply, cost, shop};
use hirecj_shopify::{AdminClient, RetryPolicy, Secret, ShopifyError};
use serde_json::{Value, json};

fn client(fake: &FakeShopify) -> AdminClient {
    AdminClient::new(AdminClient::http_client().unwrap(), &fake.config()).with_retry_policy(
        RetryPolicy {
            max_attempts: 4,
            max_wait: Duration::from_millis(150),
            max_total_wait: Duration::from_secs(2),
            default_expected_cost: 10.0,
        },
    )
}

fn token() -> Secret {
    Secret::new("shpat_test_token")
}

fn ok_shop(available: f64) -> Reply {
    Reply::json(
        200,
        &json!({"data": {"shop": {"name": "Test"}}, "extensions": cost(1.0, available, 100.0)}),
    )
}

fn throttled_body() -> Value {
    json!({
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED",
            "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
        "extensions": cost(500.0, 20.0, 100.0)
    })
}

#[tokio::test]
async fn sends_the_documented_request() {
    let fake = FakeShopify::start(|_, _| ok_shop(990.0)).await;
    let data = client(&fake)
        .graphql(&shop(), &token(), "{ shop { name } }", json!({"a": 1}))
        .await
        .unwrap();
    assert_eq!(data, json!({"shop": {"name": "Test"}}));
    let req = &fake.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.path,
        "/shops/test-shop.myshopify.com/admin/api/2026-10/graphql.json"
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(
        req.header("x-shopify-access-token"),
        Some("shpat_test_token")
    );
    assert_eq!(
        req.json,
        json!({"query": "{ shop { name } }", "variables": {"a": 1}})
    );
    let status = client(&fake).throttle_status(&shop());
    assert_eq!(status, None, "pacing state is per client");
}

#[tokio::test]
async fn unauthorized_means_reconnect() {
    let fake = FakeShopify::start(|_, _| {
        Reply::json(401, &json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}))
            .header("x-request-id", "req-401")
    })
    .await;
    let err = client(&fake)
        .graphql(&shop(), &token(), "{ shop { name } }", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ShopifyError::Unauthorized { request_id } if request_id.as_deref() == Some("req-401"))
    );
    assert!(err.needs_reconnect());
    assert_eq!(err.code(), "unauthorized");
    assert!(!format!("{err:?} {err}").contains("shpat_test_token"));
    assert_eq!(fake.count(), 1, "401 is not retried");
}

#[tokio::test]
async fn throttled_as_200_waits_then_succeeds() {
    let fake = FakeShopify::start(|_, i| {
        if i == 0 {
            Reply::json(200, &throttled_body())
        } else {
            ok_shop(900.0)
        }
    })
    .await;
    let c = client(&fake);
    let started = Instant::now();
    let data = c
        .graphql(&shop(), &token(), "{ shop { name } }", json!({}))
        .await
        .unwrap();
    assert_eq!(data["shop"]["name"], "Test");
    assert_eq!(fake.count(), 2);
    // ceil((500 - 20) / 100) = 5 s, capped by the policy at 150 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "the client waited"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let status = c.throttle_status(&shop()).unwrap();
    assert_eq!(status.currently_available, 900.0);
}

#[tokio::test]
async fn throttled_as_429_with_fractional_retry_after() {
    let fake = FakeShopify::start(|_, i| {
        if i == 0 {
            Reply::json(429, &throttled_body()).header("retry-after", "0.1")
        } else {
            ok_shop(900.0)
        }
    })
    .await;
    let started = Instant::now();
    let data = client(&fake)
        .graphql(&shop(), &token(), "{ shop { name } }", json!({}))
        .await
        .unwrap();
    assert_eq!(data["shop"]["name"], "Test");
    assert_eq!(fake.count(), 2);
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn service_unavailable_is_retried() {
    let fake = FakeShopify::start(|_, i| {
        if i < 2 {
            Reply {
                status: 503,
                headers: vec![("retry-after".into(), "0.05".into())],
                body: String::new(),
            }
        } else {
            ok_shop(900.0)
        }
    })
    .await;
    client(&fake)
        .graphql(&shop(), &token(), "{ shop { name } }", json!({}))
        .await
        .unwrap();
    assert_eq!(fake.count(), 3);
}

#[tokio::test]
async fn retries_are_bounded() {
    let fake = FakeShopify::start(|_, _| {
        Reply::json(429, &json!({"errors": "Throttled"}))
            .header("retry-after", "0.01")
            .header("x-request-id", "req-429")
    })
    .await;
    let err = client(&fake)
        .graphql(&shop(), &token(), "{ shop { name } }", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ShopifyError::Throttled { attempts: 4, request_id } if request_id.as_deref() == Some("req-429")),
        "{err:?}"
    );
    assert_eq!(fake.count(), 4);

    // The total wait is capped too: a huge Retry-After is cut to max_wait,
    // and the attempts stop once the sum would pass max_total_wait.
    let fake = FakeShopify::start(|_, _| Reply::json(200, &throttled_body())).await;
    let c =
        AdminClient::new(reqwest::Client::new(), &fake.config()).with_retry_policy(RetryPolicy {
            max_attempts: 100,
            max_wait: Duration::from_millis(40),
            max_total_wait: Duration::from_millis(200),
            default_expected_cost: 10.0,
        });
    let started = Instant::now();
    let err = c
        .graphql(&shop(), &token(), "{ shop { name } }", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "throttled");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(fake.count() < 10, "{} attempts", fake.count());
}

#[tokio::test]
async fn graphql_errors_are_typed_with_request_id() {
    let fake = FakeShopify::start(|_, _| {
        Reply::json(200, &json!({
            "errors": [{"message": "Field 'nope' doesn't exist on type 'Shop'",
                        "locations": [{"line": 1, "column": 9}], "path": ["query", "shop", "nope"],
                        "extensions": {"code": "undefinedField"}}]
        }))
        .header("x-request-id", "req-gql")
    })
    .await;
    let err = client(&fake)
        .graphql(&shop(), &token(), "{ shop { nope } }", json!({}))
        .await
        .unwrap_err();
    match &err {
        ShopifyError::GraphQl { errors, request_id } => {
            assert_eq!(errors[0].code.as_deref(), Some("undefinedField"));
            assert!(errors[0].message.contains("nope"));
            assert_eq!(request_id.as_deref(), Some("req-gql"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.request_id(), Some("req-gql"));
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn other_statuses_are_typed() {
    let fake = FakeShopify::start(|req, _| {
        let status = match req.variables()["status"].as_u64().unwrap() {
            s @ (402 | 403 | 404 | 423 | 500) => s as u16,
            _ => 200,
        };
        Reply::json(status, &json!({"errors": "nope"})).header("x-request-id", "rid")
    })
    .await;
    let c = client(&fake);
    for (status, code) in [
        (402, "shop_unavailable"),
        (403, "forbidden"),
        (404, "http_error"),
        (423, "shop_unavailable"),
        (500, "http_error"),
    ] {
        let err = c
            .graphql(
                &shop(),
                &token(),
                "{ shop { name } }",
                json!({"status": status}),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{status}");
        assert_eq!(err.request_id(), Some("rid"));
    }
    assert_eq!(fake.count(), 5, "none is retried");
}

#[tokio::test]
async fn shop_inactive_and_bad_json() {
    let fake = FakeShopify::start(|_, i| {
        if i == 0 {
            Reply::json(200, &json!({"errors": [{"message": "Shop is frozen", "extensions": {"code": "SHOP_INACTIVE"}}]}))
        } else {
            Reply { status: 200, headers: vec![], body: "<html>".into() }
        }
    })
    .await;
    let c = client(&fake);
    let err = c
        .graphql(&shop(), &token(), "{ shop { name } }", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "shop_unavailable");
    let err = c
        .graphql(&shop(), &token(), "{ shop { name } }", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "decode_error");
}

#[tokio::test]
async fn pacing_waits_when_the_bucket_is_low() {
    // The first answer leaves 5 points with a restore rate of 100/s; the
    // query costs 50: the next call waits ceil(45/100) = 1 s, capped at 150 ms.
    let fake = FakeShopify::start(|_, i| {
        let available = if i == 0 { 5.0 } else { 900.0 };
        Reply::json(
            200,
            &json!({"data": {"ok": true}, "extensions": cost(50.0, available, 100.0)}),
        )
    })
    .await;
    let c = client(&fake);
    let started = Instant::now();
    c.graphql(&shop(), &token(), "{ ok }", json!({}))
        .await
        .unwrap();
    let first = started.elapsed();
    c.graphql(&shop(), &token(), "{ ok }", json!({}))
        .await
        .unwrap();
    assert!(
        started.elapsed() - first >= Duration::from_millis(150),
        "paced"
    );
    // A bucket refilled above the cost needs no wait.
    let again = Instant::now();
    c.graphql(&shop(), &token(), "{ ok }", json!({}))
        .await
        .unwrap();
    assert!(again.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn unreachable_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = hirecj_shopify::ShopifyConfig::new("id", "secret", "http://x/cb");
    config.admin_base_url = format!("http://{addr}/{{shop}}");
    let c = AdminClient::new(reqwest::Client::new(), &config).with_retry_policy(RetryPolicy {
        max_attempts: 2,
        max_wait: Duration::from_millis(10),
        max_total_wait: Duration::from_millis(100),
        default_expected_cost: 10.0,
    });
    let err = c
        .graphql(&shop(), &token(), "{ ok }", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "transport_error", "{err:?}");
}

#[tokio::test]
async fn throttled_429_without_retry_after_uses_the_cost() {
    // No Retry-After: the wait comes from the body's cost, ceil((500 - 20) / 100)
    // = 5 s, capped by the policy at 150 ms.
    let fake = FakeShopify::start(|_, i| {
        if i == 0 {
            Reply::json(429, &throttled_body())
        } else {
            ok_shop(900.0)
        }
    })
    .await;
    let started = Instant::now();
    client(&fake)
        .graphql(&shop(), &token(), "{ shop { name } }", json!({}))
        .await
        .unwrap();
    assert_eq!(fake.count(), 2);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(started.elapsed() < Duration::from_secs(2));
}
