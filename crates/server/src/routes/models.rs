//! `GET /v1/models` and `GET /v1/models/{id}`: every model the gateway's
//! backends serve, in the OpenAI shape, `owned_by` naming the backend.

use antwort_api::{Model, ModelList};
use axum::Json;
use axum::extract::{Path, State};

use crate::AppState;
use crate::error::HttpError;

pub async fn list(State(state): State<AppState>) -> Result<Json<ModelList>, HttpError> {
    Ok(Json(ModelList {
        object: "list".to_owned(),
        data: state.engine.list_models().await?,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Model>, HttpError> {
    Ok(Json(state.engine.model(&id).await?))
}
