#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The data fetcher against a fake Shopify serving known orders: exact
//! aggregates, pagination, the visibility window, the cache.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use common::{FakeShopify, Recorded, Reply, cost, shop};
use hirecj_shopify::{
    AdminClient, Cache, CacheKey, MemoryCache, Secret, ShopifyDataFetcher, clear_shop, queries,
};
use serde_json::{Value, json};

/// Amounts cycle through these cents: 0.10 + 0.20 style values that f64
/// would get wrong.
const PATTERN: [i64; 6] = [1999, 10, 20, 4550, 12345, 1];

#[derive(Clone)]
struct Order {
    n: usize,
    created_at: DateTime<Utc>,
    cents: i64,
    refunded_cents: i64,
    items: Vec<(&'static str, Option<&'static str>, i64)>,
    email: Option<&'static str>,
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// 45 orders over the last week (one every 3.5 h from now back to
/// 2026-11-20 02:00), two just before it, and two 86 days ago.
fn orders() -> Vec<Order> {
    let mut out = Vec::new();
    for k in 0..45usize {
        let items = match k % 3 {
            0 => vec![("Mug", Some("gid://shopify/Product/1"), 2)],
            1 => vec![
                ("Tee", Some("gid://shopify/Product/2"), 1),
                ("Mug", Some("gid://shopify/Product/1"), 1),
            ],
            _ => vec![("Gift wrap", None, 1)],
        };
        let cents = PATTERN[k % 6];
        out.push(Order {
            n: k,
            created_at: now() - Duration::minutes(210 * k as i64),
            cents,
            refunded_cents: if k % 10 == 0 { cents / 2 } else { 0 },
            items,
            email: if k % 4 == 0 {
                Some("ann@example.com")
            } else {
                Some("bob@example.com")
            },
        });
    }
    for (n, at) in [
        (100, Utc.with_ymd_and_hms(2026, 11, 19, 20, 0, 0).unwrap()),
        (101, Utc.with_ymd_and_hms(2026, 11, 18, 10, 0, 0).unwrap()),
        (102, Utc.with_ymd_and_hms(2026, 9, 1, 10, 0, 0).unwrap()),
        (103, Utc.with_ymd_and_hms(2026, 9, 1, 11, 0, 0).unwrap()),
    ] {
        out.push(Order {
            n,
            created_at: at,
            cents: 100_000,
            refunded_cents: 0,
            items: vec![("Old thing", Some("gid://shopify/Product/9"), 1)],
            email: None,
        });
    }
    out.sort_by_key(|o| std::cmp::Reverse(o.created_at));
    out
}

fn order_json(o: &Order) -> Value {
    json!({
        "id": format!("gid://shopify/Order/{}", 450_789_469 + o.n),
        "name": format!("#{}", 1001 + o.n),
        "createdAt": o.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "displayFinancialStatus": if o.refunded_cents > 0 { "PARTIALLY_REFUNDED" } else { "PAID" },
        "displayFulfillmentStatus": if o.n.is_multiple_of(2) { "FULFILLED" } else { "UNFULFILLED" },
        "totalPriceSet": {"shopMoney": {"amount": money(o.cents), "currencyCode": "USD"}},
        "totalRefundedSet": {"shopMoney": {"amount": money(o.refunded_cents), "currencyCode": "USD"}},
        "customer": o.email.map(|e| json!({"id": format!("gid://shopify/Customer/{}", e.len()), "email": e, "displayName": e.split('@').next()})),
        "lineItems": {"nodes": o.items.iter().map(|(t, p, q)| json!({
            "title": t, "quantity": q, "product": p.map(|id| json!({"id": id}))
        })).collect::<Vec<_>>()}
    })
}

fn date_term(query: &str, prefix: &str) -> Option<DateTime<Utc>> {
    query.split_whitespace().find_map(|t| {
        let d = t.strip_prefix(prefix)?;
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        Some(date.and_hms_opt(0, 0, 0).unwrap().and_utc())
    })
}

fn email_term(query: &str) -> String {
    query
        .trim_start_matches("email:")
        .trim_matches('"')
        .to_owned()
}

fn respond(req: &Recorded) -> Reply {
    respond_in(req, "Europe/London", 0)
}

/// Answers as a shop in time zone `iana`, `offset` minutes from UTC.
fn respond_in(req: &Recorded, iana: &str, offset: i32) -> Reply {
    let vars = req.variables();
    let ext = cost(10.0, 990.0, 100.0);
    let all = orders();
    let data = match req.query() {
        q if q == queries::ORDERS_PAGE => {
            let search = vars["query"].as_str().unwrap_or("");
            let lower = date_term(search, "created_at:>=");
            let upper = date_term(search, "created_at:<");
            let matching: Vec<&Order> = all
                .iter()
                .filter(|o| lower.is_none_or(|l| o.created_at >= l))
                .filter(|o| upper.is_none_or(|u| o.created_at < u))
                .collect();
            let first = vars["first"].as_u64().unwrap() as usize;
            assert!(first <= 250);
            let start = vars["after"]
                .as_str()
                .map(|c| c.trim_start_matches("cursor-").parse::<usize>().unwrap() + 1)
                .unwrap_or(0);
            let page: Vec<&Order> = matching.iter().skip(start).take(first).copied().collect();
            let end = start + page.len();
            json!({"orders": {
                "pageInfo": {"hasNextPage": end < matching.len(),
                             "endCursor": if page.is_empty() { Value::Null } else { json!(format!("cursor-{}", end - 1)) }},
                "nodes": page.iter().map(|o| order_json(o)).collect::<Vec<_>>()
            }})
        }
        q if q == queries::SHOP_TIMEZONE => {
            json!({"shop": {"ianaTimezone": iana, "timezoneOffsetMinutes": offset}})
        }
        q if q == queries::STORE_COUNTS => json!({
            "productsCount": {"count": 42, "precision": "EXACT"},
            "ordersCount": {"count": 12000, "precision": "EXACT"},
            "openOrders": {"count": 17, "precision": "EXACT"},
            "customersCount": {"count": 10000, "precision": "AT_LEAST"}
        }),
        q if q == queries::SHOP => json!({"shop": {
            "name": "Test Shop", "email": "owner@example.com", "myshopifyDomain": "test-shop.myshopify.com",
            "currencyCode": "EUR", "currencyFormats": {"moneyFormat": "<span class=money>&euro;{{amount_with_comma_separator}}</span>"},
            "ianaTimezone": iana, "timezoneOffsetMinutes": offset,
            "plan": {"publicDisplayName": "Basic", "partnerDevelopment": false, "shopifyPlus": false}}}),
        q if q == queries::STORE_OVERVIEW => {
            let first = vars["first"].as_u64().unwrap() as usize;
            json!({
                "shop": {"name": "Test Shop", "email": "owner@example.com", "myshopifyDomain": "test-shop.myshopify.com",
                         "currencyCode": "USD", "ianaTimezone": "America/New_York",
                         "plan": {"publicDisplayName": "Development", "partnerDevelopment": true, "shopifyPlus": false}},
                "orders": {"nodes": all.iter().take(first).map(order_json).collect::<Vec<_>>()}
            })
        }
        q if q == queries::CUSTOMER_BY_EMAIL => {
            let email = email_term(vars["customerQuery"].as_str().unwrap());
            assert_eq!(email_term(vars["orderQuery"].as_str().unwrap()), email);
            let n = vars["orders"].as_u64().unwrap() as usize;
            let known = ["ann@example.com", "bob@example.com"].contains(&email.as_str());
            // Customers come back as edges, orders as nodes: both forms are read.
            json!({
                "customers": {"edges": if known {
                    vec![json!({"cursor": "c1", "node": {"id": "gid://shopify/Customer/7", "email": email, "displayName": "Ann"}})]
                } else { vec![] }},
                "orders": {"nodes": all.iter().filter(|o| o.email == Some(email.as_str())).take(n).map(order_json).collect::<Vec<_>>()}
            })
        }
        other => panic!("unexpected query {other}"),
    };
    Reply::json(200, &json!({"data": data, "extensions": ext}))
}

async fn setup() -> (FakeShopify, ShopifyDataFetcher, Arc<MemoryCache>) {
    let fake = FakeShopify::start(|req, _| respond(req)).await;
    let cache = Arc::new(MemoryCache::new());
    let client = AdminClient::new(reqwest::Client::new(), &fake.config());
    let fetcher = ShopifyDataFetcher::new(client, shop(), Secret::new("shpat_t"), cache.clone())
        .with_granted_scopes(["read_products", "read_orders", "read_customers"])
        .with_now(now());
    (fake, fetcher, cache)
}

fn count_query(fake: &FakeShopify, query: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.query() == query)
        .count()
}

