//! The response store in SQL: saves go through the group-committing writer;
//! reads, lists and deletes run here. A chain of `previous_response_id` links is
//! loaded with one recursive query whatever its depth.

use antwort_api::{Item, Response};
use antwort_engine::store::{
    ListQuery, Page, Reach, ResponseStore, Scope, StoreError, StoredResponse,
};
use async_trait::async_trait;

use crate::record::{INPUT, Statement};
use crate::sql::{Binds, SqlStore, decode_all, from_json, json_column, page, window};

/// A chain longer than this is cut (the oldest links are dropped); it guards the
/// recursive query against a cycle written by hand into the database.
const MAX_CHAIN_DEPTH: i64 = 100_000;

impl SqlStore {
    /// Whether response `id` exists in this scope.
    async fn response_exists(&self, scope: &Scope, id: &str) -> Result<bool, StoreError> {
        let statement = Statement::new(
            "SELECT 1 FROM responses WHERE id = $1 AND tenant = $2 AND ($3 = '' OR owner = $3)",
            vec![
                id.into(),
                scope.tenant.as_str().into(),
                scope.owner_filter().into(),
            ],
        );
        Ok(self.db.fetch_first(&statement).await?.is_some())
    }
}

#[async_trait]
impl ResponseStore for SqlStore {
    async fn save_response(&self, scope: &Scope, record: StoredResponse) -> Result<(), StoreError> {
        self.writer.save(scope, record).await
    }

    async fn get_response(&self, scope: &Scope, id: &str) -> Result<Option<Response>, StoreError> {
        let statement = Statement::new(
            "SELECT body FROM responses WHERE id = $1 AND tenant = $2 AND ($3 = '' OR owner = $3)",
            vec![
                id.into(),
                scope.tenant.as_str().into(),
                scope.owner_filter().into(),
            ],
        );
        self.db
            .fetch_first(&statement)
            .await?
            .map(json_column)
            .transpose()
    }

    async fn delete_response(&self, scope: &Scope, id: &str) -> Result<bool, StoreError> {
        // Both deletes name the tenant: an item row of another tenant with the
        // same response id is never touched; and the owner, unless the caller
        // sees the whole tenant (items go only while their response is visible).
        let binds = vec![
            id.into(),
            scope.tenant.as_str().into(),
            scope.owner_filter().into(),
        ];
        let affected = self
            .db
            .transaction(&[
                Statement::new(
                    "DELETE FROM response_items WHERE response_id = $1 AND tenant = $2 \
                     AND EXISTS (SELECT 1 FROM responses WHERE id = $1 AND tenant = $2 \
                     AND ($3 = '' OR owner = $3))",
                    binds.clone(),
                ),
                Statement::new(
                    "DELETE FROM responses WHERE id = $1 AND tenant = $2 AND ($3 = '' OR owner = $3)",
                    binds,
                ),
            ])
            .await?;
        Ok(affected.get(1).is_some_and(|deleted| *deleted > 0))
    }

