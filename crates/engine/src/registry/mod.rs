//! Which backends serve a model: the registry from public model names (and
//! their aliases) to backends and the backends' own names for them.
//!
//! Every model turn, listing and readiness check asks the registry, never "the"
//! backend. An entry serves the models its configuration lists, the models its
//! backend lists (discovered, refreshed by [`Backends::refresh`]), or, as a
//! catch-all, every model no other entry names. A model several entries serve
//! gets a [`Route`] that falls back from one to the next before the first byte;
//! retry and circuit breaking wrap each backend below the registry. Every error
//! carries the name of the backend that failed.

mod named;
mod route;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use antwort_api::Model;

pub use named::NamedBackend;
pub use route::{Candidate, Route};

use crate::model::{Backend, BackendError, CircuitState};
use crate::tokens::Tokenizer;

/// A model an entry serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedModel {
    /// The name clients use.
    pub id: String,
    /// The backend's own name for it (the same unless configured otherwise).
    pub upstream: String,
    /// More names clients may use for it.
    pub aliases: Vec<String>,
    /// Its context window, in tokens, when configured or reported.
    pub context_window: Option<u64>,
    /// When the backend says it was made (Unix seconds), for the model list.
    pub created: u64,
    /// Its own tokenizer, when one is configured: it counts the model's
    /// tokens instead of `o200k_base`.
    pub tokenizer: Option<Tokenizer>,
}

impl ServedModel {
    /// A model served under its backend's name.
    pub fn named(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            upstream: id.to_owned(),
            aliases: Vec::new(),
            context_window: None,
            created: 0,
            tokenizer: None,
        }
    }

    fn answers_to(&self, name: &str) -> bool {
        self.id == name || self.aliases.iter().any(|alias| alias == name)
    }
}

/// Which models an entry serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Serving {
    /// Models configured for it, with their settings.
    pub listed: Vec<ServedModel>,
    /// Also serve what the backend lists on its `/v1/models`.
    pub discover: bool,
    /// Also serve every model no other entry names, under the name asked for.
    pub catch_all: bool,
    /// Take a discovered model's context window from the backend's list
    /// (vLLM's `max_model_len`).
    pub reported_windows: bool,
}

/// The models an entry serves, as the registry's first version named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Models {
    /// Every model no other entry names (and, for the model list, what the
    /// backend lists).
    All,
    /// Exactly these.
    Named(Vec<String>),
}

impl From<Models> for Serving {
    fn from(models: Models) -> Self {
        match models {
            Models::All => Self {
                listed: Vec::new(),
                discover: true,
                catch_all: true,
                reported_windows: false,
            },
            Models::Named(names) => Self {
                listed: names.iter().map(|name| ServedModel::named(name)).collect(),
                discover: false,
                catch_all: false,
                reported_windows: false,
            },
        }
    }
}

/// What a discovering entry last learned from its backend.
#[derive(Default)]
struct Discovered {
    models: Arc<Vec<ServedModel>>,
    /// When the list was last asked for (successfully or not).
    asked_at: Option<tokio::time::Instant>,
    /// Why the last ask failed, until one succeeds.
    failure: Option<BackendError>,
}

struct Entry {
    backend: NamedBackend,
    serving: Serving,
    discovered: RwLock<Discovered>,
}

impl Entry {
    /// The entry's model named `name`: listed first, then discovered.
    fn model(&self, name: &str) -> Option<ServedModel> {
        if let Some(model) = self.serving.listed.iter().find(|m| m.answers_to(name)) {
            return Some(model.clone());
        }
        if !self.serving.discover {
            return None;
        }
        let discovered = self.read_discovered();
        discovered.iter().find(|m| m.answers_to(name)).cloned()
    }

    fn read_discovered(&self) -> Arc<Vec<ServedModel>> {
        self.discovered
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .models
            .clone()
    }

    /// Every model the entry serves by name, listed first.
    fn models(&self) -> Vec<ServedModel> {
        let mut models = self.serving.listed.clone();
        for model in self.read_discovered().iter() {
            if !models.iter().any(|known| known.answers_to(&model.id)) {
                models.push(model.clone());
            }
        }
        models
    }

