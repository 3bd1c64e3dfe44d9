//! The two-backend test harness shared by the store's contract suites:
//! every test body runs on SQLite and on PostgreSQL (`TEST_DATABASE_URL`, an
//! admin URL; each test creates and drops its own database). Without it the
//! PostgreSQL half is skipped locally and fails in CI (`CI=true`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt as _;
use hirecj_store::{Cipher, Store, StoreOptions};
use sqlx::Connection as _;

pub const KEY: &[u8] = b"contract-test-secret-key-0123456789";

pub async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hirecj.db").display());
    let store = Store::open(&url, Cipher::from_secret_key(KEY), &StoreOptions::default())
        .await
        .unwrap();
    test(store.clone(), url).await;
    store.close().await;
}

pub async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "TEST_DATABASE_URL must be set in CI: the PostgreSQL contract suite may not be skipped"
            );
        }
        eprintln!("TEST_DATABASE_URL not set: skipping the PostgreSQL half of this test");
        return;
    };
    let name = format!("hirecj_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("TEST_DATABASE_URL must point to a reachable PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    let url = url.to_string();

    let outcome = AssertUnwindSafe(async {
        let store = Store::open(&url, Cipher::from_secret_key(KEY), &StoreOptions::default())
            .await
            .unwrap();
        test(store.clone(), url.clone()).await;
        store.close().await;
    })
    .catch_unwind()
    .await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Declares one contract test and runs it on both backends.
#[macro_export]
macro_rules! contract {
    ($name:ident, |$store:ident, $url:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn body($store: Store, $url: String) {
                let _ = &$url;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                with_sqlite(body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                with_postgres(body).await;
            }
        }
    };
}
