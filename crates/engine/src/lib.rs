//! The response lifecycle: a create request becomes a plan, the plan a model turn,
//! and the backend's model events one stream of response events.
//!
//! The engine does no I/O of its own: it drives a [`Backend`] and hands back a
//! [`ResponseStream`]. Every view of a response (the JSON body, SSE, and later
//! storage and replay) is built from that one stream, so there is never a second code
//! path that must agree with the first.

pub mod assembler;
mod clock;
pub mod error;
pub mod ids;
pub mod model;
pub mod prepare;
pub mod store;
pub mod stream;

use std::sync::Arc;

use antwort_api::{ApiError, CreateResponseRequest, Model};

pub use assembler::{Assembler, ReasoningEventNames};
pub use model::{
    Backend, BackendError, FinishReason, ModelEvent, ModelRequest, ModelStream, ModelToolChoice,
};
pub use stream::ResponseStream;

/// Settings of the engine itself.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Used when a request names no model.
    pub default_model: Option<String>,
    pub reasoning_event_names: ReasoningEventNames,
}

/// A started response: its event stream and what the server reports beside it.
pub struct Started {
    pub stream: ResponseStream,
    /// Hosted tool types the request listed that were not offered to the model.
    pub skipped_tools: Vec<String>,
    pub response_id: String,
}

#[derive(Clone)]
pub struct Engine {
    backend: Arc<dyn Backend>,
    config: Arc<EngineConfig>,
}

impl Engine {
    pub fn new(backend: Arc<dyn Backend>, config: EngineConfig) -> Self {
        Self {
            backend,
            config: Arc::new(config),
        }
    }

    /// Validates the request and starts generation. Errors returned here happened
    /// before the first byte and are the client's HTTP status; later failures arrive
    /// as events in the stream.
    pub async fn create(&self, request: CreateResponseRequest) -> Result<Started, ApiError> {
        let plan = prepare::plan(
            request,
            self.config.default_model.as_deref(),
            ids::response_id(),
            clock::unix_now(),
        )?;
        if !plan.skipped_tools.is_empty() {
            tracing::warn!(
                skipped_tools = ?plan.skipped_tools,
                "hosted tools requested that this deployment does not run; not offered to the model"
            );
        }
        let upstream = self
            .backend
            .generate(plan.model_request)
            .await
            .map_err(error::backend_error)?;
        let response_id = plan.response.id.clone();
        let assembler = Assembler::new(
            plan.response,
            plan.logprobs,
            self.config.reasoning_event_names,
        );
        Ok(Started {
            stream: ResponseStream::new(assembler, upstream),
            skipped_tools: plan.skipped_tools,
            response_id,
        })
    }

    pub async fn list_models(&self) -> Result<Vec<Model>, ApiError> {
        self.backend
            .list_models()
            .await
            .map_err(error::backend_error)
    }

    pub async fn check_ready(&self) -> Result<(), ApiError> {
        self.backend
            .check_ready()
            .await
            .map_err(error::backend_error)
    }
}
