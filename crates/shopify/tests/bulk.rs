#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Bulk operations: the JSONL parsers on fixtures in Shopify's documented
//! format, and the client against a fake Shopify (user errors, polling,
//! streamed downloads in batches, timeouts).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{FakeShopify, Reply, cost, shop};
use hirecj_domain::mirror::Money;
use hirecj_shopify::bulk::parse_jsonl;
use hirecj_shopify::{
    AdminClient, BulkError, BulkOperationStatus, BulkWait, CustomerParser, DownloadLimits,
    OrderParser, ProductParser, Secret,
};
use serde_json::json;

/// Two orders with their line items right after them (groupObjects), as
/// Shopify's bulk operations guide shows the format.
const GROUPED: &str = r##"{"id":"gid://shopify/Order/1001","name":"#1001","createdAt":"2026-11-01T10:00:00Z","processedAt":"2026-11-01T10:00:00Z","updatedAt":"2026-11-02T10:00:00Z","cancelledAt":null,"displayFinancialStatus":"PARTIALLY_REFUNDED","displayFulfillmentStatus":"FULFILLED","currencyCode":"USD","email":"ana@example.com","tags":["vip","gift"],"sourceName":"web","subtotalPriceSet":{"shopMoney":{"amount":"59.97"}},"totalPriceSet":{"shopMoney":{"amount":"66.92"}},"totalDiscountsSet":{"shopMoney":{"amount":"0.0"}},"totalTaxSet":{"shopMoney":{"amount":"0.0"}},"totalRefundedSet":{"shopMoney":{"amount":"19.99"}},"customer":{"id":"gid://shopify/Customer/77","displayName":"Ana Silva"},"refunds":[{"id":"gid://shopify/Refund/5","createdAt":"2026-11-03T09:00:00Z","note":"Wrong size","totalRefundedSet":{"shopMoney":{"amount":"19.99"}}}]}
{"id":"gid://shopify/LineItem/11","title":"Crew Tee","variantTitle":"M","sku":"TEE-M","quantity":3,"originalUnitPriceSet":{"shopMoney":{"amount":"19.99"}},"totalDiscountSet":{"shopMoney":{"amount":"0.0"}},"product":{"id":"gid://shopify/Product/9"},"variant":{"id":"gid://shopify/ProductVariant/99"},"__parentId":"gid://shopify/Order/1001"}
{"id":"gid://shopify/Order/1002","name":"#1002","createdAt":"2026-11-01T11:00:00Z","processedAt":null,"updatedAt":"2026-11-01T11:00:00Z","cancelledAt":null,"displayFinancialStatus":"PAID","displayFulfillmentStatus":"UNFULFILLED","currencyCode":"USD","email":null,"tags":[],"sourceName":"pos","subtotalPriceSet":{"shopMoney":{"amount":"0.30"}},"totalPriceSet":{"shopMoney":{"amount":"0.30"}},"totalDiscountsSet":{"shopMoney":{"amount":"0.125"}},"totalTaxSet":{"shopMoney":{"amount":"0.0"}},"totalRefundedSet":{"shopMoney":{"amount":"0.0"}},"customer":null,"refunds":[]}
{"id":"gid://shopify/LineItem/21","title":"Sticker","variantTitle":null,"sku":"","quantity":1,"originalUnitPriceSet":{"shopMoney":{"amount":"0.1"}},"totalDiscountSet":{"shopMoney":{"amount":"0.0"}},"product":null,"variant":null,"__parentId":"gid://shopify/Order/1002"}
{"id":"gid://shopify/LineItem/22","title":"Pin","variantTitle":null,"sku":"PIN","quantity":2,"originalUnitPriceSet":{"shopMoney":{"amount":"0.2"}},"totalDiscountSet":{"shopMoney":{"amount":"0.125"}},"product":{"id":"gid://shopify/Product/8"},"variant":{"id":"gid://shopify/ProductVariant/88"},"__parentId":"gid://shopify/Order/1002"}
"##;

fn order_line(id: u64) -> String {
    format!(
        r##"{{"id":"gid://shopify/Order/{id}","name":"#{id}","createdAt":"2026-11-01T10:00:00Z","updatedAt":"2026-11-01T10:00:00Z","currencyCode":"USD","totalPriceSet":{{"shopMoney":{{"amount":"10.00"}}}},"refunds":[]}}"##
    )
}

fn item_line(id: u64, parent: u64) -> String {
    format!(
        r##"{{"id":"gid://shopify/LineItem/{id}","title":"T","quantity":1,"originalUnitPriceSet":{{"shopMoney":{{"amount":"10.00"}}}},"__parentId":"gid://shopify/Order/{parent}"}}"##
    )
}

