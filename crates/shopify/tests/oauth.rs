#![allow(clippy::unwrap_used, clippy::expect_used)]
//! OAuth: callback verification (the attack table) and the token endpoint
//! against a fake Shopify.

mod common;

use chrono::Utc;
use common::{FakeShopify, Reply, shop};
use hirecj_shopify::signing::sign_query;
use hirecj_shopify::{
    CallbackError, Secret, ShopifyError, exchange_code, refresh_token, verify_callback,
};
use serde_json::json;

const SECRET: &str = "test-client-secret";
const NOW: i64 = 1_790_000_000;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A callback signed like Shopify signs it.
fn signed(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let hmac = sign_query(list.iter().copied(), SECRET);
    let mut out = pairs(list);
    out.push(("hmac".into(), hmac));
    out
}

fn good_params(shop: &str, timestamp: i64) -> Vec<(String, String)> {
    let ts = timestamp.to_string();
    signed(&[
        ("code", "0907a61c0c8d55e99db179b68161bc00"),
        ("host", "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGVzdC1zaG9w"),
        ("shop", shop),
        ("state", "abc123"),
        ("timestamp", &ts),
    ])
}

fn verify(params: &[(String, String)]) -> Result<hirecj_shopify::VerifiedCallback, CallbackError> {
    verify_callback(params, &Secret::new(SECRET), NOW)
}

#[test]
fn a_genuine_callback_verifies() {
    let cb = verify(&good_params("test-shop.myshopify.com", NOW - 5)).unwrap();
    assert_eq!(cb.shop.as_str(), "test-shop.myshopify.com");
    assert_eq!(cb.code.expose(), "0907a61c0c8d55e99db179b68161bc00");
    assert_eq!(cb.state, "abc123");
    assert_eq!(
        cb.host.as_deref(),
        Some("YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGVzdC1zaG9w")
    );
    assert_eq!(cb.timestamp, NOW - 5);
    assert!(
        !format!("{cb:?}").contains("0907a61c"),
        "the code is a secret"
    );
    // Extra params Shopify may add are fine when signed; the order is free.
    let ts = NOW.to_string();
    let mut extra = signed(&[
        ("timestamp", &ts),
        ("shop", "test-shop.myshopify.com"),
        ("state", "s"),
        ("code", "c"),
        ("new_param", "a b&c"),
    ]);
    extra.reverse();
    assert!(verify(&extra).is_ok());
    // The timestamp may be up to 90 s off either way.
    assert!(verify(&good_params("test-shop.myshopify.com", NOW - 90)).is_ok());
    assert!(verify(&good_params("test-shop.myshopify.com", NOW + 90)).is_ok());
}

/// (name, query pairs, expected error code)
type Case = (&'static str, Vec<(String, String)>, &'static str);

