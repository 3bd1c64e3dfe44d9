//! The offline brain: a deterministic [`ModelProvider`] used when no model
//! is configured (and by tests and evals).
//!
//! It works through the same interface as a real model: it reads the
//! [`ModelRequest`] (system prompt, history, offered tools), streams its
//! text in small chunks, and asks for tools with [`ModelEvent::ToolCall`] +
//! [`StopReason::ToolUse`]; on the next request it reads the tool results
//! from the messages and answers from them. Every number it writes comes
//! from a tool result. Its first message in a conversation says it is
//! running in offline mode.
//!
//! What it understands comes from the request only: the workflow from the
//! `# Current workflow:` heading, the merchant context (store connected,
//! Connect button available, today's date, remembered facts) from the
//! volatile system block, and the tools from `tools`. It reads tool results
//! the way the model was given them, through each tool's own result type
//! ([`crate::tools`]'s `ToolResult`), never by JSON field name; its calls
//! are the tools' own argument types.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{Datelike, Days, Months, NaiveDate};
use tokio_util::sync::CancellationToken;

use crate::context::SUMMARY_HEADING;
use crate::memory::statements;
use crate::model::{
    ContentBlock, ModelError, ModelEvent, ModelProvider, ModelRequest, ModelStream, ResponseMeta,
    Role, StopReason, ToolCall, Usage,
};
use crate::tools::lookup_customer::{LookupCustomer, valid_email};
use crate::tools::orders_by_status::OrdersByStatus;
use crate::tools::orders_last_week::OrdersLastWeek;
use crate::tools::product_performance::ProductPerformance;
use crate::tools::recent_orders::RecentOrders;
use crate::tools::refunds::Refunds;
use crate::tools::repeat_customers::RepeatCustomers;
use crate::tools::sales_comparison::SalesComparison;
use crate::tools::sales_series::{Bucket, MAX_DAILY_DAYS, SalesSeries as SalesSeriesTool};
use crate::tools::sales_summary::SalesSummary;
use crate::tools::store_counts::StoreCounts;
use crate::tools::store_overview::StoreOverview;
use crate::tools::sync_status::SyncStatus;
use crate::tools::top_customers::TopCustomers;
use crate::tools::top_products::TopProducts;
use crate::tools::{ShopFormat, Tool, ToolName, ToolResult};
use crate::turn::{
    ADMIN_PREFIX, CONNECT_BUTTON_AVAILABLE, FACTS_HEADING, LAST_VISIT_PREFIX, MONEY_FORMAT_PREFIX,
    MerchantContext, SYSTEM_EVENT_PREFIX, TIME_ZONE_PREFIX, TODAY_PREFIX, WORKFLOW_HEADING,
};
use crate::workflow::{AD_HOC_SUPPORT, SHOPIFY_ONBOARDING, SHOPIFY_POST_AUTH};

/// Provider name of the offline brain.
pub const OFFLINE_PROVIDER: &str = "offline";
/// Model name of the offline brain.
pub const OFFLINE_MODEL: &str = "hirecj-offline-1";
/// The label in its first message of a conversation.
pub const OFFLINE_NOTE: &str = "(offline mode)";
/// The UI marker for the Connect Shopify button.
const MARKER: &str = "{{oauth:shopify}}";

/// The UI marker for the chart of a tool result.
const CHART: &str = "{{chart}}";

use crate::workflow::{CRISIS_RESPONSE, DAILY_BRIEFING, WEEKLY_REVIEW, WELCOME_BACK};

/// The offline brain. Cheap to create and share.
#[derive(Debug, Clone)]
pub struct OfflineProvider {
    chunk_chars: usize,
}

impl Default for OfflineProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl OfflineProvider {
    /// The offline brain, streaming in chunks of about 12 characters.
    pub fn new() -> Self {
        Self { chunk_chars: 12 }
    }

    /// Sets the chunk size (at least 1 character).
    pub fn with_chunk_chars(mut self, n: usize) -> Self {
        self.chunk_chars = n.max(1);
        self
    }

    /// What it would answer to `req`: the text and the tool calls.
    pub fn reply(&self, req: &ModelRequest) -> (String, Vec<ToolCall>) {
        let ctx = Ctx::from_request(req);
        let round = req
            .messages
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .count()
            + 1;
        match ctx.tool_results(req) {
            Some(results) => (ctx.answer(&results), Vec::new()),
            None => match ctx.plan() {
                Plan::Say(text) => (text, Vec::new()),
                Plan::Call(calls) => (
                    String::new(),
                    calls
                        .into_iter()
                        .enumerate()
                        .map(|(i, tool)| ToolCall {
                            id: format!("offline_{round}_{}", i + 1),
                            name: tool.name().as_str().to_owned(),
                            input: tool.arguments(),
                        })
                        .collect(),
                ),
            },
        }
    }
}

#[async_trait]
impl ModelProvider for OfflineProvider {
    fn name(&self) -> &str {
        OFFLINE_PROVIDER
    }

    fn model(&self) -> &str {
        OFFLINE_MODEL
    }

