//! `get_shopify_recent_orders`: the latest orders, newest first.

use hirecj_shopify::ShopifyError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::arguments::int_arg;
use super::shared::Order;
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition};

/// The tool: how many orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RecentOrders {
    /// 1 to 50; 10 when the model does not say.
    pub limit: u32,
}

impl ToolDefinition for RecentOrders {
    const NAME: &'static str = "get_shopify_recent_orders";
    const DESCRIPTION: &'static str = "The latest orders, newest first: order name, date, total, \
         currency, financial and fulfillment status, customer and line items.";
    const THINKING_STATUS: &'static str = "Checking your latest orders…";
    const SUBJECT: &'static str = "your recent orders";
    const TITLE: &'static str = "Recent orders";
    type Output = RecentOrdersResult;

    fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10,
                          "description": "How many orders (1 to 50)."}
            },
            "additionalProperties": false
        })
    }

    fn parse(arguments: &Map<String, Value>) -> Result<Self, InvalidArguments> {
        Ok(Self {
            limit: int_arg(arguments, "limit", 10, 1, 50)?,
        })
    }

    async fn run(self, data: &dyn StoreData) -> Result<RecentOrdersResult, ShopifyError> {
        let orders: Vec<Order> = data
            .recent_orders(self.limit)
            .await?
            .into_iter()
            .map(Order::from)
            .collect();
        Ok(RecentOrdersResult {
            count: orders.len(),
            orders,
        })
    }

    fn text(output: &RecentOrdersResult, format: &ShopFormat) -> String {
        if output.orders.is_empty() {
            return "There are no orders yet.".to_owned();
        }
        let mut out = format!("Your {} most recent orders:", output.orders.len());
        for o in &output.orders {
            let status: Vec<String> = [&o.financial_status, &o.fulfillment_status]
                .into_iter()
                .flatten()
                .map(|s| s.to_lowercase().replace('_', " "))
                .collect();
            out.push('\n');
            out.push_str(&o.line(format));
            if !status.is_empty() {
                out.push_str(&format!(" ({})", status.join(", ")));
            }
            if let Some(name) = o.customer.as_ref().and_then(|c| c.name.as_deref()) {
                out.push_str(&format!(", {name}"));
            }
        }
        out
    }
}

/// What the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecentOrdersResult {
    /// How many orders follow (the model need not count them).
    pub count: usize,
    /// The orders, newest first.
    pub orders: Vec<Order>,
}
