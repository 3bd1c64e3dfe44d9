//! CJ's store tools: read-only tools over the merchant's Shopify data.
//!
//! **A tool is one module** (`tools/<tool>.rs`): a struct holding its
//! validated arguments that implements `ToolDefinition` — the name the
//! model calls it by, its description and input schema, its status line,
//! how it parses the model's arguments, how it runs against [`StoreData`],
//! its result type (owned by the agent, so the model's view of the store
//! never silently follows a change in `hirecj_shopify`) and the short text
//! the offline brain writes from that result.
//!
//! **Every list of tools is derived from the registry** at the bottom of
//! this file (`tool_registry!`, one line per tool): [`ToolName`] (every
//! tool, for specs, workflow validation and evals), `Tool` (a validated
//! call) and `ToolResult` (a result read back into the tool's type, for the
//! offline brain). Adding a line adds a variant to each, so the compiler
//! names every `match` that must handle the new tool.
//!
//! No tool takes a shop: the [`ToolContext`] is built by the caller for the
//! conversation's authenticated merchant and holds that merchant's data
//! source ([`StoreData`], implemented for
//! [`hirecj_shopify::ShopifyDataFetcher`]). Whatever the model writes in the
//! arguments, it can only read that one store (DESIGN.md §4.2).
//!
//! Arguments are validated (dates, ranges, emails); a bad argument, a
//! timeout or a Shopify failure becomes an error result for the model
//! ([`ToolOutput::is_error`]), never a crashed turn. A 401 from Shopify
//! becomes a result telling the model that the merchant must reconnect
//! ([`ToolOutput::needs_reconnect`]).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hirecj_shopify::ShopifyError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::chart::Chart;
use crate::model::{ToolCall, ToolSpec};
use crate::workflow::Workflow;

mod arguments;
mod shared;
mod shop_format;

pub(crate) use arguments::InvalidArguments;
pub use hirecj_shopify::store_data::{
    Basis, Mirrored, SalesSeriesData, StoreData, series_from_summary,
};
pub use shop_format::ShopFormat;

/// Default time one tool call may take.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest serialized result handed to the model (bytes); longer results are
/// cut and marked.
pub const MAX_RESULT_BYTES: usize = 24_000;

/// Everything one tool is, in its own module; see the module docs.
///
/// The implementing struct is the tool's validated arguments: `parse` builds
/// it from the model's JSON and its `Serialize` writes it back as the JSON
/// the model would send (the offline brain calls tools that way).
pub(crate) trait ToolDefinition: Serialize + Sized + Send {
    /// The name the model calls it by. A contract: workflows, evals, stored
    /// traces and the browser's status line use it, so it never changes.
    const NAME: &'static str;
    /// What the tool does and when to use it, for the model.
    const DESCRIPTION: &'static str;
    /// What CJ is doing while it runs (the "thinking" indicator).
    const THINKING_STATUS: &'static str;
    /// What it loads, as the offline brain names it in "I couldn't load …".
    const SUBJECT: &'static str;
    /// What a conversation that used it is about, as history lists it
    /// ("Best sellers").
    const TITLE: &'static str;

    /// The result the model reads, as compact JSON. The agent's own type:
    /// the JSON it serializes to is the model-facing contract.
    type Output: Serialize + DeserializeOwned + fmt::Debug + Clone + PartialEq + Send;

    /// JSON Schema of the arguments object.
    fn input_schema() -> Value;

    /// Validates the model's arguments. Unknown keys are ignored (a shop
    /// written by the model changes nothing).
    fn parse(arguments: &Map<String, Value>) -> Result<Self, InvalidArguments>;

    /// Reads the store.
    fn run(
        self,
        data: &dyn StoreData,
    ) -> impl Future<Output = Result<Self::Output, ShopifyError>> + Send;

    /// The result in a few lines of Markdown, as the offline brain tells the
    /// merchant, with figures written the shop's way.
    fn text(output: &Self::Output, format: &ShopFormat) -> String;

    /// The result as a chart, for tools whose results are a series or a
    /// ranking ([`crate::chart`]); CJ shows it with `{{chart}}`.
    fn chart(_output: &Self::Output, _format: &ShopFormat) -> Option<Chart> {
        None
    }
}

