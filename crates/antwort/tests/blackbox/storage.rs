//! Durable state over HTTP: every kind of response stored, read back, listed,
//! deleted, and continued with `previous_response_id` and `item_reference`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Gateway, client, message_roles, output_text, spec, start};

async fn get(gateway: &Gateway, id: &str) -> crate::harness::Answer {
    gateway.get(&format!("/v1/responses/{id}")).await
}

/// Waits, with a deadline, until a stored response reaches a terminal status.
async fn wait_until_finished(gateway: &Gateway, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = get(gateway, id).await;
        if answer.status == 200 && answer.body["status"] != "in_progress" {
            return answer.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never finished: {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_created_response_reads_back_as_it_was_returned() {
    let gateway = start().await;
    let created = gateway
        .create(json!({"input": "remember me", "metadata": {"k": "v"}}))
        .await;
    let read = get(&gateway, created["id"].as_str().unwrap()).await;
    assert_eq!(read.status, 200);
    spec().check("ResponseResource", &read.body);
    assert_eq!(read.body, created);
}

#[tokio::test]
async fn streamed_failed_and_incomplete_responses_are_stored_too() {
    let gateway = start().await;
    for (input, status) in [
        ("streamed", "completed"),
        ("[[cut:2]] a b c", "failed"),
        ("[[finish:length]]", "incomplete"),
    ] {
        let sse = gateway.stream(json!({"input": input})).await;
        let id = sse.final_response()["id"].as_str().unwrap();
        let read = get(&gateway, id).await;
        assert_eq!(read.status, 200, "{input}");
        assert_eq!(read.body["status"], status, "{input}");
        assert_eq!(
            &read.body,
            sse.final_response(),
            "{input}: stored is what the terminal event said"
        );
    }
}

#[tokio::test]
async fn store_false_is_not_stored() {
    let gateway = start().await;
    let created = gateway
        .create(json!({"input": "forget me", "store": false}))
        .await;
    let read = get(&gateway, created["id"].as_str().unwrap()).await;
    assert_eq!(read.status, 404);
    assert_eq!(read.body["error"]["code"], "not_found");
}

#[tokio::test]
async fn delete_removes_and_answers_in_the_openai_shape() {
    let gateway = start().await;
    let id = gateway.create(json!({"input": "x"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delete = || {
        client()
            .delete(format!("{}/v1/responses/{id}", gateway.url))
            .send()
    };
    let deleted = delete().await.unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        deleted.json::<Value>().await.unwrap(),
        json!({"id": id, "object": "response", "deleted": true})
    );
    assert_eq!(get(&gateway, &id).await.status, 404);
    assert_eq!(delete().await.unwrap().status(), 404);
}

#[tokio::test]
async fn list_paginates_with_cursors_and_filters() {
    let gateway = start().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let created = gateway.create(json!({"input": format!("n{i}"), "metadata": {"parity": if i % 2 == 0 { "even" } else { "odd" }}})).await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let first = gateway.get("/v1/responses?limit=2").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["object"], "list");
    let page: Vec<&str> = first.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, [ids[2].as_str(), ids[1].as_str()], "newest first");
    assert_eq!(first.body["has_more"], true);
    assert_eq!(first.body["first_id"], ids[2].as_str());
    assert_eq!(first.body["last_id"], ids[1].as_str());
    let next = gateway
        .get(&format!("/v1/responses?limit=2&after={}", ids[1]))
        .await;
    assert_eq!(next.body["data"][0]["id"], ids[0].as_str());
    assert_eq!(next.body["has_more"], false);
    let even = gateway
        .get("/v1/responses?order=asc&metadata%5Bparity%5D=even")
        .await;
    let even: Vec<&str> = even.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(even, [ids[0].as_str(), ids[2].as_str()]);
    let bad = gateway.get("/v1/responses?limit=1000").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["param"], "limit");
}

#[tokio::test]
async fn input_items_are_listed_with_ids() {
    let gateway = start().await;
    let created = gateway
        .create(
            json!({"input": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}),
        )
        .await;
    let items = gateway
        .get(&format!(
            "/v1/responses/{}/input_items?order=asc",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(items.status, 200);
    let data = items.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    // The shorthand a client sent comes back normalised, as OpenAI returns it.
    assert_eq!(
        data[0]["content"],
        json!([{"type": "input_text", "text": "a"}])
    );
    assert_eq!(data[0]["type"], "message");
    assert_eq!(data[0]["status"], "completed");
    assert!(data[0]["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(items.body["first_id"], data[0]["id"]);
    let missing = gateway.get("/v1/responses/resp_nope/input_items").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn previous_response_id_replays_the_conversation_without_instructions() {
    let gateway = start().await;
    let first = gateway
        .create(json!({"instructions": "be formal", "input": "first question"}))
        .await;
    let second = gateway
        .create(json!({"input": "second question", "previous_response_id": first["id"]}))
        .await;
    // user, assistant (the first answer), user; the first turn's instructions stay behind.
    assert_eq!(
        output_text(&second),
        "echo: second question | system: - | messages: 3 | images: 0 | tools: -"
    );
    assert_eq!(second["previous_response_id"], first["id"]);
    let third = gateway
        .create(json!({"input": "third", "previous_response_id": second["id"], "instructions": "be brief"}))
        .await;
    assert!(
        output_text(&third).contains("system: be brief | messages: 6"),
        "{}",
        output_text(&third)
    );
}

#[tokio::test]
async fn a_chain_through_function_calls_replays_calls_and_outputs() {
    let gateway = start().await;
    let tools = json!([{"type": "function", "name": "get_weather"}]);
    let first = gateway
        .create(
            json!({"tools": tools, "input": "weather? [[tool:get_weather:{\"city\":\"Paris\"}]]"}),
        )
        .await;
    let call_id = first["output"][0]["call_id"].as_str().unwrap();
    let second = gateway
        .create(json!({"tools": tools, "previous_response_id": first["id"],
            "input": [{"type": "function_call_output", "call_id": call_id, "output": "{\"temp\":21}"}, {"role": "user", "content": "[[echo_request]]"}]}))
        .await;
    let sent: Value = serde_json::from_str(&output_text(&second)).unwrap();
    let roles = message_roles(&sent);
    assert_eq!(roles, ["user", "assistant", "tool", "user"]);
    assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], call_id);
    assert_eq!(sent["messages"][2]["tool_call_id"], call_id);
}

#[tokio::test]
async fn a_missing_previous_response_is_a_400() {
    let gateway = start().await;
    let answer = gateway
        .post(
            "/v1/responses",
            &json!({"input": "x", "previous_response_id": "resp_gone"}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"]["code"], "previous_response_not_found");
    assert_eq!(answer.body["error"]["param"], "previous_response_id");
}

#[tokio::test]
async fn item_references_resolve_to_stored_items() {
    let gateway = start().await;
    let first = gateway.create(json!({"input": "remember this"})).await;
    let input_id = gateway
        .get(&format!(
            "/v1/responses/{}/input_items",
            first["id"].as_str().unwrap()
        ))
        .await
        .body["data"][0]["id"]
        .clone();
    let output_id = first["output"][0]["id"].clone();
    let second = gateway
        .create(json!({"input": [
            {"type": "item_reference", "id": input_id},
            {"id": output_id},
            {"role": "user", "content": "and now?"}
        ]}))
        .await;
    assert!(
        output_text(&second).contains("messages: 3"),
        "{}",
        output_text(&second)
    );
}

#[tokio::test]
async fn a_stored_stream_finishes_and_is_saved_after_its_client_leaves() {
    let gateway = start().await;
    let id = crate::harness::stream_then_leave(
        &gateway.url,
        json!({"input": "[[tokens:30]] [[delay_ms:10]]"}),
    )
    .await;
    let stored = wait_until_finished(&gateway, &id).await;
    assert_eq!(stored["status"], "completed");
    assert_eq!(output_text(&stored), "lorem ".repeat(30));
    assert_eq!(
        gateway
            .mock_stats
            .streams_cancelled
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}
