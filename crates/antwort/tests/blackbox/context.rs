//! Context management: token counts, and fitting a turn into the context window.

use serde_json::json;

use crate::harness::{output_text, start, start_with};

#[tokio::test]
async fn input_tokens_counts_what_a_create_would_send() {
    let gateway = start().await;
    let count = |body| {
        let gateway = &gateway;
        async move {
            let answer = gateway.post("/v1/responses/input_tokens", &body).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            assert_eq!(answer.body["object"], "response.input_tokens");
            answer.body["input_tokens"].as_u64().unwrap()
        }
    };
    let short = count(json!({"model": "mock-model", "input": "hello"})).await;
    let long = count(json!({"model": "mock-model", "input": "hello ".repeat(200)})).await;
    assert!(short > 0 && long > short + 150, "{short} {long}");
    let with_instructions =
        count(json!({"input": "hello", "instructions": "be brief and kind"})).await;
    assert!(with_instructions > short);
    // The chain behind previous_response_id counts too.
    let first = gateway.create(json!({"input": "word ".repeat(100)})).await;
    let chained = count(json!({"input": "hello", "previous_response_id": first["id"]})).await;
    assert!(chained > short + 100, "{chained}");
    let bad = gateway
        .post(
            "/v1/responses/input_tokens",
            &json!({"input": "x", "temperature": 9}),
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn a_turn_over_the_window_fails_clearly_unless_truncation_is_auto() {
    // About 450 + 400 tokens fit in 1000; another 150 do not.
    let gateway = start_with(|config| config.engine.context_window = 1000).await;
    let first = gateway
        .create(json!({"input": format!("{} [[reply:ok]]", "old ".repeat(450))}))
        .await;
    let second = gateway.create(json!({"input": format!("{} [[reply:ok]]", "older ".repeat(400)), "previous_response_id": first["id"]})).await;
    let newest = "newest ".repeat(150);

    let refused = gateway
        .post(
            "/v1/responses",
            &json!({"input": newest, "previous_response_id": second["id"]}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "context_length_exceeded");
    assert_eq!(refused.body["error"]["param"], "input");

    let fitted = gateway
        .create(
            json!({"input": newest, "previous_response_id": second["id"], "truncation": "auto"}),
        )
        .await;
    // The first turn was dropped: the second turn's question and answer, then "newest".
    assert!(
        output_text(&fitted).contains("messages: 3"),
        "{}",
        output_text(&fitted)
    );
    assert_eq!(fitted["truncation"], "auto");
}

#[tokio::test]
async fn per_model_windows_override_the_default() {
    let gateway = start_with(|config| {
        config
            .engine
            .context_windows
            .insert("tiny-model".into(), 20);
    })
    .await;
    let big = json!({"model": "tiny-model", "input": "word ".repeat(50)});
    let refused = gateway.post("/v1/responses", &big).await;
    assert_eq!(refused.body["error"]["code"], "context_length_exceeded");
    let accepted = gateway
        .post(
            "/v1/responses",
            &json!({"model": "mock-model", "input": "word ".repeat(50)}),
        )
        .await;
    assert_eq!(accepted.status, 200);
}
