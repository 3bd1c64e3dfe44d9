use std::sync::Arc;

use super::*;
use crate::chart::ChartKind;
use crate::tools::ToolContext;
use crate::turn::{HistoryEntry, MerchantContext, TurnConfig, TurnInput, TurnOutcome, run_turn};
use crate::workflow::Catalog;
use hirecj_testkit::store::FakeStore;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
}

async fn turn(
    wf: &str,
    connected: bool,
    history: Vec<HistoryEntry>,
    event: Option<String>,
    facts: Vec<String>,
) -> TurnOutcome {
    turn_over(FakeStore::default(), wf, connected, history, event, facts).await
}

async fn turn_over(
    store: FakeStore,
    wf: &str,
    connected: bool,
    history: Vec<HistoryEntry>,
    event: Option<String>,
    facts: Vec<String>,
) -> TurnOutcome {
    let c = Catalog::embedded().unwrap();
    let tools = if connected {
        ToolContext::connected(Arc::new(store))
    } else {
        ToolContext::disconnected()
    };
    let input = TurnInput {
        conversation_id: "c".into(),
        workflow: c.workflow(wf).unwrap(),
        persona: c.persona(),
        merchant: MerchantContext {
            shop_name: None,
            shop_domain: None,
            connected,
            needs_reconnect: false,
            last_visit: None,
            ..MerchantContext::default()
        },
        facts,
        history,
        system_event: event,
        summary: None,
        today: today(),
    };
    let p = OfflineProvider::new();
    run_turn(
        &p,
        &tools,
        input,
        &TurnConfig::default(),
        &|_| {},
        CancellationToken::new(),
    )
    .await
}

async fn ask(wf: &str, q: &str) -> TurnOutcome {
    turn(wf, true, vec![HistoryEntry::merchant(q)], None, vec![]).await
}

#[tokio::test]
async fn onboarding_greets_with_the_button() {
    let c = Catalog::embedded().unwrap();
    let ev = c
        .workflow(SHOPIFY_ONBOARDING)
        .unwrap()
        .behavior
        .initial_action
        .clone();
    let out = turn(SHOPIFY_ONBOARDING, false, vec![], ev, vec![]).await;
    assert_eq!(out.error, None);
    assert!(out.text.contains("I'm CJ"), "{}", out.text);
    assert!(out.text.contains("__OAUTH_BUTTON_1__"));
    assert!(out.text.contains(OFFLINE_NOTE));
    assert_eq!(out.ui_elements.len(), 1);
    assert!(
        !out.text
            .chars()
            .any(|c| c.is_ascii_digit() && !out.text.contains("__OAUTH_BUTTON_1__"))
    );
    assert!(out.tools_called.is_empty());
}

#[tokio::test]
async fn post_auth_summarises_tool_numbers() {
    let out = turn(
        SHOPIFY_POST_AUTH,
        true,
        vec![],
        Some("the merchant has just connected their Shopify store".into()),
        vec![],
    )
    .await;
    assert_eq!(out.error, None);
    assert_eq!(
        out.tools_called,
        vec![
            ToolName::StoreOverview.as_str(),
            ToolName::OrdersLastWeek.as_str(),
            ToolName::SyncStatus.as_str(),
        ]
    );
    for needle in [
        "Eval Candles",
        "42",
        "$3,456.78",
        "$82.30",
        "Lavender Candle",
        "I've read all 12840 of your orders",
    ] {
        assert!(out.text.contains(needle), "missing {needle}: {}", out.text);
    }
    assert!(!out.text.contains("{{"));
}

#[tokio::test]
async fn post_auth_says_how_far_the_reading_has_come() {
    let out = turn_over(
        FakeStore {
            reading: true,
            ..FakeStore::default()
        },
        SHOPIFY_POST_AUTH,
        true,
        vec![],
        Some("the merchant has just connected their Shopify store".into()),
        vec![],
    )
    .await;
    assert_eq!(out.error, None);
    assert!(
        out.text
            .contains("I've read 4210 of your orders so far. Until I'm done"),
        "{}",
        out.text
    );
    // The live figures it has are still given.
    assert!(out.text.contains("Eval Candles"), "{}", out.text);
}

