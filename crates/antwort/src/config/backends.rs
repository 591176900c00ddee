//! `backends` and `resilience`: the model servers antwort fronts, the models
//! each serves (listed with their settings, or discovered), and how each is
//! protected. The single-backend form (`engine.backend_url`,
//! `ANTWORT_BACKEND_URL`) is one more entry, named `default`, that takes
//! every model no other backend names.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{ConfigError, Secret, SecretUrl, duration, reqwest_url};

/// The protocol a backend speaks.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// `POST /v1/chat/completions`, translated to and from Responses.
    #[default]
    ChatCompletions,
    /// `POST /v1/responses`, stateless (`store: false`, the whole input sent).
    Responses,
}

/// `backends[]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    /// Names the backend in logs, errors, `/readyz` and `owned_by`.
    pub name: String,
    /// Base URL, with or without `/v1`.
    pub url: SecretUrl,
    #[serde(default)]
    pub protocol: Protocol,
    pub api_key: Option<Secret>,
    /// A file holding the key (for mounted secrets).
    pub api_key_file: Option<String>,
    /// The models it serves; when empty, those it lists are discovered.
    #[serde(default)]
    pub models: Vec<ModelSection>,
    /// Discover models from its `/v1/models` (besides the listed ones);
    /// default: only when `models` is empty.
    pub discover: Option<bool>,
    /// Also take every model no other backend names, under the name asked for.
    #[serde(default)]
    pub catch_all: bool,
    /// Count input tokens with the backend's own tokenizer endpoint (vLLM's
    /// `POST /tokenize`).
    #[serde(default)]
    pub tokenize: bool,
    /// Defaults for its models' options.
    #[serde(default)]
    pub max_completion_tokens: bool,
    #[serde(default = "yes")]
    pub reasoning_effort: bool,
    #[serde(default = "connect_timeout", deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Settings of the top-level `resilience` this backend does otherwise.
    #[serde(default)]
    pub resilience: ResilienceOverrides,
}

fn yes() -> bool {
    true
}

fn connect_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `backends[].models[]`: a model id, or the id with its settings.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct ModelSection {
    /// The name clients use.
    pub id: String,
    /// The backend's own name, when it differs (`meta-llama/Llama-3.1-8B-Instruct`).
    pub model: Option<String>,
    pub aliases: Vec<String>,
    pub context_window: Option<u64>,
    /// Send `max_completion_tokens` instead of `max_tokens` (OpenAI's reasoning models).
    pub max_completion_tokens: Option<bool>,
    /// Whether it takes `reasoning_effort`; when not, it is not sent.
    pub reasoning_effort: Option<bool>,
    /// A Hugging Face `tokenizer.json` to count its tokens with.
    pub tokenizer: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFields {
    id: String,
    model: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    context_window: Option<u64>,
    max_completion_tokens: Option<bool>,
    reasoning_effort: Option<bool>,
    tokenizer: Option<String>,
}

impl<'de> Deserialize<'de> for ModelSection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A string is an id; anything else is the fields. (An untagged enum
        // would hide a misspelled key behind "did not match any variant".)
        let value = serde_yaml_ng::Value::deserialize(deserializer)?;
        let fields = match value {
            serde_yaml_ng::Value::String(id) => return Ok(Self::named(&id)),
            other => {
                serde_yaml_ng::from_value::<ModelFields>(other).map_err(serde::de::Error::custom)?
            }
        };
        Ok(Self {
            id: fields.id,
            model: fields.model,
            aliases: fields.aliases,
            context_window: fields.context_window,
            max_completion_tokens: fields.max_completion_tokens,
            reasoning_effort: fields.reasoning_effort,
            tokenizer: fields.tokenizer,
        })
    }
}

impl ModelSection {
    pub fn named(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            model: None,
            aliases: Vec::new(),
            context_window: None,
            max_completion_tokens: None,
            reasoning_effort: None,
            tokenizer: None,
        }
    }

    /// The backend's name for the model.
    pub fn upstream(&self) -> &str {
        self.model.as_deref().unwrap_or(&self.id)
    }
}

impl BackendSection {
    /// Whether it serves what its `/v1/models` lists.
    pub fn discovers(&self) -> bool {
        self.discover.unwrap_or(self.models.is_empty())
    }

