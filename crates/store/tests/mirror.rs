//! The store mirror's contract, on SQLite and on PostgreSQL
//! (`TEST_DATABASE_URL`, as in `contract.rs`): round trips with exact
//! money, newer-wins writes, tombstones, days cut at the shop's midnight,
//! the backfill lease, compliance deletes, and rollups that always equal a
//! direct computation over the same records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, TimeZone, Utc};
use hirecj_domain::mirror::{
    BackfillState, MirrorCustomer, MirrorLineItem, MirrorOrder, MirrorProduct, MirrorProductSales,
    MirrorRefund, Money, SeriesBucket, ShopTimeZone,
};
use hirecj_store::{Cipher, MirrorKind, Store, StoreError, StoreOptions, UpsertOutcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod harness;

use harness::{KEY, with_postgres, with_sqlite};

const SHOP: &str = "mirror-shop.myshopify.com";
const OTHER: &str = "other-shop.myshopify.com";

fn ny() -> ShopTimeZone {
    "America/New_York".parse().unwrap()
}

fn at(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, mi, 0).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn line(
    id: i64,
    product_id: Option<i64>,
    title: &str,
    quantity: i64,
    price: i64,
) -> MirrorLineItem {
    MirrorLineItem {
        id,
        product_id,
        variant_id: product_id.map(|p| p * 10),
        title: title.into(),
        variant_title: None,
        sku: None,
        quantity,
        current_quantity: quantity,
        price: Money::from_micros(price),
        discount: Money::ZERO,
    }
}

fn order(
    id: i64,
    created_at: DateTime<Utc>,
    total: i64,
    lines: Vec<MirrorLineItem>,
) -> MirrorOrder {
    MirrorOrder {
        id,
        name: format!("#{id}"),
        created_at,
        processed_at: Some(created_at),
        updated_at: created_at,
        cancelled_at: None,
        closed_at: None,
        financial_status: Some("PAID".into()),
        fulfillment_status: None,
        currency: "USD".into(),
        subtotal: Money::from_micros(total),
        total: Money::from_micros(total),
        total_discounts: Money::ZERO,
        total_tax: Money::ZERO,
        total_refunded: Money::ZERO,
        customer_id: None,
        email: None,
        customer_name: None,
        tags: Vec::new(),
        source_name: Some("web".into()),
        line_items: lines,
        refunds: Vec::new(),
    }
}

fn product(id: i64, title: &str, updated_at: DateTime<Utc>) -> MirrorProduct {
    MirrorProduct {
        id,
        title: title.into(),
        status: "ACTIVE".into(),
        vendor: Some("Acme".into()),
        product_type: None,
        created_at: at(2026, 1, 1, 0, 0),
        updated_at,
    }
}

fn customer(id: i64, email: &str, updated_at: DateTime<Utc>) -> MirrorCustomer {
    MirrorCustomer {
        id,
        name: Some(format!("Customer {id}")),
        email: Some(email.into()),
        created_at: at(2026, 1, 1, 0, 0),
        updated_at,
        orders_count: 1,
        amount_spent: Money::from_cents(1999),
    }
}

async fn register(store: &Store, shop: &str) {
    store
        .mirror_register_shop(shop, ny(), Some("USD"), Some("${{amount}}"))
        .await
        .unwrap();
}

contract!(orders_round_trip_with_exact_money, |store, url| {
    register(&store, SHOP).await;
    let mut o = order(
        1,
        at(2026, 5, 1, 15, 0),
        19_990_001,
        vec![
            line(11, Some(7), "Tee", 2, 9_990_000),
            line(12, None, "Gift wrap", 1, 1),
        ],
    );
    o.tags = vec!["vip".into(), "b2b".into()];
    o.email = Some("Jane@Example.com".into());
    o.customer_name = Some("Jane".into());
    o.customer_id = Some(501);
    o.total_tax = Money::from_micros(123_456);
    o.total_refunded = Money::from_micros(1);
    // One of the two tees went back; the order is closed.
    o.line_items[0].current_quantity = 1;
    o.closed_at = Some(at(2026, 5, 3, 10, 0));
    o.refunds = vec![MirrorRefund {
        id: 91,
        created_at: at(2026, 5, 2, 9, 0),
        amount: Money::from_micros(1),
        note: Some("damaged".into()),
    }];
    let outcome = store
        .mirror_upsert_orders(SHOP, &[o.clone()])
        .await
        .unwrap();
    assert_eq!(
        outcome,
        UpsertOutcome {
            applied: 1,
            stale: 0
        }
    );

    assert_eq!(
        store.mirror_recent_orders(SHOP, 10).await.unwrap(),
        vec![o.clone()]
    );
    assert_eq!(store.mirror_order(SHOP, 1).await.unwrap(), Some(o.clone()));
    assert_eq!(store.mirror_order(SHOP, 2).await.unwrap(), None);

    let sales = store
        .mirror_sales(SHOP, day(2026, 5, 1), day(2026, 5, 1))
        .await
        .unwrap();
    assert_eq!(sales.orders, 1);
    assert_eq!(sales.revenue, Money::from_micros(19_990_001));
    assert_eq!(sales.refunded, Money::from_micros(1));
    assert_eq!(sales.currency.as_deref(), Some("USD"));
    let top = store
        .mirror_top_products(SHOP, day(2026, 5, 1), day(2026, 5, 1), 10)
        .await
        .unwrap();
    assert_eq!(top.orders_considered, 1);
    assert_eq!(
        top.products,
        vec![
            MirrorProductSales {
                product_id: Some(7),
                title: "Tee".into(),
                units: 2,
                orders: 1,
                revenue: Money::from_micros(19_980_000),
                refunded_units: 1,
                refunded: Money::from_micros(9_990_000),
            },
            MirrorProductSales {
                product_id: None,
                title: "Gift wrap".into(),
                units: 1,
                orders: 1,
                revenue: Money::from_micros(1),
                refunded_units: 0,
                refunded: Money::ZERO,
            },
        ]
    );
    let performance = store
        .mirror_product_performance(SHOP, day(2026, 4, 1), day(2026, 5, 31), 1)
        .await
        .unwrap();
    assert_eq!(performance.products, top.products[..1]);
    // Closed: not open.
    let counts = store.mirror_counts(SHOP).await.unwrap();
    assert_eq!((counts.orders, counts.open_orders), (1, 0));
    let refunds = store
        .mirror_refunds(SHOP, day(2026, 5, 2), day(2026, 5, 2), 10)
        .await
        .unwrap();
    assert_eq!(refunds.count, 1);
    assert_eq!(refunds.amount, Money::from_micros(1));
    assert_eq!(refunds.refunds[0].order_name, "#1");
    assert_eq!(refunds.refunds[0].refund.note.as_deref(), Some("damaged"));

    // Empty ranges and unknown shops answer with zeros.
    let none = store
        .mirror_sales(OTHER, day(2026, 5, 1), day(2026, 5, 3))
        .await
        .unwrap();
    assert_eq!(
        (none.orders, none.currency, none.per_day.len()),
        (0, None, 3)
    );
    assert!(
        store.mirror_upsert_orders(OTHER, &[o]).await.is_err(),
        "an unregistered shop is refused"
    );
});

contract!(newer_wins_and_duplicates_are_idempotent, |store, url| {
    register(&store, SHOP).await;
    let created = at(2026, 6, 1, 12, 0);
    let mut v1 = order(
        5,
        created,
        1_000_000,
        vec![line(1, Some(1), "Mug", 1, 1_000_000)],
    );
    v1.updated_at = created + Duration::minutes(1);
    let mut v2 = v1.clone();
    v2.updated_at = created + Duration::minutes(2);
    v2.total = Money::from_micros(3_000_000);
    v2.cancelled_at = Some(v2.updated_at);
    v2.line_items = vec![line(2, Some(2), "Bowl", 3, 1_000_000)];

    let out = store
        .mirror_upsert_orders(SHOP, &[v2.clone()])
        .await
        .unwrap();
    assert_eq!(
        out,
        UpsertOutcome {
            applied: 1,
            stale: 0
        }
    );
    let out = store
        .mirror_upsert_orders(SHOP, &[v1.clone()])
        .await
        .unwrap();
    assert_eq!(
        out,
        UpsertOutcome {
            applied: 0,
            stale: 1
        },
        "older is stale"
    );
    assert_eq!(store.mirror_order(SHOP, 5).await.unwrap(), Some(v2.clone()));
    // The same version again is harmless.
    let out = store
        .mirror_upsert_orders(SHOP, &[v2.clone()])
        .await
        .unwrap();
    assert_eq!(out.applied, 1);
    // Both versions in one batch, in any order: the newest counts.
    let out = store
        .mirror_upsert_orders(SHOP, &[v2.clone(), v1.clone(), v2.clone()])
        .await
        .unwrap();
    assert_eq!(
        out,
        UpsertOutcome {
            applied: 1,
            stale: 2
        }
    );
    assert_eq!(store.mirror_order(SHOP, 5).await.unwrap(), Some(v2.clone()));

    let sales = store
        .mirror_sales(SHOP, day(2026, 6, 1), day(2026, 6, 1))
        .await
        .unwrap();
    assert_eq!(
        (sales.orders, sales.cancelled_orders, sales.revenue),
        (1, 1, Money::from_micros(3_000_000))
    );
    let top = store
        .mirror_top_products(SHOP, day(2026, 6, 1), day(2026, 6, 1), 10)
        .await
        .unwrap();
    assert_eq!(top.products.len(), 1, "the old line is gone");
    assert_eq!(top.products[0].title, "Bowl");
    assert_eq!(top.products[0].units, 3);

    // Line items are replaced on update.
    let mut v3 = v2.clone();
    v3.updated_at = created + Duration::minutes(3);
    v3.line_items = vec![
        line(3, Some(1), "Mug", 1, 500_000),
        line(4, Some(3), "Plate", 2, 250_000),
    ];
    store
        .mirror_upsert_orders(SHOP, &[v3.clone()])
        .await
        .unwrap();
    assert_eq!(
        store
            .mirror_order(SHOP, 5)
            .await
            .unwrap()
            .unwrap()
            .line_items,
        v3.line_items
    );
    let top = store
        .mirror_top_products(SHOP, day(2026, 6, 1), day(2026, 6, 1), 10)
        .await
        .unwrap();
    let titles: Vec<_> = top.products.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, ["Plate", "Mug"]);
});

