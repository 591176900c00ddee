//! The conversation store in SQL: conversations and their items, kept in the
//! order they were added (`seq`).

use std::collections::BTreeMap;

use antwort_api::{Conversation, ConversationObject, Item};
use antwort_engine::store::{ConversationStore, ListQuery, Page, Scope, StoreError};
use async_trait::async_trait;

use crate::db::Row;
use crate::record::{self, Statement, to_json};
use crate::sql::{SqlStore, corrupt, decode_all, from_json, json_column, page, window};

fn conversation_from_row(row: Row) -> Result<Conversation, StoreError> {
    let mut columns = row.into_iter();
    let (Some(id), Some(created_at), Some(metadata)) =
        (columns.next(), columns.next(), columns.next())
    else {
        return Err(corrupt("a conversation row without its columns"));
    };
    Ok(Conversation {
        id: id.into_text()?,
        object: ConversationObject::Conversation,
        created_at: u64::try_from(created_at.into_int()?).map_err(corrupt)?,
        metadata: from_json(&metadata.into_text()?)?,
    })
}

/// An item statement's guard: conversation `$1` of tenant `$2` is visible to
/// owner filter `$3` (`''` for the whole tenant).
const VISIBLE: &str = "EXISTS (SELECT 1 FROM conversations c \
     WHERE c.id = $1 AND c.tenant = $2 AND ($3 = '' OR c.owner = $3))";

#[async_trait]
impl ConversationStore for SqlStore {
    async fn create_conversation(
        &self,
        scope: &Scope,
        conversation: &Conversation,
        items: &[Item],
    ) -> Result<(), StoreError> {
        let mut statements = vec![Statement::new(
            "INSERT INTO conversations (id, tenant, owner, created_at, metadata) VALUES ($1, $2, $3, $4, $5)",
            vec![
                conversation.id.as_str().into(),
                scope.tenant.as_str().into(),
                scope.owner.as_str().into(),
                (conversation.created_at as i64).into(),
                to_json(&conversation.metadata)?.into(),
            ],
        )];
        statements.extend(record::conversation_items(
            scope,
            &conversation.id,
            items.iter(),
        )?);
        self.db.transaction(&statements).await.map(|_| ())
    }

    async fn get_conversation(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let statement = Statement::new(
            "SELECT id, created_at, metadata FROM conversations \
             WHERE id = $1 AND tenant = $2 AND ($3 = '' OR owner = $3)",
            vec![
                id.into(),
                scope.tenant.as_str().into(),
                scope.owner_filter().into(),
            ],
        );
        self.db
            .fetch_first(&statement)
            .await?
            .map(conversation_from_row)
            .transpose()
    }

    async fn update_conversation(
        &self,
        scope: &Scope,
        id: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Option<Conversation>, StoreError> {
        let statement = Statement::new(
            "UPDATE conversations SET metadata = $1 \
             WHERE id = $2 AND tenant = $3 AND ($4 = '' OR owner = $4)",
            vec![
                to_json(metadata)?.into(),
                id.into(),
                scope.tenant.as_str().into(),
                scope.owner_filter().into(),
            ],
        );
        self.db.transaction(&[statement]).await?;
        self.get_conversation(scope, id).await
    }

    async fn delete_conversation(&self, scope: &Scope, id: &str) -> Result<bool, StoreError> {
        let binds = vec![
            id.into(),
            scope.tenant.as_str().into(),
            scope.owner_filter().into(),
        ];
        let affected = self
            .db
            .transaction(&[
                Statement::new(
                    format!("DELETE FROM conversation_items WHERE conversation_id = $1 AND tenant = $2 AND {VISIBLE}"),
                    binds.clone(),
                ),
                Statement::new(
                    "DELETE FROM conversations WHERE id = $1 AND tenant = $2 AND ($3 = '' OR owner = $3)",
                    binds,
                ),
            ])
            .await?;
        Ok(affected.get(1).is_some_and(|deleted| *deleted > 0))
    }

    async fn add_conversation_items(
        &self,
        scope: &Scope,
        id: &str,
        items: &[Item],
    ) -> Result<bool, StoreError> {
        if self.get_conversation(scope, id).await?.is_none() {
            return Ok(false);
        }
        // Each insert is guarded by the conversation's existence in this scope,
        // so a delete in between adds nothing rather than orphans.
        let statements = record::conversation_items(scope, id, items.iter())?;
        let affected = self.db.transaction(&statements).await?;
        Ok(items.is_empty() || affected.iter().any(|added| *added > 0))
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
        let mut binds = vec![id.into(), scope.tenant.as_str().into()];
        if let Some(cursor) = &window.cursor {
            sql.push_str(&format!(
                " AND seq {} (SELECT MAX(seq) FROM conversation_items \
                 WHERE conversation_id = $1 AND tenant = $2 AND item_id = $3)",
                window.comparison
            ));
            binds.push(cursor.as_str().into());
        }
        sql.push_str(&format!(
            " ORDER BY seq {} LIMIT {}",
            window.read_order,
            u64::from(query.limit) + 1
        ));
        let rows = self.db.fetch(&Statement::new(sql, binds)).await?;
        Ok(Some(page(decode_all(rows)?, query.limit, window.reverse)))
    }

    async fn get_conversation_item(
        &self,
        scope: &Scope,
        id: &str,
        item_id: &str,
    ) -> Result<Option<Item>, StoreError> {
        let statement = Statement::new(
            format!(
                "SELECT body FROM conversation_items \
                 WHERE conversation_id = $1 AND tenant = $2 AND item_id = $4 AND {VISIBLE} \
                 ORDER BY seq DESC LIMIT 1"
            ),
            vec![
                id.into(),
                scope.tenant.as_str().into(),
                scope.owner_filter().into(),
                item_id.into(),
            ],
        );
        self.db
            .fetch_first(&statement)
            .await?
            .map(json_column)
            .transpose()
    }

    async fn delete_conversation_item(
        &self,
        scope: &Scope,
        id: &str,
        item_id: &str,
    ) -> Result<bool, StoreError> {
        let statement = Statement::new(
            format!(
                "DELETE FROM conversation_items \
                 WHERE conversation_id = $1 AND tenant = $2 AND item_id = $4 AND {VISIBLE}"
            ),
            vec![
                id.into(),
                scope.tenant.as_str().into(),
                scope.owner_filter().into(),
                item_id.into(),
            ],
        );
        let affected = self.db.transaction(&[statement]).await?;
        Ok(affected.first().is_some_and(|deleted| *deleted > 0))
    }

    async fn load_conversation(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<Vec<Item>>, StoreError> {
        if self.get_conversation(scope, id).await?.is_none() {
            return Ok(None);
        }
        let statement = Statement::new(
            "SELECT body FROM conversation_items WHERE conversation_id = $1 AND tenant = $2 ORDER BY seq ASC",
            vec![id.into(), scope.tenant.as_str().into()],
        );
        decode_all(self.db.fetch(&statement).await?).map(Some)
    }
}