/// The arguments schema of a tool that takes none.
fn no_arguments_schema() -> Value {
    json!({"type": "object", "properties": {}, "additionalProperties": false})
}

/// Declares the tool modules and generates every list and dispatch over
/// them: one `module::Type` line per tool.
macro_rules! tool_registry {
    ($($module:ident :: $tool:ident),+ $(,)?) => {
        $(pub(crate) mod $module;)+

        /// Every tool CJ has, one variant per tool module. Workflows may list
        /// only these; [`ToolName::ALL`] is the one list of tools.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ToolName {
            $(
                #[doc = concat!("The tool in `tools/", stringify!($module), ".rs`.")]
                $tool,
            )+
        }

        impl ToolName {
            /// Every tool, in registry (alphabetical) order.
            pub const ALL: &'static [ToolName] = &[$(ToolName::$tool),+];

            /// The name the model calls it by.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$tool => <$module::$tool as ToolDefinition>::NAME,)+
                }
            }

            /// What CJ is doing while it runs.
            pub const fn thinking_status(self) -> &'static str {
                match self {
                    $(Self::$tool => <$module::$tool as ToolDefinition>::THINKING_STATUS,)+
                }
            }

            /// What a conversation that used it is about ("Best sellers").
            pub const fn title(self) -> &'static str {
                match self {
                    $(Self::$tool => <$module::$tool as ToolDefinition>::TITLE,)+
                }
            }

            /// What it loads, for sentences such as "I couldn't load …".
            pub(crate) const fn subject(self) -> &'static str {
                match self {
                    $(Self::$tool => <$module::$tool as ToolDefinition>::SUBJECT,)+
                }
            }

            /// The spec offered to the model.
            pub fn spec(self) -> ToolSpec {
                let (description, input_schema) = match self {
                    $(Self::$tool => (
                        <$module::$tool as ToolDefinition>::DESCRIPTION,
                        <$module::$tool as ToolDefinition>::input_schema(),
                    ),)+
                };
                ToolSpec {
                    name: self.as_str().to_owned(),
                    description: description.to_owned(),
                    input_schema,
                }
            }
        }

        /// A validated call of one tool (its arguments).
        #[derive(Debug, Clone, PartialEq)]
        pub(crate) enum Tool {
            $($tool($module::$tool),)+
        }

        impl Tool {
            /// Validates the model's arguments for `name`.
            pub(crate) fn parse(
                name: ToolName,
                arguments: &Map<String, Value>,
            ) -> Result<Self, InvalidArguments> {
                match name {
                    $(ToolName::$tool => $module::$tool::parse(arguments).map(Self::$tool),)+
                }
            }

            /// Which tool.
            pub(crate) fn name(&self) -> ToolName {
                match self {
                    $(Self::$tool(_) => ToolName::$tool,)+
                }
            }

            /// The arguments as the model writes them.
            pub(crate) fn arguments(&self) -> Value {
                let value = match self {
                    $(Self::$tool(tool) => serde_json::to_value(tool),)+
                };
                value.unwrap_or_else(|_| Value::Object(Map::new()))
            }

            /// Reads the store.
            async fn run(self, data: &dyn StoreData) -> Result<ToolResult, ShopifyError> {
                Ok(match self {
                    $(Self::$tool(tool) => ToolResult::$tool(tool.run(data).await?),)+
                })
            }
        }

        /// One tool's result, as the tool's own type.
        #[derive(Debug, Clone, PartialEq)]
        pub(crate) enum ToolResult {
            $($tool(<$module::$tool as ToolDefinition>::Output),)+
        }

        impl ToolResult {
            /// Reads what the model was given by `name` (the one place a
            /// result is parsed: each tool's own type).
            pub(crate) fn from_model_text(
                name: ToolName,
                content: &str,
            ) -> Result<Self, serde_json::Error> {
                Ok(match name {
                    $(ToolName::$tool => Self::$tool(serde_json::from_str(content)?),)+
                })
            }

            /// The result as the model reads it.
            fn to_model_value(&self) -> Result<Value, serde_json::Error> {
                match self {
                    $(Self::$tool(output) => serde_json::to_value(output),)+
                }
            }

            /// The tool's short text rendering of the result.
            pub(crate) fn text(&self, format: &ShopFormat) -> String {
                match self {
                    $(Self::$tool(output) => <$module::$tool as ToolDefinition>::text(output, format),)+
                }
            }

            pub(crate) fn chart(&self, format: &ShopFormat) -> Option<Chart> {
                match self {
                    $(Self::$tool(output) => <$module::$tool as ToolDefinition>::chart(output, format),)+
                }
            }
        }
    };
}