contract!(deletes_stay_deleted_against_older_updates, |store, url| {
    register(&store, SHOP).await;
    let t0 = at(2026, 2, 1, 0, 0);
    let out = store
        .mirror_upsert_products(SHOP, &[product(1, "Tee", t0), product(2, "Cap", t0)])
        .await
        .unwrap();
    assert_eq!(out.applied, 2);
    assert!(
        store
            .mirror_delete_product(SHOP, 1, t0 + Duration::hours(1))
            .await
            .unwrap()
    );
    // An update older than the deletion, or at its time, does not pass.
    let out = store
        .mirror_upsert_products(
            SHOP,
            &[
                product(1, "Tee (old)", t0 + Duration::minutes(30)),
                product(3, "Hat", t0),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        UpsertOutcome {
            applied: 1,
            stale: 1
        }
    );
    let out = store
        .mirror_upsert_products(SHOP, &[product(1, "Tee", t0 + Duration::hours(1))])
        .await
        .unwrap();
    assert_eq!(out.stale, 1);
    assert_eq!(store.mirror_counts(SHOP).await.unwrap().products, 2);
    // A deletion older than the stored product is refused.
    assert!(
        !store
            .mirror_delete_product(SHOP, 2, t0 - Duration::hours(1))
            .await
            .unwrap()
    );
    // A deletion arriving before the product stays.
    assert!(store.mirror_delete_product(SHOP, 9, t0).await.unwrap());
    let out = store
        .mirror_upsert_products(SHOP, &[product(9, "Late", t0 - Duration::hours(1))])
        .await
        .unwrap();
    assert_eq!(out.stale, 1);
    assert_eq!(store.mirror_counts(SHOP).await.unwrap().products, 2);

    // Customers alike; a deleted customer is not found and keeps no email.
    store
        .mirror_upsert_customers(SHOP, &[customer(7, "Ann@Example.com", t0)])
        .await
        .unwrap();
    let (found, _) = store
        .mirror_customer_by_email(SHOP, "  ann@example.COM ")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, customer(7, "Ann@Example.com", t0));
    assert!(
        store
            .mirror_delete_customer(SHOP, 7, t0 + Duration::hours(1))
            .await
            .unwrap()
    );
    let out = store
        .mirror_upsert_customers(SHOP, &[customer(7, "ann@example.com", t0)])
        .await
        .unwrap();
    assert_eq!(out.stale, 1);
    assert!(
        store
            .mirror_customer_by_email(SHOP, "ann@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.mirror_counts(SHOP).await.unwrap().customers, 0);
    // A newer update (re-created) passes.
    let out = store
        .mirror_upsert_customers(
            SHOP,
            &[customer(7, "ann@example.com", t0 + Duration::hours(2))],
        )
        .await
        .unwrap();
    assert_eq!(out.applied, 1);
    assert_eq!(store.mirror_counts(SHOP).await.unwrap().customers, 1);
});

contract!(
    deleted_orders_leave_their_days_and_stay_deleted,
    |store, url| {
        register(&store, SHOP).await;
        let t0 = at(2026, 6, 1, 16, 0);
        let mut a = order(
            1,
            t0,
            10_000_000,
            vec![line(11, Some(5), "Mug", 2, 5_000_000)],
        );
        a.customer_id = Some(70);
        let mut b = order(
            2,
            t0,
            4_000_000,
            vec![line(21, Some(6), "Plate", 1, 4_000_000)],
        );
        b.customer_id = Some(70);
        let c = order(3, t0 + Duration::days(1), 1_000_000, vec![]);
        store
            .mirror_upsert_orders(SHOP, &[a.clone(), b.clone(), c])
            .await
            .unwrap();
        store
            .mirror_upsert_products(SHOP, &[product(5, "Mug", t0), product(6, "Plate", t0)])
            .await
            .unwrap();
        let june_1 = day(2026, 6, 1);

        // What the mirror holds, for a sweep to compare with Shopify's list.
        let later = t0 + Duration::days(2);
        let ids = |kind, since| {
            let store = store.clone();
            async move { store.mirror_ids(SHOP, kind, later, since).await.unwrap() }
        };
        assert_eq!(ids(MirrorKind::Orders, None).await, [1, 2, 3]);
        assert_eq!(
            ids(MirrorKind::Orders, Some(t0 + Duration::hours(1))).await,
            [3]
        );
        assert_eq!(ids(MirrorKind::Products, None).await, [5, 6]);
        assert!(
            store
                .mirror_ids(SHOP, MirrorKind::Orders, t0, None)
                .await
                .unwrap()
                .is_empty(),
            "updated at or after the sweep's start: left alone"
        );

        // Order 1 and an order the mirror never held are deleted.
        let deleted = store
            .mirror_delete_orders(SHOP, &[1, 1, 99], t0 + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(deleted, 1);
        assert!(store.mirror_order(SHOP, 1).await.unwrap().is_none());
        let sales = store.mirror_sales(SHOP, june_1, june_1).await.unwrap();
        assert_eq!(
            (sales.orders, sales.revenue),
            (1, Money::from_micros(4_000_000))
        );
        let top = store
            .mirror_top_products(SHOP, june_1, june_1, 10)
            .await
            .unwrap();
        let titles: Vec<_> = top.products.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["Plate"]);
        let spenders = store
            .mirror_top_customers(SHOP, june_1, june_1, 5)
            .await
            .unwrap();
        assert_eq!(
            spenders
                .iter()
                .map(|c| (c.customer_id, c.orders))
                .collect::<Vec<_>>(),
            [(70, 1)]
        );
        assert_eq!(store.mirror_counts(SHOP).await.unwrap().orders, 2);
        assert_eq!(ids(MirrorKind::Orders, None).await, [2, 3]);

        // Versions not newer than the deletion stay out (a late webhook, a
        // reconcile that read the order before); so does a never-seen one.
        for updated in [t0 + Duration::minutes(30), t0 + Duration::hours(1)] {
            let mut late = a.clone();
            late.updated_at = updated;
            let mut early_99 = order(99, t0, 1_000_000, vec![]);
            early_99.updated_at = updated;
            let out = store
                .mirror_upsert_orders(SHOP, &[late, early_99])
                .await
                .unwrap();
            assert_eq!(
                out,
                UpsertOutcome {
                    applied: 0,
                    stale: 2
                }
            );
        }
        // A deletion older than the stored order leaves it.
        assert_eq!(
            store
                .mirror_delete_orders(SHOP, &[2], t0 - Duration::hours(1))
                .await
                .unwrap(),
            0
        );
        assert!(store.mirror_order(SHOP, 2).await.unwrap().is_some());
        // Deleting the customer's last order drops their totals.
        store
            .mirror_delete_orders(SHOP, &[2], t0 + Duration::hours(1))
            .await
            .unwrap();
        assert!(
            store
                .mirror_top_customers(SHOP, june_1, june_1, 5)
                .await
                .unwrap()
                .is_empty()
        );
        let sales = store.mirror_sales(SHOP, june_1, june_1).await.unwrap();
        assert_eq!((sales.orders, sales.revenue), (0, Money::ZERO));

        // Uninstall forgets the tombstones with everything else.
        store.mirror_delete_shop(SHOP).await.unwrap();
        assert_eq!(mirror_rows(&url, SHOP).await, 0);
        register(&store, SHOP).await;
        let out = store.mirror_upsert_orders(SHOP, &[a]).await.unwrap();
        assert_eq!(out.applied, 1);
    }
);

contract!(
    days_are_cut_at_the_shops_midnight_across_dst,
    |store, url| {
        register(&store, SHOP).await;
        // New York springs forward on 8 March 2026: that day runs from 05:00
        // UTC (EST) to 04:00 UTC on the 9th (EDT), 23 hours.
        let orders = [
            order(1, at(2026, 3, 8, 4, 59), 1_000_000, vec![]),
            order(2, at(2026, 3, 8, 5, 0), 2_000_000, vec![]),
            order(3, at(2026, 3, 9, 3, 59), 4_000_000, vec![]),
            order(4, at(2026, 3, 9, 4, 0), 8_000_000, vec![]),
        ];
        store.mirror_upsert_orders(SHOP, &orders).await.unwrap();
        let sales = store
            .mirror_sales(SHOP, day(2026, 3, 7), day(2026, 3, 9))
            .await
            .unwrap();
        let per_day: Vec<_> = sales
            .per_day
            .iter()
            .map(|d| (d.date, d.orders, d.revenue.micros()))
            .collect();
        assert_eq!(
            per_day,
            [
                (day(2026, 3, 7), 1, 1_000_000),
                (day(2026, 3, 8), 2, 6_000_000),
                (day(2026, 3, 9), 1, 8_000_000),
            ]
        );
        let only_8th = store
            .mirror_sales(SHOP, day(2026, 3, 8), day(2026, 3, 8))
            .await
            .unwrap();
        assert_eq!(only_8th.orders, 2);

        // Weekly series start on Mondays (9 March 2026 is a Monday).
        let weeks = store
            .mirror_series(SHOP, day(2026, 3, 4), day(2026, 3, 16), SeriesBucket::Week)
            .await
            .unwrap();
        let weeks: Vec<_> = weeks.iter().map(|w| (w.start, w.orders)).collect();
        assert_eq!(
            weeks,
            [
                (day(2026, 3, 4), 3),
                (day(2026, 3, 9), 1),
                (day(2026, 3, 16), 0)
            ]
        );

        // A new zone recomputes the days: in UTC the four orders fall on the
        // 8th (two) and the 9th (two).
        store
            .mirror_register_shop(SHOP, ShopTimeZone::UTC, None, None)
            .await
            .unwrap();
        let sales = store
            .mirror_sales(SHOP, day(2026, 3, 7), day(2026, 3, 9))
            .await
            .unwrap();
        let per_day: Vec<_> = sales.per_day.iter().map(|d| d.orders).collect();
        assert_eq!(per_day, [0, 2, 2]);
        let sync = store.mirror_sync(SHOP).await.unwrap().unwrap();
        assert_eq!(sync.time_zone, ShopTimeZone::UTC);
        assert_eq!(sync.currency.as_deref(), Some("USD"), "kept");
        assert_eq!(sync.money_format.as_deref(), Some("${{amount}}"), "kept");
        // A new money format replaces the old one.
        store
            .mirror_register_shop(
                SHOP,
                ShopTimeZone::UTC,
                None,
                Some("€{{amount_with_comma_separator}}"),
            )
            .await
            .unwrap();
        let sync = store.mirror_sync(SHOP).await.unwrap().unwrap();
        assert_eq!(
            sync.money_format.as_deref(),
            Some("€{{amount_with_comma_separator}}")
        );
    }
);

contract!(one_replica_claims_a_backfill, |store, url| {
    register(&store, SHOP).await;
    register(&store, OTHER).await;
    let sync = store.mirror_sync(SHOP).await.unwrap().unwrap();
    assert_eq!(sync.state, BackfillState::Pending);
    assert_eq!(sync.time_zone, ny());
    let mut awaiting = store.shops_awaiting_backfill(10).await.unwrap();
    awaiting.sort();
    assert_eq!(
        awaiting,
        [SHOP, OTHER].map(String::from).to_vec().tap_sort()
    );

    // Two processes (two pools on one database), several claims each.
    let second = Store::connect(&url, Cipher::from_secret_key(KEY), &StoreOptions::default())
        .await
        .unwrap();
    let lease = StdDuration::from_secs(60);
    let mut claims = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            second.clone()
        };
        claims.push(tokio::spawn(async move {
            s.claim_backfill(SHOP, &format!("replica-{i}"), lease)
                .await
                .unwrap()
                .map(|sync| (i, sync))
        }));
    }
    let mut winners = Vec::new();
    for c in claims {
        if let Some(w) = c.await.unwrap() {
            winners.push(w);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one replica wins");
    let (winner, sync) = winners.pop().unwrap();
    let owner = format!("replica-{winner}");
    assert_eq!(sync.state, BackfillState::Running);
    assert_eq!(sync.owner.as_deref(), Some(owner.as_str()));
    assert!(sync.started_at.is_some());
    assert!(
        store
            .claim_backfill(SHOP, "late", lease)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.shops_awaiting_backfill(10).await.unwrap(), [OTHER]);

    // Progress round-trips; only the owner records it.
    assert!(
        store
            .record_backfill_step(
                SHOP,
                &owner,
                Some("gid://shopify/BulkOperation/1"),
                "orders",
                1_200,
                3_400
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_backfill_step(SHOP, "late", None, "x", 0, 0)
            .await
            .unwrap()
    );
    assert!(store.renew_backfill(SHOP, &owner, lease).await.unwrap());
    assert!(!store.renew_backfill(SHOP, "late", lease).await.unwrap());

    // The lease runs out (the owner died): another replica resumes with
    // the stored progress, and the old owner can no longer write.
    assert!(
        store
            .renew_backfill(SHOP, &owner, StdDuration::from_millis(1))
            .await
            .unwrap()
    );
    tokio::time::sleep(StdDuration::from_millis(20)).await;
    assert_eq!(store.shops_awaiting_backfill(10).await.unwrap().len(), 2);
    let resumed = second
        .claim_backfill(SHOP, "replica-new", lease)
        .await
        .unwrap()
        .expect("an expired lease is claimable");
    assert_eq!(
        resumed.bulk_operation_id.as_deref(),
        Some("gid://shopify/BulkOperation/1")
    );
    assert_eq!(resumed.phase.as_deref(), Some("orders"));
    assert_eq!(
        (resumed.orders_mirrored, resumed.objects_mirrored),
        (1_200, 3_400)
    );
    assert_eq!(
        resumed.started_at, sync.started_at,
        "the same backfill resumes"
    );
    assert!(
        !store
            .record_backfill_step(SHOP, &owner, None, "orders", 1, 1)
            .await
            .unwrap()
    );
    assert!(!store.complete_backfill(SHOP, &owner, None).await.unwrap());

    // Failure, then a new claim, then completion.
    assert!(
        store
            .fail_backfill(SHOP, "replica-new", "Shopify said no")
            .await
            .unwrap()
    );
    let failed = store.mirror_sync(SHOP).await.unwrap().unwrap();
    assert_eq!(failed.state, BackfillState::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("Shopify said no"));
    let again = store
        .claim_backfill(SHOP, "replica-3", lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.orders_mirrored, 1_200);
    let since = at(2026, 1, 1, 0, 0);
    assert!(
        store
            .complete_backfill(SHOP, "replica-3", Some(since))
            .await
            .unwrap()
    );
    let done = store.mirror_sync(SHOP).await.unwrap().unwrap();
    assert_eq!(done.state, BackfillState::Complete);
    assert_eq!(done.covers_since, Some(since));
    assert!(done.completed_at.is_some());
    assert_eq!(done.last_error, None);
    assert!(
        store
            .claim_backfill(SHOP, "x", lease)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.shops_awaiting_backfill(10).await.unwrap(), [OTHER]);

    // Freshness keeps the newest times.
    let t1 = at(2026, 7, 1, 10, 0);
    store.record_mirror_event(SHOP, t1).await.unwrap();
    store
        .record_mirror_event(SHOP, t1 - Duration::hours(1))
        .await
        .unwrap();
    store.record_reconcile(SHOP, t1).await.unwrap();
    let fresh = store.mirror_sync(SHOP).await.unwrap().unwrap();
    assert_eq!(
        (fresh.last_event_at, fresh.last_reconcile_at),
        (Some(t1), Some(t1))
    );

    // A fresh backfill can be asked for once one completed.
    assert!(store.mirror_request_backfill(SHOP).await.unwrap());
    assert!(!store.mirror_request_backfill(SHOP).await.unwrap());
    let pending = store.mirror_sync(SHOP).await.unwrap().unwrap();
    assert_eq!(
        (pending.state, pending.orders_mirrored),
        (BackfillState::Pending, 0)
    );
    second.close().await;
});

trait TapSort {
    fn tap_sort(self) -> Self;
}

impl TapSort for Vec<String> {
    fn tap_sort(mut self) -> Self {
        self.sort();
        self
    }
}

/// Rows of `shop` in every mirror table, read directly.
async fn mirror_rows(url: &str, shop: &str) -> i64 {
    use sqlx::Connection as _;
    let tables = [
        "mirror_shops",
        "mirror_orders",
        "mirror_line_items",
        "mirror_refunds",
        "mirror_products",
        "mirror_customers",
        "mirror_daily_sales",
        "mirror_daily_products",
        "mirror_daily_statuses",
        "mirror_monthly_products",
        "mirror_customer_totals",
        "mirror_deleted_orders",
    ];
    let mut n = 0;
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        for t in tables {
            let k: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t} WHERE shop = $1"))
                .bind(shop)
                .fetch_one(&mut c)
                .await
                .unwrap();
            n += k;
        }
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        for t in tables {
            let k: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t} WHERE shop = $1"))
                .bind(shop)
                .fetch_one(&mut c)
                .await
                .unwrap();
            n += k;
        }
    }
    n
}

