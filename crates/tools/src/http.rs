//! The HTTP clients behind every MCP request, from the one client stack of
//! `antwort-egress`: one for configured servers and token endpoints (trusted,
//! written by the operator), one for servers a request names by URL, whose DNS
//! resolver enforces the egress guard on every resolved address. rmcp's
//! Streamable HTTP transport, the SSE transport and token requests all use them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use antwort_egress::EgressGuard;
use antwort_engine::mcp::McpError;
use reqwest::header::{HeaderName, HeaderValue};

use crate::ToolsError;

/// Headers the transports set themselves; a caller's value would conflict with
/// theirs (rmcp refuses some of them outright) or describe a body it does not
/// send.
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "connection",
    "content-length",
    "content-type",
    "host",
    "last-event-id",
    "mcp-protocol-version",
    "mcp-session-id",
    "transfer-encoding",
];

/// Both clients, built once per [`McpClient`](crate::McpClient).
#[derive(Debug, Clone)]
pub(crate) struct HttpClients {
    /// Configured servers and token endpoints.
    pub(crate) trusted: reqwest::Client,
    /// Servers a request names by URL.
    pub(crate) guarded: reqwest::Client,
}

impl HttpClients {
    pub(crate) fn new(
        connect_timeout: Duration,
        guard: Arc<EgressGuard>,
    ) -> Result<Self, ToolsError> {
        // rmcp's own default: reusing a connection whose previous body was not
        // read to the end stalls on delayed ACKs, and MCP sessions are few.
        let trusted = antwort_egress::client_builder(connect_timeout)
            .pool_max_idle_per_host(0)
            .redirect(antwort_egress::same_origin_redirects())
            .build()
            .map_err(|e| ToolsError::Http(e.to_string()))?;
        let guarded = antwort_egress::guarded_builder(connect_timeout, guard)
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| ToolsError::Http(e.to_string()))?;
        Ok(Self { trusted, guarded })
    }
}

/// Turns header names and values into HTTP headers, marking values sensitive
/// (so that `Debug` hides them) and leaving out the ones the transports own.
pub(crate) fn header_map<'a>(
    headers: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<HashMap<HeaderName, HeaderValue>, McpError> {
    let mut map = HashMap::new();
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| invalid(name))?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            tracing::debug!(header = %header, "a header the MCP transport sets itself is ignored");
            continue;
        }
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| invalid(name))?;
        value.set_sensitive(true);
        map.insert(header, value);
    }
    Ok(map)
}

fn invalid(name: &str) -> McpError {
    McpError::Protocol {
        // JSON-RPC "invalid request": the request, not the server, is at fault.
        code: -32600,
        message: format!("the header '{name}' is not a valid HTTP header"),
    }
}

/// `Authorization: Bearer <token>`, marked sensitive.
pub(crate) fn bearer(token: &str) -> Result<HeaderValue, McpError> {
    let mut value =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| McpError::Protocol {
            code: -32603,
            message: "the token endpoint issued a token that is not a valid header value"
                .to_owned(),
        })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_map_drops_reserved_and_rejects_invalid() {
        let headers = [
            ("Authorization".to_owned(), "Bearer x".to_owned()),
            ("Accept".to_owned(), "text/html".to_owned()),
            ("Mcp-Session-Id".to_owned(), "abc".to_owned()),
        ];
        let map = header_map(headers.iter().map(|(k, v)| (k, v))).unwrap();
        assert_eq!(map.len(), 1);
        assert!(map.contains_key(&reqwest::header::AUTHORIZATION));
        assert!(format!("{map:?}").contains("Sensitive"));

        let bad = [("x-bad".to_owned(), "line\nbreak".to_owned())];
        assert!(header_map(bad.iter().map(|(k, v)| (k, v))).is_err());
        let bad = [("bad name".to_owned(), "v".to_owned())];
        assert!(header_map(bad.iter().map(|(k, v)| (k, v))).is_err());
    }
}