    async fn stream(
        &self,
        req: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        if cancel.is_cancelled() {
            return Err(ModelError::Cancelled);
        }
        let (text, calls) = self.reply(&req);
        let input_chars: usize = req
            .system
            .iter()
            .map(|b| b.text.len())
            .chain(req.messages.iter().flat_map(|m| {
                m.content.iter().map(|c| match c {
                    ContentBlock::Text { text } => text.len(),
                    ContentBlock::ToolUse { input, .. } => input.to_string().len(),
                    ContentBlock::ToolResult { content, .. } => content.len(),
                })
            }))
            .sum();
        let usage = Usage {
            input_tokens: (input_chars / 4) as u64,
            output_tokens: (text.len() / 4 + calls.len() * 10) as u64,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
        };
        let stop = if calls.is_empty() {
            StopReason::EndTurn
        } else {
            StopReason::ToolUse
        };
        let mut events: Vec<Result<ModelEvent, ModelError>> = chunks(&text, self.chunk_chars)
            .into_iter()
            .map(|c| Ok(ModelEvent::TextDelta(c)))
            .collect();
        events.extend(calls.into_iter().map(|c| Ok(ModelEvent::ToolCall(c))));
        events.push(Ok(ModelEvent::Usage(usage)));
        events.push(Ok(ModelEvent::Stop { reason: stop }));
        let meta = ResponseMeta {
            request_id: None,
            attempts: 1,
            time_to_headers: std::time::Duration::ZERO,
        };
        let stream = futures::stream::unfold(
            (events.into_iter(), cancel),
            |(mut it, cancel)| async move {
                let next = it.next()?;
                tokio::task::yield_now().await;
                if cancel.is_cancelled() {
                    return Some((Err(ModelError::Cancelled), (Vec::new().into_iter(), cancel)));
                }
                Some((next, (it, cancel)))
            },
        );
        Ok(ModelStream::new(meta, stream))
    }
}

fn chunks(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// What the brain decided before any tool ran.
enum Plan {
    Say(String),
    Call(Vec<Tool>),
}

/// One result of the latest tool round, read back into the tool's type.
struct RoundResult {
    /// The tool whose call it answers (`None`: no call of a known tool).
    tool: Option<ToolName>,
    outcome: Outcome,
}

/// What a tool result says.
enum Outcome {
    /// The call failed; the explanation the model was given.
    Failed(String),
    /// The result, in the tool's own type (boxed: a sales report is large
    /// next to the other outcomes).
    Read(Box<ToolResult>),
    /// A result that does not read as the tool's type (cut at the size cap).
    Unreadable,
    /// A result that answers no call of a known tool.
    Unknown,
}

impl RoundResult {
    /// Reads one tool result block; `tool` is the name of the call it
    /// answers.
    fn read(tool: &str, content: &str, is_error: bool) -> Self {
        let tool = ToolName::from_name(tool);
        let outcome = match tool {
            _ if is_error => Outcome::Failed(content.to_owned()),
            None => Outcome::Unknown,
            Some(name) => match ToolResult::from_model_text(name, content) {
                Ok(result) => Outcome::Read(Box::new(result)),
                Err(_) => Outcome::Unreadable,
            },
        };
        Self { tool, outcome }
    }

    /// What the tool loads, for "I couldn't load …".
    fn subject(&self) -> &'static str {
        self.tool.map_or("that data", ToolName::subject)
    }
}

/// What the request says about the situation.
struct Ctx {
    workflow: String,
    offered: Vec<String>,
    connected: bool,
    reconnect: bool,
    button: bool,
    today: Option<NaiveDate>,
    /// The merchant's last visit (merchant context), when known.
    last_visit: Option<NaiveDate>,
    /// The shop's name (merchant context), when connected.
    shop: Option<String>,
    /// How the shop writes figures (merchant context).
    format: ShopFormat,
    facts: Vec<String>,
    new_conversation: bool,
    noted: bool,
    last_user: String,
    /// A lasting fact the merchant's message states (what memory keeps
    /// from it), to acknowledge.
    stated: Option<String>,
    /// What the merchant told CJ before this message: remembered facts,
    /// the conversation summary's lines and the statements of the earlier
    /// messages in the request, oldest first.
    told: Vec<String>,
}