#[tokio::test]
async fn orders_last_week_aggregates_exactly_across_pages() {
    let (fake, fetcher, _) = setup().await;
    let week = fetcher.orders_last_week().await.unwrap();
    assert_eq!(week.from, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
    assert_eq!(week.to, NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
    assert_eq!(week.orders, 45);
    // 7 × 189.25 + 19.99 + 0.10 + 0.20, summed in cents.
    assert_eq!(week.revenue.to_string(), "1345.04");
    let expected_refunds: i64 = (0..45)
        .filter(|k| k % 10 == 0)
        .map(|k| PATTERN[k % 6] / 2)
        .sum();
    assert_eq!(week.refunded.to_cents(), i128::from(expected_refunds));
    assert_eq!(
        week.net_revenue.to_cents(),
        i128::from(134_504 - expected_refunds)
    );
    // 1345.04 / 45 = 29.8897… → 29.89.
    assert_eq!(week.average_order_value.to_string(), "29.89");
    assert_eq!(week.currency.as_deref(), Some("USD"));
    assert_eq!(week.timezone, "Europe/London (UTC+00:00)");
    assert_eq!(week.cancelled_orders, 0);
    assert!(!week.truncated);
    assert!(!week.beyond_visibility_window);
    assert_eq!(week.note, None);

    // Per day: all 7 days, matching the data grouped here.
    assert_eq!(week.per_day.len(), 7);
    for day in &week.per_day {
        let of_day: Vec<Order> = orders()
            .into_iter()
            .filter(|o| o.created_at.date_naive() == day.date && o.n < 45)
            .collect();
        assert_eq!(day.orders, of_day.len() as u64, "{}", day.date);
        assert_eq!(
            day.revenue.to_cents(),
            i128::from(of_day.iter().map(|o| o.cents).sum::<i64>()),
            "{}",
            day.date
        );
    }
    let per_day_total: u64 = week.per_day.iter().map(|d| d.orders).sum();
    assert_eq!(per_day_total, 45);

    // Top products: Mug 2 × 15 + 1 × 15 = 45 units in 30 orders; Tee 15; Gift wrap 15 (no product id).
    let top: Vec<(&str, i64, u64)> = week
        .top_products
        .iter()
        .map(|p| (p.title.as_str(), p.units, p.orders))
        .collect();
    assert_eq!(
        top,
        vec![("Mug", 45, 30), ("Gift wrap", 15, 15), ("Tee", 15, 15)]
    );
    assert_eq!(
        week.top_products[0].product_id.as_deref(),
        Some("gid://shopify/Product/1")
    );
    assert_eq!(week.top_products[1].product_id, None);

    // Two pages (30 + 16 orders, one of them from before the window).
    let pages: Vec<Recorded> = fake
        .requests()
        .into_iter()
        .filter(|r| r.query() == queries::ORDERS_PAGE)
        .collect();
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].variables()["after"], Value::Null);
    assert_eq!(pages[1].variables()["after"], "cursor-29");
    assert_eq!(
        pages[0].variables()["query"],
        "created_at:>=2026-11-19 created_at:<2026-11-28"
    );
    assert_eq!(pages[0].header("x-shopify-access-token"), Some("shpat_t"));

    // Amounts serialize as strings.
    let json = serde_json::to_value(&week).unwrap();
    assert_eq!(json["revenue"], "1345.04");
    assert_eq!(json["average_order_value"], "29.89");
    assert_eq!(json["per_day"][0]["date"], "2026-11-20");
}