#[tokio::test]
async fn questions_choose_tools() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "How many orders did we get last week?",
            &[ToolName::OrdersLastWeek.as_str()],
            &["42"],
        ),
        (
            "Show me my recent orders",
            &[ToolName::RecentOrders.as_str()],
            &["#1005", "$48.50"],
        ),
        (
            "What are my best sellers?",
            &[ToolName::TopProducts.as_str()],
            &["Lavender Candle", "58 units"],
        ),
        (
            "How many customers do I have?",
            &[ToolName::StoreCounts.as_str()],
            &["904 customers"],
        ),
        (
            "How many products do I have?",
            &[ToolName::StoreCounts.as_str()],
            &["37 products"],
        ),
        (
            "What was revenue between 2026-10-01 and 2026-10-15?",
            &[ToolName::SalesSummary.as_str()],
            &["2026-10-01 to 2026-10-15", "$9,876.50"],
        ),
        (
            "How were sales in October?",
            &[ToolName::SalesSummary.as_str()],
            &["2026-10-01 to 2026-10-31"],
        ),
        (
            "Revenue for the last 30 days?",
            &[ToolName::SalesSummary.as_str()],
            &["2026-10-28 to 2026-11-26"],
        ),
        (
            "Who is ada@example.com?",
            &[ToolName::LookupCustomer.as_str()],
            &["Ada Lovelace"],
        ),
        (
            "Look up nobody@example.com please",
            &[ToolName::LookupCustomer.as_str()],
            &["couldn't find"],
        ),
    ];
    for (q, tools, needles) in cases {
        let out = ask(AD_HOC_SUPPORT, q).await;
        assert_eq!(out.error, None, "{q}");
        assert_eq!(&out.tools_called, tools, "{q}");
        for n in *needles {
            assert!(out.text.contains(n), "{q}: missing {n} in {}", out.text);
        }
    }
}

#[tokio::test]
async fn history_questions_choose_the_new_tools() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "Compare this month with last month",
            &[ToolName::SalesComparison.as_str()],
            &[
                "2026-11-01 to 2026-11-26 vs 2026-10-01 to 2026-10-26",
                "Average order value: $82.30",
            ],
        ),
        (
            "How are sales this week vs last week?",
            &[ToolName::SalesComparison.as_str()],
            &["2026-11-20 to 2026-11-26 vs 2026-11-13 to 2026-11-19"],
        ),
        (
            "Compare 2026-11-01 to 2026-11-10 with 2026-10-01 to 2026-10-10",
            &[ToolName::SalesComparison.as_str()],
            &["2026-11-01 to 2026-11-10 vs 2026-10-01 to 2026-10-10"],
        ),
        (
            "Show me sales by week",
            &[ToolName::SalesSeries.as_str()],
            &[
                "**Sales by week** (2026-09-07 to 2026-11-26)",
                "Week of 2026-11-23",
            ],
        ),
        (
            "Can I see a daily sales chart?",
            &[ToolName::SalesSeries.as_str()],
            &[
                "**Sales by day** (2026-10-28 to 2026-11-26)",
                "2026-11-26 (Thu): 3 orders, $150.00",
            ],
        ),
        (
            "What's my repeat customer rate?",
            &[ToolName::RepeatCustomers.as_str()],
            &["2026-08-29 to 2026-11-26", "repeat rate 15.0%"],
        ),
        (
            "How many returning customers did I have last month?",
            &[ToolName::RepeatCustomers.as_str()],
            &["2026-10-01 to 2026-10-31", "returning 37.5%"],
        ),
        (
            "Why were orders refunded?",
            &[ToolName::Refunds.as_str()],
            &["3 refunds, $78.50", "Damaged in transit: 2"],
        ),
        (
            "Who are my best customers?",
            &[ToolName::TopCustomers.as_str()],
            &["Ada Lovelace: $612.50 in 4 orders"],
        ),
        (
            "Which products make the most money?",
            &[ToolName::ProductPerformance.as_str()],
            &[
                "Cedar Wick Set: $1,035.00 from 23 units",
                "(1 unit refunded, $45.00)",
            ],
        ),
        (
            "Product performance last week",
            &[ToolName::ProductPerformance.as_str()],
            &["2026-11-20 to 2026-11-26"],
        ),
        (
            "Show my orders by status",
            &[ToolName::OrdersByStatus.as_str()],
            &["Payment: paid 110"],
        ),
        (
            "How many unfulfilled orders do I have?",
            &[ToolName::OrdersByStatus.as_str()],
            &["unfulfilled 19"],
        ),
        (
            "How fresh are your numbers?",
            &[ToolName::SyncStatus.as_str()],
            &[
                "I've read 12840 orders",
                "Last updated: 2026-11-26 14:00 UTC",
            ],
        ),
        (
            "When did you last sync?",
            &[ToolName::SyncStatus.as_str()],
            &["complete"],
        ),
    ];
    for (q, tools, needles) in cases {
        let out = ask(AD_HOC_SUPPORT, q).await;
        assert_eq!(out.error, None, "{q}");
        assert_eq!(&out.tools_called, tools, "{q}");
        for n in *needles {
            assert!(out.text.contains(n), "{q}: missing {n} in {}", out.text);
        }
    }
}

