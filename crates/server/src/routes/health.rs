//! Liveness and readiness: `/healthz` answers while the process serves; `/readyz`
//! only when the store and at least one backend answer too (within two seconds
//! each), so that a load balancer stops sending traffic to a replica that can
//! serve nothing. Each backend's answer and circuit breaker state are listed.

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
    let backends: serde_json::Map<String, serde_json::Value> = readiness
        .backends
        .iter()
        .map(|backend| {
            let mut check = json!({"status": word(backend.ready)});
            if let Some(circuit) = backend.circuit {
                check["circuit"] = json!(circuit.as_str());
            }
            (backend.name.to_string(), check)
        })
        .collect();
    let any_backend = readiness.backends.iter().any(|backend| backend.ready);
    let checks = json!({
        "store": word(readiness.store),
        "backend": word(any_backend),
        "backends": backends,
    });
    let (status, word) = if readiness.ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        axum::Json(json!({"status": word, "checks": checks})),
    )
}
