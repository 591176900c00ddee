//! Configuration: plain data read from a YAML file, then `ANTWORT_*` environment
//! variables, then command-line flags (each layer overriding the one before), and
//! validated once at start. Unknown keys are errors, so a typo never silently falls
//! back to a default. Keys and variables follow the Go antwort where the concept is
//! the same. `docs/configuration.md` documents every key.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use crate::secret::{Dsn, Secret, SecretUrl};

mod auth;
mod backends;
mod websocket;
pub use auth::{
    ApiKeySection, AuditSection, AuthKind, AuthSection, AuthorizationSection, JwtSection,
    LimitSection, RateLimitsSection, parse_key_list,
};
pub use backends::{
    BackendSection, ModelSection, Protocol, ResilienceOverrides, ResilienceSection,
};
pub use websocket::WebSocketSection;

/// The name of the backend `engine.backend_url` configures.
pub const DEFAULT_BACKEND_NAME: &str = "default";

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub logging: LoggingSection,
    #[serde(default)]
    pub mcp: McpSection,
    #[serde(default)]
    pub egress: EgressSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub websocket: WebSocketSection,
    /// Model servers beside (or instead of) `engine.backend_url`.
    #[serde(default)]
    pub backends: Vec<BackendSection>,
    #[serde(default)]
    pub resilience: ResilienceSection,
}

/// `egress`: what every outbound fetch a request causes may reach (MCP servers
/// named by URL today; search pages, `file_url` and image URLs next).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct EgressSection {
    /// The URL policy; `mcp.url_policy`, its older name, still works.
    pub url_policy: UrlPolicySection,
}

/// `mcp`: MCP servers defined by the operator, and the limits and outbound policy
/// for every MCP server a request names.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct McpSection {
    pub servers: Vec<McpServerSection>,
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub list_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub call_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub token_timeout: Duration,
    /// A tool's output is cut to this many bytes before the model sees it.
    pub max_output_bytes: usize,
    /// How long a configured server's tool list is reused.
    #[serde(deserialize_with = "duration")]
    pub tools_cache_ttl: Duration,
    pub url_policy: UrlPolicySection,
}

impl Default for McpSection {
    fn default() -> Self {
        let defaults = antwort_tools::McpSettings::default();
        Self {
            servers: Vec::new(),
            connect_timeout: defaults.connect_timeout,
            list_timeout: defaults.list_timeout,
            call_timeout: defaults.call_timeout,
            token_timeout: defaults.token_timeout,
            max_output_bytes: defaults.max_output_bytes,
            tools_cache_ttl: defaults.tools_cache_ttl,
            url_policy: UrlPolicySection::default(),
        }
    }
}

/// `mcp.servers[]`, with the Go antwort's keys. Header values are secrets.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct McpServerSection {
    /// The `server_label` requests use for it.
    pub name: String,
    pub url: SecretUrl,
    #[serde(default)]
    pub transport: McpTransportKind,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Secret>,
    #[serde(default)]
    pub auth: Option<McpAuthSection>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "kebab-case")]
pub enum McpTransportKind {
    #[default]
    StreamableHttp,
    Sse,
}

/// `mcp.servers[].auth`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct McpAuthSection {
    #[serde(rename = "type")]
    pub kind: McpAuthKind,
    /// For `static`: the bearer token (or put an `Authorization` header in `headers`).
    pub token: Option<Secret>,
    pub token_url: Option<SecretUrl>,
    pub client_id: Option<String>,
    pub client_id_file: Option<String>,
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "snake_case")]
pub enum McpAuthKind {
    Static,
    OauthClientCredentials,
}