contract!(compliance_deletes_and_redacts, |store, url| {
    for shop in [SHOP, OTHER] {
        register(&store, shop).await;
        let mut a = order(
            1,
            at(2026, 4, 1, 12, 0),
            5_000_000,
            vec![line(1, Some(1), "Tee", 1, 5_000_000)],
        );
        a.customer_id = Some(77);
        a.email = Some("jane@example.com".into());
        a.customer_name = Some("Jane Doe".into());
        a.refunds = vec![MirrorRefund {
            id: 1,
            created_at: at(2026, 4, 2, 12, 0),
            amount: Money::from_cents(100),
            note: None,
        }];
        let mut b = order(2, at(2026, 4, 3, 12, 0), 1_000_000, vec![]);
        b.email = Some("jane@example.com".into());
        b.customer_name = Some("Jane Doe".into());
        let mut c = order(3, at(2026, 4, 4, 12, 0), 1_000_000, vec![]);
        c.email = Some("bob@example.com".into());
        store.mirror_upsert_orders(shop, &[a, b, c]).await.unwrap();
        store
            .mirror_upsert_products(shop, &[product(1, "Tee", at(2026, 1, 1, 0, 0))])
            .await
            .unwrap();
        store
            .mirror_upsert_customers(
                shop,
                &[customer(77, "jane@example.com", at(2026, 1, 1, 0, 0))],
            )
            .await
            .unwrap();
    }

    // customers/redact: the customer and their personal fields on orders.
    let changed = store.mirror_redact_customer(SHOP, 77, &[2]).await.unwrap();
    assert_eq!(changed, 2);
    assert!(
        store
            .mirror_customer_by_email(SHOP, "jane@example.com")
            .await
            .unwrap()
            .is_none()
    );
    for id in [1, 2] {
        let o = store.mirror_order(SHOP, id).await.unwrap().unwrap();
        assert_eq!((o.email, o.customer_name), (None, None));
    }
    let bob = store.mirror_order(SHOP, 3).await.unwrap().unwrap();
    assert_eq!(bob.email.as_deref(), Some("bob@example.com"), "others kept");
    // No later update brings the customer back.
    let out = store
        .mirror_upsert_customers(
            SHOP,
            &[customer(77, "jane@example.com", at(2030, 1, 1, 0, 0))],
        )
        .await
        .unwrap();
    assert_eq!(out.applied, 0);
    // The other shop is untouched.
    assert!(
        store
            .mirror_customer_by_email(OTHER, "jane@example.com")
            .await
            .unwrap()
            .is_some()
    );

    // Uninstall / shop/redact: nothing of the shop is left.
    let other_before = mirror_rows(&url, OTHER).await;
    assert!(mirror_rows(&url, SHOP).await > 0);
    assert!(store.mirror_delete_shop(SHOP).await.unwrap() > 0);
    assert_eq!(mirror_rows(&url, SHOP).await, 0);
    assert_eq!(mirror_rows(&url, OTHER).await, other_before);
    assert!(store.mirror_sync(SHOP).await.unwrap().is_none());
    assert_eq!(store.mirror_counts(SHOP).await.unwrap(), Default::default());
    assert_eq!(store.mirror_counts(OTHER).await.unwrap().orders, 3);
    // A late webhook does not bring the shop back.
    let late = store
        .mirror_upsert_products(SHOP, &[product(5, "Late", at(2030, 1, 1, 0, 0))])
        .await;
    assert!(matches!(late, Err(StoreError::NotFound(_))), "{late:?}");
    assert!(
        store
            .mirror_delete_customer(SHOP, 77, at(2030, 1, 1, 0, 0))
            .await
            .is_err()
    );
    assert_eq!(
        store.mirror_redact_customer(SHOP, 77, &[1]).await.unwrap(),
        0
    );
    assert_eq!(mirror_rows(&url, SHOP).await, 0);
});

