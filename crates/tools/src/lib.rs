//! Server-side tools the engine runs in its agentic loop. Today: MCP servers.
//!
//! [`McpClient`] implements the engine's [`McpConnector`] seam: it lists and
//! calls tools on MCP servers over Streamable HTTP (through rmcp) or the older
//! HTTP+SSE transport (hand-written here, since rmcp no longer ships it), keeps
//! initialized sessions for reuse, authenticates with request headers or OAuth
//! client credentials, and guards the servers a request names by URL with an
//! outbound [`UrlPolicy`] (the egress guard of `antwort-egress`).
//!
//! [`McpConnector`]: antwort_engine::mcp::McpConnector

mod client;
mod errors;
mod http;
mod oauth;
mod output;
mod session;
mod settings;
mod sse;

pub use antwort_egress::UrlPolicy;
pub use client::McpClient;
pub use errors::ToolsError;
pub use settings::{McpAuth, McpServerSettings, McpSettings, McpTransport, OAuthClientCredentials};
