//! A fixed, in-memory [`StoreData`] for tests: the agent's unit tests, and
//! the evals (which run every scenario on it as well as on the development
//! store, so no scenario depends on one store's figures). It depends on the
//! Shopify crate's trait, not on the agent, so the agent's unit tests can
//! use it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use hirecj_domain::mirror::{
    BackfillState, MirrorOrdersByStatus, MirrorProductSales, MirrorRefund, MirrorRefundEntry,
    MirrorRefunds, MirrorRepeatCustomers, MirrorStatusCount, MirrorSync, MirrorTopCustomer,
    MirrorTopProducts, Money, SeriesBucket, ShopTimeZone,
};
use hirecj_shopify::store_data::{
    Basis, Mirrored, SalesSeriesData, StoreData, series_from_summary,
};
use hirecj_shopify::{
    Amount, Count, CustomerDetails, CustomerRef, LineItem, OrderSummary, ProductSales,
    SalesSummary, ShopInfo, ShopifyError, StoreCounts, StoreOverview, TopProducts,
};

/// Fixed numbers; `unauthorized` makes every call answer 401, `slow` makes
/// every call take an hour; `reading` is a store whose history CJ is still
/// reading (4210 orders so far).
#[derive(Debug, Clone, Default)]
pub struct FakeStore {
    pub unauthorized: bool,
    pub slow: bool,
    pub reading: bool,
}

fn amount(s: &str) -> Amount {
    s.parse().unwrap_or_default()
}

fn basis() -> Basis {
    Basis {
        timezone: "America/New_York (UTC-05:00)".into(),
        currency: Some("USD".into()),
        beyond_visibility_window: false,
        note: None,
    }
}

fn at(day: u32, hour: u32) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone as _;
    chrono::Utc
        .with_ymd_and_hms(2026, 11, day, hour, 0, 0)
        .single()
        .unwrap_or_default()
}

fn order(n: u32) -> OrderSummary {
    OrderSummary {
        id: format!("gid://shopify/Order/{n}"),
        name: format!("#{n}"),
        created_at: chrono::DateTime::from_timestamp(1_790_000_000 + i64::from(n) * 3600, 0)
            .unwrap_or_default(),
        cancelled_at: None,
        financial_status: Some("PAID".into()),
        fulfillment_status: Some("FULFILLED".into()),
        total: amount("48.50"),
        refunded: Amount::ZERO,
        currency: "USD".into(),
        customer: Some(CustomerRef {
            id: "gid://shopify/Customer/7".into(),
            email: Some("ada@example.com".into()),
            name: Some("Ada Lovelace".into()),
        }),
        items: vec![LineItem {
            title: "Lavender Candle".into(),
            quantity: 2,
            product_id: None,
        }],
    }
}

fn products() -> Vec<ProductSales> {
    vec![
        ProductSales {
            product_id: None,
            title: "Lavender Candle".into(),
            units: 58,
            orders: 31,
        },
        ProductSales {
            product_id: None,
            title: "Cedar Wick Set".into(),
            units: 23,
            orders: 17,
        },
    ]
}

pub fn summary(from: NaiveDate, to: NaiveDate) -> SalesSummary {
    SalesSummary {
        from,
        to,
        timezone: "America/New_York (UTC-05:00)".into(),
        currency: Some("USD".into()),
        orders: 42,
        cancelled_orders: 1,
        revenue: amount("3456.78"),
        refunded: amount("20.00"),
        net_revenue: amount("3436.78"),
        average_order_value: amount("82.30"),
        per_day: vec![],
        top_products: products(),
        beyond_visibility_window: false,
        note: None,
        truncated: false,
    }
}

impl FakeStore {
    fn mirrored<T>(&self, figures: T) -> Mirrored<T> {
        if self.reading {
            Mirrored::Reading {
                orders_read: Some(4210),
            }
        } else {
            Mirrored::Ready {
                figures,
                basis: basis(),
            }
        }
    }

