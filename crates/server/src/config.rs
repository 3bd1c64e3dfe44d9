//! Configuration, in layers: built-in defaults < `hirecj.toml` (`--config` or
//! `HIRECJ_CONFIG`) < `.env` in the working directory < the environment.
//!
//! Every setting is declared once in [`KEYS`]; loading remembers where each
//! value came from so that `hirecj config` can say it and so that an invalid
//! value stops start-up with one line naming the key and its source.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hirecj_agent::model::{
    DEFAULT_ANTHROPIC_MODEL, DEFAULT_OPENAI_MODEL, ModelConfig, ProviderConfig,
};
use hirecj_domain::Secret;
use url::Url;

/// One setting: its environment name, default and meaning.
#[derive(Debug)]
pub struct KeyDef {
    pub env: &'static str,
    pub default: Option<&'static str>,
    pub secret: bool,
    pub help: &'static str,
}

const fn key(env: &'static str, default: Option<&'static str>, help: &'static str) -> KeyDef {
    KeyDef {
        env,
        default,
        secret: false,
        help,
    }
}

const fn secret(env: &'static str, help: &'static str) -> KeyDef {
    KeyDef {
        env,
        default: None,
        secret: true,
        help,
    }
}

/// Every setting HireCJ reads. The README's table lists the same keys.
pub static KEYS: &[KeyDef] = &[
    key(
        "HIRECJ_BIND",
        Some("127.0.0.1:8000"),
        "Address and port the server listens on.",
    ),
    key(
        "HIRECJ_DATA_DIR",
        Some("./data"),
        "Where the SQLite database and the generated secret key live.",
    ),
    key(
        "HIRECJ_PUBLIC_URL",
        None,
        "The app's external URL (OAuth redirect, cookies, WebSocket origin). Default: http:// + HIRECJ_BIND.",
    ),
    key(
        "DATABASE_URL",
        None,
        "sqlite:… or postgres://…. Default: SQLite file hirecj.db in the data directory.",
    ),
    secret(
        "REDIS_URL",
        "redis://… for the shared cache; unset = in-process cache.",
    ),
    key(
        "HIRECJ_LOG_FORMAT",
        Some("text"),
        "text (human-readable) or json.",
    ),
    key(
        "HIRECJ_LOG",
        Some("info"),
        "Log filter, tracing-subscriber syntax (e.g. info,hirecj_server=debug).",
    ),
    secret(
        "HIRECJ_SECRET_KEY",
        "Key material (32+ characters) for encrypting tokens at rest. Default: generated into the data directory.",
    ),
    key(
        "HIRECJ_COOKIE_DOMAIN",
        None,
        "Domain attribute of the session cookie (e.g. .example.com); unset = host only.",
    ),
    key(
        "HIRECJ_REQUEST_TIMEOUT_SECS",
        Some("30"),
        "Longest time an HTTP request may take.",
    ),
    key(
        "HIRECJ_BODY_LIMIT_BYTES",
        Some("1048576"),
        "Largest accepted request body.",
    ),
    key(
        "HIRECJ_SHUTDOWN_TIMEOUT_SECS",
        Some("20"),
        "How long in-flight work may finish after SIGINT/SIGTERM.",
    ),
    key(
        "HIRECJ_CONVERSATION_IDLE_MINUTES",
        Some("30"),
        "A conversation with no activity for this long is marked ended (archived).",
    ),
    key(
        "HIRECJ_MIRROR_RECONCILE_SECS",
        Some("900"),
        "How often each store mirror is reconciled with Shopify (what changed since the last \
         reconcile, read again): a lost webhook is repaired within this time.",
    ),
    key(
        "HIRECJ_MIRROR_LEASE_SECS",
        Some("60"),
        "How long a replica's claim on a store mirror's backfill or reconcile lasts without \
         renewal (it renews every few seconds while it works): a replica that dies mid-backfill \
         leaves it to the next one after this.",
    ),
    key(
        "HIRECJ_TRACE_RETENTION_DAYS",
        Some("30"),
        "How long the trace of each CJ turn (tools called, timings, usage; what the model \
         received, with HIRECJ_DEBUG) is kept for the debug panel and support; older traces \
         are deleted.",
    ),
    key(
        "HIRECJ_KEPT_REPLY_SECS",
        Some("300"),
        "How long a reply CJ wrote while the database was out is kept, and saved as soon as the \
         database is back; after this it is dropped, the merchant is told, and the message is \
         answered again when the conversation is next opened.",
    ),
    key(
        "HIRECJ_TURN_LEASE_SECS",
        Some("30"),
        "How long a replica's claim on CJ's turn of a conversation lasts without renewal (it \
         renews every third of this while CJ answers): if the replica dies mid-turn, the next \
         open of the conversation on any replica writes the reply after this.",
    ),
    key(
        "HIRECJ_PREPARE_BUDGET_MS",
        Some("10000"),
        "How long the OAuth callback waits for CJ's first message before redirecting anyway.",
    ),
    key(
        "HIRECJ_CONTENT_DIR",
        None,
        "Directory overriding the embedded workflows/*.yaml and prompts/*.yaml; unset = embedded only.",
    ),
    key(
        "HIRECJ_DEBUG",
        Some("false"),
        "Operator tool: the debug panel with per-turn traces (true/false). Off unless an operator turns it on.",
    ),
    key(
        "HIRECJ_DEV_STORE",
        None,
        "Run the built-in development store (true/false). Default: on only when HIRECJ_PUBLIC_URL is on loopback and no Shopify credentials are set.",
    ),
    key(
        "HIRECJ_HEADER_TIMEOUT_SECS",
        Some("10"),
        "Longest time a client may take to send a request's headers; also how long an idle keep-alive connection stays open.",
    ),
    key(
        "HIRECJ_MAX_CONNECTIONS",
        Some("10000"),
        "Most connections (HTTP and WebSocket) open at once; beyond it new ones get 503. Lowered at start to fit the open-file limit.",
    ),
    key(
        "HIRECJ_WS_PER_SESSION",
        Some("10"),
        "Most chat WebSockets one browser session may hold open.",
    ),
    key(
        "HIRECJ_WS_PER_ADDRESS",
        Some("100"),
        "Most chat WebSockets one client address may hold open.",
    ),
    key(
        "HIRECJ_TURNS_PER_MINUTE_SESSION",
        Some("20"),
        "CJ turns (messages, new conversations, workflow switches) one browser session may start per minute.",
    ),
    key(
        "HIRECJ_TURNS_PER_MINUTE_MERCHANT",
        Some("30"),
        "CJ turns one merchant may start per minute, over all their sessions.",
    ),
    key(
        "HIRECJ_TURNS_PER_MINUTE_ADDRESS",
        Some("60"),
        "CJ turns one client address may start per minute.",
    ),
    key(
        "HIRECJ_CONVERSATIONS_PER_HOUR",
        Some("30"),
        "New conversations one browser session may start per hour.",
    ),
    key(
        "HIRECJ_TRUST_FORWARDED_FOR",
        Some("false"),
        "Take the client address from the last X-Forwarded-For entry (only behind a proxy that sets it).",
    ),
    secret(
        "HIRECJ_METRICS_TOKEN",
        "Bearer token for /metrics; unset = /metrics answers only direct loopback clients.",
    ),
    secret(
        "HIRECJ_INTERNAL_TOKEN",
        "Bearer token for the internal API; unset = internal API disabled.",
    ),
    key(
        "SHOPIFY_CLIENT_ID",
        None,
        "Shopify app client id; unset = the built-in development store.",
    ),
    secret(
        "SHOPIFY_CLIENT_SECRET",
        "Shopify app client secret (required with SHOPIFY_CLIENT_ID).",
    ),
    key(
        "SHOPIFY_SCOPES",
        Some("read_products,read_orders,read_customers"),
        "Scopes requested at install.",
    ),
    key(
        "SHOPIFY_API_VERSION",
        Some("2026-10"),
        "Admin API version (YYYY-MM).",
    ),
    key(
        "SHOPIFY_ADMIN_BASE_URL",
        Some("https://{shop}"),
        "Template for a shop's admin base URL; must contain {shop}.",
    ),
    key(
        "HIRECJ_MODEL_PROVIDER",
        None,
        "anthropic, openai or offline. Default: anthropic with ANTHROPIC_API_KEY, else openai with OPENAI_API_KEY, else offline.",
    ),
    key(
        "HIRECJ_MODEL",
        None,
        "Model name (provider default when unset).",
    ),
    secret("ANTHROPIC_API_KEY", "Anthropic API key."),
    key(
        "ANTHROPIC_BASE_URL",
        Some("https://api.anthropic.com"),
        "Anthropic API base URL.",
    ),
    secret(
        "OPENAI_API_KEY",
        "API key for the OpenAI-compatible server (optional for local servers).",
    ),
    key(
        "OPENAI_BASE_URL",
        Some("https://api.openai.com/v1"),
        "OpenAI-compatible base URL (usually ends in /v1).",
    ),
    key(
        "HIRECJ_MODEL_MAX_TOKENS",
        Some("1024"),
        "Most tokens CJ writes per model call.",
    ),
    key(
        "HIRECJ_CONTEXT_TOKENS",
        None,
        "Most tokens of conversation sent with each model call (estimated at 4 bytes a token): \
         the newest messages verbatim, and a rolling summary of the older ones that CJ's model \
         writes as the conversation grows. Unset: the provider's default (anthropic 60000, \
         openai 16000, offline 6000).",
    ),
    key(
        "HIRECJ_MODEL_TEMPERATURE",
        None,
        "Sampling temperature (0 to 2); unset = provider default.",
    ),
    key(
        "HIRECJ_MODEL_TIMEOUT_SECS",
        Some("60"),
        "Longest wait for a model response to start (every retry included) or to continue.",
    ),
];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    DotEnv(PathBuf),
    Env,
    /// Computed from other settings.
    Derived(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(p) => write!(f, "config file {}", p.display()),
            Self::DotEnv(p) => write!(f, "{}", p.display()),
            Self::Env => f.write_str("environment"),
            Self::Derived(from) => write!(f, "derived from {from}"),
        }
    }
}