// The registry: one line per tool (`module::Type`), in name order.
tool_registry! {
    orders_by_status::OrdersByStatus,
    orders_last_week::OrdersLastWeek,
    product_performance::ProductPerformance,
    recent_orders::RecentOrders,
    refunds::Refunds,
    repeat_customers::RepeatCustomers,
    sales_comparison::SalesComparison,
    sales_series::SalesSeries,
    sales_summary::SalesSummary,
    store_counts::StoreCounts,
    store_overview::StoreOverview,
    top_customers::TopCustomers,
    top_products::TopProducts,
    sync_status::SyncStatus,
    lookup_customer::LookupCustomer,
}

impl ToolName {
    /// The tool called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Specs of the named tools that exist, sorted by name (a stable order: it
/// is part of the cached prompt prefix).
pub fn tool_specs<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<ToolSpec> {
    let mut tools: Vec<ToolName> = names.into_iter().filter_map(ToolName::from_name).collect();
    tools.sort_by_key(|t| t.as_str());
    tools.dedup();
    tools.into_iter().map(ToolName::spec).collect()
}

/// What a conversation is about from the tools its first exchange called
/// (in order, at most two): "Best sellers", "Sales summary and refunds".
/// `None` when it called none that is a tool.
pub fn title_from_tools<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut titles: Vec<&'static str> = Vec::new();
    for title in names
        .into_iter()
        .filter_map(ToolName::from_name)
        .map(ToolName::title)
    {
        if !titles.contains(&title) {
            titles.push(title);
        }
    }
    let (first, rest) = titles.split_first()?;
    let mut out = (*first).to_owned();
    if let Some(second) = rest.first() {
        let mut chars = second.chars();
        out.push_str(" and ");
        out.extend(chars.next().into_iter().flat_map(char::to_lowercase));
        out.push_str(chars.as_str());
    }
    Some(out)
}

/// What CJ is doing while the tool called `name` runs, for the "thinking"
/// indicator (a generic line for a name that is no tool).
pub fn thinking_status(name: &str) -> &'static str {
    ToolName::from_name(name).map_or("Working on it…", ToolName::thinking_status)
}

/// What one tool call produced, ready for the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolOutput {
    /// Compact JSON on success, a one-line explanation on failure.
    pub content: String,
    /// Whether the call failed.
    pub is_error: bool,
    /// Shopify answered 401: the merchant must reconnect the store.
    pub needs_reconnect: bool,
    /// Machine code of the failure (`invalid_arguments`, `timeout`,
    /// `unauthorized`, …).
    pub error_code: Option<String>,
    /// The result as a chart, when the tool draws one.
    pub chart: Option<Chart>,
}

impl ToolOutput {
    fn ok(content: String) -> Self {
        Self {
            content,
            is_error: false,
            needs_reconnect: false,
            error_code: None,
            chart: None,
        }
    }

    fn error(code: &str, message: impl Into<String>) -> Self {
        Self {
            content: message.into(),
            is_error: true,
            needs_reconnect: false,
            error_code: Some(code.to_owned()),
            chart: None,
        }
    }
}

