//! `get_shopify_sales_summary`: orders and revenue over a date range.

use chrono::NaiveDate;
use hirecj_shopify::ShopifyError;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::arguments::date_arg;
use super::shared::SalesReport;
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition};

/// Longest range the tool accepts, in days.
pub const MAX_RANGE_DAYS: i64 = 366;

/// The tool: an inclusive range of days (shop time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SalesSummary {
    /// First day.
    pub start_date: NaiveDate,
    /// Last day (inclusive).
    pub end_date: NaiveDate,
}

impl ToolDefinition for SalesSummary {
    const NAME: &'static str = "get_shopify_sales_summary";
    const DESCRIPTION: &'static str = "Orders and revenue for a date range (inclusive days, shop \
         time): order count, revenue, refunds, net revenue, average order value, per-day figures \
         and top products. Resolve relative dates against today's date first.";
    const THINKING_STATUS: &'static str = "Adding up your sales…";
    const SUBJECT: &'static str = "the sales summary";
    const TITLE: &'static str = "Sales summary";
    type Output = SalesReport;

    fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "start_date": {"type": "string", "format": "date",
                               "description": "First day, YYYY-MM-DD."},
                "end_date": {"type": "string", "format": "date",
                             "description": "Last day, YYYY-MM-DD (inclusive)."}
            },
            "required": ["start_date", "end_date"],
            "additionalProperties": false
        })
    }

    fn parse(arguments: &Map<String, Value>) -> Result<Self, InvalidArguments> {
        let from = date_arg(arguments, "start_date")?;
        let to = date_arg(arguments, "end_date")?;
        if from > to {
            return Err(InvalidArguments::new(format!(
                "start_date {from} is after end_date {to}"
            )));
        }
        if (to - from).num_days() >= MAX_RANGE_DAYS {
            return Err(InvalidArguments::new(format!(
                "the range may span at most {MAX_RANGE_DAYS} days"
            )));
        }
        Ok(Self {
            start_date: from,
            end_date: to,
        })
    }

    async fn run(self, data: &dyn StoreData) -> Result<SalesReport, ShopifyError> {
        Ok(data
            .sales_summary(self.start_date, self.end_date)
            .await?
            .into())
    }

    fn text(output: &SalesReport, format: &ShopFormat) -> String {
        output.text_labelled(None, format)
    }
}