/// A setting that could not be used. Displays as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {key}={value} (from {origin}): {reason}")]
    Invalid {
        key: String,
        value: String,
        origin: Source,
        reason: String,
    },
    #[error("{key} is required: {reason}")]
    Missing { key: String, reason: String },
    #[error("cannot read {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Shopify app settings.
#[derive(Debug, Clone)]
pub struct ShopifySettings {
    /// `None` means: use the built-in development store.
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub scopes: String,
    pub api_version: String,
    pub admin_base_url: String,
}

/// Limits on what one client may hold or start (see `docs/security.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Request headers must arrive within this; idle keep-alive connections
    /// are closed after it.
    pub header_timeout: Duration,
    /// Connections open at once (lowered at start to fit the open-file limit).
    pub max_connections: usize,
    pub ws_per_session: usize,
    pub ws_per_address: usize,
    pub turns_per_minute_session: u32,
    pub turns_per_minute_merchant: u32,
    pub turns_per_minute_address: u32,
    pub conversations_per_hour: u32,
    /// The client address is the last `X-Forwarded-For` entry.
    pub trust_forwarded_for: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            ws_per_session: 10,
            ws_per_address: 100,
            turns_per_minute_session: 20,
            turns_per_minute_merchant: 30,
            turns_per_minute_address: 60,
            conversations_per_hour: 30,
            trust_forwarded_for: false,
        }
    }
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub public_url: Url,
    pub database_url: Secret,
    pub redis_url: Option<Secret>,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub secret_key: Option<Secret>,
    pub cookie_domain: Option<String>,
    pub request_timeout: Duration,
    pub body_limit: usize,
    pub shutdown_timeout: Duration,
    pub conversation_idle: Duration,
    /// How often each store mirror is reconciled with Shopify.
    pub mirror_reconcile: Duration,
    /// How long a replica's claim on a mirror's backfill or reconcile
    /// lasts without renewal.
    pub mirror_lease: Duration,
    /// How long a replica's claim on a conversation's turn lasts without
    /// renewal.
    pub turn_lease: Duration,
    /// How long a reply written while the database was out is kept for
    /// saving.
    pub kept_reply: Duration,
    /// How long turn traces are kept.
    pub trace_retention: Duration,
    pub prepare_budget: Duration,
    pub debug: bool,
    pub internal_token: Option<Secret>,
    /// Bearer token for `/metrics`; `None` = loopback clients only.
    pub metrics_token: Option<Secret>,
    pub content_dir: Option<PathBuf>,
    /// The built-in development store is mounted (never with Shopify
    /// credentials; see [`Settings::load`]).
    pub dev_store: bool,
    pub limits: Limits,
    pub shopify: ShopifySettings,
    /// CJ's model, as the model layer takes it.
    pub model: ModelConfig,
    /// Where every value came from, for `hirecj config`.
    pub sources: Vec<Resolved>,
}

