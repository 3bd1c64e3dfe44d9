//! `hirecj-eval`: scenario evals of CJ.
//!
//! A scenario (`evals/*.yaml`, a `scenarios:` list per file) names a
//! workflow, a store (a development-store shop such as
//! `eval-coffee-roasters.myshopify.com`, or `none` for a merchant without a
//! connected store), optional remembered facts, and turns: merchant
//! messages and/or system events (`event: initial_action` runs the
//! workflow's initial action). Each turn has expectations:
//!
//! ```yaml
//! scenarios:
//!   - name: post_auth_summary
//!     workflow: shopify_post_auth
//!     store: eval-coffee-roasters.myshopify.com
//!     turns:
//!       - event: initial_action
//!         expect:
//!           tools_called: [get_shopify_store_overview, get_shopify_orders_last_week]
//!           numbers_from: [orders_last_week.count, orders_last_week.revenue]
//!           contains: [connected]
//!           not_contains: ["{{"]
//!           marker: absent
//!           chart: absent
//! ```
//!
//! `numbers_from` values are the store's real figures, written as the tool
//! reports them; the answer must contain each one. `hirecj-eval` runs the
//! scenarios over the store mirror of a development shop installed and
//! backfilled through the real path ([`mirror`]) and computes every figure
//! from the development store's own data ([`expected`], never from the
//! mirror), so an eval proves the mirror equals the source; over a fixed
//! fake store the figures are the store's own answers ([`Truth`]). Keys:
//! `orders_last_week.{count,revenue,aov,net_revenue,top_product}`,
//! `store_overview.{shop_name,top_product}`,
//! `store_counts.{products,customers,orders,open_orders}`,
//! `sales_summary(FROM,TO).{count,revenue,aov}`,
//! `top_products(DAYS,LIMIT).{first,first_units}`,
//! `recent_orders(N).{latest_name,latest_total}`, `customer(EMAIL).name`,
//! and over a period `P` (`30d`: the last 30 days, today included; `12w`:
//! the last 12 weeks from a Monday; `this_month`; `last_month`;
//! `FROM:TO`): `comparison(month|week).{orders,revenue,aov,previous_orders,
//! previous_revenue,previous_aov}` (the month so far against the same days
//! of last month; the last 7 days against the 7 before),
//! `series(P,day|week).{orders,revenue,last_orders,last_revenue}`,
//! `repeat_customers(P).{customers,repeat,returning}`,
//! `refunds(P).{count,total,top_reason}`,
//! `top_customers(P).{first_name,first_revenue}`,
//! `product_performance(P).{first,first_revenue,first_refunded}`,
//! `orders_by_status(P).{orders,unfulfilled,paid}`, `sync_status.orders_read`.
//! The report prints each scenario's time.
//!
//! Workflow transitions are the app's own: the workflow state machine in
//! `agent::workflow` (`open_workflow`, `complete_initial_action`).

pub mod devstore;
pub mod expected;
pub mod mirror;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Datelike, Days, Months, NaiveDate};
use hirecj_domain::mirror::{MirrorOrdersByStatus, MirrorProductSales, Money, SeriesBucket};
use hirecj_shopify::Amount;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use hirecj_agent::memory::{ProviderKind, extract_facts};
use hirecj_agent::model::ModelProvider;
use hirecj_agent::tools::{Mirrored, StoreData, ToolContext, ToolName};
use hirecj_agent::turn::{HistoryEntry, MerchantContext, TurnConfig, TurnInput, run_turn};
use hirecj_agent::ui_actions::{CHART, OAUTH_BUTTON};
use hirecj_agent::workflow::{Catalog, ConversationState, Standing};

/// The embedded scenario files: (path, text).
pub const EMBEDDED_EVALS: &[(&str, &str)] = &[
    (
        "evals/onboarding.yaml",
        include_str!("../../../evals/onboarding.yaml"),
    ),
    (
        "evals/post_auth.yaml",
        include_str!("../../../evals/post_auth.yaml"),
    ),
    (
        "evals/ad_hoc_support.yaml",
        include_str!("../../../evals/ad_hoc_support.yaml"),
    ),
    (
        "evals/daily_briefing.yaml",
        include_str!("../../../evals/daily_briefing.yaml"),
    ),
    (
        "evals/weekly_review.yaml",
        include_str!("../../../evals/weekly_review.yaml"),
    ),
    (
        "evals/crisis_response.yaml",
        include_str!("../../../evals/crisis_response.yaml"),
    ),
    (
        "evals/welcome_back.yaml",
        include_str!("../../../evals/welcome_back.yaml"),
    ),
    (
        "evals/store_history.yaml",
        include_str!("../../../evals/store_history.yaml"),
    ),
];

/// The `store` value of a merchant without a connected store.
pub const NO_STORE: &str = "none";
/// The `event` value that runs the workflow's initial action.
pub const INITIAL_ACTION: &str = "initial_action";

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    scenarios: Vec<Scenario>,
}

/// One scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name.
    pub name: String,
    /// What it checks.
    #[serde(default)]
    pub description: Option<String>,
    /// Starting workflow.
    pub workflow: String,
    /// A development-store shop, or `none`.
    pub store: String,
    /// Facts remembered from earlier conversations.
    #[serde(default)]
    pub facts: Vec<String>,
    /// The turns, in order.
    pub turns: Vec<EvalTurn>,
    /// The file it came from.
    #[serde(skip)]
    pub file: String,
}

