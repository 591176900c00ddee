//! The backend registry from the configuration: each `backends[]` entry (and
//! `engine.backend_url`'s, named `default`) becomes its protocol's backend,
//! behind [`Resilient`], with the models it serves.

use std::collections::HashMap;
use std::sync::Arc;

use antwort_backends::{ModelOptions, Resilient};
use antwort_engine::{Backend, Backends, ServedModel, Serving};
use anyhow::Context;

use crate::config::{
    self, BackendSection, Config, DEFAULT_BACKEND_NAME, ModelSection, Protocol, ResilienceOverrides,
};

/// Every configured backend, in order: the listed ones first, then
/// `engine.backend_url`'s catch-all.
pub fn build(config: &Config) -> anyhow::Result<Backends> {
    let mut backends = Backends::default();
    for section in &config.backends {
        let key = section.key()?;
        let settings = config
            .resilience
            .settings(&section.resilience, config.engine.backend_timeout);
        let built = protocol_backend(
            section.protocol,
            section.url.expose(),
            key.as_ref().map(|k| k.expose().to_owned()),
            section.connect_timeout,
            &settings,
            options(section),
        )
        .with_context(|| format!("backend {}", section.name))?;
        let resilient = Resilient::new(&section.name, built, settings);
        backends = backends.with(&section.name, serving(section), Arc::new(resilient));
    }
    if let Some(url) = &config.engine.backend_url {
        let settings = config.resilience.settings(
            &ResilienceOverrides::default(),
            config.engine.backend_timeout,
        );
        let built = protocol_backend(
            config.engine.provider.protocol(),
            url.expose(),
            config.api_key()?.map(|key| key.expose().to_owned()),
            config.engine.connect_timeout,
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

/// The protocol's backend. Its own deadline is the whole generation's: the
/// finer timeouts (first byte, between events) are [`Resilient`]'s.
fn protocol_backend(
    protocol: Protocol,
    url: &str,
    api_key: Option<String>,
    connect_timeout: std::time::Duration,
    settings: &antwort_backends::ResilienceSettings,
    (model_options, default_model_options): (HashMap<String, ModelOptions>, ModelOptions),
) -> anyhow::Result<Arc<dyn Backend>> {
    let config = antwort_backends::BackendConfig {
        base_url: url.to_owned(),
        api_key,
        connect_timeout,
        timeout: settings.total_timeout,
        model_options,
        default_model_options,
    };
    Ok(match protocol {
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

fn serving(section: &BackendSection) -> Serving {
    Serving {
        listed: section.models.iter().map(served).collect(),
        discover: section.discovers(),
        catch_all: section.catch_all,
        reported_windows: true,
    }
}

fn served(model: &ModelSection) -> ServedModel {
    ServedModel {
        upstream: model.upstream().to_owned(),
        aliases: model.aliases.clone(),
        context_window: model.context_window,
        ..ServedModel::named(&model.id)
    }
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
