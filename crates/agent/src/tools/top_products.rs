//! `get_shopify_top_products`: best sellers by units over the last days.

use chrono::NaiveDate;
use hirecj_shopify::ShopifyError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::arguments::int_arg;
use super::shared::{ProductSales, chart_day};
use crate::chart::{Chart, ChartKind, ChartPoint};
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition};

/// The tool: how far back and how many products.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TopProducts {
    /// 1 to 365 days, today included; 30 when the model does not say.
    pub days: u32,
    /// 1 to 20 products; 5 when the model does not say.
    pub limit: u32,
}

impl ToolDefinition for TopProducts {
    const NAME: &'static str = "get_shopify_top_products";
    const DESCRIPTION: &'static str = "Best-selling products by units over the last N days \
         (today included), with units and order counts.";
    const THINKING_STATUS: &'static str = "Finding your best sellers…";
    const SUBJECT: &'static str = "your best sellers";
    const TITLE: &'static str = "Best sellers";
    type Output = TopProductsResult;

    fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "days": {"type": "integer", "minimum": 1, "maximum": 365, "default": 30,
                         "description": "How many days back (1 to 365)."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5,
                          "description": "How many products (1 to 20)."}
            },
            "additionalProperties": false
        })
    }

    fn parse(arguments: &Map<String, Value>) -> Result<Self, InvalidArguments> {
        Ok(Self {
            days: int_arg(arguments, "days", 30, 1, 365)?,
            limit: int_arg(arguments, "limit", 5, 1, 20)?,
        })
    }

    async fn run(self, data: &dyn StoreData) -> Result<TopProductsResult, ShopifyError> {
        Ok(data.top_products(self.days, self.limit).await?.into())
    }

    fn text(output: &TopProductsResult, _format: &ShopFormat) -> String {
        let (from, to) = (output.from, output.to);
        if output.products.is_empty() {
            return format!("No sales from {from} to {to}, so no best sellers yet.");
        }
        let mut out = format!(
            "**Best sellers** ({from} to {to}, from {} orders):",
            output.orders_considered
        );
        for p in &output.products {
            out.push_str(&format!(
                "\n- {}: {} units in {} orders",
                p.title, p.units, p.orders
            ));
        }
        out
    }

    /// Units sold per best seller, as bars.
    fn chart(output: &TopProductsResult, _format: &ShopFormat) -> Option<Chart> {
        if output.products.is_empty() {
            return None;
        }
        let points = output
            .products
            .iter()
            .map(|p| {
                let unit = if p.units == 1 { "unit" } else { "units" };
                ChartPoint::new(&p.title, p.units as f64, format!("{} {unit}", p.units))
            })
            .collect();
        Some(Chart::new(
            format!(
                "Best sellers, {} to {}",
                chart_day(output.from),
                chart_day(output.to)
            ),
            ChartKind::Bars,
            "Product",
            "Units sold",
            points,
        ))
    }
}

/// What the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopProductsResult {
    /// First day counted (shop time).
    pub from: NaiveDate,
    /// Last day counted (today, shop time).
    pub to: NaiveDate,
    /// Orders the ranking is computed over.
    pub orders_considered: u64,
    /// Best sellers, most units first.
    pub products: Vec<ProductSales>,
    /// Part of the range lies before what Shopify lets the app see.
    pub beyond_visibility_window: bool,
    /// What the model should know about these figures (visibility, caps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The page cap was reached: only the newest orders are counted.
    pub truncated: bool,
}

impl From<hirecj_shopify::TopProducts> for TopProductsResult {
    fn from(t: hirecj_shopify::TopProducts) -> Self {
        Self {
            from: t.from,
            to: t.to,
            orders_considered: t.orders_considered,
            products: t.products.into_iter().map(ProductSales::from).collect(),
            beyond_visibility_window: t.beyond_visibility_window,
            note: t.note,
            truncated: t.truncated,
        }
    }
}
