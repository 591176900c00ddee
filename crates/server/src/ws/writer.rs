//! The writing half of a WebSocket: drains the connection's bounded send
//! buffer into the socket. A frame the client does not take within the stall
//! time (it stopped reading) ends the writer, and with it the connection: its
//! turns then find the buffer closed and stop waiting. Each text frame written
//! is also proof of a client that reads, which the idle clock counts (pings
//! are not: a dead client's socket takes them for a long while).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::SinkExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// When the writer last handed the client a text frame.
#[derive(Clone)]
pub struct WriteClock(Arc<Mutex<Instant>>);

impl WriteClock {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(antwort_engine::clock::now())))
    }

    pub fn elapsed(&self) -> Duration {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }

    fn tick(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = antwort_engine::clock::now();
    }
}

/// Writes until every sender is gone, a close frame went out, the socket
/// fails, or a frame stalls for `stall`; then closes the socket.
pub async fn write_all(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut pending: mpsc::Receiver<Message>,
    stall: Duration,
    written: WriteClock,
) {
    while let Some(message) = pending.recv().await {
        let closing = matches!(message, Message::Close(_));
        let text = matches!(message, Message::Text(_));
        match tokio::time::timeout(stall, sink.send(message)).await {
            Ok(Ok(())) if text => written.tick(),
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(%error, "websocket write failed");
                return;
            }
            Err(_) => {
                tracing::info!(?stall, "websocket client stopped reading; closing");
                return;
            }
        }
        if closing {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}