#[tokio::test]
async fn the_cache_avoids_a_second_request() {
    let (fake, fetcher, cache) = setup().await;
    let first = fetcher.orders_last_week().await.unwrap();
    let requests = fake.count();
    let second = fetcher.orders_last_week().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(fake.count(), requests, "served from the cache");

    fetcher.store_counts().await.unwrap();
    fetcher.store_counts().await.unwrap();
    assert_eq!(count_query(&fake, queries::STORE_COUNTS), 1);

    // Keys are scoped by shop; clearing the shop (uninstall) empties it.
    assert!(!cache.is_empty());
    let removed = clear_shop(cache.as_ref(), &shop()).await.unwrap();
    assert!(removed >= 2);
    assert!(
        cache
            .get(&CacheKey::new(&shop(), "v1:store_counts"))
            .await
            .is_none()
    );
    fetcher.store_counts().await.unwrap();
    assert_eq!(
        count_query(&fake, queries::STORE_COUNTS),
        2,
        "fetched again after clearing"
    );
    assert!(fetcher.clear_cache().await.unwrap() >= 1);
}

#[tokio::test]
async fn store_counts() {
    let (_fake, fetcher, _) = setup().await;
    let counts = fetcher.store_counts().await.unwrap();
    assert_eq!(counts.products.count, 42);
    assert_eq!(counts.orders.count, 12000);
    assert_eq!(counts.open_orders.count, 17);
    assert_eq!(counts.customers.count, 10000);
    assert_eq!(counts.customers.precision, "AT_LEAST");
    let json = serde_json::to_value(&counts).unwrap();
    assert_eq!(
        json["open_orders"],
        json!({"count": 17, "precision": "EXACT"})
    );
}

