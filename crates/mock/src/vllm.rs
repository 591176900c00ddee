//! The model list and vLLM's tokenizer endpoint.
//!
//! `GET /v1/models` lists the models of [`crate::Control`], each with vLLM's
//! `max_model_len`. `POST /tokenize` (at the root, as vLLM serves it) takes
//! `{"model", "prompt": "text"}` or `{"model", "messages": [...]}` and answers
//! `{"count", "max_model_len", "tokens", "token_strs": null}`. The mock's
//! tokenizer is deliberately unlike any real one, so that a test can tell its
//! counts from a local estimate: one token per whitespace-separated word
//! (`1000 + FNV-1a(word) % 100000`), and for `messages` one more token (`1`)
//! at the start of each message, whose words are those of its string content
//! or of its parts' `text` (tool calls and other fields are not counted).

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{MockState, error, script};

/// The token that opens each message of a `messages` request.
pub const MESSAGE_TOKEN: u32 = 1;

pub(crate) async fn models(State(state): State<MockState>) -> impl IntoResponse {
    let max_model_len = state.control.max_model_len();
    let data: Vec<Value> = state
        .control
        .models()
        .iter()
        .map(|id| {
            json!({"id": id, "object": "model", "created": 0, "owned_by": "antwort-mock",
                "root": id, "parent": null, "max_model_len": max_model_len})
        })
        .collect();
    axum::Json(json!({"object": "list", "data": data}))
}

pub(crate) async fn tokenize(State(state): State<MockState>, body: Bytes) -> Response {
    state.stats.tokenize_requests.fetch_add(1, Ordering::SeqCst);
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    };
    if body["model"] == "missing-model" {
        return error(
            StatusCode::NOT_FOUND,
            "The model `missing-model` does not exist.",
        );
    }
    let tokens = match (&body["prompt"], &body["messages"]) {
        (Value::String(prompt), _) => words(prompt),
        (_, Value::Array(messages)) => messages
            .iter()
            .flat_map(|m| std::iter::once(MESSAGE_TOKEN).chain(words(&script::text_of(m))))
            .collect(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "either `prompt` (a string) or `messages` (an array) is required",
            );
        }
    };
    axum::Json(json!({
        "count": tokens.len(),
        "max_model_len": state.control.max_model_len(),
        "tokens": tokens,
        "token_strs": null,
    }))
    .into_response()
}

/// The mock's tokens of a text: one per whitespace-separated word.
pub fn words(text: &str) -> Vec<u32> {
    text.split_whitespace()
        .map(|word| {
            let hash = word.bytes().fold(0x811c9dc5_u32, |hash, byte| {
                (hash ^ u32::from(byte)).wrapping_mul(0x01000193)
            });
            1000 + hash % 100_000
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_tokens_and_equal_words_equal_tokens() {
        let tokens = words("  the cat\tsat on the\nmat ");
        assert_eq!(tokens.len(), 6);
        assert_eq!(tokens[0], tokens[4]);
        assert_ne!(tokens[0], tokens[1]);
        assert!(tokens.iter().all(|t| (1000..101_000).contains(t)));
        assert!(words("").is_empty());
    }
}