impl Settings {
    /// Is the database the embedded SQLite one?
    pub fn is_embedded_database(&self) -> bool {
        self.database_url.expose().starts_with("sqlite:")
    }

    /// The public URL without a trailing slash, for building links.
    pub fn public_base(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }
}

/// One setting as loaded: its value (if any) and where it came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub key: &'static KeyDef,
    pub value: Option<String>,
    pub source: Source,
}

impl Resolved {
    /// The value as `hirecj config` prints it: secrets masked, passwords in
    /// URLs masked.
    pub fn display_value(&self) -> String {
        match &self.value {
            None => "(unset)".to_owned(),
            Some(_) if self.key.secret => "*** (set)".to_owned(),
            Some(v) => mask_url_password(v),
        }
    }
}

fn mask_url_password(value: &str) -> String {
    match Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => value.to_owned(),
    }
}

/// Inputs to [`Settings::load`]; tests build their own.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--config`; falls back to `HIRECJ_CONFIG` in `env`.
    pub config_file: Option<PathBuf>,
    /// The process environment (or a test's).
    pub env: HashMap<String, String>,
    /// Directory searched for `.env`; `None` skips `.env`.
    pub dotenv_dir: Option<PathBuf>,
}

impl LoadOptions {
    /// The real process: its environment and its working directory.
    pub fn from_process(config_file: Option<PathBuf>) -> Self {
        Self {
            config_file,
            env: std::env::vars().collect(),
            dotenv_dir: Some(PathBuf::from(".")),
        }
    }
}

/// The TOML name of a key: lowercase, without the `HIRECJ_` prefix.
pub fn toml_name(env: &str) -> String {
    env.strip_prefix("HIRECJ_")
        .unwrap_or(env)
        .to_ascii_lowercase()
}

fn read_toml(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let file_err = |reason: String| ConfigError::File {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_err(e.message().to_owned()))?;
    let mut out = BTreeMap::new();
    for (name, value) in table {
        let Some(def) = KEYS.iter().find(|k| toml_name(k.env) == name) else {
            return Err(file_err(format!("unknown setting `{name}`")));
        };
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => {
                return Err(file_err(format!(
                    "`{name}` must be a string, number or boolean"
                )));
            }
        };
        out.insert(def.env.to_owned(), value);
    }
    Ok(out)
}

