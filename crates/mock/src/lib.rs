//! antwort-mock: a scripted OpenAI-compatible backend for tests, demos and
//! benchmarks, scripted by directives in the prompt (see [`script`]). It serves:
//!
//! - `POST /v1/chat/completions`: JSON and SSE;
//! - `POST /v1/responses`: stateless, scripted and reflecting exactly as Chat
//!   does for the same conversation, as a Response object or OpenAI's SSE events
//!   (see [`responses`]);
//! - `GET /v1/models`: the models of [`Control`] with vLLM's `max_model_len`;
//! - `POST /v1/embeddings`: deterministic vectors;
//! - `POST /tokenize`: vLLM's tokenizer endpoint, with a deliberately unreal
//!   tokenizer (one token a word, see [`vllm`]);
//! - `GET /mock/stats`: counters of requests (all, per endpoint, hung and
//!   abandoned) and of streams (started, completed, cancelled: a client that went
//!   away), so that tests can see upstream cancellation;
//! - `GET /mock/last_request`: the last generation request body, or `null`;
//! - `GET`/`POST /mock/control`: the instance controls (see [`control`]):
//!   `fail_next`, `failing`, `retry_after`, `hang`, `models`, `max_model_len`.
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
//!
//! [`start`] runs an instance and returns a [`Mock`] handle with its URLs, its
//! [`Stats`] and its [`Control`]; instances share nothing, so two on two ports
//! are independent.

#![allow(
    clippy::disallowed_methods,
    reason = "a test backend, not the product: it spawns, times and makes ids directly"
)]

mod chat;
pub mod control;
mod embeddings;
mod generation;
pub mod mcp;
pub mod responses;
pub mod script;
mod sse;
pub mod vllm;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub use control::Control;
pub use embeddings::embed;
pub use script::Latency;

/// Counters a test can read, and the last generation request.
#[derive(Debug, Default)]
pub struct Stats {
    /// Chat, Responses and embeddings requests.
    pub requests: AtomicU64,
    pub chat_requests: AtomicU64,
    pub responses_requests: AtomicU64,
    /// `POST /tokenize` requests (not counted in `requests`).
    pub tokenize_requests: AtomicU64,
    /// Generation requests the `hang` control held.
    pub requests_hung: AtomicU64,
    /// Generation requests whose client went away before the status line (during
    /// `[[status_ms:..]]`, a non-streamed `[[ttft_ms:..]]`, or `hang`).
    pub requests_abandoned: AtomicU64,
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
    last_request: Mutex<Option<Value>>,
}

impl Stats {
    /// The body of the last generation request (Chat or Responses) as received,
    /// failed ones included, so that a test can check what the gateway sent.
    pub fn last_request(&self) -> Option<Value> {
        self.last_request
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, body: &Value) {
        *self
            .last_request
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(body.clone());
    }
}

/// How to start an instance with [`start`].
#[derive(Debug, Clone)]
pub struct MockOptions {
    pub latency: Latency,
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// What `/v1/models` lists at first (see [`control::DEFAULT_MODELS`]).
    pub models: Vec<String>,
    /// The context window `/v1/models` and `/tokenize` report at first.
    pub max_model_len: u64,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            latency: Latency::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            models: control::default_models(),
            max_model_len: control::DEFAULT_MAX_MODEL_LEN,
        }
    }
}

/// A running instance: it serves until the runtime that started it ends.
#[derive(Debug, Clone)]
pub struct Mock {
    /// The OpenAI base URL, with `/v1`.
    pub url: String,
    /// The root URL, without `/v1`: `/tokenize`, `/mock/*` and the MCP servers.
    pub root: String,
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    pub control: Arc<Control>,
}

/// Starts an instance on `options.listen` and returns its handle once it
/// accepts connections.
pub async fn start(options: MockOptions) -> std::io::Result<Mock> {
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    let control = Arc::new(Control::new(options.models, options.max_model_len));
    tokio::spawn(serve_with(
        listener,
        options.latency,
        stats.clone(),
        control.clone(),
    ));
    Ok(Mock {
        url: format!("http://{addr}/v1"),
        root: format!("http://{addr}"),
        addr,
        stats,
        control,
    })
}

/// Starts the mock on a free loopback port; returns its base URL (with `/v1`).
pub async fn spawn(latency: Latency) -> std::io::Result<(String, Arc<Stats>)> {
    let mock = start(MockOptions {
        latency,
        ..MockOptions::default()
    })
    .await?;
    Ok((mock.url, mock.stats))
}

#[derive(Clone)]
struct MockState {
    latency: Latency,
    stats: Arc<Stats>,
    control: Arc<Control>,
}

/// The mock's routes with default controls (see [`router_with`]).
pub fn router(latency: Latency, stats: Arc<Stats>) -> Router {
    router_with(latency, stats, Arc::new(Control::default()))
}

/// The mock's routes: the OpenAI-compatible ones under `/v1`, `/tokenize`,
/// `/mock/*`, and the MCP ones of [`mcp::router`].
pub fn router_with(latency: Latency, stats: Arc<Stats>, control: Arc<Control>) -> Router {
    let mcp = mcp::router(stats.clone());
    Router::new()
        .route("/v1/chat/completions", post(chat::route))
        .route("/v1/responses", post(responses::route))
        .route("/v1/models", get(vllm::models))
        .route("/v1/embeddings", post(embeddings::route))
        .route("/tokenize", post(vllm::tokenize))
        .route("/mock/stats", get(stats_route))
        .route("/mock/last_request", get(last_request_route))
        .route(
            "/mock/control",
            get(control::get_route).post(control::post_route),
        )
        .with_state(MockState {
            latency,
            stats,
            control,
        })
        .merge(mcp)
}

/// Serves the mock with default controls on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    latency: Latency,
    stats: Arc<Stats>,
) -> std::io::Result<()> {
    serve_with(listener, latency, stats, Arc::new(Control::default())).await
}

/// Serves the mock on `listener` until the process ends.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    latency: Latency,
    stats: Arc<Stats>,
    control: Arc<Control>,
) -> std::io::Result<()> {
    // As the gateway does: small writes (SSE chunks, MCP answers) go out at once
    // instead of waiting for the previous one's ACK (Nagle's algorithm).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router_with(latency, stats, control)).await
}

/// An error answer in the OpenAI shape.
fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": "mock_error", "param": null, "code": null}})),
    )
        .into_response()
}

async fn stats_route(State(state): State<MockState>) -> impl IntoResponse {
    let s = &state.stats;
    let counters = [
        ("requests", &s.requests),
        ("chat_requests", &s.chat_requests),
        ("responses_requests", &s.responses_requests),
        ("tokenize_requests", &s.tokenize_requests),
        ("requests_hung", &s.requests_hung),
        ("requests_abandoned", &s.requests_abandoned),
        ("streams_started", &s.streams_started),
        ("streams_completed", &s.streams_completed),
        ("streams_cancelled", &s.streams_cancelled),
        ("mcp_list_tools", &s.mcp_list_tools),
        ("mcp_tool_calls", &s.mcp_tool_calls),
        ("oauth_tokens_issued", &s.oauth_tokens_issued),
    ];
    let counters: serde_json::Map<String, Value> = counters
        .into_iter()
        .map(|(name, counter)| (name.to_owned(), json!(counter.load(Ordering::SeqCst))))
        .collect();
    axum::Json(Value::Object(counters))
}

async fn last_request_route(State(state): State<MockState>) -> impl IntoResponse {
    axum::Json(state.stats.last_request())
}