/// `egress.url_policy` (or its older name `mcp.url_policy`): which URLs a request
/// may make the gateway reach. Loopback, private and link-local addresses are
/// denied unless allowed here.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct UrlPolicySection {
    pub allow_loopback: bool,
    pub allow_private: bool,
    /// Host names (`*.corp.example` for subdomains), addresses and CIDRs allowed
    /// despite the built-in denials.
    pub allow: Vec<String>,
    /// Host names, addresses and CIDRs never reached; wins over `allow`.
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    #[serde(rename = "type")]
    pub kind: StorageKind,
    /// The SQLite file, or the PostgreSQL URL (its password never printed).
    pub dsn: Option<Dsn>,
    /// PostgreSQL pool size.
    pub max_conns: u32,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            kind: StorageKind::Sqlite,
            dsn: None,
            max_conns: 25,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// A local SQLite file (default `antwort.db`), created on first start.
    Sqlite,
    /// A PostgreSQL server shared by any number of replicas.
    Postgres,
    /// SQLite in memory: nothing survives the process.
    Memory,
}

/// The SQLite file used when `storage.dsn` is not set.
pub const DEFAULT_SQLITE_PATH: &str = "antwort.db";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Port on all interfaces; ignored when `listen` is set.
    pub port: u16,
    /// `HOST:PORT` to listen on.
    pub listen: Option<String>,
    pub max_body_bytes: usize,
    #[serde(deserialize_with = "duration")]
    pub keepalive_interval: Duration,
    #[serde(deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
    /// A request's header must arrive whole within this.
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// A request's body must arrive whole within this.
    #[serde(deserialize_with = "duration")]
    pub body_read_timeout: Duration,
    /// A keep-alive connection idle this long between requests is closed.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Items one request's `input` (or a conversation's `items`) may hold.
    pub max_input_items: usize,
    /// Entries one request's `tools` may hold.
    pub max_tools: usize,
    /// TLS on the listener; plain HTTP when unset.
    pub tls: Option<TlsSection>,
    /// Origins browsers may call from; CORS is off when empty.
    pub cors_allowed_origins: Vec<String>,
}

/// `server.tls`: PEM files of the certificate chain and its private key.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert_file: String,
    pub key_file: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            port: 8080,
            listen: None,
            max_body_bytes: 32 * 1024 * 1024,
            keepalive_interval: Duration::from_secs(15),
            shutdown_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(75),
            max_input_items: 2048,
            max_tools: 128,
            tls: None,
            cors_allowed_origins: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// What `backend_url` is: a Chat Completions server (`vllm`, `litellm`,
    /// `openai-compatible`) or one serving the Responses API
    /// (`vllm-responses`, `responses`).
    pub provider: Provider,
    pub backend_url: Option<SecretUrl>,
    pub api_key: Option<Secret>,
    /// A file holding the backend key (for mounted secrets).
    pub api_key_file: Option<String>,
    pub default_model: Option<String>,
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub backend_timeout: Duration,
    pub reasoning_events: ReasoningEvents,
    /// When a reasoning item's summary is filled from its text.
    pub reasoning_summary: ReasoningSummaryMode,
    /// Context window, in tokens, of models not listed in `context_windows`.
    pub context_window: u64,
    /// Context windows by model name.
    pub context_windows: std::collections::BTreeMap<String, u64>,
    /// Model turns one response may take in the agentic loop.
    pub max_turns: u32,
    /// Server-side tool calls of one turn run at once.
    pub tool_concurrency: usize,
    /// Base64 of the 32-byte key reasoning is sealed with for clients that keep
    /// it (`include: ["reasoning.encrypted_content"]`); random per process when unset.
    pub reasoning_key: Option<Secret>,
    /// How often backends that discover their models are asked for them again.
    #[serde(deserialize_with = "duration")]
    pub models_refresh: Duration,
}

