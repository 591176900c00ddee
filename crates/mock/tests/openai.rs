//! Drives the mock's OpenAI-compatible side over HTTP, as the gateway does: the
//! Responses endpoint against the Chat one, its SSE events, the instance
//! controls, the model list and the tokenizer. Each test starts its own mock, so
//! the counters and controls it reads are its own.

#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn, time and read rows directly; the funnels are for the product code"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a panic is the failure report"
)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use antwort_mock::{Mock, MockOptions};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};

async fn mock() -> Mock {
    antwort_mock::start(MockOptions::default()).await.unwrap()
}

/// A plain HTTP client from the workspace's one client stack (which installs the
/// crypto provider reqwest is built without).
fn http() -> reqwest::Client {
    antwort_egress::client_builder(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn post(url: String, body: Value) -> reqwest::Response {
    http().post(url).json(&body).send().await.unwrap()
}

/// The events of a streamed Responses answer, each checked to name its type.
async fn events(mock: &Mock, body: Value) -> Vec<Value> {
    let response = post(format!("{}/responses", mock.url), body).await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream().eventsource();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        let event = event.unwrap();
        let data: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(event.event, data["type"].as_str().unwrap());
        events.push(data);
    }
    events
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn responses_reflect_a_conversation_as_chat_does() {
    let mock = mock().await;
    let responses = json!({"model": "mock-model", "instructions": "be brief", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "found it"}],
        "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
        "store": false});
    let chat = json!({"model": "mock-model", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "auto"}}]},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "content": "found it", "tool_call_id": "c1"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]});

    let answer: Value = post(format!("{}/responses", mock.url), responses.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mock.stats.last_request().unwrap()["store"], false);
    let completion: Value = post(format!("{}/chat/completions", mock.url), chat)
        .await
        .json()
        .await
        .unwrap();

    let text = answer["output"][0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        text,
        "echo: look | system: be brief | messages: 4 | images: 1 | tools: lookup | tool_results: found it"
    );
    assert_eq!(text, completion["choices"][0]["message"]["content"]);
    assert_eq!(answer["object"], "response");
    assert_eq!(answer["status"], "completed");
    assert_eq!(
        answer["usage"]["input_tokens"],
        completion["usage"]["prompt_tokens"]
    );
    assert_eq!(mock.stats.responses_requests.load(Ordering::SeqCst), 1);
    assert_eq!(mock.stats.chat_requests.load(Ordering::SeqCst), 1);
    assert_eq!(mock.stats.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn streamed_responses_build_up_the_final_response() {
    let mock = mock().await;
    let events = events(
        &mock,
        json!({"model": "m", "stream": true, "reasoning": {"summary": "auto"},
            "input": "[[reasoning:let me see]] [[reply:the answer is 42]] [[tool:calc:{\"x\":1}]]"}),
    )
    .await;
    let kinds = kinds(&events);
    assert_eq!(kinds[..2], ["response.created", "response.in_progress"]);
    assert_eq!(kinds.last(), Some(&"response.completed"));
    let numbers: Vec<u64> = events
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
    let joined = |kind: &str| -> String {
        events
            .iter()
            .filter(|e| e["type"] == kind)
            .map(|e| e["delta"].as_str().unwrap())
            .collect()
    };
    assert_eq!(joined("response.output_text.delta"), "the answer is 42");
    assert_eq!(joined("response.reasoning_text.delta"), "let me see");
    assert_eq!(
        joined("response.reasoning_summary_text.delta"),
        "let me see"
    );
    assert_eq!(
        joined("response.function_call_arguments.delta"),
        "{\"x\":1}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .count(),
        4,
        "word by word"
    );

    // The items announced done are the final response's output.
    let done: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "response.output_item.done")
        .map(|e| &e["item"])
        .collect();
    let output = events.last().unwrap()["response"]["output"]
        .as_array()
        .unwrap();
    assert_eq!(done, output.iter().collect::<Vec<_>>());
    let types: Vec<&str> = output.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["reasoning", "message", "function_call"]);
    assert_eq!(mock.stats.streams_started.load(Ordering::SeqCst), 1);
    assert_eq!(mock.stats.streams_completed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn responses_parse_as_the_gateways_api_types() {
    let mock = mock().await;
    let input = "[[reasoning:hmm]] [[reply:yes]] [[refuse:no]] [[tool:f:{}]]";
    let body = json!({"model": "m", "input": input, "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "low", "summary": "auto"}, "top_logprobs": 2, "store": false});
    let answer: Value = post(format!("{}/responses", mock.url), body.clone())
        .await
        .json()
        .await
        .unwrap();
    let parsed: antwort_api::Response =
        serde_json::from_value(answer.clone()).unwrap_or_else(|e| panic!("{e}: {answer:#}"));
    assert_eq!(parsed.output.len(), 3);
    assert!(!parsed.store);

    let mut streamed = body;
    streamed["stream"] = json!(true);
    for event in events(&mock, streamed).await {
        if let Some(response) = event.get("response") {
            serde_json::from_value::<antwort_api::Response>(response.clone())
                .unwrap_or_else(|e| panic!("{e}: {event:#}"));
        }
        if let Some(item) = event.get("item") {
            serde_json::from_value::<antwort_api::Item>(item.clone())
                .unwrap_or_else(|e| panic!("{e}: {event:#}"));
        }
    }
}

#[tokio::test]
async fn streamed_responses_faults() {
    let mock = mock().await;
    let cut = events(
        &mock,
        json!({"model": "m", "stream": true, "input": "[[reply:a b c]] [[cut:2]]"}),
    )
    .await;
    assert_eq!(cut.len(), 4, "the two opening events and two past them");
    assert!(!kinds(&cut).contains(&"response.completed"));

    let long = events(
        &mock,
        json!({"model": "m", "stream": true, "input": "[[reply:a b]] [[finish:length]]"}),
    )
    .await;
    let last = long.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );

    let failed = events(
        &mock,
        json!({"model": "m", "stream": true, "input": "[[reply:a b c]] [[stream_error:overloaded]]"}),
    )
    .await;
    assert_eq!(
        kinds(&failed)[failed.len() - 2..],
        ["error", "response.failed"]
    );
    assert_eq!(failed[failed.len() - 2]["message"], "overloaded");

    // Held: the terminal event arrives, the body does not end.
    let response = post(
        format!("{}/responses", mock.url),
        json!({"model": "m", "stream": true, "input": "[[reply:hi]] [[hold_after_finish]]"}),
    )
    .await;
    let mut stream = response.bytes_stream().eventsource();
    let mut seen = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(300), stream.next()).await
    {
        seen.push(event.unwrap().event);
    }
    assert_eq!(seen.last().map(String::as_str), Some("response.completed"));
    drop(stream);
    // Every stream so far ended as the mock chose: none counts as cancelled.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(mock.stats.streams_cancelled.load(Ordering::SeqCst), 0);
    assert_eq!(mock.stats.streams_completed.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_client_leaving_a_responses_stream_is_seen() {
    let mock = mock().await;
    let response = post(
        format!("{}/responses", mock.url),
        json!({"model": "m", "stream": true, "input": "[[tokens:50]] [[delay_ms:20]]"}),
    )
    .await;
    let mut stream = response.bytes_stream().eventsource();
    while let Some(event) = stream.next().await {
        if event.unwrap().event == "response.output_text.delta" {
            break;
        }
    }
    drop(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(mock.stats.streams_cancelled.load(Ordering::SeqCst), 1);
    assert_eq!(mock.stats.streams_completed.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn chat_streams_report_a_mid_stream_error() {
    let mock = mock().await;
    let response = post(
        format!("{}/chat/completions", mock.url),
        json!({"model": "m", "stream": true, "messages": [
            {"role": "user", "content": "[[reply:one two three]] [[stream_error:gpu lost]]"}]}),
    )
    .await;
    let body = response.text().await.unwrap();
    let data: Vec<&str> = body
        .split("\n\n")
        .filter_map(|frame| frame.strip_prefix("data: "))
        .collect();
    assert_eq!(data.len(), 4, "{body}");
    let first: Value = serde_json::from_str(data[1]).unwrap();
    assert_eq!(first["choices"][0]["delta"]["content"], "one ");
    let error: Value = serde_json::from_str(data[2]).unwrap();
    assert_eq!(error["error"]["message"], "gpu lost");
    assert_eq!(data[3], "[DONE]");
}

#[tokio::test]
async fn fail_next_fails_then_answers_and_failing_holds() {
    let mock = mock().await;
    mock.control.fail_next(1, 503);
    mock.control.set_retry_after(Some(2));
    let body = json!({"model": "m", "input": "hi"});
    let failed = post(format!("{}/responses", mock.url), body.clone()).await;
    assert_eq!(failed.status(), 503);
    assert_eq!(failed.headers()["retry-after"], "2");
    let error: Value = failed.json().await.unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("503"));
    let ok = post(format!("{}/responses", mock.url), body.clone()).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(mock.stats.requests.load(Ordering::SeqCst), 2);

    // The same over HTTP, for scripts, on the other endpoint.
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let state: Value = post(
        format!("{}/mock/control", mock.root),
        json!({"failing": 502, "retry_after": null}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(state["failing"], 502);
    for _ in 0..3 {
        let failed = post(format!("{}/chat/completions", mock.url), chat.clone()).await;
        assert_eq!(failed.status(), 502);
        assert!(failed.headers().get("retry-after").is_none());
    }
    post(
        format!("{}/mock/control", mock.root),
        json!({"failing": null}),
    )
    .await;
    let ok = post(format!("{}/chat/completions", mock.url), chat).await;
    assert_eq!(ok.status(), 200);
    let typo = post(format!("{}/mock/control", mock.root), json!({"fail": 1})).await;
    assert_eq!(typo.status(), 400);
}

#[tokio::test]
async fn abandoned_requests_are_counted() {
    let mock = mock().await;
    let impatient = antwort_egress::client_builder(Duration::from_secs(1))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let slow =
        json!({"model": "m", "messages": [{"role": "user", "content": "[[status_ms:2000]]"}]});
    let gave_up = impatient
        .post(format!("{}/chat/completions", mock.url))
        .json(&slow)
        .send()
        .await;
    assert!(gave_up.is_err());

    mock.control.set_hang(true);
    let gave_up = impatient
        .post(format!("{}/responses", mock.url))
        .json(&json!({"model": "m", "input": "hi"}))
        .send()
        .await;
    assert!(gave_up.is_err());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(mock.stats.requests_hung.load(Ordering::SeqCst), 1);
    assert_eq!(mock.stats.requests_abandoned.load(Ordering::SeqCst), 2);

    mock.control.set_hang(false);
    let ok = post(
        format!("{}/responses", mock.url),
        json!({"model": "m", "input": "hi"}),
    )
    .await;
    assert_eq!(ok.status(), 200);
    let stats: Value = http()
        .get(format!("{}/mock/stats", mock.root))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests_abandoned"], 2);
    assert_eq!(stats["responses_requests"], 2);
}

#[tokio::test]
async fn models_change_at_runtime_and_instances_are_independent() {
    let first = mock().await;
    let second = antwort_mock::start(MockOptions {
        models: vec!["other".into()],
        max_model_len: 4096,
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let list = |mock: &Mock| {
        let url = format!("{}/models", mock.url);
        async move {
            let models: Value = http().get(url).send().await.unwrap().json().await.unwrap();
            models["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["id"].as_str().unwrap().to_owned(),
                        m["max_model_len"].as_u64().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(&first).await,
        [
            ("mock-model".to_owned(), 32768),
            ("mock-reasoning".to_owned(), 32768)
        ]
    );
    assert_eq!(list(&second).await, [("other".to_owned(), 4096)]);

    first.control.set_models(vec!["new-model".into()]);
    first.control.fail_next(5, 500);
    assert_eq!(list(&first).await, [("new-model".to_owned(), 32768)]);
    assert_eq!(list(&second).await, [("other".to_owned(), 4096)]);
    let ok = post(
        format!("{}/responses", second.url),
        json!({"model": "m", "input": "hi"}),
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(first.stats.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn tokenize_counts_words_and_messages() {
    let mock = mock().await;
    let prompt: Value = post(
        format!("{}/tokenize", mock.root),
        json!({"model": "mock-model", "prompt": "the quick  brown fox"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(prompt["count"], 4);
    assert_eq!(prompt["tokens"].as_array().unwrap().len(), 4);
    assert_eq!(prompt["max_model_len"], 32768);

    let messages: Value = post(
        format!("{}/tokenize", mock.root),
        json!({"model": "mock-model", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello there world"}]}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    // 2 + 3 words, and one token for each of the 2 messages.
    assert_eq!(messages["count"], 7);
    assert_eq!(messages["tokens"][0], antwort_mock::vllm::MESSAGE_TOKEN);

    let bad = post(format!("{}/tokenize", mock.root), json!({"model": "m"})).await;
    assert_eq!(bad.status(), 400);
    let not_v1 = post(format!("{}/tokenize", mock.url), json!({"prompt": "x"})).await;
    assert_eq!(not_v1.status(), 404);
    assert_eq!(mock.stats.tokenize_requests.load(Ordering::SeqCst), 3);
    assert_eq!(mock.stats.requests.load(Ordering::SeqCst), 0);
}
