//! What the two generation endpoints (Chat Completions and Responses) share: the
//! steps before the answer (counting, recording, the instance controls, the
//! model check, the script's status-line faults) and the pieces of an answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::control::{self, Fault};
use crate::script::Script;
use crate::{MockState, Stats, error};

/// Counts a request as abandoned if its handler is dropped (the client went
/// away) before it produced a response, that is before the status line.
pub(crate) struct AbandonGuard {
    stats: Arc<Stats>,
    answered: bool,
}

impl AbandonGuard {
    pub fn new(stats: &Arc<Stats>) -> Self {
        Self {
            stats: stats.clone(),
            answered: false,
        }
    }

    pub fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if !self.answered {
            self.stats.requests_abandoned.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Counts and parses a generation request, records it, and applies the
/// instance controls and the model check. `Ok` has the body and the request's
/// number at its endpoint (from 1); `Err` is the answer to send instead.
pub(crate) async fn accept(
    state: &MockState,
    endpoint: &AtomicU64,
    body: &Bytes,
) -> Result<(Value, u64), Response> {
    state.stats.requests.fetch_add(1, Ordering::SeqCst);
    let number = endpoint.fetch_add(1, Ordering::SeqCst) + 1;
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")))?;
    state.stats.record(&body);
    match state.control.take_fault() {
        Fault::None => {}
        Fault::Hang => {
            state.stats.requests_hung.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        Fault::Fail {
            status,
            retry_after,
        } => return Err(control::failure(status, retry_after)),
    }
    if body["model"].as_str().is_none_or(str::is_empty) {
        return Err(error(StatusCode::BAD_REQUEST, "model is required"));
    }
    if body["model"] == "missing-model" {
        return Err(error(
            StatusCode::NOT_FOUND,
            "The model `missing-model` does not exist.",
        ));
    }
    Ok((body, number))
}

/// The script's faults before and at the status line: `[[status_ms:..]]`,
/// `[[stall_error:..]]`, `[[error:..]]` with `[[retry_after:..]]`.
pub(crate) async fn status_faults(script: &Script) -> Option<Response> {
    if !script.status_delay.is_zero() {
        tokio::time::sleep(script.status_delay).await;
    }
    if let Some(status) = script.stall_error {
        // The status line, then silence: a server that dies while answering.
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let silence = futures::stream::pending::<Result<Bytes, Infallible>>();
        return Some(
            Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(silence))
                .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "cannot build")),
        );
    }
    if let Some(status) = script.error_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = error(status, &format!("scripted error {}", status.as_u16()));
        if let Some(retry) = script.retry_after.as_deref().and_then(|r| r.parse().ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, retry);
        }
        return Some(response);
    }
    None
}

/// The answer of a non-streaming request told to fail mid-generation
/// (`[[stream_error:..]]`): the 500 a server gives when generation fails before
/// it has answered.
pub(crate) fn generation_failure(message: &str) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, message)
}

/// Splits text into stream pieces of one word each, spaces kept.
pub(crate) fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Tool-call arguments in three pieces, as real servers split them.
pub(crate) fn argument_pieces(args: &str) -> Vec<String> {
    let chars: Vec<char> = args.chars().collect();
    let third = chars.len().div_ceil(3).max(1);
    chars.chunks(third).map(|c| c.iter().collect()).collect()
}

/// The log probability of one piece, with `top` alternatives, in the shape both
/// APIs use for a token.
pub(crate) fn logprob(piece: &str, top: u64) -> Value {
    let top_logprobs: Vec<Value> = (0..top)
        .map(|i| json!({"token": format!("{piece}{i}"), "logprob": -1.0 - i as f64, "bytes": format!("{piece}{i}").into_bytes()}))
        .collect();
    json!({"token": piece, "logprob": -0.5, "bytes": piece.as_bytes(), "top_logprobs": top_logprobs})
}

/// Token counts: one per stream piece of the text and of the reasoning, and one
/// per tool call (a refusal is not counted, as it never was).
pub(crate) struct Usage {
    pub prompt: u64,
    pub completion: u64,
    pub reasoning: u64,
}

impl Usage {
    pub fn of(script: &Script) -> Self {
        let count = |text: &Option<String>| text.as_deref().map_or(0, |t| pieces(t).len() as u64);
        Self {
            prompt: script.prompt_tokens,
            completion: count(&script.text) + script.tool_calls.len() as u64,
            reasoning: count(&script.reasoning),
        }
    }

    pub fn output(&self) -> u64 {
        self.completion + self.reasoning
    }
}

pub(crate) fn call_id(index: usize) -> String {
    format!("call_mock_{index}")
}
