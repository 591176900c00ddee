//! Black-box tests: the real server in front of the real mock backend, driven over
//! HTTP and SSE, every response object and streamed event validated against the
//! OpenResponses schema.

#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn, time and read rows directly; the funnels are for the product code"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a panic is the failure report"
)]

mod harness;

mod backends;
mod codex_tools;
mod context;
mod conversations;
mod crash;
mod errors;
mod faults;
mod hostile_input;
mod input;
mod jwt;
mod mcp;
mod operations;
mod property;
mod resilience;
mod secrets;
mod security;
mod socket;
mod storage;
mod streaming;
mod token_counts;
mod translation;
mod websocket;
mod websocket_limits;
