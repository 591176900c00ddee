//! The database connection, per dialect: a sqlx pool of SQLite or of PostgreSQL,
//! each its own driver (not sqlx's `Any`; see ARCHITECTURE.md for why), behind
//! one small surface the store's SQL runs through: fetch rows of plain values,
//! run statements in one transaction, ping. The SQL text and the row decoding
//! are shared; what only PostgreSQL can do (LISTEN/NOTIFY, `FOR UPDATE SKIP
//! LOCKED`, typed vector binds) gets code on the `Postgres` arm.

use antwort_engine::store::StoreError;
use sqlx::{PgPool, Row as _, SqlitePool};

use crate::record::{Statement, Value};

/// One row, its columns decoded into plain values.
pub(crate) type Row = Vec<Value>;

pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub(crate) fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// Expands `$body` once per dialect with `$pool` bound to that dialect's pool,
/// so that the same code is compiled against each concrete driver (sqlx's
/// generic bounds over `Database` are unwieldy; each arm here is plain code).
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

/// `statement` as a sqlx query, its values bound in order.
macro_rules! query {
    ($statement:expr) => {{
        let mut query = sqlx::query(&$statement.sql);
        for value in &$statement.binds {
            query = match value {
                Value::Text(text) => query.bind(text.as_str()),
                Value::Int(number) => query.bind(*number),
                Value::Null => query.bind(None::<&str>),
            };
        }
        query
    }};
}

/// Column `$index` of `$row` as a plain value: text, else an integer (8 or 4
/// bytes), else null; a column of any other type is corrupt data, never a panic.
macro_rules! decode {
    ($row:expr, $index:expr) => {{
        let (row, index) = ($row, $index);
        if let Ok(text) = row.try_get::<Option<String>, _>(index) {
            Ok(text.map_or(Value::Null, Value::Text))
        } else if let Ok(number) = row.try_get::<Option<i64>, _>(index) {
            Ok(number.map_or(Value::Null, Value::Int))
        } else {
            row.try_get::<Option<i32>, _>(index)
                .map(|number| number.map_or(Value::Null, |n| Value::Int(i64::from(n))))
                .map_err(|error| StoreError::Corrupt(format!("column {index}: {error}")))
        }
    }};
}

impl Db {
    /// Every row `statement` returns.
    pub(crate) async fn fetch(&self, statement: &Statement) -> Result<Vec<Row>, StoreError> {
        on_pool!(self, |pool| {
            let rows = query!(statement)
                .fetch_all(pool)
                .await
                .map_err(unavailable)?;
            rows.iter()
                .map(|row| (0..row.len()).map(|index| decode!(row, index)).collect())
                .collect()
        })
    }

    /// The first row `statement` returns, if any.
    pub(crate) async fn fetch_first(
        &self,
        statement: &Statement,
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.fetch(statement).await?.into_iter().next())
    }

    /// Runs `statements` in order in one transaction; the rows each affected.
    pub(crate) async fn transaction(
        &self,
        statements: &[Statement],
    ) -> Result<Vec<u64>, StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(unavailable)?;
            let mut affected = Vec::with_capacity(statements.len());
            for statement in statements {
                let result = query!(statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                affected.push(result.rows_affected());
            }
            tx.commit().await.map_err(unavailable)?;
            Ok(affected)
        })
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(unavailable)
        })
    }
}
