//! One turn on a WebSocket: authenticated and admitted again (as an HTTP
//! request would be), started on the engine, and its events sent to the
//! client, each waiting for room in the connection's bounded send buffer, so
//! that a client that reads slowly slows its own generation.

use std::sync::{Arc, OnceLock};

use antwort_api::{ApiError, CreateResponseRequest, EventData, ResponseStatus};
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
}

pub struct Turn {
    pub lane: LaneKey,
    pub request: Box<CreateResponseRequest>,
    pub prior: Option<Prior>,
    pub continued: Option<String>,
    pub response_id: Arc<OnceLock<String>>,
    pub cancel: Cancel,
}

impl Turn {
    pub async fn run(self, session: Arc<Session>, out: mpsc::Sender<Message>) -> TurnEnd {
        let Turn {
            lane,
            request,
            prior,
            continued,
            response_id,
            cancel,
        } = self;
        let stream_id = lane.as_deref();
        let mut end = TurnEnd {
            lane: lane.clone(),
            continued: None,
            remembered: None,
        };
        let slot = match admit(&session, &request).await {
            Ok(slot) => slot,
            Err(error) => {
                // Not the engine's refusal: what the lane remembers stays.
                let _ = out.send(text(error_text(&error, stream_id))).await;
                return end;
            }
        };
        end.continued = continued;
        let keep_context = request.store == Some(false);
        let options = CreateOptions {
            client: session.caller.client,
            metering: crate::routes::responses::meter(&session.state, &session.caller),
            prior,
            keep_context,
            cancel: Some(cancel),
        };
        let started = session
            .state
            .engine
            .create_with(&session.caller.scope, *request, options)
            .await;
        let mut started = match started {
            Ok(started) => started,
            Err(error) => {
                let _ = out.send(text(error_text(&error, stream_id))).await;
                return end;
            }
        };
        let context = started.context.take();
        let mut events = started.events().shared();
        let mut terminal = None;
        while let Some(event) = events.next().await {
            if let EventData::Created { response } = &event.data {
                let _ = response_id.set(response.id.clone());
            }
            let Some(message) = event_text(&event, stream_id) else {
                continue;
            };
            if event.data.terminal_response().is_some() {
                terminal = Some(event);
            }
            if out.send(text(message)).await.is_err() {
                // The connection is gone: stored work goes on without it.
                return end;
            }
        }
        drop(slot);
        let concluded = terminal.as_ref().and_then(|event| {
            event.data.terminal_response().filter(|response| {
                matches!(
                    response.status,
                    ResponseStatus::Completed | ResponseStatus::Incomplete
                ) && !response.store
            })
        });
        if let (Some(response), Some(mut items)) = (concluded, context) {
            items.extend(response.output.iter().cloned());
            end.remembered = Some(Prior {
                response_id: response.id.clone(),
                items: Arc::new(items),
            });
        }
        end
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
    // What the body asks beyond the route's scope, as `POST /v1/responses` checks it.
    if request.conversation.is_some()
        && !session.caller.identity.may(Permission::ConversationsWrite)
    {
        return Err(crate::access::missing_scope(
            &session.caller.identity,
            Permission::ConversationsWrite,
        ));
    }
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
