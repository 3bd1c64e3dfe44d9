//! Choosing CJ's model from the settings: Anthropic, an OpenAI-compatible
//! server, or the built-in offline brain.

use std::sync::Arc;

use hirecj_agent::model::HttpConfig;
use hirecj_agent::model::ModelProvider;
use hirecj_agent::model::anthropic::{AnthropicConfig, AnthropicProvider};
use hirecj_agent::model::openai::{OpenAiConfig, OpenAiProvider};
use hirecj_agent::turn::TurnConfig;

use crate::config::{ModelProviderKind, ModelSettings};

/// The Anthropic model used when `HIRECJ_MODEL` is unset.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
/// The OpenAI-compatible model used when `HIRECJ_MODEL` is unset.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";

/// The provider could not be built (e.g. its HTTP client).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the {provider} model provider: {message}")]
pub struct ProviderError {
    provider: &'static str,
    message: String,
}

/// Builds the configured model provider.
pub fn build(settings: &ModelSettings) -> Result<Arc<dyn ModelProvider>, ProviderError> {
    let http = HttpConfig {
        response_timeout: settings.timeout,
        idle_timeout: settings.timeout,
        ..HttpConfig::default()
    };
    let err = |provider: &'static str| {
        move |e: hirecj_agent::model::ModelError| ProviderError {
            provider,
            message: e.to_string(),
        }
    };
    Ok(match settings.provider {
        ModelProviderKind::Anthropic => {
            let key = settings
                .anthropic_api_key
                .as_ref()
                .map(|k| k.expose().to_owned())
                .unwrap_or_default();
            let model = settings
                .model
                .clone()
                .unwrap_or_else(|| DEFAULT_ANTHROPIC_MODEL.to_owned());
            let config = AnthropicConfig::new(key, model)
                .with_base_url(settings.anthropic_base_url.as_str().trim_end_matches('/'))
                .with_http(http);
            Arc::new(AnthropicProvider::new(config).map_err(err("anthropic"))?)
        }
        ModelProviderKind::OpenAi => {
            let model = settings
                .model
                .clone()
                .unwrap_or_else(|| DEFAULT_OPENAI_MODEL.to_owned());
            let mut config = OpenAiConfig::new("", model)
                .with_base_url(settings.openai_base_url.as_str().trim_end_matches('/'))
                .with_http(http);
            config.api_key = settings
                .openai_api_key
                .as_ref()
                .map(|k| k.expose().to_owned());
            Arc::new(OpenAiProvider::new(config).map_err(err("openai"))?)
        }
        ModelProviderKind::Offline => Arc::new(hirecj_agent::offline::OfflineProvider::new()),
    })
}

/// The loop's limits from the settings.
pub fn turn_config(settings: &ModelSettings) -> TurnConfig {
    TurnConfig {
        max_tokens: settings.max_tokens,
        temperature: settings.temperature,
        ..TurnConfig::default()
    }
}
