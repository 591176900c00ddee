//! The seam between the engine and durable state: what the engine needs stored and
//! read back, in API types, one trait per aggregate ([`ResponseStore`],
//! [`ConversationStore`]; files, vector stores, keys, jobs and event logs join as
//! traits of their own), so that a fake implements only what its test uses.
//! [`Stores`] bundles them for the engine. Implementations (SQLite, PostgreSQL)
//! live in the `store` crate and pass one shared test suite.
//!
//! Every call carries a [`Scope`]: the tenant and owner a stored object belongs to.
//! Until authentication exists, every request has the default scope; isolation is
//! therefore already a filter in every query, not a later migration.

use std::collections::BTreeMap;

use antwort_api::{Conversation, Item, Response};
use std::sync::Arc;

use async_trait::async_trait;

/// Who a request acts for: the tenant and owner (subject) a stored object it
/// creates belongs to, and how far its reads reach. Every query names the
/// tenant; one whose reach is [`Reach::Own`] also names the owner, so a caller
/// never sees another's object (not even that it exists).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub tenant: String,
    pub owner: String,
    pub reach: Reach,
}

/// Which of its tenant's objects a request sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reach {
    /// Only the objects its owner created.
    Own,
    /// Every object of the tenant (tenant admins, and everyone when
    /// authentication is off).
    Tenant,
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            tenant: "default".to_owned(),
            owner: "default".to_owned(),
            reach: Reach::Tenant,
        }
    }
}

impl Scope {
    /// Whether this scope may see an object created in `object` (the scope of
    /// the request that created it).
    pub fn sees(&self, object: &Scope) -> bool {
        self.tenant == object.tenant && (self.reach == Reach::Tenant || self.owner == object.owner)
    }

    /// The owner a query must match, or `""` when any owner of the tenant
    /// matches. Stores bind it as one parameter (`($n = '' OR owner = $n)`), so
    /// the statement is the same for both reaches; an owner is never empty.
    pub fn owner_filter(&self) -> &str {
        match self.reach {
            Reach::Own => &self.owner,
            Reach::Tenant => "",
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

/// Responses: saved when they finish, read back, listed, deleted, and replayed as
/// the context of the next one.
#[async_trait]
pub trait ResponseStore: Send + Sync {
    /// Inserts or replaces a response and its input items, atomically; when the
    /// record names a conversation, its input and output join that conversation
    /// in the same transaction.
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
}

/// Conversations and their items, in the order they were added.
#[async_trait]
pub trait ConversationStore: Send + Sync {
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
}

/// An API key created at run time, as stored: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The public id (`key_...`), used to list and revoke it.
    pub id: String,
    /// Hex SHA-256 of the key.
    pub hash: String,
    /// The key's first characters, to tell keys apart in a list.
    pub prefix: String,
    pub tenant: String,
    pub subject: String,
    /// Scope names; empty means a user's default scopes.
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    pub revoked_at: Option<u64>,
}

/// API keys created at run time (`antwort keys`, the admin API), shared by every
/// replica that uses the same database.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn create_key(&self, key: &StoredKey) -> Result<(), StoreError>;
    /// The key with this hash, revoked or not.
    async fn find_key(&self, hash: &str) -> Result<Option<StoredKey>, StoreError>;
    /// Every key of `tenant` (every key when `None`), newest first.
    async fn list_keys(&self, tenant: Option<&str>) -> Result<Vec<StoredKey>, StoreError>;
    /// Marks the key revoked; false when no such key (of `tenant`, when given) is active.
    async fn revoke_key(&self, tenant: Option<&str>, id: &str, at: u64)
    -> Result<bool, StoreError>;
}

/// MCP approvals that have been acted on, so that one approval request runs
/// its call at most once, whichever fork of a chain answers it.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Records that `approval_request_id` was approved by `response_id`; false
    /// when it already was.
    async fn claim_approval(
        &self,
        scope: &Scope,
        approval_request_id: &str,
        response_id: &str,
    ) -> Result<bool, StoreError>;
}

