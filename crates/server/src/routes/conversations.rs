//! The Conversations API in the OpenAI shape: create, get, update, delete, and
//! list / add / get / delete items.

use antwort_api::{
    AddConversationItemsRequest, ApiError, Conversation, CreateConversationRequest, ErrorCode,
    Item, UpdateConversationRequest, parse_json, validate_metadata,
};
use antwort_engine::{Scope, conversations};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};

use super::listing::{List, list, list_query};
use crate::AppState;
use crate::body::read_body;
use crate::error::HttpError;

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("Conversation with id '{id}' not found."),
    )
    .with_param("conversation_id")
}

fn item_not_found(item_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("Item with id '{item_id}' not found."),
    )
    .with_param("item_id")
}

fn store_error(error: antwort_engine::store::StoreError) -> ApiError {
    antwort_engine::error::store_error(error)
}

/// An empty body reads as `{}`: clients create a conversation without a body.
fn body_or_empty(body: &Bytes) -> &[u8] {
    if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    }
}

pub async fn create(
    State(state): State<AppState>,
    body: Body,
) -> Result<Json<Conversation>, HttpError> {
    let body = read_body(body, state.config.max_body_bytes).await?;
    let request: CreateConversationRequest = parse_json(body_or_empty(&body))?;
    let conversation = conversations::create(
        &**state.engine.store(),
        &Scope::default(),
        request.items,
        request.metadata,
    )
    .await?;
    Ok(Json(conversation))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, HttpError> {
    let conversation = state
        .engine
        .store()
        .get_conversation(&Scope::default(), &id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(conversation))
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Conversation>, HttpError> {
    let body = read_body(body, state.config.max_body_bytes).await?;
    let request: UpdateConversationRequest = parse_json(&body)?;
    validate_metadata(&request.metadata)?;
    let conversation = state
        .engine
        .store()
        .update_conversation(&Scope::default(), &id, &request.metadata)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(conversation))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let deleted = state
        .engine
        .store()
        .delete_conversation(&Scope::default(), &id)
        .await
        .map_err(store_error)?;
    if !deleted {
        return Err(not_found(&id).into());
    }
    Ok(Json(
        json!({"id": id, "object": "conversation.deleted", "deleted": true}),
    ))
}

pub async fn list_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<List<Item>>, HttpError> {
    let query = list_query(raw.as_deref(), false)?;
    let page = state
        .engine
        .store()
        .list_conversation_items(&Scope::default(), &id, &query)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(list(page, |item| item.id().map(str::to_owned))))
}

pub async fn add_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<List<Item>>, HttpError> {
    let body = read_body(body, state.config.max_body_bytes).await?;
    let request: AddConversationItemsRequest = parse_json(&body)?;
    let items = conversations::add_items(
        &**state.engine.store(),
        &Scope::default(),
        &id,
        request.items,
    )
    .await?
    .ok_or_else(|| not_found(&id))?;
    Ok(Json(list(
        antwort_engine::store::Page {
            data: items,
            has_more: false,
        },
        |item| item.id().map(str::to_owned),
    )))
}

pub async fn get_item(
    State(state): State<AppState>,
    Path((id, item_id)): Path<(String, String)>,
) -> Result<Json<Item>, HttpError> {
    let store = state.engine.store();
    let scope = Scope::default();
    if store
        .get_conversation(&scope, &id)
        .await
        .map_err(store_error)?
        .is_none()
    {
        return Err(not_found(&id).into());
    }
    let item = store
        .get_conversation_item(&scope, &id, &item_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| item_not_found(&item_id))?;
    Ok(Json(item))
}

/// Deletes an item and answers with the conversation, as the OpenAI API does.
pub async fn delete_item(
    State(state): State<AppState>,
    Path((id, item_id)): Path<(String, String)>,
) -> Result<Json<Conversation>, HttpError> {
    let store = state.engine.store();
    let scope = Scope::default();
    let conversation = store
        .get_conversation(&scope, &id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(&id))?;
    if !store
        .delete_conversation_item(&scope, &id, &item_id)
        .await
        .map_err(store_error)?
    {
        return Err(item_not_found(&item_id).into());
    }
    Ok(Json(conversation))
}