    async fn gate(&self) -> Result<(), ShopifyError> {
        if self.slow {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if self.unauthorized {
            return Err(ShopifyError::Unauthorized { request_id: None });
        }
        Ok(())
    }
}

#[async_trait]
impl StoreData for FakeStore {
    async fn store_counts(&self) -> Result<StoreCounts, ShopifyError> {
        self.gate().await?;
        let c = |n| Count {
            count: n,
            precision: "EXACT".into(),
        };
        Ok(StoreCounts {
            products: c(37),
            orders: c(1289),
            open_orders: c(12),
            customers: c(904),
        })
    }
    async fn store_overview(&self) -> Result<StoreOverview, ShopifyError> {
        self.gate().await?;
        Ok(StoreOverview {
            shop: ShopInfo {
                name: "Eval Candles".into(),
                email: None,
                domain: "eval-candles.myshopify.com".into(),
                currency: "USD".into(),
                money_format: Some("${{amount}}".into()),
                timezone: Some("America/New_York".into()),
                utc_offset_minutes: Some(-300),
                plan: Some("Basic".into()),
                development_store: true,
                shopify_plus: false,
            },
            recent_orders: (1001..1004).rev().map(order).collect(),
            top_products: products(),
            top_products_basis: "the last 50 orders".into(),
        })
    }
    async fn recent_orders(&self, limit: u32) -> Result<Vec<OrderSummary>, ShopifyError> {
        self.gate().await?;
        Ok((1001..1001 + limit.min(5)).rev().map(order).collect())
    }
    async fn orders_last_week(&self) -> Result<SalesSummary, ShopifyError> {
        self.gate().await?;
        let to = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
        let from = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default();
        Ok(summary(from, to))
    }
    async fn sales_summary(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SalesSummary, ShopifyError> {
        self.gate().await?;
        let mut s = summary(from, to);
        s.orders = 120;
        s.revenue = amount("9876.50");
        s.net_revenue = amount("9856.50");
        s.average_order_value = amount("82.30");
        Ok(s)
    }
    async fn top_products(&self, _days: u32, limit: u32) -> Result<TopProducts, ShopifyError> {
        self.gate().await?;
        let to = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
        let from = NaiveDate::from_ymd_opt(2026, 10, 28).unwrap_or_default();
        Ok(TopProducts {
            from,
            to,
            orders_considered: 170,
            products: products().into_iter().take(limit as usize).collect(),
            beyond_visibility_window: false,
            note: None,
            truncated: false,
        })
    }
    async fn customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<CustomerDetails>, ShopifyError> {
        self.gate().await?;
        if email.eq_ignore_ascii_case("ada@example.com") {
            Ok(Some(CustomerDetails {
                id: "gid://shopify/Customer/7".into(),
                email: Some("ada@example.com".into()),
                name: Some("Ada Lovelace".into()),
                recent_orders: vec![order(1003), order(1001)],
            }))
        } else {
            Ok(None)
        }
    }
    async fn sales_series(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        bucket: SeriesBucket,
    ) -> Result<SalesSeriesData, ShopifyError> {
        self.gate().await?;
        let mut s = summary(from, to);
        s.per_day = from
            .iter_days()
            .take_while(|d| *d <= to)
            .map(|date| hirecj_shopify::DaySales {
                date,
                orders: 3,
                revenue: amount("150.00"),
            })
            .collect();
        Ok(series_from_summary(&s, bucket))
    }
    async fn repeat_customers(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
    ) -> Result<Mirrored<MirrorRepeatCustomers>, ShopifyError> {
        self.gate().await?;
        Ok(self.mirrored(MirrorRepeatCustomers {
            customers: 80,
            repeat_customers: 12,
            returning_customers: 30,
            orders_without_customer: 2,
        }))
    }
    async fn top_customers(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
        limit: u32,
    ) -> Result<Mirrored<Vec<MirrorTopCustomer>>, ShopifyError> {
        self.gate().await?;
        let all = vec![
            MirrorTopCustomer {
                customer_id: 7,
                name: Some("Ada Lovelace".into()),
                email: Some("ada@example.com".into()),
                orders: 4,
                revenue: Money::from_cents(61_250),
            },
            MirrorTopCustomer {
                customer_id: 9,
                name: None,
                email: Some("grace@example.com".into()),
                orders: 1,
                revenue: Money::from_cents(9_900),
            },
        ];
        Ok(self.mirrored(all.into_iter().take(limit as usize).collect()))
    }
    async fn refunds(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
        limit: u32,
    ) -> Result<Mirrored<MirrorRefunds>, ShopifyError> {
        self.gate().await?;
        let entry = |n: i64, day: u32, cents: i64, note: Option<&str>| MirrorRefundEntry {
            order_id: n,
            order_name: format!("#{n}"),
            refund: MirrorRefund {
                id: 100 + n,
                created_at: at(day, 12),
                amount: Money::from_cents(cents),
                note: note.map(str::to_owned),
            },
        };
        let all = vec![
            entry(1012, 25, 2_000, Some("Damaged in transit")),
            entry(1009, 22, 4_850, Some("Wrong size")),
            entry(1004, 20, 1_000, Some("Damaged in transit")),
        ];
        Ok(self.mirrored(MirrorRefunds {
            count: 3,
            amount: Money::from_cents(7_850),
            refunds: all.into_iter().take(limit as usize).collect(),
        }))
    }
    async fn product_performance(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
        limit: u32,
    ) -> Result<Mirrored<MirrorTopProducts>, ShopifyError> {
        self.gate().await?;
        let p = |title: &str, units, orders, cents, refunded_units, refunded| MirrorProductSales {
            product_id: None,
            title: title.into(),
            units,
            orders,
            revenue: Money::from_cents(cents),
            refunded_units,
            refunded: Money::from_cents(refunded),
        };
        let all = vec![
            p("Cedar Wick Set", 23, 17, 103_500, 1, 4_500),
            p("Lavender Candle", 58, 31, 81_200, 0, 0),
        ];
        Ok(self.mirrored(MirrorTopProducts {
            orders_considered: 120,
            products: all.into_iter().take(limit as usize).collect(),
        }))
    }
    async fn orders_by_status(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
    ) -> Result<Mirrored<MirrorOrdersByStatus>, ShopifyError> {
        self.gate().await?;
        let c = |s: &str, orders| MirrorStatusCount {
            status: Some(s.into()),
            orders,
        };
        Ok(self.mirrored(MirrorOrdersByStatus {
            orders: 120,
            financial: vec![c("PAID", 110), c("PARTIALLY_REFUNDED", 6), c("PENDING", 4)],
            fulfillment: vec![c("FULFILLED", 101), c("UNFULFILLED", 19)],
        }))
    }
    async fn sync_status(&self) -> Result<Option<MirrorSync>, ShopifyError> {
        self.gate().await?;
        let zone: ShopTimeZone = "America/New_York".parse().unwrap_or(ShopTimeZone::UTC);
        Ok(Some(MirrorSync {
            shop: "eval-candles.myshopify.com".into(),
            time_zone: zone,
            currency: Some("USD".into()),
            money_format: Some("${{amount}}".into()),
            state: if self.reading {
                BackfillState::Running
            } else {
                BackfillState::Complete
            },
            owner: None,
            lease_until: None,
            bulk_operation_id: None,
            phase: None,
            orders_mirrored: if self.reading { 4210 } else { 12_840 },
            objects_mirrored: 40_000,
            started_at: Some(at(26, 9)),
            completed_at: (!self.reading).then(|| at(26, 10)),
            covers_since: None,
            last_event_at: (!self.reading).then(|| at(26, 14)),
            last_reconcile_at: (!self.reading).then(|| at(26, 13)),
            last_error: None,
            updated_at: at(26, 14),
        }))
    }
}