#[test]
fn grouped_orders_carry_their_line_items_refunds_and_exact_money() {
    let orders = parse_jsonl(&mut OrderParser::new(), GROUPED).unwrap();
    assert_eq!(orders.len(), 2);
    let a = &orders[0];
    assert_eq!(a.id, 1001);
    assert_eq!(a.name, "#1001");
    assert_eq!(a.customer_id, Some(77));
    assert_eq!(a.customer_name.as_deref(), Some("Ana Silva"));
    assert_eq!(a.tags, vec!["vip".to_string(), "gift".to_string()]);
    assert_eq!(a.source_name.as_deref(), Some("web"));
    assert_eq!(a.financial_status.as_deref(), Some("PARTIALLY_REFUNDED"));
    assert_eq!(a.total, Money::from_cents(6692));
    assert_eq!(a.total_refunded, Money::from_cents(1999));
    assert_eq!(a.refunds.len(), 1);
    assert_eq!(a.refunds[0].id, 5);
    assert_eq!(a.refunds[0].note.as_deref(), Some("Wrong size"));
    assert_eq!(
        a.refunds[0].created_at,
        Utc.with_ymd_and_hms(2026, 11, 3, 9, 0, 0).unwrap()
    );
    assert_eq!(a.line_items.len(), 1);
    let l = &a.line_items[0];
    assert_eq!(
        (l.id, l.product_id, l.variant_id, l.quantity),
        (11, Some(9), Some(99), 3)
    );
    assert_eq!(l.variant_title.as_deref(), Some("M"));
    assert_eq!(l.price, Money::from_micros(19_990_000));

    let b = &orders[1];
    assert_eq!(b.customer_id, None);
    assert_eq!(b.email, None);
    assert_eq!(b.processed_at, None);
    // 0.1 + 0.2 is exactly 0.3 here; three decimals survive.
    let lines: Money = b.line_items.iter().map(|l| l.price).sum();
    assert_eq!(lines, Money::from_micros(300_000));
    assert_eq!(b.total, Money::from_micros(300_000));
    assert_eq!(b.total_discounts, Money::from_micros(125_000));
    assert_eq!(b.line_items[1].discount, Money::from_micros(125_000));
    assert_eq!(b.line_items[0].sku, None, "empty strings are absent");
    assert_eq!(b.line_items[0].product_id, None);
}

#[test]
fn children_out_of_place_are_attached_or_kept_never_lost() {
    let text = [
        item_line(31, 3), // before its parent
        order_line(1),
        item_line(11, 1),
        order_line(2),
        item_line(12, 1), // its order was already delivered
        order_line(3),
        item_line(32, 3),
        item_line(99, 9), // its order never comes
    ]
    .join("\n");
    let mut parser = OrderParser::new();
    let orders = parse_jsonl(&mut parser, &text).unwrap();
    let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    let items = |i: usize| -> Vec<i64> { orders[i].line_items.iter().map(|l| l.id).collect() };
    assert_eq!(items(0), vec![11]);
    assert_eq!(items(1), Vec::<i64>::new());
    assert_eq!(items(2), vec![31, 32]);
    let mut late: Vec<(i64, i64)> = parser
        .late_line_items()
        .iter()
        .map(|(o, l)| (*o, l.id))
        .collect();
    late.sort_unstable();
    assert_eq!(late, vec![(1, 12), (9, 99)]);
}

#[test]
fn a_bad_line_is_an_error_naming_it() {
    let text = format!("{}\n{}\n{{not json\n", order_line(1), item_line(2, 1));
    let err = parse_jsonl(&mut OrderParser::new(), &text).unwrap_err();
    assert!(matches!(err, BulkError::Parse { line: 3, .. }), "{err}");
    assert!(err.to_string().contains("line 3"), "{err}");

    let wrong_money = r##"{"id":"gid://shopify/Order/1","name":"#1","createdAt":"2026-11-01T10:00:00Z","updatedAt":"2026-11-01T10:00:00Z","currencyCode":"USD","totalPriceSet":{"shopMoney":{"amount":1.5}}}"##;
    let err = parse_jsonl(&mut OrderParser::new(), wrong_money).unwrap_err();
    assert!(matches!(err, BulkError::Parse { line: 1, .. }), "{err}");

    let wrong_gid = item_line(1, 1).replace("gid://shopify/Order/1", "gid://shopify/Product/1");
    let err = parse_jsonl(
        &mut OrderParser::new(),
        &format!("{}\n{wrong_gid}", order_line(1)),
    )
    .unwrap_err();
    assert!(matches!(err, BulkError::Parse { line: 2, .. }), "{err}");

    let err = parse_jsonl(&mut OrderParser::new(), "[1,2]").unwrap_err();
    assert!(matches!(err, BulkError::Parse { line: 1, .. }), "{err}");
}

