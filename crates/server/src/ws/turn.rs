//! One turn on a WebSocket: authenticated and admitted again (as an HTTP
//! request would be), started on the engine, and its events sent to the
//! client, each waiting for room in the connection's bounded send buffer, so
//! that a client that reads slowly slows its own generation.

use std::sync::{Arc, OnceLock};

use antwort_api::{
    ApiError, CreateResponseRequest, ErrorCode, EventData, ResponseStatus, StreamEvent,
};
use antwort_auth::{AuditEvent, AuditKind, Permission};
use antwort_engine::{Cancel, CreateOptions, Prior};
use axum::extract::ws::Message;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::connection::Session;
use super::lane::LaneKey;
use super::message::{error_text, event_text};

/// What a turn hands back to its lane when it ends.
pub struct TurnEnd {
    pub lane: LaneKey,
    /// The response it continued from the lane's memory, if any.
    pub continued: Option<String>,
    /// What the lane remembers now: this response, unstored and concluded.
    pub remembered: Option<Prior>,
    /// The engine refused it, or it ended `failed`.
    pub failed: bool,
    /// Its context grew past what a lane remembers.
    pub outgrown: bool,
}

pub struct Turn {
    pub lane: LaneKey,
    pub request: Box<CreateResponseRequest>,
    pub prior: Option<Prior>,
    pub continued: Option<String>,
    pub response_id: Arc<OnceLock<String>>,
    pub cancel: Cancel,
    pub warm_up: bool,
}

impl Turn {
    /// Runs the turn. How it ended goes to `ended` before its last message
    /// goes to the client, so that a client that answers at once finds its
    /// lane free.
    pub async fn run(
        self,
        session: Arc<Session>,
        out: mpsc::Sender<Message>,
        ended: mpsc::Sender<TurnEnd>,
    ) {
        let stream_id = self.lane.clone();
        let stream_id = stream_id.as_deref();
        let (end, last) = self.events(&session, &out).await;
        if let Some(Last::Refused(error)) = &last {
            tracing::info!(
                code = error.code.as_str(),
                param = error.param.as_deref(),
                stream_id,
                "websocket error sent to the client"
            );
        }
        let texts = last.map(|last| last.texts(stream_id)).unwrap_or_default();
        // Room for the last messages is taken before the lane is freed, so
        // that nothing a next turn sends can go out ahead of them.
        let permits = match texts.len() {
            0 => None,
            n => out.reserve_many(n).await.ok(),
        };
        let _ = ended.send(end).await;
        if let Some(permits) = permits {
            for (permit, message) in permits.zip(texts) {
                permit.send(text(message));
            }
        }
    }

