//! This crate's own error (settings that cannot work) and the one place that
//! turns rmcp's, reqwest's and the SSE transport's failures into the engine's
//! [`McpError`]. Messages name causes (connection refused, HTTP status, JSON-RPC
//! error), never URLs with their query strings, headers or tokens.

use std::error::Error as StdError;

use antwort_engine::mcp::McpError;
use rmcp::ServiceError;
use rmcp::service::ClientInitializeError;
use rmcp::transport::streamable_http_client::StreamableHttpError;

use crate::sse::SseError;
use antwort_egress::AddressDenied;

/// JSON-RPC "internal error": the code for answers that are not MCP at all.
const INTERNAL_ERROR: i64 = -32603;

/// Why an [`McpClient`](crate::McpClient) cannot be built from its settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolsError {
    /// A setting is invalid; the message names it.
    #[error("invalid MCP settings: {0}")]
    Settings(String),
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the MCP HTTP client: {0}")]
    Http(String),
}

/// A failed `initialize` handshake (or the connection before it).
pub(crate) fn from_init(error: ClientInitializeError) -> McpError {
    match error {
        ClientInitializeError::TransportError { error, .. } => from_transport(error.error.as_ref()),
        ClientInitializeError::JsonRpcError(data) => McpError::Protocol {
            code: i64::from(data.code.0),
            message: data.message.into_owned(),
        },
        ClientInitializeError::ConnectionClosed(_) => McpError::Unreachable(
            "the MCP server closed the connection during the initialize handshake".to_owned(),
        ),
        other => McpError::Protocol {
            code: INTERNAL_ERROR,
            message: format!("the initialize handshake failed: {other}"),
        },
    }
}

/// A failed request on an initialized session.
pub(crate) fn from_service(error: ServiceError) -> McpError {
    match error {
        ServiceError::McpError(data) => McpError::Protocol {
            code: i64::from(data.code.0),
            message: data.message.into_owned(),
        },
        ServiceError::TransportSend(error) => from_transport(error.error.as_ref()),
        ServiceError::TransportClosed => {
            McpError::Unreachable("the connection to the MCP server closed".to_owned())
        }
        ServiceError::Timeout { timeout } => {
            McpError::Timeout(format!("no answer within {timeout:?}"))
        }
        other => McpError::Protocol {
            code: INTERNAL_ERROR,
            message: other.to_string(),
        },
    }
}

/// A transport failure, whichever transport it came from.
pub(crate) fn from_transport(error: &(dyn StdError + Send + Sync + 'static)) -> McpError {
    if let Some(denied) = find::<AddressDenied>(error) {
        return McpError::Denied(denied.0.clone());
    }
    if let Some(error) = error.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
        return from_streamable(error);
    }
    if let Some(error) = error.downcast_ref::<SseError>() {
        return from_sse(error);
    }
    if let Some(error) = find::<reqwest::Error>(error) {
        return from_reqwest(error);
    }
    if find::<std::io::Error>(error).is_some() {
        return McpError::Unreachable(root_cause(error));
    }
    McpError::Protocol {
        code: INTERNAL_ERROR,
        message: error.to_string(),
    }
}

fn from_streamable(error: &StreamableHttpError<reqwest::Error>) -> McpError {
    match error {
        StreamableHttpError::Client(error) => from_reqwest(error),
        StreamableHttpError::HttpStatus(status) => McpError::Http {
            status: status.status,
            message: "the MCP server answered with an error status".to_owned(),
        },
        StreamableHttpError::AuthRequired(_) => McpError::Http {
            status: 401,
            message: "the MCP server requires authorization".to_owned(),
        },
        StreamableHttpError::InsufficientScope(_) => McpError::Http {
            status: 403,
            message: "the token's scope is not sufficient".to_owned(),
        },
        StreamableHttpError::SessionExpired => McpError::Http {
            status: 404,
            message: "the MCP session expired".to_owned(),
        },
        StreamableHttpError::UnexpectedServerResponse(message) => {
            // rmcp keeps other error statuses only in this message, as
            // "HTTP 404 Not Found: <body>".
            match http_status_in(message) {
                Some((status, rest)) => McpError::Http {
                    status,
                    message: rest.to_owned(),
                },
                None => McpError::Protocol {
                    code: INTERNAL_ERROR,
                    message: message.to_string(),
                },
            }
        }
        StreamableHttpError::Io(error) => McpError::Unreachable(error.to_string()),
        StreamableHttpError::Sse(error) => {
            McpError::Unreachable(format!("the SSE stream failed: {error}"))
        }
        StreamableHttpError::TransportChannelClosed => {
            McpError::Unreachable("the connection to the MCP server closed".to_owned())
        }
        other => McpError::Protocol {
            code: INTERNAL_ERROR,
            message: other.to_string(),
        },
    }
}

