//! Stored responses: `GET`, `DELETE` and listing of `/v1/responses`, and the input
//! items of one response, in the OpenAI list shape with cursor pagination.

use antwort_api::{ApiError, ErrorCode, Item, Response};
use antwort_auth::{AuditEvent, AuditKind};
use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::json;

use super::listing::{List, check_include, list, list_query};
use crate::AppState;
use crate::error::HttpError;
use crate::extract::{Caller, PathIds};

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(id): PathIds<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Response>, HttpError> {
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "include" | "include[]" => check_include(&value)?,
            // Streamed replay (`stream=true&starting_after=N`) is not built yet.
            other => {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedParameter,
                    format!("Query parameter `{other}` is not supported on this endpoint"),
                )
                .with_param(other.to_owned())
                .into());
            }
        }
    }
    Ok(Json(state.engine.get_response(&caller.scope, &id).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(id): PathIds<String>,
) -> Result<Json<serde_json::Value>, HttpError> {
    state.engine.delete_response(&caller.scope, &id).await?;
    caller.audit(&state, AuditEvent::new(AuditKind::Deleted).object(&id));
    Ok(Json(
        json!({"id": id, "object": "response", "deleted": true}),
    ))
}

pub async fn list_responses(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<List<Response>>, HttpError> {
    let query = list_query(raw.as_deref(), true)?;
    let page = state.engine.list_responses(&caller.scope, &query).await?;
    Ok(Json(list(page, |r| Some(r.id.clone()))))
}

pub async fn input_items(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(id): PathIds<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<List<Item>>, HttpError> {
    let query = list_query(raw.as_deref(), false)?;
    let page = state
        .engine
        .list_input_items(&caller.scope, &id, &query)
        .await?;
    Ok(Json(list(page, |item| item.id().map(str::to_owned))))
}

/// `GET /v1/responses`: a WebSocket upgrade opens WebSocket mode
/// ([`crate::ws`]); any other request lists the stored responses.
pub async fn list_or_upgrade(
    state: State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    upgrade: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
    raw: RawQuery,
) -> Result<axum::response::Response, HttpError> {
    use axum::response::IntoResponse;
    match upgrade {
        Ok(upgrade) => crate::ws::upgrade(state.0, caller, &headers, upgrade).await,
        // Asked for an upgrade, but not a valid one: say so, not list.
        Err(rejection) if headers.contains_key(axum::http::header::UPGRADE) => Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!(
                "The WebSocket upgrade is invalid: {}",
                rejection.body_text()
            ),
        )
        .into()),
        Err(_) => Ok(list_responses(state, caller, raw).await?.into_response()),
    }
}
