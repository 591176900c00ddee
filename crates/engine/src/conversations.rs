//! Conversations: creating them and adding items, where ids and checks belong to
//! the engine; reads and deletes go straight to the store.

use std::collections::BTreeMap;

use antwort_api::{ApiError, Conversation, ConversationObject, Input, Item, validate_metadata};

use crate::error::store_error;
use crate::store::{Scope, Store};
use crate::{clock, ids};

/// The OpenAI API takes at most this many items per call.
const MAX_ITEMS_PER_CALL: usize = 20;

/// Checks items sent to a conversation and gives them ids.
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
    for (index, item) in items.iter().enumerate() {
        if matches!(item, Item::ItemReference(_) | Item::Compaction(_)) {
            return Err(ApiError::unsupported(
                format!("items[{index}]"),
                "item references and compaction items cannot be added to a conversation",
            ));
        }
    }
    ids::assign_item_ids(&mut items);
    Ok(items)
}

pub async fn create(
    store: &dyn Store,
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
    store
        .create_conversation(scope, &conversation, &items)
        .await
        .map_err(store_error)?;
    Ok(conversation)
}

/// Adds items; `None` when the conversation does not exist.
pub async fn add_items(
    store: &dyn Store,
    scope: &Scope,
    id: &str,
    items: Input,
) -> Result<Option<Vec<Item>>, ApiError> {
    let items = prepare_items(Some(items))?;
    let added = store
        .add_conversation_items(scope, id, &items)
        .await
        .map_err(store_error)?;
    Ok(added.then_some(items))
}
