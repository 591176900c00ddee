//! Every input form a client sends, non-streaming, with the echo of request fields.

use serde_json::json;

use crate::harness::{output_text, start};

#[tokio::test]
async fn string_input_answers_with_a_complete_response() {
    let gateway = start().await;
    let response = gateway
        .create(json!({"model": "mock-model", "input": "Hello there"}))
        .await;
    assert_eq!(response["status"], "completed");
    assert_eq!(response["object"], "response");
    assert!(response["id"].as_str().unwrap().starts_with("resp_"));
    assert!(response["completed_at"].is_u64());
    assert_eq!(
        output_text(&response),
        "echo: Hello there | system: - | messages: 1 | images: 0 | tools: -"
    );
    assert!(response["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let message = &response["output"][0];
    assert_eq!(message["status"], "completed");
    assert_eq!(message["content"][0]["annotations"], json!([]));
}

#[tokio::test]
async fn default_model_applies_when_none_is_named() {
    let gateway = start().await;
    let response = gateway.create(json!({"input": "hi"})).await;
    assert_eq!(response["model"], "mock-model");
}

#[tokio::test]
async fn messages_with_and_without_type_and_every_role() {
    let gateway = start().await;
    let response = gateway
        .create(json!({
            "instructions": "first",
            "input": [
                {"role": "system", "content": "sys"},
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev"}]},
                {"role": "user", "content": "earlier question"},
                {"role": "assistant", "content": "earlier answer", "phase": "final_answer"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "typed answer", "annotations": []}]},
                {"role": "user", "content": [{"type": "input_text", "text": "now"}, {"type": "input_text", "text": "this"}]}
            ]
        }))
        .await;
    // instructions, system, developer (as system), user, assistant, assistant, user.
    assert_eq!(
        output_text(&response),
        "echo: now this | system: first / sys / dev | messages: 7 | images: 0 | tools: -"
    );
    assert_eq!(response["instructions"], "first");
}

#[tokio::test]
async fn images_by_url_and_data_url_reach_the_backend() {
    let gateway = start().await;
    let response = gateway
        .create(json!({"input": [{"role": "user", "content": [
            {"type": "input_text", "text": "what are these"},
            {"type": "input_image", "image_url": "https://example.com/cat.png"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}
        ]}]}))
        .await;
    assert!(
        output_text(&response).contains("images: 2"),
        "{}",
        output_text(&response)
    );
}

#[tokio::test]
async fn function_calls_and_outputs_continue_a_conversation() {
    let gateway = start().await;
    let response = gateway
        .create(json!({
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "input": [
                {"role": "user", "content": "weather in Paris?"},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "{\"temp\":21}"}
            ]
        }))
        .await;
    // user, assistant with tool_calls, tool; the reasoning item is not replayed.
    assert!(
        output_text(&response).contains("messages: 3"),
        "{}",
        output_text(&response)
    );
    assert!(output_text(&response).contains("tools: get_weather"));
}

#[tokio::test]
async fn one_and_several_function_calls_come_back_in_order() {
    let gateway = start().await;
    let tools = json!([
        {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}},
        {"type": "function", "name": "get_time", "parameters": {"type": "object"}, "strict": true}
    ]);
    let response = gateway
        .create(json!({"tools": tools, "input": "go [[tool:get_weather:{\"city\":\"Paris\"}]] [[tool:get_time:{\"tz\":\"UTC\"}]]"}))
        .await;
    let output = response["output"].as_array().unwrap();
    assert_eq!(
        output.len(),
        2,
        "no empty message beside the calls: {output:?}"
    );
    assert_eq!(output[0]["type"], "function_call");
    assert_eq!(output[0]["name"], "get_weather");
    assert_eq!(output[0]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(output[1]["name"], "get_time");
    assert_ne!(output[0]["call_id"], output[1]["call_id"]);
    assert_eq!(
        response["tools"],
        tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let mut t = t.clone();
                for key in ["description", "parameters", "strict"] {
                    if t.get(key).is_none() {
                        t[key] = serde_json::Value::Null;
                    }
                }
                t
            })
            .collect::<serde_json::Value>()
    );
}

#[tokio::test]
async fn reasoning_comes_before_the_message() {
    let gateway = start().await;
    let response = gateway
        .create(json!({"model": "mock-reasoning", "input": "why?"}))
        .await;
    let output = response["output"].as_array().unwrap();
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(output[0]["content"][0]["text"], "Thinking about: why?");
    assert_eq!(output[1]["type"], "message");
}

#[tokio::test]
async fn refusal_is_a_refusal_part() {
    let gateway = start().await;
    let response = gateway
        .create(json!({"input": "[[refuse:I cannot help with that]]"}))
        .await;
    assert_eq!(
        response["output"][0]["content"][0],
        json!({"type": "refusal", "refusal": "I cannot help with that"})
    );
}

