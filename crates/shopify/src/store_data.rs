//! [`StoreData`]: the store data behind CJ's tools, for one merchant. It
//! lives here, beside the live implementation, so that a fake store (the
//! test kit's) can implement it without depending on the agent.

use std::collections::BTreeMap;

use crate::{
    CustomerDetails, OrderSummary, SalesSummary, ShopifyDataFetcher, ShopifyError, StoreCounts,
    StoreOverview, TopProducts,
};
use async_trait::async_trait;
use chrono::{Datelike, Days, NaiveDate};
use hirecj_domain::mirror::{
    MirrorOrdersByStatus, MirrorRefunds, MirrorRepeatCustomers, MirrorSeriesPoint, MirrorSync,
    MirrorTopCustomer, MirrorTopProducts, Money, SeriesBucket,
};

/// The store data behind the tools, for one merchant. Implemented for
/// [`ShopifyDataFetcher`] (live queries); the server's mirrored store
/// answers from CJ's copy of the store; tests use fakes. A trait (and not
/// the fetcher itself) so tools, the agent loop and evals run against fixed
/// data.
///
/// The first methods can be answered live; the `Mirrored` ones
/// ([`repeat_customers`](Self::repeat_customers) and after) need the
/// store's whole history, which only the mirror holds: without it they
/// answer [`Mirrored::Reading`], never a guess.
#[async_trait]
pub trait StoreData: Send + Sync {
    /// See [`ShopifyDataFetcher::store_counts`].
    async fn store_counts(&self) -> Result<StoreCounts, ShopifyError>;
    /// See [`ShopifyDataFetcher::store_overview`].
    async fn store_overview(&self) -> Result<StoreOverview, ShopifyError>;
    /// See [`ShopifyDataFetcher::recent_orders`].
    async fn recent_orders(&self, limit: u32) -> Result<Vec<OrderSummary>, ShopifyError>;
    /// See [`ShopifyDataFetcher::orders_last_week`].
    async fn orders_last_week(&self) -> Result<SalesSummary, ShopifyError>;
    /// See [`ShopifyDataFetcher::sales_summary`].
    async fn sales_summary(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SalesSummary, ShopifyError>;
    /// See [`ShopifyDataFetcher::top_products`].
    async fn top_products(&self, days: u32, limit: u32) -> Result<TopProducts, ShopifyError>;
    /// See [`ShopifyDataFetcher::customer_by_email`].
    async fn customer_by_email(&self, email: &str)
    -> Result<Option<CustomerDetails>, ShopifyError>;
    /// Orders, revenue and refunds per day or week over shop days
    /// `from..=to`, every bucket included (live: [`series_from_summary`]).
    async fn sales_series(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        bucket: SeriesBucket,
    ) -> Result<SalesSeriesData, ShopifyError>;
    /// Customers who ordered over `from..=to`, and who came back.
    async fn repeat_customers(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Mirrored<MirrorRepeatCustomers>, ShopifyError>;
    /// The `limit` customers who spent most over `from..=to`.
    async fn top_customers(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Mirrored<Vec<MirrorTopCustomer>>, ShopifyError>;
    /// Refunds made over `from..=to`: count, total and the newest `limit`
    /// with their notes.
    async fn refunds(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Mirrored<MirrorRefunds>, ShopifyError>;
    /// Units, orders and revenue per product over `from..=to`, ranked by
    /// revenue, the first `limit`.
    async fn product_performance(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Mirrored<MirrorTopProducts>, ShopifyError>;
    /// Orders placed over `from..=to` by financial and fulfillment status.
    async fn orders_by_status(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Mirrored<MirrorOrdersByStatus>, ShopifyError>;
    /// Where CJ's copy of the store stands (`None`: CJ keeps no copy and
    /// reads live).
    async fn sync_status(&self) -> Result<Option<MirrorSync>, ShopifyError>;
}

/// What a question that needs the store's whole history gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirrored<T> {
    /// The figures, from CJ's copy of the store.
    Ready {
        /// The figures.
        figures: T,
        /// How to read them.
        basis: Basis,
    },
    /// CJ is still reading the store (or keeps no copy): no figures.
    Reading {
        /// Orders read so far, when a backfill is under way.
        orders_read: Option<u64>,
    },
    /// CJ's copy of the store could not be read just now.
    Unavailable,
}

/// How to read figures from CJ's copy of the store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Basis {
    /// The time zone whose midnights cut the days, with its offset.
    pub timezone: String,
    /// The shop currency of the amounts, when known.
    pub currency: Option<String>,
    /// Part of the range lies before the orders the app may see.
    pub beyond_visibility_window: bool,
    /// Why the figures may not cover the whole range.
    pub note: Option<String>,
}

/// Sales per bucket over a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesSeriesData {
    /// First day (shop time).
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// Days or weeks.
    pub bucket: SeriesBucket,
    /// Every bucket of the range, oldest first.
    pub points: Vec<MirrorSeriesPoint>,
    /// Whether `refunded` is known per bucket (a live answer knows only
    /// the total).
    pub refunds_per_point: bool,
    /// Refunded on the range's orders, in total.
    pub refunded: Money,
    /// How to read the figures.
    pub basis: Basis,
    /// A live answer stopped at its page cap: only the newest orders count.
    pub truncated: bool,
}

/// A live sales summary cut into days or weeks (Monday to Sunday, the
/// first and last cut by the range), every bucket included. A live summary
/// carries no refunds per day, so `refunds_per_point` is false.
pub fn series_from_summary(summary: &SalesSummary, bucket: SeriesBucket) -> SalesSeriesData {
    let (from, to) = (summary.from, summary.to);
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
    for day in &summary.per_day {
        if let Some(p) = points.get_mut(&start_of(day.date)) {
            p.orders += day.orders;
            p.revenue = p.revenue + day.revenue.to_money().unwrap_or_default();
        }
    }
    SalesSeriesData {
        from,
        to,
        bucket,
        points: points.into_values().collect(),
        refunds_per_point: false,
        refunded: summary.refunded.to_money().unwrap_or_default(),
        basis: Basis {
            timezone: summary.timezone.clone(),
            currency: summary.currency.clone(),
            beyond_visibility_window: summary.beyond_visibility_window,
            note: summary.note.clone(),
        },
        truncated: summary.truncated,
    }
}

#[async_trait]
impl StoreData for ShopifyDataFetcher {
    async fn store_counts(&self) -> Result<StoreCounts, ShopifyError> {
        ShopifyDataFetcher::store_counts(self).await
    }
    async fn store_overview(&self) -> Result<StoreOverview, ShopifyError> {
        ShopifyDataFetcher::store_overview(self).await
    }
    async fn recent_orders(&self, limit: u32) -> Result<Vec<OrderSummary>, ShopifyError> {
        ShopifyDataFetcher::recent_orders(self, limit).await
    }
    async fn orders_last_week(&self) -> Result<SalesSummary, ShopifyError> {
        ShopifyDataFetcher::orders_last_week(self).await
    }
    async fn sales_summary(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SalesSummary, ShopifyError> {
        ShopifyDataFetcher::sales_summary(self, from, to).await
    }
    async fn top_products(&self, days: u32, limit: u32) -> Result<TopProducts, ShopifyError> {
        ShopifyDataFetcher::top_products(self, days, limit).await
    }
    async fn customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<CustomerDetails>, ShopifyError> {
        ShopifyDataFetcher::customer_by_email(self, email).await
    }
    async fn sales_series(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        bucket: SeriesBucket,
    ) -> Result<SalesSeriesData, ShopifyError> {
        let summary = ShopifyDataFetcher::sales_summary(self, from, to).await?;
        Ok(series_from_summary(&summary, bucket))
    }
    async fn repeat_customers(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
    ) -> Result<Mirrored<MirrorRepeatCustomers>, ShopifyError> {
        Ok(Mirrored::Reading { orders_read: None })
    }
    async fn top_customers(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
        _limit: u32,
    ) -> Result<Mirrored<Vec<MirrorTopCustomer>>, ShopifyError> {
        Ok(Mirrored::Reading { orders_read: None })
    }
    async fn refunds(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
        _limit: u32,
    ) -> Result<Mirrored<MirrorRefunds>, ShopifyError> {
        Ok(Mirrored::Reading { orders_read: None })
    }
    async fn product_performance(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
        _limit: u32,
    ) -> Result<Mirrored<MirrorTopProducts>, ShopifyError> {
        Ok(Mirrored::Reading { orders_read: None })
    }
    async fn orders_by_status(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
    ) -> Result<Mirrored<MirrorOrdersByStatus>, ShopifyError> {
        Ok(Mirrored::Reading { orders_read: None })
    }
    async fn sync_status(&self) -> Result<Option<MirrorSync>, ShopifyError> {
        Ok(None)
    }
}
