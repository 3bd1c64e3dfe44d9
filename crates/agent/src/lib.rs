//! CJ's brain for HireCJ (the parts that need nothing else from the app).
//!
//! - [`model`]: one streaming interface, [`model::ModelProvider`], with the
//!   Anthropic Messages client ([`model::anthropic`]) and the
//!   OpenAI-compatible Chat Completions client ([`model::openai`]; OpenAI,
//!   Ollama, vLLM, llama.cpp). Text deltas, complete tool calls, usage and the
//!   stop reason come out the same way whichever provider runs.
//! - [`ui_actions`]: the streaming parser that turns `{{oauth:shopify}}`
//!   and `{{chart}}` markers into placeholders plus
//!   [`ui_actions::UiElement`]s; [`chart`]: what a chart element shows.
//! - [`workflow`]: the YAML workflows and CJ's persona, embedded in the
//!   binary, overridable from a directory, validated at start with errors
//!   that name the file and the key.
//! - [`tools`]: the store tools, one module each (name, JSON-schema spec,
//!   argument validation, typed result, execution, text), listed once in a
//!   registry ([`tools::ToolName::ALL`]) from which every list of tools is
//!   derived; run with timeouts and error results over a
//!   [`tools::StoreData`] held by a per-conversation
//!   [`tools::ToolContext`]; no tool takes a shop.
//! - [`turn`]: the agent loop. [`turn::run_turn`] runs one CJ turn (system
//!   prompt with a byte-stable cacheable prefix, history, concurrent tool
//!   calls, at most N rounds, cancellation), streams [`turn::TurnEvent`]s and
//!   returns a [`turn::TurnOutcome`] with its per-turn [`turn::TurnTrace`].
//! - [`offline`]: the deterministic offline brain, a [`model::ModelProvider`]
//!   that streams text and calls tools like a real model and never invents a
//!   number.
//! - [`memory`]: durable facts from merchant messages
//!   ([`memory::extract_facts`]).
//!
//! # Example
//!
//! ```no_run
//! use futures::StreamExt;
//! use hirecj_agent::model::anthropic::{AnthropicConfig, AnthropicProvider};
//! use hirecj_agent::model::{Message, ModelEvent, ModelProvider, ModelRequest, SystemBlock};
//! use hirecj_agent::ui_actions::UiActionParser;
//! use hirecj_agent::workflow::{Catalog, SHOPIFY_ONBOARDING};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let catalog = Catalog::embedded()?;
//! let workflow = catalog.workflow(SHOPIFY_ONBOARDING).ok_or("missing workflow")?;
//! let provider = AnthropicProvider::new(AnthropicConfig::new("sk-ant-…", "claude-sonnet-4-5"))?;
//!
//! let request = ModelRequest {
//!     system: vec![
//!         SystemBlock::cached(catalog.persona().prompt.clone()),
//!         SystemBlock::cached(workflow.workflow.clone()),
//!         SystemBlock::volatile("Store: not connected."),
//!     ],
//!     messages: vec![Message::user_text(
//!         workflow.behavior.initial_action.clone().unwrap_or_default(),
//!     )],
//!     tools: vec![],
//!     max_tokens: 1024,
//!     temperature: None,
//!     metadata_user_id: None,
//! };
//! let mut ui = UiActionParser::new(workflow.oauth_markers_enabled(false));
//! let mut stream = provider.stream(request, CancellationToken::new()).await?;
//! while let Some(event) = stream.next().await {
//!     match event? {
//!         ModelEvent::TextDelta(t) => print!("{}", ui.push(&t)),
//!         ModelEvent::Stop { .. } => print!("{}", ui.finish()),
//!         _ => {}
//!     }
//! }
//! println!("\nelements: {:?}", ui.elements());
//! # Ok(())
//! # }
//! ```

pub mod chart;
pub mod context;
pub mod memory;
pub mod model;
pub mod offline;
pub mod tools;
pub mod turn;
pub mod ui_actions;
pub mod workflow;