/// One turn of a scenario: a merchant message or a system event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalTurn {
    /// What the merchant says.
    #[serde(default)]
    pub merchant: Option<String>,
    /// A system event (`initial_action` for the workflow's initial action).
    #[serde(default)]
    pub event: Option<String>,
    /// Switch to this workflow before the turn.
    #[serde(default)]
    pub workflow: Option<String>,
    /// What must hold after the turn.
    #[serde(default)]
    pub expect: Expect,
}

/// Whether the Connect button must appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkerExpect {
    /// A Connect Shopify button is in the message.
    Present,
    /// No button and no marker text.
    Absent,
}

/// Expectations of one turn.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Exactly these tools were called (as a set).
    #[serde(default)]
    pub tools_called: Option<Vec<String>>,
    /// Figures from the store that the answer must contain.
    #[serde(default)]
    pub numbers_from: Vec<String>,
    /// Phrases the answer must contain (case-insensitive).
    #[serde(default)]
    pub contains: Vec<String>,
    /// Phrases the answer must not contain (case-insensitive).
    #[serde(default)]
    pub not_contains: Vec<String>,
    /// The Connect button.
    #[serde(default)]
    pub marker: Option<MarkerExpect>,
    /// A chart (`{{chart}}`) of a tool result.
    #[serde(default)]
    pub chart: Option<MarkerExpect>,
    /// Facts extracted from the merchant message must contain these
    /// phrases (case-insensitive).
    #[serde(default)]
    pub facts: Vec<String>,
    /// The workflow after the turn.
    #[serde(default)]
    pub workflow_after: Option<String>,
}

/// A scenario file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct EvalLoadError {
    /// The file.
    pub file: String,
    /// What is wrong (with the scenario name and key when known).
    pub message: String,
}

/// Parses one scenario file's text.
pub fn parse_scenarios(file: &str, text: &str) -> Result<Vec<Scenario>, EvalLoadError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let parsed: ScenarioFile = serde_path_to_error::deserialize(de).map_err(|e| EvalLoadError {
        file: file.to_owned(),
        message: format!("{}: {}", e.path(), e.inner()),
    })?;
    Ok(parsed
        .scenarios
        .into_iter()
        .map(|mut s| {
            s.file = file.to_owned();
            s
        })
        .collect())
}

/// The embedded scenarios.
pub fn embedded_scenarios() -> Result<Vec<Scenario>, EvalLoadError> {
    let mut out = Vec::new();
    for (file, text) in EMBEDDED_EVALS {
        out.extend(parse_scenarios(file, text)?);
    }
    Ok(out)
}

/// The scenarios of `files`, or the embedded ones when `files` is empty.
pub fn load_scenarios(files: &[PathBuf]) -> Result<Vec<Scenario>, EvalLoadError> {
    if files.is_empty() {
        return embedded_scenarios();
    }
    let mut out = Vec::new();
    for f in files {
        out.extend(load_file(f)?);
    }
    Ok(out)
}

fn load_file(path: &Path) -> Result<Vec<Scenario>, EvalLoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| EvalLoadError {
        file: file.clone(),
        message: e.to_string(),
    })?;
    parse_scenarios(&file, &text)
}