// ----- The mirror equals a direct computation --------------------------

/// The orders as a plain list would hold them, with the same newer-wins
/// rule, and every report computed directly from it.
struct Reference {
    zone: ShopTimeZone,
    orders: BTreeMap<i64, MirrorOrder>,
    /// Deleted orders: when.
    deleted: HashMap<i64, DateTime<Utc>>,
}

impl Reference {
    fn apply(&mut self, o: &MirrorOrder) {
        if self.deleted.get(&o.id).is_some_and(|d| o.updated_at <= *d) {
            return;
        }
        if self
            .orders
            .get(&o.id)
            .is_none_or(|stored| stored.updated_at <= o.updated_at)
        {
            self.orders.insert(o.id, o.clone());
        }
    }

    /// Deletes `ids` as of `at`; returns how many were deleted.
    fn delete(&mut self, ids: &[i64], at: DateTime<Utc>) -> u64 {
        let mut n = 0;
        for id in ids {
            let d = self.deleted.entry(*id).or_insert(at);
            *d = (*d).max(at);
            if self.orders.get(id).is_some_and(|o| o.updated_at <= at) {
                self.orders.remove(id);
                n += 1;
            }
        }
        n
    }

    fn in_range(&self, from: NaiveDate, to: NaiveDate) -> Vec<&MirrorOrder> {
        self.orders
            .values()
            .filter(|o| (from..=to).contains(&self.zone.day_of(o.created_at)))
            .collect()
    }

