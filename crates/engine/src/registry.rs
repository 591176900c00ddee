//! Which backend serves a model: the registry from model names to backends.
//!
//! Every model turn, listing and readiness check asks the registry, never "the"
//! backend, so that several backends (and, later, aliases, retry, fallback and
//! breakers, which wrap a backend and may [`peek`](crate::model::peek) its first
//! event) plug in here. Today a deployment has one entry that serves every model.
//! Each entry names its backend, and every error it returns carries that name.

use std::sync::Arc;

use antwort_api::Model;
use async_trait::async_trait;
use futures::StreamExt;

use crate::model::{Backend, BackendError, ModelRequest, ModelStream};

/// The models an entry serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Models {
    /// Every model no other entry names.
    All,
    /// Exactly these.
    Named(Vec<String>),
}

/// A backend as the registry knows it: named, and stamping that name on its
/// errors (those of `generate` and those in its stream).
#[derive(Clone)]
pub struct NamedBackend {
    pub name: Arc<str>,
    backend: Arc<dyn Backend>,
}

#[async_trait]
impl Backend for NamedBackend {
    async fn generate(&self, request: &ModelRequest) -> Result<ModelStream, BackendError> {
        let name = self.name.clone();
        let stream = self
            .backend
            .generate(request)
            .await
            .map_err(|error| error.from_backend(&name))?;
        Ok(stream
            .map(move |event| event.map_err(|error| error.from_backend(&name)))
            .boxed())
    }

    async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        self.backend
            .list_models()
            .await
            .map_err(|error| error.from_backend(&self.name))
    }

    async fn check_ready(&self) -> Result<(), BackendError> {
        self.backend
            .check_ready()
            .await
            .map_err(|error| error.from_backend(&self.name))
    }
}

struct Entry {
    models: Models,
    backend: NamedBackend,
}

/// The registry: entries in the order they were added; a model goes to the
/// first entry that names it, else to the first that serves all.
#[derive(Clone, Default)]
pub struct Backends {
    entries: Arc<Vec<Entry>>,
}

impl Backends {
    /// One backend for every model.
    pub fn single(name: &str, backend: Arc<dyn Backend>) -> Self {
        Self::default().with(name, Models::All, backend)
    }

    /// Adds an entry.
    pub fn with(self, name: &str, models: Models, backend: Arc<dyn Backend>) -> Self {
        let mut entries: Vec<Entry> = Arc::try_unwrap(self.entries).unwrap_or_else(|shared| {
            shared
                .iter()
                .map(|entry| Entry {
                    models: entry.models.clone(),
                    backend: entry.backend.clone(),
                })
                .collect()
        });
        entries.push(Entry {
            models,
            backend: NamedBackend {
                name: Arc::from(name),
                backend,
            },
        });
        Self {
            entries: Arc::new(entries),
        }
    }

    /// The backend that serves `model`, if any does.
    pub fn route(&self, model: &str) -> Option<&NamedBackend> {
        let named = self.entries.iter().find(|entry| match &entry.models {
            Models::Named(names) => names.iter().any(|name| name == model),
            Models::All => false,
        });
        named
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|entry| entry.models == Models::All)
            })
            .map(|entry| &entry.backend)
    }

    /// Every model of every backend, each id once (the first backend that
    /// lists it wins). A backend that cannot list its models fails the call:
    /// a partial list would look like a model was withdrawn.
    pub async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        let mut models: Vec<Model> = Vec::new();
        for entry in self.entries.iter() {
            for model in entry.backend.list_models().await? {
                if !models.iter().any(|known| known.id == model.id) {
                    models.push(model);
                }
            }
        }
        Ok(models)
    }

    /// Succeeds when every backend answers.
    pub async fn check_ready(&self) -> Result<(), BackendError> {
        for entry in self.entries.iter() {
            entry.backend.check_ready().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BackendErrorKind;

    struct Fails;

    #[async_trait]
    impl Backend for Fails {
        async fn generate(&self, _: &ModelRequest) -> Result<ModelStream, BackendError> {
            Err(BackendError::unavailable("down"))
        }
        async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
            Ok(Vec::new())
        }
        async fn check_ready(&self) -> Result<(), BackendError> {
            Err(BackendErrorKind::Timeout("slow".into()).into())
        }
    }

    #[tokio::test]
    async fn models_route_to_the_entry_that_names_them_and_errors_carry_its_name() {
        let backends = Backends::single("default", Arc::new(Fails)).with(
            "special",
            Models::Named(vec!["m2".into()]),
            Arc::new(Fails),
        );
        assert_eq!(&*backends.route("m1").unwrap().name, "default");
        assert_eq!(&*backends.route("m2").unwrap().name, "special");
        let error = backends.check_ready().await.unwrap_err();
        assert_eq!(error.backend, "default");
        assert!(Backends::default().route("m1").is_none());
    }
}
