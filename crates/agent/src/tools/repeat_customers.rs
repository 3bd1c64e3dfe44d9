//! `get_shopify_repeat_customers`: how many customers came back, over a
//! range.

use chrono::NaiveDate;
use hirecj_shopify::ShopifyError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::arguments::{date_range, range_schema};
use super::shared::{FromMirror, note_line, percent_of, percent_text};
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition};

/// The tool: an inclusive range of days (shop time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RepeatCustomers {
    /// First day.
    pub start_date: NaiveDate,
    /// Last day (inclusive).
    pub end_date: NaiveDate,
}

impl ToolDefinition for RepeatCustomers {
    const NAME: &'static str = "get_shopify_repeat_customers";
    const DESCRIPTION: &'static str = "Customer loyalty over a date range (inclusive days, shop \
         time): customers who ordered, how many ordered more than once in the range (repeat \
         rate), how many had ordered before the range (returning) and how many were new. Use \
         for \"repeat customers\", \"returning customers\", \"customer loyalty\". Needs the \
         store's whole history: while CJ is still reading it the result says so (status \
         still_reading) and has no figures.";
    const THINKING_STATUS: &'static str = "Looking at who came back…";
    const SUBJECT: &'static str = "your repeat customers";
    const TITLE: &'static str = "Repeat customers";
    type Output = FromMirror<RepeatCustomersResult>;

    fn input_schema() -> Value {
        range_schema([])
    }

    fn parse(arguments: &Map<String, Value>) -> Result<Self, InvalidArguments> {
        let (start_date, end_date) = date_range(arguments)?;
        Ok(Self {
            start_date,
            end_date,
        })
    }

    async fn run(self, data: &dyn StoreData) -> Result<Self::Output, ShopifyError> {
        let (from, to) = (self.start_date, self.end_date);
        let answer = data.repeat_customers(from, to).await?;
        Ok(FromMirror::from_answer(answer, |c, basis| {
            RepeatCustomersResult {
                from,
                to,
                customers: c.customers,
                repeat_customers: c.repeat_customers,
                repeat_rate: percent_of(c.repeat_customers, c.customers),
                returning_customers: c.returning_customers,
                returning_rate: percent_of(c.returning_customers, c.customers),
                new_customers: c.customers.saturating_sub(c.returning_customers),
                orders_without_customer: c.orders_without_customer,
                note: basis.note,
            }
        }))
    }

    fn text(output: &Self::Output, _format: &ShopFormat) -> String {
        output.text("your repeat-customer figures", |r| {
            let (from, to) = (r.from, r.to);
            if r.customers == 0 {
                return format!(
                    "**Repeat customers** ({from} to {to}): no customer ordered in this \
                     period.{}",
                    note_line(r.note.as_deref())
                );
            }
            format!(
                "**Repeat customers** ({from} to {to}):\n- Customers who ordered: {}\n- \
                 Ordered more than once: {} (repeat rate {})\n- Had ordered before: {} \
                 (returning {})\n- New customers: {}{}",
                r.customers,
                r.repeat_customers,
                percent_text(r.repeat_rate),
                r.returning_customers,
                percent_text(r.returning_rate),
                r.new_customers,
                note_line(r.note.as_deref())
            )
        })
    }
}

/// The figures the model reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RepeatCustomersResult {
    /// First day (shop time).
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// Customers with at least one order in the range.
    pub customers: u64,
    /// Of whom ordered two or more times in the range.
    pub repeat_customers: u64,
    /// `repeat_customers` in percent of `customers`, one decimal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_rate: Option<f64>,
    /// Of whom had ordered before the range.
    pub returning_customers: u64,
    /// `returning_customers` in percent of `customers`, one decimal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returning_rate: Option<f64>,
    /// Of whom ordered for the first time in the range.
    pub new_customers: u64,
    /// Guest orders in the range (no customer; not counted above).
    pub orders_without_customer: u64,
    /// What the model should know about these figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
