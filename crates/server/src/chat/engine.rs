//! The bridge from a stored conversation to one CJ turn: it gathers the
//! merchant's context, remembered facts and tools (for the conversation's
//! own merchant only), runs the agent loop with the configured model, and
//! turns its progress into WebSocket frames.

use std::sync::Arc;

use hirecj_agent::model::ModelProvider;
use hirecj_agent::tools::ToolContext;
use hirecj_agent::turn::{
    HistoryEntry, MerchantContext, TurnConfig, TurnEvent, TurnInput, run_turn,
};
use hirecj_agent::workflow::Catalog;
use hirecj_domain::{Conversation, IntegrationStatus, Message, MessageStatus, User};
use hirecj_store::Store;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::protocol::ServerFrame;
use crate::mirror::MirroredStore;
use crate::shopify::ShopifyRuntime;
use crate::shopify::service::{AccessError, fetcher_for};

/// What one turn works from.
pub struct TurnContext {
    pub conversation: Conversation,
    /// The stored conversation, oldest first; its last message is what CJ answers.
    pub history: Vec<Message>,
    pub user: Option<User>,
    /// The sequence number CJ's reply will get, used to tag streamed frames.
    pub turn: i64,
}

/// What a turn produced.
pub struct TurnOutput {
    pub text: String,
    pub ui_elements: Value,
    pub status: MessageStatus,
    pub trace: hirecj_agent::turn::TurnTrace,
}

/// A turn that produced nothing to keep.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TurnError {
    pub code: String,
    pub message: String,
}

/// Runs CJ's turns. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    provider: Arc<dyn ModelProvider>,
    catalog: Arc<Catalog>,
    store: Store,
    shopify: ShopifyRuntime,
    config: TurnConfig,
}

impl Engine {
    pub fn new(
        provider: Arc<dyn ModelProvider>,
        catalog: Arc<Catalog>,
        store: Store,
        shopify: ShopifyRuntime,
        config: TurnConfig,
    ) -> Self {
        Self {
            provider,
            catalog,
            store,
            shopify,
            config,
        }
    }

    pub fn provider(&self) -> &Arc<dyn ModelProvider> {
        &self.provider
    }

    /// The merchant's situation and the tools over their own store.
    async fn merchant(&self, user: Option<&User>) -> (MerchantContext, ToolContext) {
        let Some(user) = user else {
            return (MerchantContext::default(), ToolContext::disconnected());
        };
        let mut merchant = MerchantContext {
            shop_name: user.name.clone(),
            shop_domain: Some(user.shop_domain.clone()),
            connected: false,
            needs_reconnect: false,
            last_visit: Some(user.last_seen_at.date_naive()),
            ..MerchantContext::default()
        };
        match fetcher_for(&self.store, &self.shopify, &user.id).await {
            Ok(fetcher) => {
                merchant.connected = true;
                merchant.admin_url = Some(format!(
                    "{}/admin",
                    self.shopify.config.admin_base(fetcher.shop())
                ));
                let data = MirroredStore::new(self.store.clone(), fetcher).await;
                if let Some(sync) = data.sync() {
                    merchant.money_format = sync.money_format.clone();
                    merchant.time_zone = Some(sync.time_zone.name().to_owned());
                }
                let format = merchant.shop_format();
                (
                    merchant,
                    ToolContext::connected(Arc::new(data)).with_format(format),
                )
            }
            Err(AccessError::NeedsReconnect) => {
                merchant.needs_reconnect = true;
                (merchant, ToolContext::disconnected())
            }
            Err(AccessError::NotConnected | AccessError::Uninstalled) => {
                (merchant, ToolContext::disconnected())
            }
            Err(e) => {
                tracing::warn!(user_id = %user.id, error = %e, "store tools unavailable for this turn");
                merchant.connected = true;
                (merchant, ToolContext::disconnected())
            }
        }
    }