fn read_dotenv(path: &Path) -> Result<Option<BTreeMap<String, String>>, ConfigError> {
    if !path.exists() {
        return Ok(None);
    }
    let iter = dotenvy::from_path_iter(path).map_err(|e| ConfigError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    for item in iter {
        let (k, v) = item.map_err(|e| ConfigError::File {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        out.insert(k, v);
    }
    Ok(Some(out))
}

/// Raw values by key, before parsing.
struct Layers {
    resolved: Vec<Resolved>,
}

impl Layers {
    fn collect(opts: &LoadOptions) -> Result<Self, ConfigError> {
        let config_file = opts.config_file.clone().or_else(|| {
            opts.env
                .get("HIRECJ_CONFIG")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        });
        let file = match &config_file {
            Some(p) => Some((p.clone(), read_toml(p)?)),
            None => None,
        };
        let dotenv = match &opts.dotenv_dir {
            Some(dir) => {
                let path = dir.join(".env");
                read_dotenv(&path)?.map(|m| (path, m))
            }
            None => None,
        };
        let resolved = KEYS
            .iter()
            .map(|def| {
                let from_env = opts.env.get(def.env).filter(|v| !v.is_empty());
                let from_dotenv = dotenv
                    .as_ref()
                    .and_then(|(p, m)| m.get(def.env).filter(|v| !v.is_empty()).map(|v| (p, v)));
                let from_file = file
                    .as_ref()
                    .and_then(|(p, m)| m.get(def.env).map(|v| (p, v)));
                let (value, source) = if let Some(v) = from_env {
                    (Some(v.clone()), Source::Env)
                } else if let Some((p, v)) = from_dotenv {
                    (Some(v.clone()), Source::DotEnv(p.clone()))
                } else if let Some((p, v)) = from_file {
                    (Some(v.clone()), Source::File(p.clone()))
                } else {
                    (def.default.map(str::to_owned), Source::Default)
                };
                Resolved {
                    key: def,
                    value,
                    source,
                }
            })
            .collect();
        Ok(Self { resolved })
    }

    fn get(&self, env: &str) -> Option<&Resolved> {
        self.resolved.iter().find(|r| r.key.env == env)
    }

    fn raw(&self, env: &str) -> Option<&str> {
        self.get(env).and_then(|r| r.value.as_deref())
    }

    fn set_derived(&mut self, env: &str, value: String, from: &'static str) {
        if let Some(r) = self.resolved.iter_mut().find(|r| r.key.env == env) {
            r.value = Some(value);
            r.source = Source::Derived(from);
        }
    }

    fn invalid(&self, env: &str, reason: impl Into<String>) -> ConfigError {
        let r = self.get(env);
        let value = match r {
            Some(r) if r.key.secret => "***".to_owned(),
            Some(r) => format!("{:?}", mask_url_password(r.value.as_deref().unwrap_or(""))),
            None => String::new(),
        };
        ConfigError::Invalid {
            key: env.to_owned(),
            value,
            origin: r.map_or(Source::Default, |r| r.source.clone()),
            reason: reason.into(),
        }
    }

    fn parse<T>(
        &self,
        env: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.raw(env) {
            None => Ok(None),
            Some(v) => f(v.trim())
                .map(Some)
                .map_err(|reason| self.invalid(env, reason)),
        }
    }

    fn required<T>(
        &self,
        env: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.parse(env, f)?.ok_or_else(|| ConfigError::Missing {
            key: env.to_owned(),
            reason: "no value and no default".to_owned(),
        })
    }

    fn secret(&self, env: &str) -> Option<Secret> {
        self.raw(env).map(|v| Secret::new(v.trim()))
    }
}

fn parse_bind(v: &str) -> Result<SocketAddr, String> {
    v.parse::<SocketAddr>().map_err(|_| {
        "expected host:port with an IP address and a port from 0 to 65535 (e.g. 127.0.0.1:8000)"
            .to_owned()
    })
}

fn parse_http_url(v: &str) -> Result<Url, String> {
    let url = Url::parse(v).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err("expected an http:// or https:// URL with a host".to_owned()),
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

fn parse_count(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err("expected a whole number from 1 to 1000000".to_owned()),
    }
}

fn parse_rate(v: &str) -> Result<u32, String> {
    parse_count(v).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// Is the URL's host this machine (`localhost`, 127.0.0.0/8, `::1`)?
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn parse_secs(v: &str) -> Result<Duration, String> {
    match v.parse::<u64>() {
        Ok(n) if (1..=86_400).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err("expected a whole number of seconds from 1 to 86400".to_owned()),
    }
}

impl Settings {
    /// Loads and validates every setting.
    pub fn load(opts: &LoadOptions) -> Result<Self, ConfigError> {
        let mut layers = Layers::collect(opts)?;

        let bind = layers.required("HIRECJ_BIND", parse_bind)?;
        let data_dir = layers.required("HIRECJ_DATA_DIR", |v| {
            if v.is_empty() {
                Err("must not be empty".to_owned())
            } else {
                Ok(PathBuf::from(v))
            }
        })?;

        if layers.raw("HIRECJ_PUBLIC_URL").is_none() {
            let host = if bind.ip().is_unspecified() {
                "localhost".to_owned()
            } else {
                bind.ip().to_string()
            };
            let host = if bind.is_ipv6() && !bind.ip().is_unspecified() {
                format!("[{host}]")
            } else {
                host
            };
            layers.set_derived(
                "HIRECJ_PUBLIC_URL",
                format!("http://{host}:{}", bind.port()),
                "HIRECJ_BIND",
            );
        }
        let public_url = layers.required("HIRECJ_PUBLIC_URL", parse_http_url)?;

        if layers.raw("DATABASE_URL").is_none() {
            let path = data_dir.join("hirecj.db");
            layers.set_derived(
                "DATABASE_URL",
                format!("sqlite://{}", path.display()),
                "HIRECJ_DATA_DIR",
            );
        }
        let database_url = layers.required("DATABASE_URL", |v| {
            if v.starts_with("sqlite:") {
                Ok(Secret::new(v))
            } else if v.starts_with("postgres://") || v.starts_with("postgresql://") {
                Url::parse(v).map_err(|e| format!("not a URL: {e}"))?;
                Ok(Secret::new(v))
            } else {
                Err("expected sqlite:… or postgres://…".to_owned())
            }
        })?;
        let redis_url = layers.parse("REDIS_URL", |v| {
            let url = Url::parse(v).map_err(|e| format!("not a URL: {e}"))?;
            match url.scheme() {
                "redis" | "rediss" => Ok(Secret::new(v)),
                _ => Err("expected redis://… or rediss://…".to_owned()),
            }
        })?;
        let log_format = layers.required("HIRECJ_LOG_FORMAT", |v| match v {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected text or json".to_owned()),
        })?;
        let log_filter = layers.required("HIRECJ_LOG", |v| {
            tracing_subscriber::EnvFilter::try_new(v)
                .map(|_| v.to_owned())
                .map_err(|e| e.to_string())
        })?;
        let secret_key = layers.parse("HIRECJ_SECRET_KEY", |v| {
            if v.chars().count() >= 32 {
                Ok(Secret::new(v))
            } else {
                Err("must be at least 32 characters".to_owned())
            }
        })?;
        let cookie_domain = layers.parse("HIRECJ_COOKIE_DOMAIN", |v| {
            if !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                Ok(v.to_owned())
            } else {
                Err("expected a domain such as .example.com".to_owned())
            }
        })?;
        let request_timeout = layers.required("HIRECJ_REQUEST_TIMEOUT_SECS", parse_secs)?;
        let body_limit =
            layers.required("HIRECJ_BODY_LIMIT_BYTES", |v| match v.parse::<usize>() {
                Ok(n) if (1024..=64 * 1024 * 1024).contains(&n) => Ok(n),
                _ => Err("expected a number of bytes from 1024 to 67108864".to_owned()),
            })?;
        let shutdown_timeout = layers.required("HIRECJ_SHUTDOWN_TIMEOUT_SECS", parse_secs)?;
        let conversation_idle = layers.required("HIRECJ_CONVERSATION_IDLE_MINUTES", |v| match v
            .parse::<u64>()
        {
            Ok(n) if (1..=10_080).contains(&n) => Ok(Duration::from_secs(n * 60)),
            _ => Err("expected a whole number of minutes from 1 to 10080".to_owned()),
        })?;
        let mirror_reconcile =
            layers.required("HIRECJ_MIRROR_RECONCILE_SECS", |v| match v.parse::<u64>() {
                Ok(n) if (1..=86_400).contains(&n) => Ok(Duration::from_secs(n)),
                _ => Err("expected seconds from 1 to 86400".to_owned()),
            })?;
        let mirror_lease =
            layers.required("HIRECJ_MIRROR_LEASE_SECS", |v| match v.parse::<u64>() {
                Ok(n) if (5..=3_600).contains(&n) => Ok(Duration::from_secs(n)),
                _ => Err("expected seconds from 5 to 3600".to_owned()),
            })?;
        let turn_lease = layers.required("HIRECJ_TURN_LEASE_SECS", |v| match v.parse::<u64>() {
            Ok(n) if (3..=3_600).contains(&n) => Ok(Duration::from_secs(n)),
            _ => Err("expected seconds from 3 to 3600".to_owned()),
        })?;
        let kept_reply = layers.required("HIRECJ_KEPT_REPLY_SECS", |v| match v.parse::<u64>() {
            Ok(n) if (1..=3_600).contains(&n) => Ok(Duration::from_secs(n)),
            _ => Err("expected seconds from 1 to 3600".to_owned()),
        })?;
        let trace_retention =
            layers.required("HIRECJ_TRACE_RETENTION_DAYS", |v| match v.parse::<u64>() {
                Ok(n) if (1..=3_650).contains(&n) => Ok(Duration::from_secs(n * 86_400)),
                _ => Err("expected days from 1 to 3650".to_owned()),
            })?;
        let prepare_budget =
            layers.required("HIRECJ_PREPARE_BUDGET_MS", |v| match v.parse::<u64>() {
                Ok(n) if (1..=120_000).contains(&n) => Ok(Duration::from_millis(n)),
                _ => Err("expected milliseconds from 1 to 120000".to_owned()),
            })?;
        let debug = layers.required("HIRECJ_DEBUG", parse_bool)?;
        let internal_token = layers.parse("HIRECJ_INTERNAL_TOKEN", |v| {
            if v.chars().count() >= 16 {
                Ok(Secret::new(v))
            } else {
                Err("must be at least 16 characters".to_owned())
            }
        })?;

        let metrics_token = layers.parse("HIRECJ_METRICS_TOKEN", |v| {
            if v.chars().count() >= 16 {
                Ok(Secret::new(v))
            } else {
                Err("must be at least 16 characters".to_owned())
            }
        })?;
        let limits = Limits {
            header_timeout: layers.required("HIRECJ_HEADER_TIMEOUT_SECS", parse_secs)?,
            max_connections: layers.required("HIRECJ_MAX_CONNECTIONS", parse_count)?,
            ws_per_session: layers.required("HIRECJ_WS_PER_SESSION", parse_count)?,
            ws_per_address: layers.required("HIRECJ_WS_PER_ADDRESS", parse_count)?,
            turns_per_minute_session: layers
                .required("HIRECJ_TURNS_PER_MINUTE_SESSION", parse_rate)?,
            turns_per_minute_merchant: layers
                .required("HIRECJ_TURNS_PER_MINUTE_MERCHANT", parse_rate)?,
            turns_per_minute_address: layers
                .required("HIRECJ_TURNS_PER_MINUTE_ADDRESS", parse_rate)?,
            conversations_per_hour: layers.required("HIRECJ_CONVERSATIONS_PER_HOUR", parse_rate)?,
            trust_forwarded_for: layers.required("HIRECJ_TRUST_FORWARDED_FOR", parse_bool)?,
        };

        let content_dir = layers.parse("HIRECJ_CONTENT_DIR", |v| {
            let path = PathBuf::from(v);
            if path.is_dir() {
                Ok(path)
            } else {
                Err("not a directory".to_owned())
            }
        })?;

        let client_id = layers.parse("SHOPIFY_CLIENT_ID", |v| Ok(v.to_owned()))?;
        let client_secret = layers.secret("SHOPIFY_CLIENT_SECRET");
        if client_id.is_some() && client_secret.is_none() {
            return Err(ConfigError::Missing {
                key: "SHOPIFY_CLIENT_SECRET".to_owned(),
                reason: "SHOPIFY_CLIENT_ID is set, so the app's client secret must be too"
                    .to_owned(),
            });
        }
        if client_id.is_none() && client_secret.is_some() {
            return Err(ConfigError::Missing {
                key: "SHOPIFY_CLIENT_ID".to_owned(),
                reason: "SHOPIFY_CLIENT_SECRET is set, so the app's client id must be too \
                         (the app never falls back to its development store)"
                    .to_owned(),
            });
        }
        let dev_store = Self::dev_store(&mut layers, &public_url, client_id.is_some())?;
        let scopes = layers.required("SHOPIFY_SCOPES", |v| {
            let ok = !v.is_empty()
                && v.split(',').all(|s| {
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                });
            if ok {
                Ok(v.to_owned())
            } else {
                Err("expected comma-separated scopes such as read_orders,read_products".to_owned())
            }
        })?;
        let api_version = layers.required("SHOPIFY_API_VERSION", |v| {
            if hirecj_shopify::is_api_version(v) {
                Ok(v.to_owned())
            } else {
                Err("expected a quarterly version such as 2026-10".to_owned())
            }
        })?;
        let admin_base_url = layers.required("SHOPIFY_ADMIN_BASE_URL", |v| {
            if !v.contains("{shop}") {
                return Err("must contain {shop}".to_owned());
            }
            parse_http_url(&v.replace("{shop}", "example.myshopify.com"))?;
            Ok(v.trim_end_matches('/').to_owned())
        })?;

        let anthropic_api_key = layers.secret("ANTHROPIC_API_KEY");
        let openai_api_key = layers.secret("OPENAI_API_KEY");
        if layers.raw("HIRECJ_MODEL_PROVIDER").is_none() {
            let (derived, from) = if anthropic_api_key.is_some() {
                ("anthropic", "ANTHROPIC_API_KEY")
            } else if openai_api_key.is_some() {
                ("openai", "OPENAI_API_KEY")
            } else {
                ("offline", "no model API key")
            };
            layers.set_derived("HIRECJ_MODEL_PROVIDER", derived.to_owned(), from);
        }
        let provider = layers.required("HIRECJ_MODEL_PROVIDER", |v| match v {
            "anthropic" | "openai" | "offline" => Ok(v.to_owned()),
            _ => Err("unknown provider; expected anthropic, openai or offline".to_owned()),
        })?;
        let named_model = layers.parse("HIRECJ_MODEL", |v| Ok(v.to_owned()))?;
        let anthropic_base_url = layers.required("ANTHROPIC_BASE_URL", parse_http_url)?;
        let openai_base_url = layers.required("OPENAI_BASE_URL", parse_http_url)?;
        let base = |url: &Url| url.as_str().trim_end_matches('/').to_owned();
        let provider = match provider.as_str() {
            "anthropic" => ProviderConfig::Anthropic {
                api_key: anthropic_api_key.ok_or_else(|| ConfigError::Missing {
                    key: "ANTHROPIC_API_KEY".to_owned(),
                    reason: "HIRECJ_MODEL_PROVIDER is anthropic".to_owned(),
                })?,
                base_url: base(&anthropic_base_url),
                model: named_model.unwrap_or_else(|| DEFAULT_ANTHROPIC_MODEL.to_owned()),
            },
            "openai" => ProviderConfig::OpenAi {
                api_key: openai_api_key,
                base_url: base(&openai_base_url),
                model: named_model.unwrap_or_else(|| DEFAULT_OPENAI_MODEL.to_owned()),
            },
            _ => ProviderConfig::Offline,
        };
        let model = ModelConfig {
            provider,
            max_tokens: layers.required("HIRECJ_MODEL_MAX_TOKENS", |v| match v.parse::<u32>() {
                Ok(n) if (1..=64_000).contains(&n) => Ok(n),
                _ => Err("expected a number from 1 to 64000".to_owned()),
            })?,
            temperature: layers.parse("HIRECJ_MODEL_TEMPERATURE", |v| match v.parse::<f32>() {
                Ok(t) if (0.0..=2.0).contains(&t) => Ok(t),
                _ => Err("expected a number from 0 to 2".to_owned()),
            })?,
            timeout: layers.required("HIRECJ_MODEL_TIMEOUT_SECS", parse_secs)?,
            context_tokens: layers.parse("HIRECJ_CONTEXT_TOKENS", |v| match v.parse::<u32>() {
                Ok(n) if (hirecj_agent::context::MIN_CONTEXT_TOKENS..=1_000_000).contains(&n) => {
                    Ok(n)
                }
                _ => Err(format!(
                    "expected a number of tokens from {} to 1000000",
                    hirecj_agent::context::MIN_CONTEXT_TOKENS
                )),
            })?,
        };

        Ok(Self {
            bind,
            data_dir,
            public_url,
            database_url,
            redis_url,
            log_format,
            log_filter,
            secret_key,
            cookie_domain,
            request_timeout,
            body_limit,
            shutdown_timeout,
            conversation_idle,
            mirror_reconcile,
            mirror_lease,
            turn_lease,
            kept_reply,
            trace_retention,
            prepare_budget,
            debug,
            internal_token,
            metrics_token,
            content_dir,
            dev_store,
            limits,
            shopify: ShopifySettings {
                client_id,
                client_secret,
                scopes,
                api_version,
                admin_base_url,
            },
            model,
            sources: layers.resolved,
        })
    }

    /// Whether the development store runs. It fails closed: only a plainly
    /// local setup (public URL on loopback, no Shopify credentials) gets it
    /// by default; anywhere else it takes `HIRECJ_DEV_STORE=true`, and
    /// without it the Shopify app's credentials are required.
    fn dev_store(
        layers: &mut Layers,
        public_url: &Url,
        has_credentials: bool,
    ) -> Result<bool, ConfigError> {
        let explicit = layers.parse("HIRECJ_DEV_STORE", parse_bool)?;
        let missing_credentials = |reason: String| ConfigError::Missing {
            key: "SHOPIFY_CLIENT_ID".to_owned(),
            reason,
        };
        let dev_store = match (explicit, has_credentials) {
            (Some(true), true) => {
                return Err(layers.invalid(
                    "HIRECJ_DEV_STORE",
                    "the development store cannot run with SHOPIFY_CLIENT_ID set; unset one of them",
                ));
            }
            (Some(true), false) => true,
            (Some(false), false) => {
                return Err(missing_credentials(
                    "HIRECJ_DEV_STORE is false, so the Shopify app's credentials \
                     (SHOPIFY_CLIENT_ID, SHOPIFY_CLIENT_SECRET) are required"
                        .to_owned(),
                ));
            }
            (_, true) => false,
            (None, false) if is_loopback_url(public_url) => true,
            (None, false) => {
                return Err(missing_credentials(format!(
                    "HIRECJ_PUBLIC_URL ({}) is not on loopback, so the built-in development \
                     store stays off: set SHOPIFY_CLIENT_ID and SHOPIFY_CLIENT_SECRET, or \
                     HIRECJ_DEV_STORE=true for a development setup",
                    public_url.as_str().trim_end_matches('/')
                )));
            }
        };
        if explicit.is_none() {
            layers.set_derived(
                "HIRECJ_DEV_STORE",
                dev_store.to_string(),
                "HIRECJ_PUBLIC_URL and SHOPIFY_CLIENT_ID",
            );
        }
        Ok(dev_store)
    }

    /// The table `hirecj config` prints: key, value (secrets masked), source.
    pub fn describe(&self) -> String {
        let width = KEYS.iter().map(|k| k.env.len()).max().unwrap_or(0);
        let mut out = String::new();
        for r in &self.sources {
            out.push_str(&format!(
                "{:width$}  {}  ({})\n",
                r.key.env,
                r.display_value(),
                r.source,
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load(&LoadOptions {
            config_file: None,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            dotenv_dir: None,
        })
    }

    #[test]
    fn defaults_give_the_embedded_setup() {
        let s = load(&[]).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(s.public_url.as_str(), "http://127.0.0.1:8000/");
        assert_eq!(s.database_url.expose(), "sqlite://./data/hirecj.db");
        assert!(!s.debug && s.is_embedded_database());
        assert!(
            s.dev_store,
            "a loopback setup without Shopify runs the development store"
        );
        assert_eq!(s.limits, Limits::default());
        assert!(matches!(s.model.provider, ProviderConfig::Offline));
        assert!(s.shopify.client_id.is_none());
        assert_eq!(s.shopify.api_version, "2026-10");
        assert_eq!(s.trace_retention, Duration::from_secs(30 * 86_400));
        assert_eq!(s.kept_reply, Duration::from_secs(300));
    }

    #[test]
    fn bad_values_name_the_key_and_source() {
        let e = load(&[("HIRECJ_BIND", "127.0.0.1:70000")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HIRECJ_BIND") && e.contains("environment"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let e = load(&[("HIRECJ_MODEL_PROVIDER", "gpt")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HIRECJ_MODEL_PROVIDER") && e.contains("unknown provider"),
            "{e}"
        );
        let e = load(&[("HIRECJ_PUBLIC_URL", "not a url")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("HIRECJ_PUBLIC_URL"), "{e}");
        for (key, value) in [
            ("HIRECJ_TRACE_RETENTION_DAYS", "0"),
            ("HIRECJ_KEPT_REPLY_SECS", "forever"),
        ] {
            let e = load(&[(key, value)]).unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
        let e = load(&[("DATABASE_URL", "mysql://x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("DATABASE_URL"), "{e}");
        let e = load(&[("SHOPIFY_CLIENT_ID", "abc")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SHOPIFY_CLIENT_SECRET"), "{e}");
        let e = load(&[("HIRECJ_SECRET_KEY", "short")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HIRECJ_SECRET_KEY") && !e.contains("short"),
            "secrets are never echoed: {e}"
        );
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("hirecj.toml");
        std::fs::write(&toml_path, "bind = \"127.0.0.1:9001\"\nlog_format = \"json\"\ndebug = false\nshutdown_timeout_secs = 5\n").unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "HIRECJ_BIND=127.0.0.1:9002\n# comment\nOTHER=ignored\n",
        )
        .unwrap();
        let opts = |env: &[(&str, &str)]| LoadOptions {
            config_file: Some(toml_path.clone()),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            dotenv_dir: Some(dir.path().to_owned()),
        };
        let s = Settings::load(&opts(&[])).unwrap();
        assert_eq!(s.bind.port(), 9002, ".env beats the file");
        assert_eq!(s.log_format, LogFormat::Json, "the file beats defaults");
        assert!(!s.debug);
        assert_eq!(s.shutdown_timeout, Duration::from_secs(5));
        let s = Settings::load(&opts(&[("HIRECJ_BIND", "127.0.0.1:9003")])).unwrap();
        assert_eq!(s.bind.port(), 9003, "the environment beats .env");
        let described = s.describe();
        assert!(
            described.contains("HIRECJ_BIND") && described.contains("(environment)"),
            "{described}"
        );
        assert!(described.contains("config file"), "{described}");
    }

    #[test]
    fn the_development_store_fails_closed() {
        let public = ("HIRECJ_PUBLIC_URL", "https://cj.example.com");
        // A public URL and no Shopify app: refused, naming the missing key.
        let e = load(&[public]).unwrap_err().to_string();
        assert!(e.starts_with("SHOPIFY_CLIENT_ID is required"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        // The secret without the id is a partial configuration, not a
        // development setup, on loopback too.
        for env in [
            vec![public, ("SHOPIFY_CLIENT_SECRET", "shh")],
            vec![("SHOPIFY_CLIENT_SECRET", "shh")],
        ] {
            let e = load(&env).unwrap_err().to_string();
            assert!(e.starts_with("SHOPIFY_CLIENT_ID is required"), "{e}");
        }
        let e = load(&[("SHOPIFY_CLIENT_ID", "abc")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("SHOPIFY_CLIENT_SECRET is required"), "{e}");
        // Explicitly off without credentials, or on with them: refused.
        let e = load(&[("HIRECJ_DEV_STORE", "false")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SHOPIFY_CLIENT_ID"), "{e}");
        let e = load(&[
            ("HIRECJ_DEV_STORE", "true"),
            ("SHOPIFY_CLIENT_ID", "abc"),
            ("SHOPIFY_CLIENT_SECRET", "shh"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("HIRECJ_DEV_STORE"), "{e}");
        // What runs it: loopback, or an explicit yes.
        assert!(
            load(&[("HIRECJ_PUBLIC_URL", "http://localhost:8000")])
                .unwrap()
                .dev_store
        );
        assert!(
            load(&[("HIRECJ_PUBLIC_URL", "http://[::1]:8000")])
                .unwrap()
                .dev_store
        );
        assert!(
            load(&[public, ("HIRECJ_DEV_STORE", "true")])
                .unwrap()
                .dev_store
        );
        let real = load(&[
            public,
            ("SHOPIFY_CLIENT_ID", "abc"),
            ("SHOPIFY_CLIENT_SECRET", "shh"),
        ])
        .unwrap();
        assert!(!real.dev_store);
    }

    #[test]
    fn the_readme_documents_every_setting() {
        let readme = include_str!("../../../README.md");
        for key in KEYS {
            assert!(
                readme.contains(&format!("`{}`", key.env)),
                "README.md's configuration table lacks {}",
                key.env
            );
        }
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "bnd = \"x\"\n").unwrap();
        let e = Settings::load(&LoadOptions {
            config_file: Some(p),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("bnd"), "{e}");
    }

    #[test]
    fn secrets_are_masked_in_the_description() {
        let s = load(&[
            ("ANTHROPIC_API_KEY", "sk-ant-very-secret"),
            ("DATABASE_URL", "postgres://app:hunter2@db.internal/hirecj"),
        ])
        .unwrap();
        assert!(matches!(s.model.provider, ProviderConfig::Anthropic { .. }));
        let d = s.describe();
        assert!(!d.contains("very-secret") && !d.contains("hunter2"), "{d}");
        assert!(d.contains("derived from ANTHROPIC_API_KEY"), "{d}");
        assert!(
            !s.debug,
            "debug is off by default outside the embedded mode"
        );
    }
}
