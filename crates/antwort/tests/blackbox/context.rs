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

#[tokio::test]
async fn compaction_summarises_and_the_summary_continues_the_conversation() {
    let gateway = start().await;
    let first = gateway.create(json!({"input": "my name is Ada"})).await;
    let answer = gateway
        .post("/v1/responses/compact", &json!({"model": "mock-model", "previous_response_id": first["id"], "input": "and I like tea"}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    crate::harness::spec().check("CompactResource", &answer.body);
    assert_eq!(answer.body["object"], "response.compaction");
    let item = &answer.body["output"][0];
    assert_eq!(item["type"], "compaction");
    assert!(item["id"].as_str().unwrap().starts_with("cmp_"));
    // The summary request saw the chain, the new input and the summary prompt.
    let content = item["encrypted_content"].as_str().unwrap();
    assert!(content.contains("messages: 4"), "{content}");
    assert!(answer.body["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let continued = gateway
        .create(json!({"input": [item, {"role": "user", "content": "what do I like? [[echo_request]]"}]}))
        .await;
    let sent: serde_json::Value = serde_json::from_str(&output_text(&continued)).unwrap();
    assert_eq!(sent["messages"][0]["role"], "user");
    assert!(
        sent["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("Summary of the earlier conversation:\n")
    );
    assert_eq!(sent["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn compaction_errors() {
    let gateway = start().await;
    let no_model = gateway
        .post("/v1/responses/compact", &json!({"input": "x"}))
        .await;
    assert_eq!(no_model.status, 400);
    assert_eq!(no_model.body["error"]["param"], "model");
    let foreign = gateway
        .post(
            "/v1/responses",
            &json!({"input": [{"type": "compaction", "encrypted_content": "gAAAAB-sealed"}]}),
        )
        .await;
    assert_eq!(foreign.status, 400);
    assert_eq!(foreign.body["error"]["param"], "input[0]");
    let message_with_id_and_status = gateway
        .create(json!({"input": [{"type": "message", "id": "msg_1", "status": "completed", "role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(message_with_id_and_status["status"], "completed");
}