impl Default for EngineSection {
    fn default() -> Self {
        Self {
            provider: Provider::Vllm,
            backend_url: None,
            api_key: None,
            api_key_file: None,
            default_model: None,
            connect_timeout: Duration::from_secs(10),
            backend_timeout: Duration::from_secs(300),
            reasoning_events: ReasoningEvents::Auto,
            reasoning_summary: ReasoningSummaryMode::Requested,
            context_window: antwort_engine::DEFAULT_CONTEXT_WINDOW,
            context_windows: std::collections::BTreeMap::new(),
            max_turns: antwort_engine::DEFAULT_MAX_TURNS,
            tool_concurrency: antwort_engine::DEFAULT_TOOL_CONCURRENCY,
            reasoning_key: None,
            models_refresh: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// vLLM's Chat Completions endpoint.
    Vllm,
    /// LiteLLM's proxy.
    Litellm,
    /// Any other OpenAI-compatible Chat Completions server.
    OpenaiCompatible,
    /// vLLM's Responses endpoint (the Go antwort's name for it).
    VllmResponses,
    /// Any server of the Responses API (OpenAI, another antwort).
    Responses,
}

impl Provider {
    pub fn protocol(self) -> Protocol {
        match self {
            Self::Vllm | Self::Litellm | Self::OpenaiCompatible => Protocol::ChatCompletions,
            Self::VllmResponses | Self::Responses => Protocol::Responses,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEvents {
    /// OpenAI's names for clients that identify as the OpenAI SDKs (their
    /// `x-stainless-*` headers), OpenResponses' names for everyone else.
    Auto,
    /// `response.reasoning.delta` / `.done` (OpenResponses).
    Openresponses,
    /// `response.reasoning_text.delta` / `.done` (OpenAI).
    Openai,
}

/// `engine.reasoning_summary`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "lowercase")]
pub enum ReasoningSummaryMode {
    /// For requests that ask for `reasoning.summary` and get none from the backend.
    Requested,
    /// For every request (the Vercel AI SDK asks only for OpenAI model ids).
    Always,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSection {
    /// A `tracing` filter: `info`, `debug`, `antwort_engine=trace,info`, ...
    pub level: String,
    pub format: LogFormat,
}

impl Default for LoggingSection {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration like `15s` or `500ms`: {e}"))
}

/// A configuration error, with the key or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid environment variable {name}={value:?}: {message}")]
    Env {
        name: &'static str,
        value: String,
        message: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    pub fn from_yaml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    pub fn from_yaml(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
    }

    /// Applies `ANTWORT_*` variables read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                name,
                message: e.to_string(),
                value,
            })
        }
        fn choice<T: clap::ValueEnum>(name: &'static str, value: String) -> Result<T, ConfigError> {
            T::from_str(value.trim(), true).map_err(|message| ConfigError::Env {
                name,
                value,
                message,
            })
        }
        let duration = |name: &'static str, value: String| {
            parse_duration(&value).map_err(|message| ConfigError::Env {
                name,
                value,
                message,
            })
        };
        if let Some(v) = get("ANTWORT_PORT") {
            self.server.port = parse("ANTWORT_PORT", v)?;
        }
        if let Some(v) = get("ANTWORT_LISTEN") {
            self.server.listen = Some(v);
        }
        if let Some(v) = get("ANTWORT_MAX_BODY_BYTES") {
            self.server.max_body_bytes = parse("ANTWORT_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = get("ANTWORT_KEEPALIVE_INTERVAL") {
            self.server.keepalive_interval = duration("ANTWORT_KEEPALIVE_INTERVAL", v)?;
        }
        if let Some(v) = get("ANTWORT_HEADER_READ_TIMEOUT") {
            self.server.header_read_timeout = duration("ANTWORT_HEADER_READ_TIMEOUT", v)?;
        }
        if let Some(v) = get("ANTWORT_IDLE_TIMEOUT") {
            self.server.idle_timeout = duration("ANTWORT_IDLE_TIMEOUT", v)?;
        }
        match (get("ANTWORT_TLS_CERT_FILE"), get("ANTWORT_TLS_KEY_FILE")) {
            (Some(cert_file), Some(key_file)) => {
                self.server.tls = Some(TlsSection {
                    cert_file,
                    key_file,
                });
            }
            (None, None) => {}
            (cert, _) => {
                return Err(ConfigError::Env {
                    name: if cert.is_some() {
                        "ANTWORT_TLS_KEY_FILE"
                    } else {
                        "ANTWORT_TLS_CERT_FILE"
                    },
                    value: String::new(),
                    message: "ANTWORT_TLS_CERT_FILE and ANTWORT_TLS_KEY_FILE go together".into(),
                });
            }
        }
        if let Some(v) = get("ANTWORT_CORS_ALLOWED_ORIGINS") {
            self.server.cors_allowed_origins = v
                .split(',')
                .map(|origin| origin.trim().to_owned())
                .filter(|origin| !origin.is_empty())
                .collect();
        }
        if let Some(v) = get("ANTWORT_BODY_READ_TIMEOUT") {
            self.server.body_read_timeout = duration("ANTWORT_BODY_READ_TIMEOUT", v)?;
        }
        if let Some(v) = get("ANTWORT_PROVIDER") {
            self.engine.provider = choice("ANTWORT_PROVIDER", v)?;
        }
        if let Some(v) = get("ANTWORT_BACKEND_URL") {
            self.engine.backend_url = Some(v.into());
        }
        if let Some(v) = get("ANTWORT_BACKENDS") {
            self.backends = backends::parse_env_list(&v).map_err(|message| ConfigError::Env {
                name: "ANTWORT_BACKENDS",
                value: "(the backends list)".to_owned(),
                message,
            })?;
        }
        self.resilience.apply_env(&get)?;
        if let Some(v) = get("ANTWORT_API_KEY") {
            self.engine.api_key = Some(Secret::new(v));
        }
        if let Some(v) = get("ANTWORT_REASONING_KEY") {
            self.engine.reasoning_key = Some(Secret::new(v));
        }
        if let Some(v) = get("ANTWORT_API_KEY_FILE") {
            self.engine.api_key_file = Some(v);
        }
        if let Some(v) = get("ANTWORT_MODEL") {
            self.engine.default_model = Some(v);
        }
        if let Some(v) = get("ANTWORT_BACKEND_TIMEOUT") {
            self.engine.backend_timeout = duration("ANTWORT_BACKEND_TIMEOUT", v)?;
        }
        if let Some(v) = get("ANTWORT_CONTEXT_WINDOW") {
            self.engine.context_window = parse("ANTWORT_CONTEXT_WINDOW", v)?;
        }
        if let Some(v) = get("ANTWORT_MAX_TURNS") {
            self.engine.max_turns = parse("ANTWORT_MAX_TURNS", v)?;
        }
        if let Some(v) = get("ANTWORT_REASONING_EVENTS") {
            self.engine.reasoning_events = choice("ANTWORT_REASONING_EVENTS", v)?;
        }
        if let Some(v) = get("ANTWORT_REASONING_SUMMARY") {
            self.engine.reasoning_summary = choice("ANTWORT_REASONING_SUMMARY", v)?;
        }
        if let Some(v) = get("ANTWORT_STORAGE") {
            self.storage.kind = choice("ANTWORT_STORAGE", v)?;
        }
        if let Some(v) = get("ANTWORT_STORAGE_DSN") {
            self.storage.dsn = Some(Dsn::new(v));
        }
        if let Some(v) = get("ANTWORT_EGRESS_ALLOW_LOOPBACK") {
            self.egress.url_policy.allow_loopback = parse("ANTWORT_EGRESS_ALLOW_LOOPBACK", v)?;
        }
        if let Some(v) = get("ANTWORT_EGRESS_ALLOW_PRIVATE") {
            self.egress.url_policy.allow_private = parse("ANTWORT_EGRESS_ALLOW_PRIVATE", v)?;
        }
        if let Some(v) = get("ANTWORT_MCP_ALLOW_LOOPBACK") {
            self.mcp.url_policy.allow_loopback = parse("ANTWORT_MCP_ALLOW_LOOPBACK", v)?;
        }
        if let Some(v) = get("ANTWORT_MCP_ALLOW_PRIVATE") {
            self.mcp.url_policy.allow_private = parse("ANTWORT_MCP_ALLOW_PRIVATE", v)?;
        }
        if let Some(v) = get("ANTWORT_MCP_CALL_TIMEOUT") {
            self.mcp.call_timeout = duration("ANTWORT_MCP_CALL_TIMEOUT", v)?;
        }
        self.auth.apply_env(&get)?;
        self.websocket.apply_env(&get)?;
        if let Some(v) = get("ANTWORT_LOG_LEVEL") {
            self.logging.level = v;
        }
        if let Some(v) = get("ANTWORT_LOG_FORMAT") {
            self.logging.format = choice("ANTWORT_LOG_FORMAT", v)?;
        }
        Ok(())
    }

    /// Checks what serde cannot: required values, URLs, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        match &self.engine.backend_url {
            None if self.backends.is_empty() => {
                return invalid(
                    "no backend: set engine.backend_url (ANTWORT_BACKEND_URL, --backend-url) or list backends".into(),
                );
            }
            None => {}
            Some(url) => {
                if let Err(message) = reqwest_url(url.expose()) {
                    return invalid(format!(
                        "engine.backend_url `{}` is not an http(s) URL: {message}",
                        url.redacted()
                    ));
                }
            }
        }
        backends::validate(
            &self.backends,
            &self.resilience,
            self.engine.backend_url.is_some(),
        )?;
        if self.engine.models_refresh.is_zero() {
            return invalid("engine.models_refresh must be greater than 0".into());
        }
        if self.engine.api_key.is_some() && self.engine.api_key_file.is_some() {
            return invalid("set engine.api_key or engine.api_key_file, not both".into());
        }
        if let Some(model) = &self.engine.default_model
            && model.trim().is_empty()
        {
            return invalid("engine.default_model must not be empty when set".into());
        }
        self.listen_addr()?;
        if self.storage.kind == StorageKind::Postgres {
            match &self.storage.dsn {
                Some(dsn)
                    if dsn.expose().starts_with("postgres://")
                        || dsn.expose().starts_with("postgresql://") => {}
                Some(dsn) => {
                    return invalid(format!(
                        "storage.dsn `{}` is not a postgres:// URL",
                        dsn.redacted()
                    ));
                }
                None => {
                    return invalid(
                        "storage.type postgres needs storage.dsn (ANTWORT_STORAGE_DSN), a postgres:// URL".into(),
                    );
                }
            }
            if self.storage.max_conns == 0 {
                return invalid("storage.max_conns must be greater than 0".into());
            }
        }
        if self.server.max_body_bytes == 0
            || self.server.max_input_items == 0
            || self.server.max_tools == 0
        {
            return invalid(
                "server.max_body_bytes, max_input_items and max_tools must be greater than 0"
                    .into(),
            );
        }
        if self.server.header_read_timeout.is_zero()
            || self.server.body_read_timeout.is_zero()
            || self.server.idle_timeout.is_zero()
        {
            return invalid(
                "server.header_read_timeout, body_read_timeout and idle_timeout must be greater than 0"
                    .into(),
            );
        }
        if let Some(key) = &self.engine.reasoning_key
            && let Err(message) = antwort_engine::sealed::ReasoningSeal::from_base64(key.expose())
        {
            return invalid(format!(
                "engine.reasoning_key (ANTWORT_REASONING_KEY) must be 32 bytes in base64 (`openssl rand -base64 32`): {message}"
            ));
        }
        if self.server.keepalive_interval.is_zero() {
            return invalid("server.keepalive_interval must be greater than 0".into());
        }
        if self.engine.context_window == 0 || self.engine.context_windows.values().any(|w| *w == 0)
        {
            return invalid("context windows must be greater than 0 tokens".into());
        }
        if self.engine.max_turns == 0 || self.engine.tool_concurrency == 0 {
            return invalid(
                "engine.max_turns and engine.tool_concurrency must be greater than 0".into(),
            );
        }
        if self.engine.backend_timeout.is_zero() || self.engine.connect_timeout.is_zero() {
            return invalid("engine timeouts must be greater than 0".into());
        }
        self.validate_mcp()?;
        self.auth.validate()?;
        self.websocket.validate()?;
        let defaults = UrlPolicySection::default();
        if self.egress.url_policy != defaults
            && self.mcp.url_policy != defaults
            && self.egress.url_policy != self.mcp.url_policy
        {
            return invalid(
                "set egress.url_policy or its older name mcp.url_policy, not both".into(),
            );
        }
        tracing_subscriber::EnvFilter::try_new(&self.logging.level).map_err(|e| {
            ConfigError::Invalid(format!(
                "logging.level `{}` is not a valid filter: {e}",
                self.logging.level
            ))
        })?;
        Ok(())
    }

