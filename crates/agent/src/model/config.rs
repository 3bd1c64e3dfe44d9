//! A model provider's configuration, owned by the model layer: which
//! provider, its key, base URL and model, and the limits of each call. The
//! server's settings produce one [`ModelConfig`]; [`ModelConfig::build`] is
//! the one place a provider is made. Adding a provider is one module, one
//! [`ProviderConfig`] variant with its keys, and the conformance suite
//! (`crates/agent/tests/conformance/`) run on it.

use std::sync::Arc;
use std::time::Duration;

use hirecj_domain::Secret;

use super::anthropic::{AnthropicConfig, AnthropicProvider};
use super::openai::{OpenAiConfig, OpenAiProvider};
use super::{HttpConfig, ModelError, ModelProvider};
use crate::turn::TurnConfig;

/// The Anthropic model used when none is named.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
/// The OpenAI-compatible model used when none is named.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";

/// Which provider, with what it alone needs.
#[derive(Debug, Clone)]
pub enum ProviderConfig {
    /// Anthropic's Messages API.
    Anthropic {
        api_key: Secret,
        /// Without a trailing slash.
        base_url: String,
        model: String,
    },
    /// Any OpenAI-compatible Chat Completions server (OpenAI, Ollama, vLLM,
    /// llama.cpp …); local servers need no key.
    OpenAi {
        api_key: Option<Secret>,
        /// Usually ends in `/v1`; without a trailing slash.
        base_url: String,
        model: String,
    },
    /// The built-in deterministic brain: no network, no key.
    Offline,
}

impl ProviderConfig {
    /// The provider's name, as `HIRECJ_MODEL_PROVIDER` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Anthropic { .. } => "anthropic",
            Self::OpenAi { .. } => "openai",
            Self::Offline => "offline",
        }
    }

    /// Tokens of conversation per request when `HIRECJ_CONTEXT_TOKENS` is
    /// not set: well inside each provider's context window, with room for
    /// the system prompt, the tools, a turn's tool results and the answer
    /// (Anthropic's models take 200k; OpenAI-compatible servers are often
    /// local ones with 32k; the offline brain's is small, so its
    /// summaries are exercised).
    pub fn default_context_tokens(&self) -> u32 {
        match self {
            Self::Anthropic { .. } => 60_000,
            Self::OpenAi { .. } => 16_000,
            Self::Offline => 6_000,
        }
    }
}

/// CJ's model: the provider and the limits of every call.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub provider: ProviderConfig,
    /// Most tokens CJ writes per model call.
    pub max_tokens: u32,
    /// Sampling temperature; `None` leaves the provider's default.
    pub temperature: Option<f32>,
    /// Longest wait for a response to start or continue.
    pub timeout: Duration,
    /// Tokens of conversation per request; `None`: the provider's default.
    pub context_tokens: Option<u32>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            provider: ProviderConfig::Offline,
            max_tokens: 1024,
            temperature: None,
            timeout: Duration::from_secs(60),
            context_tokens: None,
        }
    }
}

impl ModelConfig {
    /// Makes the configured provider.
    pub fn build(&self) -> Result<Arc<dyn ModelProvider>, ModelError> {
        let http = HttpConfig {
            response_timeout: self.timeout,
            idle_timeout: self.timeout,
            ..HttpConfig::default()
        };
        Ok(match &self.provider {
            ProviderConfig::Anthropic {
                api_key,
                base_url,
                model,
            } => {
                let config = AnthropicConfig::new(api_key.expose(), model.as_str())
                    .with_base_url(base_url.trim_end_matches('/'))
                    .with_http(http);
                Arc::new(AnthropicProvider::new(config)?)
            }
            ProviderConfig::OpenAi {
                api_key,
                base_url,
                model,
            } => {
                let mut config = OpenAiConfig::new("", model.as_str())
                    .with_base_url(base_url.trim_end_matches('/'))
                    .with_http(http);
                config.api_key = api_key.as_ref().map(|k| k.expose().to_owned());
                Arc::new(OpenAiProvider::new(config)?)
            }
            ProviderConfig::Offline => Arc::new(crate::offline::OfflineProvider::new()),
        })
    }

    /// The turn loop's limits.
    pub fn turn_config(&self) -> TurnConfig {
        TurnConfig {
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            context_tokens: self
                .context_tokens
                .unwrap_or_else(|| self.provider.default_context_tokens()),
            ..TurnConfig::default()
        }
    }
}
