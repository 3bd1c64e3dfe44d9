//! `get_shopify_store_counts`: product, order, open-order and customer
//! counts, for "how many" questions.

use hirecj_shopify::ShopifyError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition, no_arguments_schema};

/// The tool; it takes no arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct StoreCounts {}

impl ToolDefinition for StoreCounts {
    const NAME: &'static str = "get_shopify_store_counts";
    const DESCRIPTION: &'static str = "Counts of products, orders, open orders and customers in \
         the merchant's store. Use for \"how many\" questions.";
    const THINKING_STATUS: &'static str = "Counting your products, orders and customers…";
    const SUBJECT: &'static str = "your store counts";
    const TITLE: &'static str = "Store counts";
    type Output = StoreCountsResult;

    fn input_schema() -> Value {
        no_arguments_schema()
    }

    fn parse(_arguments: &Map<String, Value>) -> Result<Self, InvalidArguments> {
        Ok(Self {})
    }

    async fn run(self, data: &dyn StoreData) -> Result<StoreCountsResult, ShopifyError> {
        Ok(data.store_counts().await?.into())
    }

    fn text(output: &StoreCountsResult, _format: &ShopFormat) -> String {
        format!(
            "Your store has {} products, {} customers and {} orders ({} open).",
            output.products.text(),
            output.customers.text(),
            output.orders.text(),
            output.open_orders.text()
        )
    }
}

/// What the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoreCountsResult {
    /// All products.
    pub products: Count,
    /// All orders visible to the app.
    pub orders: Count,
    /// Open orders.
    pub open_orders: Count,
    /// All customers.
    pub customers: Count,
}

impl From<hirecj_shopify::StoreCounts> for StoreCountsResult {
    fn from(c: hirecj_shopify::StoreCounts) -> Self {
        Self {
            products: c.products.into(),
            orders: c.orders.into(),
            open_orders: c.open_orders.into(),
            customers: c.customers.into(),
        }
    }
}

/// A count, exact or a lower bound (Shopify caps large counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Count {
    /// The count.
    pub count: u64,
    /// `EXACT`, or `AT_LEAST` when Shopify capped the count (kept as
    /// Shopify's word: the model reads it).
    pub precision: String,
}

impl Count {
    /// `1289`, or `at least 10000` for a capped count.
    fn text(&self) -> String {
        if self.precision == "AT_LEAST" {
            format!("at least {}", self.count)
        } else {
            self.count.to_string()
        }
    }
}

impl From<hirecj_shopify::Count> for Count {
    fn from(c: hirecj_shopify::Count) -> Self {
        Self {
            count: c.count,
            precision: c.precision,
        }
    }
}