    /// Runs one turn, streaming its progress to `frames`. `stop` ends it
    /// early, keeping what was said.
    pub async fn run(
        &self,
        ctx: &TurnContext,
        frames: &broadcast::Sender<ServerFrame>,
        stop: CancellationToken,
    ) -> Result<TurnOutput, TurnError> {
        let workflow = self
            .catalog
            .workflow(&ctx.conversation.workflow)
            .ok_or_else(|| TurnError {
                code: "unknown_workflow".into(),
                message: format!("workflow {:?} is not loaded", ctx.conversation.workflow),
            })?;
        let (merchant, tools) = self.merchant(ctx.user.as_ref()).await;
        let facts = match &ctx.user {
            Some(user) => self
                .store
                .facts(&user.id)
                .await
                .map(|f| f.into_iter().map(|f| f.text).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let input = TurnInput {
            conversation_id: ctx.conversation.id.to_string(),
            workflow,
            persona: self.catalog.persona(),
            merchant,
            facts,
            history: ctx.history.iter().map(HistoryEntry::from).collect(),
            summary: ctx.conversation.summary.clone(),
            system_event: None,
            today: chrono::Utc::now().date_naive(),
        };
        let turn = ctx.turn;
        let started = std::sync::atomic::AtomicBool::new(false);
        let on_event = move |event: TurnEvent| {
            let frame = match event {
                TurnEvent::Thinking { status, tool } => {
                    ServerFrame::CjThinking { turn, status, tool }
                }
                TurnEvent::TextDelta { text } => ServerFrame::CjDelta {
                    turn,
                    text,
                    restart: !started.swap(true, std::sync::atomic::Ordering::Relaxed),
                },
                _ => return,
            };
            // Nobody listening (the page was closed) is fine: the reply is stored.
            let _ = frames.send(frame);
        };
        let mut config = self.config.clone();
        config.metadata_user_id = ctx.user.as_ref().map(|u| u.id.to_string());
        let outcome = run_turn(
            self.provider.as_ref(),
            &tools,
            input,
            &config,
            &on_event,
            stop,
        )
        .await;

        if outcome.needs_reconnect
            && let Some(user) = &ctx.user
            && let Err(e) = self
                .store
                .set_integration_status(
                    "shopify",
                    &user.shop_domain,
                    IntegrationStatus::NeedsReconnect,
                )
                .await
        {
            tracing::error!(error = %e, "could not mark the integration for reconnection");
        }
        let status = match (&outcome.error, outcome.stopped) {
            (_, true) => MessageStatus::Stopped,
            (Some(_), false) => MessageStatus::Interrupted,
            (None, false) => MessageStatus::Complete,
        };
        if let Some(failure) = &outcome.error
            && outcome.text.trim().is_empty()
            && !outcome.stopped
        {
            return Err(TurnError {
                code: failure.code.clone(),
                message: failure.message.clone(),
            });
        }
        Ok(TurnOutput {
            text: outcome.text,
            ui_elements: serde_json::to_value(&outcome.ui_elements)
                .unwrap_or(Value::Array(Vec::new())),
            status,
            trace: outcome.trace,
        })
    }

    /// Tokens of conversation a request carries.
    pub fn context_tokens(&self) -> usize {
        self.config.context_tokens as usize
    }

    /// The summary of `previous` and then `folded` ([`hirecj_agent::context::summarise`]).
    pub async fn summarise(
        &self,
        previous: Option<&str>,
        folded: &[HistoryEntry],
    ) -> Result<String, hirecj_agent::context::SummaryError> {
        hirecj_agent::context::summarise(
            hirecj_agent::memory::ProviderKind::of(self.provider.as_ref()),
            self.provider.as_ref(),
            previous,
            folded,
            self.context_tokens(),
        )
        .await
    }

    /// Durable facts the merchant stated in `text`, for memory.
    pub async fn extract_facts(&self, text: &str) -> Vec<String> {
        use hirecj_agent::memory::{ProviderKind, extract_facts};
        extract_facts(
            ProviderKind::of(self.provider.as_ref()),
            self.provider.as_ref(),
            text,
        )
        .await
    }
}
