//! The store mirror against the built-in development store, over real
//! HTTP: an install registers the shop and a background backfill reads it
//! with Bulk Operations; once complete, CJ's tools answer from the mirror,
//! and every answer equals the development store's own computation from
//! its data. An uninstall leaves no mirrored row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod shopify_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use hirecj_agent::tools::StoreData;
use hirecj_domain::mirror::{BackfillState, MirrorSync, ShopTimeZone};
use hirecj_server::mirror::MirroredStore;
use hirecj_server::shopify::service;
use hirecj_shopify::Amount;
use shopify_support::*;

/// Installs the development store's shop `handle`; returns the merchant's
/// session cookie.
async fn install(app: &TestApp, handle: &str) -> String {
    let browser = browser();
    let callback = consent(app, &browser, handle, "install").await;
    let r = browser.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 302);
    set_cookie(&r, "hirecj_session").expect("a session cookie")
}

/// Waits until the shop's backfill is complete (or fails the test).
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

/// What the development store itself says about `from..=to`.
struct Expected {
    orders: u64,
    cancelled: u64,
    revenue: Amount,
    refunded: Amount,
    /// (product id, units, orders), ranked as CJ ranks best sellers.
    top: Vec<(u64, i64, u64)>,
}

fn expected(
    ds: &hirecj_devstore::Dataset,
    zone: ShopTimeZone,
    sync: &MirrorSync,
    from: NaiveDate,
    to: NaiveDate,
) -> Expected {
    let until = sync.completed_at.unwrap();
    let since = sync.covers_since;
    let orders: Vec<_> = ds
        .orders
        .iter()
        .filter(|o| o.created_at <= until && since.is_none_or(|s| o.created_at >= s))
        .filter(|o| (from..=to).contains(&zone.day_of(o.created_at)))
        .collect();
    let mut by_product: HashMap<u64, (i64, u64, String)> = HashMap::new();
    for o in &orders {
        let mut seen = Vec::new();
        for l in &o.line_items {
            let e = by_product
                .entry(l.product_id)
                .or_insert((0, 0, l.title.clone()));
            e.0 += l.quantity;
            if !seen.contains(&l.product_id) {
                e.1 += 1;
                seen.push(l.product_id);
            }
        }
    }
    let mut top: Vec<(u64, i64, u64, String)> = by_product
        .into_iter()
        .map(|(id, (units, n, title))| (id, units, n, title))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.3.cmp(&b.3)));
    Expected {
        orders: orders.len() as u64,
        cancelled: orders.iter().filter(|o| o.cancelled_at.is_some()).count() as u64,
        revenue: orders.iter().map(|o| Amount::from_cents(o.total)).sum(),
        refunded: orders
            .iter()
            .map(|o| Amount::from_cents(o.total_refunded))
            .sum(),
        top: top.into_iter().map(|(id, u, n, _)| (id, u, n)).collect(),
    }
}

fn product_id(gid: Option<&str>) -> u64 {
    gid.and_then(|g| g.rsplit('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn an_installed_store_is_mirrored_and_the_tools_answer_from_it_exactly() {
    let app = start_app(&[]).await;
    let handle = "mirror-shop";
    let shop = format!("{handle}.myshopify.com");
    let session = install(&app, handle).await;
    let sync = backfilled(&app, &shop).await;
    assert!(sync.orders_mirrored > 100, "{sync:?}");
    assert!(
        sync.covers_since.is_some(),
        "without read_all_orders the mirror covers the visible 60 days"
    );

    let store = &app.state.store;
    let user = store.user_by_shop(&shop).await.unwrap().unwrap();
    let fetcher = service::fetcher_for(store, &app.state.shopify, &user.id)
        .await
        .unwrap();
    let data = MirroredStore::new(store.clone(), fetcher).await;
    let ds = app.state.shopify.devstore.clone().unwrap().dataset(&shop);
    let zone: ShopTimeZone = ds.shop.iana_timezone.parse().unwrap();
    assert_eq!(sync.time_zone, zone);
    let today = zone.day_of(Utc::now());
    let days_ago = |n: u64| today.checked_sub_days(Days::new(n)).unwrap();

    for (from, to) in [
        (days_ago(6), today),
        (days_ago(29), today),
        (days_ago(45), days_ago(20)),
        (days_ago(3), days_ago(3)),
    ] {
        let want = expected(&ds, zone, &sync, from, to);
        let got = data.sales_summary(from, to).await.unwrap();
        assert_eq!(got.orders, want.orders, "{from}..={to}");
        assert_eq!(got.cancelled_orders, want.cancelled, "{from}..={to}");
        assert_eq!(got.revenue, want.revenue, "{from}..={to}");
        assert_eq!(got.refunded, want.refunded, "{from}..={to}");
        assert!(!got.truncated && got.note.is_none(), "{got:?}");
        let day_total: Amount = got.per_day.iter().map(|d| d.revenue).sum();
        assert_eq!(day_total, want.revenue);
        let got_top: Vec<(u64, i64, u64)> = got
            .top_products
            .iter()
            .map(|p| (product_id(p.product_id.as_deref()), p.units, p.orders))
            .collect();
        assert_eq!(got_top[..], want.top[..got_top.len()], "{from}..={to}");
    }

    // "What sells best?": the last 30 days, from the mirror.
    let best = data.top_products(30, 5).await.unwrap();
    let want = expected(&ds, zone, &sync, days_ago(29), today);
    assert_eq!(best.orders_considered, want.orders);
    let got: Vec<(u64, i64, u64)> = best
        .products
        .iter()
        .map(|p| (product_id(p.product_id.as_deref()), p.units, p.orders))
        .collect();
    assert_eq!(got[..], want.top[..5]);

    // The newest orders and a customer lookup.
    let recent = data.recent_orders(5).await.unwrap();
    let newest = ds
        .orders
        .iter()
        .filter(|o| o.created_at <= sync.completed_at.unwrap())
        .rev()
        .take(5)
        .map(|o| format!("gid://shopify/Order/{}", o.id))
        .collect::<Vec<_>>();
    assert_eq!(
        recent.iter().map(|o| o.id.clone()).collect::<Vec<_>>(),
        newest
    );
    let order = ds
        .orders
        .iter()
        .rev()
        .find(|o| o.customer_id.is_some() && o.created_at <= sync.completed_at.unwrap())
        .unwrap();
    let customer = ds.customer(order.customer_id.unwrap()).unwrap();
    let found = data
        .customer_by_email(&customer.email.to_uppercase())
        .await
        .unwrap()
        .expect("the customer");
    assert_eq!(found.id, format!("gid://shopify/Customer/{}", customer.id));
    assert!(
        found
            .recent_orders
            .iter()
            .any(|o| o.id == format!("gid://shopify/Order/{}", order.id))
    );

    // The merchant sees how fresh the copy is.
    let r = browser()
        .get(format!("{}/api/v1/users/{}/store", app.base, user.id))
        .header("Cookie", format!("hirecj_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["mirror"]["backfill"], "complete");
    assert_eq!(body["mirror"]["orders_mirrored"], sync.orders_mirrored);
    assert_eq!(body["mirror"]["time_zone"], zone.name());

    // Uninstalling from the development store deletes every mirrored row.
    let r = browser()
        .post(format!("{}/devstore/_control/uninstall", app.base))
        .header("Origin", app.base.as_str())
        .form(&[("shop", shop.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(app.state.mirror.sync(&shop).await.unwrap().is_none());
    let counts = store.mirror_counts(&shop).await.unwrap();
    assert_eq!(
        (counts.orders, counts.products, counts.customers),
        (0, 0, 0)
    );
}
