//! The older HTTP+SSE transport of MCP (protocol revision 2024-11-05), which
//! rmcp no longer ships, as an rmcp [`Transport`]: `GET` the SSE URL; the first
//! `endpoint` event names the URL to `POST` messages to (relative to the SSE
//! URL); every JSON-RPC message from the server, responses included, arrives as
//! a `message` event on the `GET` stream, and a `POST` is only acknowledged.

use std::collections::HashMap;
use std::sync::Arc;

use antwort_egress::sse::SseEvent;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::Url;
use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue};
use rmcp::RoleClient;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;

/// The largest SSE event accepted, as in rmcp's own SSE reader: a server must
/// not make the gateway buffer without bound.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// At most this much of an error answer's body is kept for the message.
const ERROR_BODY_BYTES: usize = 512;

/// Why the SSE transport failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SseError {
    /// The server answered the `GET` or a `POST` with an error status.
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// The server's answer is not the SSE transport.
    #[error("{0}")]
    Protocol(String),
    #[error("an SSE event is larger than {MAX_EVENT_BYTES} bytes")]
    EventTooLarge,
}

type Events = BoxStream<'static, Result<SseEvent, antwort_egress::sse::SseError<reqwest::Error>>>;

/// One SSE session: the open `GET` stream and where to `POST`.
pub(crate) struct SseTransport {
    client: reqwest::Client,
    post_url: Url,
    headers: Arc<HeaderMap>,
    events: Events,
}

impl SseTransport {
    /// Opens the stream and waits for the `endpoint` event. The caller bounds
    /// the wait with its own deadline.
    pub(crate) async fn connect(
        client: reqwest::Client,
        url: Url,
        headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<Self, SseError> {
        let headers: HeaderMap = headers.into_iter().collect();
        let response = client
            .get(url.clone())
            .header(ACCEPT, "text/event-stream")
            .headers(headers.clone())
            .send()
            .await?;
        let response = check_status(response).await?;
        let is_event_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("text/event-stream"));
        if !is_event_stream {
            return Err(SseError::Protocol(
                "the server did not answer with an SSE stream".to_owned(),
            ));
        }
        let mut events: Events =
            antwort_egress::sse::events(response.bytes_stream(), MAX_EVENT_BYTES).boxed();
        let post_url = loop {
            match events.next().await {
                Some(Ok(event)) if event.event == "endpoint" => {
                    break endpoint_url(&url, &event.data)?;
                }
                // Comments and other events before the endpoint carry nothing
                // the handshake needs.
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(stream_error(error)),
                None => {
                    return Err(SseError::Protocol(
                        "the SSE stream ended before naming its message endpoint".to_owned(),
                    ));
                }
            }
        };
        tracing::debug!(path = post_url.path(), "SSE message endpoint received");
        Ok(Self {
            client,
            post_url,
            headers: Arc::new(headers),
            events,
        })
    }
}

/// Resolves the `endpoint` event's URL against the SSE URL. It must stay on the
/// same origin: the session's headers (credentials among them) go to it, and
/// the URL policy judged only the SSE URL's host.
fn endpoint_url(sse_url: &Url, data: &str) -> Result<Url, SseError> {
    let endpoint = sse_url
        .join(data.trim())
        .map_err(|_| SseError::Protocol("the SSE endpoint event does not hold a URL".to_owned()))?;
    if endpoint.origin() != sse_url.origin() {
        return Err(SseError::Protocol(
            "the SSE endpoint event names another origin".to_owned(),
        ));
    }
    Ok(endpoint)
}

async fn check_status(response: reqwest::Response) -> Result<reqwest::Response, SseError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let mut end = body.len().min(ERROR_BODY_BYTES);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    Err(SseError::Status {
        status: status.as_u16(),
        message: body[..end].trim().to_owned(),
    })
}

fn stream_error(error: antwort_egress::sse::SseError<reqwest::Error>) -> SseError {
    match error {
        antwort_egress::sse::SseError::Body(error) => SseError::Http(error),
        antwort_egress::sse::SseError::TooLarge(_) => SseError::EventTooLarge,
    }
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseError;

    fn name() -> std::borrow::Cow<'static, str> {
        "SseTransport".into()
    }

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let client = self.client.clone();
        let url = self.post_url.clone();
        let headers = self.headers.clone();
        async move {
            let response = client
                .post(url)
                .headers((*headers).clone())
                .json(&item)
                .send()
                .await?;
            // The answer to a request comes on the stream; the POST's own body is
            // only an acknowledgement (usually 202 Accepted).
            check_status(response).await.map(drop)
        }
    }

    async fn receive(&mut self) -> Option<ServerJsonRpcMessage> {
        // Cancel-safe: an event is either consumed and handled here, or not
        // taken from the stream at all.
        loop {
            match self.events.next().await? {
                Ok(event) if event.event == "message" => {
                    match serde_json::from_str::<ServerJsonRpcMessage>(&event.data) {
                        Ok(message) => return Some(message),
                        Err(error) => {
                            tracing::warn!(%error, "ignoring an SSE message that is not JSON-RPC");
                        }
                    }
                }
                Ok(_) => continue,
                Err(error) => {
                    tracing::debug!(error = %stream_error(error), "the SSE stream failed");
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // Dropping the transport closes the GET stream; there is nothing to say
        // to the server first.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_is_resolved_and_kept_on_the_origin() {
        let sse = Url::parse("http://127.0.0.1:8080/sse").unwrap();
        let endpoint = endpoint_url(&sse, "/sse/message?sessionId=abc").unwrap();
        assert_eq!(
            endpoint.as_str(),
            "http://127.0.0.1:8080/sse/message?sessionId=abc"
        );
        let endpoint = endpoint_url(&sse, "message?sessionId=abc").unwrap();
        assert_eq!(endpoint.path(), "/message");
        assert!(endpoint_url(&sse, "http://169.254.169.254/latest").is_err());
    }

    #[tokio::test]
    async fn oversized_events_fail_the_stream() {
        let chunks = vec![
            Ok::<_, reqwest::Error>(b"data: small\n\n".to_vec()),
            Ok(vec![b'x'; MAX_EVENT_BYTES + 1]),
        ];
        let mut events =
            antwort_egress::sse::events(futures::stream::iter(chunks), MAX_EVENT_BYTES);
        assert_eq!(events.next().await.unwrap().unwrap().data, "small");
        let error = events.next().await.unwrap().unwrap_err();
        assert!(matches!(stream_error(error), SseError::EventTooLarge));
    }
}
