//! The backend registry from the configuration: each `backends[]` entry (and
//! `engine.backend_url`'s, named `default`) becomes its protocol's backend,
//! behind [`Resilient`], with the models it serves and the tokenizers they
//! count with (loaded here, at start).

use std::collections::HashMap;
use std::sync::Arc;

use antwort_backends::{ModelOptions, Resilient};
use antwort_engine::{Backend, Backends, ServedModel, Serving, Tokenizer};
use anyhow::Context;

use crate::config::{
    self, BackendSection, Config, DEFAULT_BACKEND_NAME, ModelSection, Protocol, ResilienceOverrides,
};

/// Every configured backend, in order: the listed ones first, then
/// `engine.backend_url`'s catch-all.
pub fn build(config: &Config) -> anyhow::Result<Backends> {
    let mut backends = Backends::default();
    for (index, section) in config.backends.iter().enumerate() {
        let key = section.key()?;
        let settings = config
            .resilience
            .settings(&section.resilience, config.engine.backend_timeout);
        let built = protocol_backend(
            Endpoint {
                protocol: section.protocol,
                url: section.url.expose(),
                api_key: key.as_ref().map(|k| k.expose().to_owned()),
                connect_timeout: section.connect_timeout,
                tokenize: section.tokenize,
            },
            &settings,
            options(section),
        )
        .with_context(|| format!("backend {}", section.name))?;
        let resilient = Resilient::new(&section.name, built, settings);
        let serving = serving(section, &format!("backends[{index}]"))?;
        backends = backends.with(&section.name, serving, Arc::new(resilient));
    }
    if let Some(url) = &config.engine.backend_url {
        let settings = config.resilience.settings(
            &ResilienceOverrides::default(),
            config.engine.backend_timeout,
        );
        let api_key = config.api_key()?.map(|key| key.expose().to_owned());
        let built = protocol_backend(
            Endpoint {
                protocol: config.engine.provider.protocol(),
                url: url.expose(),
                api_key,
                connect_timeout: config.engine.connect_timeout,
                tokenize: false,
            },
            &settings,
            (HashMap::new(), ModelOptions::default()),
        )?;
        let resilient = Resilient::new(DEFAULT_BACKEND_NAME, built, settings);
        // `engine.context_windows` stay the engine's settings: naming a model
        // there does not make the backend serve it.
        let serving = Serving {
            listed: Vec::new(),
            discover: true,
            catch_all: true,
            // As before this backend had company: its context windows are
            // `engine.context_window(s)`.
            reported_windows: false,
        };
        backends = backends.with(DEFAULT_BACKEND_NAME, serving, Arc::new(resilient));
    }
    Ok(backends)
}

/// Where a backend is and what it speaks.
struct Endpoint<'a> {
    protocol: Protocol,
    url: &'a str,
    api_key: Option<String>,
    connect_timeout: std::time::Duration,
    /// Ask its `POST /tokenize` for token counts.
    tokenize: bool,
}

/// The protocol's backend. Its own deadline is the whole generation's: the
/// finer timeouts (first byte, between events) are [`Resilient`]'s.
fn protocol_backend(
    endpoint: Endpoint<'_>,
    settings: &antwort_backends::ResilienceSettings,
    (model_options, default_model_options): (HashMap<String, ModelOptions>, ModelOptions),
) -> anyhow::Result<Arc<dyn Backend>> {
    let config = antwort_backends::BackendConfig {
        base_url: endpoint.url.to_owned(),
        api_key: endpoint.api_key,
        connect_timeout: endpoint.connect_timeout,
        timeout: settings.total_timeout,
        model_options,
        default_model_options,
        tokenize: endpoint.tokenize,
    };
    Ok(match endpoint.protocol {
        Protocol::ChatCompletions => Arc::new(antwort_backends::ChatBackend::new(config)?),
        Protocol::Responses => Arc::new(antwort_backends::ResponsesBackend::new(config)?),
    })
}

/// Per-model options by the backend's model names, and the backend's defaults.
fn options(section: &BackendSection) -> (HashMap<String, ModelOptions>, ModelOptions) {
    let defaults = ModelOptions {
        max_completion_tokens: section.max_completion_tokens,
        reasoning_effort: section.reasoning_effort,
    };
    let per_model = section
        .models
        .iter()
        .map(|model| {
            let options = ModelOptions {
                max_completion_tokens: model
                    .max_completion_tokens
                    .unwrap_or(defaults.max_completion_tokens),
                reasoning_effort: model.reasoning_effort.unwrap_or(defaults.reasoning_effort),
            };
            (model.upstream().to_owned(), options)
        })
        .collect();
    (per_model, defaults)
}

/// The models of backend `at` (`backends[0]`), with their tokenizers loaded.
fn serving(section: &BackendSection, at: &str) -> anyhow::Result<Serving> {
    let listed = section
        .models
        .iter()
        .enumerate()
        .map(|(index, model)| served(model, &format!("{at}.models[{index}]")))
        .collect::<anyhow::Result<_>>()?;
    Ok(Serving {
        listed,
        discover: section.discovers(),
        catch_all: section.catch_all,
        reported_windows: true,
    })
}

/// Model `at`; a tokenizer that does not load stops the start, named by its key.
fn served(model: &ModelSection, at: &str) -> anyhow::Result<ServedModel> {
    let tokenizer = match &model.tokenizer {
        Some(path) => {
            let loaded = crate::tokenizer::HfTokenizer::load(path)
                .with_context(|| format!("{at}.tokenizer"))?;
            tracing::info!(model = %model.id, tokenizer = %path, "loaded the model's tokenizer");
            Some(Tokenizer::new(Arc::new(loaded)))
        }
        None => None,
    };
    Ok(ServedModel {
        upstream: model.upstream().to_owned(),
        aliases: model.aliases.clone(),
        context_window: model.context_window,
        tokenizer,
        ..ServedModel::named(&model.id)
    })
}

/// Asks discovering backends for their models every `engine.models_refresh`
/// (the first time at once), until the returned guard is dropped.
pub fn spawn_refresh(
    engine: &antwort_engine::Engine,
    config: &config::Config,
) -> Option<Refresher> {
    if !engine.discovers_models() {
        return None;
    }
    let engine = engine.clone();
    let period = config.engine.models_refresh;
    let task = antwort_engine::tasks::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            engine.refresh_models().await;
        }
    });
    Some(Refresher(task))
}

/// Stops the periodic model refresh when dropped (the server stopped).
pub struct Refresher(tokio::task::JoinHandle<()>);

impl Drop for Refresher {
    fn drop(&mut self) {
        self.0.abort();
    }
}
