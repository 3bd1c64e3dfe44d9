//! [`StoreData`]: the store data behind the tools, for one merchant.

use async_trait::async_trait;
use chrono::NaiveDate;
use hirecj_shopify::{
    CustomerDetails, OrderSummary, SalesSummary, ShopifyDataFetcher, ShopifyError, StoreCounts,
    StoreOverview, TopProducts,
};

/// The store data behind the tools, for one merchant. Implemented for
/// [`ShopifyDataFetcher`]; tests use fakes. A trait (and not the fetcher
/// itself) so tools, the agent loop and evals run against fixed data.
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
}
