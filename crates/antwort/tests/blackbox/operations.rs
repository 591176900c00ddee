//! Models, health and readiness.

use crate::harness::start;

#[tokio::test]
async fn models_come_from_the_backend() {
    let gateway = start().await;
    let answer = gateway.get("/v1/models").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["object"], "list");
    let ids: Vec<&str> = answer.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"mock-model"), "{ids:?}");
    assert_eq!(answer.body["data"][0]["object"], "model");
}

#[tokio::test]
async fn health_and_readiness() {
    let gateway = start().await;
    let health = gateway.get("/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body["status"], "ok");
    let ready = gateway.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["status"], "ready");
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let gateway = start().await;
    let answer = gateway.get("/healthz").await;
    assert!(!answer.headers["x-request-id"].is_empty());
    // A client's own id comes back, on a route and on the fallback alike.
    for path in ["/healthz", "/no/such/route"] {
        let answer = crate::harness::client()
            .get(format!("{}{path}", gateway.url))
            .header("x-request-id", "client-chosen-42")
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.headers()["x-request-id"],
            "client-chosen-42",
            "{path}"
        );
    }
}

/// The validator is only worth its passes if it fails broken objects.
#[tokio::test]
async fn the_schema_validator_rejects_what_the_schema_forbids() {
    let gateway = start().await;
    let response = gateway.create(serde_json::json!({"input": "hi"})).await;
    let spec = crate::harness::spec();
    assert!(spec.violations("ResponseResource", &response).is_empty());
    let mut missing = response.clone();
    missing.as_object_mut().unwrap().remove("tools");
    assert!(!spec.violations("ResponseResource", &missing).is_empty());
    let mut wrong_item = response.clone();
    wrong_item["output"][0]["type"] = serde_json::json!("teleport");
    assert!(!spec.violations("ResponseResource", &wrong_item).is_empty());
    let event = serde_json::json!({"type": "response.output_text.delta", "sequence_number": 1, "item_id": "m", "output_index": 0});
    assert!(
        !spec
            .violations("ResponseOutputTextDeltaStreamingEvent", &event)
            .is_empty(),
        "missing delta and content_index"
    );
}
