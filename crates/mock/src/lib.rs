//! antwort-mock: a scripted OpenAI-compatible backend for tests, demos and
//! benchmarks. It serves Chat Completions (JSON and SSE), `/v1/models`,
//! deterministic `/v1/embeddings` and a stateless `/v1/responses`, reflects what it
//! received, and is scripted by directives in the prompt (see [`script`]).
//! `GET /mock/stats` counts requests and streams, including streams the client
//! abandoned, so that tests can see upstream cancellation.
//!
//! On the same port it is also an MCP server (see [`mcp`]) with the tools `add`,
//! `echo`, `fail`, `sleep` and `big`:
//!
//! - `/mcp`: Streamable HTTP, no authentication;
//! - `/mcp-auth`: Streamable HTTP behind `Authorization: Bearer <token>`, where the
//!   token is `static-token` or one issued by `/oauth/token`;
//! - `POST /oauth/token`: the OAuth `client_credentials` grant for the clients
//!   `antwort` and `antwort-short` (secret `s3cret`; the latter's tokens expire
//!   after one second);
//! - `GET /sse` and `POST /sse/message?sessionId=<id>`: the older HTTP+SSE
//!   transport (protocol revision 2024-11-05).
//!
//! `/mock/stats` then also reports `mcp_list_tools`, `mcp_tool_calls` and
//! `oauth_tokens_issued`, so that tests can see what the gateway caches.

#![allow(
    clippy::disallowed_methods,
    reason = "a test backend, not the product: it spawns, times and makes ids directly"
)]

pub mod mcp;
pub mod script;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub use script::Latency;
use script::Script;

/// Counters a test can read.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub streams_started: AtomicU64,
    pub streams_completed: AtomicU64,
    /// Streams whose client went away before the end.
    pub streams_cancelled: AtomicU64,
    /// MCP `tools/list` requests served, over every transport.
    pub mcp_list_tools: AtomicU64,
    /// MCP `tools/call` requests served, over every transport (unknown tools and
    /// failing calls included).
    pub mcp_tool_calls: AtomicU64,
    /// Access tokens issued by `/oauth/token`.
    pub oauth_tokens_issued: AtomicU64,
}

#[derive(Clone)]
struct MockState {
    latency: Latency,
    stats: Arc<Stats>,
}

/// The mock's routes: the OpenAI-compatible ones under `/v1`, `/mock/stats`, and
/// the MCP ones of [`mcp::router`].
pub fn router(latency: Latency, stats: Arc<Stats>) -> Router {
    let mcp = mcp::router(stats.clone());
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/responses", post(responses))
        .route("/mock/stats", get(stats_route))
        .with_state(MockState { latency, stats })
        .merge(mcp)
}

/// Serves the mock on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    latency: Latency,
    stats: Arc<Stats>,
) -> std::io::Result<()> {
    // As the gateway does: small writes (SSE chunks, MCP answers) go out at once
    // instead of waiting for the previous one's ACK (Nagle's algorithm).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(latency, stats)).await
}

/// Starts the mock on a free loopback port; returns its base URL (with `/v1`).
pub async fn spawn(latency: Latency) -> std::io::Result<(String, Arc<Stats>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    tokio::spawn(serve(listener, latency, stats.clone()));
    Ok((format!("http://{addr}/v1"), stats))
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": "mock_error", "param": null, "code": null}})),
    )
        .into_response()
}

async fn stats_route(State(state): State<MockState>) -> impl IntoResponse {
    let s = &state.stats;
    axum::Json(json!({
        "requests": s.requests.load(Ordering::SeqCst),
        "streams_started": s.streams_started.load(Ordering::SeqCst),
        "streams_completed": s.streams_completed.load(Ordering::SeqCst),
        "streams_cancelled": s.streams_cancelled.load(Ordering::SeqCst),
        "mcp_list_tools": s.mcp_list_tools.load(Ordering::SeqCst),
        "mcp_tool_calls": s.mcp_tool_calls.load(Ordering::SeqCst),
        "oauth_tokens_issued": s.oauth_tokens_issued.load(Ordering::SeqCst),
    }))
}

async fn models() -> impl IntoResponse {
    axum::Json(json!({"object": "list", "data": [
        {"id": "mock-model", "object": "model", "created": 0, "owned_by": "antwort-mock"},
        {"id": "mock-reasoning", "object": "model", "created": 0, "owned_by": "antwort-mock"},
    ]}))
}

