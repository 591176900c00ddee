//! `GET /v1/models`: the backend's model list in the OpenAI shape.

use antwort_api::ModelList;
use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::error::HttpError;

pub async fn list(State(state): State<AppState>) -> Result<Json<ModelList>, HttpError> {
    let data = state.engine.list_models().await?;
    Ok(Json(ModelList {
        object: "list".to_owned(),
        data,
    }))
}
