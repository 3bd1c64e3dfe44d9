//! `get_shopify_sales_series`: orders, revenue and refunds per day or per
//! week over a range (the data of a chart).

use chrono::NaiveDate;
use hirecj_domain::mirror::SeriesBucket;
use hirecj_shopify::{Amount, ShopifyError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::arguments::{date_range, range_schema};
use super::shared::{amount, chart_day, chart_value, money_heading, note_line};
use crate::chart::{Chart, ChartKind, ChartPoint};
use hirecj_shopify::store_data::SalesSeriesData as Series;
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition};

/// Longest range of a daily series, in days (longer ranges go by week).
pub const MAX_DAILY_DAYS: i64 = 93;

/// Lines the text shows; the result itself holds every bucket.
const TEXT_POINTS: usize = 31;

/// Days or weeks, as the model writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Bucket {
    /// One shop day per point.
    Day,
    /// One week (Monday to Sunday) per point.
    Week,
}

impl From<Bucket> for SeriesBucket {
    fn from(b: Bucket) -> Self {
        match b {
            Bucket::Day => Self::Day,
            Bucket::Week => Self::Week,
        }
    }
}

/// The tool: a range of days and the width of a point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SalesSeries {
    /// First day.
    pub start_date: NaiveDate,
    /// Last day (inclusive).
    pub end_date: NaiveDate,
    /// Days or weeks; by day up to [`MAX_DAILY_DAYS`] when the model does
    /// not say, else by week.
    pub bucket: Bucket,
}

impl ToolDefinition for SalesSeries {
    const NAME: &'static str = "get_shopify_sales_series";
    const DESCRIPTION: &'static str = "Sales over time: orders, revenue, refunds and average \
         order value per day or per week (Monday to Sunday) over a date range (inclusive days, \
         shop time), every day or week included, for trends and charts (\"daily sales\", \
         \"sales by week\", \"how did sales develop\"). Daily series cover at most 93 days; \
         use weeks for longer ranges.";
    const THINKING_STATUS: &'static str = "Charting your sales…";
    const SUBJECT: &'static str = "your sales over time";
    const TITLE: &'static str = "Sales over time";
    type Output = SalesSeriesResult;

    fn input_schema() -> Value {
        range_schema([(
            "bucket",
            json!({"type": "string", "enum": ["day", "week"],
                   "description": "One point per day or per week (default: day up to 93 days, \
                                   else week)."}),
        )])
    }

    fn parse(arguments: &Map<String, Value>) -> Result<Self, InvalidArguments> {
        let (start_date, end_date) = date_range(arguments)?;
        let long = (end_date - start_date).num_days() >= MAX_DAILY_DAYS;
        let bucket = match arguments.get("bucket") {
            None | Some(Value::Null) if long => Bucket::Week,
            None | Some(Value::Null) => Bucket::Day,
            Some(Value::String(s)) => match s.trim().to_lowercase().as_str() {
                "day" | "daily" | "days" => Bucket::Day,
                "week" | "weekly" | "weeks" => Bucket::Week,
                _ => {
                    return Err(InvalidArguments::new(
                        "`bucket` must be \"day\" or \"week\"",
                    ));
                }
            },
            Some(_) => {
                return Err(InvalidArguments::new(
                    "`bucket` must be \"day\" or \"week\"",
                ));
            }
        };
        if bucket == Bucket::Day && long {
            return Err(InvalidArguments::new(format!(
                "a daily series spans at most {MAX_DAILY_DAYS} days; use bucket \"week\""
            )));
        }
        Ok(Self {
            start_date,
            end_date,
            bucket,
        })
    }

    async fn run(self, data: &dyn StoreData) -> Result<SalesSeriesResult, ShopifyError> {
        let series = data
            .sales_series(self.start_date, self.end_date, self.bucket.into())
            .await?;
        Ok(SalesSeriesResult::new(series, self.bucket))
    }