    async fn list_responses(
        &self,
        scope: &Scope,
        query: &ListQuery,
    ) -> Result<Page<Response>, StoreError> {
        let window = window(query);
        let mut binds = Binds::default();
        let tenant = binds.push(scope.tenant.as_str());
        let mut sql = format!("SELECT body FROM responses WHERE tenant = ${tenant}");
        // Spelled out only when it filters, so that the (tenant, owner, id)
        // index serves an owner's list and (tenant, id) an admin's.
        if let Reach::Own = scope.reach {
            let owner = binds.push(scope.owner.as_str());
            sql.push_str(&format!(" AND owner = ${owner}"));
        }
        if let Some(model) = &query.model {
            let n = binds.push(model.as_str());
            sql.push_str(&format!(" AND model = ${n}"));
        }
        if let Some(status) = &query.status {
            let n = binds.push(status.as_str());
            sql.push_str(&format!(" AND status = ${n}"));
        }
        for (key, value) in &query.metadata {
            let k = binds.push(self.metadata_key(key));
            let v = binds.push(value.as_str());
            sql.push_str(&format!(" AND {}", self.metadata_condition(k, v)));
        }
        if let Some(cursor) = &window.cursor {
            let n = binds.push(cursor.as_str());
            sql.push_str(&format!(" AND id {} ${n}", window.comparison));
        }
        // Ids are UUIDv7, so their order is creation order.
        sql.push_str(&format!(
            " ORDER BY id {} LIMIT {}",
            window.read_order,
            u64::from(query.limit) + 1
        ));
        let rows = self.db.fetch(&Statement::new(sql, binds.0)).await?;
        Ok(page(decode_all(rows)?, query.limit, window.reverse))
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
        let mut sql = String::from(
            "SELECT body FROM response_items WHERE response_id = $1 AND tenant = $2 AND kind = $3",
        );
        let mut binds = vec![
            response_id.into(),
            scope.tenant.as_str().into(),
            INPUT.into(),
        ];
        if let Some(cursor) = &window.cursor {
            sql.push_str(&format!(
                " AND position {} (SELECT MAX(position) FROM response_items \
                 WHERE response_id = $1 AND tenant = $2 AND kind = $3 AND item_id = $4)",
                window.comparison
            ));
            binds.push(cursor.as_str().into());
        }
        sql.push_str(&format!(
            " ORDER BY position {} LIMIT {}",
            window.read_order,
            u64::from(query.limit) + 1
        ));
        let rows = self.db.fetch(&Statement::new(sql, binds)).await?;
        Ok(Some(page(decode_all(rows)?, query.limit, window.reverse)))
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
        let statement = Statement::new(
            "WITH RECURSIVE chain(id, depth) AS ( \
                 SELECT id, 0 FROM responses WHERE id = $1 AND tenant = $2 \
                 UNION ALL \
                 SELECT r.previous_response_id, c.depth + 1 FROM chain c CROSS JOIN responses r \
                 WHERE r.id = c.id AND r.previous_response_id IS NOT NULL AND r.tenant = $2 AND c.depth < $3 \
             ) \
             SELECT string_agg(i.body, ',' ORDER BY c.depth DESC, i.kind ASC, i.position ASC) \
             FROM chain c CROSS JOIN response_items i \
             WHERE i.response_id = c.id AND i.tenant = $2",
            vec![
                response_id.into(),
                scope.tenant.as_str().into(),
                MAX_CHAIN_DEPTH.into(),
            ],
        );
        let joined = match self.db.fetch_first(&statement).await? {
            Some(row) => row
                .into_iter()
                .next()
                .map(|value| value.into_optional_text())
                .transpose()?
                .flatten(),
            None => None,
        };
        match joined {
            Some(joined) => from_json(&format!("[{joined}]")).map(Some),
            None => Ok(Some(Vec::new())),
        }
    }

    async fn get_items(&self, scope: &Scope, ids: &[String]) -> Result<Vec<Item>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
        // An item is visible while the response that holds it is.
        let sql = format!(
            "SELECT i.item_id, i.body FROM response_items i WHERE i.tenant = $1 AND i.item_id IN ({}) \
             AND ($2 = '' OR EXISTS (SELECT 1 FROM responses r \
             WHERE r.id = i.response_id AND r.tenant = i.tenant AND r.owner = $2))",
            placeholders.join(", ")
        );
        let mut binds = vec![scope.tenant.as_str().into(), scope.owner_filter().into()];
        binds.extend(ids.iter().map(|id| id.as_str().into()));
        let mut rows: Vec<(String, String)> = Vec::new();
        for row in self.db.fetch(&Statement::new(sql, binds)).await? {
            let mut columns = row.into_iter();
            let (Some(id), Some(body)) = (columns.next(), columns.next()) else {
                return Err(StoreError::Corrupt(
                    "an item row without its columns".to_owned(),
                ));
            };
            rows.push((id.into_text()?, body.into_text()?));
        }
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            // The same item may be stored twice (as output, then as the next input);
            // any copy will do.
            if let Some((_, body)) = rows.iter().find(|(row_id, _)| row_id == id) {
                found.push(from_json(body)?);
            }
        }
        Ok(found)
    }
}
