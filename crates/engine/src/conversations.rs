//! Conversations as the API serves them: create, read, update, delete, and their
//! items, with ids, checks, the stored form of items and the not-found errors
//! in one place. Handlers call these and never a store.

use std::collections::BTreeMap;

use antwort_api::{
    ApiError, Conversation, ConversationObject, ErrorCode, Input, Item, normalize_items,
    validate_metadata,
};

use crate::error::{changed, found, store_error};
use crate::store::{ListQuery, Page, Scope};
use crate::{Engine, clock, ids};

/// The OpenAI API takes at most this many items per call.
const MAX_ITEMS_PER_CALL: usize = 20;

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

/// Checks items sent to a conversation, gives them ids and puts them in their
/// stored form.
fn prepare_items(input: Option<Input>) -> Result<Vec<Item>, ApiError> {
    let mut items = match input {
        None => Vec::new(),
        Some(Input::Items(items)) => items,
        Some(Input::Text(_)) => {
            return Err(ApiError::invalid(
                "items",
                "items must be an array of items",
            ));
        }
    };
    if items.len() > MAX_ITEMS_PER_CALL {
        return Err(ApiError::invalid(
            "items",
            format!(
                "at most {MAX_ITEMS_PER_CALL} items can be added at once, got {}",
                items.len()
            ),
        ));
    }
    antwort_api::check_item_ids("items", &items)?;
    for (index, item) in items.iter().enumerate() {
        if matches!(item, Item::ItemReference(_) | Item::Compaction(_)) {
            return Err(ApiError::unsupported(
                format!("items[{index}]"),
                "item references and compaction items cannot be added to a conversation",
            ));
        }
    }
    ids::assign_item_ids(&mut items);
    normalize_items(&mut items);
    Ok(items)
}

/// Refuses new items whose ids (`(index, id)` in the request's `param`) the
/// conversation already holds: its items are addressed by id.
pub(crate) fn check_new_ids(
    held: &[Item],
    new_ids: &[(usize, String)],
    param: &str,
) -> Result<(), ApiError> {
    if new_ids.is_empty() {
        return Ok(());
    }
    let held: std::collections::HashSet<&str> = held.iter().filter_map(Item::id).collect();
    match new_ids.iter().find(|(_, id)| held.contains(id.as_str())) {
        Some((index, id)) => Err(antwort_api::duplicate_item(
            &format!("{param}[{index}].id"),
            id,
        )),
        None => Ok(()),
    }
}

impl Engine {
    /// `POST /v1/conversations`.
    pub async fn create_conversation(
        &self,
        scope: &Scope,
        items: Option<Input>,
        metadata: Option<BTreeMap<String, String>>,
    ) -> Result<Conversation, ApiError> {
        let metadata = metadata.unwrap_or_default();
        validate_metadata(&metadata)?;
        let items = prepare_items(items)?;
        let conversation = Conversation {
            id: ids::conversation_id(),
            object: ConversationObject::Conversation,
            created_at: clock::unix_now(),
            metadata,
        };
        self.stores
            .conversations
            .create_conversation(scope, &conversation, &items)
            .await
            .map_err(store_error)?;
        Ok(conversation)
    }

    /// `GET /v1/conversations/{id}`.
    pub async fn get_conversation(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Conversation, ApiError> {
        let conversation = self.stores.conversations.get_conversation(scope, id);
        found(conversation.await, || not_found(id))
    }

    /// `POST /v1/conversations/{id}`: replaces the metadata.
    pub async fn update_conversation(
        &self,
        scope: &Scope,
        id: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Conversation, ApiError> {
        validate_metadata(metadata)?;
        let updated = self
            .stores
            .conversations
            .update_conversation(scope, id, metadata);
        found(updated.await, || not_found(id))
    }

    /// `DELETE /v1/conversations/{id}`.
    pub async fn delete_conversation(&self, scope: &Scope, id: &str) -> Result<(), ApiError> {
        let deleted = self.stores.conversations.delete_conversation(scope, id);
        changed(deleted.await, || not_found(id))
    }

    /// `POST /v1/conversations/{id}/items`: the items as added.
    pub async fn add_conversation_items(
        &self,
        scope: &Scope,
        id: &str,
        items: Input,
    ) -> Result<Vec<Item>, ApiError> {
        let items = prepare_items(Some(items))?;
        let held = self.stores.conversations.load_conversation(scope, id);
        let held = found(held.await, || not_found(id))?;
        let new_ids: Vec<(usize, String)> = items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| Some((index, item.id()?.to_owned())))
            .collect();
        check_new_ids(&held, &new_ids, "items")?;
        let added = self
            .stores
            .conversations
            .add_conversation_items(scope, id, &items);
        changed(added.await, || not_found(id))?;
        Ok(items)
    }

    /// `GET /v1/conversations/{id}/items`, in the stored form.
    pub async fn list_conversation_items(
        &self,
        scope: &Scope,
        id: &str,
        query: &ListQuery,
    ) -> Result<Page<Item>, ApiError> {
        let listed = self
            .stores
            .conversations
            .list_conversation_items(scope, id, query);
        let mut page = found(listed.await, || not_found(id))?;
        normalize_items(&mut page.data);
        Ok(page)
    }

    /// `GET /v1/conversations/{id}/items/{item_id}`, in the stored form.
    pub async fn get_conversation_item(
        &self,
        scope: &Scope,
        id: &str,
        item_id: &str,
    ) -> Result<Item, ApiError> {
        // A missing conversation and a missing item are different answers.
        self.get_conversation(scope, id).await?;
        let stored = self
            .stores
            .conversations
            .get_conversation_item(scope, id, item_id);
        let mut item = found(stored.await, || item_not_found(item_id))?;
        item.normalize();
        Ok(item)
    }

    /// `DELETE /v1/conversations/{id}/items/{item_id}`: answers with the
    /// conversation, as the OpenAI API does.
    pub async fn delete_conversation_item(
        &self,
        scope: &Scope,
        id: &str,
        item_id: &str,
    ) -> Result<Conversation, ApiError> {
        let conversation = self.get_conversation(scope, id).await?;
        let deleted = self
            .stores
            .conversations
            .delete_conversation_item(scope, id, item_id);
        changed(deleted.await, || item_not_found(item_id))?;
        Ok(conversation)
    }
}
