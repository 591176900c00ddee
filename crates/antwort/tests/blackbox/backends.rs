//! Several backends: routing by model across protocols, aliases, discovery,
//! the model list, and fallback between two instances of a model.

use std::sync::atomic::Ordering;
use std::time::Duration;

use antwort_mock::{Mock, MockOptions};
use serde_json::json;

use crate::harness::{Gateway, output_text, start_with};

async fn mock() -> Mock {
    antwort_mock::start(MockOptions::default()).await.unwrap()
}

/// A gateway whose only backends are `yaml` (the entries of `backends:`);
/// `{a}` and `{b}` in it are replaced by the two mocks' URLs.
async fn gateway_over(yaml: &str, a: &Mock, b: &Mock) -> Gateway {
    let text = format!("backends:\n{yaml}")
        .replace("{a}", &a.url)
        .replace("{b}", &b.url);
    let parsed = antwort::Config::from_yaml(&text).unwrap();
    start_with(move |config| {
        config.engine.backend_url = None;
        config.engine.default_model = None;
        config.engine.models_refresh = Duration::from_millis(100);
        config.backends = parsed.backends;
    })
    .await
}

#[tokio::test]
async fn models_route_to_their_backends_over_either_protocol_and_one_chain_spans_both() {
    let (a, b) = (mock().await, mock().await);
    let gateway = gateway_over(
        r#"
  - name: chat
    url: "{a}"
    models: [{id: chat-model, model: mock-model}]
  - name: native
    url: "{b}"
    protocol: responses
    models: [{id: native-model, model: mock-model, aliases: [native]}]
"#,
        &a,
        &b,
    )
    .await;
    let first = gateway
        .create(json!({"model": "chat-model", "input": "[[reply:over chat]]"}))
        .await;
    assert_eq!(
        first["model"], "chat-model",
        "the name the client asked for"
    );
    assert_eq!(output_text(&first), "over chat");
    assert_eq!(a.stats.chat_requests.load(Ordering::SeqCst), 1);
    assert_eq!(a.stats.last_request().unwrap()["model"], "mock-model");

    let second = gateway
        .create(
            json!({"model": "native", "input": "and now?", "previous_response_id": first["id"]}),
        )
        .await;
    assert_eq!(second["model"], "native");
    assert_eq!(b.stats.responses_requests.load(Ordering::SeqCst), 1);
    let sent = b.stats.last_request().unwrap();
    assert_eq!(sent["model"], "mock-model", "the backend's own name");
    assert_eq!(sent["store"], false, "the backend keeps nothing");
    // The whole chain went along: the first turn's input and answer, then this.
    assert!(
        output_text(&second).contains("messages: 3"),
        "{}",
        output_text(&second)
    );
    assert_eq!(b.stats.chat_requests.load(Ordering::SeqCst), 0);

    let streamed = gateway
        .stream(
            json!({"model": "native-model", "input": "[[tool:get_time:{\"tz\":\"UTC\"}]]",
            "tools": [{"type": "function", "name": "get_time", "parameters": {"type": "object"}}]}),
        )
        .await;
    let call = &streamed.final_response()["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["arguments"], "{\"tz\":\"UTC\"}");
    let deltas: String = streamed
        .of_type("response.function_call_arguments.delta")
        .iter()
        .map(|event| event["delta"].as_str().unwrap())
        .collect();
    assert_eq!(
        deltas, "{\"tz\":\"UTC\"}",
        "the arguments arrive streamed, whole"
    );
}

#[tokio::test]
async fn an_unknown_model_is_a_404_in_the_openai_shape_and_reaches_no_backend() {
    let (a, b) = (mock().await, mock().await);
    let gateway = gateway_over(
        "  - name: a\n    url: \"{a}\"\n    models: [only-this]\n",
        &a,
        &b,
    )
    .await;
    let answer = gateway
        .post("/v1/responses", &json!({"model": "gpt-9", "input": "hi"}))
        .await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "model_not_found");
    assert_eq!(answer.body["error"]["param"], "model");
    assert_eq!(answer.body["error"]["type"], "invalid_request_error");
    assert_eq!(a.stats.requests.load(Ordering::SeqCst), 0);
    let counted = gateway
        .post(
            "/v1/responses/input_tokens",
            &json!({"model": "gpt-9", "input": "hi"}),
        )
        .await;
    assert_eq!(counted.status, 404, "{}", counted.body);
    assert_eq!(counted.body["error"]["code"], "model_not_found");
    let missing = gateway.get("/v1/models/gpt-9").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn the_model_list_names_each_backend_and_discovery_follows_the_backend() {
    let (a, b) = (mock().await, mock().await);
    b.control.set_models(vec!["qwen3:8b".into()]);
    let gateway = gateway_over(
        r#"
  - name: vllm
    url: "{a}"
    models:
      - id: llama-8b
        model: meta-llama/Llama-3.1-8B-Instruct
        aliases: [llama]
        context_window: 8192
      - org/with-slash
  - name: ollama
    url: "{b}"
"#,
        &a,
        &b,
    )
    .await;
    let list = gateway.get("/v1/models").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let ids: Vec<(&str, &str)> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["owned_by"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            ("llama-8b", "vllm"),
            ("llama", "vllm"),
            ("org/with-slash", "vllm"),
            ("qwen3:8b", "ollama")
        ]
    );
    let one = gateway.get("/v1/models/org/with-slash").await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["object"], "model");
    let discovered = gateway.get("/v1/models/qwen3:8b").await;
    assert_eq!(
        discovered.body["max_model_len"], 32768,
        "vLLM's max_model_len, passed on"
    );

    // A model the backend starts serving later is found on the next refresh.
    b.control
        .set_models(vec!["qwen3:8b".into(), "gemma3:4b".into()]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = gateway
        .create(json!({"model": "gemma3:4b", "input": "[[reply:fresh]]"}))
        .await;
    assert_eq!(output_text(&answer), "fresh");
    assert_eq!(b.stats.last_request().unwrap()["model"], "gemma3:4b");
}

