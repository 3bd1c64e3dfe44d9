//! HireCJ's bulk client (`hirecj_shopify::bulk`) against the development
//! store over loopback: run the mirror's bulk queries, poll, stream the
//! JSONL, and compare the parsed records with the store's own data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use axum::Router;
use chrono::{Duration, Utc};
use hirecj_devstore::{DevStore, DevStoreConfig, FinancialStatus, Order};
use hirecj_shopify::bulk::{
    CUSTOMERS_BULK_QUERY, PRODUCTS_BULK_QUERY, orders_bulk_query, orders_visible_since,
};
use hirecj_shopify::{
    AdminClient, BulkOperation, BulkWait, CustomerParser, DownloadLimits, JsonlParser, OrderParser,
    ProductParser, Secret, ShopDomain, ShopifyConfig,
};

const SHOP: &str = "cool-shirts.myshopify.com";
const SCOPES: &str = "read_orders,read_products,read_customers";

struct Harness {
    store: DevStore,
    client: AdminClient,
    shop: ShopDomain,
    token: Secret,
}

async fn spawn(shop: &str) -> Harness {
    let store = DevStore::new(DevStoreConfig::default());
    let app = Router::new().nest("/devstore", store.clone().router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut config = ShopifyConfig::new("id", "secret", "http://127.0.0.1/cb");
    config.admin_base_url = format!("http://{addr}/devstore/{{shop}}");
    let client = AdminClient::new(AdminClient::http_client().unwrap(), &config);
    let token = Secret::new(store.issue_access_token(shop, SCOPES).unwrap());
    Harness {
        store,
        client,
        shop: ShopDomain::parse(shop).unwrap(),
        token,
    }
}

const WAIT: BulkWait = BulkWait {
    poll_interval: StdDuration::from_millis(20),
    timeout: StdDuration::from_secs(600),
};

impl Harness {
    async fn run(&self, query: &str) -> BulkOperation {
        let started = self
            .client
            .run_bulk_query(&self.shop, &self.token, query)
            .await
            .unwrap();
        self.client
            .wait_for_bulk_operation(&self.shop, &self.token, &started.id, WAIT)
            .await
            .unwrap()
    }

    async fn download<P: JsonlParser>(&self, op: &BulkOperation, parser: &mut P) -> Vec<P::Record>
    where
        P::Record: Send + 'static,
    {
        let url = op.url.clone().unwrap();
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = out.clone();
        let summary = self
            .client
            .download_jsonl(&url, parser, 500, DownloadLimits::default(), |batch| {
                assert!(batch.len() <= 500);
                sink.lock().unwrap().extend(batch);
                async { Ok(()) }
            })
            .await
            .unwrap();
        assert_eq!(summary.lines, op.object_count);
        assert_eq!(Some(summary.bytes), op.file_size);
        std::mem::take(&mut *out.lock().unwrap())
    }
}

fn micros(cents: i64) -> i64 {
    cents * 10_000
}

fn financial(s: FinancialStatus) -> &'static str {
    match s {
        FinancialStatus::Authorized => "AUTHORIZED",
        FinancialStatus::Paid => "PAID",
        FinancialStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
        FinancialStatus::Pending => "PENDING",
        FinancialStatus::Refunded => "REFUNDED",
        FinancialStatus::Voided => "VOIDED",
    }
}