    fn products(&self, from: NaiveDate, to: NaiveDate) -> Vec<MirrorProductSales> {
        // key -> (sales, title's (created_at, order id))
        let mut by_key: HashMap<String, (MirrorProductSales, (DateTime<Utc>, i64))> =
            HashMap::new();
        for o in self.in_range(from, to) {
            let mut seen: Vec<String> = Vec::new();
            for l in &o.line_items {
                let key = l
                    .product_id
                    .map_or_else(|| format!("title:{}", l.title), |p| p.to_string());
                let entry = by_key.entry(key.clone()).or_insert_with(|| {
                    (
                        MirrorProductSales {
                            product_id: l.product_id,
                            title: l.title.clone(),
                            units: 0,
                            orders: 0,
                            revenue: Money::ZERO,
                            refunded_units: 0,
                            refunded: Money::ZERO,
                        },
                        (o.created_at, o.id),
                    )
                });
                entry.0.units += l.quantity;
                let revenue = l.quantity * l.price.micros() - l.discount.micros();
                entry.0.revenue = Money::from_micros(entry.0.revenue.micros() + revenue);
                // What the refunded units sold for, worked out here by hand.
                let refunded = (l.quantity - l.current_quantity).clamp(0, l.quantity);
                entry.0.refunded_units += refunded;
                if refunded > 0 {
                    let share = (2 * i128::from(revenue) * i128::from(refunded)
                        + i128::from(l.quantity))
                        / (2 * i128::from(l.quantity));
                    entry.0.refunded = Money::from_micros(entry.0.refunded.micros() + share as i64);
                }
                if (o.created_at, o.id) > entry.1 {
                    entry.1 = (o.created_at, o.id);
                    entry.0.title = l.title.clone();
                }
                if !seen.contains(&key) {
                    entry.0.orders += 1;
                    seen.push(key);
                }
            }
        }
        by_key.into_values().map(|(s, _)| s).collect()
    }
}

