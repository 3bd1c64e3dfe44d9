//! The store mirror: each merchant's orders, line items, refunds, products
//! and customers, kept by HireCJ so that CJ's store tools answer by SQL
//! instead of paging through Shopify per question.
//!
//! * **Sync state** (`mirror_shops`): the shop's zone and currency, its
//!   backfill (claimed under a lease by exactly one replica, with resumable
//!   progress) and its freshness (last webhook event, last reconcile).
//! * **Writes** are idempotent and order-safe: a record is applied only when
//!   its `updated_at` is not older than the stored one, so duplicates and
//!   out-of-order deliveries are harmless; deletions leave tombstones that
//!   older updates do not pass. Writes need the shop registered
//!   ([`Store::mirror_register_shop`]) and are serialised per shop on its
//!   sync row, so a shop deleted at uninstall is not brought back by a
//!   late webhook.
//! * **Rollups** (`mirror_daily_sales`, `mirror_daily_products`,
//!   `mirror_daily_statuses`) hold per shop day what the reports sum; every
//!   order write recomputes the rollup rows of each day it touched (the
//!   order's old and new day) from the base rows, in the same transaction,
//!   so they are always exact.
//! * **Queries** take shop days `from..=to` (the shop's own midnight, its
//!   IANA zone) and read the rollups where they can, so a year costs a few
//!   hundred rows.
//!
//! Times are stored as integer unix microseconds, days as days since
//! 1970-01-01 in the shop's zone, money as integer millionths (see
//! `migrations/*/0004_store_mirror.sql`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use hirecj_domain::mirror::{
    BackfillState, MirrorCounts, MirrorCustomer, MirrorDaySales, MirrorLineItem, MirrorOrder,
    MirrorOrdersByStatus, MirrorProduct, MirrorProductSales, MirrorRefund, MirrorRefundEntry,
    MirrorRefunds, MirrorRepeatCustomers, MirrorSales, MirrorSeriesPoint, MirrorStatusCount,
    MirrorSync, MirrorTopCustomer, MirrorTopProducts, Money, SeriesBucket, ShopTimeZone,
    line_refund,
};

use crate::row::RowExt;
use crate::{Result, Store, StoreError, from_us, on_pool, opt_from_us, us};

/// Below this many days a sales report lists every day, zeros included
/// (as the live report does).
pub const MIRROR_DENSE_DAYS: i64 = 93;

/// Orders per multi-row statement (23 columns each).
const ORDER_CHUNK: usize = 400;
/// Line items or refunds per multi-row statement.
const CHILD_CHUNK: usize = 1_000;
/// Ids per `IN (…)` list.
const ID_CHUNK: usize = 500;
/// Touched days closer than this are recomputed as one range.
const DAY_RUN_GAP: i64 = 7;
/// The customer reports over a range of at most this many orders read the
/// range's orders; longer ranges go through the per-customer rollup.
const DIRECT_ORDERS: i64 = 20_000;
/// The longest error text kept for a failed backfill.
const MAX_ERROR_CHARS: usize = 2_000;

/// Days from 0001-01-01 to 1970-01-01, as chrono counts them.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// What the mirror keeps of a shop, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorKind {
    /// Orders (with their lines and refunds).
    Orders,
    /// Products.
    Products,
    /// Customers.
    Customers,
}

/// What a batch of writes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertOutcome {
    /// Records written (new, or not older than the stored one).
    pub applied: u64,
    /// Records skipped because the mirror (or the same batch) already held
    /// a newer version, or a newer deletion.
    pub stale: u64,
}

/// A shop day as stored: days since 1970-01-01.
pub(crate) fn day_number(day: NaiveDate) -> i64 {
    i64::from(day.num_days_from_ce() - EPOCH_DAYS_FROM_CE)
}

/// The month of a stored day: the day number of its first day.
fn month_number(day: i64) -> Result<i64> {
    let d = day_from_number(day)?;
    Ok(day_number(d.with_day(1).unwrap_or(d)))
}

/// The last day of the month whose first day is `month`.
fn month_end(month: i64) -> Result<i64> {
    let first = day_from_number(month)?;
    let next = first
        .checked_add_months(Months::new(1))
        .ok_or_else(|| StoreError::Corrupt(format!("mirror month {month}")))?;
    Ok(day_number(next) - 1)
}

/// Splits shop days `from..=to` into leading days, whole months and
/// trailing days, as stored numbers (months by their first day); an empty
/// part is an inverted range.
fn split_months(from: NaiveDate, to: NaiveDate) -> [(i64, i64); 3] {
    const EMPTY: (i64, i64) = (1, 0);
    let first_of = |d: NaiveDate| d.with_day(1).unwrap_or(d);
    let first_full = if from.day() == 1 {
        Some(from)
    } else {
        first_of(from).checked_add_months(Months::new(1))
    };
    let end_exclusive = match to.succ_opt() {
        Some(after) if after.day() == 1 => Some(after),
        _ => Some(first_of(to)),
    };
    match (first_full, end_exclusive) {
        (Some(first), Some(end)) if first < end && from <= to => {
            let last_month = end.pred_opt().map_or(first, first_of);
            [
                (day_number(from), day_number(first) - 1),
                (day_number(first), day_number(last_month)),
                (day_number(end), day_number(to)),
            ]
        }
        _ => [(day_number(from), day_number(to)), EMPTY, EMPTY],
    }
}

/// The shop day a stored day number names.
fn day_from_number(n: i64) -> Result<NaiveDate> {
    i32::try_from(n)
        .ok()
        .and_then(|n| n.checked_add(EPOCH_DAYS_FROM_CE))
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .ok_or_else(|| StoreError::Corrupt(format!("mirror day {n}")))
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// How an email is compared: trimmed and lower-cased.
fn email_norm(email: Option<&str>) -> Option<String> {
    email
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty())
}

/// Sorted touched days grouped into ranges to recompute.
fn day_runs(days: &BTreeSet<i64>) -> Vec<(i64, i64)> {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &d in days {
        match runs.last_mut() {
            Some((_, end)) if d - *end <= DAY_RUN_GAP => *end = d,
            _ => runs.push((d, d)),
        }
    }
    runs
}

/// The newest record per id (the later one on equal times), and how many
/// were dropped for a newer one in the same batch.
fn newest_by_id<T>(
    items: &[T],
    id: impl Fn(&T) -> i64,
    updated: impl Fn(&T) -> DateTime<Utc>,
) -> (Vec<&T>, u64) {
    let mut by_id: BTreeMap<i64, &T> = BTreeMap::new();
    for item in items {
        match by_id.get(&id(item)) {
            Some(kept) if updated(kept) > updated(item) => {}
            _ => {
                by_id.insert(id(item), item);
            }
        }
    }
    let dropped = (items.len() - by_id.len()) as u64;
    (by_id.into_values().collect(), dropped)
}

/// Locks a shop's mirror for one write transaction (PostgreSQL: its sync
/// row, so writes, rollup recomputes and deletions of one shop never
/// interleave; SQLite: the database, as the first statement makes the
/// transaction a writer) and reads its zone. No row: the shop is not
/// registered.
const LOCK_SHOP_SQL: &str =
    "UPDATE mirror_shops SET last_write_at = $2 WHERE shop = $1 RETURNING time_zone";

/// Makes customer `$2` a tombstone without personal fields, updated at `$3`
/// and deleted at `$4`, unless the stored customer is newer.
const TOMBSTONE_CUSTOMER_SQL: &str = "INSERT INTO mirror_customers (shop, id, name, email,
       email_norm, created_at, updated_at, orders_count, amount_spent, deleted_at)
     VALUES ($1, $2, NULL, NULL, NULL, $4, $3, 0, 0, $4)
     ON CONFLICT (shop, id) DO UPDATE SET
       name = NULL, email = NULL, email_norm = NULL,
       updated_at = excluded.updated_at, deleted_at = excluded.deleted_at
     WHERE mirror_customers.updated_at <= excluded.updated_at";

const SYNC_COLUMNS: &str =
    "shop, time_zone, currency, money_format, state, owner, lease_until, bulk_operation_id,
    phase, orders_mirrored, objects_mirrored, started_at, completed_at, covers_since,
    last_event_at, last_reconcile_at, last_error, updated_at";

const ORDER_COLUMNS: &str = "id, name, created_at, processed_at, updated_at, cancelled_at,
    closed_at, financial_status, fulfillment_status, currency, subtotal, total, total_discounts, total_tax,
    total_refunded, customer_id, email, customer_name, tags, source_name";

fn sync_from(r: &impl RowExt) -> Result<MirrorSync> {
    let zone = r.text("time_zone")?;
    let state = r.text("state")?;
    Ok(MirrorSync {
        shop: r.text("shop")?,
        time_zone: zone
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
        currency: r.opt_text("currency")?,
        money_format: r.opt_text("money_format")?,
        state: BackfillState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("backfill state {state:?}")))?,
        owner: r.opt_text("owner")?,
        lease_until: opt_from_us(r.opt_int("lease_until")?)?,
        bulk_operation_id: r.opt_text("bulk_operation_id")?,
        phase: r.opt_text("phase")?,
        orders_mirrored: r.int("orders_mirrored")?,
        objects_mirrored: r.int("objects_mirrored")?,
        started_at: opt_from_us(r.opt_int("started_at")?)?,
        completed_at: opt_from_us(r.opt_int("completed_at")?)?,
        covers_since: opt_from_us(r.opt_int("covers_since")?)?,
        last_event_at: opt_from_us(r.opt_int("last_event_at")?)?,
        last_reconcile_at: opt_from_us(r.opt_int("last_reconcile_at")?)?,
        last_error: r.opt_text("last_error")?,
        updated_at: from_us(r.int("updated_at")?)?,
    })
}

fn order_from(r: &impl RowExt) -> Result<MirrorOrder> {
    let tags = r.text("tags")?;
    Ok(MirrorOrder {
        id: r.int("id")?,
        name: r.text("name")?,
        created_at: from_us(r.int("created_at")?)?,
        processed_at: opt_from_us(r.opt_int("processed_at")?)?,
        updated_at: from_us(r.int("updated_at")?)?,
        cancelled_at: opt_from_us(r.opt_int("cancelled_at")?)?,
        closed_at: opt_from_us(r.opt_int("closed_at")?)?,
        financial_status: r.opt_text("financial_status")?,
        fulfillment_status: r.opt_text("fulfillment_status")?,
        currency: r.text("currency")?,
        subtotal: Money::from_micros(r.int("subtotal")?),
        total: Money::from_micros(r.int("total")?),
        total_discounts: Money::from_micros(r.int("total_discounts")?),
        total_tax: Money::from_micros(r.int("total_tax")?),
        total_refunded: Money::from_micros(r.int("total_refunded")?),
        customer_id: r.opt_int("customer_id")?,
        email: r.opt_text("email")?,
        customer_name: r.opt_text("customer_name")?,
        tags: serde_json::from_str(&tags)
            .map_err(|e| StoreError::Corrupt(format!("order tags: {e}")))?,
        source_name: r.opt_text("source_name")?,
        line_items: Vec::new(),
        refunds: Vec::new(),
    })
}

fn line_item_from(r: &impl RowExt) -> Result<MirrorLineItem> {
    let quantity = r.int("quantity")?;
    Ok(MirrorLineItem {
        id: r.int("id")?,
        product_id: r.opt_int("product_id")?,
        variant_id: r.opt_int("variant_id")?,
        title: r.text("title")?,
        variant_title: r.opt_text("variant_title")?,
        sku: r.opt_text("sku")?,
        quantity,
        current_quantity: r.opt_int("current_quantity")?.unwrap_or(quantity),
        price: Money::from_micros(r.int("price")?),
        discount: Money::from_micros(r.int("discount")?),
    })
}

