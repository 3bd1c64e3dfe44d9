//! [`MirroredStore`]: CJ's store data for one merchant, answered from the
//! mirror by SQL once the backfill has read the store, and from live Admin
//! API queries (saying so) until then.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Days, NaiveDate, Utc};
use hirecj_agent::tools::{Basis, Mirrored, SalesSeriesData, StoreData, series_from_summary};
use hirecj_domain::mirror::{
    BackfillState, MirrorOrder, MirrorOrdersByStatus, MirrorProductSales, MirrorRefunds,
    MirrorRepeatCustomers, MirrorSync, MirrorTopCustomer, MirrorTopProducts, Money, SeriesBucket,
    ShopTimeZone,
};
use hirecj_shopify::fetcher::{
    OVERVIEW_RECENT_ORDERS, SUMMARY_TOP_PRODUCTS, VISIBILITY_WINDOW_DAYS,
};
use hirecj_shopify::{
    Amount, Count, CustomerDetails, CustomerRef, DaySales, LineItem, OrderSummary, ProductSales,
    SalesSummary, ShopifyDataFetcher, ShopifyError, StoreCounts, StoreOverview, TopProducts,
};
use hirecj_store::Store;

/// How long a live aggregate may page while the mirror's backfill runs.
const LIVE_PAGING_WHILE_READING: std::time::Duration = std::time::Duration::from_secs(4);

/// The store data behind CJ's tools for one merchant: the mirror when its
/// backfill is complete, the live fetcher (with a note) before.
pub struct MirroredStore {
    store: Store,
    live: Arc<ShopifyDataFetcher>,
    /// The mirror's state when the turn began (one read per turn).
    sync: Option<MirrorSync>,
    now: DateTime<Utc>,
}

impl MirroredStore {
    /// The data of `live`'s shop, reading the mirror's state once. While
    /// the backfill runs, a live aggregate pages for at most
    /// `LIVE_PAGING_WHILE_READING`: on a busy store Shopify's rate limit
    /// would otherwise hold an answer (the prepared post-OAuth message
    /// first) for a minute, for figures the mirror has moments later.
    pub async fn new(store: Store, live: ShopifyDataFetcher) -> Self {
        let sync = match store.mirror_sync(live.shop().as_str()).await {
            Ok(sync) => sync,
            Err(e) => {
                tracing::warn!(shop = %live.shop(), error = %e, "could not read the mirror's state; answering live");
                None
            }
        };
        let reading = sync
            .as_ref()
            .is_some_and(|s| s.state != BackfillState::Complete);
        let live = if reading {
            live.with_paging_budget(LIVE_PAGING_WHILE_READING)
        } else {
            live
        };
        Self {
            store,
            live: Arc::new(live),
            sync,
            now: Utc::now(),
        }
    }

    fn shop(&self) -> &str {
        self.live.shop().as_str()
    }

    /// The mirror's state as read when the turn began (`None`: the shop is
    /// not registered): its zone, currency and money format among it.
    pub fn sync(&self) -> Option<&MirrorSync> {
        self.sync.as_ref()
    }

    /// The mirror's state, when its backfill is complete.
    fn ready(&self) -> Option<&MirrorSync> {
        self.sync
            .as_ref()
            .filter(|s| s.state == BackfillState::Complete)
    }

    fn zone(&self) -> ShopTimeZone {
        self.sync
            .as_ref()
            .map_or(ShopTimeZone::UTC, |s| s.time_zone)
    }

    fn today(&self) -> NaiveDate {
        self.zone().day_of(self.now)
    }

    /// The first day the mirror holds every order of (`None`: all history).
    fn first_covered_day(&self, sync: &MirrorSync) -> Option<NaiveDate> {
        sync.covers_since.map(|at| {
            let zone = self.zone();
            let day = zone.day_of(at);
            // A day that began before the cut is only partly held.
            if zone.start_of(day) < at {
                day.succ_opt().unwrap_or(day)
            } else {
                day
            }
        })
    }

    /// The note a live answer carries while the backfill runs.
    fn reading_note(&self) -> String {
        match &self.sync {
            Some(s) if s.orders_mirrored > 0 => format!(
                "CJ is still reading this store's full order history ({} orders so far); \
                 these figures come from a live query of the newest orders and may be partial.",
                s.orders_mirrored
            ),
            _ => "CJ is still reading this store's order history; these figures come from a live \
                  query of the newest orders and may be partial."
                .to_owned(),
        }
    }

