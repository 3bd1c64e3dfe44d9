//! CJ's history tools against the built-in development store: after an
//! install and its backfill, every new `StoreData` answer — series,
//! comparisons, repeat and top customers, refunds, product performance,
//! orders by status, the sync status — equals the development store's own
//! computation from its data (`hirecj_eval::expected`), not the mirror's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod shopify_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use hirecj_agent::model::ToolCall;
use hirecj_agent::tools::{Mirrored, StoreData, ToolContext, ToolName};
use hirecj_domain::mirror::{BackfillState, MirrorSync, SeriesBucket};
use hirecj_eval::expected::Source;
use hirecj_server::mirror::MirroredStore;
use hirecj_server::shopify::service;
use serde_json::{Value, json};
use shopify_support::*;

async fn backfilled(app: &TestApp, shop: &str) -> MirrorSync {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let sync = app.state.mirror.sync(shop).await.unwrap();
        if let Some(s) = &sync {
            assert_ne!(s.state, BackfillState::Failed, "{s:?}");
            if s.state == BackfillState::Complete {
                return sync.unwrap();
            }
        }
        assert!(Instant::now() < deadline, "no complete backfill: {sync:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ready<T: std::fmt::Debug>(m: Mirrored<T>) -> T {
    match m {
        Mirrored::Ready { figures, .. } => figures,
        other => panic!("not from the mirror: {other:?}"),
    }
}

#[tokio::test]
async fn the_history_tools_answer_from_the_mirror_as_the_source_computes() {
    let app = start_app(&[]).await;
    let handle = "mirror-tools-shop";
    let shop = format!("{handle}.myshopify.com");
    let browser = browser();
    let callback = consent(&app, &browser, handle, "install").await;
    assert_eq!(browser.get(&callback).send().await.unwrap().status(), 302);
    let sync = backfilled(&app, &shop).await;

    let store = &app.state.store;
    let user = store.user_by_shop(&shop).await.unwrap().unwrap();
    let fetcher = service::fetcher_for(store, &app.state.shopify, &user.id)
        .await
        .unwrap();
    let data = MirroredStore::new(store.clone(), fetcher).await;
    let ds = app.state.shopify.devstore.clone().unwrap().dataset(&shop);
    // What the development store showed the backfill: without
    // read_all_orders, the 60 days before the moment it was read (a
    // rolling cut, as Shopify's), which the mirror records as
    // `covers_since`.
    let read_at = sync.started_at.unwrap();
    let visible_since = sync.covers_since.unwrap();
    // (Shopify's operation times are whole seconds.)
    assert!(visible_since >= read_at - chrono::Duration::days(60) - chrono::Duration::seconds(1));
    assert!(visible_since <= sync.completed_at.unwrap() - chrono::Duration::days(60));
    let source = Source::new(&ds, Some(visible_since), sync.completed_at.unwrap());
    let today = source.day_of(Utc::now());
    let ago = |n: u64| today.checked_sub_days(Days::new(n)).unwrap();

    for (from, to) in [
        (ago(6), today),
        (ago(29), today),
        (ago(45), ago(20)),
        (ago(3), ago(3)),
        (ago(80), today),
    ] {
        let at = format!("{from}..={to}");
        for bucket in [SeriesBucket::Day, SeriesBucket::Week] {
            let got = data.sales_series(from, to, bucket).await.unwrap();
            assert!(got.refunds_per_point, "{at}");
            assert_eq!(
                got.points,
                source.series(from, to, bucket),
                "{at} {bucket:?}"
            );
        }
        assert_eq!(
            ready(data.repeat_customers(from, to).await.unwrap()),
            source.repeat_customers(from, to),
            "{at}"
        );
        assert_eq!(
            ready(data.top_customers(from, to, 10).await.unwrap()),
            source.top_customers(from, to, 10),
            "{at}"
        );
        assert_eq!(
            ready(data.refunds(from, to, 2_000).await.unwrap()),
            source.refunds(from, to, 2_000),
            "{at}"
        );
        let perf = ready(data.product_performance(from, to, 50).await.unwrap());
        assert_eq!(
            perf.orders_considered,
            source.sales(from, to).orders,
            "{at}"
        );
        assert_eq!(
            perf.products,
            source.product_performance(from, to, 50),
            "{at}"
        );
        assert_eq!(
            ready(data.orders_by_status(from, to).await.unwrap()),
            source.orders_by_status(from, to),
            "{at}"
        );
    }

    // The comparison, through the tool as the model calls it.
    let tools = ToolContext::connected(Arc::new(data));
    let (a, b, c, d) = (ago(13), ago(7), ago(27), ago(21));
    let call = ToolCall {
        id: "t1".into(),
        name: ToolName::SalesComparison.as_str().into(),
        input: json!({"start_date": a, "end_date": b, "compare_start_date": c, "compare_end_date": d}),
    };
    let out = tools
        .execute(&call, &[ToolName::SalesComparison.as_str().to_owned()])
        .await;
    assert!(!out.is_error, "{out:?}");
    let v: Value = serde_json::from_str(&out.content).unwrap();
    let (now, before) = (source.sales(a, b), source.sales(c, d));
    let money = |m: hirecj_domain::mirror::Money| hirecj_shopify::Amount::from(m).to_string();
    assert_eq!(v["period"]["orders"], now.orders);
    assert_eq!(v["period"]["revenue"], money(now.revenue));
    assert_eq!(v["compared_with"]["orders"], before.orders);
    assert_eq!(v["compared_with"]["refunded"], money(before.refunded));
    assert_eq!(
        v["change"]["orders"]["change"],
        now.orders as i64 - before.orders as i64
    );

    // How fresh: the backfill's own record.
    let call = ToolCall {
        id: "t2".into(),
        name: ToolName::SyncStatus.as_str().into(),
        input: json!({}),
    };
    let out = tools
        .execute(&call, &[ToolName::SyncStatus.as_str().to_owned()])
        .await;
    let v: Value = serde_json::from_str(&out.content).unwrap();
    assert_eq!(v["state"], "complete", "{v}");
    assert_eq!(v["orders_read"], source.all_orders().count() as u64, "{v}");
    assert_eq!(
        v["covers_since"],
        source.day_of(sync.covers_since.unwrap()).to_string(),
        "without read_all_orders the copy covers Shopify's 60 days"
    );
}
