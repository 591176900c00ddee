//! A server's own token counts: vLLM's `POST /tokenize`, served at the
//! server's root (not under `/v1`), for either protocol.
//!
//! The turn goes as the chat messages [`chat_request`] builds, with its tools
//! and `add_generation_prompt`, so that the server applies the model's chat
//! template and counts what a generation's prompt takes; the answer's `count`
//! is the number. A native Responses backend gets the same messages: vLLM
//! renders its Responses input through the same chat template, and what the
//! template drops either way (past reasoning) does not count.

use std::time::Duration;

use antwort_engine::{BackendError, ModelRequest};
use serde::{Deserialize, Serialize};

use crate::chat::{ChatMessage, chat_request};
use crate::http::Upstream;
use crate::options::ModelOptions;

/// How long a count may take. A count is asked before a turn starts (or for
/// `input_tokens`), and a local estimate stands in when it fails, so a
/// server slow to count is not waited for as long as for a generation.
const TOKENIZE_TIMEOUT: Duration = Duration::from_secs(5);

/// A server's `POST /tokenize`.
pub(crate) struct Tokenize {
    /// Parsed once, like the generation endpoint.
    url: reqwest::Url,
}

#[derive(Serialize)]
struct TokenizeRequest<'a> {
    model: &'a str,
    messages: &'a [ChatMessage<'a>],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tools: &'a [serde_json::Value],
    add_generation_prompt: bool,
}

#[derive(Deserialize)]
struct Counted {
    count: u64,
}

impl Tokenize {
    pub(crate) fn new(upstream: &Upstream) -> Result<Self, BackendError> {
        Ok(Self {
            url: upstream.root_url("/tokenize")?,
        })
    }

    /// The tokens `request`'s prompt takes, as the server counts them.
    pub(crate) async fn count(
        &self,
        upstream: &Upstream,
        request: &ModelRequest,
    ) -> Result<u64, BackendError> {
        // The per-model options shape sampling fields, which are not sent.
        let chat = chat_request(request, ModelOptions::default());
        let body = TokenizeRequest {
            model: chat.model,
            messages: &chat.messages,
            tools: &chat.tools,
            add_generation_prompt: true,
        };
        let within = TOKENIZE_TIMEOUT.min(upstream.timeout);
        let deadline = antwort_engine::clock::now() + within;
        let builder = upstream.post(self.url.clone()).json(&body);
        let response = upstream.send_within(builder, deadline, within).await?;
        let bytes = upstream.body(response, deadline, "token count").await?;
        let counted: Counted = serde_json::from_slice(&bytes)
            .map_err(|e| BackendError::protocol(format!("invalid /tokenize answer: {e}")))?;
        Ok(counted.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_at_the_servers_root() {
        for base in ["http://h:8000", "http://h:8000/v1/", "http://h:8000/"] {
            let upstream = Upstream::new(
                base,
                None,
                Duration::from_secs(1),
                Duration::from_secs(1),
                "/chat/completions",
            )
            .unwrap();
            let tokenize = Tokenize::new(&upstream).unwrap();
            assert_eq!(tokenize.url.as_str(), "http://h:8000/tokenize");
        }
    }

    #[test]
    fn the_body_is_the_chat_messages_with_the_generation_prompt() {
        let asked = antwort_api::CreateResponseRequest::from_json(
            br#"{"model": "meta-llama/Llama-3.1-8B-Instruct", "instructions": "be brief", "input": "hi"}"#,
        )
        .unwrap();
        let request = antwort_engine::prepare::plan(
            asked,
            None,
            "resp_1".into(),
            0,
            &[],
            &antwort_engine::Scope::default(),
        )
        .unwrap()
        .model_request;
        let chat = chat_request(&request, ModelOptions::default());
        let body = TokenizeRequest {
            model: chat.model,
            messages: &chat.messages,
            tools: &chat.tools,
            add_generation_prompt: true,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "model": "meta-llama/Llama-3.1-8B-Instruct",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                ],
                "add_generation_prompt": true,
            })
        );
    }
}