/// Splits text into stream pieces of one word each, spaces kept.
fn pieces(text: &str) -> Vec<String> {
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

fn logprobs_for(piece: &str, top: u64) -> Value {
    let top_logprobs: Vec<Value> = (0..top)
        .map(|i| json!({"token": format!("{piece}{i}"), "logprob": -1.0 - i as f64, "bytes": format!("{piece}{i}").into_bytes()}))
        .collect();
    json!({"content": [{"token": piece, "logprob": -0.5, "bytes": piece.as_bytes(), "top_logprobs": top_logprobs}]})
}

fn usage(script: &Script) -> Value {
    let completion = script
        .text
        .as_deref()
        .map(|t| pieces(t).len() as u64)
        .unwrap_or(0)
        + script.tool_calls.len() as u64;
    let reasoning = script
        .reasoning
        .as_deref()
        .map(|t| pieces(t).len() as u64)
        .unwrap_or(0);
    json!({
        "prompt_tokens": script.prompt_tokens,
        "completion_tokens": completion + reasoning,
        "total_tokens": script.prompt_tokens + completion + reasoning,
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    })
}

fn call_id(index: usize) -> String {
    format!("call_mock_{index}")
}

async fn chat_completions(State(state): State<MockState>, body: Bytes) -> Response {
    state.stats.requests.fetch_add(1, Ordering::SeqCst);
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    };
    if body["model"].as_str().is_none_or(str::is_empty) {
        return error(StatusCode::BAD_REQUEST, "model is required");
    }
    if body["model"] == "missing-model" {
        return error(
            StatusCode::NOT_FOUND,
            "The model `missing-model` does not exist.",
        );
    }
    let script = script::from_chat_request(&body, state.latency);
    if !script.status_delay.is_zero() {
        tokio::time::sleep(script.status_delay).await;
    }
    if let Some(status) = script.stall_error {
        // The status line, then silence: a server that dies while answering.
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let silence = futures::stream::pending::<Result<Bytes, Infallible>>();
        return Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(silence))
            .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "cannot build"));
    }
    if let Some(status) = script.error_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = error(status, &format!("scripted error {}", status.as_u16()));
        if let Some(retry) = script.retry_after.as_deref().and_then(|r| r.parse().ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, retry);
        }
        return response;
    }
    let logprobs = body["logprobs"].as_bool().unwrap_or(false);
    let top_logprobs = body["top_logprobs"].as_u64().unwrap_or(0);
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if body["stream"].as_bool().unwrap_or(false) {
        let include_usage = body["stream_options"]["include_usage"]
            .as_bool()
            .unwrap_or(false);
        return stream_completion(
            state,
            script,
            model,
            logprobs.then_some(top_logprobs),
            include_usage,
        );
    }
    // tokio rounds even a zero sleep up to its next millisecond tick: a mock
    // told to answer at once must not wait.
    if !script.ttft.is_zero() {
        tokio::time::sleep(script.ttft).await;
    }
    let mut message = json!({"role": "assistant", "content": script.text});
    if let Some(reasoning) = &script.reasoning {
        message["reasoning_content"] = json!(reasoning);
    }
    if let Some(refusal) = &script.refusal {
        message["refusal"] = json!(refusal);
    }
    if !script.tool_calls.is_empty() {
        message["tool_calls"] = script
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| json!({"id": call_id(i), "type": "function", "function": {"name": name, "arguments": args}}))
            .collect();
    }
    let mut choice = json!({"index": 0, "message": message, "finish_reason": script.finish_reason});
    if logprobs && let Some(text) = &script.text {
        let content: Vec<Value> = pieces(text)
            .iter()
            .map(|p| logprobs_for(p, top_logprobs)["content"][0].clone())
            .collect();
        choice["logprobs"] = json!({"content": content});
    }
    let mut completion = json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
        "choices": [choice],
    });
    if script.usage {
        completion["usage"] = usage(&script);
    }
    axum::Json(completion).into_response()
}