    fn text(output: &SalesSeriesResult, format: &ShopFormat) -> String {
        let money = |a: Amount| format.money(a, output.currency.as_deref());
        let title = match output.bucket {
            Bucket::Day => "Sales by day",
            Bucket::Week => "Sales by week",
        };
        let mut out = format!(
            "**{title}** ({} to {}): {} orders, {}",
            output.from,
            output.to,
            output.orders,
            money(output.revenue)
        );
        let skipped = output.points.len().saturating_sub(TEXT_POINTS);
        if skipped > 0 {
            out.push_str(&format!("\n- (the {skipped} earliest points are in the chart data)"));
        }
        for p in output.points.iter().skip(skipped) {
            let label = match output.bucket {
                Bucket::Day => p.start.format("%Y-%m-%d (%a)").to_string(),
                Bucket::Week => format!("Week of {}", p.start),
            };
            out.push_str(&format!(
                "\n- {label}: {} orders, {}",
                p.orders,
                money(p.revenue)
            ));
            if let Some(r) = p.refunded.filter(|r| *r != Amount::ZERO) {
                out.push_str(&format!(" ({} refunded)", money(r)));
            }
        }
        out.push_str(&note_line(output.note.as_deref()));
        out
    }

    /// Revenue per day or week, as columns.
    fn chart(output: &SalesSeriesResult, format: &ShopFormat) -> Option<Chart> {
        let (by, heading) = match output.bucket {
            Bucket::Day => ("day", "Day"),
            Bucket::Week => ("week", "Week of"),
        };
        let points = output
            .points
            .iter()
            .map(|p| {
                let label = match output.bucket {
                    Bucket::Day => p.start.format("%a %-d %b").to_string(),
                    Bucket::Week => p.start.format("%-d %b").to_string(),
                };
                ChartPoint::new(
                    label,
                    chart_value(p.revenue),
                    format.money(p.revenue, output.currency.as_deref()),
                )
            })
            .collect();
        Some(Chart::new(
            format!(
                "Revenue by {by}, {} to {}",
                chart_day(output.from),
                chart_day(output.to)
            ),
            ChartKind::Columns,
            heading,
            money_heading("Revenue", output.currency.as_deref()),
            points,
        ))
    }
}

/// What the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SalesSeriesResult {
    /// First day (shop time).
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// Days or weeks.
    pub bucket: Bucket,
    /// The shop's time zone the days are counted in.
    pub timezone: String,
    /// Currency of the amounts, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Orders over the whole range.
    pub orders: u64,
    /// Revenue over the whole range.
    pub revenue: Amount,
    /// Refunded on the range's orders.
    pub refunded: Amount,
    /// Average order value over the whole range.
    pub average_order_value: Amount,
    /// Every bucket, oldest first.
    pub points: Vec<SeriesPoint>,
    /// Part of the range lies before what Shopify lets the app see.
    pub beyond_visibility_window: bool,
    /// What the model should know about these figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A live answer stopped at its page cap: the newest orders only.
    pub truncated: bool,
}

impl SalesSeriesResult {
    fn new(s: Series, bucket: Bucket) -> Self {
        let points: Vec<SeriesPoint> = s
            .points
            .iter()
            .map(|p| {
                let revenue = amount(p.revenue);
                SeriesPoint {
                    start: p.start,
                    orders: p.orders,
                    revenue,
                    refunded: s.refunds_per_point.then(|| amount(p.refunded)),
                    average_order_value: revenue.div_round_cents(p.orders).unwrap_or_default(),
                }
            })
            .collect();
        let orders: u64 = points.iter().map(|p| p.orders).sum();
        let revenue: Amount = points.iter().map(|p| p.revenue).sum();
        let mut note = s.basis.note;
        if !s.refunds_per_point {
            let live = "Refunds are known only for the whole range here, not per point.";
            note = Some(match note {
                Some(n) => format!("{n} {live}"),
                None => live.to_owned(),
            });
        }
        Self {
            from: s.from,
            to: s.to,
            bucket,
            timezone: s.basis.timezone,
            currency: s.basis.currency,
            orders,
            revenue,
            refunded: amount(s.refunded),
            average_order_value: revenue.div_round_cents(orders).unwrap_or_default(),
            points,
            beyond_visibility_window: s.basis.beyond_visibility_window,
            note,
            truncated: s.truncated,
        }
    }
}

/// One day or week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SeriesPoint {
    /// Its first day (a Monday for weeks, except a week cut by the range).
    pub start: NaiveDate,
    /// Orders placed.
    pub orders: u64,
    /// Their revenue.
    pub revenue: Amount,
    /// Refunded on them (absent when only the range's total is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded: Option<Amount>,
    /// Average order value.
    pub average_order_value: Amount,
}
