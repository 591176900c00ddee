//! Stored responses: `GET`, `DELETE` and listing of `/v1/responses`, and the input
//! items of one response, in the OpenAI list shape with cursor pagination.

use antwort_api::{ApiError, ErrorCode, Include, Item, Response};
use antwort_engine::Scope;
use antwort_engine::store::{ListQuery, Order, Page};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde::Serialize;
use serde_json::json;

use crate::AppState;
use crate::error::HttpError;

/// `{"object": "list", "data": [...], "first_id", "last_id", "has_more"}`.
#[derive(Serialize)]
pub struct List<T> {
    object: &'static str,
    data: Vec<T>,
    first_id: Option<String>,
    last_id: Option<String>,
    has_more: bool,
}

fn list<T>(page: Page<T>, id: impl Fn(&T) -> Option<String>) -> List<T> {
    List {
        object: "list",
        first_id: page.data.first().and_then(&id),
        last_id: page.data.last().and_then(&id),
        has_more: page.has_more,
        data: page.data,
    }
}

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

/// The query string of a list call: pagination, `include[]`, and the filters
/// `model`, `status` and `metadata[KEY]=VALUE`.
fn list_query(raw: Option<&str>, filters: bool) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery {
        limit: 20,
        order: Order::Desc,
        ..ListQuery::default()
    };
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let (key, value) = (key.into_owned(), value.into_owned());
        match key.as_str() {
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid("limit", "limit must be an integer from 1 to 100")
                    })?;
            }
            "order" => {
                query.order = match value.as_str() {
                    "asc" => Order::Asc,
                    "desc" => Order::Desc,
                    _ => return Err(ApiError::invalid("order", "order must be `asc` or `desc`")),
                }
            }
            "after" => query.after = Some(value),
            "before" => query.before = Some(value),
            "include" | "include[]" => check_include(&value)?,
            "model" if filters => query.model = Some(value),
            "status" if filters => query.status = Some(value),
            _ if filters && key.starts_with("metadata[") && key.ends_with(']') => {
                let name = &key["metadata[".len()..key.len() - 1];
                query.metadata.push((name.to_owned(), value));
            }
            _ => {
                return Err(ApiError::new(
                    ErrorCode::UnknownParameter,
                    format!("Unrecognized query parameter: {key}"),
                )
                .with_param(key));
            }
        }
    }
    if query.after.is_some() && query.before.is_some() {
        return Err(ApiError::invalid(
            "before",
            "use `after` or `before`, not both",
        ));
    }
    Ok(query)
}

fn check_include(value: &str) -> Result<(), ApiError> {
    serde_json::from_value::<Include>(json!(value))
        .map(|_| ())
        .map_err(|_| {
            ApiError::invalid("include", format!("`{value}` is not a known include value"))
        })
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