#[test]
fn attack_table() {
    let ts = NOW.to_string();
    let base = good_params("test-shop.myshopify.com", NOW);
    let forged = {
        let mut p = base.clone();
        for (k, v) in &mut p {
            if k == "hmac" {
                *v = "0".repeat(64);
            }
        }
        p
    };
    let tampered_code = {
        let mut p = base.clone();
        for (k, v) in &mut p {
            if k == "code" {
                *v = "attacker-code".into();
            }
        }
        p
    };
    let wrong_secret = {
        let list = [
            ("code", "c"),
            ("shop", "test-shop.myshopify.com"),
            ("state", "s"),
            ("timestamp", ts.as_str()),
        ];
        let mut p = pairs(&list);
        p.push((
            "hmac".into(),
            sign_query(list.iter().copied(), "other-secret"),
        ));
        p
    };
    let extra_unsigned = {
        let mut p = base.clone();
        p.push(("extra".into(), "not signed".into()));
        p
    };
    let without = |key: &str| -> Vec<(String, String)> {
        // Re-signed without the key, so only the missing param is wrong.
        let list: Vec<(String, String)> = base
            .iter()
            .filter(|(k, _)| k != key && k != "hmac")
            .cloned()
            .collect();
        let refs: Vec<(&str, &str)> = list.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        signed(&refs)
    };
    let unsigned = {
        let mut p = base.clone();
        p.retain(|(k, _)| k != "hmac");
        p
    };
    let duplicated_shop = {
        let mut p = base.clone();
        p.push(("shop".into(), "evil.myshopify.com".into()));
        p
    };
    let bad_timestamp = signed(&[
        ("code", "c"),
        ("shop", "test-shop.myshopify.com"),
        ("state", "s"),
        ("timestamp", "soon"),
    ]);

    let cases: Vec<Case> = vec![
        ("forged hmac", forged, "invalid_hmac"),
        ("tampered code", tampered_code, "invalid_hmac"),
        ("signed with another secret", wrong_secret, "invalid_hmac"),
        (
            "extra param not in signature",
            extra_unsigned,
            "invalid_hmac",
        ),
        ("no hmac", unsigned, "missing_param"),
        ("no code", without("code"), "missing_param"),
        ("no shop", without("shop"), "missing_param"),
        ("no state", without("state"), "missing_param"),
        ("no timestamp", without("timestamp"), "missing_param"),
        ("repeated shop", duplicated_shop, "duplicate_param"),
        (
            "stale (-91 s)",
            good_params("test-shop.myshopify.com", NOW - 91),
            "stale_timestamp",
        ),
        (
            "future (+91 s)",
            good_params("test-shop.myshopify.com", NOW + 91),
            "stale_timestamp",
        ),
        (
            "very old",
            good_params("test-shop.myshopify.com", 1_337_178_173),
            "stale_timestamp",
        ),
        ("timestamp not a number", bad_timestamp, "invalid_timestamp"),
        ("evil.com", good_params("evil.com", NOW), "invalid_shop"),
        (
            "suffix attack",
            good_params("shop.myshopify.com.evil.com", NOW),
            "invalid_shop",
        ),
        (
            "userinfo",
            good_params("a@b.myshopify.com", NOW),
            "invalid_shop",
        ),
        (
            "leading hyphen",
            good_params("-x.myshopify.com", NOW),
            "invalid_shop",
        ),
        ("empty shop", good_params("", NOW), "missing_param"),
        ("bare name", good_params("test-shop", NOW), "invalid_shop"),
        (
            "upper case",
            good_params("Test-Shop.myshopify.com", NOW),
            "invalid_shop",
        ),
        (
            "url",
            good_params("https://test-shop.myshopify.com", NOW),
            "invalid_shop",
        ),
        (
            "admin url",
            good_params("admin.shopify.com/store/test-shop", NOW),
            "invalid_shop",
        ),
        (
            "denied",
            pairs(&[
                ("error", "access_denied"),
                ("error_description", "The user denied"),
                ("shop", "test-shop.myshopify.com"),
                ("state", "s"),
            ]),
            "access_denied",
        ),
        (
            "other error",
            pairs(&[("error", "invalid_scope")]),
            "oauth_error",
        ),
        ("nothing", Vec::new(), "missing_param"),
    ];
    for (name, params, code) in cases {
        let result = verify(&params);
        match result {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => {
                assert_eq!(e.code(), code, "{name}: {e}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn errors_have_distinct_codes() {
    assert_eq!(CallbackError::AccessDenied.code(), "access_denied");
    assert_eq!(CallbackError::InvalidHmac.code(), "invalid_hmac");
    assert_eq!(CallbackError::MissingParam("code").code(), "missing_param");
    assert_eq!(
        CallbackError::StaleTimestamp { skew_secs: 100 }.code(),
        "stale_timestamp"
    );
}

#[tokio::test]
async fn code_exchange_success_with_expiring_token() {
    let fake = FakeShopify::start(|req, _| {
        assert_eq!(
            req.path,
            "/shops/test-shop.myshopify.com/admin/oauth/access_token"
        );
        assert_eq!(req.method, "POST");
        assert!(
            req.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        assert_eq!(
            req.json,
            json!({"client_id": "test-client-id", "client_secret": "test-client-secret",
                   "code": "the-code", "expiring": "1"})
        );
        Reply::json(
            200,
            &json!({
                "access_token": "shpat_abc",
                "scope": "read_products,read_orders,read_customers",
                "expires_in": 3600,
                "refresh_token": "shprt_def",
                "refresh_token_expires_in": 7_776_000
            }),
        )
    })
    .await;
    let config = fake.config();
    let before = Utc::now();
    let grant = exchange_code(&reqwest::Client::new(), &config, &shop(), "the-code")
        .await
        .unwrap();
    assert_eq!(grant.access_token.expose(), "shpat_abc");
    assert_eq!(
        grant.scopes(),
        vec!["read_products", "read_orders", "read_customers"]
    );
    let expires = grant.expires_at.unwrap();
    assert!(expires >= before + chrono::Duration::seconds(3600));
    assert!(expires <= Utc::now() + chrono::Duration::seconds(3600));
    assert_eq!(grant.refresh_token.as_ref().unwrap().expose(), "shprt_def");
    assert!(grant.refresh_token_expires_at.unwrap() > expires);
    let debug = format!("{grant:?}");
    assert!(!debug.contains("shpat_abc") && !debug.contains("shprt_def"));
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn code_exchange_without_expiry() {
    let fake = FakeShopify::start(|_, _| {
        Reply::json(
            200,
            &json!({"access_token": "shpat_x", "scope": "read_orders"}),
        )
    })
    .await;
    let grant = exchange_code(&reqwest::Client::new(), &fake.config(), &shop(), "c")
        .await
        .unwrap();
    assert_eq!(grant.expires_at, None);
    assert_eq!(grant.refresh_token, None);
    assert!(!grant.has_scope("read_all_orders"));
}

#[tokio::test]
async fn code_exchange_400_keeps_shopify_error() {
    let fake = FakeShopify::start(|_, _| {
        Reply::json(
            400,
            &json!({
                "error": "invalid_request",
                "error_description": "The authorization code was not found or was already used"
            }),
        )
        .header("x-request-id", "req-400")
    })
    .await;
    let err = exchange_code(&reqwest::Client::new(), &fake.config(), &shop(), "used")
        .await
        .unwrap_err();
    match &err {
        ShopifyError::TokenRejected {
            status,
            error,
            error_description,
            request_id,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(error.as_deref(), Some("invalid_request"));
            assert!(
                error_description
                    .as_deref()
                    .unwrap()
                    .contains("already used")
            );
            assert_eq!(request_id.as_deref(), Some("req-400"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.code(), "token_rejected");
    assert!(!err.to_string().contains("test-client-secret"));
}

#[tokio::test]
async fn code_exchange_400_with_errors_field() {
    let fake =
        FakeShopify::start(|_, _| Reply::json(400, &json!({"errors": "invalid code"}))).await;
    let err = exchange_code(&reqwest::Client::new(), &fake.config(), &shop(), "bad")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ShopifyError::TokenRejected { errors: Some(e), .. } if e == "invalid code")
    );
}

#[tokio::test]
async fn refresh_sends_grant_type() {
    let fake = FakeShopify::start(|req, _| {
        assert_eq!(
            req.json,
            json!({"client_id": "test-client-id", "client_secret": "test-client-secret",
                   "refresh_token": "shprt_old", "grant_type": "refresh_token"})
        );
        Reply::json(200, &json!({"access_token": "shpat_new", "scope": "read_orders",
            "expires_in": "3600", "refresh_token": "shprt_new", "refresh_token_expires_in": 7_776_000}))
    })
    .await;
    let grant = refresh_token(
        &reqwest::Client::new(),
        &fake.config(),
        &shop(),
        &Secret::new("shprt_old"),
    )
    .await
    .unwrap();
    assert_eq!(grant.access_token.expose(), "shpat_new");
    assert!(grant.expires_at.is_some());
}

#[tokio::test]
async fn token_endpoint_garbage_is_a_decode_error() {
    let fake = FakeShopify::start(|_, _| Reply::json(200, &json!({"nope": true}))).await;
    let err = exchange_code(&reqwest::Client::new(), &fake.config(), &shop(), "c")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "decode_error");
}