/// While CJ is still reading the store, history answers say so and carry
/// no invented figures.
#[tokio::test]
async fn history_answers_wait_for_the_full_read() {
    let c = Catalog::embedded().unwrap();
    let tools = ToolContext::connected(Arc::new(FakeStore {
        reading: true,
        ..FakeStore::default()
    }));
    for q in [
        "Who are my best customers?",
        "What's my repeat customer rate?",
        "How fresh are your numbers?",
    ] {
        let input = TurnInput {
            conversation_id: "c".into(),
            workflow: c.workflow(AD_HOC_SUPPORT).unwrap(),
            persona: c.persona(),
            merchant: MerchantContext {
                connected: true,
                ..MerchantContext::default()
            },
            facts: vec![],
            history: vec![HistoryEntry::merchant(q)],
            system_event: None,
            summary: None,
            today: today(),
        };
        let out = run_turn(
            &OfflineProvider::new(),
            &tools,
            input,
            &TurnConfig::default(),
            &|_| {},
            CancellationToken::new(),
        )
        .await;
        assert_eq!(out.error, None, "{q}");
        assert!(
            out.text.contains("still reading your store"),
            "{q}: {}",
            out.text
        );
        assert!(out.text.contains("4210"), "{q}: {}", out.text);
        assert!(!out.text.contains("USD"), "{q}: {}", out.text);
    }
}

#[tokio::test]
async fn unknown_question_says_what_it_can_do() {
    let out = ask(AD_HOC_SUPPORT, "What's the meaning of life?").await;
    assert!(out.tools_called.is_empty());
    assert!(out.text.contains("I can tell you about"));
}

#[tokio::test]
async fn not_connected_says_so_and_offers_button() {
    let out = turn(
        AD_HOC_SUPPORT,
        false,
        vec![HistoryEntry::merchant("How many orders last week?")],
        None,
        vec![],
    )
    .await;
    assert!(out.tools_called.is_empty());
    assert!(out.text.contains("isn't connected"));
    assert_eq!(out.ui_elements.len(), 1);
    assert!(
        !out.text.chars().any(|c| c.is_ascii_digit()) || out.text.contains("__OAUTH_BUTTON_1__")
    );
}

#[tokio::test]
async fn welcome_back_with_facts_and_note_only_once() {
    let out = turn(
        AD_HOC_SUPPORT,
        true,
        vec![HistoryEntry::merchant("hi")],
        None,
        vec!["We sell candles".into()],
    )
    .await;
    assert!(out.text.starts_with("Welcome back!"), "{}", out.text);
    assert!(out.text.contains(OFFLINE_NOTE));
    let out2 = turn(
        AD_HOC_SUPPORT,
        true,
        vec![
            HistoryEntry::merchant("hi"),
            HistoryEntry::cj(out.text.clone()),
            HistoryEntry::merchant("best sellers?"),
        ],
        None,
        vec!["We sell candles".into()],
    )
    .await;
    assert!(!out2.text.contains(OFFLINE_NOTE));
    assert!(!out2.text.contains("Welcome back"));
}

