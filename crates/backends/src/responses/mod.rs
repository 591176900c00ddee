//! The native Responses backend: a server that speaks the Responses API
//! itself (vLLM, OpenAI, another antwort) behind the gateway, used statelessly.
//!
//! The gateway keeps state, runs server-side tools and stores; the backend only
//! generates. So every request is `store: false` with the whole context as
//! `input` (see [`request`] for the form input items take, and why), and what
//! comes back is read as events only: the server's sequence numbers and ids
//! are not trusted, since the engine's assembler re-sequences and assigns its
//! own ids.
//!
//! `encrypted_content` a backend writes survives the round trip to it: the
//! reasoning item carries it to the client (the assembler keeps a backend's
//! blob rather than sealing its own), the client or the store sends it back,
//! `sealed::open_input` leaves a blob that is not the gateway's alone, and it is
//! sent back as it came. A blob the gateway sealed is not sent (see [`request`]).
//! A backend writes one only when asked: the request's own `include` is passed
//! on unchanged.

mod events;
mod items;
mod request;
mod wire;

use std::collections::HashMap;

use antwort_api::Model;
use antwort_engine::{Backend, BackendError, ModelRequest, ModelStream};
use async_trait::async_trait;
use futures::StreamExt;

pub use events::{ResponsesTranslator, response_events};
pub use request::{ResponsesRequest, responses_request};

use crate::http::Upstream;
use crate::options::ModelOptions;
use crate::stream::EventStream;
use crate::tokenize::Tokenize;

/// Where and how to reach a Responses server.
pub type ResponsesBackendConfig = crate::http::BackendConfig;

pub struct ResponsesBackend {
    upstream: Upstream,
    model_options: HashMap<String, ModelOptions>,
    default_model_options: ModelOptions,
    /// The server's `POST /tokenize`, when configured (`tokenize: true`):
    /// vLLM serves it beside its Responses API.
    tokenize: Option<Tokenize>,
}

impl ResponsesBackend {
    pub fn new(config: ResponsesBackendConfig) -> Result<Self, BackendError> {
        let upstream = Upstream::new(
            &config.base_url,
            config.api_key.as_deref(),
            config.connect_timeout,
            config.timeout,
            "/responses",
        )?;
        let tokenize = config
            .tokenize
            .then(|| Tokenize::new(&upstream))
            .transpose()?;
        Ok(Self {
            upstream,
            model_options: config.model_options,
            default_model_options: config.default_model_options,
            tokenize,
        })
    }
}

#[async_trait]
impl Backend for ResponsesBackend {
    async fn generate(&self, request: &ModelRequest) -> Result<ModelStream, BackendError> {
        let options = ModelOptions::for_model(
            &self.model_options,
            self.default_model_options,
            &request.model,
        );
        let body = responses_request(request, options);
        let deadline = self.upstream.deadline();
        let response = self
            .upstream
            .send(self.upstream.post_endpoint().json(&body), deadline)
            .await?;
        if !request.stream {
            // The same one deadline as the status line, to the body's last byte.
            let bytes = self
                .upstream
                .body(response, deadline, "response body")
                .await?;
            let events = response_events(&bytes)?;
            return Ok(futures::stream::iter(events.into_iter().map(Ok)).boxed());
        }
        Ok(Box::pin(EventStream::new(
            response,
            self.upstream.timeout,
            ResponsesTranslator::default(),
        )))
    }

    async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        self.upstream.list_models().await
    }

    async fn check_ready(&self) -> Result<(), BackendError> {
        self.upstream.check_ready().await
    }

    async fn count_tokens(&self, request: &ModelRequest) -> Option<Result<u64, BackendError>> {
        let tokenize = self.tokenize.as_ref()?;
        Some(tokenize.count(&self.upstream, request).await)
    }
}

#[cfg(test)]
#[path = "backend_tests.rs"]
mod tests;
