//! Stored responses: `GET`, `DELETE` and listing of `/v1/responses`, and the input
//! items of one response, in the OpenAI list shape with cursor pagination.

use antwort_api::{ApiError, ErrorCode, Item, Response};
use antwort_engine::Scope;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::json;

use super::listing::{List, check_include, list, list_query};
use crate::AppState;
use crate::error::HttpError;

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("Response with id '{id}' not found."),
    )
    .with_param("response_id")
}

fn store_error(error: antwort_engine::store::StoreError) -> ApiError {
    antwort_engine::error::store_error(error)
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
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
    let response = state
        .engine
        .store()
        .get_response(&Scope::default(), &id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(response))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, HttpError> {
    let deleted = state
        .engine
        .store()
        .delete_response(&Scope::default(), &id)
        .await
        .map_err(store_error)?;
    if !deleted {
        return Err(not_found(&id).into());
    }
    Ok(Json(
        json!({"id": id, "object": "response", "deleted": true}),
    ))
}

pub async fn list_responses(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<List<Response>>, HttpError> {
    let query = list_query(raw.as_deref(), true)?;
    let page = state
        .engine
        .store()
        .list_responses(&Scope::default(), &query)
        .await
        .map_err(store_error)?;
    Ok(Json(list(page, |r| Some(r.id.clone()))))
}

pub async fn input_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<List<Item>>, HttpError> {
    let query = list_query(raw.as_deref(), false)?;
    let page = state
        .engine
        .store()
        .list_input_items(&Scope::default(), &id, &query)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(list(page, |item| item.id().map(str::to_owned))))
}