/// Rate-limit state shared by every replica of one database: fixed one-minute
/// windows per key, and the streams each replica holds open per key.
#[async_trait]
pub trait RateWindowStore: Send + Sync {
    /// Counts one more stream of `key` on `replica` if fewer than `max` are
    /// open across replicas (rows seen since `fresh_since`); false when not.
    async fn open_stream(
        &self,
        key: &str,
        replica: &str,
        max: i64,
        fresh_since: i64,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Counts one stream of `key` on `replica` fewer.
    async fn close_stream(&self, key: &str, replica: &str) -> Result<(), StoreError>;

    /// Marks `replica`'s streams as still open at `now`, and forgets rows with
    /// nothing open or not seen since `stale_before`.
    async fn refresh_streams(
        &self,
        replica: &str,
        now: i64,
        stale_before: i64,
    ) -> Result<(), StoreError>;

    /// Adds `amount` to what `key` used in the window starting at
    /// `window_start` (Unix seconds) and returns the total.
    async fn add_to_window(
        &self,
        key: &str,
        window_start: i64,
        amount: i64,
    ) -> Result<i64, StoreError>;

    /// Forgets windows that started before `before`.
    async fn prune_windows(&self, before: i64) -> Result<(), StoreError>;
}

/// Approvals kept in memory, for stores that keep none (tests' fakes).
#[derive(Default)]
pub struct MemoryApprovals(std::sync::Mutex<std::collections::HashSet<(String, String)>>);

#[async_trait]
impl ApprovalStore for MemoryApprovals {
    async fn claim_approval(
        &self,
        scope: &Scope,
        approval_request_id: &str,
        _: &str,
    ) -> Result<bool, StoreError> {
        let mut claimed = self
            .0
            .lock()
            .map_err(|_| StoreError::Unavailable("approvals lock poisoned".to_owned()))?;
        Ok(claimed.insert((scope.tenant.clone(), approval_request_id.to_owned())))
    }
}

/// Whether the database answers, for `/readyz`.
#[async_trait]
pub trait StoreHealth: Send + Sync {
    async fn check_ready(&self) -> Result<(), StoreError>;
}

/// The stores the engine works with, one per aggregate.
#[derive(Clone)]
pub struct Stores {
    pub responses: Arc<dyn ResponseStore>,
    pub conversations: Arc<dyn ConversationStore>,
    pub approvals: Arc<dyn ApprovalStore>,
    pub health: Arc<dyn StoreHealth>,
}

impl Stores {
    /// One implementation serving every aggregate (the SQL stores).
    pub fn all<S>(store: Arc<S>) -> Self
    where
        S: ResponseStore + ConversationStore + ApprovalStore + StoreHealth + 'static,
    {
        Self {
            responses: store.clone(),
            conversations: store.clone(),
            approvals: store.clone(),
            health: store,
        }
    }

    /// Responses only: conversations are unavailable and the store is taken to
    /// be ready. For tests whose fake knows responses and nothing else.
    pub fn responses_only(responses: Arc<dyn ResponseStore>) -> Self {
        Self {
            responses,
            conversations: Arc::new(NoConversations),
            approvals: Arc::new(MemoryApprovals::default()),
            health: Arc::new(NoConversations),
        }
    }
}

/// Stands in for the conversation store where there is none.
struct NoConversations;

fn no_conversations() -> StoreError {
    StoreError::Unavailable("this deployment keeps no conversations".to_owned())
}

#[async_trait]
impl StoreHealth for NoConversations {
    async fn check_ready(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl ConversationStore for NoConversations {
    async fn create_conversation(
        &self,
        _: &Scope,
        _: &Conversation,
        _: &[Item],
    ) -> Result<(), StoreError> {
        Err(no_conversations())
    }

    async fn get_conversation(
        &self,
        _: &Scope,
        _: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        Err(no_conversations())
    }

    async fn update_conversation(
        &self,
        _: &Scope,
        _: &str,
        _: &BTreeMap<String, String>,
    ) -> Result<Option<Conversation>, StoreError> {
        Err(no_conversations())
    }

    async fn delete_conversation(&self, _: &Scope, _: &str) -> Result<bool, StoreError> {
        Err(no_conversations())
    }

    async fn add_conversation_items(
        &self,
        _: &Scope,
        _: &str,
        _: &[Item],
    ) -> Result<bool, StoreError> {
        Err(no_conversations())
    }

    async fn list_conversation_items(
        &self,
        _: &Scope,
        _: &str,
        _: &ListQuery,
    ) -> Result<Option<Page<Item>>, StoreError> {
        Err(no_conversations())
    }

    async fn get_conversation_item(
        &self,
        _: &Scope,
        _: &str,
        _: &str,
    ) -> Result<Option<Item>, StoreError> {
        Err(no_conversations())
    }

    async fn delete_conversation_item(
        &self,
        _: &Scope,
        _: &str,
        _: &str,
    ) -> Result<bool, StoreError> {
        Err(no_conversations())
    }

    async fn load_conversation(&self, _: &Scope, _: &str) -> Result<Option<Vec<Item>>, StoreError> {
        Err(no_conversations())
    }
}
