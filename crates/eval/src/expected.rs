//! What the development store's own data says: every figure CJ's tools
//! report, computed directly from a shop's [`Dataset`] (never from the
//! mirror or the fetcher), so that an eval or a test comparing the two
//! proves the mirror equals the source.
//!
//! [`Source`] is the orders CJ can have read: created at or before `until`
//! (the end of the backfill) and, without `read_all_orders`, not before
//! `since` (the start of what Shopify shows). Days are the shop's own.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use hirecj_devstore::{Dataset, FinancialStatus, FulfillmentStatus, Order};
use hirecj_domain::mirror::{
    MirrorOrdersByStatus, MirrorProductSales, MirrorRefund, MirrorRefundEntry, MirrorRefunds,
    MirrorRepeatCustomers, MirrorSeriesPoint, MirrorStatusCount, MirrorTopCustomer, Money,
    SeriesBucket, ShopTimeZone, line_refund,
};

/// Sales over a range, as the sales summary reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sales {
    /// Orders placed (cancelled included).
    pub orders: u64,
    /// Of which cancelled.
    pub cancelled: u64,
    /// Sum of order totals.
    pub revenue: Money,
    /// Sum refunded on them.
    pub refunded: Money,
}

impl Sales {
    /// Revenue per order in cents, rounded half away from zero (as the
    /// summary's average order value).
    pub fn average_order_value_cents(&self) -> i64 {
        if self.orders == 0 {
            return 0;
        }
        let cents = self.revenue.micros() / 10_000;
        let n = self.orders as i64;
        (cents * 2 + n) / (2 * n)
    }
}

/// A shop's data as CJ can have read it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    ds: &'a Dataset,
    zone: ShopTimeZone,
    since: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
}

fn cents(c: i64) -> Money {
    Money::from_cents(c)
}

/// Shopify's word for a financial status.
pub fn financial_word(s: FinancialStatus) -> &'static str {
    match s {
        FinancialStatus::Authorized => "AUTHORIZED",
        FinancialStatus::Paid => "PAID",
        FinancialStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
        FinancialStatus::Pending => "PENDING",
        FinancialStatus::Refunded => "REFUNDED",
        FinancialStatus::Voided => "VOIDED",
    }
}

/// Shopify's word for a fulfillment status.
pub fn fulfillment_word(s: FulfillmentStatus) -> &'static str {
    match s {
        FulfillmentStatus::Fulfilled => "FULFILLED",
        FulfillmentStatus::Unfulfilled => "UNFULFILLED",
        FulfillmentStatus::PartiallyFulfilled => "PARTIALLY_FULFILLED",
    }
}

impl<'a> Source<'a> {
    /// The orders of `ds` created in `since..=until` (`since`: none before
    /// it; `None`: the whole history), days cut in the shop's zone.
    pub fn new(ds: &'a Dataset, since: Option<DateTime<Utc>>, until: DateTime<Utc>) -> Self {
        let zone = ds.shop.iana_timezone.parse().unwrap_or(ShopTimeZone::UTC);
        Self {
            ds,
            zone,
            since,
            until,
        }
    }

