//! `get_shopify_top_customers`: the customers who spent most over a range.

use chrono::NaiveDate;
use hirecj_shopify::{Amount, ShopifyError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::arguments::{Limit, date_range, range_schema};
use super::shared::{FromMirror, amount, gid, note_line};
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition};

/// The tool: a range of days and how many customers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TopCustomers {
    /// First day.
    pub start_date: NaiveDate,
    /// Last day (inclusive).
    pub end_date: NaiveDate,
    /// 1 to 20 customers; 5 when the model does not say.
    pub limit: u32,
}

/// How many customers.
const LIMIT: Limit = Limit {
    default: 5,
    max: 20,
    description: "How many customers (1 to 20).",
};

impl ToolDefinition for TopCustomers {
    const NAME: &'static str = "get_shopify_top_customers";
    const DESCRIPTION: &'static str = "The customers who spent most over a date range \
         (inclusive days, shop time): name, email, orders and revenue (sum of their order \
         totals), highest first. Use for \"best customers\", \"top customers\", \"who buys the \
         most\". Needs the store's whole history: while CJ is still reading it the result says \
         so (status still_reading) and has no figures.";
    const THINKING_STATUS: &'static str = "Finding your best customers…";
    const SUBJECT: &'static str = "your top customers";
    const TITLE: &'static str = "Top customers";
    type Output = FromMirror<TopCustomersResult>;

    fn input_schema() -> Value {
        range_schema([LIMIT.property()])
    }

    fn parse(arguments: &Map<String, Value>) -> Result<Self, InvalidArguments> {
        let (start_date, end_date) = date_range(arguments)?;
        Ok(Self {
            start_date,
            end_date,
            limit: LIMIT.parse(arguments)?,
        })
    }

    async fn run(self, data: &dyn StoreData) -> Result<Self::Output, ShopifyError> {
        let (from, to) = (self.start_date, self.end_date);
        let answer = data.top_customers(from, to, self.limit).await?;
        Ok(FromMirror::from_answer(answer, |customers, basis| {
            TopCustomersResult {
                from,
                to,
                currency: basis.currency,
                customers: customers
                    .into_iter()
                    .map(|c| TopCustomer {
                        id: gid("Customer", c.customer_id),
                        name: c.name,
                        email: c.email,
                        orders: c.orders,
                        revenue: amount(c.revenue),
                    })
                    .collect(),
                note: basis.note,
            }
        }))
    }

    fn text(output: &Self::Output, format: &ShopFormat) -> String {
        output.text("your top customers", |r| {
            let (from, to) = (r.from, r.to);
            if r.customers.is_empty() {
                return format!(
                    "No customer ordered from {from} to {to}.{}",
                    note_line(r.note.as_deref())
                );
            }
            let money = |a: Amount| format.money(a, r.currency.as_deref());
            let mut out = format!("**Top customers** ({from} to {to}, by revenue):");
            for c in &r.customers {
                let who = c
                    .name
                    .as_deref()
                    .or(c.email.as_deref())
                    .unwrap_or("A customer without a name");
                out.push_str(&format!(
                    "\n- {who}: {} in {} {}",
                    money(c.revenue),
                    c.orders,
                    if c.orders == 1 { "order" } else { "orders" }
                ));
            }
            out.push_str(&note_line(r.note.as_deref()));
            out
        })
    }
}

/// The figures the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopCustomersResult {
    /// First day (shop time).
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// Currency of the amounts, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Highest revenue first (ties by customer id).
    pub customers: Vec<TopCustomer>,
    /// What the model should know about these figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One customer's spend over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopCustomer {
    /// Shopify's global id.
    pub id: String,
    /// Name, when CJ's copy has the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email, when CJ's copy has the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Orders placed in the range.
    pub orders: u64,
    /// Sum of their totals.
    pub revenue: Amount,
}