    fn validate_mcp(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        let mcp = &self.mcp;
        let timeouts = [
            mcp.connect_timeout,
            mcp.list_timeout,
            mcp.call_timeout,
            mcp.token_timeout,
        ];
        if timeouts.iter().any(Duration::is_zero) || mcp.max_output_bytes == 0 {
            return invalid("mcp timeouts and mcp.max_output_bytes must be greater than 0".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for (index, server) in mcp.servers.iter().enumerate() {
            let at = format!("mcp.servers[{index}]");
            if server.name.is_empty() || !names.insert(server.name.as_str()) {
                return invalid(format!("{at}.name must be set and unique"));
            }
            if let Err(message) = reqwest_url(server.url.expose()) {
                return invalid(format!(
                    "{at}.url `{}` is not an http(s) URL: {message}",
                    server.url.redacted()
                ));
            }
            let Some(auth) = &server.auth else { continue };
            match auth.kind {
                McpAuthKind::Static if auth.token.is_none() => {
                    return invalid(format!("{at}.auth type static needs a token"));
                }
                McpAuthKind::Static => {}
                McpAuthKind::OauthClientCredentials => {
                    let Some(token_url) = &auth.token_url else {
                        return invalid(format!("{at}.auth needs token_url"));
                    };
                    if let Err(message) = reqwest_url(token_url.expose()) {
                        return invalid(format!(
                            "{at}.auth.token_url is not an http(s) URL: {message}"
                        ));
                    }
                    if auth.client_id.is_some() == auth.client_id_file.is_some()
                        || auth.client_secret.is_some() == auth.client_secret_file.is_some()
                    {
                        return invalid(format!(
                            "{at}.auth needs client_id or client_id_file, and client_secret or client_secret_file (one of each)"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The outbound URL policy: `egress.url_policy`, or `mcp.url_policy` where
    /// only the older name is set.
    pub fn url_policy(&self) -> &UrlPolicySection {
        if self.egress.url_policy == UrlPolicySection::default() {
            &self.mcp.url_policy
        } else {
            &self.egress.url_policy
        }
    }

    /// Where to listen. Without any authentication configured only loopback
    /// is allowed (and the default): anyone who can reach a wider address
    /// would read every stored response. `auth.type: none` opens it on purpose.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        let open = self.auth.effective_kind().is_some();
        let host = if open { "0.0.0.0" } else { "127.0.0.1" };
        let text = self
            .server
            .listen
            .clone()
            .unwrap_or_else(|| format!("{host}:{}", self.server.port));
        let addr: SocketAddr = text.parse().map_err(|e| {
            ConfigError::Invalid(format!(
                "server.listen `{text}` is not a HOST:PORT address: {e}"
            ))
        })?;
        if !open && !addr.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "refusing to listen on {addr} without authentication: anyone who can reach it \
                 would read and delete every stored response. Configure auth.api_keys \
                 (ANTWORT_API_KEYS) or auth.jwt, or set auth.type: none (ANTWORT_AUTH_TYPE=none) \
                 to serve it open on purpose"
            )));
        }
        Ok(addr)
    }

    /// The key of `engine.backend_url`'s backend, read from its file when
    /// configured that way.
    pub fn api_key(&self) -> Result<Option<Secret>, ConfigError> {
        backends::read_key(
            self.engine.api_key.as_ref(),
            self.engine.api_key_file.as_deref(),
        )
    }
}

/// A light check that a URL is http(s) with a host, without pulling in a URL crate.
fn reqwest_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("it must start with http:// or https://")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("it has no host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn yaml_then_env_layers() {
        let mut config = Config::from_yaml(
            "server:\n  port: 9000\nengine:\n  backend_url: http://a:1\n  default_model: m1\n",
        )
        .unwrap();
        config
            .apply_env(env(&[
                ("ANTWORT_MODEL", "m2"),
                ("ANTWORT_KEEPALIVE_INTERVAL", "2s"),
            ]))
            .unwrap();
        assert_eq!(config.server.port, 9000);
        assert_eq!(config.engine.default_model.as_deref(), Some("m2"));
        assert_eq!(config.server.keepalive_interval, Duration::from_secs(2));
        config.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let error = Config::from_yaml("engine:\n  backend_ulr: http://a\n").unwrap_err();
        assert!(error.contains("backend_ulr"), "{error}");
        let error = Config::from_yaml("sever: {}\n").unwrap_err();
        assert!(error.contains("sever"), "{error}");
    }

    #[test]
    fn missing_backend_url_says_how_to_set_it() {
        let error = Config::default().validate().unwrap_err().to_string();
        assert!(error.contains("ANTWORT_BACKEND_URL"), "{error}");
    }

    #[test]
    fn bad_values_name_their_source() {
        let mut config = Config::default();
        let error = config
            .apply_env(env(&[("ANTWORT_PORT", "eighty")]))
            .unwrap_err();
        assert!(error.to_string().contains("ANTWORT_PORT"));
        config.engine.backend_url = Some("ftp://x".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("backend_url")
        );
        config.engine.backend_url = Some("http://x".into());
        config.server.listen = Some("nonsense".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("server.listen")
        );
    }

    #[test]
    fn storage_defaults_to_sqlite_and_postgres_needs_a_url() {
        let mut config = Config::from_yaml("engine:\n  backend_url: http://a\n").unwrap();
        assert_eq!(config.storage.kind, StorageKind::Sqlite);
        config
            .apply_env(env(&[("ANTWORT_STORAGE", "postgres")]))
            .unwrap();
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("ANTWORT_STORAGE_DSN")
        );
        config
            .apply_env(env(&[("ANTWORT_STORAGE_DSN", "mysql://u:pw@h/db")]))
            .unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("u:***@h") && !error.contains("pw"),
            "{error}"
        );
        config
            .apply_env(env(&[("ANTWORT_STORAGE_DSN", "postgres://u:pw@h/db")]))
            .unwrap();
        config.validate().unwrap();
        assert!(
            config
                .apply_env(env(&[("ANTWORT_STORAGE", "mongo")]))
                .is_err()
        );
    }

    #[test]
    fn mcp_servers_use_the_go_keys_and_hide_their_secrets() {
        let config = Config::from_yaml(
            "engine:\n  backend_url: http://a\nmcp:\n  servers:\n    - name: gh\n      transport: sse\n      url: http://mcp.example/sse?key=k3y\n      headers: {X-Key: hunter2}\n      auth:\n        type: oauth_client_credentials\n        token_url: http://auth.example/token\n        client_id: antwort\n        client_secret: s3cret\n        scopes: [tools]\n  url_policy:\n    allow_private: true\n",
        )
        .unwrap();
        config.validate().unwrap();
        let server = &config.mcp.servers[0];
        assert_eq!(server.transport, McpTransportKind::Sse);
        assert!(config.mcp.url_policy.allow_private);
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret") && !shown.contains("k3y"),
            "{shown}"
        );
        assert!(
            shown.contains("X-Key"),
            "header names stay visible: {shown}"
        );
        let mut broken = config.clone();
        broken.mcp.servers[0].auth.as_mut().unwrap().client_secret = None;
        assert!(
            broken
                .validate()
                .unwrap_err()
                .to_string()
                .contains("client_secret")
        );
        assert!(Config::from_yaml("mcp:\n  servers:\n    - name: x\n      url: http://x\n      transport: carrier-pigeon\n").is_err());
    }

