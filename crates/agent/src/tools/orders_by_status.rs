//! `get_shopify_orders_by_status`: orders over a range counted by payment
//! and by fulfillment status.

use chrono::NaiveDate;
use hirecj_domain::mirror::MirrorStatusCount;
use hirecj_shopify::ShopifyError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::arguments::{date_range, range_schema};
use super::shared::{FromMirror, note_line, status_words};
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition};

/// The tool: an inclusive range of days (shop time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct OrdersByStatus {
    /// First day.
    pub start_date: NaiveDate,
    /// Last day (inclusive).
    pub end_date: NaiveDate,
}

impl ToolDefinition for OrdersByStatus {
    const NAME: &'static str = "get_shopify_orders_by_status";
    const DESCRIPTION: &'static str = "Orders placed over a date range (inclusive days, shop \
         time) counted by financial status (paid, pending, refunded, …) and by fulfillment \
         status (fulfilled, unfulfilled, …). Use for \"orders by status\", \"how many orders \
         are unfulfilled\", \"pending payments\". Needs the store's whole history: while CJ is \
         still reading it the result says so (status still_reading) and has no figures.";
    const THINKING_STATUS: &'static str = "Sorting your orders by status…";
    const SUBJECT: &'static str = "your orders by status";
    const TITLE: &'static str = "Orders by status";
    type Output = FromMirror<OrdersByStatusResult>;

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
        let answer = data.orders_by_status(from, to).await?;
        Ok(FromMirror::from_answer(answer, |s, basis| {
            let list = |v: Vec<MirrorStatusCount>| {
                v.into_iter()
                    .map(|c| StatusCount {
                        status: c.status,
                        orders: c.orders,
                    })
                    .collect()
            };
            OrdersByStatusResult {
                from,
                to,
                orders: s.orders,
                financial: list(s.financial),
                fulfillment: list(s.fulfillment),
                note: basis.note,
            }
        }))
    }

    fn text(output: &Self::Output, _format: &ShopFormat) -> String {
        output.text("your orders by status", |r| {
            let (from, to) = (r.from, r.to);
            if r.orders == 0 {
                return format!(
                    "No orders from {from} to {to}.{}",
                    note_line(r.note.as_deref())
                );
            }
            let line = |v: &[StatusCount]| {
                v.iter()
                    .map(|c| format!("{} {}", status_words(c.status.as_deref()), c.orders))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "**Orders by status** ({from} to {to}, {} orders):\n- Payment: {}\n- \
                 Fulfillment: {}{}",
                r.orders,
                line(&r.financial),
                line(&r.fulfillment),
                note_line(r.note.as_deref())
            )
        })
    }
}

/// The figures the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrdersByStatusResult {
    /// First day (shop time).
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// Orders placed in the range.
    pub orders: u64,
    /// By Shopify's financial status, most orders first.
    pub financial: Vec<StatusCount>,
    /// By Shopify's fulfillment status, most orders first.
    pub fulfillment: Vec<StatusCount>,
    /// What the model should know about these figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Orders with one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StatusCount {
    /// Shopify's word (`PAID`, `UNFULFILLED`, …); absent when Shopify gave
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Orders with it.
    pub orders: u64,
}
