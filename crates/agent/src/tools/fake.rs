//! A fixed, in-memory store for tests.

use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use hirecj_shopify::{
    Amount, Count, CustomerDetails, CustomerRef, LineItem, OrderSummary, ProductSales,
    SalesSummary, ShopInfo, ShopifyError, StoreCounts, StoreOverview, TopProducts,
};

use super::StoreData;

/// Fixed numbers; `unauthorized` makes every call answer 401, `slow`
/// makes every call wait an hour (for timeouts).
#[derive(Debug, Clone, Default)]
pub struct FakeStore {
    pub unauthorized: bool,
    pub slow: bool,
}

fn amount(s: &str) -> Amount {
    s.parse().unwrap_or_default()
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
}
