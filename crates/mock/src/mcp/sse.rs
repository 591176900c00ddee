//! The HTTP+SSE transport of MCP protocol revision 2024-11-05, which many deployed
//! servers still speak and rmcp 3.x no longer ships, written by hand over the same
//! rmcp server handler as `/mcp`.
//!
//! - `GET /sse` opens a session and answers `text/event-stream`. The first event is
//!   `event: endpoint` with data `/sse/message?sessionId=<id>`; after it, every
//!   message of the server (responses, notifications, requests) arrives as one
//!   `event: message` whose data is one JSON-RPC message.
//! - `POST /sse/message?sessionId=<id>` takes one JSON-RPC message (or a batch,
//!   which 2024-11-05 allowed) from the client and answers 202 Accepted; the answer
//!   to it comes on the GET stream. An unknown or closed session is a 404, a body
//!   that is not JSON-RPC a 400, a missing `sessionId` a 400.
//!
//! Each session runs its own `MockMcpServer` through `rmcp::serve_server_with_ct`
//! over a pair of channels (the `(Sink, Stream)` transport). Dropping the GET
//! stream, which is what hyper does when the client goes away, ends the session:
//! its id is forgotten and the server task is cancelled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::serve_server_with_ct;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::MockMcpServer;
use crate::Stats;

/// Messages buffered per direction and session. A client that does not read its
/// GET stream eventually blocks the server, as it would with a real socket.
const CHANNEL_CAPACITY: usize = 64;

type Sessions = Arc<Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>;

#[derive(Clone)]
struct SseState {
    stats: Arc<Stats>,
    sessions: Sessions,
}

/// `GET /sse` and `POST /sse/message`.
pub fn router(stats: Arc<Stats>) -> Router {
    Router::new()
        .route("/sse", get(open))
        .route("/sse/message", post(message))
        .with_state(SseState {
            stats,
            sessions: Sessions::default(),
        })
}

fn lock(
    sessions: &Sessions,
) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>> {
    // A poisoned lock only means a request panicked while holding it; the map is
    // still consistent, so keep serving.
    sessions.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Ends a session when the GET stream that carries it is dropped.
struct SessionGuard {
    sessions: Sessions,
    id: String,
    cancel: CancellationToken,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        lock(&self.sessions).remove(&self.id);
        self.cancel.cancel();
        tracing::debug!(session = %self.id, "MCP SSE session closed");
    }
}

async fn open(
    State(state): State<SseState>,
) -> Sse<impl Stream<Item = Result<Event, axum::Error>>> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let (to_server, from_client) = mpsc::channel(CHANNEL_CAPACITY);
    let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    lock(&state.sessions).insert(id.clone(), to_server);
    let cancel = CancellationToken::new();
    tokio::spawn(run(
        MockMcpServer::new(state.stats.clone()),
        to_client,
        from_client,
        cancel.clone(),
        id.clone(),
    ));
    tracing::debug!(session = %id, "MCP SSE session opened");
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/sse/message?sessionId={id}"));
    let guard = SessionGuard {
        sessions: state.sessions,
        id,
        cancel,
    };
    let messages = from_server.map(move |message| {
        // The closure owns the guard, so the session lives exactly as long as the
        // stream that hyper is writing to the client.
        let _session = &guard;
        Event::default().event("message").json_data(message)
    });
    Sse::new(futures::stream::once(async move { Ok(endpoint) }).chain(messages))
        .keep_alive(KeepAlive::default())
}

/// Runs one session's server until the client goes away or the server ends.
async fn run(
    server: MockMcpServer,
    to_client: mpsc::Sender<ServerJsonRpcMessage>,
    from_client: mpsc::Receiver<ClientJsonRpcMessage>,
    cancel: CancellationToken,
    id: String,
) {
    match serve_server_with_ct(server, (to_client, from_client), cancel).await {
        Ok(running) => {
            let reason = running.waiting().await;
            tracing::debug!(session = %id, ?reason, "MCP SSE server ended");
        }
        Err(error) => {
            tracing::debug!(session = %id, %error, "MCP SSE session ended before initialization");
        }
    }
}

#[derive(Debug, Deserialize)]
struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message})),
    )
        .into_response()
}

/// Reads one JSON-RPC message or a batch of them.
fn parse_messages(body: &[u8]) -> Result<Vec<ClientJsonRpcMessage>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let values = match value {
        Value::Array(values) => values,
        value => vec![value],
    };
    values
        .into_iter()
        .map(|value| {
            serde_json::from_value(value).map_err(|e| format!("not a JSON-RPC message: {e}"))
        })
        .collect()
}

async fn message(
    State(state): State<SseState>,
    query: Result<Query<MessageQuery>, QueryRejection>,
    body: Bytes,
) -> Response {
    let Some(id) = query.ok().and_then(|Query(query)| query.session_id) else {
        return bad_request("the sessionId query parameter is required");
    };
    // Clone the sender so that the lock is not held across the await below.
    let Some(mut sender) = lock(&state.sessions).get(&id).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "unknown session"})),
        )
            .into_response();
    };
    let messages = match parse_messages(&body) {
        Ok(messages) => messages,
        Err(message) => return bad_request(&message),
    };
    for message in messages {
        if sender.send(message).await.is_err() {
            // The server task ended between the lookup and the send.
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "session closed"})),
            )
                .into_response();
        }
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dropping the GET stream forgets the session at once, so that later posts
    /// get a 404. Over a socket this happens whenever hyper notices the client
    /// left, which a test cannot time; here the handler's answer is dropped by
    /// hand.
    #[tokio::test]
    async fn dropping_the_stream_ends_the_session() {
        let state = SseState {
            stats: Arc::default(),
            sessions: Sessions::default(),
        };
        let response = open(State(state.clone())).await.into_response();
        let mut body = response.into_body().into_data_stream();
        let first = body.next().await.unwrap().unwrap();
        let first = String::from_utf8(first.to_vec()).unwrap();
        assert!(
            first.starts_with("event: endpoint\ndata: /sse/message?sessionId="),
            "{first}"
        );
        let id = lock(&state.sessions).keys().next().unwrap().clone();
        assert!(first.contains(&id));

        let ping = Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
        let query = || {
            Ok(Query(MessageQuery {
                session_id: Some(id.clone()),
            }))
        };
        let accepted = message(State(state.clone()), query(), ping.clone()).await;
        assert_eq!(accepted.status(), StatusCode::ACCEPTED);

        drop(body);
        assert!(lock(&state.sessions).is_empty());
        let gone = message(State(state.clone()), query(), ping).await;
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    }
}