/// A customer's (id, orders, revenue) from a report row.
fn customer_spend_from(r: &impl RowExt) -> Result<(i64, i64, i64)> {
    Ok((r.int("customer_id")?, r.int("orders")?, r.int("revenue")?))
}

fn refund_from(r: &impl RowExt) -> Result<MirrorRefund> {
    Ok(MirrorRefund {
        id: r.int("id")?,
        created_at: from_us(r.int("created_at")?)?,
        amount: Money::from_micros(r.int("amount")?),
        note: r.opt_text("note")?,
    })
}

fn customer_from(r: &impl RowExt) -> Result<MirrorCustomer> {
    Ok(MirrorCustomer {
        id: r.int("id")?,
        name: r.opt_text("name")?,
        email: r.opt_text("email")?,
        created_at: from_us(r.int("created_at")?)?,
        updated_at: from_us(r.int("updated_at")?)?,
        orders_count: r.int("orders_count")?,
        amount_spent: Money::from_micros(r.int("amount_spent")?),
    })
}

/// Per-day sales rows read from the rollup.
struct DayRow {
    day: NaiveDate,
    orders: u64,
    cancelled: u64,
    revenue: Money,
    refunded: Money,
}

/// Recomputes the sales and status rollup rows of shop days `$2..=$3` from
/// the base rows (product rows: [`recompute_rollups!`]).
/// The open-order rule: neither cancelled nor closed.
const ROLLUP_SQL: [&str; 4] = [
    "DELETE FROM mirror_daily_sales WHERE shop = $1 AND day BETWEEN $2 AND $3",
    "INSERT INTO mirror_daily_sales
       (shop, day, orders, cancelled_orders, open_orders, revenue, refunded)
     SELECT shop, created_day, COUNT(*),
       CAST(SUM(CASE WHEN cancelled_at IS NULL THEN 0 ELSE 1 END) AS BIGINT),
       CAST(SUM(CASE WHEN cancelled_at IS NULL AND closed_at IS NULL THEN 1 ELSE 0 END)
         AS BIGINT),
       CAST(SUM(total) AS BIGINT), CAST(SUM(total_refunded) AS BIGINT)
     FROM mirror_orders WHERE shop = $1 AND created_day BETWEEN $2 AND $3
     GROUP BY shop, created_day",
    "DELETE FROM mirror_daily_statuses WHERE shop = $1 AND day BETWEEN $2 AND $3",
    "INSERT INTO mirror_daily_statuses (shop, day, financial_status, fulfillment_status, orders)
     SELECT shop, created_day, COALESCE(financial_status, ''), COALESCE(fulfillment_status, ''),
       COUNT(*)
     FROM mirror_orders WHERE shop = $1 AND created_day BETWEEN $2 AND $3
     GROUP BY shop, created_day, COALESCE(financial_status, ''), COALESCE(fulfillment_status, '')",
];

/// The lines of the orders placed on shop days `$2..=$3`, for the daily
/// product rollup (computed in Rust: one plan whatever the statistics).
const PRODUCT_LINES_SQL: &str = "SELECT o.created_day AS day, o.created_month AS month,
       o.id AS order_id, o.created_at AS created_at, li.position AS position,
       li.product_id AS product_id, li.title AS title, li.quantity AS quantity,
       li.current_quantity AS current_quantity, li.price AS price, li.discount AS discount
     FROM mirror_orders o
     JOIN mirror_line_items li ON li.shop = o.shop AND li.order_id = o.id
     WHERE o.shop = $1 AND o.created_day BETWEEN $2 AND $3";

/// Recomputes the monthly product rows of the months whose days are
/// `$4..=$5` (`$2..=$3`: those months' numbers) from the daily rows.
const MONTHLY_SQL: [&str; 2] = [
    "DELETE FROM mirror_monthly_products WHERE shop = $1 AND month BETWEEN $2 AND $3",
    "INSERT INTO mirror_monthly_products
       (shop, month, product_key, product_id, units, orders, revenue, refunded_units,
        refunded, last_day)
     SELECT shop, month, product_key, MAX(product_id), CAST(SUM(units) AS BIGINT),
       CAST(SUM(orders) AS BIGINT), CAST(SUM(revenue) AS BIGINT),
       CAST(SUM(refunded_units) AS BIGINT), CAST(SUM(refunded) AS BIGINT), MAX(day)
     FROM mirror_daily_products
     WHERE shop = $1 AND day BETWEEN $4 AND $5 AND month BETWEEN $2 AND $3
     GROUP BY shop, month, product_key",
];

/// The per-customer rollup rows of the customers of shop `$1` that the
/// condition pushed after it selects (`AND o.customer_id IN (…)`, then
/// [`CUSTOMER_TOTALS_CONFLICT`]), from their orders in one pass (each
/// customer's orders numbered by day give the second and the penultimate),
/// written over the stored ones (an update in place: on PostgreSQL mostly a
/// HOT update, no new index entry).
const CUSTOMER_TOTALS_SQL: &str = "INSERT INTO mirror_customer_totals
       (shop, customer_id, orders, revenue, first_day, second_day, penultimate_day, last_day)
     SELECT shop, customer_id, COUNT(*), CAST(SUM(total) AS BIGINT), MIN(created_day),
       MAX(CASE WHEN nth = 2 THEN created_day END),
       MAX(CASE WHEN nth = orders - 1 THEN created_day END), MAX(created_day)
     FROM (
       SELECT o.shop, o.customer_id, o.created_day, o.total,
         ROW_NUMBER() OVER (PARTITION BY o.customer_id ORDER BY o.created_day) AS nth,
         COUNT(*) OVER (PARTITION BY o.customer_id) AS orders
       FROM mirror_orders o WHERE o.shop = ";
const CUSTOMER_TOTALS_CONFLICT: &str = ") x GROUP BY shop, customer_id
     ON CONFLICT (shop, customer_id) DO UPDATE SET orders = excluded.orders,
       revenue = excluded.revenue, first_day = excluded.first_day,
       second_day = excluded.second_day, penultimate_day = excluded.penultimate_day,
       last_day = excluded.last_day";

/// Recomputes the per-customer rollup rows of the customers `$ids` (an
/// iterator of ids) of `$shop` inside the transaction `$tx`, from their
/// orders; then deletes the rows of those of `$gone` (customers that may
/// have lost their last order) left without any.
macro_rules! recompute_customers {
    ($tx:expr, $shop:expr, $ids:expr, $gone:expr) => {{
        let shop: &str = $shop;
        let ids: Vec<i64> = $ids.into_iter().collect();
        for chunk in ids.chunks(ID_CHUNK) {
            let mut qb = sqlx::QueryBuilder::new(CUSTOMER_TOTALS_SQL);
            qb.push_bind(shop).push(" AND o.customer_id IN (");
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            qb.push(")").push(CUSTOMER_TOTALS_CONFLICT);
            qb.build().execute(&mut *$tx).await?;
        }
        let gone: Vec<i64> = $gone.into_iter().collect();
        for chunk in gone.chunks(ID_CHUNK) {
            let mut qb =
                sqlx::QueryBuilder::new("DELETE FROM mirror_customer_totals WHERE shop = ");
            qb.push_bind(shop).push(" AND customer_id IN (");
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            qb.push(
                ") AND NOT EXISTS (SELECT 1 FROM mirror_orders o
                   WHERE o.shop = mirror_customer_totals.shop
                     AND o.customer_id = mirror_customer_totals.customer_id)",
            );
            qb.build().execute(&mut *$tx).await?;
        }
    }};
}

/// One product's sales on one shop day, while the rollup is computed.
struct DayProduct {
    month: i64,
    product_id: Option<i64>,
    title: String,
    /// The newest order's line gives the title: (created_at, order id,
    /// −position) is largest for it.
    title_rank: (i64, i64, i64),
    units: i64,
    orders: Vec<i64>,
    revenue: i64,
    refunded_units: i64,
    refunded: i64,
}