impl Ctx {
    fn from_request(req: &ModelRequest) -> Self {
        let system: String = req
            .system
            .iter()
            .map(|b| b.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let workflow = system
            .lines()
            .find_map(|l| l.strip_prefix(WORKFLOW_HEADING))
            .unwrap_or(AD_HOC_SUPPORT)
            .trim()
            .to_owned();
        let today = system
            .lines()
            .find_map(|l| l.strip_prefix(TODAY_PREFIX))
            .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok());
        let mut facts = Vec::new();
        let mut in_facts = false;
        for line in system.lines() {
            if line.starts_with(FACTS_HEADING) {
                in_facts = true;
            } else if in_facts {
                match line.strip_prefix("- ") {
                    Some(f) => facts.push(f.trim().to_owned()),
                    None if line.trim().is_empty() => {}
                    None => in_facts = false,
                }
            }
        }
        let store_line = system
            .lines()
            .find(|l| l.starts_with("Store: "))
            .unwrap_or("");
        let last_visit = system
            .lines()
            .find_map(|l| l.strip_prefix(LAST_VISIT_PREFIX))
            .and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok());
        let shop = store_line
            .strip_prefix("Store: connected: ")
            .map(|s| s.split(" (").next().unwrap_or(s).trim().to_owned())
            .filter(|s| !s.is_empty());
        // A summarised conversation is a long one: the note was given.
        let noted = system.contains(SUMMARY_HEADING)
            || req.messages.iter().any(|m| {
                m.role == Role::Assistant
                    && m.content.iter().any(
                        |c| matches!(c, ContentBlock::Text { text } if text.contains(OFFLINE_NOTE)),
                    )
            });
        let line = |prefix: &str| {
            system
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .map(|v| v.trim().to_owned())
        };
        let format = MerchantContext {
            money_format: line(MONEY_FORMAT_PREFIX),
            time_zone: line(TIME_ZONE_PREFIX),
            admin_url: line(ADMIN_PREFIX)
                .map(|a| a.split(" (").next().unwrap_or_default().to_owned()),
            ..MerchantContext::default()
        }
        .shop_format();
        let mut told = facts.clone();
        told.extend(
            system
                .lines()
                .skip_while(|l| !l.starts_with(SUMMARY_HEADING))
                .skip(1)
                .take_while(|l| !l.starts_with('#'))
                .filter_map(|l| l.strip_prefix("- "))
                .map(|l| l.trim().to_owned()),
        );
        let user_texts: Vec<String> = req
            .messages
            .iter()
            .filter(|m| m.role == Role::User)
            .map(|m| {
                m.content
                    .iter()
                    .filter_map(|c| match c {
                        ContentBlock::Text { text } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\n\n")
            })
            .collect();
        for text in user_texts.iter().rev().skip(1).rev() {
            if !text.contains(SYSTEM_EVENT_PREFIX) {
                told.extend(statements(text));
            }
        }
        let last_user = user_texts.last().cloned().unwrap_or_default();
        Self {
            workflow,
            offered: req.tools.iter().map(|t| t.name.clone()).collect(),
            connected: store_line.starts_with("Store: connected") || !req.tools.is_empty(),
            reconnect: store_line.contains("must reconnect"),
            button: system.contains(CONNECT_BUTTON_AVAILABLE),
            today,
            last_visit,
            shop,
            format,
            facts,
            new_conversation: system.contains("Conversation: new"),
            noted,
            stated: if last_user.contains(SYSTEM_EVENT_PREFIX) {
                None
            } else {
                crate::memory::rule_facts(&last_user).into_iter().next()
            },
            last_user,
            told,
        }
    }

    fn offers(&self, tool: &str) -> bool {
        self.offered.iter().any(|t| t == tool)
    }

    /// The results of the latest tool round, if the last message holds them.
    fn tool_results(&self, req: &ModelRequest) -> Option<Vec<RoundResult>> {
        let last = req.messages.last()?;
        if last.role != Role::User {
            return None;
        }
        let mut calls: BTreeMap<&str, &str> = BTreeMap::new();
        if let Some(prev) = req.messages.iter().rev().nth(1) {
            for c in &prev.content {
                if let ContentBlock::ToolUse { id, name, .. } = c {
                    calls.insert(id, name);
                }
            }
        }
        let results: Vec<RoundResult> = last
            .content
            .iter()
            .filter_map(|c| match c {
                ContentBlock::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                } => {
                    let name = calls.get(tool_use_id.as_str()).copied().unwrap_or("");
                    Some(RoundResult::read(name, content, *is_error))
                }
                _ => None,
            })
            .collect();
        (!results.is_empty()).then_some(results)
    }

    fn opening(&self) -> String {
        let mut s = String::new();
        if self.new_conversation && !self.facts.is_empty() {
            s.push_str("Welcome back! ");
        }
        if let Some(fact) = &self.stated {
            s.push_str(&format!("Noted, I'll remember that: {fact}.\n\n"));
        }
        s
    }

