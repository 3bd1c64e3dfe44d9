use super::*;
use hirecj_agent::offline::OfflineProvider;
use hirecj_testkit::store::FakeStore;

struct Fake;

#[async_trait]
impl DataSourceFactory for Fake {
    async fn open(&self, shop: &str) -> Result<Arc<dyn StoreData>, String> {
        if shop.ends_with(".myshopify.com") {
            Ok(Arc::new(FakeStore::default()))
        } else {
            Err(format!("no such shop {shop}"))
        }
    }
}

fn options() -> EvalOptions {
    EvalOptions {
        today: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        turn: TurnConfig::default(),
    }
}

#[test]
fn embedded_scenarios_load_and_cover_every_workflow() {
    let catalog = Catalog::embedded().unwrap();
    let scenarios = embedded_scenarios().unwrap();
    assert!(scenarios.len() >= 25, "{}", scenarios.len());
    validate_scenarios(&scenarios, &catalog).unwrap();
    for wf in catalog.workflows() {
        assert!(
            scenarios.iter().any(|s| s.workflow == wf.name),
            "no scenario for {}",
            wf.name
        );
    }
}

#[tokio::test]
async fn offline_brain_passes_every_scenario_on_the_fake_store() {
    let catalog = Catalog::embedded().unwrap();
    let scenarios = embedded_scenarios().unwrap();
    let report = run_evals(
        &OfflineProvider::new(),
        &catalog,
        &scenarios,
        &Fake,
        &options(),
    )
    .await;
    if !report.passed() {
        for (s, t, text) in &report.answers {
            if report.failures().any(|r| &r.scenario == s) {
                println!("--- {s} turn {t}:\n{text}\n");
            }
        }
        println!("{}", report.table());
        panic!("evals failed");
    }
    for (s, t, text) in &report.answers {
        println!("--- {s} turn {t}:\n{text}\n");
    }
    println!("{}", report.table());
    assert!(report.table().contains("0 failed"));
}

#[tokio::test]
async fn failures_are_reported_not_panics() {
    let catalog = Catalog::embedded().unwrap();
    let text = r#"
scenarios:
  - name: wrong_number
    workflow: ad_hoc_support
    store: eval-candles.myshopify.com
    turns:
      - merchant: What's the meaning of life?
        expect:
          tools_called: [get_shopify_store_counts]
          numbers_from: [orders_last_week.count]
          contains: [banana]
          marker: present
  - name: bad_store
    workflow: ad_hoc_support
    store: nowhere
    turns:
      - merchant: hi
"#;
    let scenarios = parse_scenarios("t.yaml", text).unwrap();
    let report = run_evals(
        &OfflineProvider::new(),
        &catalog,
        &scenarios,
        &Fake,
        &options(),
    )
    .await;
    assert!(!report.passed());
    let failed: Vec<_> = report.failures().map(|r| r.expectation.clone()).collect();
    assert_eq!(
        failed,
        vec![
            "tools_called = [get_shopify_store_counts]",
            "numbers_from orders_last_week.count",
            "contains \"banana\"",
            "marker present",
            "open store nowhere",
        ]
    );
    let table = report.table();
    assert!(table.contains("FAIL"), "{table}");
}

#[test]
fn invalid_scenarios_are_rejected_with_file_and_key() {
    let catalog = Catalog::embedded().unwrap();
    let err = parse_scenarios(
        "x.yaml",
        "scenarios:\n  - name: a\n    workflow: w\n    store: none\n    turns: []\n    bogus: 1\n",
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("x.yaml: "), "{err}");
    assert!(err.to_string().contains("bogus"), "{err}");
    let s = parse_scenarios(
        "y.yaml",
        "scenarios:\n  - name: a\n    workflow: nope\n    store: none\n    turns:\n      - merchant: hi\n        event: x\n        expect:\n          tools_called: [get_everything]\n          numbers_from: [orders_last_week.bananas]\n",
    )
    .unwrap();
    let errors = validate_scenarios(&s, &catalog).unwrap_err();
    let all = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "unknown workflow",
        "exactly one",
        "get_everything",
        "bananas",
        "y.yaml",
    ] {
        assert!(all.contains(needle), "{needle}: {all}");
    }
}

