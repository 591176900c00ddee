//! Durable state: the engine's stores ([`ResponseStore`], [`ConversationStore`])
//! on SQLite
//! (the embedded default: one local file, WAL, created on first start) and on
//! PostgreSQL (a connection pool shared by any number of replicas).
//!
//! Both run the same SQL (placeholders are `$N`, which both accept) through
//! each dialect's own sqlx driver (`db.rs`); what differs by dialect is small
//! and lives beside the query that needs it. Finished responses are saved by
//! one group-committing writer per store (`writer.rs`), which on SQLite is a
//! thread with its own rusqlite connection. Migrations are versioned files
//! embedded in the binary and run at start.

mod conversations;
mod db;
mod keys;
mod migrations;
mod record;
mod responses;
mod sql;
mod writer;

use antwort_engine::store::StoreError;
pub use sql::SqlStore;

#[cfg(doc)]
use antwort_engine::store::{ConversationStore, ResponseStore};

/// Which database, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// A SQLite file, created when missing.
    Sqlite { path: String },
    /// SQLite in memory: for tests and throwaway runs; gone when the process ends.
    Memory,
    /// A PostgreSQL URL, `postgres://user:password@host:port/database`.
    Postgres { url: String, max_connections: u32 },
}

impl SqlStore {
    /// Connects and runs pending migrations.
    pub async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        sql::SqlStore::connect(config).await
    }
}
