//! The admin API for API keys created at run time: create (the key is shown
//! once), list (never a key, only its prefix) and revoke. A tenant admin
//! manages its own tenant's keys; every call is audited. Keys live in the
//! database, so every replica sharing it honours them within the key cache's
//! few seconds, without a restart.

use antwort_api::{ApiError, ErrorCode, parse_json};
use antwort_auth::{AuditEvent, AuditKind, RuntimeKeys};
use antwort_engine::StoredKey;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::HttpError;
use crate::extract::{Caller, JsonBody, PathIds, RequestBody};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub subject: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl RequestBody for CreateKeyRequest {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        parse_json(body)
    }
}

fn runtime(state: &AppState) -> Result<&RuntimeKeys, HttpError> {
    state.auth.runtime_keys().ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidValue,
            "Keys created at run time are honoured only with API keys on (auth.type apikey or chain).",
        )
        .into()
    })
}

/// A key as the API shows it: never the key itself.
pub fn key_json(key: &StoredKey) -> Value {
    json!({
        "id": key.id,
        "object": "api_key",
        "prefix": key.prefix,
        "tenant": key.tenant,
        "subject": key.subject,
        "scopes": key.scopes,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    })
}

fn store_error(error: antwort_engine::store::StoreError) -> HttpError {
    ApiError::new(ErrorCode::StorageUnavailable, error.to_string()).into()
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateKeyRequest>,
) -> Result<Json<Value>, HttpError> {
    let runtime = runtime(&state)?;
    let created = runtime
        .create(&caller.identity.tenant, &request.subject, &request.scopes)
        .await
        .map_err(|error| match error {
            antwort_auth::KeyError::Invalid(message) => {
                HttpError(ApiError::new(ErrorCode::InvalidValue, message))
            }
            antwort_auth::KeyError::Store(error) => store_error(error),
        })?;
    caller.audit(
        &state,
        AuditEvent::new(AuditKind::KeyCreated).object(&created.key.id),
    );
    let mut answer = key_json(&created.key);
    answer["key"] = Value::String(created.secret);
    Ok(Json(answer))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, HttpError> {
    let runtime = runtime(&state)?;
    let keys = runtime
        .list(&caller.identity.tenant)
        .await
        .map_err(store_error)?;
    caller.audit(&state, AuditEvent::new(AuditKind::KeysListed));
    let data: Vec<Value> = keys.iter().map(key_json).collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(id): PathIds<String>,
) -> Result<Json<Value>, HttpError> {
    let runtime = runtime(&state)?;
    let revoked = runtime
        .revoke(&caller.identity.tenant, &id)
        .await
        .map_err(store_error)?;
    if !revoked {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("No active key with id '{id}'."),
        )
        .into());
    }
    caller.audit(&state, AuditEvent::new(AuditKind::KeyRevoked).object(&id));
    Ok(Json(
        json!({"id": id, "object": "api_key", "deleted": true}),
    ))
}
