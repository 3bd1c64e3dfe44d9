use super::ShopFormat;
use super::lookup_customer::{LookupCustomer, valid_email};
use super::orders_by_status::OrdersByStatus;
use super::orders_last_week::OrdersLastWeek;
use super::product_performance::ProductPerformance;
use super::recent_orders::RecentOrders;
use super::refunds::Refunds;
use super::repeat_customers::RepeatCustomers;
use super::sales_comparison::SalesComparison;
use super::sales_series::{Bucket, SalesSeries};
use super::sales_summary::SalesSummary;
use super::store_counts::StoreCounts;
use super::store_overview::StoreOverview;
use super::sync_status::SyncStatus;
use super::top_customers::TopCustomers;
use super::top_products::TopProducts;
use super::*;
use crate::workflow::{AD_HOC_SUPPORT, Catalog, SHOPIFY_ONBOARDING};
use hirecj_testkit::store::FakeStore;

fn call(name: &str, input: Value) -> ToolCall {
    ToolCall {
        id: "c1".into(),
        name: name.into(),
        input,
    }
}

fn all() -> Vec<String> {
    ToolName::ALL
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect()
}

#[test]
fn specs_exist_sorted_and_valid() {
    let specs = tool_specs(ToolName::ALL.iter().map(|t| t.as_str()));
    assert_eq!(specs.len(), ToolName::ALL.len());
    let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for s in &specs {
        assert_eq!(s.input_schema["type"], "object");
        assert!(ToolName::from_name(&s.name).is_some());
    }
    assert!(tool_specs(["nope"]).is_empty());
}

/// Tool names are a contract (workflows, evals, stored traces, the
/// browser): existing ones never change or disappear. New tools need not
/// be listed here.
#[test]
fn tool_names_are_stable() {
    for name in [
        "get_shopify_store_counts",
        "get_shopify_store_overview",
        "get_shopify_recent_orders",
        "get_shopify_orders_last_week",
        "get_shopify_sales_summary",
        "get_shopify_top_products",
        "lookup_shopify_customer",
        "get_shopify_sales_comparison",
        "get_shopify_sales_series",
        "get_shopify_repeat_customers",
        "get_shopify_top_customers",
        "get_shopify_refunds",
        "get_shopify_product_performance",
        "get_shopify_orders_by_status",
        "get_store_sync_status",
    ] {
        assert_eq!(ToolName::from_name(name).map(ToolName::as_str), Some(name));
    }
}

#[test]
fn registry_is_sorted_and_unique() {
    let names: Vec<_> = ToolName::ALL.iter().map(|t| t.as_str()).collect();
    for pair in names.windows(2) {
        assert!(
            pair[0] < pair[1],
            "registry lines go in name order, once each: {} before {}",
            pair[0],
            pair[1]
        );
    }
    for t in ToolName::ALL {
        assert_eq!(ToolName::from_name(t.as_str()), Some(*t));
        assert_eq!(t.to_string(), t.as_str());
        assert!(!t.thinking_status().is_empty());
        assert!(!t.subject().is_empty());
        assert_ne!(thinking_status(t.as_str()), "Working on it…");
    }
    assert_eq!(thinking_status("nope"), "Working on it…");
}

#[test]
fn offered_only_when_connected_and_listed() {
    let catalog = Catalog::embedded().unwrap();
    let onboarding = catalog.workflow(SHOPIFY_ONBOARDING).unwrap();
    let adhoc = catalog.workflow(AD_HOC_SUPPORT).unwrap();
    assert!(ToolContext::disconnected().specs_for(adhoc).is_empty());
    let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
    assert_eq!(ctx.specs_for(adhoc).len(), ToolName::ALL.len());
    let names: Vec<_> = ctx
        .specs_for(onboarding)
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec![StoreCounts::NAME, StoreOverview::NAME]);
}

