//! `get_store_sync_status`: how fresh CJ's copy of the store is, and how
//! far its reading of the store has come.

use chrono::{DateTime, NaiveDate, Utc};
use hirecj_domain::mirror::{BackfillState, MirrorSync};
use hirecj_shopify::ShopifyError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{InvalidArguments, ShopFormat, StoreData, ToolDefinition, no_arguments_schema};

/// The tool; it takes no arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SyncStatus {}

impl ToolDefinition for SyncStatus {
    const NAME: &'static str = "get_store_sync_status";
    const DESCRIPTION: &'static str = "How fresh CJ's numbers are: whether CJ has finished \
         reading the store's order history (and how many orders it has read so far), when its \
         copy was last updated (last change from Shopify, last check for missed changes, when \
         the full read finished) and how far back it goes. Use when the merchant asks how up \
         to date or complete the numbers are, when CJ last synced, or why a figure is not \
         available yet.";
    const THINKING_STATUS: &'static str = "Checking how fresh my numbers are…";
    const SUBJECT: &'static str = "how fresh my copy of your store is";
    const TITLE: &'static str = "Store data freshness";
    type Output = SyncStatusResult;

    fn input_schema() -> Value {
        no_arguments_schema()
    }

    fn parse(_arguments: &Map<String, Value>) -> Result<Self, InvalidArguments> {
        Ok(Self {})
    }

    async fn run(self, data: &dyn StoreData) -> Result<SyncStatusResult, ShopifyError> {
        Ok(match data.sync_status().await? {
            Some(sync) => SyncStatusResult::from(&sync),
            None => SyncStatusResult::live(),
        })
    }

    fn text(output: &SyncStatusResult, _format: &ShopFormat) -> String {
        let when = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        let n = output.orders_read;
        match output.state {
            CopyState::Live => "I read your store live from Shopify for each question, so my \
                                numbers are as of the moment you ask."
                .to_owned(),
            CopyState::Complete => {
                let mut out = format!("My copy of your store is complete: I've read {n} orders");
                match output.covers_since {
                    Some(d) => out.push_str(&format!(
                        ", going back to {d} (as far as Shopify lets me see)."
                    )),
                    None => out.push_str(", your whole order history."),
                }
                if let Some(t) = &output.last_updated_at {
                    out.push_str(&format!("\n- Last updated: {}", when(t)));
                }
                if let Some(t) = &output.last_event_at {
                    out.push_str(&format!("\n- Last change from Shopify: {}", when(t)));
                }
                if let Some(t) = &output.last_reconcile_at {
                    out.push_str(&format!("\n- Last check for missed changes: {}", when(t)));
                }
                if let Some(t) = &output.backfill_completed_at {
                    out.push_str(&format!("\n- Full read finished: {}", when(t)));
                }
                out
            }
            CopyState::Reading => {
                let mut out = format!(
                    "I'm still reading your store: I've read {n} of your orders so far"
                );
                if let Some(t) = &output.backfill_started_at {
                    out.push_str(&format!(" (started {})", when(t)));
                }
                out.push_str(
                    ". Until I'm done, sales answers come from live queries and may be partial, \
                     and history questions wait for the full read.",
                );
                out
            }
            CopyState::NotStarted => "I haven't started reading your store's history yet; it \
                                      begins shortly after you connect. Until then my answers \
                                      come from live queries and may be partial."
                .to_owned(),
            CopyState::Retrying => format!(
                "Reading your store's history ran into a problem and I'll try again \
                 automatically ({n} orders read so far). Until then my answers come from live \
                 queries and may be partial."
            ),
        }
    }
}

