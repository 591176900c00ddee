//! The SSE view of a response stream: `event:` equal to the JSON `type`, one JSON
//! object per `data:`, keepalive comments while the stream is silent, and a final
//! `data: [DONE]`.

use std::convert::Infallible;
use std::time::Duration;

use antwort_api::StreamEvent;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};

pub fn sse_response(
    stream: impl Stream<Item = std::sync::Arc<StreamEvent>> + Send + 'static,
    keepalive: Duration,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    sse_response_opened(stream, keepalive, false)
}

/// [`sse_response`], opened with a keepalive comment when `opened` (a stream
/// answered before the response began, whose client has waited already).
pub fn sse_response_opened(
    stream: impl Stream<Item = std::sync::Arc<StreamEvent>> + Send + 'static,
    keepalive: Duration,
    opened: bool,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let opening = opened.then(|| Ok(Event::default().comment("keepalive")));
    let events = futures::stream::iter(opening).chain(
        stream
            .map(|event| {
                let data = match serde_json::to_string(&*event) {
                    Ok(data) => data,
                    Err(error) => {
                        // Our own types always serialize; if one ever does not, say so
                        // in the stream rather than send a malformed event.
                        tracing::error!(%error, "cannot serialize a stream event");
                        return Ok(Event::default().comment("serialization error"));
                    }
                };
                Ok(Event::default().event(event.type_name()).data(data))
            })
            .chain(futures::stream::once(async {
                Ok(Event::default().data("[DONE]"))
            })),
    );
    Sse::new(events).keep_alive(KeepAlive::new().interval(keepalive).text("keepalive"))
}
