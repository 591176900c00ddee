//! The Conversations API over HTTP, and `conversation` on a create.

use serde_json::{Value, json};

use crate::harness::{Gateway, client, output_text, start};

async fn send(
    gateway: &Gateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client().request(method, format!("{}{path}", gateway.url));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn conversation_lifecycle() {
    let gateway = start().await;
    let (status, created) = send(
        &gateway,
        reqwest::Method::POST,
        "/v1/conversations",
        Some(
            json!({"items": [{"role": "user", "content": "hello"}], "metadata": {"topic": "demo"}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["object"], "conversation");
    assert_eq!(created["metadata"], json!({"topic": "demo"}));
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("conv_"));

    let (_, read) = send(
        &gateway,
        reqwest::Method::GET,
        &format!("/v1/conversations/{id}"),
        None,
    )
    .await;
    assert_eq!(read, created);
    let (_, updated) = send(
        &gateway,
        reqwest::Method::POST,
        &format!("/v1/conversations/{id}"),
        Some(json!({"metadata": {"topic": "new"}})),
    )
    .await;
    assert_eq!(updated["metadata"], json!({"topic": "new"}));

    let (status, added) = send(
        &gateway,
        reqwest::Method::POST,
        &format!("/v1/conversations/{id}/items"),
        Some(json!({"items": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi!"}]}]})),
    )
    .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["object"], "list");
    let added_id = added["data"][0]["id"].as_str().unwrap().to_owned();

    let (_, items) = send(
        &gateway,
        reqwest::Method::GET,
        &format!("/v1/conversations/{id}/items?order=asc"),
        None,
    )
    .await;
    let contents: Vec<&Value> = items["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["content"])
        .collect();
    assert_eq!(contents.len(), 2);
    // Returned as the OpenAI API returns it, whatever shorthand was sent.
    assert_eq!(
        contents[0],
        &json!([{"type": "input_text", "text": "hello"}])
    );
    assert_eq!(items["data"][0]["status"], "completed");

    let (status, item) = send(
        &gateway,
        reqwest::Method::GET,
        &format!("/v1/conversations/{id}/items/{added_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(item["role"], "assistant");
    let (status, after_delete) = send(
        &gateway,
        reqwest::Method::DELETE,
        &format!("/v1/conversations/{id}/items/{added_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(after_delete["id"], id.as_str());
    let (status, _) = send(
        &gateway,
        reqwest::Method::GET,
        &format!("/v1/conversations/{id}/items/{added_id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);

    let (status, deleted) = send(
        &gateway,
        reqwest::Method::DELETE,
        &format!("/v1/conversations/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"id": id, "object": "conversation.deleted", "deleted": true})
    );
    let (status, missing) = send(
        &gateway,
        reqwest::Method::GET,
        &format!("/v1/conversations/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "not_found");
}

#[tokio::test]
async fn responses_in_a_conversation_see_it_and_extend_it() {
    let gateway = start().await;
    let (_, conversation) = send(
        &gateway,
        reqwest::Method::POST,
        "/v1/conversations",
        Some(json!({"items": [{"role": "user", "content": "my name is Ada"}]})),
    )
    .await;
    let id = conversation["id"].as_str().unwrap();
    let first = gateway
        .create(json!({"input": "what is my name?", "conversation": id}))
        .await;
    // The conversation's message, then the new input.
    assert!(
        output_text(&first).contains("messages: 2"),
        "{}",
        output_text(&first)
    );
    assert_eq!(first["conversation"], json!({"id": id}));
    let second = gateway
        .create(json!({"input": "and again?", "conversation": {"id": id}, "store": false}))
        .await;
    // Ada, question, answer, new question.
    assert!(
        output_text(&second).contains("messages: 4"),
        "{}",
        output_text(&second)
    );
    let (_, items) = send(
        &gateway,
        reqwest::Method::GET,
        &format!("/v1/conversations/{id}/items?order=asc&limit=100"),
        None,
    )
    .await;
    assert_eq!(
        items["data"].as_array().unwrap().len(),
        5,
        "an unstored response still joins its conversation"
    );
}

#[tokio::test]
async fn conversation_errors() {
    let gateway = start().await;
    let missing = gateway
        .post(
            "/v1/responses",
            &json!({"input": "x", "conversation": "conv_nope"}),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["param"], "conversation");
    let both = gateway
        .post(
            "/v1/responses",
            &json!({"input": "x", "conversation": "conv_a", "previous_response_id": "resp_b"}),
        )
        .await;
    assert_eq!(both.status, 400);
    assert_eq!(both.body["error"]["param"], "conversation");
    let (status, bad) = send(
        &gateway,
        reqwest::Method::POST,
        "/v1/conversations",
        Some(json!({"items": "nope"})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    let (status, empty) = send(&gateway, reqwest::Method::POST, "/v1/conversations", None).await;
    assert_eq!(status, 200, "a body is optional: {empty}");
}
