//! Inference backends, each behind the engine's `Backend` seam: the Chat
//! Completions translation ([`ChatBackend`]), which puts any OpenAI-compatible
//! server behind the Responses API, and the native Responses passthrough
//! ([`ResponsesBackend`]) for servers that speak the Responses API themselves,
//! used statelessly. Both share the HTTP plumbing (one deadline per request,
//! classified errors, `Retry-After`), the SSE reading with bounded silences,
//! per-model options ([`ModelOptions`]) for what models accept differently,
//! and, where configured, the server's own token counts (vLLM's
//! `POST /tokenize`, `BackendConfig::tokenize`).

pub mod chat;
mod http;
mod options;
pub mod resilience;
pub mod responses;
mod stream;
mod tokenize;

pub use chat::{ChatBackend, ChatBackendConfig};
pub use http::BackendConfig;
pub use http::normalize_base_url;
pub use options::ModelOptions;
pub use resilience::{ResilienceSettings, Resilient};
pub use responses::{ResponsesBackend, ResponsesBackendConfig};
pub use stream::{MAX_EVENT_BYTES, Translated};
