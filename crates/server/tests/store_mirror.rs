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
use hirecj_agent::tools::{Mirrored, StoreData};
use hirecj_devstore::{
    CancelOrder, Delivery, DeliveryFaults, FulfillmentStatus, NewCustomer, NewOrder, NewProduct,
    NewRefund, OrderUpdate, RefundLine,
};
use hirecj_domain::mirror::{BackfillState, MirrorSync, ShopTimeZone};
use hirecj_eval::expected::Source;
use hirecj_server::mirror::MirroredStore;
use hirecj_server::shopify::service;
use hirecj_shopify::Amount;
use hirecj_store::MirrorKind;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
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
    expected_until(ds, zone, sync, sync.completed_at.unwrap(), from, to)
}

/// [`expected`] with the orders created up to `until`.
fn expected_until(
    ds: &hirecj_devstore::Dataset,
    zone: ShopTimeZone,
    sync: &MirrorSync,
    until: chrono::DateTime<Utc>,
    from: NaiveDate,
    to: NaiveDate,
) -> Expected {
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

    // A reconcile reads again what changed since the backfill: nothing
    // moves, and it is recorded.
    let before = data.sales_summary(days_ago(29), today).await.unwrap();
    app.state.mirror.reconcile_now(&shop).await.unwrap();
    let after_sync = app.state.mirror.sync(&shop).await.unwrap().unwrap();
    assert!(after_sync.last_reconcile_at.is_some(), "{after_sync:?}");
    let data = MirroredStore::new(
        store.clone(),
        service::fetcher_for(store, &app.state.shopify, &user.id)
            .await
            .unwrap(),
    )
    .await;
    let after = data.sales_summary(days_ago(29), today).await.unwrap();
    assert_eq!(
        (after.orders, after.revenue),
        (before.orders, before.revenue)
    );

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

/// Waits until the mirror holds order `id` as updated at `updated_at` (or
/// later); returns how long that took.
async fn mirrored(
    app: &TestApp,
    shop: &str,
    id: u64,
    updated_at: chrono::DateTime<Utc>,
) -> Duration {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(30);
    loop {
        let order = app.state.store.mirror_order(shop, id as i64).await.unwrap();
        if order.is_some_and(|o| o.updated_at >= updated_at) {
            return start.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "order {id} never reached the mirror"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every tool's answer over `data` equals the development store's own
/// computation from its current data.
async fn assert_tools_equal_the_source(
    app: &TestApp,
    shop: &str,
    data: &MirroredStore,
    sync: &MirrorSync,
) {
    let ds = app.state.shopify.devstore.clone().unwrap().dataset(shop);
    let zone = sync.time_zone;
    let now = Utc::now();
    let today = zone.day_of(now);
    let days_ago = |n: u64| today.checked_sub_days(Days::new(n)).unwrap();
    for (from, to) in [
        (today, today),
        (days_ago(6), today),
        (days_ago(29), today),
        (days_ago(58), days_ago(1)),
    ] {
        let want = expected_until(&ds, zone, sync, now, from, to);
        let got = data.sales_summary(from, to).await.unwrap();
        assert_eq!(
            (got.orders, got.cancelled_orders, got.revenue, got.refunded),
            (want.orders, want.cancelled, want.revenue, want.refunded),
            "{from}..={to}"
        );
        let got_top: Vec<(u64, i64, u64)> = got
            .top_products
            .iter()
            .map(|p| (product_id(p.product_id.as_deref()), p.units, p.orders))
            .collect();
        assert_eq!(got_top[..], want.top[..got_top.len()], "{from}..={to}");
    }
    // Product performance (refunded units and what they sold for
    // included), orders by status and the open orders, as the source
    // computes them.
    let source = Source::new(&ds, sync.covers_since, now);
    for (from, to) in [(days_ago(6), today), (days_ago(58), today)] {
        match data.product_performance(from, to, 50).await.unwrap() {
            Mirrored::Ready { figures, .. } => {
                assert_eq!(
                    figures.products,
                    source.product_performance(from, to, 50),
                    "{from}..={to}"
                );
                if from == days_ago(58) {
                    // (Refunded units are there to compare.)
                    assert!(figures.products.iter().any(|p| p.refunded_units > 0));
                }
            }
            other => panic!("not from the mirror: {other:?}"),
        }
        match data.orders_by_status(from, to).await.unwrap() {
            Mirrored::Ready { figures, .. } => {
                assert_eq!(figures, source.orders_by_status(from, to), "{from}..={to}")
            }
            other => panic!("not from the mirror: {other:?}"),
        }
    }
    let counts = data.store_counts().await.unwrap();
    assert_eq!(
        counts.open_orders.count,
        source.all_orders().filter(|o| o.is_open()).count() as u64
    );
    let best = data.top_products(30, 10).await.unwrap();
    let want = expected_until(&ds, zone, sync, now, days_ago(29), today);
    assert_eq!(best.orders_considered, want.orders);
    let got: Vec<(u64, i64, u64)> = best
        .products
        .iter()
        .map(|p| (product_id(p.product_id.as_deref()), p.units, p.orders))
        .collect();
    assert_eq!(got[..], want.top[..got.len()]);
    let recent = data.recent_orders(10).await.unwrap();
    let newest: Vec<String> = ds
        .orders
        .iter()
        .filter(|o| o.created_at <= now)
        .rev()
        .take(10)
        .map(|o| format!("gid://shopify/Order/{}", o.id))
        .collect();
    let got: Vec<String> = recent.iter().map(|o| o.id.clone()).collect();
    assert_eq!(got, newest);
    for (o, src) in recent
        .iter()
        .zip(ds.orders.iter().filter(|o| o.created_at <= now).rev())
    {
        assert_eq!(o.total, Amount::from_cents(src.total), "{}", o.name);
        assert_eq!(
            o.refunded,
            Amount::from_cents(src.total_refunded),
            "{}",
            o.name
        );
        assert_eq!(
            o.cancelled_at.is_some(),
            src.cancelled_at.is_some(),
            "{}",
            o.name
        );
    }
}

/// The mirror equals the source: after the backfill, a random sequence of
/// new orders, updates, cancellations and refunds in the development
/// store, their webhooks delivered with duplicates, reordering and a few
/// dropped, then one reconcile, every tool answers exactly what the
/// development store computes from its own data. (Fixed seed.)
#[tokio::test]
async fn the_mirror_equals_the_source_after_faulty_webhooks_and_one_reconcile() {
    let app = start_app(&[]).await;
    let handle = "faulty-shop";
    let shop = format!("{handle}.myshopify.com");
    install(&app, handle).await;
    backfilled(&app, &shop).await;
    let devstore = app.state.shopify.devstore.clone().unwrap();
    // The install subscribes the mirror's topics (in the background).
    let deadline = Instant::now() + Duration::from_secs(20);
    while devstore.webhook_subscriptions(&shop).len() < hirecj_shopify::MIRROR_TOPICS.len() {
        assert!(
            Instant::now() < deadline,
            "the install subscribed the mirror's topics: {:?}",
            devstore.webhook_subscriptions(&shop)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A new order reaches CJ's tools through its webhook.
    let order = devstore.create_order(&shop, NewOrder::default()).unwrap();
    let took = mirrored(&app, &shop, order.id, order.updated_at).await;
    eprintln!("a new order reached the mirror {took:?} after it was created");

    // An order whose every webhook is lost stays unknown to the mirror...
    devstore.plan_deliveries(&shop, [Delivery::Drop, Delivery::Drop, Delivery::Drop]);
    let lost = devstore.create_order(&shop, NewOrder::default()).unwrap();
    assert!(
        devstore
            .wait_for_deliveries(&shop, Duration::from_secs(30))
            .await
    );
    let store = &app.state.store;
    assert!(
        store
            .mirror_order(&shop, lost.id as i64)
            .await
            .unwrap()
            .is_none()
    );

    // Deletions whose webhooks are lost stay in the mirror: a cancelled
    // order, a product and a customer (each first mirrored by webhook).
    let doomed_order = devstore.create_order(&shop, NewOrder::default()).unwrap();
    let cancelled = devstore
        .cancel_order(
            &shop,
            doomed_order.id,
            CancelOrder {
                reason: Some("fraud".into()),
                refund: false,
            },
        )
        .unwrap();
    let doomed_product = devstore
        .create_product(
            &shop,
            NewProduct {
                title: "Discontinued Candle".into(),
                price: 1_800,
                ..NewProduct::default()
            },
        )
        .unwrap();
    let doomed_customer = devstore
        .create_customer(
            &shop,
            NewCustomer {
                email: "gone@example.com".into(),
                first_name: "Gone".into(),
                last_name: "Away".into(),
                phone: None,
            },
        )
        .unwrap();
    assert!(
        devstore
            .wait_for_deliveries(&shop, Duration::from_secs(30))
            .await
    );
    let holds = |kind: MirrorKind, id: u64| {
        let store = app.state.store.clone();
        let shop = shop.clone();
        async move {
            let far = Utc::now() + chrono::Duration::days(1);
            let ids = store.mirror_ids(&shop, kind, far, None).await.unwrap();
            ids.contains(&(id as i64))
        }
    };
    let doomed = [
        (MirrorKind::Orders, doomed_order.id),
        (MirrorKind::Products, doomed_product.id),
        (MirrorKind::Customers, doomed_customer.id),
    ];
    for (kind, id) in doomed {
        assert!(holds(kind, id).await, "{kind:?} {id} was mirrored");
    }
    devstore.plan_deliveries(&shop, [Delivery::Drop, Delivery::Drop, Delivery::Drop]);
    devstore.delete_order(&shop, doomed_order.id).unwrap();
    devstore.delete_product(&shop, doomed_product.id).unwrap();
    devstore.delete_customer(&shop, doomed_customer.id).unwrap();
    assert!(
        devstore
            .wait_for_deliveries(&shop, Duration::from_secs(30))
            .await
    );
    for (kind, id) in doomed {
        assert!(
            holds(kind, id).await,
            "{kind:?} {id}: its deletion was lost"
        );
    }

    // Then a storm of changes, delivered badly.
    devstore.set_delivery_faults(
        &shop,
        Some(DeliveryFaults {
            duplicate: 0.15,
            hold: 0.15,
            drop: 0.08,
            seed: 11,
        }),
    );
    let mut rng = StdRng::seed_from_u64(42);
    let (mut touched, mut deleted) = (0, 0);
    for _ in 0..60 {
        let ds = devstore.dataset(&shop);
        let now = Utc::now();
        let recent: Vec<&hirecj_devstore::Order> = ds
            .orders
            .iter()
            .filter(|o| o.created_at <= now && o.created_at > now - chrono::Duration::days(20))
            .collect();
        let pick = recent[rng.gen_range(0..recent.len())];
        let changed = match rng.gen_range(0..11) {
            0..=3 => devstore
                .create_order(&shop, NewOrder::default())
                .map(|_| ()),
            4..=5 => devstore
                .update_order(
                    &shop,
                    pick.id,
                    OrderUpdate {
                        tags: Some(vec![format!("t{}", rng.gen_range(0..5))]),
                        fulfillment_status: Some(FulfillmentStatus::Fulfilled),
                        ..OrderUpdate::default()
                    },
                )
                .map(|_| ()),
            // Deleting a cancelled order (Shopify deletes no other).
            10 => match recent.iter().find(|o| o.cancelled_at.is_some()) {
                Some(o) => {
                    deleted += 1;
                    devstore.delete_order(&shop, o.id).map(|_| ())
                }
                None => continue,
            },
            6 => devstore
                .cancel_order(
                    &shop,
                    pick.id,
                    CancelOrder {
                        reason: Some("customer".into()),
                        refund: rng.gen_bool(0.5),
                    },
                )
                .map(|_| ()),
            _ => devstore
                .refund_order(
                    &shop,
                    pick.id,
                    match pick
                        .line_items
                        .iter()
                        .find(|l| pick.current_quantity(l.id) > 0)
                        .filter(|_| rng.gen_bool(0.5))
                    {
                        // Units of a line, for what they sold for.
                        Some(l) => NewRefund {
                            amount: None,
                            note: Some("wrong size".into()),
                            line_items: vec![RefundLine {
                                line_item_id: l.id,
                                quantity: rng.gen_range(1..=pick.current_quantity(l.id)),
                            }],
                        },
                        // An amount only.
                        None => NewRefund {
                            amount: Some(
                                rng.gen_range(100..1500)
                                    .min(pick.total - pick.total_refunded),
                            ),
                            note: Some("damaged in transit".into()),
                            line_items: Vec::new(),
                        },
                    },
                )
                .map(|_| ()),
        };
        // Some changes are refused, as Shopify would (refunding a fully
        // refunded order, cancelling a cancelled one): they send nothing.
        if changed.is_ok() {
            touched += 1;
        }
    }
    assert!(touched > 30, "{touched} changes made");
    assert!(deleted > 0, "some cancelled orders were deleted");
    devstore.release_held_deliveries(&shop);
    assert!(
        devstore
            .wait_for_deliveries(&shop, Duration::from_secs(60))
            .await
    );
    let log = devstore.delivery_log(&shop);
    let dropped = log
        .iter()
        .filter(|d| d.outcome == hirecj_devstore::DeliveryOutcome::Dropped)
        .count();
    assert!(dropped > 0, "some deliveries were dropped: {log:?}");

    // A sweep leaves alone what changed since its listing began (to the
    // second): let the clock pass the deleted order's last change.
    while Utc::now() < cancelled.updated_at + chrono::Duration::seconds(1) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One reconcile repairs what the dropped deliveries would have brought.
    app.state.mirror.reconcile_now(&shop).await.unwrap();
    // ...until the reconcile reads it; and its sweep finds the deletions
    // that were lost.
    assert!(
        store
            .mirror_order(&shop, lost.id as i64)
            .await
            .unwrap()
            .is_some()
    );
    for (kind, id) in doomed {
        assert!(!holds(kind, id).await, "{kind:?} {id} was swept");
    }
    assert!(
        store
            .mirror_order(&shop, doomed_order.id as i64)
            .await
            .unwrap()
            .is_none()
    );

    let sync = app.state.mirror.sync(&shop).await.unwrap().unwrap();
    let user = store.user_by_shop(&shop).await.unwrap().unwrap();
    let data = MirroredStore::new(
        store.clone(),
        service::fetcher_for(store, &app.state.shopify, &user.id)
            .await
            .unwrap(),
    )
    .await;
    assert_tools_equal_the_source(&app, &shop, &data, &sync).await;
}

/// A backfill whose replica died mid-way is taken over once its lease
/// lapses and resumes where the dead replica stood (its phase and counts),
/// not from the start.
#[tokio::test]
async fn a_backfill_left_by_a_dead_replica_resumes_where_it_stood() {
    let app = start_app(&[]).await;
    let handle = "resumed-shop";
    let shop = format!("{handle}.myshopify.com");
    install(&app, handle).await;
    backfilled(&app, &shop).await;
    let store = &app.state.store;

    // A replica claimed the backfill again, read the orders (123 of them,
    // it says), moved on to products and died there.
    assert!(store.mirror_request_backfill(&shop).await.unwrap());
    let dead = "replica-dead";
    let claimed = store
        .claim_backfill(&shop, dead, Duration::ZERO)
        .await
        .unwrap();
    assert!(claimed.is_some(), "the dead replica's claim");
    assert!(
        store
            .record_backfill_step(&shop, dead, None, "products", 123, 456)
            .await
            .unwrap()
    );
    // Its lease has lapsed (it was for no time at all): a live replica
    // takes the backfill over.
    app.state.mirror.wake();
    let sync = backfilled(&app, &shop).await;
    assert_ne!(sync.owner.as_deref(), Some(dead));
    assert_eq!(
        sync.orders_mirrored, 123,
        "the orders phase was not read again: {sync:?}"
    );
    assert!(
        sync.objects_mirrored > 456,
        "products and customers were read: {sync:?}"
    );
}

#[tokio::test]
async fn granting_read_all_orders_reads_the_whole_history() {
    let app = start_app(&[]).await;
    let handle = "widening-shop";
    let shop = format!("{handle}.myshopify.com");
    install(&app, handle).await;
    let first = backfilled(&app, &shop).await;
    let cut = first.covers_since.expect("a 60-day mirror");
    let devstore = app.state.shopify.devstore.clone().unwrap();
    let ds = devstore.dataset(&shop);
    assert!(
        ds.orders.iter().any(|o| o.created_at < cut),
        "the shop has orders older than Shopify's 60 days"
    );

    // The merchant approves the scope: a new token that sees everything.
    let store = &app.state.store;
    let user = store.user_by_shop(&shop).await.unwrap().unwrap();
    let scopes = format!("{},read_all_orders", app.state.settings.shopify.scopes);
    let token = devstore.issue_access_token(&shop, &scopes).unwrap();
    store
        .upsert_integration(&hirecj_domain::NewIntegration {
            user_id: user.id.clone(),
            provider: "shopify".into(),
            shop_domain: shop.clone(),
            access_token: token.into(),
            refresh_token: None,
            scopes,
            token_expires_at: None,
            refresh_expires_at: None,
        })
        .await
        .unwrap();
    app.state.mirror.register(&user.id).await;
    app.state.mirror.wake();

    // A second backfill reads the whole history.
    let deadline = Instant::now() + Duration::from_secs(120);
    let widened = loop {
        let sync = app.state.mirror.sync(&shop).await.unwrap().unwrap();
        assert_ne!(sync.state, BackfillState::Failed, "{sync:?}");
        if sync.state == BackfillState::Complete && sync.covers_since.is_none() {
            break sync;
        }
        assert!(Instant::now() < deadline, "no wider backfill: {sync:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let until = widened.completed_at.unwrap();
    let all = ds.orders.iter().filter(|o| o.created_at <= until).count();
    assert_eq!(widened.orders_mirrored, all as i64, "{widened:?}");
    assert!(widened.orders_mirrored > first.orders_mirrored);
}

/// Once the backfill has read the store's history, CJ says so in the
/// merchant's conversation, live in the open chat, from the stored
/// progress.
#[tokio::test]
async fn cj_says_when_the_whole_history_is_read() {
    let app = start_app(&[]).await;
    let handle = "announced-shop";
    let shop = format!("{handle}.myshopify.com");
    let devstore = app.state.shopify.devstore.clone().unwrap();
    // The export waits until the chat is open.
    devstore.hold_bulk_operations(&shop);
    let session = install(&app, handle).await;
    let store = &app.state.store;
    let user = store.user_by_shop(&shop).await.unwrap().unwrap();
    let page = store.conversations_for_user(&user.id, 1, 0).await.unwrap();
    let conversation = page.items[0].id;

    let options = hirecj_testkit::ws::ConnectOptions {
        cookie: Some(format!("hirecj_session={session}")),
        origin: Some(app.base.clone()),
        wait: hirecj_testkit::app::WAIT,
        ..Default::default()
    };
    let ws_url = format!("{}/ws/chat", app.base.replacen("http://", "ws://", 1));
    let mut ws = hirecj_testkit::ws::ChatClient::connect(&ws_url, &options)
        .await
        .unwrap();
    let opened = ws.resume(conversation, 0).await.unwrap();
    let before = opened["messages"].as_array().unwrap().len();
    assert!(before > 0, "CJ's prepared message: {opened}");
    devstore.release_bulk_operations(&shop);

    let note = ws.until("cj_message").await.unwrap();
    let sync = backfilled(&app, &shop).await;
    let text = note["content"].as_str().unwrap();
    assert!(
        text.starts_with("I've finished reading your store"),
        "{text}"
    );
    let since = sync.covers_since.unwrap().date_naive();
    let digits = sync.orders_mirrored.to_string();
    let mut count = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            count.push(',');
        }
        count.push(c);
    }
    let read = format!("all {count} orders since {}", since.format("%-d %B %Y"));
    assert!(text.contains(&read), "{text} / {read}");
    let stored = store.messages(conversation, 0).await.unwrap();
    assert_eq!(stored.len(), before + 1);
    assert_eq!(stored.last().unwrap().content, text);
}