    /// The shop's data.
    pub fn dataset(&self) -> &'a Dataset {
        self.ds
    }

    /// The shop's zone.
    pub fn zone(&self) -> ShopTimeZone {
        self.zone
    }

    /// The shop's day at `at`.
    pub fn day_of(&self, at: DateTime<Utc>) -> NaiveDate {
        self.zone.day_of(at)
    }

    /// Every order CJ can have read, oldest first.
    pub fn all_orders(&self) -> impl Iterator<Item = &'a Order> + '_ {
        let (since, until) = (self.since, self.until);
        self.ds
            .orders
            .iter()
            .filter(move |o| o.created_at <= until && since.is_none_or(|s| o.created_at >= s))
    }

    /// The orders placed on shop days `from..=to`, oldest first.
    pub fn orders(&self, from: NaiveDate, to: NaiveDate) -> Vec<&'a Order> {
        self.all_orders()
            .filter(|o| (from..=to).contains(&self.day_of(o.created_at)))
            .collect()
    }

    /// Orders, cancellations, revenue and refunds over `from..=to`.
    pub fn sales(&self, from: NaiveDate, to: NaiveDate) -> Sales {
        let orders = self.orders(from, to);
        Sales {
            orders: orders.len() as u64,
            cancelled: orders.iter().filter(|o| o.cancelled_at.is_some()).count() as u64,
            revenue: orders.iter().map(|o| cents(o.total)).sum(),
            refunded: orders.iter().map(|o| cents(o.total_refunded)).sum(),
        }
    }

    /// Orders, revenue and refunds per day or week (Monday to Sunday, cut
    /// by the range), every bucket, oldest first.
    pub fn series(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        bucket: SeriesBucket,
    ) -> Vec<MirrorSeriesPoint> {
        let start_of = |d: NaiveDate| match bucket {
            SeriesBucket::Day => d,
            SeriesBucket::Week => d
                .checked_sub_days(Days::new(u64::from(d.weekday().num_days_from_monday())))
                .unwrap_or(d)
                .max(from),
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
        for o in self.orders(from, to) {
            if let Some(p) = points.get_mut(&start_of(self.day_of(o.created_at))) {
                p.orders += 1;
                p.revenue = p.revenue + cents(o.total);
                p.refunded = p.refunded + cents(o.total_refunded);
            }
        }
        points.into_values().collect()
    }

    /// Customers who ordered over `from..=to`, who ordered twice or more
    /// in it, and who had ordered before it.
    pub fn repeat_customers(&self, from: NaiveDate, to: NaiveDate) -> MirrorRepeatCustomers {
        let mut per: HashMap<u64, (u64, NaiveDate)> = HashMap::new();
        let mut guests = 0;
        for o in self.all_orders() {
            let day = self.day_of(o.created_at);
            if day > to {
                continue;
            }
            let Some(c) = o.customer_id else {
                if day >= from {
                    guests += 1;
                }
                continue;
            };
            let e = per.entry(c).or_insert((0, day));
            e.1 = e.1.min(day);
            if day >= from {
                e.0 += 1;
            }
        }
        let active: Vec<_> = per.values().filter(|(n, _)| *n > 0).collect();
        MirrorRepeatCustomers {
            customers: active.len() as u64,
            repeat_customers: active.iter().filter(|(n, _)| *n >= 2).count() as u64,
            returning_customers: active.iter().filter(|(_, first)| *first < from).count() as u64,
            orders_without_customer: guests,
        }
    }

    /// The `limit` customers who spent most over `from..=to` (ties by id).
    pub fn top_customers(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Vec<MirrorTopCustomer> {
        let mut per: HashMap<u64, (u64, Money)> = HashMap::new();
        for o in self.orders(from, to) {
            if let Some(c) = o.customer_id {
                let e = per.entry(c).or_insert((0, Money::ZERO));
                e.0 += 1;
                e.1 = e.1 + cents(o.total);
            }
        }
        let mut list: Vec<(u64, u64, Money)> =
            per.into_iter().map(|(id, (n, m))| (id, n, m)).collect();
        list.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        list.truncate(limit);
        list.into_iter()
            .map(|(id, orders, revenue)| {
                let c = self.ds.customer(id);
                MirrorTopCustomer {
                    customer_id: id as i64,
                    name: c.map(|c| c.display_name()),
                    email: c.map(|c| c.email.clone()),
                    orders,
                    revenue,
                }
            })
            .collect()
    }

    /// Refunds made on shop days `from..=to` (of the orders CJ can have
    /// read): count, sum and the newest `limit`.
    pub fn refunds(&self, from: NaiveDate, to: NaiveDate, limit: usize) -> MirrorRefunds {
        let mut all: Vec<MirrorRefundEntry> = Vec::new();
        for o in self.all_orders() {
            for r in o.refunds() {
                if (from..=to).contains(&self.day_of(r.created_at)) {
                    all.push(MirrorRefundEntry {
                        order_id: o.id as i64,
                        order_name: o.name(),
                        refund: MirrorRefund {
                            id: r.id as i64,
                            created_at: r.created_at,
                            amount: cents(r.amount),
                            note: r.note,
                        },
                    });
                }
            }
        }
        all.sort_by(|a, b| {
            b.refund
                .created_at
                .cmp(&a.refund.created_at)
                .then(b.refund.id.cmp(&a.refund.id))
        });
        let count = all.len() as u64;
        let amount = all.iter().map(|e| e.refund.amount).sum();
        all.truncate(limit);
        MirrorRefunds {
            count,
            amount,
            refunds: all,
        }
    }

    /// Best sellers over `from..=to`: units and orders per product,
    /// ranked by units, then orders, then title (as CJ ranks them).
    pub fn top_products(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Vec<MirrorProductSales> {
        let mut list = self.product_performance(from, to, usize::MAX);
        list.sort_by(|a, b| {
            b.units
                .cmp(&a.units)
                .then(b.orders.cmp(&a.orders))
                .then_with(|| a.title.cmp(&b.title))
                .then(a.product_id.cmp(&b.product_id))
        });
        list.truncate(limit);
        list
    }

    /// Units, orders and line revenue (price × quantity − the line's share
    /// of the order's discounts) per product over `from..=to`, with the
    /// units its refunds took back and what they sold for, ranked by
    /// revenue, then units, then title.
    pub fn product_performance(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Vec<MirrorProductSales> {
        let mut per: HashMap<u64, MirrorProductSales> = HashMap::new();
        for o in self.orders(from, to) {
            let discounts = o.line_discounts();
            let mut seen: Vec<u64> = Vec::new();
            for (i, l) in o.line_items.iter().enumerate() {
                let e = per.entry(l.product_id).or_insert(MirrorProductSales {
                    product_id: Some(l.product_id as i64),
                    title: l.title.clone(),
                    units: 0,
                    orders: 0,
                    revenue: Money::ZERO,
                    refunded_units: 0,
                    refunded: Money::ZERO,
                });
                let revenue =
                    cents(l.unit_price * l.quantity - discounts.get(i).copied().unwrap_or(0));
                let (refunded_units, refunded) =
                    line_refund(revenue, l.quantity, o.current_quantity(l.id));
                e.title = l.title.clone();
                e.units += l.quantity;
                e.revenue = e.revenue + revenue;
                e.refunded_units += refunded_units;
                e.refunded = e.refunded + refunded;
                if !seen.contains(&l.product_id) {
                    e.orders += 1;
                    seen.push(l.product_id);
                }
            }
        }
        let mut list: Vec<MirrorProductSales> = per.into_values().collect();
        list.sort_by(|a, b| {
            b.revenue
                .cmp(&a.revenue)
                .then(b.units.cmp(&a.units))
                .then_with(|| a.title.cmp(&b.title))
                .then(a.product_id.cmp(&b.product_id))
        });
        list.truncate(limit);
        list
    }

    /// Orders over `from..=to` by financial and by fulfillment status,
    /// most orders first (ties by status).
    pub fn orders_by_status(&self, from: NaiveDate, to: NaiveDate) -> MirrorOrdersByStatus {
        let orders = self.orders(from, to);
        let mut financial: BTreeMap<&str, u64> = BTreeMap::new();
        let mut fulfillment: BTreeMap<&str, u64> = BTreeMap::new();
        for o in &orders {
            *financial
                .entry(financial_word(o.financial_status))
                .or_default() += 1;
            *fulfillment
                .entry(fulfillment_word(o.fulfillment_status))
                .or_default() += 1;
        }
        let list = |m: BTreeMap<&str, u64>| {
            let mut v: Vec<MirrorStatusCount> = m
                .into_iter()
                .map(|(s, orders)| MirrorStatusCount {
                    status: Some(s.to_owned()),
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
        MirrorOrdersByStatus {
            orders: orders.len() as u64,
            financial: list(financial),
            fulfillment: list(fulfillment),
        }
    }
}
