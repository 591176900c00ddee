//! Inference backends. Today: the Chat Completions translation, which puts any
//! OpenAI-compatible server behind the Responses API. Native Responses passthrough,
//! routing, retry and circuit breaking will live here too.

pub mod chat;

pub use chat::{ChatBackend, ChatBackendConfig};