/// Checks scenarios against the catalog: known workflows and tools, valid
/// number keys, one of `merchant` / `event` per turn, unique names.
pub fn validate_scenarios(
    scenarios: &[Scenario],
    catalog: &Catalog,
) -> Result<(), Vec<EvalLoadError>> {
    let mut errors = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for s in scenarios {
        let err = |m: String| EvalLoadError {
            file: s.file.clone(),
            message: format!("scenario {}: {m}", s.name),
        };
        if !names.insert(s.name.clone()) {
            errors.push(err("duplicate name".to_owned()));
        }
        if catalog.workflow(&s.workflow).is_none() {
            errors.push(err(format!("workflow: unknown workflow {:?}", s.workflow)));
        }
        if s.turns.is_empty() {
            errors.push(err("turns: no turns".to_owned()));
        }
        for (i, t) in s.turns.iter().enumerate() {
            if t.merchant.is_some() == t.event.is_some() {
                errors.push(err(format!(
                    "turns[{i}]: exactly one of `merchant` and `event`"
                )));
            }
            for w in t.workflow.iter().chain(t.expect.workflow_after.iter()) {
                if catalog.workflow(w).is_none() {
                    errors.push(err(format!("turns[{i}]: unknown workflow {w:?}")));
                }
            }
            for tool in t.expect.tools_called.iter().flatten() {
                if ToolName::from_name(tool).is_none() {
                    errors.push(err(format!(
                        "turns[{i}].expect.tools_called: unknown tool {tool:?}"
                    )));
                }
            }
            for key in &t.expect.numbers_from {
                if let Err(e) = NumberKey::parse(key) {
                    errors.push(err(format!("turns[{i}].expect.numbers_from: {e}")));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Opens the data source of a development-store shop for a scenario.
#[async_trait]
pub trait DataSourceFactory: Send + Sync {
    /// The data source for `shop` (e.g. `eval-coffee-roasters.myshopify.com`).
    async fn open(&self, shop: &str) -> Result<Arc<dyn StoreData>, String>;

    /// Where the expected figures of `shop` come from: the data source's
    /// own answers unless the factory knows the shop's source data.
    async fn truth(&self, _shop: &str) -> Truth {
        Truth::DataSource
    }
}

/// Where `numbers_from` figures come from.
#[derive(Debug, Clone)]
pub enum Truth {
    /// The data source's own answers (a fixed fake store is its own truth).
    DataSource,
    /// The development store's data: the figures are computed from it
    /// ([`expected::Source`]), so a mirror that lost or changed an order
    /// fails the eval.
    Dataset {
        /// The shop's data.
        data: Arc<hirecj_devstore::Dataset>,
        /// The first order time CJ can have read (`None`: all history).
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// The last order time CJ can have read (the backfill's end).
        until: chrono::DateTime<chrono::Utc>,
    },
}

/// One checked expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalRow {
    /// Scenario name.
    pub scenario: String,
    /// 1-based turn (0 for the scenario set-up).
    pub turn: usize,
    /// What was checked.
    pub expectation: String,
    /// Whether it held.
    pub passed: bool,
    /// Why it failed (or a short note).
    pub detail: String,
}

/// The outcome of an eval run.
#[derive(Debug, Clone, Default)]
pub struct EvalReport {
    /// Every checked expectation, in order.
    pub rows: Vec<EvalRow>,
    /// Each turn's answer: (scenario, turn, text), for debugging.
    pub answers: Vec<(String, usize, String)>,
    /// How long each scenario took (its turns, tools included).
    pub durations: Vec<(String, std::time::Duration)>,
}

impl EvalReport {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.passed)
    }

    /// Failed rows.
    pub fn failures(&self) -> impl Iterator<Item = &EvalRow> {
        self.rows.iter().filter(|r| !r.passed)
    }

    /// The table: scenario, turn, expectation, pass/fail (with the reason),
    /// and a summary line.
    pub fn table(&self) -> String {
        let w0 = self
            .rows
            .iter()
            .map(|r| r.scenario.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let w2 = self
            .rows
            .iter()
            .map(|r| r.expectation.chars().count().min(60))
            .max()
            .unwrap_or(11)
            .max(11);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<w0$}  turn  {:<w2$}  result",
            "scenario", "expectation"
        );
        let _ = writeln!(out, "{}", "-".repeat(w0 + w2 + 16));
        for r in &self.rows {
            let exp: String = r.expectation.chars().take(60).collect();
            let result = if r.passed {
                "pass".to_owned()
            } else {
                format!("FAIL  {}", r.detail)
            };
            let _ = writeln!(
                out,
                "{:<w0$}  {:>4}  {:<w2$}  {result}",
                r.scenario, r.turn, exp
            );
        }
        if !self.durations.is_empty() {
            let _ = writeln!(out, "\n{:<w0$}  time", "scenario");
            let _ = writeln!(out, "{}", "-".repeat(w0 + 12));
            for (name, d) in &self.durations {
                let _ = writeln!(out, "{name:<w0$}  {:>7.1} ms", d.as_secs_f64() * 1000.0);
            }
        }
        let failed = self.failures().count();
        let scenarios: std::collections::BTreeSet<_> =
            self.rows.iter().map(|r| &r.scenario).collect();
        let failed_scenarios: std::collections::BTreeSet<_> =
            self.failures().map(|r| &r.scenario).collect();
        let _ = writeln!(
            out,
            "\n{} scenarios, {} expectations: {} passed, {} failed ({} scenarios failed)",
            scenarios.len(),
            self.rows.len(),
            self.rows.len() - failed,
            failed,
            failed_scenarios.len()
        );
        out
    }
}

/// How evals run.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Today's date for the turns (should match the data source's clock).
    pub today: NaiveDate,
    /// Turn limits.
    pub turn: TurnConfig,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            today: chrono::Utc::now().date_naive(),
            turn: TurnConfig::default(),
        }
    }
}

/// A `numbers_from` key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NumberKey {
    LastWeek(String),
    Overview(String),
    Counts(String),
    Sales(NaiveDate, NaiveDate, String),
    Top(u32, u32, String),
    Recent(u32, String),
    Customer(String, String),
    Compare(Pair, String),
    Series(Period, SeriesBucket, String),
    Repeat(Period, String),
    Refunds(Period, String),
    TopCustomers(Period, String),
    Performance(Period, String),
    Status(Period, String),
    Sync(String),
}

/// A period of a key, resolved against the eval's today: `Nd` (the last N
/// days, today included), `12w` (the last 12 weeks from a Monday),
/// `this_month`, `last_month`, or `FROM:TO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Days(u32),
    TwelveWeeks,
    ThisMonth,
    LastMonth,
    Range(NaiveDate, NaiveDate),
}

impl Period {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "12w" => Self::TwelveWeeks,
            "this_month" => Self::ThisMonth,
            "last_month" => Self::LastMonth,
            _ => match s.split_once(':') {
                Some((a, b)) => Self::Range(
                    NaiveDate::parse_from_str(a, "%Y-%m-%d").ok()?,
                    NaiveDate::parse_from_str(b, "%Y-%m-%d").ok()?,
                ),
                None => Self::Days(s.strip_suffix('d')?.parse().ok().filter(|n| *n > 0)?),
            },
        })
    }

    fn resolve(self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        let back = |d: NaiveDate, n: u64| d.checked_sub_days(Days::new(n)).unwrap_or(d);
        let first = today.with_day(1).unwrap_or(today);
        match self {
            Self::Days(n) => (back(today, u64::from(n) - 1), today),
            Self::TwelveWeeks => {
                let monday = back(today, u64::from(today.weekday().num_days_from_monday()));
                (back(monday, 77), today)
            }
            Self::ThisMonth => (first, today),
            Self::LastMonth => {
                let prev = first.checked_sub_months(Months::new(1)).unwrap_or(first);
                (prev, back(first, 1))
            }
            Self::Range(a, b) => (a, b),
        }
    }
}

/// The two periods of a comparison, as the offline brain reads "this month
/// vs last month" (the month so far against the same days of last month)
/// and "this week vs last week" (the last 7 days against the 7 before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pair {
    Month,
    Week,
}