/// `"HTTP 405 Method Not Allowed: body"` → `(405, "Method Not Allowed: body")`.
fn http_status_in(message: &str) -> Option<(u16, &str)> {
    let rest = message.strip_prefix("HTTP ")?;
    let digits = rest.get(..3)?;
    let status = digits
        .parse::<u16>()
        .ok()
        .filter(|s| (100..600).contains(s))?;
    let rest = rest[3..].trim();
    Some((status, if rest.is_empty() { "no message" } else { rest }))
}

fn from_sse(error: &SseError) -> McpError {
    match error {
        SseError::Status { status, message } => McpError::Http {
            status: *status,
            message: if message.is_empty() {
                "the MCP server answered with an error status".to_owned()
            } else {
                message.clone()
            },
        },
        SseError::Http(error) => from_reqwest(error),
        SseError::Protocol(message) => McpError::Protocol {
            code: INTERNAL_ERROR,
            message: message.clone(),
        },
        SseError::EventTooLarge => McpError::Protocol {
            code: INTERNAL_ERROR,
            message: error.to_string(),
        },
    }
}

/// An HTTP client failure: denied by the policy, not answered in time, not
/// connected, or an error status.
pub(crate) fn from_reqwest(error: &reqwest::Error) -> McpError {
    if let Some(denied) = find::<AddressDenied>(error) {
        return McpError::Denied(denied.0.clone());
    }
    if error.is_timeout() {
        McpError::Timeout(root_cause(error))
    } else if let Some(status) = error.status() {
        McpError::Http {
            status: status.as_u16(),
            message: status.canonical_reason().unwrap_or("error").to_owned(),
        }
    } else if error.is_connect() || error.is_request() || error.is_body() {
        McpError::Unreachable(root_cause(error))
    } else {
        McpError::Protocol {
            code: INTERNAL_ERROR,
            message: root_cause(error),
        }
    }
}

/// The first error of type `T` in `error`'s source chain (itself included).
fn find<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// reqwest's top-level message is generic and names the URL (whose query may
/// hold a secret); the innermost cause (connection refused, DNS failure) is what
/// an operator needs.
fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// The MCP server refused the credentials (so a fresh OAuth token may help).
pub(crate) fn is_unauthorized(error: &McpError) -> bool {
    matches!(error, McpError::Http { status: 401, .. })
}

/// The session's connection is gone (so a fresh session may help); not a
/// timeout, which may mean the server is still working on the request.
pub(crate) fn is_connection_lost(error: &McpError) -> bool {
    matches!(error, McpError::Unreachable(_))
}

/// The answer of a Streamable HTTP `initialize` that means "not Streamable
/// HTTP here", after which the MCP specification's backwards-compatibility
/// section says to try the older SSE transport.
pub(crate) fn suggests_sse(error: &McpError) -> bool {
    matches!(
        error,
        McpError::Http {
            status: 400 | 404 | 405,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_from_rmcp_messages() {
        assert_eq!(
            http_status_in("HTTP 405 Method Not Allowed: "),
            Some((405, "Method Not Allowed:"))
        );
        assert_eq!(
            http_status_in("HTTP 404 Not Found: nothing here"),
            Some((404, "Not Found: nothing here"))
        );
        assert_eq!(http_status_in("unexpected end"), None);
        assert_eq!(http_status_in("HTTP 9"), None);
    }
}