#[test]
fn number_keys() {
    for key in [
        "comparison(month).previous_revenue",
        "series(12w,week).last_revenue",
        "series(2026-10-01:2026-10-31,day).orders",
        "repeat_customers(90d).returning",
        "refunds(last_month).top_reason",
        "top_customers(this_month).first_name",
        "product_performance(30d).first_revenue",
        "orders_by_status(7d).unfulfilled",
        "sync_status.orders_read",
    ] {
        assert!(NumberKey::parse(key).is_ok(), "{key}");
    }
    for key in [
        "comparison(year).revenue",
        "series(30d,hour).orders",
        "series(0d,day).orders",
        "refunds(30).count",
        "sync_status.bananas",
    ] {
        assert!(NumberKey::parse(key).is_err(), "{key}");
    }
    let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
    assert_eq!(Period::Days(30).resolve(today), (d(10, 28), today));
    assert_eq!(Period::TwelveWeeks.resolve(today), (d(9, 7), today));
    assert_eq!(Period::LastMonth.resolve(today), (d(10, 1), d(10, 31)));
    assert_eq!(
        Pair::Month.resolve(today),
        [(d(11, 1), today), (d(10, 1), d(10, 26))]
    );
    assert_eq!(
        Pair::Week.resolve(today),
        [(d(11, 20), today), (d(11, 13), d(11, 19))]
    );
    assert!(NumberKey::parse("orders_last_week.count").is_ok());
    assert!(NumberKey::parse("sales_summary(2026-10-01, 2026-10-15).revenue").is_ok());
    assert!(NumberKey::parse("top_products(30,5).first_units").is_ok());
    assert!(NumberKey::parse("customer(a@b.com).name").is_ok());
    assert!(NumberKey::parse("sales_summary(2026-10-01).revenue").is_err());
    assert!(NumberKey::parse("nothing").is_err());
}

/// The offline brain over the store mirror of a development shop installed
/// and backfilled in process: every scenario passes with the figures the
/// development store's own data gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_brain_passes_every_scenario_on_the_development_store() {
    let catalog = Catalog::embedded().unwrap();
    let scenarios = embedded_scenarios().unwrap();
    let source = mirror::MirrorSource::start().await.unwrap();
    let options = mirror_options(&source, &scenarios).await.unwrap();
    let shops = source.shops().await;
    assert!(!shops.is_empty());
    for (shop, m) in &shops {
        assert!(m.sync.orders_mirrored > 1_000, "{shop}: {:?}", m.sync);
        assert_eq!(m.sync.covers_since, None, "{shop}: the whole history");
    }
    let report = run_evals(
        &OfflineProvider::new(),
        &catalog,
        &scenarios,
        &source,
        &options,
    )
    .await;
    assert_eq!(report.durations.len(), scenarios.len());
    assert!(report.table().contains(" ms\n"), "each scenario's time");
    if !report.passed() {
        for (s, t, text) in &report.answers {
            if report.failures().any(|r| &r.scenario == s) {
                println!("--- {s} turn {t}:\n{text}\n");
            }
        }
        println!("{}", report.table());
        panic!("evals failed on the development store");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_command_prints_a_table() {
    let catalog = Catalog::embedded().unwrap();
    let mut out = Vec::new();
    let ok = run_command(&OfflineProvider::new(), &catalog, &[], &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(ok, "{text}");
    assert!(text.contains("provider offline (model hirecj-offline-1)"));
    assert!(text.contains("0 failed"));
    let missing = run_command(
        &OfflineProvider::new(),
        &catalog,
        &["/nonexistent.yaml".into()],
        &mut Vec::new(),
    )
    .await;
    assert!(missing.unwrap_err().contains("/nonexistent.yaml"));
}