impl Pair {
    fn resolve(self, today: NaiveDate) -> [(NaiveDate, NaiveDate); 2] {
        let back = |d: NaiveDate, n: u64| d.checked_sub_days(Days::new(n)).unwrap_or(d);
        match self {
            Self::Month => {
                let first = today.with_day(1).unwrap_or(today);
                let prev = first.checked_sub_months(Months::new(1)).unwrap_or(first);
                let same = prev
                    .checked_add_days(Days::new(u64::from(today.day() - 1)))
                    .unwrap_or(prev)
                    .min(back(first, 1));
                [(first, today), (prev, same)]
            }
            Self::Week => [(back(today, 6), today), (back(today, 13), back(today, 7))],
        }
    }
}

/// How the evals' stores write money: the development store's shops and
/// the fixed store are in US dollars with Shopify's default format.
pub const MONEY_FORMAT: &str = "${{amount}}";

/// An amount as CJ writes it for those stores (`$7,737.41`).
fn money(m: impl Into<Amount>) -> String {
    hirecj_shopify::MoneyFormat::of_shop(Some(MONEY_FORMAT), Some("USD")).format(m.into())
}

/// A product's refunded units as CJ words them ("3 units refunded").
fn refunded_units(units: i64) -> Result<String, String> {
    match units {
        0 => Err("the product has no refunded units to check".to_owned()),
        1 => Ok("1 unit refunded".to_owned()),
        n => Ok(format!("{n} units refunded")),
    }
}

