//! The MCP client's settings: plain data that the binary's configuration maps
//! onto (the key names follow the Go antwort's `mcp.servers[]`), with the
//! defaults in one place. Secrets (header values, client secrets) never appear
//! in `Debug` output.

use std::collections::BTreeMap;
use std::time::Duration;

use antwort_egress::UrlPolicy;

/// Everything [`McpClient`](crate::McpClient) needs.
#[derive(Debug, Clone)]
pub struct McpSettings {
    /// Servers the operator defined; a request names one by its `server_label`
    /// and no URL.
    pub servers: Vec<McpServerSettings>,
    /// How long to wait for a TCP (and TLS) connection to an MCP server or a
    /// token endpoint. Default 10 s.
    pub connect_timeout: Duration,
    /// The whole of listing a server's tools, including connecting and the
    /// `initialize` handshake when no session is open yet. Default 30 s.
    pub list_timeout: Duration,
    /// The whole of one tool call, including connecting and `initialize` when no
    /// session is open yet. Default 60 s.
    pub call_timeout: Duration,
    /// One OAuth token request. Default 30 s.
    pub token_timeout: Duration,
    /// A call's output is cut to this many bytes (at a character boundary) and a
    /// note says how much was left out. Default 100 000.
    pub max_output_bytes: usize,
    /// How long a configured server's tool list is reused. Per-request servers'
    /// lists are not cached here. Default 5 minutes.
    pub tools_cache_ttl: Duration,
    /// An MCP session unused for this long is closed. Default 5 minutes.
    pub session_idle_timeout: Duration,
    /// At most this many open sessions; beyond it, the least recently used one
    /// is closed. Default 256.
    pub max_sessions: usize,
    /// Which per-request server URLs may be reached.
    pub policy: UrlPolicy,
}

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            list_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(60),
            token_timeout: Duration::from_secs(30),
            max_output_bytes: 100_000,
            tools_cache_ttl: Duration::from_secs(5 * 60),
            session_idle_timeout: Duration::from_secs(5 * 60),
            max_sessions: 256,
            policy: UrlPolicy::default(),
        }
    }
}

/// An MCP server the operator defined (`mcp.servers[]`).
#[derive(Clone, PartialEq, Eq)]
pub struct McpServerSettings {
    /// The label requests use for it.
    pub name: String,
    pub url: String,
    pub transport: McpTransport,
    /// Sent with every request to this server (for example a static
    /// `Authorization` header). Secrets: never logged.
    pub headers: BTreeMap<String, String>,
    pub auth: McpAuth,
}

impl McpServerSettings {
    /// A Streamable HTTP server without headers or authentication.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            transport: McpTransport::default(),
            headers: BTreeMap::new(),
            auth: McpAuth::None,
        }
    }
}

impl std::fmt::Debug for McpServerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values carry credentials; only their names may be shown.
        f.debug_struct("McpServerSettings")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("transport", &self.transport)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("auth", &self.auth)
            .finish()
    }
}

/// How to speak to a configured server (`transport: streamable-http | sse`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum McpTransport {
    /// Streamable HTTP (protocol revision 2025-03-26 and later).
    #[default]
    StreamableHttp,
    /// The older HTTP+SSE transport (protocol revision 2024-11-05).
    Sse,
}

/// How the gateway authenticates to a configured server. A static token is
/// simply a header (`auth.type: static` maps to [`McpAuth::None`] plus an
/// `Authorization` header).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum McpAuth {
    #[default]
    None,
    /// OAuth 2.0 client credentials (RFC 6749 section 4.4): the gateway fetches a
    /// bearer token and renews it before it expires.
    OAuthClientCredentials(OAuthClientCredentials),
}

/// The client-credentials grant's parameters (`auth.type:
/// oauth_client_credentials`).
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthClientCredentials {
    pub token_url: String,
    pub client_id: String,
    /// Sent in the form body (`client_secret_post`). Never logged.
    pub client_secret: String,
    /// Sent space-separated as `scope` when not empty.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for OAuthClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClientCredentials")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let mut server = McpServerSettings::new("s", "https://mcp.example.com/mcp");
        server
            .headers
            .insert("authorization".into(), "Bearer hunter2".into());
        server.auth = McpAuth::OAuthClientCredentials(OAuthClientCredentials {
            token_url: "https://auth.example.com/token".into(),
            client_id: "antwort".into(),
            client_secret: "s3cret".into(),
            scopes: vec!["tools".into()],
        });
        let shown = format!("{server:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("authorization"), "{shown}");
    }
}