/// Counts a stream as cancelled if it is dropped before its last chunk.
struct StreamGuard {
    stats: Arc<Stats>,
    completed: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let counter = if self.completed {
            &self.stats.streams_completed
        } else {
            &self.stats.streams_cancelled
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

fn stream_completion(
    state: MockState,
    script: Script,
    model: String,
    logprobs: Option<u64>,
    include_usage: bool,
) -> Response {
    let chunk = |delta: Value, finish: Option<&str>, extra: Option<(&str, Value)>| {
        let mut choice = json!({"index": 0, "delta": delta, "finish_reason": finish});
        if let Some((key, value)) = extra {
            choice[key] = value;
        }
        json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [choice]})
    };
    let mut chunks: Vec<Value> = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        None,
        None,
    )];
    if let Some(reasoning) = &script.reasoning {
        chunks.extend(
            pieces(reasoning)
                .into_iter()
                .map(|p| chunk(json!({"reasoning_content": p}), None, None)),
        );
    }
    if let Some(text) = &script.text
        && script.one_piece
    {
        chunks.push(chunk(json!({"content": text}), None, None));
    } else if let Some(text) = &script.text {
        for piece in pieces(text) {
            let extra = logprobs.map(|top| ("logprobs", logprobs_for(&piece, top)));
            chunks.push(chunk(json!({"content": piece}), None, extra));
        }
    }
    if let Some(refusal) = &script.refusal {
        chunks.extend(
            pieces(refusal)
                .into_iter()
                .map(|p| chunk(json!({"refusal": p}), None, None)),
        );
    }
    for (index, (name, args)) in script.tool_calls.iter().enumerate() {
        chunks.push(chunk(
            json!({"tool_calls": [{"index": index, "id": call_id(index), "type": "function", "function": {"name": name, "arguments": ""}}]}),
            None,
            None,
        ));
        // Arguments arrive in three pieces, as real servers split them.
        let chars: Vec<char> = args.chars().collect();
        let third = chars.len().div_ceil(3).max(1);
        for piece in chars.chunks(third) {
            let piece: String = piece.iter().collect();
            chunks.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                None,
                None,
            ));
        }
    }
    chunks.push(chunk(json!({}), Some(&script.finish_reason), None));
    if include_usage && script.usage {
        // After the finish chunk, as vLLM and OpenAI send it.
        chunks.push(json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [], "usage": usage(&script)}));
    }
    let cut = script.cut_after;
    let hold_after_finish = script.hold_after_finish;
    let total = chunks.len();
    state.stats.streams_started.fetch_add(1, Ordering::SeqCst);
    let guard = StreamGuard {
        stats: state.stats.clone(),
        completed: false,
    };
    let frames = futures::stream::unfold(
        (
            chunks.into_iter().enumerate(),
            guard,
            script.ttft,
            script.token_delay,
        ),
        move |(mut chunks, mut guard, ttft, delay)| async move {
            let (index, chunk) = match chunks.next() {
                Some(next) => next,
                None => {
                    if guard.completed {
                        return None;
                    }
                    guard.completed = true;
                    if hold_after_finish {
                        // Everything sent but `[DONE]`, and the connection held.
                        std::future::pending::<()>().await;
                    }
                    return Some((
                        Ok::<_, Infallible>(Bytes::from_static(b"data: [DONE]\n\n")),
                        (chunks, guard, ttft, delay),
                    ));
                }
            };
            if cut.is_some_and(|n| index >= n) {
                // A cut stream ends without a finish chunk or [DONE]; the guard
                // counts it as completed because the mock chose to end it.
                guard.completed = true;
                drop(guard);
                return None;
            }
            // Chunk 0 opens the message (its role); chunk 1 is the first token,
            // sent with it, so that `ttft` is the time to the first token and not
            // that plus one `delay`. The delay then separates the tokens.
            let wait = match index {
                0 => ttft,
                1 => Duration::ZERO,
                _ if index + 1 < total => delay,
                _ => Duration::ZERO,
            };
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Some((
                Ok(Bytes::from(format!("data: {chunk}\n\n"))),
                (chunks, guard, ttft, delay),
            ))
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(frames))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "cannot build stream"))
}

/// Deterministic embeddings: a normalised vector derived from the text's bytes, so
/// equal texts embed equally and different texts (almost always) differently.
async fn embeddings(State(state): State<MockState>, body: Bytes) -> Response {
    state.stats.requests.fetch_add(1, Ordering::SeqCst);
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    };
    let inputs: Vec<String> = match &body["input"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "input must be a string or an array of strings",
            );
        }
    };
    let dimensions = body["dimensions"].as_u64().unwrap_or(16).clamp(1, 4096) as usize;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": embed(text, dimensions)}))
        .collect();
    let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    axum::Json(json!({
        "object": "list", "data": data, "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response()
}

/// FNV-1a over the text, stretched into `dimensions` values and normalised.
pub fn embed(text: &str, dimensions: usize) -> Vec<f32> {
    let mut vector = Vec::with_capacity(dimensions);
    for i in 0..dimensions {
        let mut hash: u64 = 0xcbf29ce484222325 ^ (i as u64);
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x100000001b3);
        }
        vector.push(((hash >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32);
    }
    let norm = vector
        .iter()
        .map(|v| v * v)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    vector.iter().map(|v| v / norm).collect()
}

/// A stateless Responses endpoint: the input's last text echoed as one message.
async fn responses(State(state): State<MockState>, body: Bytes) -> Response {
    state.stats.requests.fetch_add(1, Ordering::SeqCst);
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    };
    let last_text = match &body["input"] {
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .rev()
            .find_map(|item| match &item["content"] {
                Value::String(text) => Some(text.clone()),
                Value::Array(parts) => parts
                    .iter()
                    .find_map(|p| p["text"].as_str().map(str::to_owned)),
                _ => None,
            })
            .unwrap_or_default(),
        _ => String::new(),
    };
    let text = format!("echo: {last_text}");
    let message = json!({"type": "message", "id": "msg_mock", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]});
    let response = json!({"id": "resp_mock", "object": "response", "created_at": 0, "status": "completed",
        "model": body["model"], "output": [message],
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2,
                  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}});
    if !body["stream"].as_bool().unwrap_or(false) {
        return axum::Json(response).into_response();
    }
    let events = [
        json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_mock", "object": "response", "status": "in_progress", "output": []}}),
        json!({"type": "response.output_text.delta", "sequence_number": 1, "item_id": "msg_mock", "output_index": 0, "content_index": 0, "delta": text}),
        json!({"type": "response.completed", "sequence_number": 2, "response": response}),
    ];
    let body: String = events
        .iter()
        .map(|e| {
            format!(
                "event: {}\ndata: {e}\n\n",
                e["type"].as_str().unwrap_or_default()
            )
        })
        .collect();
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}
