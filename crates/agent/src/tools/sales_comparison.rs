//! `get_shopify_sales_comparison`: two periods side by side, with the
//! change from the earlier one.

use chrono::NaiveDate;
use hirecj_shopify::{Amount, ShopifyError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::arguments::{range_args, range_properties};
use super::sales_summary::MAX_RANGE_DAYS;
use super::shared::{
    chart_day, chart_value, money_heading, percent_change, percent_text,
};
use crate::chart::{Chart, ChartKind, ChartPoint};
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition};

/// The tool: the period asked about and the period it is compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SalesComparison {
    /// First day of the period.
    pub start_date: NaiveDate,
    /// Last day of the period (inclusive).
    pub end_date: NaiveDate,
    /// First day of the period compared with.
    pub compare_start_date: NaiveDate,
    /// Last day of the period compared with (inclusive).
    pub compare_end_date: NaiveDate,
}

impl ToolDefinition for SalesComparison {
    const NAME: &'static str = "get_shopify_sales_comparison";
    const DESCRIPTION: &'static str = "Compare sales of two periods (inclusive days, shop \
         time): orders, revenue, average order value, refunds and net revenue of each, and the \
         change from the compared period (compare_start_date..compare_end_date) to the main one \
         (start_date..end_date), absolute and in percent. Use for \"this month vs last month\", \
         \"compared with last week\", \"are sales up?\". Resolve relative dates against today's \
         date first; compare like with like (this month so far with the same days of last \
         month).";
    const THINKING_STATUS: &'static str = "Comparing the two periods…";
    const SUBJECT: &'static str = "the comparison";
    const TITLE: &'static str = "Sales comparison";
    type Output = SalesComparisonResult;

    fn input_schema() -> Value {
        let mut properties = range_properties("start_date", "end_date");
        properties.extend(range_properties("compare_start_date", "compare_end_date"));
        json!({
            "type": "object",
            "properties": properties,
            "required": ["start_date", "end_date", "compare_start_date", "compare_end_date"],
            "additionalProperties": false
        })
    }

    fn parse(arguments: &Map<String, Value>) -> Result<Self, InvalidArguments> {
        let (start_date, end_date) =
            range_args(arguments, "start_date", "end_date", MAX_RANGE_DAYS)?;
        let (compare_start_date, compare_end_date) = range_args(
            arguments,
            "compare_start_date",
            "compare_end_date",
            MAX_RANGE_DAYS,
        )?;
        Ok(Self {
            start_date,
            end_date,
            compare_start_date,
            compare_end_date,
        })
    }

    async fn run(self, data: &dyn StoreData) -> Result<SalesComparisonResult, ShopifyError> {
        let (period, compared) = futures::try_join!(
            data.sales_summary(self.start_date, self.end_date),
            data.sales_summary(self.compare_start_date, self.compare_end_date),
        )?;
        Ok(SalesComparisonResult::new(&period, &compared))
    }

    fn text(output: &SalesComparisonResult, format: &ShopFormat) -> String {
        let (p, c) = (&output.period, &output.compared_with);
        let money = |a: Amount| format.money(a, output.currency.as_deref());
        let ch = &output.change;
        let mut out = format!(
            "**{} to {} vs {} to {}**:",
            p.from, p.to, c.from, c.to
        );
        out.push_str(&format!(
            "\n- Orders: {} vs {} ({:+}, {})",
            p.orders,
            c.orders,
            ch.orders.change,
            signed_percent(ch.orders.percent)
        ));
        for (label, now, before, change) in [
            ("Revenue", p.revenue, c.revenue, &ch.revenue),
            (
                "Average order value",
                p.average_order_value,
                c.average_order_value,
                &ch.average_order_value,
            ),
            ("Refunded", p.refunded, c.refunded, &ch.refunded),
            ("Net revenue", p.net_revenue, c.net_revenue, &ch.net_revenue),
        ] {
            out.push_str(&format!(
                "\n- {label}: {} vs {} ({}, {})",
                money(now),
                money(before),
                signed(change.change, money(change.change)),
                signed_percent(change.percent)
            ));
        }
        for note in &output.notes {
            out.push_str(&format!("\n- Note: {note}"));
        }
        out
    }