    /// The backend key, read from its file when configured that way.
    pub fn key(&self) -> Result<Option<Secret>, ConfigError> {
        read_key(self.api_key.as_ref(), self.api_key_file.as_deref())
    }

    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if let Err(message) = reqwest_url(self.url.expose()) {
            return invalid(format!(
                "{at}.url `{}` is not an http(s) URL: {message}",
                self.url.redacted()
            ));
        }
        if self.api_key.is_some() && self.api_key_file.is_some() {
            return invalid(format!("{at}: set api_key or api_key_file, not both"));
        }
        if self.connect_timeout.is_zero() {
            return invalid(format!("{at}.connect_timeout must be greater than 0"));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut upstreams = std::collections::BTreeMap::new();
        for (index, model) in self.models.iter().enumerate() {
            let place = format!("{at}.models[{index}]");
            // What a model is sent goes by the backend's name for it: two
            // entries for one upstream model must not ask for different forms.
            let sent_as = (model.max_completion_tokens, model.reasoning_effort);
            if upstreams
                .insert(model.upstream(), sent_as)
                .is_some_and(|before| before != sent_as)
            {
                return invalid(format!(
                    "{place}: the backend's model `{}` is listed twice with different max_completion_tokens or reasoning_effort",
                    model.upstream()
                ));
            }
            for name in std::iter::once(&model.id).chain(&model.aliases) {
                if name.trim().is_empty() {
                    return invalid(format!("{place}: model ids and aliases must not be empty"));
                }
                if !names.insert(name.as_str()) {
                    return invalid(format!(
                        "{place}: `{name}` names two models of the same backend"
                    ));
                }
            }
            if model.context_window == Some(0) {
                return invalid(format!("{place}.context_window must be greater than 0"));
            }
            if let Some(path) = &model.tokenizer
                && !std::path::Path::new(path).is_file()
            {
                return invalid(format!("{place}.tokenizer `{path}` is not a file"));
            }
        }
        if self.models.is_empty() && !self.discovers() && !self.catch_all {
            return invalid(format!(
                "{at} serves no model: list its models, leave discover on, or set catch_all"
            ));
        }
        Ok(())
    }
}

pub(super) fn read_key(
    key: Option<&Secret>,
    file: Option<&str>,
) -> Result<Option<Secret>, ConfigError> {
    if let Some(path) = file {
        let key = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        return Ok(Some(Secret::new(key.trim())));
    }
    Ok(key.cloned().filter(|k| !k.expose().is_empty()))
}

/// `resilience`: how every backend is protected, unless its own
/// `backends[].resilience` says otherwise. The Go antwort's keys, and more.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct ResilienceSection {
    /// Retries and the circuit breaker (timeouts and caps apply either way).
    pub enabled: bool,
    pub max_attempts: u32,
    #[serde(deserialize_with = "duration")]
    pub backoff_base: Duration,
    #[serde(deserialize_with = "duration")]
    pub backoff_max: Duration,
    #[serde(deserialize_with = "duration")]
    pub retry_after_max: Duration,
    pub failure_threshold: u32,
    #[serde(deserialize_with = "duration")]
    pub reset_timeout: Duration,
    /// Default: `engine.backend_timeout`.
    #[serde(deserialize_with = "optional_duration")]
    pub first_byte_timeout: Option<Duration>,
    /// Default: `engine.backend_timeout`.
    #[serde(deserialize_with = "optional_duration")]
    pub idle_timeout: Option<Duration>,
    #[serde(deserialize_with = "duration")]
    pub total_timeout: Duration,
    /// Generations at once per backend (0: no cap).
    pub max_concurrency: usize,
    pub max_queue: usize,
    #[serde(deserialize_with = "duration")]
    pub queue_timeout: Duration,
}

impl Default for ResilienceSection {
    fn default() -> Self {
        let defaults = antwort_backends::ResilienceSettings::default();
        Self {
            enabled: defaults.enabled,
            max_attempts: defaults.max_attempts,
            backoff_base: defaults.backoff_base,
            backoff_max: defaults.backoff_max,
            retry_after_max: defaults.retry_after_max,
            failure_threshold: defaults.failure_threshold,
            reset_timeout: defaults.reset_timeout,
            first_byte_timeout: None,
            idle_timeout: None,
            total_timeout: defaults.total_timeout,
            max_concurrency: defaults.max_concurrency,
            max_queue: defaults.max_queue,
            queue_timeout: defaults.queue_timeout,
        }
    }
}

/// `backends[].resilience`: any of `resilience`'s keys, for one backend.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct ResilienceOverrides {
    pub enabled: Option<bool>,
    pub max_attempts: Option<u32>,
    #[serde(deserialize_with = "optional_duration")]
    pub backoff_base: Option<Duration>,
    #[serde(deserialize_with = "optional_duration")]
    pub backoff_max: Option<Duration>,
    #[serde(deserialize_with = "optional_duration")]
    pub retry_after_max: Option<Duration>,
    pub failure_threshold: Option<u32>,
    #[serde(deserialize_with = "optional_duration")]
    pub reset_timeout: Option<Duration>,
    #[serde(deserialize_with = "optional_duration")]
    pub first_byte_timeout: Option<Duration>,
    #[serde(deserialize_with = "optional_duration")]
    pub idle_timeout: Option<Duration>,
    #[serde(deserialize_with = "optional_duration")]
    pub total_timeout: Option<Duration>,
    pub max_concurrency: Option<usize>,
    pub max_queue: Option<usize>,
    #[serde(deserialize_with = "optional_duration")]
    pub queue_timeout: Option<Duration>,
}

fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}

impl ResilienceSection {
    /// The settings of one backend: these, with its overrides applied;
    /// `first_byte_timeout` and `idle_timeout` default to `backend_timeout`
    /// (what that one key bounded before there were finer ones).
    pub fn settings(
        &self,
        overrides: &ResilienceOverrides,
        backend_timeout: Duration,
    ) -> antwort_backends::ResilienceSettings {
        let o = overrides;
        antwort_backends::ResilienceSettings {
            enabled: o.enabled.unwrap_or(self.enabled),
            max_attempts: o.max_attempts.unwrap_or(self.max_attempts),
            backoff_base: o.backoff_base.unwrap_or(self.backoff_base),
            backoff_max: o.backoff_max.unwrap_or(self.backoff_max),
            retry_after_max: o.retry_after_max.unwrap_or(self.retry_after_max),
            failure_threshold: o.failure_threshold.unwrap_or(self.failure_threshold),
            reset_timeout: o.reset_timeout.unwrap_or(self.reset_timeout),
            first_byte_timeout: o
                .first_byte_timeout
                .or(self.first_byte_timeout)
                .unwrap_or(backend_timeout),
            idle_timeout: o
                .idle_timeout
                .or(self.idle_timeout)
                .unwrap_or(backend_timeout),
            total_timeout: o.total_timeout.unwrap_or(self.total_timeout),
            max_concurrency: o.max_concurrency.unwrap_or(self.max_concurrency),
            max_queue: o.max_queue.unwrap_or(self.max_queue),
            queue_timeout: o.queue_timeout.unwrap_or(self.queue_timeout),
        }
    }

    pub(super) fn apply_env(
        &mut self,
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
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
        if let Some(v) = get("ANTWORT_RESILIENCE_ENABLED") {
            self.enabled = parse("ANTWORT_RESILIENCE_ENABLED", v)?;
        }
        if let Some(v) = get("ANTWORT_RESILIENCE_FAILURE_THRESHOLD") {
            self.failure_threshold = parse("ANTWORT_RESILIENCE_FAILURE_THRESHOLD", v)?;
        }
        if let Some(v) = get("ANTWORT_RESILIENCE_MAX_ATTEMPTS") {
            self.max_attempts = parse("ANTWORT_RESILIENCE_MAX_ATTEMPTS", v)?;
        }
        if let Some(v) = get("ANTWORT_RESILIENCE_MAX_CONCURRENCY") {
            self.max_concurrency = parse("ANTWORT_RESILIENCE_MAX_CONCURRENCY", v)?;
        }
        Ok(())
    }
}

/// Checks what serde cannot: names, URLs, models, timeouts.
pub(super) fn validate(
    backends: &[BackendSection],
    resilience: &ResilienceSection,
    single: bool,
) -> Result<(), ConfigError> {
    let invalid = |message: String| Err(ConfigError::Invalid(message));
    let mut names = std::collections::BTreeSet::new();
    if single {
        names.insert(super::DEFAULT_BACKEND_NAME);
    }
    for (index, backend) in backends.iter().enumerate() {
        let at = format!("backends[{index}]");
        if backend.name.trim().is_empty() || !names.insert(backend.name.as_str()) {
            return invalid(format!(
                "{at}.name must be set and unique (`{}` is the name of engine.backend_url's backend)",
                super::DEFAULT_BACKEND_NAME
            ));
        }
        backend.validate(&at)?;
        check_resilience(
            &resilience.settings(&backend.resilience, Duration::from_secs(1)),
            &format!("{at}.resilience"),
        )?;
    }
    check_resilience(
        &resilience.settings(&ResilienceOverrides::default(), Duration::from_secs(1)),
        "resilience",
    )
}

fn check_resilience(
    settings: &antwort_backends::ResilienceSettings,
    at: &str,
) -> Result<(), ConfigError> {
    let durations = [
        settings.backoff_base,
        settings.backoff_max,
        settings.reset_timeout,
        settings.first_byte_timeout,
        settings.idle_timeout,
        settings.total_timeout,
        settings.queue_timeout,
    ];
    if settings.max_attempts == 0 || durations.iter().any(Duration::is_zero) {
        return Err(ConfigError::Invalid(format!(
            "{at}: max_attempts and every duration must be greater than 0"
        )));
    }
    if settings.backoff_base > settings.backoff_max {
        return Err(ConfigError::Invalid(format!(
            "{at}: backoff_base must not exceed backoff_max"
        )));
    }
    Ok(())
}