    /// Why the backend's list could not be had, while it never could.
    fn failure(&self) -> Option<BackendError> {
        let discovered = self
            .discovered
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        discovered
            .models
            .is_empty()
            .then(|| discovered.failure.clone())
            .flatten()
    }

    fn asked_within(&self, period: Duration) -> bool {
        let discovered = self
            .discovered
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        discovered
            .asked_at
            .is_some_and(|at| crate::clock::now().duration_since(at) < period)
    }

    /// Asks the backend for its models and keeps what it says; on failure the
    /// list it gave before is kept, since a backend that cannot answer a list
    /// now has not withdrawn its models.
    async fn refresh(&self) -> Result<(), BackendError> {
        // `asked_at` is set once the answer is in: a request that misses
        // while the first list is still on its way asks too, rather than
        // taking an unanswered ask for a recent one.
        let listed = match self.backend.list_models().await {
            Ok(listed) => listed,
            Err(error) => {
                let mut discovered = self
                    .discovered
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                discovered.failure = Some(error.clone());
                discovered.asked_at = Some(crate::clock::now());
                return Err(error);
            }
        };
        let models: Vec<ServedModel> = listed
            .into_iter()
            .map(|model| ServedModel {
                context_window: model
                    .max_model_len
                    .filter(|_| self.serving.reported_windows),
                created: model.created,
                ..ServedModel::named(&model.id)
            })
            .collect();
        let mut discovered = self
            .discovered
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if *discovered.models != models {
            tracing::info!(
                backend = %self.backend.name,
                models = ?models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
                "discovered the backend's models"
            );
        }
        discovered.models = Arc::new(models);
        discovered.failure = None;
        discovered.asked_at = Some(crate::clock::now());
        Ok(())
    }
}

/// How recently a discovering entry must have been asked for its models
/// before a miss asks it again: a model loaded after the last refresh is
/// found at once, and a client naming models nobody serves cannot make the
/// gateway flood its backends with model lists.
const REFRESH_ON_MISS_AFTER: Duration = Duration::from_secs(5);

/// The registry: entries in the order they were added.
#[derive(Clone, Default)]
pub struct Backends {
    entries: Arc<Vec<Entry>>,
}

/// A backend's answer to a readiness check, and its breaker's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendReadiness {
    pub name: Arc<str>,
    pub ready: bool,
    pub circuit: Option<CircuitState>,
}

impl Backends {
    /// One backend for every model.
    pub fn single(name: &str, backend: Arc<dyn Backend>) -> Self {
        Self::default().with(name, Models::All, backend)
    }

    /// Adds an entry.
    pub fn with(self, name: &str, serving: impl Into<Serving>, backend: Arc<dyn Backend>) -> Self {
        let mut entries: Vec<Entry> = match Arc::try_unwrap(self.entries) {
            Ok(entries) => entries,
            Err(shared) => shared
                .iter()
                .map(|entry| Entry {
                    backend: entry.backend.clone(),
                    serving: entry.serving.clone(),
                    discovered: RwLock::new(Discovered {
                        models: entry.read_discovered(),
                        ..Discovered::default()
                    }),
                })
                .collect(),
        };
        entries.push(Entry {
            backend: NamedBackend::new(name, backend),
            serving: serving.into(),
            discovered: RwLock::new(Discovered::default()),
        });
        Self {
            entries: Arc::new(entries),
        }
    }

    /// The backends that serve `model`, in order: every entry that names it
    /// (listed or discovered), else every catch-all; `None` when none does.
    pub fn route(&self, model: &str) -> Option<Route> {
        let mut candidates: Vec<Candidate> = self
            .entries
            .iter()
            .filter_map(|entry| {
                entry.model(model).map(|served| Candidate {
                    backend: entry.backend.clone(),
                    upstream: Arc::from(served.upstream.as_str()),
                })
            })
            .collect();
        if candidates.is_empty() {
            candidates = self
                .entries
                .iter()
                .filter(|entry| entry.serving.catch_all)
                .map(|entry| Candidate {
                    backend: entry.backend.clone(),
                    upstream: Arc::from(model),
                })
                .collect();
        }
        (!candidates.is_empty()).then(|| Route::new(candidates))
    }