#[tokio::test]
async fn a_model_served_twice_falls_back_to_the_second_before_the_first_byte() {
    let (a, b) = (mock().await, mock().await);
    a.control.set_failing(Some(503));
    let gateway = gateway_over(
        r#"
  - name: first
    url: "{a}"
    models: [mock-model]
    resilience: {max_attempts: 2}
  - name: second
    url: "{b}"
    models: [mock-model]
"#,
        &a,
        &b,
    )
    .await;
    let answer = gateway
        .create(json!({"model": "mock-model", "input": "[[reply:from the spare]]"}))
        .await;
    assert_eq!(output_text(&answer), "from the spare");
    assert_eq!(
        a.stats.requests.load(Ordering::SeqCst),
        2,
        "its own retries first"
    );
    assert_eq!(b.stats.requests.load(Ordering::SeqCst), 1);

    // A request the first refuses as bad is not sent to the second.
    a.control.set_failing(Some(400));
    let refused = gateway
        .post(
            "/v1/responses",
            &json!({"model": "mock-model", "input": "hi"}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(b.stats.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn per_model_settings_shape_what_each_model_is_sent() {
    let (a, b) = (mock().await, mock().await);
    let gateway = gateway_over(
        r#"
  - name: openai-like
    url: "{a}"
    reasoning_effort: false
    models:
      - id: o-model
        max_completion_tokens: true
        reasoning_effort: true
      - plain-model
"#,
        &a,
        &b,
    )
    .await;
    let ask = |model: &str| {
        json!({"model": model, "input": "[[reply:ok]]", "max_output_tokens": 64,
            "reasoning": {"effort": "low"}})
    };
    gateway.create(ask("o-model")).await;
    let sent = a.stats.last_request().unwrap();
    assert_eq!(sent["max_completion_tokens"], 64);
    assert!(sent.get("max_tokens").is_none(), "{sent}");
    assert_eq!(sent["reasoning_effort"], "low");
    gateway.create(ask("plain-model")).await;
    let sent = a.stats.last_request().unwrap();
    assert_eq!(sent["max_tokens"], 64);
    assert!(
        sent.get("reasoning_effort").is_none(),
        "the backend's default: not sent: {sent}"
    );
}