impl SyncStatusResult {
    /// The line CJ's first message after the install gives it: how far
    /// its reading of the store's history has come, from the stored
    /// progress. `None` when CJ keeps no copy.
    pub(crate) fn connected_text(&self) -> Option<String> {
        let n = self.orders_read;
        // A read that has not counted an order yet has only just begun.
        let state = match self.state {
            CopyState::Reading if n == 0 => CopyState::NotStarted,
            state => state,
        };
        Some(match state {
            CopyState::Live => return None,
            CopyState::NotStarted => "I'm starting to read your full order history in the \
                                      background, so that questions about any period get a quick \
                                      answer. Until I'm done, answers about longer periods come \
                                      from live queries and may be partial; ask me how far I've \
                                      got any time."
                .to_owned(),
            CopyState::Reading => format!(
                "I'm reading your full order history in the background: I've read {n} of your \
                 orders so far. Until I'm done, answers about longer periods come from live \
                 queries and may be partial; ask me how far I've got any time."
            ),
            CopyState::Complete => match self.covers_since {
                Some(d) => format!(
                    "I've read all {n} of your orders since {d} (as far back as Shopify lets me \
                     see), so you can ask about any period since then."
                ),
                None => format!(
                    "I've read all {n} of your orders, so you can ask about any period."
                ),
            },
            CopyState::Retrying => format!(
                "Reading your full order history ran into a problem; I'll try again \
                 automatically ({n} orders read so far). Until then, answers about longer \
                 periods come from live queries and may be partial."
            ),
        })
    }
}

/// Where CJ's copy of the store stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CopyState {
    /// CJ keeps no copy: every answer is read live.
    Live,
    /// The full read has not started yet.
    NotStarted,
    /// CJ is reading the store's history.
    Reading,
    /// The copy is complete and kept current.
    Complete,
    /// The last attempt failed; it is tried again.
    Retrying,
}

/// What the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SyncStatusResult {
    /// Where the copy stands.
    pub state: CopyState,
    /// Orders read by the full read so far.
    pub orders_read: u64,
    /// Objects of every kind (orders, lines, products, customers) read.
    pub objects_read: u64,
    /// When the full read started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill_started_at: Option<DateTime<Utc>>,
    /// When the full read finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill_completed_at: Option<DateTime<Utc>>,
    /// The newest change received from Shopify (webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<DateTime<Utc>>,
    /// The last check for changes a webhook may have missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile_at: Option<DateTime<Utc>>,
    /// The latest of the three above: when the copy was last brought up
    /// to date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<DateTime<Utc>>,
    /// The first day (shop time) the copy holds every order of; absent
    /// with a complete copy: the whole history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covers_since: Option<NaiveDate>,
    /// The shop's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

impl SyncStatusResult {
    fn live() -> Self {
        Self {
            state: CopyState::Live,
            orders_read: 0,
            objects_read: 0,
            backfill_started_at: None,
            backfill_completed_at: None,
            last_event_at: None,
            last_reconcile_at: None,
            last_updated_at: None,
            covers_since: None,
            timezone: None,
        }
    }
}

impl From<&MirrorSync> for SyncStatusResult {
    fn from(s: &MirrorSync) -> Self {
        let state = match s.state {
            BackfillState::Pending => CopyState::NotStarted,
            BackfillState::Running => CopyState::Reading,
            BackfillState::Complete => CopyState::Complete,
            BackfillState::Failed => CopyState::Retrying,
        };
        let last_updated_at = [s.last_event_at, s.last_reconcile_at, s.completed_at]
            .into_iter()
            .flatten()
            .max();
        Self {
            state,
            orders_read: u64::try_from(s.orders_mirrored).unwrap_or(0),
            objects_read: u64::try_from(s.objects_mirrored).unwrap_or(0),
            backfill_started_at: s.started_at,
            backfill_completed_at: s.completed_at,
            last_event_at: s.last_event_at,
            last_reconcile_at: s.last_reconcile_at,
            last_updated_at,
            covers_since: s.covers_since.map(|at| s.time_zone.day_of(at)),
            timezone: Some(s.time_zone.name().to_owned()),
        }
    }
}
