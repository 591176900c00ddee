//! A backend as the registry knows it: named, and stamping that name on every
//! error it returns, those of `generate` and those inside its stream (and a
//! token count's).

use std::sync::Arc;

use antwort_api::Model;
use async_trait::async_trait;
use futures::StreamExt;

use crate::model::{Backend, BackendError, CircuitState, ModelRequest, ModelStream};

#[derive(Clone)]
pub struct NamedBackend {
    pub name: Arc<str>,
    backend: Arc<dyn Backend>,
}

impl NamedBackend {
    pub fn new(name: &str, backend: Arc<dyn Backend>) -> Self {
        Self {
            name: Arc::from(name),
            backend,
        }
    }
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

    fn circuit(&self) -> Option<CircuitState> {
        self.backend.circuit()
    }

    async fn count_tokens(&self, request: &ModelRequest) -> Option<Result<u64, BackendError>> {
        let counted = self.backend.count_tokens(request).await?;
        Some(counted.map_err(|error| error.from_backend(&self.name)))
    }
}