impl NumberKey {
    fn parse(key: &str) -> Result<Self, String> {
        let bad = || format!("bad key {key:?}");
        let (source, field) = key.rsplit_once('.').ok_or_else(bad)?;
        let field = field.to_owned();
        let (name, args) = match source.split_once('(') {
            Some((n, rest)) => (
                n,
                rest.strip_suffix(')')
                    .ok_or_else(bad)?
                    .split(',')
                    .map(str::trim)
                    .collect::<Vec<_>>(),
            ),
            None => (source, Vec::new()),
        };
        let ok_field = |allowed: &[&str]| {
            if allowed.contains(&field.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "{key:?}: field must be one of {}",
                    allowed.join(", ")
                ))
            }
        };
        let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad());
        let period = |s: &str| Period::parse(s).ok_or_else(bad);
        Ok(match (name, args.as_slice()) {
            ("orders_last_week", []) => {
                ok_field(&["count", "revenue", "aov", "net_revenue", "top_product"])?;
                Self::LastWeek(field)
            }
            ("store_overview", []) => {
                ok_field(&["shop_name", "top_product"])?;
                Self::Overview(field)
            }
            ("store_counts", []) => {
                ok_field(&["products", "customers", "orders", "open_orders"])?;
                Self::Counts(field)
            }
            ("sales_summary", [a, b]) => {
                ok_field(&["count", "revenue", "aov"])?;
                Self::Sales(date(a)?, date(b)?, field)
            }
            ("top_products", [d, l]) => {
                ok_field(&["first", "first_units"])?;
                Self::Top(num(d)?, num(l)?, field)
            }
            ("recent_orders", [n]) => {
                ok_field(&["latest_name", "latest_total"])?;
                Self::Recent(num(n)?, field)
            }
            ("customer", [email]) => {
                ok_field(&["name"])?;
                Self::Customer((*email).to_owned(), field)
            }
            ("comparison", [pair]) => {
                ok_field(&[
                    "orders",
                    "revenue",
                    "aov",
                    "previous_orders",
                    "previous_revenue",
                    "previous_aov",
                ])?;
                let pair = match *pair {
                    "month" => Pair::Month,
                    "week" => Pair::Week,
                    _ => return Err(bad()),
                };
                Self::Compare(pair, field)
            }
            ("series", [p, b]) => {
                ok_field(&["orders", "revenue", "last_orders", "last_revenue"])?;
                let bucket = match *b {
                    "day" => SeriesBucket::Day,
                    "week" => SeriesBucket::Week,
                    _ => return Err(bad()),
                };
                Self::Series(period(p)?, bucket, field)
            }
            ("repeat_customers", [p]) => {
                ok_field(&["customers", "repeat", "returning"])?;
                Self::Repeat(period(p)?, field)
            }
            ("refunds", [p]) => {
                ok_field(&["count", "total", "top_reason"])?;
                Self::Refunds(period(p)?, field)
            }
            ("top_customers", [p]) => {
                ok_field(&["first_name", "first_revenue"])?;
                Self::TopCustomers(period(p)?, field)
            }
            ("product_performance", [p]) => {
                ok_field(&["first", "first_revenue", "first_refunded"])?;
                Self::Performance(period(p)?, field)
            }
            ("orders_by_status", [p]) => {
                ok_field(&["orders", "unfulfilled", "paid"])?;
                Self::Status(period(p)?, field)
            }
            ("sync_status", []) => {
                ok_field(&["orders_read"])?;
                Self::Sync(field)
            }
            _ => return Err(bad()),
        })
    }

    /// The figure as the tool reports it: from the development store's
    /// data when `truth` has it, else from the data source itself.
    async fn resolve(
        &self,
        data: &dyn StoreData,
        truth: &Truth,
        today: NaiveDate,
    ) -> Result<String, String> {
        match truth {
            Truth::Dataset { data, since, until } => {
                let source = expected::Source::new(data, *since, *until);
                self.figure_from_source(&source, today)
            }
            Truth::DataSource => self.figure_from_data(data, today).await,
        }
    }

    /// The figure computed from the development store's own data.
    fn figure_from_source(
        &self,
        src: &expected::Source<'_>,
        today: NaiveDate,
    ) -> Result<String, String> {
        let ds = src.dataset();
        // The tools' own "today" is the shop's.
        let shop_today = src.day_of(chrono::Utc::now());
        let back = |d: NaiveDate, n: u32| d.checked_sub_days(Days::new(u64::from(n))).unwrap_or(d);
        let aov = |s: &expected::Sales| money(Amount::from_cents(s.average_order_value_cents()));
        let title = |v: Vec<MirrorProductSales>| -> Result<MirrorProductSales, String> {
            v.into_iter()
                .next()
                .ok_or_else(|| "no products sold".to_owned())
        };
        Ok(match self {
            Self::LastWeek(f) => {
                let (from, to) = (back(shop_today, 6), shop_today);
                let s = src.sales(from, to);
                match f.as_str() {
                    "count" => s.orders.to_string(),
                    "revenue" => money(s.revenue),
                    "aov" => aov(&s),
                    "net_revenue" => money(Amount::from(s.revenue) - Amount::from(s.refunded)),
                    _ => title(src.top_products(from, to, 1))?.title,
                }
            }
            Self::Sales(from, to, f) => {
                let s = src.sales(*from, *to);
                match f.as_str() {
                    "count" => s.orders.to_string(),
                    "revenue" => money(s.revenue),
                    _ => aov(&s),
                }
            }
            Self::Overview(f) => match f.as_str() {
                "shop_name" => ds.shop.name.clone(),
                _ => title(src.top_products(back(shop_today, 29), shop_today, 1))?.title,
            },
            Self::Counts(f) => match f.as_str() {
                "products" => ds.products.len().to_string(),
                "customers" => ds.customers.len().to_string(),
                "orders" => src.all_orders().count().to_string(),
                _ => src.all_orders().filter(|o| o.is_open()).count().to_string(),
            },
            Self::Top(days, limit, f) => {
                let p = title(src.top_products(
                    back(shop_today, days.clamp(&1, &365) - 1),
                    shop_today,
                    *limit as usize,
                ))?;
                if f == "first" {
                    p.title
                } else {
                    p.units.to_string()
                }
            }
            Self::Recent(_, f) => {
                let o = src.all_orders().last().ok_or("no orders")?;
                if f == "latest_name" {
                    o.name()
                } else {
                    hirecj_devstore::format_cents(o.total)
                }
            }
            Self::Customer(email, _) => ds
                .customer_by_email(email)
                .map(|c| c.display_name())
                .ok_or("no such customer")?,
            Self::Compare(pair, f) => {
                let [now, before] = pair.resolve(today);
                let (a, b) = (src.sales(now.0, now.1), src.sales(before.0, before.1));
                match f.as_str() {
                    "orders" => a.orders.to_string(),
                    "revenue" => money(a.revenue),
                    "aov" => aov(&a),
                    "previous_orders" => b.orders.to_string(),
                    "previous_revenue" => money(b.revenue),
                    _ => aov(&b),
                }
            }
            Self::Series(p, bucket, f) => {
                let (from, to) = p.resolve(today);
                let points = src.series(from, to, *bucket);
                let last = points.last().ok_or("no points")?;
                match f.as_str() {
                    "orders" => points.iter().map(|p| p.orders).sum::<u64>().to_string(),
                    "revenue" => money(points.iter().map(|p| p.revenue).sum::<Money>()),
                    "last_orders" => last.orders.to_string(),
                    _ => money(last.revenue),
                }
            }
            Self::Repeat(p, f) => {
                let (from, to) = p.resolve(today);
                let r = src.repeat_customers(from, to);
                match f.as_str() {
                    "customers" => r.customers,
                    "repeat" => r.repeat_customers,
                    _ => r.returning_customers,
                }
                .to_string()
            }
            Self::Refunds(p, f) => {
                let (from, to) = p.resolve(today);
                let r = src.refunds(from, to, usize::MAX);
                match f.as_str() {
                    "count" => r.count.to_string(),
                    "total" => money(r.amount),
                    _ => top_reason(r.refunds.iter().map(|e| e.refund.note.as_deref()))?,
                }
            }
            Self::TopCustomers(p, f) => {
                let (from, to) = p.resolve(today);
                let c = src
                    .top_customers(from, to, 1)
                    .into_iter()
                    .next()
                    .ok_or("no customers")?;
                if f == "first_name" {
                    c.name.or(c.email).ok_or("a customer without a name")?
                } else {
                    money(c.revenue)
                }
            }
            Self::Performance(p, f) => {
                let (from, to) = p.resolve(today);
                let first = title(src.product_performance(from, to, 1))?;
                match f.as_str() {
                    "first" => first.title,
                    "first_refunded" => refunded_units(first.refunded_units)?,
                    _ => money(first.revenue),
                }
            }
            Self::Status(p, f) => {
                let (from, to) = p.resolve(today);
                let s = src.orders_by_status(from, to);
                status_figure(&s, f)
            }
            Self::Sync(_) => src.all_orders().count().to_string(),
        })
    }

    /// The figure as the data source itself reports it.
    async fn figure_from_data(
        &self,
        data: &dyn StoreData,
        today: NaiveDate,
    ) -> Result<String, String> {
        let e = |e: hirecj_shopify::ShopifyError| e.to_string();
        let summary = |s: &hirecj_shopify::SalesSummary, f: &str| -> Result<String, String> {
            Ok(match f {
                "count" => s.orders.to_string(),
                "revenue" => money(s.revenue),
                "aov" => money(s.average_order_value),
                "net_revenue" => money(s.net_revenue),
                "top_product" => s
                    .top_products
                    .first()
                    .map(|p| p.title.clone())
                    .ok_or("no top product")?,
                _ => return Err(format!("unknown field {f}")),
            })
        };
        fn ready<T>(m: Mirrored<T>) -> Result<T, String> {
            match m {
                Mirrored::Ready { figures, .. } => Ok(figures),
                Mirrored::Reading { .. } => Err("the store is still being read".to_owned()),
                Mirrored::Unavailable => Err("the mirror is unavailable".to_owned()),
            }
        }
        match self {
            Self::LastWeek(f) => summary(&data.orders_last_week().await.map_err(e)?, f),
            Self::Sales(from, to, f) => {
                summary(&data.sales_summary(*from, *to).await.map_err(e)?, f)
            }
            Self::Overview(f) => {
                let o = data.store_overview().await.map_err(e)?;
                match f.as_str() {
                    "shop_name" => Ok(o.shop.name),
                    _ => o
                        .top_products
                        .first()
                        .map(|p| p.title.clone())
                        .ok_or_else(|| "no top product".to_owned()),
                }
            }
            Self::Counts(f) => {
                let c = data.store_counts().await.map_err(e)?;
                Ok(match f.as_str() {
                    "products" => c.products.count,
                    "customers" => c.customers.count,
                    "orders" => c.orders.count,
                    _ => c.open_orders.count,
                }
                .to_string())
            }
            Self::Top(days, limit, f) => {
                let t = data.top_products(*days, *limit).await.map_err(e)?;
                let first = t.products.first().ok_or("no products sold")?;
                Ok(if f == "first" {
                    first.title.clone()
                } else {
                    first.units.to_string()
                })
            }
            Self::Recent(n, f) => {
                let orders = data.recent_orders(*n).await.map_err(e)?;
                let o = orders.first().ok_or("no orders")?;
                Ok(if f == "latest_name" {
                    o.name.clone()
                } else {
                    money(o.total)
                })
            }
            Self::Customer(email, _) => data
                .customer_by_email(email)
                .await
                .map_err(e)?
                .and_then(|c| c.name)
                .ok_or_else(|| "no such customer".to_owned()),
            Self::Compare(pair, f) => {
                let [now, before] = pair.resolve(today);
                let (s, when) = match f.strip_prefix("previous_") {
                    Some(f) => (f, before),
                    None => (f.as_str(), now),
                };
                let s = if s == "orders" { "count" } else { s };
                summary(&data.sales_summary(when.0, when.1).await.map_err(e)?, s)
            }
            Self::Series(p, bucket, f) => {
                let (from, to) = p.resolve(today);
                let series = data.sales_series(from, to, *bucket).await.map_err(e)?;
                let last = series.points.last().ok_or("no points")?;
                Ok(match f.as_str() {
                    "orders" => series
                        .points
                        .iter()
                        .map(|p| p.orders)
                        .sum::<u64>()
                        .to_string(),
                    "revenue" => money(series.points.iter().map(|p| p.revenue).sum::<Money>()),
                    "last_orders" => last.orders.to_string(),
                    _ => money(last.revenue),
                })
            }
            Self::Repeat(p, f) => {
                let (from, to) = p.resolve(today);
                let r = ready(data.repeat_customers(from, to).await.map_err(e)?)?;
                Ok(match f.as_str() {
                    "customers" => r.customers,
                    "repeat" => r.repeat_customers,
                    _ => r.returning_customers,
                }
                .to_string())
            }
            Self::Refunds(p, f) => {
                let (from, to) = p.resolve(today);
                let r = ready(data.refunds(from, to, 2_000).await.map_err(e)?)?;
                Ok(match f.as_str() {
                    "count" => r.count.to_string(),
                    "total" => money(r.amount),
                    _ => top_reason(r.refunds.iter().map(|e| e.refund.note.as_deref()))?,
                })
            }
            Self::TopCustomers(p, f) => {
                let (from, to) = p.resolve(today);
                let list = ready(data.top_customers(from, to, 1).await.map_err(e)?)?;
                let c = list.into_iter().next().ok_or("no customers")?;
                if f == "first_name" {
                    c.name
                        .or(c.email)
                        .ok_or_else(|| "a customer without a name".to_owned())
                } else {
                    Ok(money(c.revenue))
                }
            }
            Self::Performance(p, f) => {
                let (from, to) = p.resolve(today);
                let t = ready(data.product_performance(from, to, 1).await.map_err(e)?)?;
                let first = t.products.into_iter().next().ok_or("no products sold")?;
                match f.as_str() {
                    "first" => Ok(first.title),
                    "first_refunded" => refunded_units(first.refunded_units),
                    _ => Ok(money(first.revenue)),
                }
            }
            Self::Status(p, f) => {
                let (from, to) = p.resolve(today);
                let s = ready(data.orders_by_status(from, to).await.map_err(e)?)?;
                Ok(status_figure(&s, f))
            }
            Self::Sync(_) => {
                let sync = data.sync_status().await.map_err(e)?;
                let sync = sync.ok_or("no copy of the store")?;
                Ok(sync.orders_mirrored.to_string())
            }
        }
    }
}

