//! The Conversations API in the OpenAI shape: create, get, update, delete, and
//! list / add / get / delete items.

use antwort_api::{
    AddConversationItemsRequest, Conversation, CreateConversationRequest, Item,
    UpdateConversationRequest,
};
use antwort_auth::{AuditEvent, AuditKind};
use antwort_engine::store::Page;
use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Value, json};

use super::listing::{List, list, list_query};
use crate::AppState;
use crate::error::HttpError;
use crate::extract::{Caller, JsonBody, PathIds};

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateConversationRequest>,
) -> Result<Json<Conversation>, HttpError> {
    let conversation = state
        .engine
        .create_conversation(&caller.scope, request.items, request.metadata)
        .await?;
    Ok(Json(conversation))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(id): PathIds<String>,
) -> Result<Json<Conversation>, HttpError> {
    Ok(Json(
        state.engine.get_conversation(&caller.scope, &id).await?,
    ))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(id): PathIds<String>,
    JsonBody(request): JsonBody<UpdateConversationRequest>,
) -> Result<Json<Conversation>, HttpError> {
    let conversation = state
        .engine
        .update_conversation(&caller.scope, &id, &request.metadata)
        .await?;
    Ok(Json(conversation))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(id): PathIds<String>,
) -> Result<Json<Value>, HttpError> {
    state.engine.delete_conversation(&caller.scope, &id).await?;
    caller.audit(&state, AuditEvent::new(AuditKind::Deleted).object(&id));
    Ok(Json(
        json!({"id": id, "object": "conversation.deleted", "deleted": true}),
    ))
}

pub async fn list_items(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(id): PathIds<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<List<Item>>, HttpError> {
    let query = list_query(raw.as_deref(), false)?;
    let page = state
        .engine
        .list_conversation_items(&caller.scope, &id, &query)
        .await?;
    Ok(Json(list(page, |item| item.id().map(str::to_owned))))
}

pub async fn add_items(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(id): PathIds<String>,
    JsonBody(request): JsonBody<AddConversationItemsRequest>,
) -> Result<Json<List<Item>>, HttpError> {
    let items = state
        .engine
        .add_conversation_items(&caller.scope, &id, request.items)
        .await?;
    let page = Page {
        data: items,
        has_more: false,
    };
    Ok(Json(list(page, |item| item.id().map(str::to_owned))))
}

pub async fn get_item(
    State(state): State<AppState>,
    caller: Caller,
    PathIds((id, item_id)): PathIds<(String, String)>,
) -> Result<Json<Item>, HttpError> {
    let item = state
        .engine
        .get_conversation_item(&caller.scope, &id, &item_id)
        .await?;
    Ok(Json(item))
}

/// Deletes an item and answers with the conversation, as the OpenAI API does.
pub async fn delete_item(
    State(state): State<AppState>,
    caller: Caller,
    PathIds((id, item_id)): PathIds<(String, String)>,
) -> Result<Json<Conversation>, HttpError> {
    let conversation = state
        .engine
        .delete_conversation_item(&caller.scope, &id, &item_id)
        .await?;
    caller.audit(
        &state,
        AuditEvent::new(AuditKind::Deleted).object(format!("{id}/{item_id}")),
    );
    Ok(Json(conversation))
}
