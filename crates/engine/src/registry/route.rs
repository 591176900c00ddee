//! A model's route: the backends that serve it, in order, each with its own
//! name for the model. Generating tries them in turn while the failure is one
//! another backend may not share (unreachable, overloaded, timed out, a 5xx or
//! 429), and only before anything reached the client: each candidate's first
//! event is awaited ([`peek`]) before the route commits to it.

use std::sync::Arc;

use antwort_api::Model;
use async_trait::async_trait;

use super::NamedBackend;
use crate::model::{Backend, BackendError, ModelRequest, ModelStream, peek};

/// One backend that serves the model, and its name for it.
#[derive(Clone)]
pub struct Candidate {
    pub backend: NamedBackend,
    /// The model as this backend names it (an alias resolved).
    pub upstream: Arc<str>,
}

/// The backends a model can go to, the first preferred.
#[derive(Clone)]
pub struct Route {
    candidates: Arc<[Candidate]>,
}

impl Route {
    pub(super) fn new(candidates: Vec<Candidate>) -> Self {
        Self {
            candidates: candidates.into(),
        }
    }

    /// The backend tried first.
    pub fn primary(&self) -> &NamedBackend {
        &self.candidates[0].backend
    }

    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    async fn generate_on(
        candidate: &Candidate,
        request: &ModelRequest,
        commit_early: bool,
    ) -> Result<ModelStream, BackendError> {
        let stream = if *candidate.upstream == *request.model {
            candidate.backend.generate(request).await?
        } else {
            // The backend's own name goes out; the response keeps the one the
            // client asked for. A clone only where the names differ (an alias).
            let mut renamed = request.clone();
            renamed.model = candidate.upstream.to_string();
            candidate.backend.generate(&renamed).await?
        };
        if commit_early {
            Ok(stream)
        } else {
            peek(stream).await
        }
    }
}

#[async_trait]
impl Backend for Route {
    async fn generate(&self, request: &ModelRequest) -> Result<ModelStream, BackendError> {
        let last = self.candidates.len() - 1;
        let mut index = 0;
        loop {
            let candidate = &self.candidates[index];
            // The last candidate's stream goes to the client as it is: there is
            // nothing left to fall back to, so its first event is not awaited here.
            match Self::generate_on(candidate, request, index == last).await {
                Ok(stream) => return Ok(stream),
                Err(error) if index < last && error.is_retryable() => {
                    let next = &self.candidates[index + 1].backend.name;
                    tracing::warn!(
                        model = %request.model,
                        backend = %candidate.backend.name,
                        fallback = %next,
                        error = %error.kind,
                        "backend failed before the first byte; falling back"
                    );
                    index += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        self.primary().list_models().await
    }

    async fn check_ready(&self) -> Result<(), BackendError> {
        self.primary().check_ready().await
    }

    /// The primary's count, under its name for the model: the backend tried
    /// first is the one whose window the turn must fit. (A fallback serving
    /// the same model shares its tokenizer.)
    async fn count_tokens(&self, request: &ModelRequest) -> Option<Result<u64, BackendError>> {
        let primary = &self.candidates[0];
        if *primary.upstream == *request.model {
            return primary.backend.count_tokens(request).await;
        }
        let mut renamed = request.clone();
        renamed.model = primary.upstream.to_string();
        primary.backend.count_tokens(&renamed).await
    }
}