/// `orders`, or the orders with one status, from a status count.
fn status_figure(s: &MirrorOrdersByStatus, field: &str) -> String {
    let of = |list: &[hirecj_domain::mirror::MirrorStatusCount], word: &str| {
        list.iter()
            .filter(|c| c.status.as_deref() == Some(word))
            .map(|c| c.orders)
            .sum::<u64>()
    };
    match field {
        "unfulfilled" => of(&s.fulfillment, "UNFULFILLED"),
        "paid" => of(&s.financial, "PAID"),
        _ => s.orders,
    }
    .to_string()
}

/// The most frequent refund reason (ties: the first in `notes`), as the
/// refunds tool tallies them.
fn top_reason<'a>(notes: impl Iterator<Item = Option<&'a str>>) -> Result<String, String> {
    let mut counts: Vec<(Option<&str>, u64)> = Vec::new();
    for n in notes {
        let n = n.map(str::trim).filter(|n| !n.is_empty());
        match counts.iter_mut().find(|(r, _)| *r == n) {
            Some(c) => c.1 += 1,
            None => counts.push((n, 1)),
        }
    }
    counts
        .into_iter()
        .filter_map(|(r, n)| r.map(|r| (r, n)))
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(r, _)| r.to_owned())
        .ok_or_else(|| "no refund with a reason".to_owned())
}