fn gen_lines(rng: &mut StdRng, next_line: &mut i64) -> Vec<MirrorLineItem> {
    (0..rng.gen_range(0..4))
        .map(|_| {
            *next_line += 1;
            let (pid, title) = if rng.gen_bool(0.15) {
                (
                    None,
                    ["Gift wrap", "Engraving"][rng.gen_range(0..2)].to_string(),
                )
            } else {
                let p = rng.gen_range(1..12);
                // Products are sometimes renamed: the newest title counts.
                let title = if rng.gen_bool(0.2) {
                    format!("Product {p} (new)")
                } else {
                    format!("Product {p}")
                };
                (Some(p), title)
            };
            let mut l = line(
                *next_line,
                pid,
                &title,
                rng.gen_range(1..5),
                rng.gen_range(1..50_000_000),
            );
            if rng.gen_bool(0.2) {
                l.discount = Money::from_micros(rng.gen_range(0..1_000_000));
            }
            l
        })
        .collect()
}

contract!(rollups_equal_a_direct_recomputation, |store, url| {
    let zone = ny();
    store
        .mirror_register_shop(SHOP, zone, Some("USD"), None)
        .await
        .unwrap();
    let mut rng = StdRng::seed_from_u64(0x4D49_5252_4F52);
    let mut reference = Reference {
        zone,
        orders: BTreeMap::new(),
        deleted: HashMap::new(),
    };
    let mut sent: Vec<MirrorOrder> = Vec::new();
    let mut clock = at(2027, 1, 1, 0, 0);
    let (mut next_line, mut next_refund, mut next_id) = (0i64, 0i64, 1000i64);
    let year_start = at(2026, 1, 1, 0, 0);
    let fin = [
        Some("PAID"),
        Some("PENDING"),
        Some("PARTIALLY_REFUNDED"),
        Some("REFUNDED"),
        None,
    ];
    let ful = [Some("FULFILLED"), Some("UNFULFILLED"), None];

    for _round in 0..60 {
        let mut batch = Vec::new();
        for _ in 0..rng.gen_range(1..25) {
            clock += Duration::seconds(rng.gen_range(1..100));
            let existing = (!reference.orders.is_empty() && rng.gen_bool(0.45)).then(|| {
                let ids: Vec<i64> = reference.orders.keys().copied().collect();
                reference.orders[&ids[rng.gen_range(0..ids.len())]].clone()
            });
            let o = match existing {
                None => {
                    next_id += 1;
                    let id = next_id;
                    let created = year_start + Duration::minutes(rng.gen_range(0..366 * 24 * 60));
                    let mut o = order(id, created, 0, gen_lines(&mut rng, &mut next_line));
                    o.total = Money::from_micros(rng.gen_range(0..500_000_000));
                    o.customer_id = rng.gen_bool(0.8).then(|| rng.gen_range(1..40));
                    o.financial_status = fin[rng.gen_range(0..fin.len())].map(String::from);
                    o.fulfillment_status = ful[rng.gen_range(0..ful.len())].map(String::from);
                    o.updated_at = clock;
                    o
                }
                Some(mut o) => {
                    o.updated_at = clock;
                    match rng.gen_range(0..6) {
                        0 => o.line_items = gen_lines(&mut rng, &mut next_line),
                        1 => {
                            o.cancelled_at = Some(clock);
                            o.closed_at = Some(clock);
                        }
                        2 => {
                            next_refund += 1;
                            let amount = Money::from_micros(rng.gen_range(1..20_000_000));
                            o.refunds.push(MirrorRefund {
                                id: next_refund,
                                created_at: o.created_at + Duration::hours(rng.gen_range(1..400)),
                                amount,
                                note: rng.gen_bool(0.5).then(|| "size".to_string()),
                            });
                            o.total_refunded = o.total_refunded + amount;
                            // Sometimes with units of a line.
                            if let Some(l) = o.line_items.first_mut() {
                                l.current_quantity = rng.gen_range(0..=l.current_quantity);
                            }
                        }
                        3 => {
                            o.financial_status = fin[rng.gen_range(0..fin.len())].map(String::from);
                            o.fulfillment_status =
                                ful[rng.gen_range(0..ful.len())].map(String::from);
                            o.total = Money::from_micros(rng.gen_range(0..500_000_000));
                            o.closed_at = rng.gen_bool(0.5).then_some(clock);
                        }
                        4 => {
                            // Moves to another day (old and new days change).
                            o.created_at += Duration::hours(rng.gen_range(-72..72));
                        }
                        _ => o.customer_id = rng.gen_bool(0.8).then(|| rng.gen_range(1..40)),
                    }
                    o
                }
            };
            batch.push(o);
        }
        // Duplicates and stale replays, delivered out of order.
        if !sent.is_empty() {
            for _ in 0..rng.gen_range(0..4) {
                batch.push(sent[rng.gen_range(0..sent.len())].clone());
            }
        }
        if rng.gen_bool(0.3) {
            batch.reverse();
        }
        for o in &batch {
            reference.apply(o);
        }
        sent.extend(batch.iter().cloned());
        store.mirror_upsert_orders(SHOP, &batch).await.unwrap();
        // Deletions (an id never seen among them), some dated before the
        // stored version (which stays); later replays of a deleted order
        // are stale.
        if rng.gen_bool(0.2) && !reference.orders.is_empty() {
            let ids: Vec<i64> = reference.orders.keys().copied().collect();
            let mut doomed: Vec<i64> = (0..rng.gen_range(1..4))
                .map(|_| ids[rng.gen_range(0..ids.len())])
                .collect();
            doomed.push(next_id + 1_000_000);
            let at = clock - Duration::seconds(rng.gen_range(0..300));
            let want = reference.delete(&doomed, at);
            let got = store.mirror_delete_orders(SHOP, &doomed, at).await.unwrap();
            assert_eq!(got, want);
        }
    }
    assert!(reference.orders.len() > 300, "{}", reference.orders.len());
    assert!(reference.deleted.len() > 10, "{}", reference.deleted.len());

    // Many ranges, short and long.
    let first = day(2025, 12, 20);
    for i in 0..40 {
        let from = first + Days::new(rng.gen_range(0..390));
        let len = match i % 4 {
            0 => 0,
            1 => rng.gen_range(1..30),
            2 => rng.gen_range(30..120),
            _ => rng.gen_range(120..400),
        };
        let to = from + Days::new(len);
        let orders = reference.in_range(from, to);

        let sales = store.mirror_sales(SHOP, from, to).await.unwrap();
        assert_eq!(sales.orders, orders.len() as u64, "{from}..{to}");
        assert_eq!(
            sales.cancelled_orders,
            orders.iter().filter(|o| o.cancelled_at.is_some()).count() as u64
        );
        assert_eq!(sales.revenue, orders.iter().map(|o| o.total).sum::<Money>());
        assert_eq!(
            sales.refunded,
            orders.iter().map(|o| o.total_refunded).sum::<Money>()
        );
        let mut per_day: BTreeMap<NaiveDate, (u64, Money)> = BTreeMap::new();
        if (to - from).num_days() < 93 {
            for d in from.iter_days().take_while(|d| *d <= to) {
                per_day.insert(d, (0, Money::ZERO));
            }
        }
        for o in &orders {
            let e = per_day.entry(zone.day_of(o.created_at)).or_default();
            e.0 += 1;
            e.1 = e.1 + o.total;
        }
        let got: BTreeMap<NaiveDate, (u64, Money)> = sales
            .per_day
            .iter()
            .map(|d| (d.date, (d.orders, d.revenue)))
            .collect();
        assert_eq!(got, per_day, "{from}..{to}");

        let mut expected = reference.products(from, to);
        expected.sort_by(|a, b| {
            b.units
                .cmp(&a.units)
                .then(b.orders.cmp(&a.orders))
                .then_with(|| a.title.cmp(&b.title))
                .then(a.product_id.cmp(&b.product_id))
        });
        for limit in [3, 100] {
            let top = store
                .mirror_top_products(SHOP, from, to, limit)
                .await
                .unwrap();
            assert_eq!(top.orders_considered, orders.len() as u64);
            let want: Vec<_> = expected.iter().take(limit).cloned().collect();
            assert_eq!(top.products, want, "{from}..{to} limit {limit}");
        }

        let series = store
            .mirror_series(SHOP, from, to, SeriesBucket::Week)
            .await
            .unwrap();
        assert_eq!(
            series.iter().map(|p| p.orders).sum::<u64>(),
            orders.len() as u64
        );
        assert_eq!(
            series.iter().map(|p| p.revenue).sum::<Money>(),
            sales.revenue
        );
        assert!(
            series
                .iter()
                .skip(1)
                .all(|p| p.start.weekday() == chrono::Weekday::Mon)
        );

        let statuses = store.mirror_orders_by_status(SHOP, from, to).await.unwrap();
        assert_eq!(statuses.orders, orders.len() as u64);
        for s in &statuses.financial {
            let n = orders
                .iter()
                .filter(|o| o.financial_status == s.status)
                .count();
            assert_eq!(s.orders, n as u64);
        }
        for s in &statuses.fulfillment {
            let n = orders
                .iter()
                .filter(|o| o.fulfillment_status == s.status)
                .count();
            assert_eq!(s.orders, n as u64);
        }

        let repeat = store.mirror_repeat_customers(SHOP, from, to).await.unwrap();
        let mut per_customer: HashMap<i64, (u64, NaiveDate)> = HashMap::new();
        for o in reference.orders.values() {
            let d = zone.day_of(o.created_at);
            if let (Some(c), true) = (o.customer_id, d <= to) {
                let e = per_customer.entry(c).or_insert((0, d));
                e.1 = e.1.min(d);
                if d >= from {
                    e.0 += 1;
                }
            }
        }
        let active: Vec<_> = per_customer.values().filter(|(n, _)| *n > 0).collect();
        assert_eq!(repeat.customers, active.len() as u64);
        assert_eq!(
            repeat.repeat_customers,
            active.iter().filter(|(n, _)| *n >= 2).count() as u64
        );
        assert_eq!(
            repeat.returning_customers,
            active.iter().filter(|(_, first)| *first < from).count() as u64
        );
        assert_eq!(
            repeat.orders_without_customer,
            orders.iter().filter(|o| o.customer_id.is_none()).count() as u64
        );

        let top_customers = store.mirror_top_customers(SHOP, from, to, 5).await.unwrap();
        let mut spend: BTreeMap<i64, (u64, i64)> = BTreeMap::new();
        for o in &orders {
            if let Some(c) = o.customer_id {
                let e = spend.entry(c).or_default();
                e.0 += 1;
                e.1 += o.total.micros();
            }
        }
        let mut spend: Vec<_> = spend.into_iter().collect();
        spend.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(&b.0)));
        let got: Vec<_> = top_customers
            .iter()
            .map(|c| (c.customer_id, (c.orders, c.revenue.micros())))
            .collect();
        assert_eq!(got, spend.into_iter().take(5).collect::<Vec<_>>());

        let refunds = store.mirror_refunds(SHOP, from, to, 5).await.unwrap();
        let mut all: Vec<(&MirrorOrder, &MirrorRefund)> = reference
            .orders
            .values()
            .flat_map(|o| o.refunds.iter().map(move |r| (o, r)))
            .filter(|(_, r)| (from..=to).contains(&zone.day_of(r.created_at)))
            .collect();
        assert_eq!(refunds.count, all.len() as u64);
        assert_eq!(
            refunds.amount,
            all.iter().map(|(_, r)| r.amount).sum::<Money>()
        );
        all.sort_by(|a, b| {
            b.1.created_at
                .cmp(&a.1.created_at)
                .then(b.1.id.cmp(&a.1.id))
        });
        let got: Vec<_> = refunds
            .refunds
            .iter()
            .map(|r| (r.order_id, r.refund.id))
            .collect();
        let want: Vec<_> = all.iter().take(5).map(|(o, r)| (o.id, r.id)).collect();
        assert_eq!(got, want);
    }

    // Whole-shop figures and the newest orders.
    let counts = store.mirror_counts(SHOP).await.unwrap();
    assert_eq!(counts.orders, reference.orders.len() as u64);
    let open = reference
        .orders
        .values()
        .filter(|o| o.cancelled_at.is_none() && o.closed_at.is_none())
        .count();
    assert_eq!(counts.open_orders, open as u64);
    let mut newest: Vec<&MirrorOrder> = reference.orders.values().collect();
    newest.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let want: Vec<MirrorOrder> = newest.into_iter().take(25).cloned().collect();
    assert_eq!(store.mirror_recent_orders(SHOP, 25).await.unwrap(), want);
});