    fn note(&self) -> &'static str {
        if self.noted {
            ""
        } else {
            "\n\n_(offline mode) CJ is running without a language model, so answers are short \
             and come straight from your store data._"
        }
    }

    fn connect_offer(&self) -> String {
        if self.button {
            format!("\n\nConnect your Shopify store and I can answer from your data:\n\n{MARKER}")
        } else {
            String::new()
        }
    }

    fn capabilities(&self) -> String {
        "I can tell you about your orders and revenue (last week or any date range), compare \
         two periods, chart sales by day or week, show your most recent orders, your best \
         sellers and which products make the most money, your refunds and their reasons, \
         repeat and top customers, orders by status, your product and customer counts, look up \
         a customer by email, and say how fresh my numbers are."
            .to_owned()
    }

    fn plan(&self) -> Plan {
        let text = self.last_user.clone();
        let lower = text.to_lowercase();
        let event = lower.contains(&SYSTEM_EVENT_PREFIX.to_lowercase());

        if self.reconnect {
            return Plan::Say(format!(
                "{}Shopify is refusing my access to your store right now, so you'll need to \
                 reconnect Shopify before I can read your data again.{}{}",
                self.opening(),
                self.connect_offer(),
                self.note()
            ));
        }

        if event {
            match self.workflow.as_str() {
                SHOPIFY_POST_AUTH => {
                    return self.calls_or_explain(vec![
                        Tool::StoreOverview(StoreOverview {}),
                        Tool::OrdersLastWeek(OrdersLastWeek {}),
                        Tool::SyncStatus(SyncStatus {}),
                    ]);
                }
                DAILY_BRIEFING => {
                    let (from, to) = match self.today.and_then(|t| t.pred_opt()) {
                        Some(y) => (y, y),
                        None => {
                            return self.calls_or_explain(vec![recent_orders(5)]);
                        }
                    };
                    return self.calls_or_explain(vec![sales_summary(from, to), recent_orders(5)]);
                }
                WEEKLY_REVIEW => {
                    let mut calls = vec![Tool::OrdersLastWeek(OrdersLastWeek {})];
                    if let Some(t) = self.today {
                        let to = t.checked_sub_days(Days::new(7));
                        let from = t.checked_sub_days(Days::new(13));
                        if let (Some(from), Some(to)) = (from, to) {
                            calls.push(sales_summary(from, to));
                        }
                    }
                    calls.push(Tool::TopProducts(TopProducts { days: 7, limit: 3 }));
                    return self.calls_or_explain(calls);
                }
                WELCOME_BACK => {
                    let Some(today) = self.today else {
                        return self.calls_or_explain(vec![recent_orders(5)]);
                    };
                    let from = self
                        .last_visit
                        .filter(|d| *d <= today)
                        .or_else(|| today.checked_sub_days(Days::new(6)))
                        .unwrap_or(today);
                    return self.calls_or_explain(vec![sales_summary(from, today)]);
                }
                SHOPIFY_ONBOARDING => return Plan::Say(self.greeting()),
                _ => {}
            }
            if lower.contains("connected their shopify") || lower.contains("shopify_connected") {
                return self.calls_or_explain(vec![
                    Tool::StoreOverview(StoreOverview {}),
                    Tool::OrdersLastWeek(OrdersLastWeek {}),
                    Tool::SyncStatus(SyncStatus {}),
                ]);
            }
            if !self.intents(&text, false).is_empty() && !lower.contains("system event:") {
                // an event that also carries a question: fall through
            } else {
                return Plan::Say(format!(
                    "{}Hi, I'm CJ, your customer-experience teammate. {}{}{}",
                    self.opening(),
                    if self.connected {
                        self.capabilities()
                    } else {
                        "Once your Shopify store is connected I can answer questions straight \
                         from your store data."
                            .to_owned()
                    },
                    if self.connected {
                        String::new()
                    } else {
                        self.connect_offer()
                    },
                    self.note()
                ));
            }
        }

        if is_recall(&lower) {
            return Plan::Say(format!(
                "{}{}{}",
                self.opening(),
                self.recall(&lower),
                self.note()
            ));
        }
        let crisis = self.workflow == CRISIS_RESPONSE && is_crisis(&lower);
        let calls = self.intents(&text, crisis);
        if calls.is_empty() {
            if self.stated.is_none()
                && !statements(&text).is_empty()
                && !is_greeting(&lower)
                && !text.contains("{{")
            {
                return Plan::Say(format!(
                    "Thanks, I'll keep that in mind. Ask me anything about your store whenever \
                     you like.{}",
                    self.note()
                ));
            }
            if is_greeting(&lower) && self.workflow == SHOPIFY_ONBOARDING && !self.connected {
                return Plan::Say(self.greeting());
            }
            if has_any(
                &lower,
                &[
                    "what can you",
                    "what do you do",
                    "who are you",
                    "what are you",
                    "how can you help",
                    "what is hirecj",
                    "what's hirecj",
                ],
            ) {
                return Plan::Say(format!(
                    "{}I'm CJ, your AI customer-experience teammate. {}{}{}",
                    self.opening(),
                    self.capabilities(),
                    if self.connected {
                        String::new()
                    } else {
                        self.connect_offer()
                    },
                    self.note()
                ));
            }
            if wants_connect(&lower) && !self.connected {
                return Plan::Say(format!(
                    "{}Happy to help you connect. I only read store data to answer your \
                     questions, and you can disconnect in Shopify at any time.{}{}",
                    self.opening(),
                    self.connect_offer(),
                    self.note()
                ));
            }
            return Plan::Say(format!(
                "{}{}{}{}{}",
                self.opening(),
                if is_greeting(&lower) {
                    "Hi! "
                } else {
                    "I'm not sure I can answer that one. "
                },
                self.capabilities(),
                if self.connected {
                    " Just ask.".to_owned()
                } else {
                    format!(
                        " First I need access to your store.{}",
                        self.connect_offer()
                    )
                },
                self.note()
            ));
        }
        self.calls_or_explain(calls)
    }

    /// What the merchant told CJ that the question is about: the told
    /// items sharing the most words with it (the newest first, at most
    /// three), or all of the newest three when it names nothing.
    fn recall(&self, lower: &str) -> String {
        let words: Vec<String> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() >= 3 && !RECALL_STOPWORDS.contains(w))
            .map(|w| w.trim_end_matches('s').to_owned())
            .collect();
        let score = |item: &str| {
            let item = item.to_lowercase();
            words.iter().filter(|w| item.contains(w.as_str())).count()
        };
        let best = self.told.iter().map(|t| score(t)).max().unwrap_or(0);
        let found: Vec<&String> = if words.is_empty() {
            self.told.iter().rev().take(3).collect()
        } else if best == 0 {
            Vec::new()
        } else {
            self.told
                .iter()
                .rev()
                .filter(|t| score(t) == best)
                .take(3)
                .collect()
        };
        match found.as_slice() {
            [] => "I don't have anything you told me about that, in this conversation or in                    what I remember about your business. Tell me and I'll keep it in mind."
                .to_owned(),
            [one] => format!("You told me: \"{}.\"", unmarked(one)),
            many => {
                let mut s = "You told me:\n".to_owned();
                for item in many {
                    s.push_str(&format!("\n- {}", unmarked(item)));
                }
                s
            }
        }
    }

    fn greeting(&self) -> String {
        if self.connected {
            return format!(
                "{}Hi, I'm CJ, your AI customer-experience teammate. Your Shopify store is \
                 already connected, so ask me about orders, revenue, best sellers or \
                 customers.{}",
                self.opening(),
                self.note()
            );
        }
        let mut s = self.opening();
        s.push_str(
            "Hi, I'm CJ, your AI customer-experience teammate for your Shopify store.\n\n\
             Once your store is connected, I can answer questions about your orders, revenue, \
             best sellers and customers straight from your store data, and keep an eye on \
             trends for you.",
        );
        if self.button {
            // The call to act comes before the button: once the store is
            // connected the page shows "✓ connected" in the button's place,
            // and nothing after it asks to connect again.
            s.push_str(&format!(
                "\n\nConnect your store to get started:\n\n{MARKER}"
            ));
        }
        s.push_str(self.note());
        s
    }

    /// Offers the calls that this workflow allows; explains when none can run.
    fn calls_or_explain(&self, calls: Vec<Tool>) -> Plan {
        let allowed: Vec<_> = calls
            .into_iter()
            .filter(|tool| self.offers(tool.name().as_str()))
            .collect();
        if !allowed.is_empty() {
            return Plan::Call(allowed);
        }
        if !self.connected {
            return Plan::Say(format!(
                "{}I can't see your store data yet because your Shopify store isn't connected, \
                 so I won't guess.{}{}",
                self.opening(),
                self.connect_offer(),
                self.note()
            ));
        }
        Plan::Say(format!(
            "{}I can't look that up in this part of the conversation. {}{}",
            self.opening(),
            self.capabilities(),
            self.note()
        ))
    }

    /// Tools the question asks for.
    fn intents(&self, text: &str, crisis: bool) -> Vec<Tool> {
        let lower = text.to_lowercase();
        let mut calls: Vec<Tool> = Vec::new();
        // One call per tool: the first reason to call it wins.
        let push = |calls: &mut Vec<Tool>, tool: Tool| {
            if !calls.iter().any(|c| c.name() == tool.name()) {
                calls.push(tool);
            }
        };
        if crisis {
            // Size the impact: the latest orders and last week's volume.
            push(&mut calls, recent_orders(10));
            push(&mut calls, Tool::OrdersLastWeek(OrdersLastWeek {}));
        }

        if let Some(email) = find_email(text) {
            push(&mut calls, Tool::LookupCustomer(LookupCustomer { email }));
        }
        let salesy = has_any(
            &lower,
            &[
                "order", "revenue", "sales", "made", "earn", "doing", "business", "aov", "average",
                "income", "turnover",
            ],
        );
        let range = self.date_range(&lower);
        let last_week = has_any(
            &lower,
            &[
                "last week",
                "past week",
                "this week",
                "last 7 days",
                "past 7 days",
                "last seven days",
            ],
        );

        // The questions a dedicated tool answers; each one replaces the
        // general sales summary.
        let special = self.special_intents(&lower, range, last_week);
        let specific = !special.is_empty();
        for tool in special {
            push(&mut calls, tool);
        }

        if !specific {
            if last_week && (salesy || !has_any(&lower, &["best", "top", "popular"])) {
                push(&mut calls, Tool::OrdersLastWeek(OrdersLastWeek {}));
            } else if let Some((from, to)) = range {
                push(&mut calls, sales_summary(from, to));
            }
        }
        if has_any(
            &lower,
            &[
                "recent order",
                "latest order",
                "last order",
                "newest order",
                "recent purchases",
            ],
        ) {
            push(&mut calls, recent_orders(5));
        }
        if has_any(
            &lower,
            &[
                "best sell",
                "best-sell",
                "bestsell",
                "top product",
                "top seller",
                "top-selling",
                "most popular",
                "selling best",
                "sells best",
                "sell best",
                "sold best",
                "sold the most",
                "sells the most",
            ],
        ) && !calls
            .iter()
            .any(|c| c.name() == ToolName::ProductPerformance)
        {
            let days = if last_week { 7 } else { 30 };
            push(
                &mut calls,
                Tool::TopProducts(TopProducts { days, limit: 5 }),
            );
        }
        let counts = has_any(
            &lower,
            &[
                "how many product",
                "how many customer",
                "number of product",
                "number of customer",
                "customer count",
                "product count",
                "how many items",
                "catalog",
                "customers do i have",
                "products do i have",
            ],
        ) || (lower.contains("how many") && has_any(&lower, &["customer", "product"]));
        if counts && !specific {
            push(&mut calls, Tool::StoreCounts(StoreCounts {}));
        }
        if has_any(
            &lower,
            &[
                "overview",
                "how is my store",
                "my store at a glance",
                "store summary",
            ],
        ) {
            push(&mut calls, Tool::StoreOverview(StoreOverview {}));
        }
        if calls.is_empty() && salesy && !lower.contains("customer") {
            // Orders or revenue without a period: last week, stated as such.
            push(&mut calls, Tool::OrdersLastWeek(OrdersLastWeek {}));
        }
        if calls.is_empty() && lower.contains("customer") && find_email(text).is_none() {
            push(&mut calls, Tool::StoreCounts(StoreCounts {}));
        }
        calls
    }

    /// Questions one of the dedicated tools answers: comparisons, series,
    /// repeat and top customers, refunds, product revenue, order statuses,
    /// freshness. Without a stated period they cover the last 30 days
    /// (customers: 90 days, weekly series: the last 12 weeks from a Monday).
    fn special_intents(
        &self,
        lower: &str,
        range: Option<(NaiveDate, NaiveDate)>,
        last_week: bool,
    ) -> Vec<Tool> {
        let mut out = Vec::new();
        let period = |default_days: u64| -> Option<(NaiveDate, NaiveDate)> {
            if let Some(r) = range {
                return Some(r);
            }
            let today = self.today?;
            let days = if last_week { 7 } else { default_days };
            Some((today.checked_sub_days(Days::new(days - 1))?, today))
        };
        if has_any(
            lower,
            &[
                "how fresh",
                "up to date",
                "up-to-date",
                "sync",
                "how current",
                "how old is your data",
                "still reading",
                "backfill",
                "how complete",
                "are your numbers",
                "is your data",
            ],
        ) {
            out.push(Tool::SyncStatus(SyncStatus {}));
        }
        if has_any(
            lower,
            &[
                "compare",
                "compared",
                " vs",
                "versus",
                "than last",
                "than the previous",
                "than the week before",
                "than the month before",
                "up or down",
            ],
        ) && let Some(tool) = self.comparison(lower)
        {
            out.push(tool);
        }
        let weekly = has_any(
            lower,
            &["by week", "per week", "weekly", "each week", "week by week"],
        );
        let daily = has_any(
            lower,
            &[
                "by day",
                "per day",
                "daily",
                "each day",
                "day by day",
                "chart",
                "graph",
                "trend",
                "over time",
            ],
        );
        // Weeks without a period: the last 12 whole weeks, this one included.
        let twelve_weeks = || -> Option<(NaiveDate, NaiveDate)> {
            let today = self.today?;
            let monday = today
                .checked_sub_days(Days::new(u64::from(today.weekday().num_days_from_monday())))?;
            Some((monday.checked_sub_days(Days::new(77))?, today))
        };
        let series_period = if weekly && range.is_none() && !last_week {
            twelve_weeks()
        } else {
            period(30)
        };
        if (weekly || daily)
            && let Some((from, to)) = series_period
        {
            let long = (to - from).num_days() >= MAX_DAILY_DAYS;
            out.push(Tool::SalesSeries(SalesSeriesTool {
                start_date: from,
                end_date: to,
                bucket: if weekly || long {
                    Bucket::Week
                } else {
                    Bucket::Day
                },
            }));
        }
        if has_any(
            lower,
            &[
                "repeat customer",
                "returning customer",
                "repeat rate",
                "repeat purchase",
                "repeat buyer",
                "come back",
                "came back",
                "customer loyalty",
                "loyal customer",
                "retention",
            ],
        ) && let Some((from, to)) = period(90)
        {
            out.push(Tool::RepeatCustomers(RepeatCustomers {
                start_date: from,
                end_date: to,
            }));
        }
        if has_any(
            lower,
            &[
                "best customer",
                "top customer",
                "biggest customer",
                "most valuable customer",
                "who buys the most",
                "who spends the most",
                "who spent the most",
                "vip customer",
            ],
        ) && let Some((from, to)) = period(90)
        {
            out.push(Tool::TopCustomers(TopCustomers {
                start_date: from,
                end_date: to,
                limit: 5,
            }));
        }
        if lower.contains("refund")
            && let Some((from, to)) = period(30)
        {
            out.push(Tool::Refunds(Refunds {
                start_date: from,
                end_date: to,
                limit: 5,
            }));
        }
        if has_any(
            lower,
            &[
                "product performance",
                "products perform",
                "performing product",
                "most money",
                "most revenue",
                "revenue by product",
                "sales by product",
                "by revenue",
                "highest revenue",
                "top earning",
                "top-earning",
                "earns the most",
                "earn the most",
                "makes the most",
                "make the most",
            ],
        ) && let Some((from, to)) = period(30)
        {
            out.push(Tool::ProductPerformance(ProductPerformance {
                start_date: from,
                end_date: to,
                limit: 5,
            }));
        }
        if has_any(
            lower,
            &[
                "by status",
                "order status",
                "orders status",
                "unfulfilled",
                "not fulfilled",
                "not shipped",
                "unshipped",
                "awaiting fulfil",
                "pending payment",
                "payment status",
                "fulfillment status",
                "fulfilment status",
                "unpaid",
            ],
        ) && let Some((from, to)) = period(30)
        {
            out.push(Tool::OrdersByStatus(OrdersByStatus {
                start_date: from,
                end_date: to,
            }));
        }
        out
    }

    /// The two periods of a comparison: four dates as two ranges; two
    /// dates against the same number of days before; else the month so
    /// far against the same days of last month, the last 7 days against
    /// the 7 before, yesterday or today against the day before, the year so
    /// far against the same days of last year, the last N days against the
    /// N before (30 when nothing says).
    fn comparison(&self, lower: &str) -> Option<Tool> {
        let ordered = |a: NaiveDate, b: NaiveDate| if a <= b { (a, b) } else { (b, a) };
        let before = |(from, to): (NaiveDate, NaiveDate)| -> Option<(NaiveDate, NaiveDate)> {
            let len = u64::try_from((to - from).num_days()).ok()? + 1;
            Some((
                from.checked_sub_days(Days::new(len))?,
                from.checked_sub_days(Days::new(1))?,
            ))
        };
        let dates = find_dates(lower);
        let (period, compared) = if dates.len() >= 4 {
            (ordered(dates[0], dates[1]), ordered(dates[2], dates[3]))
        } else if dates.len() >= 2 {
            let period = ordered(dates[0], dates[1]);
            (period, before(period)?)
        } else {
            let today = self.today?;
            if lower.contains("month") {
                let first = today.with_day(1)?;
                let prev_first = first.checked_sub_months(Months::new(1))?;
                let prev_end = first.pred_opt()?;
                let same_day = prev_first
                    .checked_add_days(Days::new(u64::from(today.day() - 1)))?
                    .min(prev_end);
                ((first, today), (prev_first, same_day))
            } else if lower.contains("week") || lower.contains("7 days") {
                let period = (today.checked_sub_days(Days::new(6))?, today);
                (period, before(period)?)
            } else if lower.contains("yesterday") {
                let y = today.pred_opt()?;
                ((y, y), before((y, y))?)
            } else if lower.contains("today") {
                ((today, today), before((today, today))?)
            } else if lower.contains("year") {
                let first = NaiveDate::from_ymd_opt(today.year(), 1, 1)?;
                let prev_first = NaiveDate::from_ymd_opt(today.year() - 1, 1, 1)?;
                let prev_same =
                    prev_first.checked_add_days(Days::new(u64::from(today.ordinal0())))?;
                ((first, today), (prev_first, prev_same))
            } else {
                let n = u64::from(last_n_days(lower).unwrap_or(30).clamp(1, 366));
                let period = (today.checked_sub_days(Days::new(n - 1))?, today);
                (period, before(period)?)
            }
        };
        Some(Tool::SalesComparison(SalesComparison {
            start_date: period.0,
            end_date: period.1,
            compare_start_date: compared.0,
            compare_end_date: compared.1,
        }))
    }

    /// A date range in the question, resolved against today.
    fn date_range(&self, lower: &str) -> Option<(NaiveDate, NaiveDate)> {
        let dates = find_dates(lower);
        if dates.len() >= 2 {
            let (a, b) = (dates[0], dates[1]);
            return Some(if a <= b { (a, b) } else { (b, a) });
        }
        if dates.len() == 1 {
            return Some((dates[0], dates[0]));
        }
        let today = self.today?;
        if let Some(n) = last_n_days(lower) {
            let from = today.checked_sub_days(Days::new(u64::from(n.clamp(1, 366) - 1)))?;
            return Some((from, today));
        }
        if lower.contains("yesterday") {
            let y = today.pred_opt()?;
            return Some((y, y));
        }
        if lower.contains("last month") || lower.contains("past month") {
            let first_this = today.with_day(1)?;
            let first_prev = first_this.checked_sub_months(Months::new(1))?;
            return Some((first_prev, first_this.pred_opt()?));
        }
        if lower.contains("this month") {
            return Some((today.with_day(1)?, today));
        }
        if lower.contains("today") {
            return Some((today, today));
        }
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            if !matches!(pair[0], "in" | "for" | "during" | "of" | "from" | "through") {
                continue;
            }
            let Some(i) = MONTHS
                .iter()
                .position(|m| pair[1] == *m || (pair[1].len() == 3 && m.starts_with(pair[1])))
            else {
                continue;
            };
            let month = u32::try_from(i + 1).ok()?;
            let year = if month > today.month() {
                today.year() - 1
            } else {
                today.year()
            };
            let from = NaiveDate::from_ymd_opt(year, month, 1)?;
            let end = from.checked_add_months(Months::new(1))?.pred_opt()?;
            return Some((from, end.min(today)));
        }
        None
    }

    /// The answer written from tool results.
    fn answer(&self, results: &[RoundResult]) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut reconnect = false;
        let read = || {
            results.iter().filter_map(|r| match &r.outcome {
                Outcome::Read(result) => Some(result.as_ref()),
                _ => None,
            })
        };
        let header = match self.workflow.as_str() {
            DAILY_BRIEFING => read().find_map(|r| match r {
                ToolResult::SalesSummary(s) => Some(format!("**Daily briefing for {}**", s.from)),
                _ => None,
            }),
            WEEKLY_REVIEW => read().find_map(|r| match r {
                ToolResult::OrdersLastWeek(s) => {
                    Some(format!("**Weekly review, {} to {}**", s.from, s.to))
                }
                _ => None,
            }),
            CRISIS_RESPONSE => Some(
                "Sorry you're dealing with this. Here's what your store data shows:".to_owned(),
            ),
            WELCOME_BACK => Some(match &self.shop {
                Some(shop) => format!("Welcome back to **{}**!", unmarked(shop)),
                None => "Welcome back!".to_owned(),
            }),
            _ => None,
        };
        if let Some(h) = header {
            parts.push(h);
        }
        for r in results {
            match &r.outcome {
                Outcome::Failed(content) if content.contains("reconnect") => reconnect = true,
                Outcome::Failed(content) => parts.push(format!(
                    "I couldn't load {}: {}",
                    r.subject(),
                    content.trim_end_matches('.')
                )),
                Outcome::Unreadable => {
                    parts.push(format!("I couldn't read the {} result.", r.subject()))
                }
                Outcome::Unknown => {}
                Outcome::Read(result) => {
                    let mut text = self.result_text(result);
                    // Every result with a chart places it (the turn offers
                    // them in this order): under the result's first line.
                    if result.chart(&self.format).is_some() {
                        text = match text.split_once('\n') {
                            Some((head, rest)) => format!("{head}\n\n{CHART}\n\n{rest}"),
                            None if text.is_empty() => CHART.to_owned(),
                            None => format!("{text}\n\n{CHART}"),
                        };
                    }
                    if !text.is_empty() {
                        parts.push(text);
                    }
                }
            }
        }
        if reconnect {
            parts.push(format!(
                "Shopify rejected my access to your store, so you'll need to reconnect Shopify \
                 before I can read your data again.\n\n{MARKER}"
            ));
        }
        match self.workflow.as_str() {
            SHOPIFY_POST_AUTH if !reconnect => parts
                .push("Want to see your best sellers or your most recent orders next?".to_owned()),
            DAILY_BRIEFING | WEEKLY_REVIEW if !reconnect => {
                parts.push("Want me to dig into any of these?".to_owned())
            }
            WELCOME_BACK if !reconnect => {
                parts.push("What would you like to look at today?".to_owned())
            }
            CRISIS_RESPONSE => parts.push(
                "Next steps:\n- Check the affected orders above and note which customers they \
                 belong to.\n- Tell those customers before they ask; a short, honest note goes a \
                 long way.\n- Draft: \"We're sorry, your order is taking longer than it should. \
                 We're on it and will update you as soon as we know more.\""
                    .to_owned(),
            ),
            _ => {}
        }
        let mut out = self.opening();
        out.push_str(&parts.join("\n\n"));
        out.push_str(self.note());
        out
    }

    /// One result in the answer: the tool's own text, except where the
    /// workflow frames it (empty: nothing to say). Every tool is listed, so
    /// a new one is a compile error here until it is decided how the brain
    /// tells it.
    fn result_text(&self, result: &ToolResult) -> String {
        match result {
            ToolResult::StoreOverview(overview) if self.workflow == SHOPIFY_POST_AUTH => {
                overview.connected_text()
            }
            ToolResult::SyncStatus(sync) if self.workflow == SHOPIFY_POST_AUTH => {
                sync.connected_text().unwrap_or_default()
            }
            ToolResult::SalesSummary(report) if self.workflow == WEEKLY_REVIEW => {
                report.text_labelled(Some("Previous 7 days"), &self.format)
            }
            ToolResult::SalesSummary(report) if self.workflow == WELCOME_BACK => report
                .text_labelled(
                    Some(if self.last_visit.is_some() {
                        "Since your last visit"
                    } else {
                        "Last 7 days"
                    }),
                    &self.format,
                ),
            ToolResult::StoreOverview(_)
            | ToolResult::SalesSummary(_)
            | ToolResult::OrdersLastWeek(_)
            | ToolResult::RecentOrders(_)
            | ToolResult::StoreCounts(_)
            | ToolResult::TopProducts(_)
            | ToolResult::LookupCustomer(_)
            | ToolResult::SalesComparison(_)
            | ToolResult::SalesSeries(_)
            | ToolResult::RepeatCustomers(_)
            | ToolResult::TopCustomers(_)
            | ToolResult::Refunds(_)
            | ToolResult::ProductPerformance(_)
            | ToolResult::OrdersByStatus(_)
            | ToolResult::SyncStatus(_) => result.text(&self.format),
        }
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn sales_summary(from: NaiveDate, to: NaiveDate) -> Tool {
    Tool::SalesSummary(SalesSummary {
        start_date: from,
        end_date: to,
    })
}

fn recent_orders(limit: u32) -> Tool {
    Tool::RecentOrders(RecentOrders { limit })
}

fn has_any(s: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| s.contains(n))
}