/// Runs `scenarios` with `provider`, opening each scenario's store through
/// `factory`. Never panics; every problem is a failed row.
pub async fn run_evals(
    provider: &dyn ModelProvider,
    catalog: &Catalog,
    scenarios: &[Scenario],
    factory: &dyn DataSourceFactory,
    options: &EvalOptions,
) -> EvalReport {
    let mut report = EvalReport::default();
    if let Err(errors) = validate_scenarios(scenarios, catalog) {
        for e in errors {
            report.rows.push(EvalRow {
                scenario: "(load)".to_owned(),
                turn: 0,
                expectation: "scenario is valid".to_owned(),
                passed: false,
                detail: e.to_string(),
            });
        }
        return report;
    }
    for s in scenarios {
        let started = std::time::Instant::now();
        run_scenario(provider, catalog, s, factory, options, &mut report).await;
        report.durations.push((s.name.clone(), started.elapsed()));
    }
    report
}

/// `hirecj-eval [files]`: loads the scenarios (the embedded ones when
/// `files` is empty), validates them, starts the app in process with its
/// development store ([`mirror::MirrorSource`]), installs each scenario's
/// shop through OAuth and waits for its backfill, runs every scenario with
/// `provider` over the mirror, with the expected figures computed from the
/// development store's own data, writes the table (with each backfill's
/// and each scenario's time) to `out` and returns whether everything
/// passed.
pub async fn run_command(
    provider: &dyn ModelProvider,
    catalog: &Catalog,
    files: &[PathBuf],
    out: &mut (dyn std::io::Write + Send),
) -> Result<bool, String> {
    let scenarios = load_scenarios(files).map_err(|e| e.to_string())?;
    validate_scenarios(&scenarios, catalog).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let source = mirror::MirrorSource::start()
        .await
        .map_err(|e| format!("could not start the app with its development store: {e}"))?;
    let options = mirror_options(&source, &scenarios).await?;
    let report = run_evals(provider, catalog, &scenarios, &source, &options).await;
    let _ = writeln!(
        out,
        "provider {} (model {}), {} scenarios\n",
        provider.name(),
        provider.model(),
        scenarios.len()
    );
    for (shop, m) in source.shops().await {
        let _ = writeln!(
            out,
            "{shop}: {} orders ({} objects) mirrored through OAuth and Bulk Operations in {:.2} s",
            m.sync.orders_mirrored,
            m.sync.objects_mirrored,
            m.backfill.as_secs_f64()
        );
    }
    let _ = writeln!(out);
    let _ = write!(out, "{}", report.table());
    if !report.passed() {
        let _ = writeln!(out, "\nAnswers of failed scenarios:");
        for (s, t, text) in &report.answers {
            if report.failures().any(|r| &r.scenario == s) {
                let _ = writeln!(out, "--- {s} turn {t}:\n{text}\n");
            }
        }
    }
    Ok(report.passed())
}

/// Mirrors every shop the scenarios use (before any scenario runs, so no
/// scenario's time includes a backfill) and takes "today" as the first
/// shop's own day, as its tools count days.
pub async fn mirror_options(
    source: &mirror::MirrorSource,
    scenarios: &[Scenario],
) -> Result<EvalOptions, String> {
    let mut options = EvalOptions::default();
    let mut first = true;
    for s in scenarios {
        if s.store.eq_ignore_ascii_case(NO_STORE) {
            continue;
        }
        let m = source.mirrored(&s.store).await?;
        if first {
            options.today = m.sync.time_zone.day_of(chrono::Utc::now());
            first = false;
        }
    }
    Ok(options)
}