    /// Everything but the last message, and that message.
    async fn events(
        self,
        session: &Session,
        out: &mpsc::Sender<Message>,
    ) -> (TurnEnd, Option<Last>) {
        let Turn {
            lane,
            request,
            prior,
            continued,
            response_id,
            cancel,
            warm_up,
        } = self;
        let stream_id = lane.clone();
        let stream_id = stream_id.as_deref();
        let mut end = TurnEnd {
            lane,
            continued: None,
            remembered: None,
            failed: false,
            outgrown: false,
        };
        let slot = match admit(session, &request).await {
            Ok(slot) => slot,
            // Not the engine's refusal: what the lane remembers stays.
            Err(error) => return (end, Some(Last::Refused(error))),
        };
        end.continued = continued;
        let keep_context = request.store == Some(false);
        let options = CreateOptions {
            client: session.caller.client,
            metering: crate::routes::responses::meter(&session.state, &session.caller),
            prior,
            keep_context,
            cancel: Some(cancel),
            warm_up,
        };
        let started = session
            .state
            .engine
            .create_with(&session.caller.scope, *request, options)
            .await;
        let mut started = match started {
            Ok(started) => started,
            Err(error) => {
                // Cancelled or shut down before it began: not a failure of
                // the continuation, which stays remembered.
                end.failed = !matches!(error.code, ErrorCode::Cancelled | ErrorCode::ShuttingDown);
                return (end, Some(Last::Refused(error)));
            }
        };
        let context = started.context.take();
        let mut events = started.events().shared();
        let mut terminal = None;
        // A failure's `error` event goes out with its `response.failed`.
        let mut failure = None;
        while let Some(event) = events.next().await {
            if let EventData::Created { response } = &event.data {
                let _ = response_id.set(response.id.clone());
            }
            if event.data.terminal_response().is_some() {
                terminal = Some(event);
                continue;
            }
            if matches!(event.data, EventData::Error { .. }) {
                failure = Some(event);
                continue;
            }
            let Some(message) = event_text(&event, stream_id) else {
                continue;
            };
            if out.send(text(message)).await.is_err() {
                // The connection is gone: stored work goes on without it.
                return (end, None);
            }
        }
        drop(slot);
        let Some(terminal) = terminal else {
            return (end, None);
        };
        if let Some(response) = terminal.data.terminal_response() {
            end.failed = response.status == ResponseStatus::Failed;
            let concluded = matches!(
                response.status,
                ResponseStatus::Completed | ResponseStatus::Incomplete
            ) && !response.store;
            if concluded && let Some(mut items) = context {
                items.extend(response.output.iter().cloned());
                // No more than a client could send as one request's input: a
                // socket holds what HTTP would have carried, not more.
                let limit = session.state.config.limits.max_input_items;
                if items.len() <= limit {
                    end.remembered = Some(Prior {
                        response_id: response.id.clone(),
                        items: Arc::new(items),
                    });
                } else {
                    // What the lane held is older than this: of no use now.
                    end.outgrown = true;
                    tracing::info!(
                        items = items.len(),
                        limit,
                        "context past server.max_input_items is not remembered on the socket"
                    );
                }
            }
        }
        (end, Some(Last::Ended { failure, terminal }))
    }
}

/// A turn's last messages: its terminal event (after the `error` event of a
/// failure), or the error that refused it.
enum Last {
    Ended {
        failure: Option<Arc<StreamEvent>>,
        terminal: Arc<StreamEvent>,
    },
    Refused(ApiError),
}

impl Last {
    fn texts(self, stream_id: Option<&str>) -> Vec<String> {
        match self {
            Last::Ended { failure, terminal } => failure
                .iter()
                .chain([&terminal])
                .filter_map(|event| event_text(event, stream_id))
                .collect(),
            Last::Refused(error) => vec![error_text(&error, stream_id)],
        }
    }
}

fn text(message: String) -> Message {
    Message::Text(message.into())
}

/// A turn is a request: its credential is checked again (revoked keys and
/// expired tokens stop here), and it takes a request and a stream from the
/// caller's limits.
async fn admit(
    session: &Session,
    request: &CreateResponseRequest,
) -> Result<antwort_auth::StreamSlot, ApiError> {
    let state = &session.state;
    let identity = state
        .auth
        .authenticate(&session.credentials)
        .await
        .map_err(|error| {
            session.caller.audit(
                state,
                AuditEvent::new(AuditKind::AuthenticationFailed).reason(error.to_string()),
            );
            let code = match error {
                antwort_auth::AuthError::Unavailable(_) => {
                    antwort_api::ErrorCode::StorageUnavailable
                }
                _ => antwort_api::ErrorCode::Unauthenticated,
            };
            ApiError::new(code, error.to_string())
        })?;
    // The credential as it is now: what the route needs, and what the body
    // asks beyond it, as `POST /v1/responses` checks them.
    for (needed, asked) in [
        (Permission::ResponsesWrite, true),
        (
            Permission::ConversationsWrite,
            request.conversation.is_some(),
        ),
    ] {
        if asked && !identity.may(needed) {
            return Err(crate::access::missing_scope(&identity, needed));
        }
    }
    let refused = |refusal: antwort_auth::Refusal| {
        session.caller.audit(
            state,
            AuditEvent::new(AuditKind::RateLimited)
                .reason(format!("{} per {}", refusal.limit, refusal.level)),
        );
        crate::access::rate_limit_error(&refusal)
    };
    state.auth.limits.admit(&identity).await.map_err(refused)?;
    state
        .auth
        .limits
        .stream_slot(&identity)
        .await
        .map_err(refused)
}