    /// Revenue of the two periods, as bars (the earlier one first).
    fn chart(output: &SalesComparisonResult, format: &ShopFormat) -> Option<Chart> {
        let bar = |p: &PeriodSales| {
            ChartPoint::new(
                format!("{} to {}", chart_day(p.from), chart_day(p.to)),
                chart_value(p.revenue),
                format.money(p.revenue, output.currency.as_deref()),
            )
        };
        Some(Chart::new(
            "Revenue, period against period",
            ChartKind::Bars,
            "Period",
            money_heading("Revenue", output.currency.as_deref()),
            vec![bar(&output.compared_with), bar(&output.period)],
        ))
    }
}

/// `written` (the amount `a` as the shop writes it) with a `+` when `a`
/// is positive (a negative one carries its own `-`).
fn signed(a: Amount, written: String) -> String {
    if a > Amount::ZERO {
        format!("+{written}")
    } else {
        written
    }
}

fn signed_percent(p: Option<f64>) -> String {
    match p {
        Some(p) if p > 0.0 => format!("+{}", percent_text(Some(p))),
        other => percent_text(other),
    }
}

/// What the model reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SalesComparisonResult {
    /// The period asked about.
    pub period: PeriodSales,
    /// The period it is compared with.
    pub compared_with: PeriodSales,
    /// From `compared_with` to `period`.
    pub change: SalesChange,
    /// Currency of the amounts (absent without orders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The shop's time zone the days are counted in.
    pub timezone: String,
    /// What the model should know about these figures (visibility, caps,
    /// partial data), once each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl SalesComparisonResult {
    fn new(period: &hirecj_shopify::SalesSummary, compared: &hirecj_shopify::SalesSummary) -> Self {
        let (p, c) = (PeriodSales::from(period), PeriodSales::from(compared));
        let money = |now: Amount, before: Amount| MoneyChange {
            change: now - before,
            percent: percent_change(micros(now), micros(before)),
        };
        let change = SalesChange {
            orders: CountChange {
                change: p.orders as i64 - c.orders as i64,
                percent: percent_change(p.orders as f64, c.orders as f64),
            },
            revenue: money(p.revenue, c.revenue),
            average_order_value: money(p.average_order_value, c.average_order_value),
            refunded: money(p.refunded, c.refunded),
            net_revenue: money(p.net_revenue, c.net_revenue),
        };
        let mut notes: Vec<String> = Vec::new();
        for note in [&period.note, &compared.note].into_iter().flatten() {
            if !notes.contains(note) {
                notes.push(note.clone());
            }
        }
        Self {
            period: p,
            compared_with: c,
            change,
            currency: period.currency.clone().or_else(|| compared.currency.clone()),
            timezone: period.timezone.clone(),
            notes,
        }
    }
}

fn micros(a: Amount) -> f64 {
    a.to_money().map_or(0.0, |m| m.micros() as f64)
}

/// One period's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PeriodSales {
    /// First day.
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// Orders placed.
    pub orders: u64,
    /// Of which cancelled since.
    pub cancelled_orders: u64,
    /// Revenue.
    pub revenue: Amount,
    /// Average order value.
    pub average_order_value: Amount,
    /// Refunded on those orders.
    pub refunded: Amount,
    /// Revenue minus refunds.
    pub net_revenue: Amount,
    /// A live answer stopped at its page cap: the newest orders only.
    pub truncated: bool,
}

impl From<&hirecj_shopify::SalesSummary> for PeriodSales {
    fn from(s: &hirecj_shopify::SalesSummary) -> Self {
        Self {
            from: s.from,
            to: s.to,
            orders: s.orders,
            cancelled_orders: s.cancelled_orders,
            revenue: s.revenue,
            average_order_value: s.average_order_value,
            refunded: s.refunded,
            net_revenue: s.net_revenue,
            truncated: s.truncated,
        }
    }
}

/// The changes from the compared period to the main one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SalesChange {
    /// Orders.
    pub orders: CountChange,
    /// Revenue.
    pub revenue: MoneyChange,
    /// Average order value.
    pub average_order_value: MoneyChange,
    /// Refunded.
    pub refunded: MoneyChange,
    /// Net revenue.
    pub net_revenue: MoneyChange,
}

/// A change in a count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CountChange {
    /// Now minus before.
    pub change: i64,
    /// In percent of before, one decimal (absent when before was 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
}

/// A change in an amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MoneyChange {
    /// Now minus before.
    pub change: Amount,
    /// In percent of before, one decimal (absent when before was 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
}
