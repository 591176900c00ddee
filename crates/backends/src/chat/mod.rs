//! The Chat Completions backend: any OpenAI-compatible server (vLLM, Ollama,
//! llama.cpp, SGLang, TGI, LiteLLM, OpenAI) behind the Responses API.

mod request;
mod response;
mod stream;

use std::collections::HashMap;

use antwort_api::Model;
use antwort_engine::{Backend, BackendError, ModelRequest, ModelStream};
use async_trait::async_trait;
use futures::StreamExt;

use crate::http::Upstream;
pub use crate::http::normalize_base_url;
use crate::options::ModelOptions;
use crate::tokenize::Tokenize;
pub use request::{ChatMessage, chat_request};
pub use stream::{ChunkStream, ChunkTranslator, MAX_EVENT_BYTES, Translated};

/// Where and how to reach a Chat Completions server.
pub type ChatBackendConfig = crate::http::BackendConfig;

pub struct ChatBackend {
    upstream: Upstream,
    model_options: HashMap<String, ModelOptions>,
    default_model_options: ModelOptions,
    /// The server's `POST /tokenize`, when configured (`tokenize: true`).
    tokenize: Option<Tokenize>,
}

impl ChatBackend {
    pub fn new(config: ChatBackendConfig) -> Result<Self, BackendError> {
        let upstream = Upstream::new(
            &config.base_url,
            config.api_key.as_deref(),
            config.connect_timeout,
            config.timeout,
            "/chat/completions",
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

    fn post_completions(&self) -> reqwest::RequestBuilder {
        self.upstream.post_endpoint()
    }
}

#[async_trait]
impl Backend for ChatBackend {
    async fn generate(&self, request: &ModelRequest) -> Result<ModelStream, BackendError> {
        let options = ModelOptions::for_model(
            &self.model_options,
            self.default_model_options,
            &request.model,
        );
        let body = chat_request(request, options);
        let deadline = self.upstream.deadline();
        let response = self
            .upstream
            .send(self.post_completions().json(&body), deadline)
            .await?;
        if !request.stream {
            // The same one deadline as the status line, to the body's last byte.
            let bytes = self
                .upstream
                .body(response, deadline, "completion body")
                .await?;
            let completion: response::ChatCompletion = serde_json::from_slice(&bytes)
                .map_err(|e| BackendError::protocol(format!("invalid completion JSON: {e}")))?;
            let events = response::completion_events(completion);
            return Ok(futures::stream::iter(events.into_iter().map(Ok)).boxed());
        }
        let translator = ChunkTranslator::default();
        Ok(Box::pin(ChunkStream::new(
            response,
            self.upstream.timeout,
            translator,
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
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn completions_go_to_the_parsed_url_with_the_key() {
        let backend = ChatBackend::new(ChatBackendConfig {
            base_url: "http://h:8000".into(),
            api_key: Some("k3y".into()),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            model_options: HashMap::new(),
            default_model_options: ModelOptions::default(),
            tokenize: false,
        })
        .unwrap();
        let request = backend.post_completions().build().unwrap();
        assert_eq!(request.url().as_str(), "http://h:8000/v1/chat/completions");
        let authorization = &request.headers()[reqwest::header::AUTHORIZATION];
        assert_eq!(authorization, "Bearer k3y");
        assert!(authorization.is_sensitive());
    }
}
