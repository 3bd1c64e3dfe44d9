//! `get_shopify_orders_last_week`: orders and revenue of the last 7 days.

use hirecj_shopify::ShopifyError;
use serde::Serialize;
use serde_json::{Map, Value};

use super::shared::SalesReport;
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition, no_arguments_schema};

/// The tool; it takes no arguments (the week is the shop's, not the
/// model's guess of today).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct OrdersLastWeek {}

impl ToolDefinition for OrdersLastWeek {
    const NAME: &'static str = "get_shopify_orders_last_week";
    const DESCRIPTION: &'static str = "Orders of the last 7 days (today and the 6 days before, \
         shop time): order count, revenue, refunds, average order value, per-day figures and top \
         products.";
    const THINKING_STATUS: &'static str = "Looking at last week's orders…";
    const SUBJECT: &'static str = "last week's orders";
    const TITLE: &'static str = "Last week's orders";
    type Output = SalesReport;

    fn input_schema() -> Value {
        no_arguments_schema()
    }

    fn parse(_arguments: &Map<String, Value>) -> Result<Self, InvalidArguments> {
        Ok(Self {})
    }

    async fn run(self, data: &dyn StoreData) -> Result<SalesReport, ShopifyError> {
        Ok(data.orders_last_week().await?.into())
    }

    fn text(output: &SalesReport, format: &ShopFormat) -> String {
        output.text_labelled(Some("Last 7 days"), format)
    }
}