    fn with_reading_note(&self, note: Option<String>) -> Option<String> {
        Some(match note {
            Some(n) => format!("{n} {}", self.reading_note()),
            None => self.reading_note(),
        })
    }

    /// Orders before the visible window, when the mirror does not hold
    /// them: the same flag and note as the live path.
    fn visibility(
        &self,
        sync: &MirrorSync,
        from: NaiveDate,
        to: NaiveDate,
    ) -> (bool, Option<String>) {
        match self.first_covered_day(sync) {
            Some(cutoff) if from < cutoff => {
                let visible_from = cutoff.max(from).min(to);
                (
                    true,
                    Some(format!(
                        "Shopify shows apps only the last {VISIBILITY_WINDOW_DAYS} days of orders \
                         unless the store grants the read_all_orders scope, which it has not: \
                         orders placed before {cutoff} are not visible, so these figures cover \
                         {visible_from} to {to} only."
                    )),
                )
            }
            _ => (false, None),
        }
    }

    fn zone_label(&self) -> String {
        self.zone().label(self.now)
    }

    async fn mirror_summary(
        &self,
        sync: &MirrorSync,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SalesSummary, MirrorFailed> {
        let shop = self.shop();
        let sales = self
            .store
            .mirror_sales(shop, from, to)
            .await
            .map_err(store_error)?;
        let top = self
            .store
            .mirror_top_products(shop, from, to, SUMMARY_TOP_PRODUCTS)
            .await
            .map_err(store_error)?;
        let revenue = amount(sales.revenue);
        let refunded = amount(sales.refunded);
        let (beyond, note) = self.visibility(sync, from, to);
        let per_day: Vec<DaySales> = sales
            .per_day
            .iter()
            .map(|d| DaySales {
                date: d.date,
                orders: d.orders,
                revenue: amount(d.revenue),
            })
            .collect();
        Ok(SalesSummary {
            from,
            to,
            timezone: self.zone_label(),
            currency: sales.currency.clone(),
            orders: sales.orders,
            cancelled_orders: sales.cancelled_orders,
            revenue,
            refunded,
            net_revenue: revenue - refunded,
            average_order_value: revenue
                .div_round_cents(sales.orders)
                .unwrap_or(Amount::ZERO),
            per_day,
            top_products: top.products.into_iter().map(product_sales).collect(),
            beyond_visibility_window: beyond,
            note,
            truncated: false,
        })
    }

    async fn mirror_counts(&self) -> Result<StoreCounts, MirrorFailed> {
        let c = self
            .store
            .mirror_counts(self.shop())
            .await
            .map_err(store_error)?;
        let exact = |count: u64| Count {
            count,
            precision: "EXACT".to_owned(),
        };
        Ok(StoreCounts {
            products: exact(c.products),
            orders: exact(c.orders),
            open_orders: exact(c.open_orders),
            customers: exact(c.customers),
        })
    }

    async fn mirror_recent_orders(&self, limit: u32) -> Result<Vec<OrderSummary>, MirrorFailed> {
        let orders = self
            .store
            .mirror_recent_orders(self.shop(), limit.clamp(1, 50))
            .await
            .map_err(store_error)?;
        Ok(orders.into_iter().map(order_summary).collect())
    }

    async fn mirror_top_products(
        &self,
        sync: &MirrorSync,
        days: u32,
        limit: u32,
    ) -> Result<TopProducts, MirrorFailed> {
        let days = days.clamp(1, 365);
        let limit = limit.clamp(1, 50);
        let to = self.today();
        let from = to
            .checked_sub_days(Days::new(u64::from(days) - 1))
            .unwrap_or(to);
        let top = self
            .store
            .mirror_top_products(self.shop(), from, to, limit as usize)
            .await
            .map_err(store_error)?;
        let (beyond, note) = self.visibility(sync, from, to);
        Ok(TopProducts {
            from,
            to,
            orders_considered: top.orders_considered,
            products: top.products.into_iter().map(product_sales).collect(),
            beyond_visibility_window: beyond,
            note,
            truncated: false,
        })
    }

    async fn mirror_customer(&self, email: &str) -> Result<Option<CustomerDetails>, MirrorFailed> {
        let email = email.trim().to_lowercase();
        let found = self
            .store
            .mirror_customer_by_email(self.shop(), &email)
            .await
            .map_err(store_error)?;
        Ok(found.map(|(customer, orders)| CustomerDetails {
            id: gid("Customer", customer.id),
            email: customer.email,
            name: customer.name,
            recent_orders: orders.into_iter().map(order_summary).collect(),
        }))
    }

    /// How to read the mirror's figures over `from..=to`.
    fn basis(&self, sync: &MirrorSync, from: NaiveDate, to: NaiveDate) -> Basis {
        let (beyond, note) = self.visibility(sync, from, to);
        Basis {
            timezone: self.zone_label(),
            currency: sync.currency.clone(),
            beyond_visibility_window: beyond,
            note,
        }
    }

    /// What a question that needs the whole history gets before the
    /// backfill is complete: the orders read so far, never a guess.
    fn still_reading<T>(&self) -> Mirrored<T> {
        Mirrored::Reading {
            orders_read: self
                .sync
                .as_ref()
                .map(|s| u64::try_from(s.orders_mirrored).unwrap_or(0)),
        }
    }

    /// Answers a history question from the mirror by `query`, once the
    /// backfill is complete; a failing mirror says so rather than guess.
    async fn answer_from_mirror<T, F, Fut>(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        query: F,
    ) -> Mirrored<T>
    where
        F: FnOnce(Store, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, hirecj_store::StoreError>>,
    {
        let Some(sync) = self.ready() else {
            return self.still_reading();
        };
        match query(self.store.clone(), self.shop().to_owned()).await {
            Ok(figures) => Mirrored::Ready {
                figures,
                basis: self.basis(sync, from, to),
            },
            Err(e) => {
                store_error(e);
                Mirrored::Unavailable
            }
        }
    }

    async fn mirror_series(
        &self,
        sync: &MirrorSync,
        from: NaiveDate,
        to: NaiveDate,
        bucket: SeriesBucket,
    ) -> Result<SalesSeriesData, MirrorFailed> {
        let points = self
            .store
            .mirror_series(self.shop(), from, to, bucket)
            .await
            .map_err(store_error)?;
        let refunded = points.iter().map(|p| p.refunded).sum();
        Ok(SalesSeriesData {
            from,
            to,
            bucket,
            points,
            refunds_per_point: true,
            refunded,
            basis: self.basis(sync, from, to),
            truncated: false,
        })
    }
}

#[async_trait]
impl StoreData for MirroredStore {
    async fn store_counts(&self) -> Result<StoreCounts, ShopifyError> {
        if self.ready().is_some()
            && let Ok(counts) = self.mirror_counts().await
        {
            return Ok(counts);
        }
        self.live.store_counts().await
    }

    async fn store_overview(&self) -> Result<StoreOverview, ShopifyError> {
        let Some(sync) = self.ready() else {
            return self.live.store_overview().await;
        };
        let (Ok(recent), Ok(top)) = (
            self.mirror_recent_orders(OVERVIEW_RECENT_ORDERS as u32)
                .await,
            self.mirror_top_products(sync, 30, 5).await,
        ) else {
            return self.live.store_overview().await;
        };
        Ok(StoreOverview {
            shop: self.live.shop_info().await?,
            recent_orders: recent,
            top_products: top.products,
            top_products_basis: format!("units sold, {} to {}", top.from, top.to),
        })
    }

    async fn recent_orders(&self, limit: u32) -> Result<Vec<OrderSummary>, ShopifyError> {
        if self.ready().is_some()
            && let Ok(orders) = self.mirror_recent_orders(limit).await
        {
            return Ok(orders);
        }
        self.live.recent_orders(limit).await
    }

    async fn orders_last_week(&self) -> Result<SalesSummary, ShopifyError> {
        // Until the mirror is complete, last week is the live path's: its
        // "today" is the shop's own, read from Shopify with the orders.
        if self.ready().is_none() {
            let mut live = self.live.orders_last_week().await?;
            live.note = self.with_reading_note(live.note.take());
            return Ok(live);
        }
        let to = self.today();
        let from = to.checked_sub_days(Days::new(6)).unwrap_or(to);
        self.sales_summary(from, to).await
    }

    async fn sales_summary(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SalesSummary, ShopifyError> {
        if from > to {
            return Err(ShopifyError::InvalidInput(format!(
                "the range starts ({from}) after it ends ({to})"
            )));
        }
        if let Some(sync) = self.ready()
            && let Ok(summary) = self.mirror_summary(sync, from, to).await
        {
            return Ok(summary);
        }
        let mut live = self.live.sales_summary(from, to).await?;
        live.note = self.with_reading_note(live.note.take());
        Ok(live)
    }

    async fn top_products(&self, days: u32, limit: u32) -> Result<TopProducts, ShopifyError> {
        if let Some(sync) = self.ready()
            && let Ok(top) = self.mirror_top_products(sync, days, limit).await
        {
            return Ok(top);
        }
        let mut live = self.live.top_products(days, limit).await?;
        live.note = self.with_reading_note(live.note.take());
        Ok(live)
    }

    async fn customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<CustomerDetails>, ShopifyError> {
        if self.ready().is_some()
            && let Ok(found) = self.mirror_customer(email).await
        {
            return Ok(found);
        }
        self.live.customer_by_email(email).await
    }

    async fn sales_series(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        bucket: SeriesBucket,
    ) -> Result<SalesSeriesData, ShopifyError> {
        if from > to {
            return Err(ShopifyError::InvalidInput(format!(
                "the range starts ({from}) after it ends ({to})"
            )));
        }
        if let Some(sync) = self.ready()
            && let Ok(series) = self.mirror_series(sync, from, to, bucket).await
        {
            return Ok(series);
        }
        let mut live = self.live.sales_summary(from, to).await?;
        live.note = self.with_reading_note(live.note.take());
        Ok(series_from_summary(&live, bucket))
    }

    async fn repeat_customers(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Mirrored<MirrorRepeatCustomers>, ShopifyError> {
        Ok(self
            .answer_from_mirror(from, to, |store, shop| async move {
                store.mirror_repeat_customers(&shop, from, to).await
            })
            .await)
    }

    async fn top_customers(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Mirrored<Vec<MirrorTopCustomer>>, ShopifyError> {
        Ok(self
            .answer_from_mirror(from, to, |store, shop| async move {
                store.mirror_top_customers(&shop, from, to, limit).await
            })
            .await)
    }

    async fn refunds(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Mirrored<MirrorRefunds>, ShopifyError> {
        Ok(self
            .answer_from_mirror(from, to, |store, shop| async move {
                store.mirror_refunds(&shop, from, to, limit).await
            })
            .await)
    }

    async fn product_performance(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Mirrored<MirrorTopProducts>, ShopifyError> {
        Ok(self
            .answer_from_mirror(from, to, |store, shop| async move {
                store
                    .mirror_product_performance(&shop, from, to, limit as usize)
                    .await
            })
            .await)
    }

    async fn orders_by_status(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Mirrored<MirrorOrdersByStatus>, ShopifyError> {
        Ok(self
            .answer_from_mirror(from, to, |store, shop| async move {
                store.mirror_orders_by_status(&shop, from, to).await
            })
            .await)
    }

    async fn sync_status(&self) -> Result<Option<MirrorSync>, ShopifyError> {
        // Fresh, not the turn's first read: "how fresh" wants the latest.
        match self.store.mirror_sync(self.shop()).await {
            Ok(sync) => Ok(sync),
            Err(e) => {
                store_error(e);
                Ok(self.sync.clone())
            }
        }
    }
}

/// The mirror's database failed (logged where it happened).
struct MirrorFailed;

fn store_error(e: hirecj_store::StoreError) -> MirrorFailed {
    tracing::error!(error = %e, "the store mirror could not answer; answering live");
    MirrorFailed
}

fn amount(m: Money) -> Amount {
    Amount::from(m)
}

fn gid(kind: &str, id: i64) -> String {
    format!("gid://shopify/{kind}/{id}")
}

fn product_sales(p: MirrorProductSales) -> ProductSales {
    ProductSales {
        product_id: p.product_id.map(|id| gid("Product", id)),
        title: p.title,
        units: p.units,
        orders: p.orders,
    }
}

fn order_summary(o: MirrorOrder) -> OrderSummary {
    OrderSummary {
        id: gid("Order", o.id),
        name: o.name,
        created_at: o.created_at,
        cancelled_at: o.cancelled_at,
        financial_status: o.financial_status,
        fulfillment_status: o.fulfillment_status,
        total: amount(o.total),
        refunded: amount(o.total_refunded),
        currency: o.currency,
        customer: o.customer_id.map(|id| CustomerRef {
            id: gid("Customer", id),
            email: o.email,
            name: o.customer_name,
        }),
        items: o
            .line_items
            .into_iter()
            .map(|l| LineItem {
                title: l.title,
                quantity: l.quantity,
                product_id: l.product_id.map(|id| gid("Product", id)),
            })
            .collect(),
    }
}