/// `text` quoted back to the merchant: never a UI marker.
fn unmarked(text: &str) -> String {
    text.replace("{{", "{").replace("}}", "}")
}

/// Words of a recall question that say nothing about its subject.
const RECALL_STOPWORDS: &[&str] = &[
    "what",
    "did",
    "tell",
    "told",
    "you",
    "about",
    "remember",
    "said",
    "say",
    "mention",
    "mentioned",
    "again",
    "the",
    "our",
    "my",
    "was",
    "were",
    "that",
    "this",
    "remind",
    "how",
    "many",
    "much",
    "is",
    "are",
    "do",
    "does",
    "me",
    "earlier",
    "before",
    "we",
    "us",
    "i",
];

/// Whether the merchant asks what they told CJ.
fn is_recall(lower: &str) -> bool {
    has_any(
        lower,
        &[
            "did i tell you",
            "did i say",
            "did i mention",
            "have i told you",
            "do you remember",
            "what i told you",
            "what i said",
            "remind me what",
        ],
    )
}

fn is_greeting(lower: &str) -> bool {
    let t = lower.trim();
    ["hi", "hello", "hey", "good morning", "good afternoon", "yo"]
        .iter()
        .any(|g| {
            t == *g
                || t.starts_with(&format!("{g} "))
                || t.starts_with(&format!("{g}!"))
                || t.starts_with(&format!("{g},"))
        })
}