    /// [`Backends::route`], asking discovering backends for their models again
    /// first when none serves `model` and they were not asked recently.
    pub async fn route_or_refresh(&self, model: &str) -> Option<Route> {
        if let Some(route) = self.route(model) {
            return Some(route);
        }
        let stale: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|entry| entry.serving.discover && !entry.asked_within(REFRESH_ON_MISS_AFTER))
            .collect();
        if stale.is_empty() {
            return None;
        }
        futures::future::join_all(stale.iter().map(|entry| entry.refresh())).await;
        self.route(model)
    }

    /// The model a client names (by id or alias), as the first entry that
    /// serves it by name describes it; `None` for a name only a catch-all
    /// would take.
    pub fn find(&self, model: &str) -> Option<(Arc<str>, ServedModel)> {
        self.entries.iter().find_map(|entry| {
            entry
                .model(model)
                .map(|served| (entry.backend.name.clone(), served))
        })
    }

    /// The context window the configuration or the backend gives `model`.
    pub fn context_window(&self, model: &str) -> Option<u64> {
        self.find(model)
            .and_then(|(_, served)| served.context_window)
    }

    /// The tokenizer configured for `model` (by id or alias), when one is.
    pub fn tokenizer(&self, model: &str) -> Option<Tokenizer> {
        self.find(model).and_then(|(_, served)| served.tokenizer)
    }

    /// Every model served by name, each id (and alias) once, the first entry
    /// that serves it winning; `owned_by` names the backend. Discovering
    /// entries never asked yet are asked first. Fails only when nothing can
    /// be listed because a backend could not answer: an empty list would say
    /// that nothing is served.
    pub async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        // Entries not asked yet, or whose last ask failed a while ago.
        let unasked = self.entries.iter().filter(|entry| {
            entry.serving.discover
                && (!entry.asked_within(Duration::MAX)
                    || (entry.failure().is_some() && !entry.asked_within(REFRESH_ON_MISS_AFTER)))
        });
        let answers = futures::future::join_all(unasked.map(Entry::refresh)).await;
        for error in answers.into_iter().filter_map(Result::err) {
            tracing::warn!(backend = %error.backend, error = %error.kind, "cannot list the backend's models");
        }
        let failure = self.entries.iter().find_map(Entry::failure);
        let mut models: Vec<Model> = Vec::new();
        for entry in self.entries.iter() {
            for served in entry.models() {
                for id in std::iter::once(&served.id).chain(&served.aliases) {
                    if models.iter().any(|known| &known.id == id) {
                        continue;
                    }
                    models.push(Model {
                        id: id.clone(),
                        object: "model".to_owned(),
                        created: served.created,
                        owned_by: entry.backend.name.to_string(),
                        max_model_len: served.context_window,
                    });
                }
            }
        }
        match failure {
            Some(error) if models.is_empty() => Err(error),
            _ => Ok(models),
        }
    }

    /// Asks every discovering backend for its models (the periodic refresh).
    /// Failures are logged; the lists known before are kept.
    pub async fn refresh(&self) {
        let discovering = self.entries.iter().filter(|entry| entry.serving.discover);
        let answers = futures::future::join_all(discovering.map(|entry| entry.refresh())).await;
        for error in answers.into_iter().filter_map(Result::err) {
            tracing::warn!(backend = %error.backend, error = %error.kind, "cannot refresh the backend's models");
        }
    }

    /// Whether any entry discovers its models (and so wants [`Backends::refresh`]).
    pub fn discovers(&self) -> bool {
        self.entries.iter().any(|entry| entry.serving.discover)
    }

    /// Asks every backend at once whether it answers, each within `within`.
    pub async fn readiness(&self, within: Duration) -> Vec<BackendReadiness> {
        let checks = self.entries.iter().map(|entry| async move {
            let ready = match tokio::time::timeout(within, entry.backend.check_ready()).await {
                Ok(Ok(())) => true,
                Ok(Err(error)) => {
                    tracing::warn!(backend = %error.backend, error = %error.kind, "readiness: a backend is unavailable");
                    false
                }
                Err(_) => {
                    tracing::warn!(backend = %entry.backend.name, ?within, "readiness: a backend did not answer in time");
                    false
                }
            };
            BackendReadiness {
                name: entry.backend.name.clone(),
                ready,
                circuit: entry.backend.circuit(),
            }
        });
        futures::future::join_all(checks).await
    }
}

#[cfg(test)]
mod tests;
