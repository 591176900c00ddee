//! `POST /v1/responses`: parse at the edge, start the engine, and hand the one event
//! stream to the view the client asked for (SSE, or the final JSON object).

use antwort_api::{
    ApiError, CompactRequest, CreateResponseRequest, ErrorCode, EventData, ResponseStatus,
    StreamEvent,
};
use antwort_auth::{AuditEvent, AuditKind, Permission};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::AppState;
use crate::error::HttpError;
use crate::extract::{Caller, JsonBody};
use crate::sse::{sse_response, sse_response_opened};

/// Header naming the hosted tools a request listed that were not offered to the model.
pub const SKIPPED_TOOLS_HEADER: &str = "x-antwort-skipped-tools";

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateResponseRequest>,
) -> Result<Response, HttpError> {
    if request.conversation.is_some() {
        caller.require(Permission::ConversationsWrite)?;
    }
    if request.stream.unwrap_or(false) {
        return create_streaming(state, caller, request).await;
    }
    let metering = meter(&state, &caller);
    let started = state
        .engine
        .create_for(&caller.scope, request, caller.client, metering)
        .await?;
    let skipped = started.skipped_tools.join(",");
    let response = started.events().into_response().await?;
    if response.status == ResponseStatus::Failed {
        return Err(failed_after_start(response).into());
    }
    Ok(with_skipped_tools(
        (StatusCode::OK, axum::Json(response)).into_response(),
        &skipped,
    ))
}

/// A streamed create. While the backend has not answered, nothing can be
/// said yet, and a backend failure is still the HTTP status; once that takes
/// a keepalive interval, the stream starts anyway, with keepalive comments, so
/// that the client and every proxy between see bytes, and a failure before the
/// response began arrives as the stream's `error` event.
async fn create_streaming(
    state: AppState,
    caller: Caller,
    request: CreateResponseRequest,
) -> Result<Response, HttpError> {
    let keepalive = state.config.keepalive_interval;
    let slot = match state.auth.limits.stream_slot(&caller.identity).await {
        Ok(slot) => slot,
        Err(refusal) => {
            caller.audit(
                &state,
                AuditEvent::new(AuditKind::RateLimited)
                    .reason(format!("{} per {}", refusal.limit, refusal.level)),
            );
            return Ok(crate::access::rate_limited(&refusal));
        }
    };
    let engine = state.engine.clone();
    let scope = caller.scope.clone();
    let metering = meter(&state, &caller);
    let client = caller.client;
    let mut starting =
        Box::pin(async move { engine.create_for(&scope, request, client, metering).await });
    // The slot is held by the stream the client reads: a stream that ends, or
    // whose client leaves, gives it back (stored work may go on, uncounted).
    let metered =
        move |events: futures::stream::BoxStream<'static, std::sync::Arc<StreamEvent>>| {
            events.inspect(move |_| {
                // Moved in here, the slot lives as long as the stream does.
                let _held = &slot;
            })
        };
    match tokio::time::timeout(keepalive, &mut starting).await {
        Ok(started) => {
            let started = started?;
            let skipped = started.skipped_tools.join(",");
            let events = metered(started.events().shared().boxed());
            Ok(with_skipped_tools(
                sse_response(events, keepalive).into_response(),
                &skipped,
            ))
        }
        Err(_) => {
            let events = futures::stream::once(starting).flat_map(|started| match started {
                Ok(started) => started.events().shared().left_stream(),
                Err(error) => futures::stream::once(async move {
                    std::sync::Arc::new(StreamEvent {
                        sequence_number: 0,
                        data: EventData::Error {
                            error: error.body().error,
                        },
                    })
                })
                .right_stream(),
            });
            Ok(sse_response_opened(metered(events.boxed()), keepalive, true).into_response())
        }
    }
}

/// A non-streamed response that failed after the backend accepted it: the
/// status of what failed (the backend, or the store), and the id of the
/// response, which is stored as failed when it was to be stored.
fn failed_after_start(response: antwort_api::Response) -> ApiError {
    let error = response.error.unwrap_or(antwort_api::ResponseError {
        code: ErrorCode::BackendError.as_str().to_owned(),
        message: "generation failed".to_owned(),
    });
    let code = ErrorCode::from_code(&error.code).unwrap_or(ErrorCode::BackendError);
    tracing::warn!(
        code = error.code,
        response_id = %response.id,
        "response failed after the backend accepted it"
    );
    // A response whose save failed is not stored: it is named only when it is.
    let stored = response.store && code != ErrorCode::StorageUnavailable;
    let message = if stored {
        format!(
            "{} (response {} is stored with status `failed`)",
            error.message, response.id
        )
    } else {
        error.message
    };
    let error = ApiError::new(code, message);
    if stored {
        error.with_response_id(response.id)
    } else {
        error
    }
}

/// Charges a response's tokens to its caller's limits when it concludes,
/// whether or not the client is still reading.
pub(crate) fn meter(state: &AppState, caller: &Caller) -> Option<antwort_engine::UsageMeter> {
    if state.auth.limits.counts_tokens() {
        let (auth, identity) = (state.auth.clone(), caller.identity.clone());
        Some(std::sync::Arc::new(move |usage: &antwort_api::Usage| {
            auth.limits.charge_tokens(&identity, usage.total_tokens);
        }))
    } else {
        None
    }
}

fn with_skipped_tools(mut response: Response, skipped: &str) -> Response {
    if !skipped.is_empty()
        && let Ok(value) = HeaderValue::from_str(skipped)
    {
        response.headers_mut().insert(SKIPPED_TOOLS_HEADER, value);
    }
    response
}

/// `POST /v1/responses/input_tokens`: the input tokens the same body would take.
pub async fn input_tokens(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateResponseRequest>,
) -> Result<Response, HttpError> {
    let input_tokens = state
        .engine
        .count_input_tokens(&caller.scope, request)
        .await?;
    let answer =
        serde_json::json!({"object": "response.input_tokens", "input_tokens": input_tokens});
    Ok((StatusCode::OK, axum::Json(answer)).into_response())
}

/// `POST /v1/responses/compact`: the input summarised into one compaction item.
pub async fn compact(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CompactRequest>,
) -> Result<Response, HttpError> {
    let compaction = state.engine.compact(&caller.scope, request).await?;
    state
        .auth
        .limits
        .charge_tokens(&caller.identity, compaction.usage.total_tokens);
    Ok((StatusCode::OK, axum::Json(compaction)).into_response())
}