fn wants_connect(lower: &str) -> bool {
    has_any(
        lower,
        &[
            "connect",
            "link my store",
            "install",
            "get started",
            "sign up",
            "set up",
            "setup",
        ],
    )
}

fn is_crisis(lower: &str) -> bool {
    has_any(
        lower,
        &[
            "delay", "late", "complain", "angry", "broken", "down", "urgent", "problem", "issue",
            "stock", "refund", "lost", "missing", "wrong", "help",
        ],
    )
}

/// The first email address in `text`.
fn find_email(text: &str) -> Option<String> {
    text.split(|c: char| {
        c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '<' | '>' | '"' | '\'')
    })
    .map(|w| w.trim_matches(|c: char| matches!(c, '.' | '?' | '!' | ':')))
    .find(|w| w.contains('@') && valid_email(w))
    .map(str::to_owned)
}

/// ISO dates (YYYY-MM-DD) in the text, in order.
fn find_dates(text: &str) -> Vec<NaiveDate> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 10 <= bytes.len() {
        let cand = &bytes[i..i + 10];
        let shape = cand.iter().enumerate().all(|(j, b)| {
            if j == 4 || j == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
        let bounded = (i == 0 || !bytes[i - 1].is_ascii_digit())
            && bytes.get(i + 10).is_none_or(|b| !b.is_ascii_digit());
        if shape
            && bounded
            && let Some(d) = std::str::from_utf8(cand)
                .ok()
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        {
            out.push(d);
            i += 10;
            continue;
        }
        i += 1;
    }
    out
}

/// `N` in "last N days" / "past N days".
fn last_n_days(lower: &str) -> Option<u32> {
    let words: Vec<&str> = lower.split_whitespace().collect();
    for w in words.windows(3) {
        if (w[0] == "last" || w[0] == "past")
            && w[2].starts_with("day")
            && let Ok(n) = w[1].parse::<u32>()
        {
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests;