// Ranges of more than 20,000 orders take the customer reports' long paths
// (the biggest spenders overall as candidates; the rollup less the orders
// outside the range): they must give what the orders give.
contract!(
    customer_reports_over_long_ranges_equal_the_orders,
    |store, url| {
        register(&store, SHOP).await;
        let mut rng = StdRng::seed_from_u64(11);
        let start = at(2026, 1, 1, 12, 0);
        // 100 orders a day for 240 days, on the shop's own day of `start`.
        let orders: Vec<MirrorOrder> = (0..24_000_i64)
            .map(|i| {
                let created = start + Duration::days(i / 100) + Duration::seconds(i % 100 * 60);
                let mut o = order(i + 1, created, rng.gen_range(0..200_000_000), Vec::new());
                o.customer_id = rng.gen_bool(0.9).then(|| rng.gen_range(1..3_000));
                o
            })
            .collect();
        for batch in orders.chunks(1_000) {
            store.mirror_upsert_orders(SHOP, batch).await.unwrap();
        }
        let zone = ny();
        for (from, to) in [
            (day(2026, 1, 11), day(2026, 8, 18)),
            (day(2026, 1, 2), day(2026, 8, 27)),
            (day(2025, 12, 1), day(2026, 7, 1)),
            (day(2026, 2, 1), day(2026, 12, 31)),
            (day(2025, 1, 1), day(2026, 12, 31)),
            (day(2026, 3, 1), day(2026, 3, 10)),
        ] {
            // customer → (orders in range, revenue in range, first day)
            let mut per: BTreeMap<i64, (u64, i64, NaiveDate)> = BTreeMap::new();
            for o in &orders {
                let (Some(c), d) = (o.customer_id, zone.day_of(o.created_at)) else {
                    continue;
                };
                let e = per.entry(c).or_insert((0, 0, d));
                e.2 = e.2.min(d);
                if (from..=to).contains(&d) {
                    e.0 += 1;
                    e.1 += o.total.micros();
                }
            }
            let active: Vec<_> = per.iter().filter(|(_, v)| v.0 > 0).collect();
            let repeat = store.mirror_repeat_customers(SHOP, from, to).await.unwrap();
            assert_eq!(repeat.customers, active.len() as u64, "{from}..{to}");
            assert_eq!(
                repeat.repeat_customers,
                active.iter().filter(|(_, v)| v.0 >= 2).count() as u64,
                "{from}..{to}"
            );
            assert_eq!(
                repeat.returning_customers,
                active.iter().filter(|(_, v)| v.2 < from).count() as u64,
                "{from}..{to}"
            );
            let mut spend: Vec<(i64, (u64, i64))> =
                active.iter().map(|(c, v)| (**c, (v.0, v.1))).collect();
            spend.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(&b.0)));
            for limit in [5, 50] {
                let got: Vec<_> = store
                    .mirror_top_customers(SHOP, from, to, limit)
                    .await
                    .unwrap()
                    .iter()
                    .map(|c| (c.customer_id, (c.orders, c.revenue.micros())))
                    .collect();
                let want: Vec<_> = spend.iter().take(limit as usize).copied().collect();
                assert_eq!(got, want, "{from}..{to} limit {limit}");
            }
        }
    }
);

