//! The key store in SQL: API keys created at run time, kept as SHA-256 hashes,
//! looked up by hash on every request that presents a key no configuration
//! names (the auth crate caches what it finds for a few seconds).

use antwort_engine::store::{KeyStore, StoreError, StoredKey};
use async_trait::async_trait;

use crate::db::Row;
use crate::record::{Statement, Value, to_json};
use crate::sql::{SqlStore, corrupt, from_json};

const COLUMNS: &str = "id, hash, prefix, tenant, subject, scopes, created_at, revoked_at";

fn key_from_row(row: Row) -> Result<StoredKey, StoreError> {
    let columns: [Value; 8] = row
        .try_into()
        .map_err(|_| corrupt("an api_keys row without its columns"))?;
    let [
        id,
        hash,
        prefix,
        tenant,
        subject,
        scopes,
        created_at,
        revoked_at,
    ] = columns;
    let unix = |value: i64| u64::try_from(value).map_err(corrupt);
    Ok(StoredKey {
        id: id.into_text()?,
        hash: hash.into_text()?,
        prefix: prefix.into_text()?,
        tenant: tenant.into_text()?,
        subject: subject.into_text()?,
        scopes: from_json(&scopes.into_text()?)?,
        created_at: unix(created_at.into_int()?)?,
        revoked_at: match revoked_at {
            Value::Null => None,
            other => Some(unix(other.into_int()?)?),
        },
    })
}

fn unix(seconds: u64) -> Result<Value, StoreError> {
    i64::try_from(seconds).map(Value::Int).map_err(corrupt)
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn create_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let statement = Statement::new(
            format!("INSERT INTO api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)"),
            vec![
                key.id.as_str().into(),
                key.hash.as_str().into(),
                key.prefix.as_str().into(),
                key.tenant.as_str().into(),
                key.subject.as_str().into(),
                to_json(&key.scopes)?.into(),
                unix(key.created_at)?,
            ],
        );
        self.db.transaction(&[statement]).await.map(|_| ())
    }

    async fn find_key(&self, hash: &str) -> Result<Option<StoredKey>, StoreError> {
        let statement = Statement::new(
            format!("SELECT {COLUMNS} FROM api_keys WHERE hash = $1"),
            vec![hash.into()],
        );
        self.db
            .fetch_first(&statement)
            .await?
            .map(key_from_row)
            .transpose()
    }

    async fn list_keys(&self, tenant: Option<&str>) -> Result<Vec<StoredKey>, StoreError> {
        let statement = Statement::new(
            format!(
                "SELECT {COLUMNS} FROM api_keys WHERE ($1 = '' OR tenant = $1) \
                 ORDER BY created_at DESC, id DESC"
            ),
            vec![tenant.unwrap_or("").into()],
        );
        self.db
            .fetch(&statement)
            .await?
            .into_iter()
            .map(key_from_row)
            .collect()
    }

    async fn revoke_key(
        &self,
        tenant: Option<&str>,
        id: &str,
        at: u64,
    ) -> Result<bool, StoreError> {
        let statement = Statement::new(
            "UPDATE api_keys SET revoked_at = $1 \
             WHERE id = $2 AND ($3 = '' OR tenant = $3) AND revoked_at IS NULL",
            vec![unix(at)?, id.into(), tenant.unwrap_or("").into()],
        );
        let affected = self.db.transaction(&[statement]).await?;
        Ok(affected.first().is_some_and(|updated| *updated > 0))
    }
}

#[async_trait]
impl antwort_engine::store::ApprovalStore for SqlStore {
    async fn claim_approval(
        &self,
        scope: &antwort_engine::store::Scope,
        approval_request_id: &str,
        response_id: &str,
    ) -> Result<bool, StoreError> {
        let statement = Statement::new(
            "INSERT INTO mcp_approvals (tenant, approval_request_id, response_id, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, approval_request_id) DO NOTHING",
            vec![
                scope.tenant.as_str().into(),
                approval_request_id.into(),
                response_id.into(),
                unix(antwort_engine::clock::unix_now())?,
            ],
        );
        let affected = self.db.transaction(&[statement]).await?;
        Ok(affected.first().is_some_and(|inserted| *inserted > 0))
    }
}

#[async_trait]
impl antwort_engine::store::RateWindowStore for SqlStore {
    async fn add_to_window(
        &self,
        key: &str,
        window_start: i64,
        amount: i64,
    ) -> Result<i64, StoreError> {
        let statement = Statement::new(
            "INSERT INTO rate_windows (key, window_start, used) VALUES ($1, $2, $3) \
             ON CONFLICT (key, window_start) DO UPDATE SET used = rate_windows.used + excluded.used \
             RETURNING used",
            vec![key.into(), window_start.into(), amount.into()],
        );
        let row = self
            .db
            .fetch_first(&statement)
            .await?
            .ok_or_else(|| corrupt("an upsert that returned no row"))?;
        row.into_iter()
            .next()
            .ok_or_else(|| corrupt("a rate window without its count"))?
            .into_int()
    }

    async fn open_stream(
        &self,
        key: &str,
        replica: &str,
        max: i64,
        fresh_since: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        // One statement: counted only while the fresh rows of every replica
        // hold fewer than `max` (two replicas racing may both pass: at most
        // one over the limit per race).
        let statement = Statement::new(
            "INSERT INTO stream_slots (key, replica, open, seen_at) \
             SELECT $1, $2, 1, $5 WHERE (SELECT CAST(COALESCE(SUM(open), 0) AS BIGINT) \
             FROM stream_slots WHERE key = $1 AND seen_at >= $4) < $3 \
             ON CONFLICT (key, replica) DO UPDATE SET open = stream_slots.open + 1, \
             seen_at = excluded.seen_at",
            vec![
                key.into(),
                replica.into(),
                max.into(),
                fresh_since.into(),
                now.into(),
            ],
        );
        let affected = self.db.transaction(&[statement]).await?;
        Ok(affected.first().is_some_and(|counted| *counted > 0))
    }

    async fn close_stream(&self, key: &str, replica: &str) -> Result<(), StoreError> {
        let statement = Statement::new(
            "UPDATE stream_slots SET open = open - 1 WHERE key = $1 AND replica = $2 AND open > 0",
            vec![key.into(), replica.into()],
        );
        self.db.transaction(&[statement]).await.map(|_| ())
    }

    async fn refresh_streams(
        &self,
        replica: &str,
        now: i64,
        stale_before: i64,
    ) -> Result<(), StoreError> {
        let statements = [
            Statement::new(
                "UPDATE stream_slots SET seen_at = $2 WHERE replica = $1",
                vec![replica.into(), now.into()],
            ),
            Statement::new(
                "DELETE FROM stream_slots WHERE open <= 0 OR seen_at < $1",
                vec![stale_before.into()],
            ),
        ];
        self.db.transaction(&statements).await.map(|_| ())
    }

    async fn prune_windows(&self, before: i64) -> Result<(), StoreError> {
        let statement = Statement::new(
            "DELETE FROM rate_windows WHERE window_start < $1",
            vec![before.into()],
        );
        self.db.transaction(&[statement]).await.map(|_| ())
    }
}
