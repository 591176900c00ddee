//! The seam between the engine and durable state: what the engine needs stored and
//! read back, in API types. Implementations (SQLite, PostgreSQL) live in the `store`
//! crate and pass one shared test suite.
//!
//! Every call carries a [`Scope`]: the tenant and owner a stored object belongs to.
//! Until authentication exists, every request has the default scope; isolation is
//! therefore already a filter in every query, not a later migration.

use std::collections::BTreeMap;

use antwort_api::{Conversation, Item, Response};
use async_trait::async_trait;

/// Who a stored object belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub tenant: String,
    pub owner: String,
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            tenant: "default".to_owned(),
            owner: "default".to_owned(),
        }
    }
}

/// A finished response to persist: the object the client sees, the input items it
/// was given (each with an id), in order, and the conversation it joins. The
/// response itself is kept only when `response.store` is true; a conversation gets
/// the input and output items either way, in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub response: Response,
    pub input: Vec<Item>,
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    Asc,
    #[default]
    Desc,
}

/// Cursor pagination and filters of a list call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListQuery {
    /// Items after this id, in list order.
    pub after: Option<String>,
    /// Items before this id, in list order.
    pub before: Option<String>,
    /// At most this many (the API caps it at 100).
    pub limit: u32,
    pub order: Order,
    pub model: Option<String>,
    pub status: Option<String>,
    /// Every pair must match the object's metadata.
    pub metadata: Vec<(String, String)>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Inserts or replaces a response and its input items, atomically.
    async fn save_response(&self, scope: &Scope, record: StoredResponse) -> Result<(), StoreError>;

    async fn get_response(&self, scope: &Scope, id: &str) -> Result<Option<Response>, StoreError>;

    /// True when something was deleted.
    async fn delete_response(&self, scope: &Scope, id: &str) -> Result<bool, StoreError>;

    async fn list_responses(
        &self,
        scope: &Scope,
        query: &ListQuery,
    ) -> Result<Page<Response>, StoreError>;

    /// `None` when the response does not exist in this scope.
    async fn list_input_items(
        &self,
        scope: &Scope,
        response_id: &str,
        query: &ListQuery,
    ) -> Result<Option<Page<Item>>, StoreError>;

    /// The conversation that ends with `response_id`: for each response of the chain,
    /// oldest first, its input items then its output items. Loaded in a number of
    /// queries that does not grow with the chain. `None` when the response does not
    /// exist in this scope.
    async fn load_chain(
        &self,
        scope: &Scope,
        response_id: &str,
    ) -> Result<Option<Vec<Item>>, StoreError>;

    /// Stored items (input or output of any response in this scope) by id; ids that
    /// match nothing are left out.
    async fn get_items(&self, scope: &Scope, ids: &[String]) -> Result<Vec<Item>, StoreError>;

    /// Creates a conversation with its first items.
    async fn create_conversation(
        &self,
        scope: &Scope,
        conversation: &Conversation,
        items: &[Item],
    ) -> Result<(), StoreError>;

    async fn get_conversation(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<Conversation>, StoreError>;

    /// Replaces the metadata; `None` when the conversation does not exist.
    async fn update_conversation(
        &self,
        scope: &Scope,
        id: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Option<Conversation>, StoreError>;

    /// Deletes the conversation and its items; true when something was deleted.
    async fn delete_conversation(&self, scope: &Scope, id: &str) -> Result<bool, StoreError>;

    /// Appends items; false when the conversation does not exist.
    async fn add_conversation_items(
        &self,
        scope: &Scope,
        id: &str,
        items: &[Item],
    ) -> Result<bool, StoreError>;

    /// `None` when the conversation does not exist.
    async fn list_conversation_items(
        &self,
        scope: &Scope,
        id: &str,
        query: &ListQuery,
    ) -> Result<Option<Page<Item>>, StoreError>;

    /// `None` when the conversation or the item does not exist.
    async fn get_conversation_item(
        &self,
        scope: &Scope,
        id: &str,
        item_id: &str,
    ) -> Result<Option<Item>, StoreError>;

    /// True when the item was deleted.
    async fn delete_conversation_item(
        &self,
        scope: &Scope,
        id: &str,
        item_id: &str,
    ) -> Result<bool, StoreError>;

    /// Every item of the conversation, oldest first; `None` when it does not exist.
    async fn load_conversation(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<Vec<Item>>, StoreError>;

    /// Succeeds when the store answers.
    async fn check_ready(&self) -> Result<(), StoreError>;
}