#[tokio::test]
async fn logprobs_are_returned_when_included() {
    let gateway = start().await;
    let response = gateway
        .create(json!({"input": "[[reply:a b]]", "include": ["message.output_text.logprobs"], "top_logprobs": 2}))
        .await;
    let logprobs = response["output"][0]["content"][0]["logprobs"]
        .as_array()
        .unwrap();
    assert_eq!(logprobs.len(), 2);
    assert_eq!(logprobs[0]["token"], "a ");
    assert_eq!(logprobs[0]["top_logprobs"].as_array().unwrap().len(), 2);
    assert_eq!(response["top_logprobs"], 2);
    let without = gateway.create(json!({"input": "[[reply:a b]]"})).await;
    assert!(without["output"][0]["content"][0].get("logprobs").is_none());
}

#[tokio::test]
async fn structured_output_conforms_to_the_schema() {
    let gateway = start().await;
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"], "additionalProperties": false});
    let response = gateway
        .create(json!({"input": "who?", "text": {"format": {"type": "json_schema", "name": "person", "schema": schema, "strict": true}}}))
        .await;
    let person: serde_json::Value = serde_json::from_str(&output_text(&response)).unwrap();
    assert!(
        person["name"].is_string() && person["age"].is_i64(),
        "{person}"
    );
    assert_eq!(response["text"]["format"]["name"], "person");
    assert_eq!(response["text"]["format"]["strict"], true);
    let object = gateway
        .create(json!({"input": "x", "text": {"format": {"type": "json_object"}}}))
        .await;
    assert!(
        serde_json::from_str::<serde_json::Value>(&output_text(&object))
            .unwrap()
            .is_object()
    );
}

#[tokio::test]
async fn length_limit_is_incomplete() {
    let gateway = start().await;
    let response = gateway
        .create(json!({"input": "[[finish:length]]", "max_output_tokens": 16}))
        .await;
    assert_eq!(response["status"], "incomplete");
    assert_eq!(
        response["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(response["output"][0]["status"], "incomplete");
    assert!(response["completed_at"].is_null());
}

#[tokio::test]
async fn request_fields_are_echoed() {
    let gateway = start().await;
    let response = gateway
        .create(json!({
            "input": "hi", "temperature": 0.2, "top_p": 0.9, "presence_penalty": 0.5,
            "frequency_penalty": -0.5, "max_output_tokens": 100, "max_tool_calls": 3,
            "metadata": {"team": "search"}, "user": "u-1", "store": false,
            "safety_identifier": "s-1", "prompt_cache_key": "k-1", "truncation": "auto",
            "parallel_tool_calls": false, "reasoning": {"effort": "low", "summary": "auto"},
            "service_tier": "flex", "text": {"format": {"type": "text"}, "verbosity": "low"},
            "stream_options": {"include_obfuscation": false}
        }))
        .await;
    for (key, value) in [
        ("temperature", json!(0.2)),
        ("top_p", json!(0.9)),
        ("presence_penalty", json!(0.5)),
        ("frequency_penalty", json!(-0.5)),
        ("max_output_tokens", json!(100)),
        ("max_tool_calls", json!(3)),
        ("metadata", json!({"team": "search"})),
        ("user", json!("u-1")),
        ("store", json!(false)),
        ("safety_identifier", json!("s-1")),
        ("prompt_cache_key", json!("k-1")),
        ("truncation", json!("auto")),
        ("parallel_tool_calls", json!(false)),
        ("reasoning", json!({"effort": "low", "summary": "auto"})),
        ("service_tier", json!("flex")),
        (
            "text",
            json!({"format": {"type": "text"}, "verbosity": "low"}),
        ),
    ] {
        assert_eq!(response[key], value, "{key}");
    }
}

#[tokio::test]
async fn hosted_tools_are_not_offered_and_are_reported() {
    let gateway = start().await;
    let answer = gateway
        .post(
            "/v1/responses",
            &json!({"input": "hi", "tools": [
                {"type": "web_search", "search_context_size": "low"},
                {"type": "function", "name": "f"}
            ]}),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["x-antwort-skipped-tools"], "web_search");
    assert!(crate::harness::output_text(&answer.body).ends_with("tools: f"));
}

#[tokio::test]
async fn allowed_tools_limits_what_the_model_sees() {
    let gateway = start().await;
    let response = gateway
        .create(json!({"input": "hi",
            "tools": [{"type": "function", "name": "a"}, {"type": "function", "name": "b"}],
            "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "b"}]}}))
        .await;
    assert!(output_text(&response).ends_with("tools: b"));
    assert_eq!(response["tool_choice"]["type"], "allowed_tools");
}

#[tokio::test]
async fn charset_in_content_type_is_accepted() {
    let gateway = start().await;
    let answer = gateway
        .post_raw(
            "/v1/responses",
            json!({"input": "hi"}).to_string(),
            "application/json; charset=utf-8",
        )
        .await;
    assert_eq!(answer.status, 200);
}