async fn run_scenario(
    provider: &dyn ModelProvider,
    catalog: &Catalog,
    s: &Scenario,
    factory: &dyn DataSourceFactory,
    options: &EvalOptions,
    report: &mut EvalReport,
) {
    let row = |turn: usize, expectation: String, passed: bool, detail: String| EvalRow {
        scenario: s.name.clone(),
        turn,
        expectation,
        passed,
        detail,
    };
    let connected = !s.store.eq_ignore_ascii_case(NO_STORE);
    let data: Option<Arc<dyn StoreData>> = if connected {
        match factory.open(&s.store).await {
            Ok(d) => Some(d),
            Err(e) => {
                report
                    .rows
                    .push(row(0, format!("open store {}", s.store), false, e));
                return;
            }
        }
    } else {
        None
    };
    let tools = match &data {
        Some(d) => ToolContext::connected(d.clone()),
        None => ToolContext::disconnected(),
    };
    let truth = if connected {
        factory.truth(&s.store).await
    } else {
        Truth::DataSource
    };
    // Where the conversation opens: the app's own rules.
    // A scenario is a signed-in merchant, with or without a connected store
    // (e.g. after an uninstall).
    let standing = Standing {
        authenticated: true,
        store_connected: connected,
    };
    let mut workflow = match catalog.open_workflow(Some(&s.workflow), standing) {
        Ok(opening) => opening.workflow,
        Err(e) => {
            report.rows.push(row(
                0,
                format!("open workflow {}", s.workflow),
                false,
                e.to_string(),
            ));
            return;
        }
    };
    let mut state = ConversationState::default();
    let merchant = MerchantContext {
        shop_name: None,
        shop_domain: connected.then(|| s.store.clone()),
        connected,
        needs_reconnect: false,
        last_visit: None,
        money_format: connected.then(|| MONEY_FORMAT.to_owned()),
        ..MerchantContext::default()
    };
    let mut history: Vec<HistoryEntry> = Vec::new();
    let kind = ProviderKind::of(provider);
    for (i, t) in s.turns.iter().enumerate() {
        let n = i + 1;
        if let Some(w) = t.workflow.as_deref().and_then(|w| catalog.workflow(w)) {
            workflow = w;
        }
        let mut event = None;
        let mut initial = false;
        if let Some(m) = &t.merchant {
            history.push(HistoryEntry::merchant(m.clone()));
        } else if let Some(e) = &t.event {
            if e == INITIAL_ACTION {
                initial = true;
                match &workflow.behavior.initial_action {
                    Some(a) => event = Some(a.clone()),
                    None => {
                        report.rows.push(row(
                            n,
                            "initial action exists".into(),
                            false,
                            format!("{} has none", workflow.name),
                        ));
                        return;
                    }
                }
            } else {
                event = Some(e.clone());
            }
        }
        let input = TurnInput {
            conversation_id: format!("eval:{}", s.name),
            workflow,
            persona: catalog.persona(),
            merchant: merchant.clone(),
            facts: s.facts.clone(),
            history: history.clone(),
            system_event: event.clone(),
            summary: None,
            today: options.today,
        };
        let out = run_turn(
            provider,
            &tools,
            input,
            &options.turn,
            &|_| {},
            CancellationToken::new(),
        )
        .await;
        report.answers.push((s.name.clone(), n, out.text.clone()));
        report.rows.push(row(
            n,
            "turn completes".into(),
            out.error.is_none() && !out.stopped && !out.text.trim().is_empty(),
            out.error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_else(|| "empty answer".into()),
        ));
        let text_lower = out.text.to_lowercase();
        let e = &t.expect;
        if let Some(want) = &e.tools_called {
            let mut got: Vec<String> = out.tools_called.clone();
            got.sort();
            got.dedup();
            let mut want_sorted = want.clone();
            want_sorted.sort();
            want_sorted.dedup();
            report.rows.push(row(
                n,
                format!("tools_called = [{}]", want.join(", ")),
                got == want_sorted,
                format!("called [{}]", got.join(", ")),
            ));
        }
        for key in &e.numbers_from {
            let (passed, detail) = match (&data, NumberKey::parse(key)) {
                (Some(d), Ok(k)) => match k.resolve(d.as_ref(), &truth, options.today).await {
                    Ok(v) => (
                        out.text.contains(&v),
                        format!("expected {v:?} in the answer"),
                    ),
                    Err(err) => (false, format!("could not compute: {err}")),
                },
                (None, _) => (false, "no store".into()),
                (_, Err(err)) => (false, err),
            };
            report
                .rows
                .push(row(n, format!("numbers_from {key}"), passed, detail));
        }
        for c in &e.contains {
            report.rows.push(row(
                n,
                format!("contains {c:?}"),
                text_lower.contains(&c.to_lowercase()),
                "not in the answer".into(),
            ));
        }
        for c in &e.not_contains {
            report.rows.push(row(
                n,
                format!("not_contains {c:?}"),
                !text_lower.contains(&c.to_lowercase()),
                "found in the answer".into(),
            ));
        }
        for (expect, kind, name) in [
            (e.marker, OAUTH_BUTTON, "marker"),
            (e.chart, CHART, "chart"),
        ] {
            let Some(m) = expect else {
                continue;
            };
            let elements: Vec<_> = out
                .ui_elements
                .iter()
                .filter(|el| el.kind == kind)
                .collect();
            let present = !elements.is_empty()
                && elements
                    .iter()
                    .all(|el| out.text.contains(&el.placeholder()))
                && (kind != CHART || elements.iter().all(|el| el.chart.is_some()));
            let clean = !out.text.contains("{{")
                && !out.text.to_lowercase().contains("oauth:shopify")
                && !out.text.to_lowercase().contains("{{chart");
            let (passed, label) = match m {
                MarkerExpect::Present => (present && clean, format!("{name} present")),
                MarkerExpect::Absent => (elements.is_empty() && clean, format!("{name} absent")),
            };
            report.rows.push(row(
                n,
                label,
                passed,
                format!("{} {kind} elements", elements.len()),
            ));
        }
        if !e.facts.is_empty() {
            let facts = match &t.merchant {
                Some(m) => extract_facts(kind, provider, m).await,
                None => Vec::new(),
            };
            for f in &e.facts {
                let f_lower = f.to_lowercase();
                report.rows.push(row(
                    n,
                    format!("fact {f:?}"),
                    facts.iter().any(|x| x.to_lowercase().contains(&f_lower)),
                    format!("extracted {facts:?}"),
                ));
            }
        }
        if let Some(ev) = event {
            history.push(HistoryEntry::system(ev));
        }
        if !out.text.is_empty() {
            history.push(HistoryEntry::cj(out.text.clone()));
        }
        if initial {
            state.mark_initial_action_done(&workflow.name);
            if let Some(next) = catalog.complete_initial_action(&workflow.name, &mut state) {
                workflow = next;
            }
        }
        if let Some(w) = &e.workflow_after {
            report.rows.push(row(
                n,
                format!("workflow_after = {w}"),
                &workflow.name == w,
                format!("is {}", workflow.name),
            ));
        }
    }
}

#[cfg(test)]
mod tests;