/// Recomputes every rollup row of shop days `$from..=$to` inside the
/// transaction `$tx`: sales and statuses in SQL, products per day in Rust
/// from the lines, then the months those days fall in.
macro_rules! recompute_rollups {
    ($tx:expr, $shop:expr, $from:expr, $to:expr) => {{
        let (shop, from, to): (&str, i64, i64) = ($shop, $from, $to);
        for sql in ROLLUP_SQL {
            sqlx::query(sql)
                .bind(shop)
                .bind(from)
                .bind(to)
                .execute(&mut *$tx)
                .await?;
        }
        let mut products: BTreeMap<(i64, String), DayProduct> = BTreeMap::new();
        for r in sqlx::query(PRODUCT_LINES_SQL)
            .bind(shop)
            .bind(from)
            .bind(to)
            .fetch_all(&mut *$tx)
            .await?
        {
            let product_id = r.opt_int("product_id")?;
            let title = r.text("title")?;
            let key = product_id.map_or_else(|| format!("title:{title}"), |p| p.to_string());
            let order_id = r.int("order_id")?;
            let rank = (r.int("created_at")?, order_id, -r.int("position")?);
            let quantity = r.int("quantity")?;
            let revenue = quantity
                .saturating_mul(r.int("price")?)
                .saturating_sub(r.int("discount")?);
            let current = r.opt_int("current_quantity")?.unwrap_or(quantity);
            let (refunded_units, refunded) =
                line_refund(Money::from_micros(revenue), quantity, current);
            let entry = products
                .entry((r.int("day")?, key))
                .or_insert_with(|| DayProduct {
                    month: 0,
                    product_id,
                    title: String::new(),
                    title_rank: (i64::MIN, i64::MIN, i64::MIN),
                    units: 0,
                    orders: Vec::new(),
                    revenue: 0,
                    refunded_units: 0,
                    refunded: 0,
                });
            entry.month = r.int("month")?;
            if rank > entry.title_rank {
                entry.title_rank = rank;
                entry.title = title;
            }
            entry.units = entry.units.saturating_add(quantity);
            entry.revenue = entry.revenue.saturating_add(revenue);
            entry.refunded_units = entry.refunded_units.saturating_add(refunded_units);
            entry.refunded = entry.refunded.saturating_add(refunded.micros());
            entry.orders.push(order_id);
        }
        sqlx::query("DELETE FROM mirror_daily_products WHERE shop = $1 AND day BETWEEN $2 AND $3")
            .bind(shop)
            .bind(from)
            .bind(to)
            .execute(&mut *$tx)
            .await?;
        let mut rows: Vec<((i64, String), DayProduct)> = products.into_iter().collect();
        for (_, p) in &mut rows {
            p.orders.sort_unstable();
            p.orders.dedup();
        }
        for chunk in rows.chunks(CHILD_CHUNK) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO mirror_daily_products (shop, day, month, product_key, product_id,
                   title, title_at, title_order, units, orders, revenue, refunded_units,
                   refunded) ",
            );
            qb.push_values(chunk, |mut b, ((day, key), p)| {
                b.push_bind(shop)
                    .push_bind(*day)
                    .push_bind(p.month)
                    .push_bind(key.as_str())
                    .push_bind(p.product_id)
                    .push_bind(p.title.as_str())
                    .push_bind(p.title_rank.0)
                    .push_bind(p.title_rank.1)
                    .push_bind(p.units)
                    .push_bind(p.orders.len() as i64)
                    .push_bind(p.revenue)
                    .push_bind(p.refunded_units)
                    .push_bind(p.refunded);
            });
            qb.build().execute(&mut *$tx).await?;
        }
        let (first_month, last_month) = (month_number(from)?, month_number(to)?);
        for sql in MONTHLY_SQL {
            sqlx::query(sql)
                .bind(shop)
                .bind(first_month)
                .bind(last_month)
                .bind(first_month)
                .bind(month_end(last_month)?)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

/// The rollup tables.
const ROLLUP_TABLES: [&str; 4] = [
    "mirror_daily_sales",
    "mirror_daily_statuses",
    "mirror_daily_products",
    "mirror_monthly_products",
];

/// Every mirror table, rollups and children first.
const MIRROR_TABLES: [&str; 12] = [
    "mirror_deleted_orders",
    "mirror_customer_totals",
    "mirror_monthly_products",
    "mirror_daily_statuses",
    "mirror_daily_products",
    "mirror_daily_sales",
    "mirror_line_items",
    "mirror_refunds",
    "mirror_orders",
    "mirror_products",
    "mirror_customers",
    "mirror_shops",
];

impl Store {
    // ----- Sync state -------------------------------------------------

    /// Registers a shop for mirroring: creates its sync state (`pending`)
    /// if absent, else updates its zone, currency and money format (`None`
    /// keeps the stored one). When the zone changes, every stored day is
    /// recomputed in the new zone, rollups included.
    pub async fn mirror_register_shop(
        &self,
        shop: &str,
        time_zone: ShopTimeZone,
        currency: Option<&str>,
        money_format: Option<&str>,
    ) -> Result<()> {
        let at = us(crate::now());
        on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;
            let old: Option<String> = sqlx::query_scalar(LOCK_SHOP_SQL)
                .bind(shop)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO mirror_shops
                   (shop, time_zone, currency, money_format, state, orders_mirrored,
                    objects_mirrored, updated_at)
                 VALUES ($1, $2, $3, $5, 'pending', 0, 0, $4)
                 ON CONFLICT (shop) DO UPDATE SET
                   time_zone = excluded.time_zone,
                   currency = COALESCE(excluded.currency, mirror_shops.currency),
                   money_format = COALESCE(excluded.money_format, mirror_shops.money_format),
                   updated_at = excluded.updated_at",
            )
            .bind(shop)
            .bind(time_zone.name())
            .bind(currency)
            .bind(at)
            .bind(money_format)
            .execute(&mut *tx)
            .await?;
            if old.is_some_and(|old| old != time_zone.name()) {
                // Recompute every day in the new zone.
                let orders = sqlx::query(
                    "SELECT id, created_at, created_day FROM mirror_orders WHERE shop = $1",
                )
                .bind(shop)
                .fetch_all(&mut *tx)
                .await?;
                for r in &orders {
                    let day = day_number(time_zone.day_of(from_us(r.int("created_at")?)?));
                    if day != r.int("created_day")? {
                        sqlx::query(
                            "UPDATE mirror_orders SET created_day = $3, created_month = $4
                             WHERE shop = $1 AND id = $2",
                        )
                        .bind(shop)
                        .bind(r.int("id")?)
                        .bind(day)
                        .bind(month_number(day)?)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                let refunds = sqlx::query(
                    "SELECT order_id, id, created_at, created_day FROM mirror_refunds
                     WHERE shop = $1",
                )
                .bind(shop)
                .fetch_all(&mut *tx)
                .await?;
                for r in &refunds {
                    let day = day_number(time_zone.day_of(from_us(r.int("created_at")?)?));
                    if day != r.int("created_day")? {
                        sqlx::query(
                            "UPDATE mirror_refunds SET created_day = $4
                             WHERE shop = $1 AND order_id = $2 AND id = $3",
                        )
                        .bind(shop)
                        .bind(r.int("order_id")?)
                        .bind(r.int("id")?)
                        .bind(day)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                for table in ROLLUP_TABLES {
                    sqlx::query(&format!("DELETE FROM {table} WHERE shop = $1"))
                        .bind(shop)
                        .execute(&mut *tx)
                        .await?;
                }
                let days = orders
                    .iter()
                    .map(|r| Ok(day_number(time_zone.day_of(from_us(r.int("created_at")?)?))))
                    .collect::<Result<BTreeSet<i64>>>()?;
                if let (Some(&first), Some(&last)) = (days.first(), days.last()) {
                    let mut from = first;
                    while from <= last {
                        let to = month_end(month_number(from)?)?.min(last);
                        recompute_rollups!(tx, shop, from, to);
                        from = to + 1;
                    }
                }
                // Every customer's days moved with the zone.
                sqlx::query("DELETE FROM mirror_customer_totals WHERE shop = $1")
                    .bind(shop)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!(
                    "{CUSTOMER_TOTALS_SQL} $1 AND o.customer_id IS NOT NULL \
                     {CUSTOMER_TOTALS_CONFLICT}"
                ))
                .bind(shop)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A shop's sync state, or `None` when it is not registered.
    pub async fn mirror_sync(&self, shop: &str) -> Result<Option<MirrorSync>> {
        let sql = format!("SELECT {SYNC_COLUMNS} FROM mirror_shops WHERE shop = $1");
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(shop)
                .fetch_optional(p)
                .await?
                .map(|r| sync_from(&r))
                .transpose()
        })
    }

    /// Takes the shop's backfill for `owner` (a replica's id) for `lease`,
    /// if it is pending, failed, or running under an expired lease. One
    /// atomic statement: of replicas claiming together, exactly one gets
    /// `Some` (with the stored progress, to resume from).
    pub async fn claim_backfill(
        &self,
        shop: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<MirrorSync>> {
        let now = us(crate::now());
        let until = now.saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
        let sql = format!(
            "UPDATE mirror_shops SET state = 'running', owner = $2, lease_until = $3,
               started_at = CASE WHEN state = 'pending' OR started_at IS NULL THEN $4
                                 ELSE started_at END,
               updated_at = $4
             WHERE shop = $1 AND (state IN ('pending', 'failed')
               OR (state = 'running' AND (lease_until IS NULL OR lease_until < $4)))
             RETURNING {SYNC_COLUMNS}"
        );
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(shop)
                .bind(owner)
                .bind(until)
                .bind(now)
                .fetch_optional(p)
                .await?
                .map(|r| sync_from(&r))
                .transpose()
        })
    }

    /// Extends `owner`'s lease on a running backfill. `false` when the
    /// owner no longer holds it (it expired and another replica took it):
    /// the owner must stop.
    pub async fn renew_backfill(&self, shop: &str, owner: &str, lease: Duration) -> Result<bool> {
        let now = us(crate::now());
        let until = now.saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE mirror_shops SET lease_until = $3, updated_at = $4
                 WHERE shop = $1 AND owner = $2 AND state = 'running'",
            )
            .bind(shop)
            .bind(owner)
            .bind(until)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Shops whose backfill is complete and whose mirror was last
    /// reconciled (or, never reconciled, backfilled) before `due_before`,
    /// and whose reconcile no replica holds: oldest first.
    pub async fn shops_due_for_reconcile(
        &self,
        due_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>> {
        let now = us(crate::now());
        on_pool!(self, |p| {
            Ok(sqlx::query_scalar(
                "SELECT shop FROM mirror_shops
                 WHERE state = 'complete'
                   AND COALESCE(last_reconcile_at, completed_at, 0) < $1
                   AND (reconcile_lease_until IS NULL OR reconcile_lease_until < $2)
                 ORDER BY COALESCE(last_reconcile_at, completed_at, 0), shop LIMIT $3",
            )
            .bind(us(due_before))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?)
        })
    }

    /// Takes the shop's reconcile for `owner` for `lease` when it is due
    /// (as in [`Store::shops_due_for_reconcile`]). One atomic statement:
    /// of replicas claiming together, exactly one gets `Some`.
    pub async fn claim_reconcile(
        &self,
        shop: &str,
        owner: &str,
        lease: Duration,
        due_before: DateTime<Utc>,
    ) -> Result<Option<MirrorSync>> {
        let now = us(crate::now());
        let until = now.saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
        let sql = format!(
            "UPDATE mirror_shops SET reconcile_owner = $2, reconcile_lease_until = $3,
               updated_at = $4
             WHERE shop = $1 AND state = 'complete'
               AND COALESCE(last_reconcile_at, completed_at, 0) < $5
               AND (reconcile_lease_until IS NULL OR reconcile_lease_until < $4)
             RETURNING {SYNC_COLUMNS}"
        );
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(shop)
                .bind(owner)
                .bind(until)
                .bind(now)
                .bind(us(due_before))
                .fetch_optional(p)
                .await?
                .map(|r| sync_from(&r))
                .transpose()
        })
    }

    /// Extends `owner`'s lease on the shop's reconcile; `false` when it no
    /// longer holds it.
    pub async fn renew_reconcile(&self, shop: &str, owner: &str, lease: Duration) -> Result<bool> {
        let now = us(crate::now());
        let until = now.saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE mirror_shops SET reconcile_lease_until = $3
                 WHERE shop = $1 AND reconcile_owner = $2
                   AND reconcile_lease_until IS NOT NULL",
            )
            .bind(shop)
            .bind(owner)
            .bind(until)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Ends `owner`'s reconcile: releases it and, when it succeeded,
    /// records `read_from` (the time its reads began: what changed after
    /// it is read by the next one) as the last reconcile.
    pub async fn finish_reconcile(
        &self,
        shop: &str,
        owner: &str,
        read_from: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE mirror_shops SET reconcile_owner = NULL, reconcile_lease_until = NULL,
                   last_reconcile_at = CASE WHEN $3 IS NULL THEN last_reconcile_at
                     WHEN last_reconcile_at IS NULL OR last_reconcile_at < $3 THEN $3
                     ELSE last_reconcile_at END,
                   updated_at = $4
                 WHERE shop = $1 AND reconcile_owner = $2",
            )
            .bind(shop)
            .bind(owner)
            .bind(read_from.map(us))
            .bind(us(crate::now()))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Stores a running backfill's progress so a restart resumes it: the
    /// bulk operation being read (`None` between operations), the resource
    /// or phase it is on, and the totals mirrored so far (absolute, not
    /// increments). `false` when `owner` no longer holds the backfill.
    pub async fn record_backfill_step(
        &self,
        shop: &str,
        owner: &str,
        bulk_operation_id: Option<&str>,
        phase: &str,
        orders_mirrored: i64,
        objects_mirrored: i64,
    ) -> Result<bool> {
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE mirror_shops SET bulk_operation_id = $3, phase = $4,
                   orders_mirrored = $5, objects_mirrored = $6, updated_at = $7
                 WHERE shop = $1 AND owner = $2 AND state = 'running'",
            )
            .bind(shop)
            .bind(owner)
            .bind(bulk_operation_id)
            .bind(phase)
            .bind(orders_mirrored)
            .bind(objects_mirrored)
            .bind(us(crate::now()))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Refreshes the planner's statistics of the mirror's tables. On
    /// PostgreSQL, tables that grew much since their last `ANALYZE`
    /// (autovacuum may be late, or off) are planned as if they were still
    /// small: a lookup of a few hundred orders by id then reads the whole
    /// shop, and a backfill slows with every batch. A backfill calls this
    /// as its tables double, and once at the end. SQLite plans by its
    /// indexes without statistics: nothing to do.
    pub async fn mirror_refresh_statistics(&self) -> Result<()> {
        self.mirror_maintain("ANALYZE").await
    }

    /// Runs a maintenance command (`ANALYZE`, `VACUUM (ANALYZE)`) over the
    /// mirror's tables on PostgreSQL; nothing on SQLite.
    async fn mirror_maintain(&self, command: &str) -> Result<()> {
        if self.backend() != crate::Backend::Postgres {
            return Ok(());
        }
        let sql = format!("{command} {}", MIRROR_TABLES.join(", "));
        on_pool!(self, |p| {
            // The simple protocol: VACUUM may not run in a transaction.
            sqlx::raw_sql(&sql).execute(p).await?;
            Ok(())
        })
    }

    /// Marks `owner`'s backfill complete. `covers_since` is the earliest
    /// order creation time it read (`None`: the whole history). `false`
    /// when `owner` no longer holds it.
    pub async fn complete_backfill(
        &self,
        shop: &str,
        owner: &str,
        covers_since: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        // A backfill writes most of what the tables hold: fresh statistics,
        // and (on PostgreSQL, where autovacuum may be late or off) its rows
        // marked visible to all, so the first reports over them neither
        // read every row's heap page nor set every row's hint bits. Best
        // effort; VACUUM skips the pages nothing changed.
        if let Err(e) = self.mirror_maintain("VACUUM (ANALYZE)").await {
            tracing::warn!(shop, error = %e, "could not vacuum the store mirror's tables");
        }
        let now = us(crate::now());
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE mirror_shops SET state = 'complete', lease_until = NULL,
                   bulk_operation_id = NULL, completed_at = $3, covers_since = $4,
                   last_error = NULL, updated_at = $3
                 WHERE shop = $1 AND owner = $2 AND state = 'running'",
            )
            .bind(shop)
            .bind(owner)
            .bind(now)
            .bind(covers_since.map(us))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Marks `owner`'s backfill failed with `error` (kept short); it is
    /// claimable again, with its progress. `false` when `owner` no longer
    /// holds it.
    pub async fn fail_backfill(&self, shop: &str, owner: &str, error: &str) -> Result<bool> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE mirror_shops SET state = 'failed', lease_until = NULL, last_error = $3,
                   updated_at = $4
                 WHERE shop = $1 AND owner = $2 AND state = 'running'",
            )
            .bind(shop)
            .bind(owner)
            .bind(&error)
            .bind(us(crate::now()))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Asks for a fresh backfill of a shop whose backfill completed (e.g.
    /// after `read_all_orders` was granted): back to `pending`, progress
    /// cleared; the mirrored rows stay. `false` when the shop is unknown or
    /// its backfill is not complete.
    pub async fn mirror_request_backfill(&self, shop: &str) -> Result<bool> {
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE mirror_shops SET state = 'pending', owner = NULL, lease_until = NULL,
                   bulk_operation_id = NULL, phase = NULL, orders_mirrored = 0,
                   objects_mirrored = 0, started_at = NULL, updated_at = $2
                 WHERE shop = $1 AND state = 'complete'",
            )
            .bind(shop)
            .bind(us(crate::now()))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Shops whose backfill wants a replica: pending, failed, or running
    /// under an expired lease; the longest waiting first.
    pub async fn shops_awaiting_backfill(&self, limit: u32) -> Result<Vec<String>> {
        let now = us(crate::now());
        on_pool!(self, |p| {
            Ok(sqlx::query_scalar(
                "SELECT shop FROM mirror_shops
                 WHERE state IN ('pending', 'failed')
                    OR (state = 'running' AND (lease_until IS NULL OR lease_until < $1))
                 ORDER BY updated_at, shop LIMIT $2",
            )
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?)
        })
    }

    /// Notes that a webhook event of `at` was applied (the newest is kept).
    pub async fn record_mirror_event(&self, shop: &str, at: DateTime<Utc>) -> Result<()> {
        self.bump_time(shop, "last_event_at", at).await
    }

    /// Notes a reconcile at `at` (the newest is kept).
    pub async fn record_reconcile(&self, shop: &str, at: DateTime<Utc>) -> Result<()> {
        self.bump_time(shop, "last_reconcile_at", at).await
    }

    async fn bump_time(&self, shop: &str, column: &'static str, at: DateTime<Utc>) -> Result<()> {
        let sql = format!(
            "UPDATE mirror_shops SET
               {column} = CASE WHEN {column} IS NULL OR {column} < $2 THEN $2 ELSE {column} END,
               updated_at = $3
             WHERE shop = $1"
        );
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(shop)
                .bind(us(at))
                .bind(us(crate::now()))
                .execute(p)
                .await?;
        });
        Ok(())
    }

    // ----- Writes -----------------------------------------------------

    /// Writes orders (with their line items and refunds), in one
    /// transaction. An order is applied only when its `updated_at` is not
    /// older than the stored one; an applied order's lines and refunds
    /// replace the stored ones, and the rollups of every day it touched
    /// are recomputed. Of several versions of one order in the batch, the
    /// newest counts. Days are cut in the shop's registered zone; the shop
    /// must be registered ([`StoreError::NotFound`] otherwise). Writes of
    /// one shop are serialised on its sync row.
    pub async fn mirror_upsert_orders(
        &self,
        shop: &str,
        orders: &[MirrorOrder],
    ) -> Result<UpsertOutcome> {
        if orders.is_empty() {
            return Ok(UpsertOutcome::default());
        }
        let (orders, dropped) = newest_by_id(orders, |o| o.id, |o| o.updated_at);
        let at = us(crate::now());
        let is_postgres = self.backend() == crate::Backend::Postgres;
        let applied = on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;
            // Lock the shop's mirror (PostgreSQL: its row; SQLite: the
            // database) and read its zone.
            if is_postgres {
                // Plans for these id lists and day ranges depend on the
                // values; a cached generic plan (after five runs) scans the
                // shop's rows instead of seeking by key.
                sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
                    .execute(&mut *tx)
                    .await?;
            }
            let zone: Option<String> = sqlx::query_scalar(LOCK_SHOP_SQL)
                .bind(shop)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?;
            let zone: ShopTimeZone = zone
                .ok_or(StoreError::NotFound("mirror shop"))?
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("{e}")))?;
            // A deleted order stays deleted: a version not newer than its
            // deletion is stale.
            let mut deleted: HashMap<i64, i64> = HashMap::new();
            for chunk in orders.chunks(ID_CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT id, deleted_at FROM mirror_deleted_orders WHERE shop = ",
                );
                qb.push_bind(shop).push(" AND id IN (");
                let mut ids = qb.separated(", ");
                for o in chunk {
                    ids.push_bind(o.id);
                }
                qb.push(")");
                for r in qb.build().fetch_all(&mut *tx).await? {
                    deleted.insert(r.int("id")?, r.int("deleted_at")?);
                }
            }
            let orders: Vec<&MirrorOrder> = orders
                .iter()
                .copied()
                .filter(|o| deleted.get(&o.id).is_none_or(|d| us(o.updated_at) > *d))
                .collect();
            // The days (and customers) the stored versions sit on.
            let mut old_days: HashMap<i64, i64> = HashMap::new();
            let mut old_customers: HashMap<i64, i64> = HashMap::new();
            for chunk in orders.chunks(ID_CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT id, created_day, customer_id FROM mirror_orders WHERE shop = ",
                );
                qb.push_bind(shop).push(" AND id IN (");
                let mut ids = qb.separated(", ");
                for o in chunk {
                    ids.push_bind(o.id);
                }
                qb.push(")");
                for r in qb.build().fetch_all(&mut *tx).await? {
                    old_days.insert(r.int("id")?, r.int("created_day")?);
                    if let Some(c) = r.opt_int("customer_id")? {
                        old_customers.insert(r.int("id")?, c);
                    }
                }
            }
            // The orders, newer-wins.
            let mut applied: Vec<&MirrorOrder> = Vec::new();
            let by_id: HashMap<i64, &MirrorOrder> = orders.iter().map(|o| (o.id, *o)).collect();
            for chunk in orders.chunks(ORDER_CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO mirror_orders (shop, id, name, created_at, created_day, created_month,
                       processed_at, updated_at, cancelled_at, closed_at, financial_status,
                       fulfillment_status, currency, subtotal, total, total_discounts, total_tax,
                       total_refunded, customer_id, email, customer_name, tags, source_name) ",
                );
                qb.push_values(chunk, |mut b, o| {
                    b.push_bind(shop)
                        .push_bind(o.id)
                        .push_bind(o.name.as_str())
                        .push_bind(us(o.created_at))
                        .push_bind(day_number(zone.day_of(o.created_at)))
                        .push_bind(day_number(
                            zone.day_of(o.created_at).with_day(1).unwrap_or_default(),
                        ))
                        .push_bind(o.processed_at.map(us))
                        .push_bind(us(o.updated_at))
                        .push_bind(o.cancelled_at.map(us))
                        .push_bind(o.closed_at.map(us))
                        .push_bind(o.financial_status.as_deref())
                        .push_bind(o.fulfillment_status.as_deref())
                        .push_bind(o.currency.as_str())
                        .push_bind(o.subtotal.micros())
                        .push_bind(o.total.micros())
                        .push_bind(o.total_discounts.micros())
                        .push_bind(o.total_tax.micros())
                        .push_bind(o.total_refunded.micros())
                        .push_bind(o.customer_id)
                        .push_bind(o.email.as_deref())
                        .push_bind(o.customer_name.as_deref())
                        .push_bind(serde_json::to_string(&o.tags).unwrap_or_else(|_| "[]".into()))
                        .push_bind(o.source_name.as_deref());
                });
                qb.push(
                    " ON CONFLICT (shop, id) DO UPDATE SET
                       name = excluded.name, created_at = excluded.created_at,
                       created_day = excluded.created_day, created_month = excluded.created_month,
                       processed_at = excluded.processed_at,
                       updated_at = excluded.updated_at, cancelled_at = excluded.cancelled_at,
                       closed_at = excluded.closed_at,
                       financial_status = excluded.financial_status,
                       fulfillment_status = excluded.fulfillment_status,
                       currency = excluded.currency, subtotal = excluded.subtotal,
                       total = excluded.total, total_discounts = excluded.total_discounts,
                       total_tax = excluded.total_tax, total_refunded = excluded.total_refunded,
                       customer_id = excluded.customer_id, email = excluded.email,
                       customer_name = excluded.customer_name, tags = excluded.tags,
                       source_name = excluded.source_name
                     WHERE mirror_orders.updated_at <= excluded.updated_at
                     RETURNING id",
                );
                for r in qb.build().fetch_all(&mut *tx).await? {
                    if let Some(o) = by_id.get(&r.int("id")?) {
                        applied.push(o);
                    }
                }
            }
            if !applied.is_empty() {
                // Their lines and refunds, replaced whole (an order new to
                // the mirror has none stored).
                let replaced: Vec<i64> = applied
                    .iter()
                    .map(|o| o.id)
                    .filter(|id| old_days.contains_key(id))
                    .collect();
                for table in ["mirror_line_items", "mirror_refunds"] {
                    for chunk in replaced.chunks(ID_CHUNK) {
                        let mut qb =
                            sqlx::QueryBuilder::new(format!("DELETE FROM {table} WHERE shop = "));
                        qb.push_bind(shop).push(" AND order_id IN (");
                        let mut ids = qb.separated(", ");
                        for id in chunk {
                            ids.push_bind(*id);
                        }
                        qb.push(")");
                        qb.build().execute(&mut *tx).await?;
                    }
                }
                let lines: Vec<(i64, i64, &MirrorLineItem)> = applied
                    .iter()
                    .flat_map(|o| {
                        o.line_items
                            .iter()
                            .enumerate()
                            .map(|(i, l)| (o.id, i as i64, l))
                    })
                    .collect();
                for chunk in lines.chunks(CHILD_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO mirror_line_items (shop, order_id, id, position, product_id,
                           variant_id, title, variant_title, sku, quantity, current_quantity,
                           price, discount) ",
                    );
                    qb.push_values(chunk, |mut b, (order_id, position, l)| {
                        b.push_bind(shop)
                            .push_bind(*order_id)
                            .push_bind(l.id)
                            .push_bind(*position)
                            .push_bind(l.product_id)
                            .push_bind(l.variant_id)
                            .push_bind(l.title.as_str())
                            .push_bind(l.variant_title.as_deref())
                            .push_bind(l.sku.as_deref())
                            .push_bind(l.quantity)
                            .push_bind(l.current_quantity)
                            .push_bind(l.price.micros())
                            .push_bind(l.discount.micros());
                    });
                    // A line repeated in one order keeps its first copy.
                    qb.push(" ON CONFLICT (shop, order_id, id) DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                let refunds: Vec<(i64, i64, &MirrorRefund)> = applied
                    .iter()
                    .flat_map(|o| {
                        o.refunds
                            .iter()
                            .enumerate()
                            .map(|(i, r)| (o.id, i as i64, r))
                    })
                    .collect();
                for chunk in refunds.chunks(CHILD_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO mirror_refunds (shop, order_id, id, position, created_at,
                           created_day, amount, note) ",
                    );
                    qb.push_values(chunk, |mut b, (order_id, position, r)| {
                        b.push_bind(shop)
                            .push_bind(*order_id)
                            .push_bind(r.id)
                            .push_bind(*position)
                            .push_bind(us(r.created_at))
                            .push_bind(day_number(zone.day_of(r.created_at)))
                            .push_bind(r.amount.micros())
                            .push_bind(r.note.as_deref());
                    });
                    qb.push(" ON CONFLICT (shop, order_id, id) DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                // The rollups of every day touched, old and new.
                let mut days = BTreeSet::new();
                for o in &applied {
                    days.insert(day_number(zone.day_of(o.created_at)));
                    if let Some(old) = old_days.get(&o.id) {
                        days.insert(*old);
                    }
                }
                for (from, to) in day_runs(&days) {
                    recompute_rollups!(tx, shop, from, to);
                }
                // And of every customer touched, old and new; only an old
                // one (whose order moved to another customer) can be left
                // without orders.
                let customers: BTreeSet<i64> = applied
                    .iter()
                    .flat_map(|o| [o.customer_id, old_customers.get(&o.id).copied()])
                    .flatten()
                    .collect();
                let gone: BTreeSet<i64> = applied
                    .iter()
                    .filter_map(|o| {
                        old_customers
                            .get(&o.id)
                            .copied()
                            .filter(|old| o.customer_id != Some(*old))
                    })
                    .collect();
                recompute_customers!(tx, shop, customers, gone);
            }
            tx.commit().await?;
            applied.len() as u64
        });
        let considered = orders.len() as u64;
        Ok(UpsertOutcome {
            applied,
            stale: considered - applied + dropped,
        })
    }

    /// Writes products, newer-wins by `updated_at` (a product deleted at or
    /// after a record's `updated_at` stays deleted). One transaction.
    pub async fn mirror_upsert_products(
        &self,
        shop: &str,
        products: &[MirrorProduct],
    ) -> Result<UpsertOutcome> {
        if products.is_empty() {
            return Ok(UpsertOutcome::default());
        }
        let (products, dropped) = newest_by_id(products, |p| p.id, |p| p.updated_at);
        let at = us(crate::now());
        let applied = on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;
            sqlx::query_scalar::<_, String>(LOCK_SHOP_SQL)
                .bind(shop)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound("mirror shop"))?;
            let mut applied = 0u64;
            for chunk in products.chunks(ORDER_CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO mirror_products (shop, id, title, status, vendor, product_type,
                       created_at, updated_at, deleted_at) ",
                );
                qb.push_values(chunk, |mut b, pr| {
                    b.push_bind(shop)
                        .push_bind(pr.id)
                        .push_bind(pr.title.as_str())
                        .push_bind(pr.status.as_str())
                        .push_bind(pr.vendor.as_deref())
                        .push_bind(pr.product_type.as_deref())
                        .push_bind(us(pr.created_at))
                        .push_bind(us(pr.updated_at))
                        .push_bind(None::<i64>);
                });
                qb.push(
                    " ON CONFLICT (shop, id) DO UPDATE SET
                       title = excluded.title, status = excluded.status, vendor = excluded.vendor,
                       product_type = excluded.product_type, created_at = excluded.created_at,
                       updated_at = excluded.updated_at, deleted_at = NULL
                     WHERE mirror_products.updated_at < excluded.updated_at
                        OR (mirror_products.updated_at = excluded.updated_at
                            AND mirror_products.deleted_at IS NULL)",
                );
                applied += qb.build().execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            applied
        });
        Ok(UpsertOutcome {
            applied,
            stale: products.len() as u64 - applied + dropped,
        })
    }

    /// Writes customers, newer-wins by `updated_at` (a customer deleted at
    /// or after a record's `updated_at`, or redacted, stays so). One
    /// transaction.
    pub async fn mirror_upsert_customers(
        &self,
        shop: &str,
        customers: &[MirrorCustomer],
    ) -> Result<UpsertOutcome> {
        if customers.is_empty() {
            return Ok(UpsertOutcome::default());
        }
        let (customers, dropped) = newest_by_id(customers, |c| c.id, |c| c.updated_at);
        let at = us(crate::now());
        let applied = on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;
            sqlx::query_scalar::<_, String>(LOCK_SHOP_SQL)
                .bind(shop)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound("mirror shop"))?;
            let mut applied = 0u64;
            for chunk in customers.chunks(ORDER_CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO mirror_customers (shop, id, name, email, email_norm, created_at,
                       updated_at, orders_count, amount_spent, deleted_at) ",
                );
                qb.push_values(chunk, |mut b, c| {
                    b.push_bind(shop)
                        .push_bind(c.id)
                        .push_bind(c.name.as_deref())
                        .push_bind(c.email.as_deref())
                        .push_bind(email_norm(c.email.as_deref()))
                        .push_bind(us(c.created_at))
                        .push_bind(us(c.updated_at))
                        .push_bind(c.orders_count)
                        .push_bind(c.amount_spent.micros())
                        .push_bind(None::<i64>);
                });
                qb.push(
                    " ON CONFLICT (shop, id) DO UPDATE SET
                       name = excluded.name, email = excluded.email,
                       email_norm = excluded.email_norm, created_at = excluded.created_at,
                       updated_at = excluded.updated_at, orders_count = excluded.orders_count,
                       amount_spent = excluded.amount_spent, deleted_at = NULL
                     WHERE mirror_customers.updated_at < excluded.updated_at
                        OR (mirror_customers.updated_at = excluded.updated_at
                            AND mirror_customers.deleted_at IS NULL)",
                );
                applied += qb.build().execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            applied
        });
        Ok(UpsertOutcome {
            applied,
            stale: customers.len() as u64 - applied + dropped,
        })
    }

    /// Deletes a product as of `at`, leaving a tombstone that updates not
    /// newer than `at` do not pass. `false` when the stored product is newer
    /// than the deletion (it is kept).
    pub async fn mirror_delete_product(
        &self,
        shop: &str,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let now = us(crate::now());
        let n = on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;
            sqlx::query_scalar::<_, String>(LOCK_SHOP_SQL)
                .bind(shop)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound("mirror shop"))?;
            let n = sqlx::query(
                "INSERT INTO mirror_products (shop, id, title, status, vendor, product_type,
                   created_at, updated_at, deleted_at)
                 VALUES ($1, $2, '', 'DELETED', NULL, NULL, $3, $3, $3)
                 ON CONFLICT (shop, id) DO UPDATE SET
                   updated_at = excluded.updated_at, deleted_at = excluded.deleted_at
                 WHERE mirror_products.updated_at <= excluded.updated_at",
            )
            .bind(shop)
            .bind(id)
            .bind(us(at))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n > 0)
    }

    /// Deletes a customer as of `at`: a tombstone without personal fields
    /// that updates not newer than `at` do not pass. `false` when the
    /// stored customer is newer than the deletion (it is kept).
    pub async fn mirror_delete_customer(
        &self,
        shop: &str,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let now = us(crate::now());
        let n = on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;
            sqlx::query_scalar::<_, String>(LOCK_SHOP_SQL)
                .bind(shop)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound("mirror shop"))?;
            let n = sqlx::query(TOMBSTONE_CUSTOMER_SQL)
                .bind(shop)
                .bind(id)
                .bind(us(at))
                .bind(us(at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n > 0)
    }

    /// Deletes orders as of `at` (Shopify's `orders/delete`, or orders a
    /// reconcile found Shopify no longer lists): each leaves a tombstone
    /// that versions not newer than `at` do not pass; a stored order newer
    /// than `at` is kept. Their lines and refunds go with them and the
    /// rollups of their days and customers are recomputed, in one
    /// transaction. Returns the orders deleted.
    pub async fn mirror_delete_orders(
        &self,
        shop: &str,
        ids: &[i64],
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let ids: Vec<i64> = ids
            .iter()
            .copied()
            .collect::<BTreeSet<i64>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let now = us(crate::now());
        let at = us(at);
        let deleted = on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;
            sqlx::query_scalar::<_, String>(LOCK_SHOP_SQL)
                .bind(shop)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound("mirror shop"))?;
            let mut days = BTreeSet::new();
            let mut customers = BTreeSet::new();
            let mut deleted: Vec<i64> = Vec::new();
            for chunk in ids.chunks(ID_CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO mirror_deleted_orders (shop, id, deleted_at) ",
                );
                qb.push_values(chunk, |mut b, id| {
                    b.push_bind(shop).push_bind(*id).push_bind(at);
                });
                qb.push(
                    " ON CONFLICT (shop, id) DO UPDATE SET deleted_at = excluded.deleted_at
                     WHERE mirror_deleted_orders.deleted_at < excluded.deleted_at",
                );
                qb.build().execute(&mut *tx).await?;
                let mut qb = sqlx::QueryBuilder::new("DELETE FROM mirror_orders WHERE shop = ");
                qb.push_bind(shop)
                    .push(" AND updated_at <= ")
                    .push_bind(at)
                    .push(" AND id IN (");
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                qb.push(") RETURNING id, created_day, customer_id");
                for r in qb.build().fetch_all(&mut *tx).await? {
                    deleted.push(r.int("id")?);
                    days.insert(r.int("created_day")?);
                    if let Some(c) = r.opt_int("customer_id")? {
                        customers.insert(c);
                    }
                }
            }
            for table in ["mirror_line_items", "mirror_refunds"] {
                for chunk in deleted.chunks(ID_CHUNK) {
                    let mut qb =
                        sqlx::QueryBuilder::new(format!("DELETE FROM {table} WHERE shop = "));
                    qb.push_bind(shop).push(" AND order_id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    qb.push(")");
                    qb.build().execute(&mut *tx).await?;
                }
            }
            for (from, to) in day_runs(&days) {
                recompute_rollups!(tx, shop, from, to);
            }
            // A customer left without orders loses their totals row.
            recompute_customers!(tx, shop, customers.clone(), customers);
            tx.commit().await?;
            deleted.len() as u64
        });
        if deleted > 0 {
            tracing::info!(
                shop,
                orders = deleted,
                "deleted orders from the store mirror"
            );
        }
        Ok(deleted)
    }

    /// The ids of what the mirror holds of `kind` (not deleted) that were
    /// last updated before `updated_before` and, for orders, created at or
    /// after `created_since` (all when `None`), ascending. A reconcile
    /// compares them with what Shopify lists to find deletions whose
    /// webhooks were lost.
    pub async fn mirror_ids(
        &self,
        shop: &str,
        kind: MirrorKind,
        updated_before: DateTime<Utc>,
        created_since: Option<DateTime<Utc>>,
    ) -> Result<Vec<i64>> {
        let sql = match kind {
            MirrorKind::Orders => {
                "SELECT id FROM mirror_orders
                 WHERE shop = $1 AND updated_at < $2 AND created_at >= $3 ORDER BY id"
            }
            MirrorKind::Products => {
                "SELECT id FROM mirror_products
                 WHERE shop = $1 AND updated_at < $2 AND deleted_at IS NULL
                   AND created_at >= $3 ORDER BY id"
            }
            MirrorKind::Customers => {
                "SELECT id FROM mirror_customers
                 WHERE shop = $1 AND updated_at < $2 AND deleted_at IS NULL
                   AND created_at >= $3 ORDER BY id"
            }
        };
        let since = created_since.map_or(i64::MIN, us);
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(shop)
                .bind(us(updated_before))
                .bind(since)
                .fetch_all(p)
                .await?
        }))
    }

    // ----- Compliance -------------------------------------------------

    /// Deletes every mirrored row of a shop, its sync state included
    /// (uninstall, `shop/redact`). One transaction. Returns the rows
    /// deleted.
    pub async fn mirror_delete_shop(&self, shop: &str) -> Result<u64> {
        let now = us(crate::now());
        on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;
            // Wait for the shop's write in progress, if any; later ones
            // find the shop gone.
            sqlx::query(LOCK_SHOP_SQL)
                .bind(shop)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let mut n = 0;
            for table in MIRROR_TABLES {
                n += sqlx::query(&format!("DELETE FROM {table} WHERE shop = $1"))
                    .bind(shop)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            tracing::info!(shop, rows = n, "deleted a shop's store mirror");
            Ok(n)
        })
    }

    /// Forgets a customer (`customers/redact`): their record becomes a
    /// tombstone without personal fields that no later update passes, and
    /// the email and customer name are blanked on their orders and on the
    /// orders listed (Shopify's `orders_to_redact`). Returns the orders
    /// changed.
    pub async fn mirror_redact_customer(
        &self,
        shop: &str,
        customer_id: i64,
        order_ids: &[i64],
    ) -> Result<u64> {
        let now = us(crate::now());
        let n = on_pool!(self, |p| {
            let mut tx = self.write_tx(p).await?;
            let registered: Option<String> = sqlx::query_scalar(LOCK_SHOP_SQL)
                .bind(shop)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            if registered.is_none() {
                // Nothing mirrored for this shop.
                tx.rollback().await?;
                return Ok(0);
            }
            sqlx::query(TOMBSTONE_CUSTOMER_SQL)
                .bind(shop)
                .bind(customer_id)
                .bind(i64::MAX)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let mut n = sqlx::query(
                "UPDATE mirror_orders SET email = NULL, customer_name = NULL
                 WHERE shop = $1 AND customer_id = $2
                   AND (email IS NOT NULL OR customer_name IS NOT NULL)",
            )
            .bind(shop)
            .bind(customer_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            for chunk in order_ids.chunks(ID_CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(
                    "UPDATE mirror_orders SET email = NULL, customer_name = NULL WHERE shop = ",
                );
                qb.push_bind(shop)
                    .push(" AND (email IS NOT NULL OR customer_name IS NOT NULL) AND id IN (");
                let mut ids = qb.separated(", ");
                for id in chunk {
                    ids.push_bind(*id);
                }
                qb.push(")");
                n += qb.build().execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            n
        });
        tracing::info!(shop, orders = n, "redacted a customer in the store mirror");
        Ok(n)
    }

    // ----- Queries ----------------------------------------------------

    async fn day_rows(&self, shop: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<DayRow>> {
        let rows = on_pool!(self, |p| {
            sqlx::query(
                "SELECT day, orders, cancelled_orders, revenue, refunded FROM mirror_daily_sales
                 WHERE shop = $1 AND day BETWEEN $2 AND $3 ORDER BY day",
            )
            .bind(shop)
            .bind(day_number(from))
            .bind(day_number(to))
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| {
                Ok(DayRow {
                    day: day_from_number(r.int("day")?)?,
                    orders: count(r.int("orders")?),
                    cancelled: count(r.int("cancelled_orders")?),
                    revenue: Money::from_micros(r.int("revenue")?),
                    refunded: Money::from_micros(r.int("refunded")?),
                })
            })
            .collect::<Result<Vec<_>>>()?
        });
        Ok(rows)
    }

    /// Sales over shop days `from..=to`, as the live sales summary computes
    /// them: revenue is the sum of order totals, cancelled orders included;
    /// refunded the sum of their refunded amounts.
    pub async fn mirror_sales(
        &self,
        shop: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<MirrorSales> {
        let rows = self.day_rows(shop, from, to).await?;
        let mut per_day: BTreeMap<NaiveDate, MirrorDaySales> = BTreeMap::new();
        if (to - from).num_days() < MIRROR_DENSE_DAYS {
            for date in from.iter_days().take_while(|d| *d <= to) {
                per_day.insert(
                    date,
                    MirrorDaySales {
                        date,
                        orders: 0,
                        revenue: Money::ZERO,
                    },
                );
            }
        }
        let mut sales = MirrorSales {
            orders: 0,
            cancelled_orders: 0,
            revenue: Money::ZERO,
            refunded: Money::ZERO,
            currency: None,
            per_day: Vec::new(),
        };
        for r in &rows {
            sales.orders += r.orders;
            sales.cancelled_orders += r.cancelled;
            sales.revenue = sales.revenue + r.revenue;
            sales.refunded = sales.refunded + r.refunded;
            per_day.insert(
                r.day,
                MirrorDaySales {
                    date: r.day,
                    orders: r.orders,
                    revenue: r.revenue,
                },
            );
        }
        sales.per_day = per_day.into_values().collect();
        if sales.orders > 0 {
            sales.currency = self.mirror_sync(shop).await?.and_then(|s| s.currency);
        }
        Ok(sales)
    }

    /// Orders placed over the range, and every product sold in it (not
    /// ranked). A product's title is the one of its last day in the range
    /// (that day's row holds the newest order's title, and days follow
    /// time), read by primary key.
    async fn product_sales(
        &self,
        shop: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(u64, Vec<MirrorProductSales>)> {
        let [head, months, tail] = split_months(from, to);
        let (from, to) = (day_number(from), day_number(to));
        on_pool!(self, |p| {
            let considered: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(orders), 0) AS BIGINT) FROM mirror_daily_sales
                 WHERE shop = $1 AND day BETWEEN $2 AND $3",
            )
            .bind(shop)
            .bind(from)
            .bind(to)
            .fetch_one(p)
            .await?;
            let products = sqlx::query(
                "SELECT a.product_id, a.units, a.orders, a.revenue, a.refunded_units, a.refunded,
                   (SELECT t.title FROM mirror_daily_products t
                    WHERE t.shop = $1 AND t.day = a.last_day AND t.product_key = a.product_key)
                     AS title
                 FROM (
                   SELECT product_key, MAX(product_id) AS product_id,
                     CAST(SUM(units) AS BIGINT) AS units, CAST(SUM(orders) AS BIGINT) AS orders,
                     CAST(SUM(revenue) AS BIGINT) AS revenue,
                     CAST(SUM(refunded_units) AS BIGINT) AS refunded_units,
                     CAST(SUM(refunded) AS BIGINT) AS refunded, MAX(last_day) AS last_day
                   FROM (
                     SELECT product_key, product_id, units, orders, revenue, refunded_units,
                       refunded, day AS last_day
                     FROM mirror_daily_products
                     WHERE shop = $1 AND (day BETWEEN $2 AND $3 OR day BETWEEN $4 AND $5)
                     UNION ALL
                     SELECT product_key, product_id, units, orders, revenue, refunded_units,
                       refunded, last_day
                     FROM mirror_monthly_products
                     WHERE shop = $1 AND month BETWEEN $6 AND $7
                   ) u
                   GROUP BY product_key
                 ) a",
            )
            .bind(shop)
            .bind(head.0)
            .bind(head.1)
            .bind(tail.0)
            .bind(tail.1)
            .bind(months.0)
            .bind(months.1)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| {
                Ok(MirrorProductSales {
                    product_id: r.opt_int("product_id")?,
                    title: r.text("title")?,
                    units: r.int("units")?,
                    orders: count(r.int("orders")?),
                    revenue: Money::from_micros(r.int("revenue")?),
                    refunded_units: r.int("refunded_units")?,
                    refunded: Money::from_micros(r.int("refunded")?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
            Ok((count(considered), products))
        })
    }

    /// The best sellers over shop days `from..=to`, ranked as the live tool
    /// ranks them: by units, then orders, then title. A product is its id,
    /// or its title for lines without one; its title is the one on the
    /// newest order's line.
    pub async fn mirror_top_products(
        &self,
        shop: &str,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Result<MirrorTopProducts> {
        let (orders_considered, mut products) = self.product_sales(shop, from, to).await?;
        products.sort_by(|a, b| {
            b.units
                .cmp(&a.units)
                .then(b.orders.cmp(&a.orders))
                .then_with(|| a.title.cmp(&b.title))
                .then(a.product_id.cmp(&b.product_id))
        });
        products.truncate(limit);
        Ok(MirrorTopProducts {
            orders_considered,
            products,
        })
    }

    /// Product performance over shop days `from..=to`: units, orders, line
    /// revenue, and the units refunded or removed since (with what they
    /// sold for) per product, ranked by revenue, then units, then title.
    pub async fn mirror_product_performance(
        &self,
        shop: &str,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Result<MirrorTopProducts> {
        let (orders_considered, mut products) = self.product_sales(shop, from, to).await?;
        products.sort_by(|a, b| {
            b.revenue
                .cmp(&a.revenue)
                .then(b.units.cmp(&a.units))
                .then_with(|| a.title.cmp(&b.title))
                .then(a.product_id.cmp(&b.product_id))
        });
        products.truncate(limit);
        Ok(MirrorTopProducts {
            orders_considered,
            products,
        })
    }

    /// Line items and refunds of the given orders, attached in place.
    async fn attach_children(&self, shop: &str, orders: &mut [MirrorOrder]) -> Result<()> {
        if orders.is_empty() {
            return Ok(());
        }
        let index: HashMap<i64, usize> =
            orders.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
        let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
        for chunk in ids.chunks(ID_CHUNK) {
            let (lines, refunds) = on_pool!(self, |p| {
                let mut lines = Vec::new();
                let mut refunds = Vec::new();
                for table in ["mirror_line_items", "mirror_refunds"] {
                    let mut qb =
                        sqlx::QueryBuilder::new(format!("SELECT * FROM {table} WHERE shop = "));
                    qb.push_bind(shop).push(" AND order_id IN (");
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(*id);
                    }
                    qb.push(") ORDER BY order_id, position");
                    for r in qb.build().fetch_all(p).await? {
                        let order_id = r.int("order_id")?;
                        if table == "mirror_line_items" {
                            lines.push((order_id, line_item_from(&r)?));
                        } else {
                            refunds.push((order_id, refund_from(&r)?));
                        }
                    }
                }
                (lines, refunds)
            });
            for (order_id, line) in lines {
                if let Some(&i) = index.get(&order_id) {
                    orders[i].line_items.push(line);
                }
            }
            for (order_id, refund) in refunds {
                if let Some(&i) = index.get(&order_id) {
                    orders[i].refunds.push(refund);
                }
            }
        }
        Ok(())
    }

    /// The newest orders by creation time, with their lines and refunds.
    pub async fn mirror_recent_orders(&self, shop: &str, limit: u32) -> Result<Vec<MirrorOrder>> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM mirror_orders WHERE shop = $1
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let mut orders = on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(shop)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
                .iter()
                .map(order_from)
                .collect::<Result<Vec<_>>>()?
        });
        self.attach_children(shop, &mut orders).await?;
        Ok(orders)
    }

    /// One stored order with its lines and refunds.
    pub async fn mirror_order(&self, shop: &str, id: i64) -> Result<Option<MirrorOrder>> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM mirror_orders WHERE shop = $1 AND id = $2");
        let order = on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(shop)
                .bind(id)
                .fetch_optional(p)
                .await?
                .map(|r| order_from(&r))
                .transpose()?
        });
        let Some(order) = order else {
            return Ok(None);
        };
        let mut orders = [order];
        self.attach_children(shop, &mut orders).await?;
        let [order] = orders;
        Ok(Some(order))
    }

    /// The mirrored customer `id` (not deleted).
    pub async fn mirror_customer(&self, shop: &str, id: i64) -> Result<Option<MirrorCustomer>> {
        on_pool!(self, |p| {
            sqlx::query(
                "SELECT * FROM mirror_customers
                 WHERE shop = $1 AND id = $2 AND deleted_at IS NULL",
            )
            .bind(shop)
            .bind(id)
            .fetch_optional(p)
            .await?
            .map(|r| customer_from(&r))
            .transpose()
        })
    }

    /// A customer by email (compared case-insensitively, trimmed), with
    /// their 10 newest orders, newest first.
    pub async fn mirror_customer_by_email(
        &self,
        shop: &str,
        email: &str,
    ) -> Result<Option<(MirrorCustomer, Vec<MirrorOrder>)>> {
        let Some(norm) = email_norm(Some(email)) else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM mirror_orders WHERE shop = $1 AND customer_id = $2
             ORDER BY created_at DESC, id DESC LIMIT 10"
        );
        let found = on_pool!(self, |p| {
            let customer = sqlx::query(
                "SELECT * FROM mirror_customers
                 WHERE shop = $1 AND email_norm = $2 AND deleted_at IS NULL
                 ORDER BY updated_at DESC, id DESC LIMIT 1",
            )
            .bind(shop)
            .bind(&norm)
            .fetch_optional(p)
            .await?
            .map(|r| customer_from(&r))
            .transpose()?;
            match customer {
                None => None,
                Some(c) => {
                    let orders = sqlx::query(&sql)
                        .bind(shop)
                        .bind(c.id)
                        .fetch_all(p)
                        .await?
                        .iter()
                        .map(order_from)
                        .collect::<Result<Vec<_>>>()?;
                    Some((c, orders))
                }
            }
        });
        let Some((customer, mut orders)) = found else {
            return Ok(None);
        };
        self.attach_children(shop, &mut orders).await?;
        Ok(Some((customer, orders)))
    }

    /// How much the shop holds: products, orders, open orders (neither
    /// cancelled nor closed: fulfilled and paid), customers.
    pub async fn mirror_counts(&self, shop: &str) -> Result<MirrorCounts> {
        on_pool!(self, |p| {
            let r = sqlx::query(
                "SELECT
                   (SELECT COUNT(*) FROM mirror_products
                      WHERE shop = $1 AND deleted_at IS NULL) AS products,
                   (SELECT CAST(COALESCE(SUM(orders), 0) AS BIGINT) FROM mirror_daily_sales
                      WHERE shop = $1) AS orders,
                   (SELECT CAST(COALESCE(SUM(open_orders), 0) AS BIGINT) FROM mirror_daily_sales
                      WHERE shop = $1) AS open_orders,
                   (SELECT COUNT(*) FROM mirror_customers
                      WHERE shop = $1 AND deleted_at IS NULL) AS customers",
            )
            .bind(shop)
            .fetch_one(p)
            .await?;
            Ok(MirrorCounts {
                products: count(r.int("products")?),
                orders: count(r.int("orders")?),
                open_orders: count(r.int("open_orders")?),
                customers: count(r.int("customers")?),
            })
        })
    }

    /// Orders, revenue and refunded amounts per day or per week (Monday to
    /// Sunday; the first and last weeks cut by the range) over shop days
    /// `from..=to`: every bucket of the range, zeros included, oldest first.
    pub async fn mirror_series(
        &self,
        shop: &str,
        from: NaiveDate,
        to: NaiveDate,
        bucket: SeriesBucket,
    ) -> Result<Vec<MirrorSeriesPoint>> {
        let start_of = |d: NaiveDate| match bucket {
            SeriesBucket::Day => d,
            SeriesBucket::Week => {
                let monday = d
                    .checked_sub_days(Days::new(u64::from(d.weekday().num_days_from_monday())))
                    .unwrap_or(d);
                monday.max(from)
            }
        };
        let mut points: BTreeMap<NaiveDate, MirrorSeriesPoint> = BTreeMap::new();
        for d in from.iter_days().take_while(|d| *d <= to) {
            let start = start_of(d);
            points.entry(start).or_insert(MirrorSeriesPoint {
                start,
                orders: 0,
                revenue: Money::ZERO,
                refunded: Money::ZERO,
            });
        }
        for r in self.day_rows(shop, from, to).await? {
            if let Some(point) = points.get_mut(&start_of(r.day)) {
                point.orders += r.orders;
                point.revenue = point.revenue + r.revenue;
                point.refunded = point.refunded + r.refunded;
            }
        }
        Ok(points.into_values().collect())
    }

    /// Orders placed over shop days `from..=to`, counted by financial
    /// status and by fulfillment status.
    pub async fn mirror_orders_by_status(
        &self,
        shop: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<MirrorOrdersByStatus> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, |p| {
            sqlx::query(
                "SELECT financial_status, fulfillment_status,
                   CAST(SUM(orders) AS BIGINT) AS orders
                 FROM mirror_daily_statuses WHERE shop = $1 AND day BETWEEN $2 AND $3
                 GROUP BY financial_status, fulfillment_status",
            )
            .bind(shop)
            .bind(day_number(from))
            .bind(day_number(to))
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.text("financial_status")?,
                    r.text("fulfillment_status")?,
                    r.int("orders")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?
        });
        let mut financial: BTreeMap<String, u64> = BTreeMap::new();
        let mut fulfillment: BTreeMap<String, u64> = BTreeMap::new();
        let mut orders = 0;
        for (fin, ful, n) in rows {
            let n = count(n);
            orders += n;
            *financial.entry(fin).or_default() += n;
            *fulfillment.entry(ful).or_default() += n;
        }
        let list = |m: BTreeMap<String, u64>| {
            let mut v: Vec<MirrorStatusCount> = m
                .into_iter()
                .map(|(s, orders)| MirrorStatusCount {
                    status: (!s.is_empty()).then_some(s),
                    orders,
                })
                .collect();
            v.sort_by(|a, b| {
                b.orders
                    .cmp(&a.orders)
                    .then_with(|| a.status.cmp(&b.status))
            });
            v
        };
        Ok(MirrorOrdersByStatus {
            orders,
            financial: list(financial),
            fulfillment: list(fulfillment),
        })
    }

    /// Whether shop `shop` has orders with a customer before shop day
    /// `from` and after shop day `to`: a range with none before (after)
    /// reaches the start (end) of the customers' history, and the
    /// per-customer rollup answers for it.
    async fn customer_orders_outside(
        &self,
        shop: &str,
        from: i64,
        to: i64,
    ) -> Result<(bool, bool)> {
        // The first and last days of the orders with a customer, each read
        // from one end of the day index: one plan whatever the range (an
        // `EXISTS` over the range is planned, once generic, as a scan of
        // the whole shop).
        on_pool!(self, |p| {
            let r = sqlx::query(
                "SELECT
                   (SELECT created_day FROM mirror_orders
                    WHERE shop = $1 AND customer_id IS NOT NULL
                    ORDER BY created_day ASC LIMIT 1) AS first_day,
                   (SELECT created_day FROM mirror_orders
                    WHERE shop = $1 AND customer_id IS NOT NULL
                    ORDER BY created_day DESC LIMIT 1) AS last_day",
            )
            .bind(shop)
            .fetch_one(p)
            .await?;
            let before = r.opt_int("first_day")?.is_some_and(|first| first < from);
            let after = r.opt_int("last_day")?.is_some_and(|last| last > to);
            Ok((before, after))
        })
    }

    /// Orders placed over shop days `from..=to` (from the daily rollup).
    async fn orders_in_range(&self, shop: &str, from: i64, to: i64) -> Result<i64> {
        on_pool!(self, |p| {
            Ok(sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(orders), 0) AS BIGINT) FROM mirror_daily_sales
                 WHERE shop = $1 AND day BETWEEN $2 AND $3",
            )
            .bind(shop)
            .bind(from)
            .bind(to)
            .fetch_one(p)
            .await?)
        })
    }

    /// Customers who ordered over shop days `from..=to`: how many, how many
    /// ordered twice or more in the range, and how many had ordered before
    /// `from`. A range reaching either end of the customers' history reads
    /// the per-customer rollup (one row per customer); one strictly inside
    /// it reads the range's orders, or when it holds more than
    /// [`DIRECT_ORDERS`], the rollup less the orders outside it.
    pub async fn mirror_repeat_customers(
        &self,
        shop: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<MirrorRepeatCustomers> {
        let (from, to) = (day_number(from), day_number(to));
        let (before, after) = self.customer_orders_outside(shop, from, to).await?;
        let long = before && after && self.orders_in_range(shop, from, to).await? > DIRECT_ORDERS;
        let sql = if !before {
            // Nobody ordered before `from`: a customer's first order is in
            // the range if it is on or before `to`; their second too if
            // theirs is.
            "SELECT CAST(COUNT(*) AS BIGINT) AS customers,
               CAST(COALESCE(SUM(CASE WHEN second_day <= $3 THEN 1 ELSE 0 END), 0) AS BIGINT)
                 AS repeat_customers,
               CAST(0 AS BIGINT) AS returning_customers
             FROM mirror_customer_totals WHERE shop = $1 AND first_day <= $3"
        } else if !after {
            // Nobody ordered after `to`: likewise from the last orders.
            "SELECT CAST(COUNT(*) AS BIGINT) AS customers,
               CAST(COALESCE(SUM(CASE WHEN penultimate_day >= $2 THEN 1 ELSE 0 END), 0)
                 AS BIGINT) AS repeat_customers,
               CAST(COALESCE(SUM(CASE WHEN first_day < $2 THEN 1 ELSE 0 END), 0) AS BIGINT)
                 AS returning_customers
             FROM mirror_customer_totals WHERE shop = $1 AND last_day >= $2"
        } else if long {
            // A long range inside the history: each customer's orders in
            // it are all theirs but the few outside it.
            "WITH outside AS (
               SELECT customer_id, COUNT(*) AS n,
                 SUM(CASE WHEN created_day < $2 THEN 1 ELSE 0 END) AS before
               FROM (
                 SELECT customer_id, created_day FROM mirror_orders
                 WHERE shop = $1 AND created_day < $2 AND customer_id IS NOT NULL
                 UNION ALL
                 SELECT customer_id, created_day FROM mirror_orders
                 WHERE shop = $1 AND created_day > $3 AND customer_id IS NOT NULL
               ) x
               GROUP BY customer_id
             )
             SELECT CAST(COUNT(*) AS BIGINT) AS customers,
               CAST(COALESCE(SUM(CASE WHEN t.orders - COALESCE(o.n, 0) >= 2 THEN 1 ELSE 0 END),
                 0) AS BIGINT) AS repeat_customers,
               CAST(COALESCE(SUM(CASE WHEN COALESCE(o.before, 0) > 0 THEN 1 ELSE 0 END), 0)
                 AS BIGINT) AS returning_customers
             FROM mirror_customer_totals t LEFT JOIN outside o ON o.customer_id = t.customer_id
             WHERE t.shop = $1 AND t.last_day >= $2 AND t.first_day <= $3
               AND t.orders > COALESCE(o.n, 0)"
        } else {
            "WITH c AS (
               SELECT customer_id, COUNT(*) AS in_range
               FROM mirror_orders
               WHERE shop = $1 AND created_day BETWEEN $2 AND $3 AND customer_id IS NOT NULL
               GROUP BY customer_id
             )
             SELECT CAST(COUNT(*) AS BIGINT) AS customers,
               CAST(COALESCE(SUM(CASE WHEN c.in_range >= 2 THEN 1 ELSE 0 END), 0) AS BIGINT)
                 AS repeat_customers,
               CAST(COALESCE(SUM(CASE WHEN t.first_day < $2 THEN 1 ELSE 0 END), 0) AS BIGINT)
                 AS returning_customers
             FROM c JOIN mirror_customer_totals t
               ON t.shop = $1 AND t.customer_id = c.customer_id"
        };
        on_pool!(self, |p| {
            let r = sqlx::query(sql)
                .bind(shop)
                .bind(from)
                .bind(to)
                .fetch_one(p)
                .await?;
            let without: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM mirror_orders
                 WHERE shop = $1 AND created_day BETWEEN $2 AND $3 AND customer_id IS NULL",
            )
            .bind(shop)
            .bind(from)
            .bind(to)
            .fetch_one(p)
            .await?;
            Ok(MirrorRepeatCustomers {
                customers: count(r.int("customers")?),
                repeat_customers: count(r.int("repeat_customers")?),
                returning_customers: count(r.int("returning_customers")?),
                orders_without_customer: count(without),
            })
        })
    }

    /// The customers who spent most over shop days `from..=to` (sum of
    /// their order totals; ties by customer id), with their stored name and
    /// email. A range holding every order with a customer reads the
    /// per-customer rollup; a short one (at most [`DIRECT_ORDERS`] orders)
    /// sums its orders; a longer one takes the biggest spenders overall as
    /// candidates, best first, and sums each one's orders in the range
    /// until no later candidate can enter the list (order totals are never
    /// negative, so a customer's range spend is at most their overall one).
    pub async fn mirror_top_customers(
        &self,
        shop: &str,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Vec<MirrorTopCustomer>> {
        let (from, to) = (day_number(from), day_number(to));
        let limit = limit as usize;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (before, after) = self.customer_orders_outside(shop, from, to).await?;
        // (customer, orders, revenue), best first.
        let mut best: Vec<(i64, i64, i64)> = Vec::new();
        if !before && !after {
            best = on_pool!(self, |p| {
                sqlx::query(
                    "SELECT customer_id, orders, revenue FROM mirror_customer_totals
                     WHERE shop = $1 ORDER BY revenue DESC, customer_id ASC LIMIT $2",
                )
                .bind(shop)
                .bind(limit as i64)
                .fetch_all(p)
                .await?
                .iter()
                .map(customer_spend_from)
                .collect::<Result<Vec<_>>>()?
            });
        } else {
            if self.orders_in_range(shop, from, to).await? <= DIRECT_ORDERS {
                best = on_pool!(self, |p| {
                    sqlx::query(
                        "SELECT customer_id, COUNT(*) AS orders,
                           CAST(SUM(total) AS BIGINT) AS revenue
                         FROM mirror_orders
                         WHERE shop = $1 AND created_day BETWEEN $2 AND $3
                           AND customer_id IS NOT NULL
                         GROUP BY customer_id
                         ORDER BY revenue DESC, customer_id ASC LIMIT $4",
                    )
                    .bind(shop)
                    .bind(from)
                    .bind(to)
                    .bind(limit as i64)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(customer_spend_from)
                    .collect::<Result<Vec<_>>>()?
                });
            } else {
                let mut offset = 0_i64;
                let mut batch = (limit as i64 * 4).clamp(32, ID_CHUNK as i64);
                loop {
                    let candidates: Vec<(i64, i64)> = on_pool!(self, |p| {
                        sqlx::query(
                            "SELECT customer_id, revenue FROM mirror_customer_totals
                             WHERE shop = $1 AND last_day >= $2 AND first_day <= $3
                             ORDER BY revenue DESC, customer_id ASC LIMIT $4 OFFSET $5",
                        )
                        .bind(shop)
                        .bind(from)
                        .bind(to)
                        .bind(batch)
                        .bind(offset)
                        .fetch_all(p)
                        .await?
                        .iter()
                        .map(|r| Ok((r.int("customer_id")?, r.int("revenue")?)))
                        .collect::<Result<Vec<_>>>()?
                    });
                    let Some(&(_, bound)) = candidates.last() else {
                        break;
                    };
                    offset += candidates.len() as i64;
                    batch = (batch * 2).min(ID_CHUNK as i64);
                    let sums: Vec<(i64, i64, i64)> = on_pool!(self, |p| {
                        // By customer (their index), the range in the sums.
                        let mut qb = sqlx::QueryBuilder::new(
                            "SELECT customer_id, CAST(SUM(CASE WHEN created_day BETWEEN ",
                        );
                        qb.push_bind(from)
                            .push(" AND ")
                            .push_bind(to)
                            .push(" THEN 1 ELSE 0 END) AS BIGINT) AS orders, CAST(SUM(CASE WHEN created_day BETWEEN ")
                            .push_bind(from)
                            .push(" AND ")
                            .push_bind(to)
                            .push(" THEN total ELSE 0 END) AS BIGINT) AS revenue FROM mirror_orders WHERE shop = ")
                            .push_bind(shop)
                            .push(" AND customer_id IN (");
                        let mut list = qb.separated(", ");
                        for (id, _) in &candidates {
                            list.push_bind(*id);
                        }
                        qb.push(") GROUP BY customer_id");
                        qb.build()
                            .fetch_all(p)
                            .await?
                            .iter()
                            .map(customer_spend_from)
                            .collect::<Result<Vec<_>>>()?
                    });
                    best.extend(sums.into_iter().filter(|(_, orders, _)| *orders > 0));
                    best.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
                    best.truncate(limit);
                    // A later candidate spent at most `bound` overall.
                    if best.len() == limit && best.last().is_some_and(|w| w.2 > bound) {
                        break;
                    }
                }
            }
        }
        if best.is_empty() {
            return Ok(Vec::new());
        }
        let people: HashMap<i64, (Option<String>, Option<String>)> = on_pool!(self, |p| {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT id, name, email FROM mirror_customers WHERE shop = ",
            );
            qb.push_bind(shop)
                .push(" AND deleted_at IS NULL AND id IN (");
            let mut list = qb.separated(", ");
            for (id, _, _) in &best {
                list.push_bind(*id);
            }
            qb.push(")");
            qb.build()
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok((r.int("id")?, (r.opt_text("name")?, r.opt_text("email")?))))
                .collect::<Result<HashMap<_, _>>>()?
        });
        Ok(best
            .into_iter()
            .map(|(customer_id, orders, revenue)| {
                let (name, email) = people.get(&customer_id).cloned().unwrap_or_default();
                MirrorTopCustomer {
                    customer_id,
                    name,
                    email,
                    orders: count(orders),
                    revenue: Money::from_micros(revenue),
                }
            })
            .collect())
    }

    /// Refunds made over shop days `from..=to` (by the refund's own date):
    /// how many, their sum, and the newest `limit` with their notes.
    pub async fn mirror_refunds(
        &self,
        shop: &str,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<MirrorRefunds> {
        let (from, to) = (day_number(from), day_number(to));
        on_pool!(self, |p| {
            let totals = sqlx::query(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS amount
                 FROM mirror_refunds WHERE shop = $1 AND created_day BETWEEN $2 AND $3",
            )
            .bind(shop)
            .bind(from)
            .bind(to)
            .fetch_one(p)
            .await?;
            // The newest `limit` from the day index first, then only
            // their rows and orders.
            let refunds = sqlx::query(
                "SELECT r.order_id, o.name AS order_name, r.id, r.created_at, r.amount, r.note
                 FROM (
                   SELECT order_id, id, created_at FROM mirror_refunds
                   WHERE shop = $1 AND created_day BETWEEN $2 AND $3
                   ORDER BY created_at DESC, id DESC LIMIT $4
                 ) n
                 JOIN mirror_refunds r ON r.shop = $1 AND r.order_id = n.order_id AND r.id = n.id
                 JOIN mirror_orders o ON o.shop = $1 AND o.id = n.order_id
                 ORDER BY n.created_at DESC, n.id DESC",
            )
            .bind(shop)
            .bind(from)
            .bind(to)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| {
                Ok(MirrorRefundEntry {
                    order_id: r.int("order_id")?,
                    order_name: r.text("order_name")?,
                    refund: refund_from(r)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            Ok(MirrorRefunds {
                count: count(totals.int("n")?),
                amount: Money::from_micros(totals.int("amount")?),
                refunds,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        assert_eq!(day_number(epoch), 0);
        let d = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap_or_default();
        assert_eq!(day_from_number(day_number(d)).ok(), Some(d));
        assert!(day_from_number(i64::MAX).is_err());
    }

    #[test]
    fn ranges_split_into_days_and_whole_months() {
        let d = |y, m, d| day_number(NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default());
        let day = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap_or_default();
        assert_eq!(
            split_months(day(2026, 1, 15), day(2026, 4, 10)),
            [
                (d(2026, 1, 15), d(2026, 1, 31)),
                (d(2026, 2, 1), d(2026, 3, 1)),
                (d(2026, 4, 1), d(2026, 4, 10)),
            ]
        );
        assert_eq!(
            split_months(day(2026, 2, 1), day(2026, 2, 28)),
            [
                (d(2026, 2, 1), d(2026, 2, 1) - 1),
                (d(2026, 2, 1), d(2026, 2, 1)),
                (d(2026, 3, 1), d(2026, 2, 28)),
            ]
        );
        assert_eq!(
            split_months(day(2026, 2, 2), day(2026, 3, 30)),
            [(d(2026, 2, 2), d(2026, 3, 30)), (1, 0), (1, 0)]
        );
    }

    #[test]
    fn touched_days_group_into_runs() {
        let days: BTreeSet<i64> = [1, 2, 5, 30, 31, 100].into_iter().collect();
        assert_eq!(day_runs(&days), vec![(1, 5), (30, 31), (100, 100)]);
    }
}
