//! `SqlStore`: the Store trait in SQL, one implementation for SQLite and PostgreSQL.
//!
//! Every query is scoped by tenant; every value is a bound parameter. A chain of
//! `previous_response_id` links is loaded with one recursive query whatever its
//! depth.

use std::collections::BTreeMap;

use antwort_api::{Conversation, ConversationObject, Item, Response};
use antwort_engine::store::{ListQuery, Order, Page, Scope, Store, StoreError, StoredResponse};
use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

use crate::StoreConfig;
use crate::migrations::migrator;
use crate::record::{self, INPUT, Statement, Value, to_json};
use crate::writer::Writer;

/// A chain longer than this is cut (the oldest links are dropped); it guards the
/// recursive query against a cycle written by hand into the database.
const MAX_CHAIN_DEPTH: i64 = 100_000;

/// Numbers in-memory databases, so that two stores in one process never share one.
static MEMORY_STORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// Saves finished responses, many to a transaction.
    writer: Writer,
}

pub(crate) fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(corrupt)
}

/// Column `index` of `row`: a column of another type, or a missing one, is
/// corrupt data the caller hears of, never a panic.
#[allow(
    clippy::disallowed_methods,
    reason = "the one place that reads a column; try_get does not panic"
)]
fn column<'r, T>(row: &'r sqlx::any::AnyRow, index: usize) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(index).map_err(corrupt)
}

impl SqlStore {
    /// Deletes the row `id` of `parent` in this scope and, if there was one, the
    /// rows of `children` that belong to it, in one transaction.
    async fn delete_with_children(
        &self,
        scope: &Scope,
        id: &str,
        parent: &str,
        children: &str,
        parent_column: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let deleted = sqlx::query(&format!(
            "DELETE FROM {parent} WHERE id = $1 AND tenant = $2"
        ))
        .bind(id)
        .bind(&scope.tenant)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if deleted > 0 {
            sqlx::query(&format!(
                "DELETE FROM {children} WHERE {parent_column} = $1"
            ))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(deleted > 0)
    }

    /// Whether response `id` exists in this scope.
    async fn response_exists(&self, scope: &Scope, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM responses WHERE id = $1 AND tenant = $2")
            .bind(id)
            .bind(&scope.tenant)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(row.is_some())
    }

    pub(crate) async fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        install_default_drivers();
        // `sqlite_target` is what the SQLite writer's own connection opens.
        let (url, dialect, max_connections, sqlite_target) = match config {
            // `mode=rwc` creates the file on first start.
            StoreConfig::Sqlite { path } => (
                format!("sqlite://{path}?mode=rwc"),
                Dialect::Sqlite,
                8,
                Some(path.clone()),
            ),
            // A named shared-cache memory database, so that every connection sees
            // the same data; it lives as long as one connection is open.
            StoreConfig::Memory => {
                let uri = format!(
                    "file:antwort-{}-{}?mode=memory&cache=shared",
                    std::process::id(),
                    MEMORY_STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                );
                (format!("sqlite:{uri}"), Dialect::Sqlite, 8, Some(uri))
            }
            StoreConfig::Postgres {
                url,
                max_connections,
            } => (url.clone(), Dialect::Postgres, *max_connections, None),
        };
        let mut options = AnyPoolOptions::new().max_connections(max_connections);
        if dialect == Dialect::Sqlite {
            options = options
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .after_connect(|connection, _| {
                    Box::pin(async move {
                        // WAL lets readers run beside the writer; NORMAL sync keeps every
                        // committed write across a process crash (only power loss can
                        // lose the last ones); the busy timeout queues writers.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *connection)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *connection)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *connection)
                            .await?;
                        Ok(())
                    })
                });
        }
        let pool = options.connect(&url).await.map_err(unavailable)?;
        migrator(dialect)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrations failed: {e}")))?;
        // After the migrations: the writer's statements need the tables.
        let writer = match &sqlite_target {
            Some(target) => {
                Writer::spawn_sqlite(target, matches!(config, StoreConfig::Sqlite { .. }))?
            }
            None => Writer::spawn_pool(pool.clone()),
        };
        Ok(Self {
            pool,
            dialect,
            writer,
        })
    }