#[tokio::test]
async fn reconnect_error_is_explained() {
    let c = Catalog::embedded().unwrap();
    let tools = ToolContext::connected(Arc::new(FakeStore {
        unauthorized: true,
        ..FakeStore::default()
    }));
    let input = TurnInput {
        conversation_id: "c".into(),
        workflow: c.workflow(AD_HOC_SUPPORT).unwrap(),
        persona: c.persona(),
        merchant: MerchantContext {
            connected: true,
            ..MerchantContext::default()
        },
        facts: vec![],
        history: vec![HistoryEntry::merchant("orders last week?")],
        system_event: None,
        summary: None,
        today: today(),
    };
    let out = run_turn(
        &OfflineProvider::new(),
        &tools,
        input,
        &TurnConfig::default(),
        &|_| {},
        CancellationToken::new(),
    )
    .await;
    assert!(out.needs_reconnect);
    assert!(out.text.contains("reconnect Shopify"), "{}", out.text);
    // The way back is the Connect button, even in a workflow that does not
    // otherwise offer it.
    assert_eq!(out.ui_elements.len(), 1, "{out:?}");
    assert!(out.text.contains("__OAUTH_BUTTON_1__"), "{}", out.text);

    // The next turn knows it from the start: CJ says so and offers the
    // button, without trying the store.
    let input = TurnInput {
        conversation_id: "c".into(),
        workflow: c.workflow(AD_HOC_SUPPORT).unwrap(),
        persona: c.persona(),
        merchant: MerchantContext {
            connected: true,
            needs_reconnect: true,
            last_visit: None,
            ..MerchantContext::default()
        },
        facts: vec![],
        history: vec![HistoryEntry::merchant("best sellers?")],
        system_event: None,
        summary: None,
        today: today(),
    };
    let out = run_turn(
        &OfflineProvider::new(),
        &tools,
        input,
        &TurnConfig::default(),
        &|_| {},
        CancellationToken::new(),
    )
    .await;
    assert!(out.text.contains("reconnect Shopify"), "{}", out.text);
    assert_eq!(out.ui_elements.len(), 1, "{out:?}");
}

#[test]
fn parsers() {
    assert_eq!(
        find_email("is Bob@Example.com a customer?").as_deref(),
        Some("Bob@Example.com")
    );
    assert_eq!(find_email("no email here @ all"), None);
    assert_eq!(
        find_dates("between 2026-10-01 and 2026-10-15"),
        vec![
            NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 15).unwrap()
        ]
    );
    assert!(find_dates("2026-13-45").is_empty());
    assert_eq!(last_n_days("revenue for the last 30 days"), Some(30));
    assert_eq!(chunks("abcdé", 2), vec!["ab", "cd", "é"]);
}

#[tokio::test]
async fn odd_input_never_panics() {
    let inputs = [
        "",
        "   ",
        "😀😀😀 2026-1😀-01 between 2026-02-30 and 2026-13-01",
        "revenue for the last 0 days",
        "revenue for the last 99999999999 days",
        "orders in may? in dec? for jan",
        "email: a@b, c@d.e, ü@ß.de?",
        "{{oauth:shopify}} {{ oauth : shopify",
        "[system event]",
        &"x".repeat(100_000),
    ];
    for q in inputs {
        for wf in [
            AD_HOC_SUPPORT,
            SHOPIFY_ONBOARDING,
            CRISIS_RESPONSE,
            DAILY_BRIEFING,
        ] {
            for connected in [true, false] {
                let out = turn(wf, connected, vec![HistoryEntry::merchant(q)], None, vec![]).await;
                assert!(
                    out.error.is_none() || q.trim().is_empty(),
                    "{wf} {q:?}: {:?}",
                    out.error
                );
                assert!(!out.text.contains("{{"), "{wf} {q:?}: {}", out.text);
            }
        }
    }
}

#[tokio::test]
async fn a_stated_fact_is_acknowledged() {
    let out = turn(
        AD_HOC_SUPPORT,
        true,
        vec![HistoryEntry::merchant(
            "We sell hand-poured soy candles. Thanks!",
        )],
        None,
        vec![],
    )
    .await;
    assert!(
        out.text
            .starts_with("Noted, I'll remember that: We sell hand-poured soy candles."),
        "{}",
        out.text
    );
    // A request is not a fact: nothing to acknowledge.
    let out = turn(
        AD_HOC_SUPPORT,
        true,
        vec![HistoryEntry::merchant("Give me an overview of my store")],
        None,
        vec![],
    )
    .await;
    assert!(!out.text.contains("I'll remember"), "{}", out.text);
}