#[test]
fn products_and_customers() {
    let products = parse_jsonl(
        &mut ProductParser,
        r##"{"id":"gid://shopify/Product/9","title":"Crew Tee","status":"ACTIVE","vendor":"Cool","productType":"","createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-02-01T00:00:00Z"}"##,
    )
    .unwrap();
    assert_eq!(products[0].id, 9);
    assert_eq!(products[0].vendor.as_deref(), Some("Cool"));
    assert_eq!(products[0].product_type, None);
    let customers = parse_jsonl(
        &mut CustomerParser,
        r##"{"id":"gid://shopify/Customer/7","displayName":"Ana Silva","defaultEmailAddress":{"emailAddress":"ana@example.com"},"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-02-01T00:00:00Z","numberOfOrders":"12","amountSpent":{"amount":"1234.56","currencyCode":"USD"}}"##,
    )
    .unwrap();
    assert_eq!(customers[0].orders_count, 12);
    assert_eq!(customers[0].amount_spent, Money::from_cents(123_456));
    assert_eq!(customers[0].email.as_deref(), Some("ana@example.com"));
}

fn client(fake: &FakeShopify) -> AdminClient {
    AdminClient::new(AdminClient::http_client().unwrap(), &fake.config())
}

fn token() -> Secret {
    Secret::new("shpat_test_token")
}

fn operation(status: &str, url: Option<String>) -> serde_json::Value {
    json!({"id": "gid://shopify/BulkOperation/7", "status": status, "errorCode": null,
        "createdAt": "2026-11-28T10:00:00Z", "completedAt": null, "objectCount": "5",
        "rootObjectCount": "2", "fileSize": null, "url": url, "partialDataUrl": null})
}

#[tokio::test]
async fn user_errors_are_typed() {
    let fake = FakeShopify::start(|_, _| {
        Reply::json(
            200,
            &json!({"data": {"bulkOperationRunQuery": {"bulkOperation": null, "userErrors": [
                {"field": ["query"], "message": "A bulk query operation for this app and shop is already in progress.", "code": "OPERATION_IN_PROGRESS"}
            ]}}, "extensions": cost(10.0, 990.0, 100.0)}),
        )
    })
    .await;
    let err = client(&fake)
        .run_bulk_query(&shop(), &token(), "{ products { edges { node { id } } } }")
        .await
        .unwrap_err();
    assert!(err.is_in_progress(), "{err}");
    let sent = &fake.requests()[0];
    assert_eq!(sent.variables()["groupObjects"], true);
    assert!(sent.query().contains("bulkOperationRunQuery"));
}

#[tokio::test]
async fn polls_until_completed_then_streams_batches() {
    let fake = FakeShopify::start(|req, _| {
        if req.path.ends_with("/result.jsonl") {
            return Reply {
                status: 200,
                headers: vec![("content-type".into(), "application/jsonl".into())],
                body: GROUPED.to_string(),
            };
        }
        let polls = req.json["variables"]["id"].is_string();
        assert!(polls, "only polls here");
        Reply::json(
            200,
            &json!({"data": {"bulkOperation": operation("RUNNING", None)}}),
        )
    })
    .await;
    let c = client(&fake);
    let wait = BulkWait {
        poll_interval: Duration::from_millis(10),
        timeout: Duration::from_millis(100),
    };
    let err = c
        .wait_for_bulk_operation(&shop(), &token(), "gid://shopify/BulkOperation/7", wait)
        .await
        .unwrap_err();
    assert!(matches!(err, BulkError::WaitTimeout(_)), "{err}");
    assert!(fake.count() >= 3, "polled several times");

    let url = format!("http://{}/storage/result.jsonl", fake.addr);
    let batches: Arc<Mutex<Vec<Vec<i64>>>> = Arc::default();
    let seen = batches.clone();
    let mut parser = OrderParser::new();
    let summary = c
        .download_jsonl(&url, &mut parser, 1, DownloadLimits::default(), |batch| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push(batch.iter().map(|o| o.id).collect());
                Ok(())
            }
        })
        .await
        .unwrap();
    assert_eq!(summary.lines, 5);
    assert_eq!(summary.records, 2);
    assert_eq!(*batches.lock().unwrap(), vec![vec![1001], vec![1002]]);
    let token_sent = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(".jsonl"))
        .any(|r| r.header("x-shopify-access-token").is_some());
    assert!(!token_sent, "the result URL gets no access token");
}