#[tokio::test]
async fn results_are_compact_json() {
    let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
    let out = ctx
        .execute(&call(OrdersLastWeek::NAME, json!({})), &all())
        .await;
    assert!(!out.is_error, "{out:?}");
    let v: Value = serde_json::from_str(&out.content).unwrap();
    assert_eq!(v["orders"], 42);
    assert_eq!(v["revenue"], "3456.78");
    assert!(!out.content.contains('\n'));
    let out = ctx
        .execute(&call(RecentOrders::NAME, json!({"limit": 3})), &all())
        .await;
    let v: Value = serde_json::from_str(&out.content).unwrap();
    assert_eq!(v["count"], 3);
    let out = ctx
        .execute(
            &call(LookupCustomer::NAME, json!({"email": "nobody@example.com"})),
            &all(),
        )
        .await;
    assert!(!out.is_error);
    assert!(out.content.contains(r#""found":false"#));
}

#[tokio::test]
async fn bad_arguments_are_error_results() {
    let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
    let cases = [
        call(
            SalesSummary::NAME,
            json!({"start_date": "2026-13-01", "end_date": "2026-12-01"}),
        ),
        call(
            SalesSummary::NAME,
            json!({"start_date": "2026-10-05", "end_date": "2026-10-01"}),
        ),
        call(
            SalesSummary::NAME,
            json!({"start_date": "2020-01-01", "end_date": "2026-10-01"}),
        ),
        call(SalesSummary::NAME, json!({"start_date": "2026-10-01"})),
        call(RecentOrders::NAME, json!({"limit": 0})),
        call(RecentOrders::NAME, json!({"limit": 500})),
        call(RecentOrders::NAME, json!({"limit": "many"})),
        call(TopProducts::NAME, json!({"days": -3})),
        call(TopProducts::NAME, json!({"limit": 1.5})),
        call(LookupCustomer::NAME, json!({"email": "not an email"})),
        call(LookupCustomer::NAME, json!({"email": "x\"@y.com"})),
        call(LookupCustomer::NAME, json!({})),
    ];
    for c in cases {
        let out = ctx.execute(&c, &all()).await;
        assert!(out.is_error, "{c:?} -> {out:?}");
        assert_eq!(out.error_code.as_deref(), Some("invalid_arguments"));
    }
    // Lenient but safe: numeric strings and ignored extra keys (a
    // model-supplied shop changes nothing).
    let out = ctx
        .execute(
            &call(
                RecentOrders::NAME,
                json!({"limit": "2", "shop": "other.myshopify.com"}),
            ),
            &all(),
        )
        .await;
    assert!(!out.is_error);
}

#[tokio::test]
async fn unknown_or_unoffered_tools_are_refused() {
    let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
    let offered = vec![StoreCounts::NAME.to_owned()];
    let out = ctx
        .execute(&call(OrdersLastWeek::NAME, json!({})), &offered)
        .await;
    assert_eq!(out.error_code.as_deref(), Some("unknown_tool"));
    let out = ctx
        .execute(
            &call(OrdersLastWeek::NAME, json!({})),
            &[OrdersLastWeek::NAME.to_owned()],
        )
        .await;
    assert!(!out.is_error);
    let out = ToolContext::disconnected()
        .execute(&call(StoreCounts::NAME, json!({})), &offered)
        .await;
    assert_eq!(out.error_code.as_deref(), Some("not_connected"));
}

#[tokio::test]
async fn unauthorized_means_reconnect() {
    let ctx = ToolContext::connected(Arc::new(FakeStore {
        unauthorized: true,
        ..FakeStore::default()
    }));
    let out = ctx
        .execute(&call(StoreCounts::NAME, json!({})), &all())
        .await;
    assert!(out.is_error && out.needs_reconnect);
    assert!(out.content.contains("reconnect"));
}

#[tokio::test(start_paused = true)]
async fn calls_time_out() {
    let ctx = ToolContext::connected(Arc::new(FakeStore {
        slow: true,
        ..FakeStore::default()
    }))
    .with_timeout(Duration::from_secs(5));
    let out = ctx
        .execute(&call(StoreCounts::NAME, json!({})), &all())
        .await;
    assert_eq!(out.error_code.as_deref(), Some("timeout"));
}

/// What the offline brain sends as arguments is what the tool accepts.
#[test]
fn arguments_round_trip() {
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 10, d).unwrap_or_default();
    let tools = [
        Tool::StoreCounts(StoreCounts {}),
        Tool::StoreOverview(StoreOverview {}),
        Tool::OrdersLastWeek(OrdersLastWeek {}),
        Tool::RecentOrders(RecentOrders { limit: 5 }),
        Tool::SalesSummary(SalesSummary {
            start_date: day(1),
            end_date: day(15),
        }),
        Tool::TopProducts(TopProducts { days: 7, limit: 3 }),
        Tool::LookupCustomer(LookupCustomer {
            email: "ada@example.com".into(),
        }),
        Tool::SalesComparison(SalesComparison {
            start_date: day(16),
            end_date: day(31),
            compare_start_date: day(1),
            compare_end_date: day(15),
        }),
        Tool::SalesSeries(SalesSeries {
            start_date: day(1),
            end_date: day(31),
            bucket: Bucket::Week,
        }),
        Tool::SalesSeries(SalesSeries {
            start_date: day(1),
            end_date: day(31),
            bucket: Bucket::Day,
        }),
        Tool::RepeatCustomers(RepeatCustomers {
            start_date: day(1),
            end_date: day(31),
        }),
        Tool::TopCustomers(TopCustomers {
            start_date: day(1),
            end_date: day(31),
            limit: 3,
        }),
        Tool::Refunds(Refunds {
            start_date: day(1),
            end_date: day(31),
            limit: 7,
        }),
        Tool::ProductPerformance(ProductPerformance {
            start_date: day(1),
            end_date: day(31),
            limit: 4,
        }),
        Tool::OrdersByStatus(OrdersByStatus {
            start_date: day(1),
            end_date: day(31),
        }),
        Tool::SyncStatus(SyncStatus {}),
    ];
    for tool in tools {
        let args = tool.arguments();
        let map = args.as_object().cloned().unwrap_or_default();
        assert_eq!(Tool::parse(tool.name(), &map).as_ref(), Ok(&tool), "{args}");
    }
    assert_eq!(
        Tool::SalesSummary(SalesSummary {
            start_date: day(1),
            end_date: day(15)
        })
        .arguments()
        .to_string(),
        r#"{"end_date":"2026-10-15","start_date":"2026-10-01"}"#
    );
}

/// What the model was given reads back into the tool's own type, and a
/// result cut at the size cap does not.
#[tokio::test]
async fn results_read_back_into_their_types() {
    let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
    for name in ToolName::ALL {
        let input = input_for(*name);
        let out = ctx.execute(&call(name.as_str(), input), &all()).await;
        assert!(!out.is_error, "{name}: {out:?}");
        let result = ToolResult::from_model_text(*name, &out.content);
        let Ok(result) = result else {
            panic!("{name}: {result:?}");
        };
        assert_eq!(compact(&result), out.content, "{name}");
        assert!(!result.text(&ShopFormat::default()).is_empty());
    }
    let not_found = ctx
        .execute(
            &call(LookupCustomer::NAME, json!({"email": "nobody@example.com"})),
            &all(),
        )
        .await;
    assert_eq!(
        not_found.content,
        r#"{"email":"nobody@example.com","found":false}"#
    );
    assert!(ToolResult::from_model_text(ToolName::LookupCustomer, r#"{"found":true}"#).is_err());
    let cut = format!(
        "{}… [result truncated at {MAX_RESULT_BYTES} bytes]",
        r#"{"count":3,"orders":[{"#
    );
    assert!(ToolResult::from_model_text(ToolName::RecentOrders, &cut).is_err());
}

/// Arguments every tool accepts.
fn input_for(name: ToolName) -> Value {
    let range = json!({"start_date": "2026-10-01", "end_date": "2026-10-15"});
    match name {
        ToolName::LookupCustomer => json!({"email": "ada@example.com"}),
        ToolName::SalesComparison => json!({
            "start_date": "2026-11-01", "end_date": "2026-11-15",
            "compare_start_date": "2026-10-01", "compare_end_date": "2026-10-15"
        }),
        ToolName::SalesSummary
        | ToolName::SalesSeries
        | ToolName::RepeatCustomers
        | ToolName::TopCustomers
        | ToolName::Refunds
        | ToolName::ProductPerformance
        | ToolName::OrdersByStatus => range,
        ToolName::OrdersLastWeek
        | ToolName::RecentOrders
        | ToolName::StoreCounts
        | ToolName::StoreOverview
        | ToolName::TopProducts
        | ToolName::SyncStatus => json!({}),
    }
}

/// Every range tool refuses bad ranges the same way.
#[tokio::test]
async fn range_tools_validate_their_dates() {
    let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
    for name in [
        SalesSeries::NAME,
        RepeatCustomers::NAME,
        TopCustomers::NAME,
        Refunds::NAME,
        ProductPerformance::NAME,
        OrdersByStatus::NAME,
    ] {
        for input in [
            json!({"start_date": "2026-10-05", "end_date": "2026-10-01"}),
            json!({"start_date": "2025-01-01", "end_date": "2026-10-01"}),
            json!({"start_date": "2026-10-01"}),
            json!({"start_date": "yesterday", "end_date": "2026-10-01"}),
        ] {
            let out = ctx.execute(&call(name, input.clone()), &all()).await;
            assert_eq!(
                out.error_code.as_deref(),
                Some("invalid_arguments"),
                "{name} {input}: {out:?}"
            );
        }
    }
    let bad = [
        call(
            TopCustomers::NAME,
            json!({"start_date": "2026-10-01", "end_date": "2026-10-02", "limit": 21}),
        ),
        call(
            Refunds::NAME,
            json!({"start_date": "2026-10-01", "end_date": "2026-10-02", "limit": 0}),
        ),
        call(
            ProductPerformance::NAME,
            json!({"start_date": "2026-10-01", "end_date": "2026-10-02", "limit": 51}),
        ),
        call(
            SalesSeries::NAME,
            json!({"start_date": "2026-01-01", "end_date": "2026-10-01", "bucket": "day"}),
        ),
        call(
            SalesSeries::NAME,
            json!({"start_date": "2026-10-01", "end_date": "2026-10-02", "bucket": "hour"}),
        ),
        call(
            SalesComparison::NAME,
            json!({"start_date": "2026-10-01", "end_date": "2026-10-02"}),
        ),
        call(
            SalesComparison::NAME,
            json!({
                "start_date": "2026-10-01", "end_date": "2026-10-02",
                "compare_start_date": "2026-09-03", "compare_end_date": "2026-09-01"
            }),
        ),
    ];
    for c in bad {
        let out = ctx.execute(&c, &all()).await;
        assert_eq!(
            out.error_code.as_deref(),
            Some("invalid_arguments"),
            "{c:?}"
        );
    }
    // A long series without a bucket goes by week; a short one by day.
    let map = |v: Value| v.as_object().cloned().unwrap_or_default();
    let long = SalesSeries::parse(&map(
        json!({"start_date": "2026-01-01", "end_date": "2026-10-01"}),
    ));
    assert_eq!(long.map(|s| s.bucket), Ok(Bucket::Week));
    let short = SalesSeries::parse(&map(
        json!({"start_date": "2026-10-01", "end_date": "2026-10-31", "bucket": "Weekly"}),
    ));
    assert_eq!(short.map(|s| s.bucket), Ok(Bucket::Week));
    let short = SalesSeries::parse(&map(
        json!({"start_date": "2026-10-01", "end_date": "2026-10-31"}),
    ));
    assert_eq!(short.map(|s| s.bucket), Ok(Bucket::Day));
}

#[tokio::test]
async fn comparison_has_both_periods_and_the_change() {
    let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
    let out = ctx
        .execute(
            &call(SalesComparison::NAME, input_for(ToolName::SalesComparison)),
            &all(),
        )
        .await;
    assert!(!out.is_error, "{out:?}");
    let v: Value = serde_json::from_str(&out.content).unwrap();
    assert_eq!(v["period"]["from"], "2026-11-01");
    assert_eq!(v["compared_with"]["to"], "2026-10-15");
    assert_eq!(v["period"]["average_order_value"], "82.30");
    assert_eq!(v["change"]["orders"]["change"], 0);
    assert_eq!(v["change"]["orders"]["percent"], 0.0);
    let Ok(ToolResult::SalesComparison(r)) =
        ToolResult::from_model_text(ToolName::SalesComparison, &out.content)
    else {
        panic!("{}", out.content);
    };
    let text = SalesComparison::text(&r, &ShopFormat::default());
    assert!(
        text.contains("2026-11-01 to 2026-11-15 vs 2026-10-01 to 2026-10-15"),
        "{text}"
    );
    assert!(text.contains("Orders: 120 vs 120 (+0, 0.0%)"), "{text}");
    assert!(
        text.contains("Revenue: $9,876.50 vs $9,876.50 ($0.00, 0.0%)"),
        "{text}"
    );
    assert!(text.contains("Average order value: $82.30"), "{text}");
}

#[tokio::test]
async fn series_buckets_weeks_from_live_days() {
    let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
    // 2026-10-01 is a Thursday: the first week is cut by the range.
    let out = ctx
        .execute(
            &call(
                SalesSeries::NAME,
                json!({"start_date": "2026-10-01", "end_date": "2026-10-14", "bucket": "week"}),
            ),
            &all(),
        )
        .await;
    let v: Value = serde_json::from_str(&out.content).unwrap();
    let points = v["points"].as_array().unwrap();
    let starts: Vec<_> = points
        .iter()
        .map(|p| p["start"].as_str().unwrap())
        .collect();
    assert_eq!(starts, ["2026-10-01", "2026-10-05", "2026-10-12"]);
    let orders: Vec<_> = points
        .iter()
        .map(|p| p["orders"].as_u64().unwrap())
        .collect();
    assert_eq!(orders, [12, 21, 9]);
    assert_eq!(points[1]["revenue"], "1050.00");
    assert_eq!(points[1]["average_order_value"], "50.00");
    assert!(
        points[0].get("refunded").is_none(),
        "live: no refunds per point"
    );
    assert_eq!(v["orders"], 42);
    assert!(v["note"].as_str().unwrap().contains("whole range"));
    let Ok(result) = ToolResult::from_model_text(ToolName::SalesSeries, &out.content) else {
        panic!()
    };
    let text = result.text(&ShopFormat::default());
    assert!(
        text.contains("**Sales by week** (2026-10-01 to 2026-10-14): 42 orders, $2,100.00"),
        "{text}"
    );
    assert!(
        text.contains("Week of 2026-10-05: 21 orders, $1,050.00"),
        "{text}"
    );
}

#[tokio::test]
async fn history_tools_answer_from_the_copy_with_their_figures() {
    let ctx = ToolContext::connected(Arc::new(FakeStore::default()));
    let cases: &[(&str, &[&str])] = &[
        (
            RepeatCustomers::NAME,
            &[
                "Customers who ordered: 80",
                "Ordered more than once: 12 (repeat rate 15.0%)",
                "Had ordered before: 30 (returning 37.5%)",
                "New customers: 50",
            ],
        ),
        (
            TopCustomers::NAME,
            &[
                "Ada Lovelace: $612.50 in 4 orders",
                "grace@example.com: $99.00 in 1 order",
            ],
        ),
        (
            Refunds::NAME,
            &[
                "3 refunds, $78.50 in total",
                "Damaged in transit: 2 ($30.00)",
                "Wrong size: 1 ($48.50)",
                "Latest: #1012 on 2026-11-25, $20.00 (Damaged in transit)",
            ],
        ),
        (
            ProductPerformance::NAME,
            &[
                "from 120 orders",
                "Cedar Wick Set: $1,035.00 from 23 units in 17 orders \
                 (1 unit refunded, $45.00)\n",
                "Lavender Candle: $812.00 from 58 units in 31 orders",
            ],
        ),
        (
            OrdersByStatus::NAME,
            &[
                "120 orders",
                "Payment: paid 110, partially refunded 6, pending 4",
                "Fulfillment: fulfilled 101, unfulfilled 19",
            ],
        ),
        (
            SyncStatus::NAME,
            &[
                "complete: I've read 12840 orders, your whole order history",
                "Last updated: 2026-11-26 14:00 UTC",
                "Last check for missed changes: 2026-11-26 13:00 UTC",
            ],
        ),
    ];
    for (name, needles) in cases {
        let tool = ToolName::from_name(name).unwrap();
        let out = ctx.execute(&call(name, input_for(tool)), &all()).await;
        assert!(!out.is_error, "{name}: {out:?}");
        if *name != SyncStatus::NAME {
            let v: Value = serde_json::from_str(&out.content).unwrap();
            assert_eq!(v["status"], "ready", "{name}: {}", out.content);
        }
        let text = ToolResult::from_model_text(tool, &out.content)
            .unwrap()
            .text(&ShopFormat::default());
        for n in *needles {
            assert!(text.contains(n), "{name}: missing {n} in {text}");
        }
    }
}

/// Before the copy is complete, history tools say so and give no figures.
#[tokio::test]
async fn history_tools_never_guess_while_reading() {
    let ctx = ToolContext::connected(Arc::new(FakeStore {
        reading: true,
        ..FakeStore::default()
    }));
    for name in [
        RepeatCustomers::NAME,
        TopCustomers::NAME,
        Refunds::NAME,
        ProductPerformance::NAME,
        OrdersByStatus::NAME,
    ] {
        let tool = ToolName::from_name(name).unwrap();
        let out = ctx.execute(&call(name, input_for(tool)), &all()).await;
        assert!(!out.is_error, "{name}: {out:?}");
        let v: Value = serde_json::from_str(&out.content).unwrap();
        assert_eq!(v["status"], "still_reading", "{name}");
        assert_eq!(v["orders_read"], 4210, "{name}");
        assert!(v["message"].as_str().unwrap().contains("do not estimate"));
        let result = ToolResult::from_model_text(tool, &out.content).unwrap();
        assert_eq!(compact(&result), out.content);
        let text = result.text(&ShopFormat::default());
        assert!(
            text.contains("still reading your store's order history: 4210 orders so far"),
            "{text}"
        );
        assert!(!text.contains("USD"), "{text}");
    }
    let out = ctx
        .execute(&call(SyncStatus::NAME, json!({})), &all())
        .await;
    let text = ToolResult::from_model_text(ToolName::SyncStatus, &out.content)
        .unwrap()
        .text(&ShopFormat::default());
    assert!(
        text.contains("I've read 4210 of your orders so far (started 2026-11-26 09:00 UTC)"),
        "{text}"
    );
    assert!(
        out.content.contains(r#""state":"reading""#),
        "{}",
        out.content
    );
}

#[test]
fn email_validation() {
    assert!(valid_email("ada@example.com"));
    assert!(valid_email("a.b+c@shop.co.uk"));
    for bad in [
        "",
        "ada",
        "ada@",
        "@x.com",
        "a@b",
        "a b@c.com",
        "a@b@c.com",
        "a@.com",
        "a@b..com",
    ] {
        assert!(!valid_email(bad), "{bad}");
    }
}

#[test]
fn conversations_are_titled_by_the_tools_they_used() {
    use super::title_from_tools;
    assert_eq!(
        title_from_tools(["get_shopify_top_products"]).as_deref(),
        Some("Best sellers")
    );
    assert_eq!(
        title_from_tools([
            "get_shopify_sales_summary",
            "get_shopify_sales_summary",
            "get_shopify_refunds",
            "get_shopify_recent_orders",
        ])
        .as_deref(),
        Some("Sales summary and refunds")
    );
    assert_eq!(title_from_tools(["no_such_tool"]), None);
    assert_eq!(title_from_tools(std::iter::empty()), None);
    // Every tool has a short title of its own.
    let mut seen = std::collections::HashSet::new();
    for tool in super::ToolName::ALL {
        let title = tool.title();
        assert!(!title.is_empty() && title.len() <= 30, "{title}");
        assert!(seen.insert(title), "two tools titled {title}");
    }
}
