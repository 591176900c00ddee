//! WebSocket mode on `/v1/responses`: one connection, many turns. Each
//! `response.create` is a turn whose events are the very events SSE would
//! send for the same request (one engine stream, another view of it), with
//! the turn's `stream_id` when it named one.
//!
//! A connection holds lanes ([`connection`]): the default one runs one turn
//! at a time, and each `stream_id` is a lane of its own that runs its turns in
//! order, beside the others. Each lane remembers its most recent unstored
//! response, so that `previous_response_id` continues from memory. The
//! connection keeps its own clocks, since hyper's end at the upgrade: pings
//! with an idle timeout, and a lifetime cap; and on shutdown it ends its turns
//! with their terminal events before it closes ([`Sockets`]).

mod connection;
mod lane;
mod message;
mod turn;
mod writer;

use std::time::Duration;

use antwort_auth::Permission;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::AppState;
use crate::error::HttpError;
use crate::extract::Caller;

pub use message::{ClientMessage, error_text, event_text};

/// The limits of one WebSocket connection.
#[derive(Debug, Clone, Copy)]
pub struct WebSocketSettings {
    /// Off: an upgrade gets a 426, on which Codex CLI falls back to SSE at once.
    pub enabled: bool,
    /// A larger message is an `error` and closes the socket (1009).
    pub max_message_bytes: usize,
    /// A connection's lifetime: then `websocket_connection_limit_reached`
    /// and a clean close, once its running turns have ended.
    pub max_connection_duration: Duration,
    /// How often the server pings.
    pub ping_interval: Duration,
    /// A connection the client has sent nothing on (no pong either) for this
    /// long is closed.
    pub idle_timeout: Duration,
    /// Lanes (`stream_id`s) one connection may hold at once.
    pub max_streams: usize,
    /// Turns one lane may hold waiting behind its running one.
    pub max_queued_per_stream: usize,
    /// Messages buffered for a client that reads slowly; past it, its turns
    /// wait (an unstored one's generation with them).
    pub send_buffer: usize,
}

impl Default for WebSocketSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_message_bytes: 16 * 1024 * 1024,
            // As OpenAI's: a connection lives at most 60 minutes.
            max_connection_duration: Duration::from_secs(60 * 60),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_streams: 16,
            max_queued_per_stream: 8,
            send_buffer: 64,
        }
    }
}

/// The open WebSocket connections, for shutdown: [`Sockets::close`] tells
/// each to take no new turn, end its running ones and close;
/// [`Sockets::closed`] waits until they all have.
#[derive(Clone, Default)]
pub struct Sockets {
    closing: CancellationToken,
    open: TaskTracker,
}

impl Sockets {
    pub fn close(&self) {
        self.closing.cancel();
    }

    pub async fn closed(&self) {
        self.open.close();
        self.open.wait().await;
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }
}

/// The headers a credential travels in, kept to authenticate each turn again
/// (a key revoked or a token expired while the socket is open stops there).
fn credentials(headers: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for name in [axum::http::header::AUTHORIZATION.as_str(), "api-key"] {
        if let Some(value) = headers.get(name) {
            kept.insert(
                axum::http::HeaderName::from_static(if name == "api-key" {
                    "api-key"
                } else {
                    "authorization"
                }),
                value.clone(),
            );
        }
    }
    kept
}

/// `GET /v1/responses` with `Upgrade: websocket`.
pub async fn upgrade(
    state: AppState,
    caller: Caller,
    headers: &HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, HttpError> {
    let settings = state.config.websocket;
    if !settings.enabled {
        return Ok((
            StatusCode::UPGRADE_REQUIRED,
            axum::Json(
                antwort_api::ApiError::new(
                    antwort_api::ErrorCode::UnsupportedParameter,
                    "WebSocket mode is off on this gateway (websocket.enabled); use POST /v1/responses.",
                )
                .body(),
            ),
        )
            .into_response());
    }
    caller.require(Permission::ResponsesWrite)?;
    let session = connection::Session {
        state: state.clone(),
        caller,
        credentials: credentials(headers),
        span: tracing::Span::current(),
    };
    let token = state.sockets.open.token();
    Ok(upgrade
        .max_message_size(settings.max_message_bytes)
        .max_frame_size(settings.max_message_bytes)
        .on_upgrade(move |socket| async move {
            connection::serve(socket, session).await;
            drop(token);
        }))
}
