//! Every outbound HTTP request antwort makes goes through this crate.
//!
//! [`client_builder`] is the one HTTP client stack (reqwest on rustls with the
//! *ring* provider, verifying against the system's CA certificates, so that a
//! corporate CA added to the system trust store works for backends and tools
//! alike). [`EgressGuard`] is the outbound URL policy for URLs a request names
//! (MCP servers today; search pages, `file_url` and image URLs next): checked on
//! the URL before connecting, and on every address a host name resolves to, in
//! the DNS resolver of [`guarded_builder`]'s clients, so that DNS rebinding
//! cannot get around it. [`sse`] reads the server-sent events of an upstream
//! answer in linear time and within a size bound.

mod client;
mod policy;
pub mod sse;

pub use client::{
    AddressDenied, client_builder, display_url, guarded_builder, redact_url, same_origin_redirects,
};
pub use policy::{EgressGuard, UrlPolicy};
pub use reqwest;

/// Why an egress guard or client cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// An entry of the URL policy is invalid; the message names it.
    #[error("invalid URL policy: {0}")]
    Policy(String),
}
