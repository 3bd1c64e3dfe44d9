use super::fake::FakeStore;
use super::lookup_customer::{LookupCustomer, valid_email};
use super::orders_last_week::OrdersLastWeek;
use super::recent_orders::RecentOrders;
use super::sales_summary::SalesSummary;
use super::store_counts::StoreCounts;
use super::store_overview::StoreOverview;
use super::top_products::TopProducts;
use super::*;
use crate::workflow::{AD_HOC_SUPPORT, Catalog, SHOPIFY_ONBOARDING};

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
        let input = match name {
            ToolName::SalesSummary => json!({"start_date": "2026-10-01", "end_date": "2026-10-15"}),
            ToolName::LookupCustomer => json!({"email": "ada@example.com"}),
            _ => json!({}),
        };
        let out = ctx.execute(&call(name.as_str(), input), &all()).await;
        assert!(!out.is_error, "{name}: {out:?}");
        let result = ToolResult::from_model_text(*name, &out.content);
        let Ok(result) = result else {
            panic!("{name}: {result:?}");
        };
        assert_eq!(compact(&result), out.content, "{name}");
        assert!(!result.text().is_empty());
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