/// The tools of one conversation: the authenticated merchant's data source
/// (if their store is connected), how the shop writes figures and the call
/// timeout.
#[derive(Clone)]
pub struct ToolContext {
    data: Option<Arc<dyn StoreData>>,
    format: ShopFormat,
    timeout: Duration,
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("connected", &self.data.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ToolContext {
    /// Tools over `data`, the connected store of the conversation's merchant.
    pub fn connected(data: Arc<dyn StoreData>) -> Self {
        Self {
            data: Some(data),
            format: ShopFormat::default(),
            timeout: DEFAULT_TOOL_TIMEOUT,
        }
    }

    /// No store connected: no tools are offered.
    pub fn disconnected() -> Self {
        Self {
            data: None,
            format: ShopFormat::default(),
            timeout: DEFAULT_TOOL_TIMEOUT,
        }
    }

    /// Sets how the shop writes figures (the charts' amounts).
    pub fn with_format(mut self, format: ShopFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets the per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether a store is connected.
    pub fn is_connected(&self) -> bool {
        self.data.is_some()
    }

    /// The tools offered in `workflow`: none without a connected store,
    /// otherwise the workflow's `available_tools`, sorted by name.
    pub fn specs_for(&self, workflow: &Workflow) -> Vec<ToolSpec> {
        if self.data.is_none() {
            return Vec::new();
        }
        tool_specs(workflow.available_tools.iter().map(String::as_str))
    }

    /// Runs one call, within the timeout. `offered` are the names offered to
    /// the model this turn; any other name is refused.
    pub async fn execute(&self, call: &ToolCall, offered: &[String]) -> ToolOutput {
        if !offered.iter().any(|n| n == &call.name) {
            return ToolOutput::error(
                "unknown_tool",
                format!("Tool `{}` is not available here.", call.name),
            );
        }
        let Some(data) = self.data.as_deref() else {
            return ToolOutput::error(
                "not_connected",
                "The merchant's Shopify store is not connected; no store data is available.",
            );
        };
        let arguments = match call.input.as_object() {
            Some(m) => m.clone(),
            None => Map::new(),
        };
        let parsed = match ToolName::from_name(&call.name) {
            Some(name) => Tool::parse(name, &arguments),
            None => Err(InvalidArguments::new(format!(
                "unknown tool `{}`",
                call.name
            ))),
        };
        let tool = match parsed {
            Ok(tool) => tool,
            Err(e) => {
                return ToolOutput::error("invalid_arguments", format!("Invalid arguments: {e}"));
            }
        };
        match tokio::time::timeout(self.timeout, tool.run(data)).await {
            Err(_) => ToolOutput::error(
                "timeout",
                format!(
                    "The store did not answer within {} seconds; try again later.",
                    self.timeout.as_secs()
                ),
            ),
            Ok(Ok(result)) => ToolOutput {
                chart: result.chart(&self.format),
                ..ToolOutput::ok(compact(&result))
            },
            Ok(Err(e)) => shopify_error_output(&e),
        }
    }

    /// Runs one call and measures it.
    pub async fn execute_timed(
        &self,
        call: &ToolCall,
        offered: &[String],
    ) -> (ToolOutput, Duration) {
        let start = Instant::now();
        let out = self.execute(call, offered).await;
        (out, start.elapsed())
    }
}

/// The error result for a Shopify failure: what the model can tell the
/// merchant, never Shopify's raw text.
fn shopify_error_output(e: &ShopifyError) -> ToolOutput {
    if e.needs_reconnect() {
        return ToolOutput {
            content: "Shopify rejected the store's access token (401). The merchant must \
                      reconnect their Shopify store before CJ can read store data again."
                .to_owned(),
            is_error: true,
            needs_reconnect: true,
            error_code: Some(e.code().to_owned()),
            chart: None,
        };
    }
    let message = match e {
        ShopifyError::InvalidInput(m) => format!("Invalid arguments: {m}"),
        ShopifyError::Throttled { .. } => {
            "Shopify is rate limiting requests right now; try again in a moment.".to_owned()
        }
        ShopifyError::Timeout => "Shopify did not answer in time; try again later.".to_owned(),
        ShopifyError::Forbidden { .. } => {
            "Shopify refused access to this data (a permission is missing).".to_owned()
        }
        ShopifyError::ShopUnavailable { .. } => {
            "The shop is not available right now (frozen or locked in Shopify).".to_owned()
        }
        other => format!("The store data could not be loaded ({}).", other.code()),
    };
    ToolOutput::error(e.code(), message)
}

/// The result as compact JSON, cut at [`MAX_RESULT_BYTES`] (a cut result is
/// marked, so the model knows it saw only part of it).
fn compact(result: &ToolResult) -> String {
    let value = result
        .to_model_value()
        .unwrap_or_else(|e| json!({"error": format!("serialization: {e}")}));
    let s = value.to_string();
    if s.len() <= MAX_RESULT_BYTES {
        return s;
    }
    format!(
        "{}… [result truncated at {MAX_RESULT_BYTES} bytes]",
        shorten(&s, MAX_RESULT_BYTES)
    )
}

/// `s` cut to at most `max` bytes on a char boundary.
pub(crate) fn shorten(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
