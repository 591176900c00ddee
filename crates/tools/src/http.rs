//! The HTTP clients behind every MCP request: one for configured servers and
//! token endpoints (trusted, written by the operator), one for servers a request
//! names by URL, whose DNS resolver enforces the URL policy on every resolved
//! address. Both are reqwest 0.13, the version rmcp's Streamable HTTP transport
//! is written against, so that the SSE transport and token requests share the
//! same guard and TLS setup.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::Duration;

use antwort_engine::mcp::McpError;
use reqwest013::dns::{Addrs, Name, Resolve, Resolving};
use reqwest013::header::{HeaderName, HeaderValue};

use crate::ToolsError;
use crate::policy::Guard;

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

/// At most this many same-origin redirects are followed per request.
const MAX_REDIRECTS: usize = 5;

/// Both clients, built once per [`McpClient`](crate::McpClient).
#[derive(Debug, Clone)]
pub(crate) struct HttpClients {
    /// Configured servers and token endpoints.
    pub(crate) trusted: reqwest013::Client,
    /// Servers a request names by URL.
    pub(crate) guarded: reqwest013::Client,
}

impl HttpClients {
    pub(crate) fn new(connect_timeout: Duration, guard: Arc<Guard>) -> Result<Self, ToolsError> {
        install_crypto_provider();
        let trusted = builder(connect_timeout)
            .build()
            .map_err(|e| ToolsError::Http(e.to_string()))?;
        let guarded = builder(connect_timeout)
            .dns_resolver(GuardedResolver { guard })
            // A proxy resolves the target itself, out of the guard's sight.
            .no_proxy()
            .build()
            .map_err(|e| ToolsError::Http(e.to_string()))?;
        Ok(Self { trusted, guarded })
    }
}

fn builder(connect_timeout: Duration) -> reqwest013::ClientBuilder {
    reqwest013::Client::builder()
        .connect_timeout(connect_timeout)
        // rmcp's own default: reusing a connection whose previous body was not
        // read to the end stalls on delayed ACKs, and MCP sessions are few.
        .pool_max_idle_per_host(0)
        .tcp_nodelay(true)
        .redirect(same_origin_redirects())
        .user_agent(concat!("antwort/", env!("CARGO_PKG_VERSION")))
}

/// reqwest 0.13 is built without a crypto provider (its default, aws-lc, is a
/// heavy C build); *ring* is already compiled for reqwest 0.12. Installing it
/// fails harmlessly when the process already has a default provider.
fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Follows only 307 and 308 to the same origin: those keep the method and body,
/// and stay on the host the policy already judged. Anything else (another host,
/// or a redirect that would turn a POST into a GET) is returned as the answer,
/// so headers never travel to a host nobody checked.
fn same_origin_redirects() -> reqwest013::redirect::Policy {
    reqwest013::redirect::Policy::custom(|attempt| {
        let keeps_body = matches!(
            attempt.status(),
            reqwest013::StatusCode::TEMPORARY_REDIRECT | reqwest013::StatusCode::PERMANENT_REDIRECT
        );
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !keeps_body || !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// The resolver of the guarded client: it resolves as the system does, then
/// drops every address the policy denies. IP literals never reach a resolver;
/// they are checked before connecting.
struct GuardedResolver {
    guard: Arc<Guard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut allowed: Vec<SocketAddr> = Vec::new();
            let mut denial = None;
            for addr in resolved {
                match guard.check_resolved(&host, addr.ip()) {
                    Ok(()) => allowed.push(addr),
                    Err(reason) => {
                        denial.get_or_insert(reason);
                    }
                }
            }
            if allowed.is_empty() {
                let reason =
                    denial.unwrap_or_else(|| format!("the host '{host}' resolves to no address"));
                tracing::debug!(host = %host, "MCP server address denied by the URL policy");
                return Err(Box::new(AddressDenied(reason)) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Every address a host name resolved to is denied by the URL policy. Found in
/// a connect error's source chain and reported as [`McpError::Denied`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct AddressDenied(pub(crate) String);

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
        assert!(map.contains_key(&reqwest013::header::AUTHORIZATION));
        assert!(format!("{map:?}").contains("Sensitive"));

        let bad = [("x-bad".to_owned(), "line\nbreak".to_owned())];
        assert!(header_map(bad.iter().map(|(k, v)| (k, v))).is_err());
        let bad = [("bad name".to_owned(), "v".to_owned())];
        assert!(header_map(bad.iter().map(|(k, v)| (k, v))).is_err());
    }
}