    /// Every key of the configuration as a dotted path (`server.port`; keys of
    /// list entries as `mcp.servers[].name`), from a configuration that sets
    /// every optional section once.
    fn every_key() -> Vec<String> {
        // A duration serialises as `{secs, nanos}`: one key, not two.
        fn is_duration(map: &serde_json::Map<String, serde_json::Value>) -> bool {
            map.contains_key("secs") && map.contains_key("nanos")
        }
        fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) if !map.is_empty() && !is_duration(map) => {
                    for (key, value) in map {
                        let path = if prefix.is_empty() {
                            key.clone()
                        } else {
                            format!("{prefix}.{key}")
                        };
                        walk(&path, value, out);
                    }
                }
                serde_json::Value::Array(items) if !items.is_empty() => {
                    out.push(prefix.to_owned());
                    for item in items.iter().filter(|item| item.is_object()) {
                        walk(&format!("{prefix}[]"), item, out);
                    }
                }
                _ => out.push(prefix.to_owned()),
            }
        }
        let config = Config::from_yaml(
            "mcp:\n  servers:\n    - name: a\n      url: http://a\n      auth: {type: static, token: t}\n",
        )
        .unwrap();
        let mut keys = Vec::new();
        walk("", &serde_json::to_value(&config).unwrap(), &mut keys);
        keys.sort();
        keys.dedup();
        keys
    }

    #[test]
    fn every_key_and_variable_is_documented() {
        let docs = include_str!("../../../docs/configuration.md");
        let keys = every_key();
        assert!(keys.len() > 30, "found only {keys:?}");
        let missing: Vec<&String> = keys
            .iter()
            .filter(|key| !docs.contains(&format!("`{key}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "keys missing from docs/configuration.md: {missing:?}"
        );
        let sources = [
            include_str!("config.rs"),
            include_str!("config/auth.rs"),
            include_str!("config/websocket.rs"),
            include_str!("main.rs"),
        ];
        let mut variables: Vec<String> = Vec::new();
        for source in sources {
            for (start, _) in source.match_indices("\"ANTWORT_") {
                let name: String = source[start + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                // The search string itself, in this test, names no variable.
                if name.len() > "ANTWORT_".len() {
                    variables.push(name);
                }
            }
        }
        variables.sort();
        variables.dedup();
        assert!(variables.len() > 15, "found only {variables:?}");
        let undocumented: Vec<&String> = variables
            .iter()
            .filter(|name| !docs.contains(&format!("`{name}`")))
            .collect();
        assert!(
            undocumented.is_empty(),
            "variables missing from docs/configuration.md: {undocumented:?}"
        );
    }

    #[test]
    fn durations_read_like_go() {
        let config = Config::from_yaml("server:\n  keepalive_interval: 500ms\n").unwrap();
        assert_eq!(config.server.keepalive_interval, Duration::from_millis(500));
        assert!(Config::from_yaml("server:\n  keepalive_interval: soon\n").is_err());
    }
}