/// `ANTWORT_BACKENDS`: the `backends` list as JSON (or YAML).
pub(super) fn parse_env_list(value: &str) -> Result<Vec<BackendSection>, String> {
    serde_yaml_ng::from_str(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    const TWO_BACKENDS: &str = r#"
backends:
  - name: vllm
    url: http://vllm:8000
    api_key: k
    models:
      - id: llama-8b
        model: meta-llama/Llama-3.1-8B-Instruct
        aliases: [llama]
        context_window: 131072
      - qwen3-32b
    resilience:
      max_concurrency: 8
      first_byte_timeout: 90s
  - name: openai
    url: https://api.openai.com
    protocol: responses
    max_completion_tokens: true
    models:
      - id: o4-mini
        reasoning_effort: true
resilience:
  failure_threshold: 3
"#;

    #[test]
    fn backends_list_their_models_with_settings_and_overrides() {
        let config = Config::from_yaml(TWO_BACKENDS).unwrap();
        config.validate().unwrap();
        let vllm = &config.backends[0];
        assert_eq!(vllm.protocol, Protocol::ChatCompletions);
        assert_eq!(
            vllm.models[0].upstream(),
            "meta-llama/Llama-3.1-8B-Instruct"
        );
        assert_eq!(
            vllm.models[1].upstream(),
            "qwen3-32b",
            "a plain id is its own upstream"
        );
        assert!(
            !vllm.discovers(),
            "listed models are not discovered unless asked"
        );
        let settings = config
            .resilience
            .settings(&vllm.resilience, Duration::from_secs(300));
        assert_eq!(settings.max_concurrency, 8);
        assert_eq!(settings.first_byte_timeout, Duration::from_secs(90));
        assert_eq!(settings.failure_threshold, 3, "the top-level setting");
        let openai = &config.backends[1];
        assert_eq!(openai.protocol, Protocol::Responses);
        assert!(openai.max_completion_tokens);
        let default = config
            .resilience
            .settings(&openai.resilience, Duration::from_secs(300));
        assert_eq!(default.first_byte_timeout, Duration::from_secs(300));
    }

    #[test]
    fn a_backend_without_models_discovers_them_and_env_gives_the_list_as_json() {
        let mut config = Config::default();
        config
            .apply_env(|name| {
                (name == "ANTWORT_BACKENDS")
                    .then(|| r#"[{"name": "ollama", "url": "http://ollama:11434"}]"#.to_owned())
            })
            .unwrap();
        config.validate().unwrap();
        assert!(config.backends[0].discovers());
    }

    #[test]
    fn mistakes_are_named() {
        let invalid = |yaml: &str| match Config::from_yaml(yaml) {
            Ok(config) => config.validate().unwrap_err().to_string(),
            Err(message) => message,
        };
        assert!(invalid("{}").contains("no backend"));
        assert!(
            invalid("backends: [{name: a, url: http://a}, {name: a, url: http://b}]")
                .contains("unique")
        );
        assert!(
            invalid("engine: {backend_url: http://x}\nbackends: [{name: default, url: http://b}]")
                .contains("unique")
        );
        assert!(invalid("backends: [{name: a, url: ftp://a}]").contains("http(s)"));
        assert!(
            invalid("backends: [{name: a, url: http://a, models: [{id: m, aliasses: [x]}]}]")
                .contains("aliasses"),
            "a misspelled model key is named"
        );
        assert!(
            invalid("backends: [{name: a, url: http://a, models: [m, {id: n, aliases: [m]}]}]")
                .contains("two models")
        );
        assert!(
            invalid("backends: [{name: a, url: http://a, discover: false}]")
                .contains("serves no model")
        );
        assert!(
            invalid("backends: [{name: a, url: http://a, models: [{id: x, model: m}, {id: y, model: m, max_completion_tokens: true}]}]")
                .contains("listed twice")
        );
        assert!(
            invalid("engine: {backend_url: http://x}\nresilience: {max_attempts: 0}")
                .contains("max_attempts")
        );
    }

    #[test]
    fn the_go_provider_name_selects_the_responses_protocol() {
        let mut config = Config::default();
        config
            .apply_env(|name| match name {
                "ANTWORT_BACKEND_URL" => Some("http://vllm:8000".into()),
                "ANTWORT_PROVIDER" => Some("vllm-responses".into()),
                "ANTWORT_RESILIENCE_MAX_ATTEMPTS" => Some("5".into()),
                _ => None,
            })
            .unwrap();
        config.validate().unwrap();
        assert_eq!(config.engine.provider.protocol(), Protocol::Responses);
        assert_eq!(config.resilience.max_attempts, 5);
    }
}