#[tokio::test]
async fn series_comparisons_and_best_sellers_come_with_their_charts() {
    for (question, kind, points) in [
        ("Can I see a daily sales chart?", ChartKind::Columns, 30),
        ("Compare this month with last month", ChartKind::Bars, 2),
        ("What are my best sellers this week?", ChartKind::Bars, 0),
    ] {
        let out = ask(AD_HOC_SUPPORT, question).await;
        assert_eq!(out.error, None);
        assert_eq!(out.ui_elements.len(), 1, "{question}: {out:?}");
        let element = &out.ui_elements[0];
        assert_eq!(element.kind, crate::ui_actions::CHART);
        assert!(
            out.text
                .contains(&format!("\n\n{}\n\n", element.placeholder())),
            "{question}: the chart stands on its own line: {}",
            out.text
        );
        let chart = element.chart.as_ref().expect("the chart's numbers");
        assert_eq!(chart.kind, kind, "{question}");
        if points > 0 {
            assert_eq!(chart.points.len(), points, "{question}: {chart:?}");
        } else {
            assert!(!chart.points.is_empty(), "{question}: {chart:?}");
        }
    }
    // The numbers of a daily series: one column a day, the revenue drawn
    // and shown as the text shows it.
    let out = ask(AD_HOC_SUPPORT, "Can I see a daily sales chart?").await;
    let chart = out.ui_elements[0].chart.clone().unwrap();
    let last = chart.points.last().unwrap();
    assert_eq!(last.label, "Thu 26 Nov");
    assert_eq!(last.value, 150.0);
    assert_eq!(last.display, "$150.00");
    assert_eq!(chart.value_heading, "Revenue (USD)");
    // A question with no series has no chart.
    let out = ask(AD_HOC_SUPPORT, "How many orders did I get last week?").await;
    assert!(out.ui_elements.is_empty(), "{out:?}");
}

#[tokio::test]
async fn figures_are_written_the_shops_way_with_orders_linked_to_its_admin() {
    let c = Catalog::embedded().unwrap();
    let merchant = MerchantContext {
        shop_name: Some("Bougies de Lyon".into()),
        shop_domain: Some("bougies.myshopify.com".into()),
        connected: true,
        money_format: Some(
            "<span class=money>{{amount_with_comma_separator}} &euro;</span>".into(),
        ),
        time_zone: Some("Pacific/Kiritimati".into()),
        admin_url: Some("https://bougies.myshopify.com/admin".into()),
        ..MerchantContext::default()
    };
    let format = merchant.shop_format();
    let tools = ToolContext::connected(Arc::new(FakeStore::default())).with_format(format);
    for (q, needles) in [
        (
            "Show me my recent orders",
            // The fixed store's orders were placed on 2 Nov after 07:00
            // UTC: the 3rd on Kiritimati's clock (UTC+14).
            &[
                "[#1005](https://bougies.myshopify.com/admin/orders/",
                " on 2026-11-03: 48,50 €",
            ][..],
        ),
        (
            "What was revenue between 2026-10-01 and 2026-10-15?",
            &["Revenue: 9.876,50 €", "Average order value: 82,30 €"][..],
        ),
    ] {
        let input = TurnInput {
            conversation_id: "c".into(),
            workflow: c.workflow(AD_HOC_SUPPORT).unwrap(),
            persona: c.persona(),
            merchant: merchant.clone(),
            facts: vec![],
            history: vec![HistoryEntry::merchant(q)],
            system_event: None,
            summary: None,
            today: today(),
        };
        let out = run_turn(
            &OfflineProvider::new(),
            &tools,
            input,
            &TurnConfig::default(),
            &|_| {},
            CancellationToken::new(),
        )
        .await;
        assert_eq!(out.error, None, "{q}");
        for n in needles {
            assert!(out.text.contains(n), "{q}: missing {n} in {}", out.text);
        }
        assert!(!out.text.contains("USD"), "{}", out.text);
    }
}
