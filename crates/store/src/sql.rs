//! `SqlStore`: the engine's stores in SQL, one implementation for SQLite and
//! PostgreSQL (the queries live in `responses.rs` and `conversations.rs`).
//!
//! Every query is scoped by tenant; every value is a bound parameter.

use antwort_engine::store::{ListQuery, Order, Page, StoreError, StoreHealth};
use async_trait::async_trait;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::StoreConfig;
use crate::db::{Db, Row, unavailable};
use crate::migrations;
use crate::record::Value;
use crate::writer::Writer;

/// Numbers in-memory databases, so that two stores in one process never share one.
static MEMORY_STORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub struct SqlStore {
    pub(crate) db: Db,
    /// Saves finished responses, many to a transaction.
    pub(crate) writer: Writer,
}

pub(crate) fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(corrupt)
}

/// The first column of `row`, a JSON text, decoded.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(row: Row) -> Result<T, StoreError> {
    let text = row
        .into_iter()
        .next()
        .ok_or_else(|| corrupt("a row without columns"))?
        .into_text()?;
    from_json(&text)
}

impl SqlStore {
    pub(crate) fn dialect(&self) -> Dialect {
        match self.db {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    pub(crate) async fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        let (db, sqlite_target) = match config {
            StoreConfig::Sqlite { path } => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                (Db::Sqlite(sqlite_pool(options).await?), Some(path.clone()))
            }
            // A named shared-cache memory database, so that every connection sees
            // the same data; it lives as long as one connection is open.
            StoreConfig::Memory => {
                let uri = format!(
                    "file:antwort-{}-{}?mode=memory&cache=shared",
                    std::process::id(),
                    MEMORY_STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                );
                let options: SqliteConnectOptions =
                    format!("sqlite:{uri}").parse().map_err(unavailable)?;
                (Db::Sqlite(sqlite_pool(options).await?), Some(uri))
            }
            StoreConfig::Postgres {
                url,
                max_connections,
            } => {
                let pool = PgPoolOptions::new()
                    .max_connections(*max_connections)
                    .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await
                    .map_err(unavailable)?;
                (Db::Postgres(pool), None)
            }
        };
        migrations::run(&db).await?;
        // After the migrations: the writer's statements need the tables.
        let writer = match (&db, &sqlite_target) {
            (Db::Sqlite(_), Some(target)) => {
                Writer::spawn_sqlite(target, matches!(config, StoreConfig::Sqlite { .. }))?
            }
            (Db::Postgres(pool), _) => Writer::spawn_postgres(pool.clone()),
            (Db::Sqlite(_), None) => {
                return Err(StoreError::Unavailable(
                    "a SQLite store needs a file or memory target".to_owned(),
                ));
            }
        };
        Ok(Self { db, writer })
    }

    /// A condition on one metadata key, in this dialect; binds `$key` then `$value`.
    pub(crate) fn metadata_condition(&self, key: usize, value: usize) -> String {
        match self.dialect() {
            Dialect::Sqlite => format!("json_extract(metadata, ${key}) = ${value}"),
            Dialect::Postgres => format!("(metadata::jsonb ->> ${key}) = ${value}"),
        }
    }

    pub(crate) fn metadata_key(&self, key: &str) -> String {
        match self.dialect() {
            // A JSON path with the key quoted, so that dots and spaces in keys are literal.
            Dialect::Sqlite => format!("$.\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\"")),
            Dialect::Postgres => key.to_owned(),
        }
    }
}

/// How long a request waits for a PostgreSQL connection. sqlx's 30 s default
/// held every storing request (and `/readyz`) that long during a database
/// outage before its 503; a pool that is merely busy hands a connection over in
/// milliseconds, so five seconds tells the two apart.
const PG_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// WAL lets readers run beside the writer; NORMAL sync keeps every committed
/// write across a process crash (only power loss can lose the last ones); the
/// busy timeout queues writers.
async fn sqlite_pool(options: SqliteConnectOptions) -> Result<sqlx::SqlitePool, StoreError> {
    let options = options
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(std::time::Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(8)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await
        .map_err(unavailable)
}

#[async_trait]
impl StoreHealth for SqlStore {
    async fn check_ready(&self) -> Result<(), StoreError> {
        self.db.ping().await
    }
}

/// Where a page starts and which way it runs, from `after`/`before` and `order`.
pub(crate) struct Window {
    /// SQL comparison against the cursor: `>` or `<`.
    pub comparison: &'static str,
    /// SQL order to read rows in.
    pub read_order: &'static str,
    /// True when rows were read against the list order and must be reversed.
    pub reverse: bool,
    pub cursor: Option<String>,
}

pub(crate) fn window(query: &ListQuery) -> Window {
    let ascending = query.order == Order::Asc;
    match (&query.after, &query.before) {
        (_, Some(before)) => Window {
            comparison: if ascending { "<" } else { ">" },
            read_order: if ascending { "DESC" } else { "ASC" },
            reverse: true,
            cursor: Some(before.clone()),
        },
        (after, None) => Window {
            comparison: if ascending { ">" } else { "<" },
            read_order: if ascending { "ASC" } else { "DESC" },
            reverse: false,
            cursor: after.clone(),
        },
    }
}

pub(crate) fn page<T>(mut rows: Vec<T>, limit: u32, reverse: bool) -> Page<T> {
    let limit = limit as usize;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    if reverse {
        rows.reverse();
    }
    Page {
        data: rows,
        has_more,
    }
}

/// Decodes the first column of every row from JSON.
pub(crate) fn decode_all<T: serde::de::DeserializeOwned>(
    rows: Vec<Row>,
) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(json_column).collect()
}

/// `$N` placeholders bound in order, for a query built piece by piece.
#[derive(Default)]
pub(crate) struct Binds(pub Vec<Value>);

impl Binds {
    /// Binds `value` and returns its placeholder number.
    pub(crate) fn push(&mut self, value: impl Into<Value>) -> usize {
        self.0.push(value.into());
        self.0.len()
    }
}