    /// A condition on one metadata key, in this dialect; binds `$key` then `$value`.
    fn metadata_condition(&self, key: usize, value: usize) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("json_extract(metadata, ${key}) = ${value}"),
            Dialect::Postgres => format!("(metadata::jsonb ->> ${key}) = ${value}"),
        }
    }

    fn metadata_key(&self, key: &str) -> String {
        match self.dialect {
            // A JSON path with the key quoted, so that dots and spaces in keys are literal.
            Dialect::Sqlite => format!("$.\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\"")),
            Dialect::Postgres => key.to_owned(),
        }
    }
}

/// Decodes column `column` of every row from JSON.
fn decode_all<T: serde::de::DeserializeOwned>(
    rows: &[sqlx::any::AnyRow],
    column: usize,
) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(|row| from_json(&self::column::<String>(row, column)?))
        .collect()
}

/// Where a page starts and which way it runs, from `after`/`before` and `order`.
struct Window {
    /// SQL comparison against the cursor: `>` or `<`.
    comparison: &'static str,
    /// SQL order to read rows in.
    read_order: &'static str,
    /// True when rows were read against the list order and must be reversed.
    reverse: bool,
    cursor: Option<String>,
}

fn window(query: &ListQuery) -> Window {
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

fn page<T>(mut rows: Vec<T>, limit: u32, reverse: bool) -> Page<T> {
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

type Transaction<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// Runs `statements` in order inside `tx`.
pub(crate) async fn execute(
    tx: &mut Transaction<'_>,
    statements: &[Statement],
) -> Result<(), StoreError> {
    for statement in statements {
        let mut query = sqlx::query(&statement.sql);
        for value in &statement.binds {
            query = match value {
                Value::Text(text) => query.bind(text.as_str()),
                Value::Int(number) => query.bind(*number),
                Value::Null => query.bind(None::<String>),
            };
        }
        query.execute(&mut **tx).await.map_err(unavailable)?;
    }
    Ok(())
}

/// Appends items to a conversation of this scope; false when there is none.
async fn append_items(
    tx: &mut Transaction<'_>,
    scope: &Scope,
    conversation: &str,
    items: &[Item],
) -> Result<bool, StoreError> {
    let exists = sqlx::query("SELECT 1 FROM conversations WHERE id = $1 AND tenant = $2")
        .bind(conversation)
        .bind(&scope.tenant)
        .fetch_optional(&mut **tx)
        .await
        .map_err(unavailable)?;
    if exists.is_none() {
        return Ok(false);
    }
    let statements = record::conversation_items(scope, conversation, items.iter())?;
    execute(tx, &statements).await?;
    Ok(true)
}

fn conversation_from_row(row: &sqlx::any::AnyRow) -> Result<Conversation, StoreError> {
    Ok(Conversation {
        id: column::<String>(row, 0)?,
        object: ConversationObject::Conversation,
        created_at: column::<i64>(row, 1)? as u64,
        metadata: from_json(&column::<String>(row, 2)?)?,
    })
}

#[async_trait]
impl Store for SqlStore {
    async fn save_response(&self, scope: &Scope, record: StoredResponse) -> Result<(), StoreError> {
        self.writer.save(scope, record).await
    }

    async fn get_response(&self, scope: &Scope, id: &str) -> Result<Option<Response>, StoreError> {
        let row = sqlx::query("SELECT body FROM responses WHERE id = $1 AND tenant = $2")
            .bind(id)
            .bind(&scope.tenant)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| from_json(&column::<String>(&row, 0)?))
            .transpose()
    }

    async fn delete_response(&self, scope: &Scope, id: &str) -> Result<bool, StoreError> {
        self.delete_with_children(scope, id, "responses", "response_items", "response_id")
            .await
    }

    async fn list_responses(
        &self,
        scope: &Scope,
        query: &ListQuery,
    ) -> Result<Page<Response>, StoreError> {
        let window = window(query);
        let mut sql = String::from("SELECT body FROM responses WHERE tenant = $1");
        let mut binds: Vec<String> = vec![scope.tenant.clone()];
        let next = |binds: &mut Vec<String>, value: String| {
            binds.push(value);
            binds.len()
        };
        if let Some(model) = &query.model {
            let n = next(&mut binds, model.clone());
            sql.push_str(&format!(" AND model = ${n}"));
        }
        if let Some(status) = &query.status {
            let n = next(&mut binds, status.clone());
            sql.push_str(&format!(" AND status = ${n}"));
        }
        for (key, value) in &query.metadata {
            let k = next(&mut binds, self.metadata_key(key));
            let v = next(&mut binds, value.clone());
            sql.push_str(&format!(" AND {}", self.metadata_condition(k, v)));
        }
        if let Some(cursor) = &window.cursor {
            let n = next(&mut binds, cursor.clone());
            sql.push_str(&format!(" AND id {} ${n}", window.comparison));
        }
        // Ids are UUIDv7, so their order is creation order.
        sql.push_str(&format!(
            " ORDER BY id {} LIMIT {}",
            window.read_order,
            query.limit as u64 + 1
        ));
        let mut statement = sqlx::query(&sql);
        for value in &binds {
            statement = statement.bind(value);
        }
        let rows = statement.fetch_all(&self.pool).await.map_err(unavailable)?;
        let responses: Vec<Response> = decode_all(&rows, 0)?;
        Ok(page(responses, query.limit, window.reverse))
    }

    async fn list_input_items(
        &self,
        scope: &Scope,
        response_id: &str,
        query: &ListQuery,
    ) -> Result<Option<Page<Item>>, StoreError> {
        if !self.response_exists(scope, response_id).await? {
            return Ok(None);
        }
        let window = window(query);
        let mut sql =
            String::from("SELECT body FROM response_items WHERE response_id = $1 AND kind = $2");
        if window.cursor.is_some() {
            sql.push_str(&format!(
                " AND position {} (SELECT position FROM response_items WHERE response_id = $1 AND kind = $2 AND item_id = $3)",
                window.comparison
            ));
        }
        sql.push_str(&format!(
            " ORDER BY position {} LIMIT {}",
            window.read_order,
            query.limit as u64 + 1
        ));
        let mut statement = sqlx::query(&sql).bind(response_id).bind(INPUT);
        if let Some(cursor) = &window.cursor {
            statement = statement.bind(cursor);
        }
        let rows = statement.fetch_all(&self.pool).await.map_err(unavailable)?;
        let items: Vec<Item> = decode_all(&rows, 0)?;
        Ok(Some(page(items, query.limit, window.reverse)))
    }

    async fn load_chain(
        &self,
        scope: &Scope,
        response_id: &str,
    ) -> Result<Option<Vec<Item>>, StoreError> {
        if !self.response_exists(scope, response_id).await? {
            return Ok(None);
        }
        // Walk the links back from the newest response, then read every item of the
        // chain in one pass: oldest response first, its input before its output.
        // CROSS JOIN fixes SQLite's join order (PostgreSQL plans it freely): the
        // chain first, then each link's row and items by primary key. Left to
        // itself, SQLite 3.46 walks each link by scanning every response of the
        // tenant, which made a chain's load grow with the whole table (25 ms at
        // depth 400 in a 400-response file, 2.3 ms with the order fixed).
        // The items come back as one row, their JSON joined into one array by the
        // database: one row instead of one per item spares the per-row cost of
        // the driver (on SQLite, a hop from its worker thread for each row).
        let row = sqlx::query(
            "WITH RECURSIVE chain(id, depth) AS ( \
                 SELECT id, 0 FROM responses WHERE id = $1 AND tenant = $2 \
                 UNION ALL \
                 SELECT r.previous_response_id, c.depth + 1 FROM chain c CROSS JOIN responses r \
                 WHERE r.id = c.id AND r.previous_response_id IS NOT NULL AND r.tenant = $2 AND c.depth < $3 \
             ) \
             SELECT string_agg(i.body, ',' ORDER BY c.depth DESC, i.kind ASC, i.position ASC) \
             FROM chain c CROSS JOIN response_items i \
             WHERE i.response_id = c.id AND i.tenant = $2",
        )
        .bind(response_id)
        .bind(&scope.tenant)
        .bind(MAX_CHAIN_DEPTH)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        match column::<Option<String>>(&row, 0)? {
            Some(joined) => from_json(&format!("[{joined}]")).map(Some),
            None => Ok(Some(Vec::new())),
        }
    }

    async fn get_items(&self, scope: &Scope, ids: &[String]) -> Result<Vec<Item>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT item_id, body FROM response_items WHERE tenant = $1 AND item_id IN ({})",
            placeholders.join(", ")
        );
        let mut statement = sqlx::query(&sql).bind(&scope.tenant);
        for id in ids {
            statement = statement.bind(id);
        }
        let rows = statement.fetch_all(&self.pool).await.map_err(unavailable)?;
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            // The same item may be stored twice (as output, then as the next input);
            // any copy will do.
            for row in &rows {
                if column::<String>(row, 0)? == *id {
                    found.push(from_json(&column::<String>(row, 1)?)?);
                    break;
                }
            }
        }
        Ok(found)
    }

    async fn create_conversation(
        &self,
        scope: &Scope,
        conversation: &Conversation,
        items: &[Item],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("INSERT INTO conversations (id, tenant, owner, created_at, metadata) VALUES ($1, $2, $3, $4, $5)")
            .bind(&conversation.id)
            .bind(&scope.tenant)
            .bind(&scope.owner)
            .bind(conversation.created_at as i64)
            .bind(to_json(&conversation.metadata)?)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        append_items(&mut tx, scope, &conversation.id, items).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn get_conversation(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let row = sqlx::query(
            "SELECT id, created_at, metadata FROM conversations WHERE id = $1 AND tenant = $2",
        )
        .bind(id)
        .bind(&scope.tenant)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    async fn update_conversation(
        &self,
        scope: &Scope,
        id: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Option<Conversation>, StoreError> {
        sqlx::query("UPDATE conversations SET metadata = $1 WHERE id = $2 AND tenant = $3")
            .bind(to_json(metadata)?)
            .bind(id)
            .bind(&scope.tenant)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        self.get_conversation(scope, id).await
    }

    async fn delete_conversation(&self, scope: &Scope, id: &str) -> Result<bool, StoreError> {
        self.delete_with_children(
            scope,
            id,
            "conversations",
            "conversation_items",
            "conversation_id",
        )
        .await
    }

    async fn add_conversation_items(
        &self,
        scope: &Scope,
        id: &str,
        items: &[Item],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let added = append_items(&mut tx, scope, id, items).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(added)
    }

    async fn list_conversation_items(
        &self,
        scope: &Scope,
        id: &str,
        query: &ListQuery,
    ) -> Result<Option<Page<Item>>, StoreError> {
        if self.get_conversation(scope, id).await?.is_none() {
            return Ok(None);
        }
        let window = window(query);
        let mut sql = String::from(
            "SELECT body FROM conversation_items WHERE conversation_id = $1 AND tenant = $2",
        );
        if window.cursor.is_some() {
            sql.push_str(&format!(
                " AND seq {} (SELECT MAX(seq) FROM conversation_items WHERE conversation_id = $1 AND item_id = $3)",
                window.comparison
            ));
        }
        sql.push_str(&format!(
            " ORDER BY seq {} LIMIT {}",
            window.read_order,
            query.limit as u64 + 1
        ));
        let mut statement = sqlx::query(&sql).bind(id).bind(&scope.tenant);
        if let Some(cursor) = &window.cursor {
            statement = statement.bind(cursor);
        }
        let rows = statement.fetch_all(&self.pool).await.map_err(unavailable)?;
        let items: Vec<Item> = decode_all(&rows, 0)?;
        Ok(Some(page(items, query.limit, window.reverse)))
    }

    async fn get_conversation_item(
        &self,
        scope: &Scope,
        id: &str,
        item_id: &str,
    ) -> Result<Option<Item>, StoreError> {
        let row = sqlx::query(
            "SELECT body FROM conversation_items WHERE conversation_id = $1 AND tenant = $2 AND item_id = $3 \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(id)
        .bind(&scope.tenant)
        .bind(item_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|row| from_json(&column::<String>(&row, 0)?))
            .transpose()
    }

    async fn delete_conversation_item(
        &self,
        scope: &Scope,
        id: &str,
        item_id: &str,
    ) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM conversation_items WHERE conversation_id = $1 AND tenant = $2 AND item_id = $3")
            .bind(id)
            .bind(&scope.tenant)
            .bind(item_id)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn load_conversation(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<Vec<Item>>, StoreError> {
        if self.get_conversation(scope, id).await?.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query("SELECT body FROM conversation_items WHERE conversation_id = $1 AND tenant = $2 ORDER BY seq ASC")
            .bind(id)
            .bind(&scope.tenant)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        decode_all(&rows, 0).map(Some)
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
