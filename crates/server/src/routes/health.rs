//! Liveness and readiness: `/healthz` answers while the process serves; `/readyz`
//! only when the store and the backend answer too (within two seconds each), so that a load balancer stops sending traffic
//! to a replica whose backend is gone.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::AppState;

pub async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// How long each part may take to answer a readiness check: a load balancer
/// asks every few seconds and must not wait for a pool's connect timeout.
const READINESS_WITHIN: Duration = Duration::from_secs(2);

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let readiness = state.engine.readiness(READINESS_WITHIN).await;
    let word = |up: bool| if up { "ok" } else { "unavailable" };
    let checks = json!({"store": word(readiness.store), "backend": word(readiness.backends)});
    if readiness.ready() {
        (
            StatusCode::OK,
            axum::Json(json!({"status": "ready", "checks": checks})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "checks": checks})),
        )
    }
}
