//! `POST /v1/responses`: parse at the edge, start the engine, and hand the one event
//! stream to the view the client asked for (SSE, or the final JSON object).

use antwort_api::{ApiError, CompactRequest, CreateResponseRequest, ErrorCode, ResponseStatus};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::HttpError;
use crate::extract::{Caller, JsonBody};
use crate::sse::sse_response;

/// Header naming the hosted tools a request listed that were not offered to the model.
pub const SKIPPED_TOOLS_HEADER: &str = "x-antwort-skipped-tools";

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateResponseRequest>,
) -> Result<Response, HttpError> {
    let stream = request.stream.unwrap_or(false);
    let started = state
        .engine
        .create_for(&caller.scope, request, caller.client)
        .await?;
    let skipped = started.skipped_tools.join(",");
    let events = started.events();
    let mut response = if stream {
        sse_response(events.shared(), state.config.keepalive_interval).into_response()
    } else {
        let response = events.into_response().await?;
        if response.status == ResponseStatus::Failed {
            let error = response.error.unwrap_or(antwort_api::ResponseError {
                code: ErrorCode::BackendError.as_str().to_owned(),
                message: "generation failed".to_owned(),
            });
            // The response failed after the backend accepted it: answer with the
            // status of what failed (the backend, or the store).
            let code = ErrorCode::from_code(&error.code).unwrap_or(ErrorCode::BackendError);
            tracing::warn!(
                code = error.code,
                "response failed after the backend accepted it"
            );
            return Err(ApiError::new(code, error.message).into());
        }
        (StatusCode::OK, axum::Json(response)).into_response()
    };
    if !skipped.is_empty()
        && let Ok(value) = HeaderValue::from_str(&skipped)
    {
        response.headers_mut().insert(SKIPPED_TOOLS_HEADER, value);
    }
    Ok(response)
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
    Ok((StatusCode::OK, axum::Json(compaction)).into_response())
}
