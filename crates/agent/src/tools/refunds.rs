//! `get_shopify_refunds`: refunds made over a range, with their reasons.

use chrono::{DateTime, NaiveDate, Utc};
use hirecj_shopify::{Amount, ShopifyError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::arguments::{Limit, date_range, range_schema};
use super::shared::{FromMirror, amount, gid, note_line};
use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition};

/// Refunds read to tally the reasons; the list shows the newest `limit`.
pub const REASON_SAMPLE: u32 = 2_000;

/// The tool: a range of days and how many refunds to list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Refunds {
    /// First day.
    pub start_date: NaiveDate,
    /// Last day (inclusive).
    pub end_date: NaiveDate,
    /// 1 to 50 refunds listed; 10 when the model does not say.
    pub limit: u32,
}

/// How many refunds.
const LIMIT: Limit = Limit {
    default: 10,
    max: 50,
    description: "How many of the newest refunds to list (1 to 50).",
};

impl ToolDefinition for Refunds {
    const NAME: &'static str = "get_shopify_refunds";
    const DESCRIPTION: &'static str = "Refunds made over a date range (inclusive days, shop \
         time, by the refund's date): how many, their total, the reasons merchants wrote \
         (notes) tallied, and the newest refunds with order, amount and reason. Use for \
         \"refunds\", \"why were orders refunded\", \"how much did we refund\". Needs the \
         store's whole history: while CJ is still reading it the result says so (status \
         still_reading) and has no figures.";
    const THINKING_STATUS: &'static str = "Going through your refunds…";
    const SUBJECT: &'static str = "your refunds";
    const TITLE: &'static str = "Refunds";
    type Output = FromMirror<RefundsResult>;

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
        let (from, to, limit) = (self.start_date, self.end_date, self.limit as usize);
        let answer = data.refunds(from, to, REASON_SAMPLE).await?;
        Ok(FromMirror::from_answer(answer, |r, basis| {
            let mut reasons: Vec<RefundReason> = Vec::new();
            for e in &r.refunds {
                let reason = e.refund.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
                match reasons.iter_mut().find(|x| x.reason.as_deref() == reason) {
                    Some(x) => {
                        x.count += 1;
                        x.amount += amount(e.refund.amount);
                    }
                    None => reasons.push(RefundReason {
                        reason: reason.map(str::to_owned),
                        count: 1,
                        amount: amount(e.refund.amount),
                    }),
                }
            }
            reasons.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then(b.amount.cmp(&a.amount))
                    .then_with(|| a.reason.cmp(&b.reason))
            });
            RefundsResult {
                from,
                to,
                currency: basis.currency,
                count: r.count,
                total: amount(r.amount),
                reasons_counted: r.refunds.len() as u64,
                reasons,
                refunds: r
                    .refunds
                    .into_iter()
                    .take(limit)
                    .map(|e| RefundEntry {
                        order_id: gid("Order", e.order_id),
                        order: e.order_name,
                        created_at: e.refund.created_at,
                        amount: amount(e.refund.amount),
                        reason: e.refund.note,
                    })
                    .collect(),
                note: basis.note,
            }
        }))
    }

    fn text(output: &Self::Output, format: &ShopFormat) -> String {
        output.text("your refunds", |r| {
            let (from, to) = (r.from, r.to);
            if r.count == 0 {
                return format!(
                    "No refunds from {from} to {to}.{}",
                    note_line(r.note.as_deref())
                );
            }
            let money = |a: Amount| format.money(a, r.currency.as_deref());
            let mut out = format!(
                "**Refunds** ({from} to {to}): {} refunds, {} in total.",
                r.count,
                money(r.total)
            );
            if !r.reasons.is_empty() {
                out.push_str(if r.reasons_counted < r.count {
                    "\nReasons (newest refunds):"
                } else {
                    "\nReasons:"
                });
                for x in &r.reasons {
                    out.push_str(&format!(
                        "\n- {}: {} ({})",
                        x.reason.as_deref().unwrap_or("no reason given"),
                        x.count,
                        money(x.amount)
                    ));
                }
            }
            if let Some(e) = r.refunds.first() {
                out.push_str(&format!(
                    "\nLatest: {} on {}, {}",
                    format.order_by_gid(&e.order, &e.order_id),
                    format.day(e.created_at),
                    money(e.amount)
                ));
                if let Some(reason) = &e.reason {
                    out.push_str(&format!(" ({reason})"));
                }
            }
            out.push_str(&note_line(r.note.as_deref()));
            out
        })
    }
}

/// The figures the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefundsResult {
    /// First day (shop time).
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// Currency of the amounts, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Refunds made in the range.
    pub count: u64,
    /// Their sum.
    pub total: Amount,
    /// Refunds the reasons are tallied over (the newest; all of them
    /// unless there are very many).
    pub reasons_counted: u64,
    /// Reasons (the refund's note; absent: none given), most frequent
    /// first.
    pub reasons: Vec<RefundReason>,
    /// The newest refunds, newest first.
    pub refunds: Vec<RefundEntry>,
    /// What the model should know about these figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Refunds that gave one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefundReason {
    /// The note, as written (absent: no reason given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many refunds.
    pub count: u64,
    /// Their sum.
    pub amount: Amount,
}

/// One refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefundEntry {
    /// The order's name, e.g. `#1001`.
    pub order: String,
    /// The order's global id.
    pub order_id: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Amount refunded.
    pub amount: Amount,
    /// The merchant's note, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
