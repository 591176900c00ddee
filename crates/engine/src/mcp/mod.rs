//! MCP in the engine: the seam to MCP servers ([`McpConnector`]: list a server's
//! tools, call one; the `tools` crate implements it over real transports, the
//! engine never speaks MCP) and MCP as a server-side tool type ([`McpType`],
//! through the kind-neutral seam of `crate::tool`).

mod declared;
mod tools;

use std::collections::BTreeMap;

use async_trait::async_trait;

pub use declared::mcp_tool_name;
pub use tools::McpType;

/// An MCP server as a request names it: a per-request server with a URL, or a
/// server defined in the configuration (no URL; the connector knows it by label).
#[derive(Clone, PartialEq, Eq)]
pub struct McpServer {
    /// The request's `server_label`, which is also a configured server's name.
    pub label: String,
    /// Where a per-request server is; `None` for a configured one.
    pub url: Option<String>,
    /// Headers the request asked to send (its `headers`, and `authorization` as a
    /// bearer token). Secrets: never logged, never stored.
    pub headers: BTreeMap<String, String>,
    /// The tenant whose request this is: sessions and cached tool lists are
    /// never shared across tenants.
    pub tenant: String,
}

impl McpServer {
    /// Which server this is, as a short tag that names no secret: a hash of its
    /// address without credentials or query (per-request servers; a stored tag
    /// must not let anyone test guesses at a token offline) or of its
    /// configured name.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let what = match &self.url {
            Some(url) => format!("url:{}", antwort_api::redact_url(url)),
            None => format!("configured:{}", self.label),
        };
        sha2::Sha256::digest(what.as_bytes())[..6]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values carry tokens; only their names may appear in logs.
        f.debug_struct("McpServer")
            .field("label", &self.label)
            .field("url", &self.url.as_deref().map(antwort_api::redact_url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A tool an MCP server offers, in the shape of the `mcp_list_tools` item that
/// lists it.
pub use antwort_api::McpListedTool;

/// What a call returned when the server answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct McpCallResult {
    /// The result's content as text: text parts joined by newlines, other parts as
    /// JSON. Already capped at the configured size.
    pub output: String,
    /// The tool itself reported an error (`isError`); `output` says what.
    pub is_error: bool,
}

/// Why a list or a call did not get an answer from the server.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum McpError {
    /// The outbound URL policy does not allow this server.
    #[error("the MCP server URL is not allowed: {0}")]
    Denied(String),
    /// No configured server has this label, and the request gave no URL.
    #[error("no MCP server is configured under the label '{0}'")]
    UnknownServer(String),
    #[error("the MCP server could not be reached: {0}")]
    Unreachable(String),
    #[error("the MCP server did not answer in time: {0}")]
    Timeout(String),
    /// The server answered with an HTTP error status.
    #[error("the MCP server answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// The server answered with a JSON-RPC error, or something that is not MCP.
    #[error("MCP protocol error {code}: {message}")]
    Protocol { code: i64, message: String },
}

/// Lists and calls MCP tools. One connector serves every request; it may cache
/// sessions, tokens and (for configured servers) tool lists.
#[async_trait]
pub trait McpConnector: Send + Sync {
    /// The tools `server` offers.
    async fn list_tools(&self, server: &McpServer) -> Result<Vec<McpListedTool>, McpError>;

    /// Calls `tool` on `server` with `arguments` (a JSON object).
    async fn call_tool(
        &self,
        server: &McpServer,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> Result<McpCallResult, McpError>;
}

/// A connector for deployments without MCP: every server is unknown.
pub struct NoMcp;

#[async_trait]
impl McpConnector for NoMcp {
    async fn list_tools(&self, server: &McpServer) -> Result<Vec<McpListedTool>, McpError> {
        Err(McpError::UnknownServer(server.label.clone()))
    }

    async fn call_tool(
        &self,
        server: &McpServer,
        _tool: &str,
        _arguments: serde_json::Map<String, serde_json::Value>,
    ) -> Result<McpCallResult, McpError> {
        Err(McpError::UnknownServer(server.label.clone()))
    }
}