#[tokio::test]
async fn failed_operations_and_broken_downloads_are_errors() {
    let fake = FakeShopify::start(|req, _| {
        if req.path.ends_with("/missing.jsonl") {
            return Reply::json(404, &json!({}));
        }
        let mut op = operation("FAILED", None);
        op["errorCode"] = json!("ACCESS_DENIED");
        Reply::json(200, &json!({"data": {"bulkOperation": op}}))
    })
    .await;
    let c = client(&fake);
    let err = c
        .wait_for_bulk_operation(
            &shop(),
            &token(),
            "gid://shopify/BulkOperation/7",
            BulkWait::default(),
        )
        .await
        .unwrap_err();
    match err {
        BulkError::Failed {
            status, error_code, ..
        } => {
            assert_eq!(status, BulkOperationStatus::Failed);
            assert_eq!(error_code.as_deref(), Some("ACCESS_DENIED"));
        }
        other => panic!("{other}"),
    }
    let url = format!("http://{}/storage/missing.jsonl", fake.addr);
    let err = c
        .download_jsonl(
            &url,
            &mut ProductParser,
            10,
            DownloadLimits::default(),
            |_| async { Ok(()) },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BulkError::Download(_)), "{err}");
}

/// Serves `body` over raw HTTP/1.1 in chunks of `size` bytes, then
/// `stall`s before ending (or not at all).
async fn raw_server(body: String, size: usize, stall: Duration) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = socket.read(&mut buf).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/jsonl\r\ntransfer-encoding: chunked\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        for part in body.as_bytes().chunks(size) {
            socket
                .write_all(format!("{:x}\r\n", part.len()).as_bytes())
                .await
                .unwrap();
            socket.write_all(part).await.unwrap();
            socket.write_all(b"\r\n").await.unwrap();
            socket.flush().await.unwrap();
        }
        tokio::time::sleep(stall).await;
        let _ = socket.write_all(b"0\r\n\r\n").await;
    });
    addr
}

#[tokio::test]
async fn lines_split_across_chunks_are_put_back_together() {
    // No newline after the last line; chunks of 7 bytes cut every line.
    let body = GROUPED.trim_end().to_string();
    let addr = raw_server(body, 7, Duration::ZERO).await;
    let fake = FakeShopify::start(|_, _| Reply::json(200, &json!({}))).await;
    let mut parser = OrderParser::new();
    let mut got = Vec::new();
    let summary = client(&fake)
        .download_jsonl(
            &format!("http://{addr}/x.jsonl"),
            &mut parser,
            10,
            DownloadLimits::default(),
            |batch| {
                got.extend(batch);
                async { Ok(()) }
            },
        )
        .await
        .unwrap();
    assert_eq!(summary.lines, 5);
    assert_eq!(got, parse_jsonl(&mut OrderParser::new(), GROUPED).unwrap());

    // A line longer than the cap is refused.
    let addr = raw_server(GROUPED.to_string(), 64, Duration::ZERO).await;
    let limits = DownloadLimits {
        max_line_bytes: 100,
        ..DownloadLimits::default()
    };
    let err = client(&fake)
        .download_jsonl(
            &format!("http://{addr}/x.jsonl"),
            &mut OrderParser::new(),
            10,
            limits,
            |_| async { Ok(()) },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BulkError::TooLarge(100)), "{err}");
}

/// A server that sends a first line, then stalls: the idle timeout ends
/// the download.
#[tokio::test]
async fn a_stalled_download_times_out() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 2048];
        let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
        let line = format!("{}\n", order_line(1));
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/jsonl\r\ntransfer-encoding: chunked\r\n\r\n";
        let chunk = format!("{:x}\r\n{line}\r\n", line.len());
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(chunk.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let fake = FakeShopify::start(|_, _| Reply::json(200, &json!({}))).await;
    let limits = DownloadLimits {
        idle_timeout: Duration::from_millis(200),
        ..DownloadLimits::default()
    };
    let started = std::time::Instant::now();
    let err = client(&fake)
        .download_jsonl(
            &format!("http://{addr}/x.jsonl"),
            &mut OrderParser::new(),
            10,
            limits,
            |_| async { Ok(()) },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BulkError::DownloadTimeout), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