#[tokio::test]
async fn the_mirror_backfill_reads_exactly_the_stores_orders_products_and_customers() {
    let h = spawn(SHOP).await;
    let ds = h.store.dataset(SHOP);
    let zone = ds.shop.iana_timezone.parse().unwrap();
    let since = orders_visible_since(Utc::now(), zone, &SCOPES.split(',').collect::<Vec<_>>());
    assert!(since.is_some(), "no read_all_orders: the 60-day cut");

    let op = h.run(&orders_bulk_query(since)).await;
    let mut parser = OrderParser::new();
    let orders = h.download(&op, &mut parser).await;
    assert!(parser.late_line_items().is_empty(), "grouped output");
    assert_eq!(orders.len() as u64, op.root_object_count);

    let now = op.created_at;
    let expected: Vec<&Order> = ds
        .visible_orders(now)
        .filter(|o| o.created_at >= now - Duration::days(60))
        .collect();
    assert_eq!(orders.len(), expected.len());
    let mut refunds = 0;
    for (got, o) in orders.iter().zip(&expected) {
        assert_eq!(got.id as u64, o.id);
        assert_eq!(got.name, o.name());
        assert_eq!(got.created_at, o.created_at);
        assert_eq!(got.updated_at, o.updated_at);
        assert_eq!(got.cancelled_at, o.cancelled_at);
        assert_eq!(got.currency, ds.shop.currency_code);
        assert_eq!(
            got.financial_status.as_deref(),
            Some(financial(o.financial_status))
        );
        assert_eq!(got.total.micros(), micros(o.total));
        assert_eq!(got.subtotal.micros(), micros(o.subtotal));
        assert_eq!(got.total_tax.micros(), micros(o.tax));
        assert_eq!(got.total_discounts.micros(), micros(o.total_discounts));
        assert_eq!(got.total_refunded.micros(), micros(o.total_refunded));
        assert_eq!(got.customer_id.map(|c| c as u64), o.customer_id);
        assert_eq!(got.email.as_deref(), Some(o.email.as_str()));
        assert_eq!(got.tags, o.tags());
        assert_eq!(got.source_name.as_deref(), Some(o.source_name()));
        assert_eq!(got.line_items.len(), o.line_items.len());
        for ((l, e), discount) in got
            .line_items
            .iter()
            .zip(&o.line_items)
            .zip(o.line_discounts())
        {
            assert_eq!(l.id as u64, e.id);
            assert_eq!(l.product_id.map(|p| p as u64), Some(e.product_id));
            assert_eq!(l.variant_id.map(|v| v as u64), Some(e.variant_id));
            assert_eq!(l.title, e.title);
            assert_eq!(l.variant_title, e.variant_title);
            assert_eq!(l.sku.as_deref(), Some(e.sku.as_str()));
            assert_eq!(l.quantity, e.quantity);
            assert_eq!(l.price.micros(), micros(e.unit_price));
            assert_eq!(l.discount.micros(), micros(discount));
        }
        let discounts: i64 = got.line_items.iter().map(|l| l.discount.micros()).sum();
        assert_eq!(discounts, micros(o.total_discounts));
        let want = o.refunds();
        assert_eq!(got.refunds.len(), want.len());
        for (r, e) in got.refunds.iter().zip(&want) {
            assert_eq!(r.id as u64, e.id);
            assert_eq!(r.amount.micros(), micros(e.amount));
            assert_eq!(r.note, e.note);
            assert_eq!(r.created_at, e.created_at);
            refunds += 1;
        }
    }
    assert!(refunds > 0, "some orders were refunded");

    let current = h
        .client
        .current_bulk_operation(&h.shop, &h.token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.id, op.id);
    assert_eq!(current.object_count, op.object_count);
    assert!(
        h.client
            .bulk_operation(&h.shop, &h.token, "gid://shopify/BulkOperation/1")
            .await
            .unwrap()
            .is_none()
    );

    let op = h.run(PRODUCTS_BULK_QUERY).await;
    let products = h.download(&op, &mut ProductParser).await;
    assert_eq!(products.len(), ds.products.len());
    for (got, p) in products.iter().zip(&ds.products) {
        assert_eq!(got.id as u64, p.id);
        assert_eq!(got.title, p.title);
        assert_eq!(got.vendor.as_deref(), Some(p.vendor.as_str()));
        assert_eq!(got.product_type.as_deref(), Some(p.product_type.as_str()));
        assert_eq!(got.updated_at, p.updated_at);
    }

    let op = h.run(CUSTOMERS_BULK_QUERY).await;
    let customers = h.download(&op, &mut CustomerParser).await;
    assert_eq!(customers.len(), ds.customers.len());
    let now = op.created_at;
    let mut spent: HashMap<u64, (i64, i64)> = HashMap::new();
    for o in ds.visible_orders(now) {
        if let Some(c) = o.customer_id {
            let e = spent.entry(c).or_default();
            e.0 += 1;
            e.1 += o.total - o.total_refunded;
        }
    }
    for (got, c) in customers.iter().zip(&ds.customers) {
        assert_eq!(got.id as u64, c.id);
        assert_eq!(got.email.as_deref(), Some(c.email.as_str()));
        assert_eq!(got.name.as_deref(), Some(c.display_name().as_str()));
        let (count, cents) = spent.get(&c.id).copied().unwrap_or_default();
        assert_eq!(got.orders_count, count);
        assert_eq!(got.amount_spent.micros(), micros(cents));
    }
}

/// The whole year of a large shop (about 100,000 orders) through the bulk
/// path; slow in debug builds, so run on demand:
/// `cargo test --release -p hirecj-devstore --test bulk_client -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn a_large_shop_backfills_a_year_of_orders() {
    let shop = "bench-large.myshopify.com";
    let started = std::time::Instant::now();
    let h = spawn(shop).await;
    let ds = h.store.dataset(shop);
    let generated = started.elapsed();
    let op = h.run(&orders_bulk_query(None)).await;
    let ran = started.elapsed();
    let mut parser = OrderParser::new();
    let orders = h.download(&op, &mut parser).await;
    let total = started.elapsed();
    eprintln!(
        "large shop: {} orders; generated in {generated:?}, bulk operation done at {ran:?}, downloaded and parsed at {total:?}; {} bytes",
        orders.len(),
        op.file_size.unwrap_or(0)
    );
    assert_eq!(orders.len(), ds.visible_orders(op.created_at).count());
}