#[tokio::test]
async fn store_overview() {
    let (fake, fetcher, _) = setup().await;
    let overview = fetcher.store_overview().await.unwrap();
    assert_eq!(overview.shop.name, "Test Shop");
    assert_eq!(overview.shop.currency, "USD");
    assert_eq!(overview.shop.timezone.as_deref(), Some("America/New_York"));
    assert_eq!(overview.shop.plan.as_deref(), Some("Development"));
    assert!(overview.shop.development_store);
    assert_eq!(overview.recent_orders.len(), 10);
    let newest = &overview.recent_orders[0];
    assert_eq!(newest.name, "#1001");
    assert_eq!(newest.id, "gid://shopify/Order/450789469");
    assert_eq!(newest.total.to_string(), "19.99");
    assert_eq!(newest.refunded.to_string(), "9.99");
    assert_eq!(
        newest.financial_status.as_deref(),
        Some("PARTIALLY_REFUNDED")
    );
    assert_eq!(newest.fulfillment_status.as_deref(), Some("FULFILLED"));
    assert_eq!(
        newest.customer.as_ref().unwrap().email.as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(overview.top_products_basis, "the last 30 orders");
    assert_eq!(overview.top_products[0].title, "Mug");
    assert_eq!(overview.top_products[0].units, 30);
    assert_eq!(fake.count(), 1, "one request");
    assert_eq!(fake.requests()[0].variables()["first"], 30);
}

#[tokio::test]
async fn shop_info() {
    let (fake, fetcher, _) = setup().await;
    let info = fetcher.shop_info().await.unwrap();
    assert_eq!(info.name, "Test Shop");
    assert_eq!(info.currency, "EUR");
    // The merchant's format as Shopify sends it (HTML), read as text.
    let format = hirecj_shopify::MoneyFormat::parse(info.money_format.as_deref().unwrap()).unwrap();
    assert_eq!(format.format("6412.8".parse().unwrap()), "€6.412,80");
    assert_eq!(info.domain, "test-shop.myshopify.com");
    assert_eq!(info.utc_offset_minutes, Some(0));
    assert_eq!(info.plan.as_deref(), Some("Basic"));
    assert!(!info.development_store && !info.shopify_plus);
    fetcher.shop_info().await.unwrap();
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn recent_orders_paginate_to_the_limit() {
    let (fake, fetcher, _) = setup().await;
    let five = fetcher.recent_orders(5).await.unwrap();
    assert_eq!(five.len(), 5);
    assert_eq!(five[0].name, "#1001");
    let many = fetcher.recent_orders(40).await.unwrap();
    assert_eq!(many.len(), 40);
    assert!(many.windows(2).all(|w| w[0].created_at >= w[1].created_at));
    let firsts: Vec<u64> = fake
        .requests()
        .iter()
        .map(|r| r.variables()["first"].as_u64().unwrap())
        .collect();
    assert_eq!(firsts, vec![5, 30, 10]);
    let all = fetcher.recent_orders(1000).await.unwrap();
    assert_eq!(all.len(), 49, "limit capped at 100, store has 49");
}

#[tokio::test]
async fn sales_summary_flags_the_visibility_window() {
    let (_fake, fetcher, _) = setup().await;
    let from = NaiveDate::from_ymd_opt(2026, 8, 25).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 9, 5).unwrap();
    let old = fetcher.sales_summary(from, to).await.unwrap();
    assert!(old.beyond_visibility_window);
    let note = old.note.as_deref().unwrap();
    assert!(
        note.contains("read_all_orders") && note.contains("60 days"),
        "{note}"
    );
    assert_eq!(old.orders, 2);
    assert_eq!(old.revenue.to_string(), "2000.00");
    assert_eq!(old.per_day.len(), 12);
    let json = serde_json::to_value(&old).unwrap();
    assert_eq!(json["beyond_visibility_window"], true);

    // With read_all_orders granted, no flag.
    let fake = FakeShopify::start(|req, _| respond(req)).await;
    let with_scope = ShopifyDataFetcher::new(
        AdminClient::new(reqwest::Client::new(), &fake.config()),
        shop(),
        Secret::new("t"),
        Arc::new(MemoryCache::new()),
    )
    .with_granted_scopes(["read_orders", "read_all_orders"])
    .with_now(now());
    let old = with_scope.sales_summary(from, to).await.unwrap();
    assert!(!old.beyond_visibility_window);
    assert_eq!(old.note, None);

    // Within 60 days: no flag either way.
    let recent = fetcher
        .sales_summary(
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        )
        .await
        .unwrap();
    assert!(!recent.beyond_visibility_window);
    assert_eq!(recent.orders, 47);

    // An empty range is fine; a reversed one is an input error.
    let empty = fetcher
        .sales_summary(
            NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 2).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(empty.orders, 0);
    assert_eq!(empty.average_order_value.to_string(), "0.00");
    assert_eq!(empty.currency, None);
    let err = fetcher.sales_summary(to, from).await.unwrap_err();
    assert_eq!(err.code(), "invalid_input");
}

#[tokio::test]
async fn the_page_cap_is_reported() {
    let (_fake, fetcher, _) = setup().await;
    let capped = fetcher.with_max_pages(1);
    let week = capped.orders_last_week().await.unwrap();
    assert!(week.truncated);
    assert_eq!(week.orders, 30);
    assert!(week.note.unwrap().contains("newest 30 orders"));
}

#[tokio::test]
async fn a_paging_budget_answers_with_the_pages_read_in_time() {
    let (_fake, fetcher, _) = setup().await;
    // No time at all: the first page answers, flagged.
    let hurried = fetcher
        .clone()
        .with_paging_budget(std::time::Duration::ZERO);
    let week = hurried.orders_last_week().await.unwrap();
    assert!(week.truncated);
    assert_eq!(week.orders, 30);
    let note = week.note.unwrap();
    assert!(
        note.contains("newest 30 orders were read (1 page)"),
        "{note}"
    );
    // Cached apart: a fetcher without a budget still reads the whole week.
    let week = fetcher.orders_last_week().await.unwrap();
    assert!(!week.truncated);
    assert_eq!(week.orders, 45);
    // Time enough: everything.
    let patient = fetcher.with_paging_budget(std::time::Duration::from_secs(60));
    let week = patient.orders_last_week().await.unwrap();
    assert!(!week.truncated);
    assert_eq!(week.orders, 45);
}

#[tokio::test]
async fn top_products_over_days() {
    let (_fake, fetcher, _) = setup().await;
    let top = fetcher.top_products(7, 2).await.unwrap();
    assert_eq!(top.orders_considered, 45);
    assert_eq!(top.products.len(), 2);
    assert_eq!(top.products[0].title, "Mug");
    let month = fetcher.top_products(30, 10).await.unwrap();
    assert_eq!(month.orders_considered, 47);
    assert!(
        month
            .products
            .iter()
            .any(|p| p.title == "Old thing" && p.units == 2)
    );
}

#[tokio::test]
async fn customer_by_email() {
    let (fake, fetcher, _) = setup().await;
    let ann = fetcher
        .customer_by_email(" Ann@Example.com ")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.id, "gid://shopify/Customer/7");
    assert_eq!(ann.email.as_deref(), Some("ann@example.com"));
    assert_eq!(ann.recent_orders.len(), 10);
    assert!(
        ann.recent_orders
            .iter()
            .all(|o| o.customer.as_ref().unwrap().email.as_deref() == Some("ann@example.com"))
    );
    let vars = fake.requests()[0].variables().clone();
    assert_eq!(vars["customerQuery"], "email:\"ann@example.com\"");
    assert!(
        fetcher
            .customer_by_email("nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let err = fetcher
        .customer_by_email("x\" OR created_at:>2000")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    // The email is not written in cache keys in clear.
    fetcher.customer_by_email("ann@example.com").await.unwrap();
    assert_eq!(
        count_query(&fake, queries::CUSTOMER_BY_EMAIL),
        2,
        "second lookup of ann is cached"
    );
}

#[tokio::test]
async fn a_401_reaches_the_caller_as_unauthorized() {
    let fake = FakeShopify::start(|_, _| {
        Reply::json(
            401,
            &json!({"errors": "[API] Invalid API key or access token"}),
        )
    })
    .await;
    let fetcher = ShopifyDataFetcher::new(
        AdminClient::new(reqwest::Client::new(), &fake.config()),
        shop(),
        Secret::new("revoked"),
        Arc::new(MemoryCache::new()),
    );
    let err = fetcher.store_counts().await.unwrap_err();
    assert!(err.needs_reconnect());
    assert!(!format!("{fetcher:?}").contains("revoked"));
}

#[tokio::test]
async fn days_are_cut_at_the_shops_midnight() {
    // New York, UTC-05:00: now (12:00 UTC) is 07:00 on the 26th there; the
    // oldest order of the week (2026-11-20 02:00 UTC) was placed on the
    // 19th, New York time, so it falls out of the week.
    let fake = FakeShopify::start(|req, _| respond_in(req, "America/New_York", -300)).await;
    let fetcher = ShopifyDataFetcher::new(
        AdminClient::new(reqwest::Client::new(), &fake.config()),
        shop(),
        Secret::new("t"),
        Arc::new(MemoryCache::new()),
    )
    .with_now(now());
    let week = fetcher.orders_last_week().await.unwrap();
    assert_eq!(week.timezone, "America/New_York (UTC-05:00)");
    assert_eq!(week.from, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
    assert_eq!(week.orders, 44);
    let local = |o: &Order| (o.created_at - Duration::hours(5)).date_naive();
    for day in &week.per_day {
        let of_day: Vec<Order> = orders()
            .into_iter()
            .filter(|o| local(o) == day.date)
            .collect();
        assert_eq!(day.orders, of_day.len() as u64, "{}", day.date);
        assert_eq!(
            day.revenue.to_cents(),
            i128::from(of_day.iter().map(|o| o.cents).sum::<i64>()),
            "{}",
            day.date
        );
    }
    // The time zone is fetched once and cached.
    fetcher.top_products(7, 3).await.unwrap();
    assert_eq!(count_query(&fake, queries::SHOP_TIMEZONE), 1);
}

#[tokio::test]
async fn cancelled_orders_are_counted() {
    let fake = FakeShopify::start(|req, _| {
        let mut reply = respond(req);
        if req.query() == queries::ORDERS_PAGE {
            let mut body: Value = serde_json::from_str(&reply.body).unwrap();
            body["data"]["orders"]["nodes"][0]["cancelledAt"] = json!("2026-11-26T13:00:00Z");
            reply.body = body.to_string();
        }
        reply
    })
    .await;
    let fetcher = ShopifyDataFetcher::new(
        AdminClient::new(reqwest::Client::new(), &fake.config()),
        shop(),
        Secret::new("t"),
        Arc::new(MemoryCache::new()),
    )
    .with_now(now());
    let week = fetcher.orders_last_week().await.unwrap();
    assert_eq!(week.orders, 45);
    assert_eq!(week.cancelled_orders, 2, "the first order of each page");
}