// ----- Measurement -------------------------------------------------------

/// Upserts 100,000 synthetic orders (about 2.5 lines each) in batches of
/// 500 into a SQLite file, then times the reports over 365 days. Prints
/// the figures; asserts nothing about time. Run with
/// `cargo test -p hirecj-store --release --test mirror -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn measure_large_shop_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("mirror.db").display());
    let store = Store::open(&url, Cipher::from_secret_key(KEY), &StoreOptions::default())
        .await
        .unwrap();
    measure(&store).await;
    store.close().await;
}

/// As above on PostgreSQL (`TEST_DATABASE_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn measure_large_shop_on_postgres() {
    // `MIRROR_MEASURE_URL` measures in a database kept afterwards (to
    // inspect query plans); else a scratch database from `TEST_DATABASE_URL`.
    if let Ok(url) = std::env::var("MIRROR_MEASURE_URL") {
        let store = Store::open(&url, Cipher::from_secret_key(KEY), &StoreOptions::default())
            .await
            .unwrap();
        measure(&store).await;
        store.close().await;
        return;
    }
    with_postgres(|store, _| async move { measure(&store).await }).await;
}

async fn measure(store: &Store) {
    use std::time::Instant;
    let zone = ny();
    store
        .mirror_register_shop(SHOP, zone, Some("USD"), None)
        .await
        .unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let start = at(2026, 1, 1, 5, 0);
    let n: i64 = std::env::var("MIRROR_MEASURE_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let mut next_line = 0;
    let began = Instant::now();
    let mut lines = 0;
    for batch_start in (0..n).step_by(500) {
        let batch: Vec<MirrorOrder> = (batch_start..(batch_start + 500).min(n))
            .map(|i| {
                // Spread evenly over 365 days, in creation order like a
                // bulk operation's output.
                let created = start + Duration::seconds(i * 365 * 86_400 / n);
                let k = rng.gen_range(1..5);
                let items: Vec<MirrorLineItem> = (0..k)
                    .map(|_| {
                        next_line += 1;
                        let p = rng.gen_range(1..200);
                        line(
                            next_line,
                            Some(p),
                            &format!("Product {p}"),
                            rng.gen_range(1..4),
                            19_990_000,
                        )
                    })
                    .collect();
                lines += items.len();
                let mut o = order(i + 1, created, 50_000_000, items);
                o.customer_id = Some(rng.gen_range(1..30_000));
                o
            })
            .collect();
        store.mirror_upsert_orders(SHOP, &batch).await.unwrap();
        // As the backfill does: fresh statistics as the tables double.
        let written = batch_start + batch.len() as i64;
        if written >= 4_096 && ((written / 500) as u64).is_power_of_two() {
            store.mirror_refresh_statistics().await.unwrap();
        }
    }
    let upsert = began.elapsed();
    println!(
        "{:?}: upserted {n} orders ({lines} line items) in batches of 500 in {upsert:.2?} ({:.0} orders/s)",
        store.backend(),
        n as f64 / upsert.as_secs_f64()
    );
    let (from, to) = (day(2026, 1, 1), day(2026, 12, 31));
    macro_rules! time {
        ($label:expr, $call:expr) => {{
            let mut times = Vec::new();
            for _ in 0..20 {
                let t = Instant::now();
                let _ = $call.await.unwrap();
                times.push(t.elapsed());
            }
            times.sort();
            println!(
                "  {:<28} 365 days: median {:>9.2?}  max {:>9.2?}",
                $label,
                times[times.len() / 2],
                times[times.len() - 1]
            );
        }};
    }
    time!("mirror_sales", store.mirror_sales(SHOP, from, to));
    time!(
        "mirror_top_products",
        store.mirror_top_products(SHOP, from, to, 10)
    );
    // The worst case for products: a long range with ragged ends (30 days
    // read per day, the rest per month).
    time!(
        "mirror_top_products ragged",
        store.mirror_top_products(SHOP, day(2026, 1, 17), day(2026, 12, 14), 10)
    );
    time!("mirror_counts", store.mirror_counts(SHOP));
    time!(
        "mirror_recent_orders(10)",
        store.mirror_recent_orders(SHOP, 10)
    );
    time!(
        "mirror_series(week)",
        store.mirror_series(SHOP, from, to, SeriesBucket::Week)
    );
    time!(
        "mirror_orders_by_status",
        store.mirror_orders_by_status(SHOP, from, to)
    );
    time!(
        "mirror_repeat_customers",
        store.mirror_repeat_customers(SHOP, from, to)
    );
    time!(
        "mirror_top_customers",
        store.mirror_top_customers(SHOP, from, to, 10)
    );
    // Inside the history: the customer reports' long paths.
    time!(
        "mirror_repeat_customers ragged",
        store.mirror_repeat_customers(SHOP, day(2026, 1, 17), day(2026, 12, 14))
    );
    time!(
        "mirror_top_customers ragged",
        store.mirror_top_customers(SHOP, day(2026, 1, 17), day(2026, 12, 14), 10)
    );
    time!("mirror_refunds", store.mirror_refunds(SHOP, from, to, 10));
    time!(
        "mirror_product_performance",
        store.mirror_product_performance(SHOP, from, to, 10)
    );
    // One webhook-sized write on a full shop.
    let t = Instant::now();
    let mut o = order(
        n + 1,
        at(2026, 6, 1, 12, 0),
        1_000_000,
        vec![line(1, Some(1), "Product 1", 1, 1_000_000)],
    );
    o.updated_at = at(2027, 1, 1, 0, 0);
    store.mirror_upsert_orders(SHOP, &[o]).await.unwrap();
    println!("  one order upsert (webhook): {:.2?}", t.elapsed());
}
