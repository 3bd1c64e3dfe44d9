//! `get_shopify_product_performance`: units, orders and revenue per
//! product over a range, ranked by revenue, with the units refunded since
//! and what they sold for.

use chrono::NaiveDate;
use hirecj_shopify::{Amount, ShopifyError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::arguments::{Limit, date_range, range_schema};
use super::shared::{FromMirror, amount, gid, note_line};
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition};

/// The tool: a range of days and how many products.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ProductPerformance {
    /// First day.
    pub start_date: NaiveDate,
    /// Last day (inclusive).
    pub end_date: NaiveDate,
    /// 1 to 50 products; 10 when the model does not say.
    pub limit: u32,
}

/// How many products.
const LIMIT: Limit = Limit {
    default: 10,
    max: 50,
    description: "How many products (1 to 50).",
};

impl ToolDefinition for ProductPerformance {
    const NAME: &'static str = "get_shopify_product_performance";
    const DESCRIPTION: &'static str = "Product performance over a date range (inclusive days, \
         shop time): per product, units sold, orders and revenue (line price times quantity \
         minus line discounts), ranked by revenue, and the units refunded or removed since \
         with what they sold for (refunded_units, refunded). Use for \"which products make \
         the most money\", \"product performance\", \"revenue by product\", \"which products \
         get refunded\"; for best sellers by units use get_shopify_top_products. Needs the \
         store's whole history: while CJ is still reading it the result says so (status still_reading) and has no figures.";
    const THINKING_STATUS: &'static str = "Weighing up your products…";
    const SUBJECT: &'static str = "your product performance";
    const TITLE: &'static str = "Product performance";
    type Output = FromMirror<ProductPerformanceResult>;

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
        let answer = data.product_performance(from, to, self.limit).await?;
        Ok(FromMirror::from_answer(answer, |t, basis| {
            ProductPerformanceResult {
                from,
                to,
                currency: basis.currency,
                orders_considered: t.orders_considered,
                products: t
                    .products
                    .into_iter()
                    .map(|p| ProductRevenue {
                        product_id: p.product_id.map(|id| gid("Product", id)),
                        title: p.title,
                        units: p.units,
                        orders: p.orders,
                        revenue: amount(p.revenue),
                        refunded_units: p.refunded_units,
                        refunded: amount(p.refunded),
                    })
                    .collect(),
                note: basis.note,
            }
        }))
    }

    fn text(output: &Self::Output, format: &ShopFormat) -> String {
        output.text("your product figures", |r| {
            let (from, to) = (r.from, r.to);
            if r.products.is_empty() {
                return format!(
                    "No products sold from {from} to {to}.{}",
                    note_line(r.note.as_deref())
                );
            }
            let money = |a: Amount| format.money(a, r.currency.as_deref());
            let mut out = format!(
                "**Product performance** ({from} to {to}, by revenue, from {} orders):",
                r.orders_considered
            );
            for p in &r.products {
                out.push_str(&format!(
                    "\n- {}: {} from {} units in {} orders",
                    p.title,
                    money(p.revenue),
                    p.units,
                    p.orders
                ));
                if p.refunded_units > 0 {
                    let units = if p.refunded_units == 1 { "unit" } else { "units" };
                    out.push_str(&format!(
                        " ({} {units} refunded, {})",
                        p.refunded_units,
                        money(p.refunded)
                    ));
                }
            }
            out.push_str(&note_line(r.note.as_deref()));
            out
        })
    }
}

/// The figures the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProductPerformanceResult {
    /// First day (shop time).
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// Currency of the amounts, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Orders placed in the range.
    pub orders_considered: u64,
    /// Highest revenue first.
    pub products: Vec<ProductRevenue>,
    /// What the model should know about these figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One product's sales over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProductRevenue {
    /// The product's global id, when it still exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Product title.
    pub title: String,
    /// Units sold.
    pub units: i64,
    /// Orders it was in.
    pub orders: u64,
    /// Line revenue: price times quantity minus line discounts.
    pub revenue: Amount,
    /// Of those units, how many were refunded or removed since.
    #[serde(default)]
    pub refunded_units: i64,
    /// What the refunded units sold for.
    #[serde(default)]
    pub refunded: Amount,
}
