//! What the backend receives, on each protocol whichever the suite runs: the
//! mock's `[[echo_request]]` answers with the exact Chat Completions body the
//! gateway sent, `[[echo_raw_request]]` with the exact Responses body.

use antwort::config::Provider;
use serde_json::{Value, json};

use crate::harness::{Gateway, output_text, start_with};

/// A gateway that speaks Chat Completions to the mock.
async fn start() -> Gateway {
    start_with(|config| config.engine.provider = Provider::Vllm).await
}

/// A gateway that speaks the Responses API to the mock.
async fn start_over_responses() -> Gateway {
    start_with(|config| config.engine.provider = Provider::Responses).await
}

/// The Responses body the backend received for `body`.
async fn sent_raw(gateway: &Gateway, mut body: Value) -> Value {
    match body["input"].as_array_mut() {
        Some(items) => items.push(json!({"role": "user", "content": "[[echo_raw_request]]"})),
        None => {
            let text = body["input"].as_str().unwrap_or_default().to_owned();
            body["input"] = json!(format!("{text} [[echo_raw_request]]"));
        }
    }
    let response = gateway.create(body).await;
    serde_json::from_str(&output_text(&response)).unwrap()
}

async fn sent(gateway: &Gateway, mut body: Value) -> Value {
    let text = body["input"].as_str().unwrap_or_default().to_owned();
    if body["input"].is_string() {
        body["input"] = json!(format!("{text} [[echo_request]]"));
    }
    let response = gateway.create(body).await;
    serde_json::from_str(&output_text(&response)).unwrap()
}

#[tokio::test]
async fn sampling_and_format_options_are_translated() {
    let gateway = start().await;
    let body = sent(
        &gateway,
        json!({"input": "hi", "temperature": 0.3, "top_p": 0.8, "presence_penalty": 1.0,
            "frequency_penalty": 0.5, "max_output_tokens": 50, "user": "u",
            "reasoning": {"effort": "high"},
            "include": ["message.output_text.logprobs"], "top_logprobs": 4,
            "text": {"format": {"type": "json_schema", "name": "o", "description": "d", "schema": {"type": "object"}, "strict": true}}}),
    )
    .await;
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(body["top_p"], 0.8);
    assert_eq!(body["presence_penalty"], 1.0);
    assert_eq!(body["frequency_penalty"], 0.5);
    assert_eq!(body["max_tokens"], 50);
    assert_eq!(body["user"], "u");
    assert_eq!(body["reasoning_effort"], "high");
    assert_eq!(body["logprobs"], true);
    assert_eq!(body["top_logprobs"], 4);
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "o", "description": "d", "schema": {"type": "object"}, "strict": true}})
    );
    assert_eq!(body["stream"], false);
    assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
    assert!(
        body.get("parallel_tool_calls").is_none(),
        "never sent without tools"
    );
}

#[tokio::test]
async fn tool_choice_forms_are_translated() {
    let gateway = start().await;
    let tools = json!([{"type": "function", "name": "f", "parameters": {"type": "object"}}]);
    let named = sent(&gateway, json!({"input": "x", "tools": tools, "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": false})).await;
    assert_eq!(
        named["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert_eq!(named["parallel_tool_calls"], false);
    assert_eq!(
        named["tools"],
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
    );
    for mode in ["auto", "none", "required"] {
        let body = sent(
            &gateway,
            json!({"input": "x", "tools": tools, "tool_choice": mode}),
        )
        .await;
        assert_eq!(body["tool_choice"], mode);
    }
    let allowed = sent(&gateway, json!({"input": "x", "tools": tools,
        "tool_choice": {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "f"}]}})).await;
    assert_eq!(allowed["tool_choice"], "required");
}

#[tokio::test]
async fn conversation_items_become_chat_messages() {
    let gateway = start().await;
    let response = gateway
        .create(json!({"instructions": "rules", "input": [
            {"role": "developer", "content": "dev"},
            {"role": "user", "content": [{"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "high"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "42"}]},
            {"role": "user", "content": "[[echo_request]]"}
        ]}))
        .await;
    let body: Value = serde_json::from_str(&output_text(&response)).unwrap();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "rules"},
            {"role": "system", "content": "dev"},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA", "detail": "high"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "content": "42", "tool_call_id": "c1"},
            {"role": "user", "content": "[[echo_request]]"}
        ])
    );
}

#[tokio::test]
async fn streaming_asks_for_usage() {
    let gateway = start().await;
    let sse = gateway.stream(json!({"input": "[[echo_request]]"})).await;
    let body: Value = serde_json::from_str(&output_text(sse.final_response())).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn a_responses_backend_gets_the_turn_statelessly_with_every_option() {
    let gateway = start_over_responses().await;
    let body = sent_raw(
        &gateway,
        json!({"input": "hi", "instructions": "rules", "temperature": 0.3, "top_p": 0.8,
            "max_output_tokens": 50, "user": "u", "reasoning": {"effort": "high"},
            "include": ["message.output_text.logprobs"], "top_logprobs": 4,
            "text": {"format": {"type": "json_schema", "name": "o", "schema": {"type": "object"}, "strict": true}}}),
    )
    .await;
    assert_eq!(body["store"], false, "the gateway keeps the state");
    assert_eq!(body["stream"], false);
    assert_eq!(body["instructions"], "rules");
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(body["top_p"], 0.8);
    assert_eq!(body["max_output_tokens"], 50);
    assert_eq!(body["user"], "u");
    assert_eq!(body["reasoning"]["effort"], "high");
    assert_eq!(body["top_logprobs"], 4);
    assert_eq!(body["text"]["format"]["type"], "json_schema");
    assert_eq!(body["text"]["format"]["schema"], json!({"type": "object"}));
    assert!(body.get("previous_response_id").is_none());
    assert!(body.get("tool_choice").is_none(), "never without tools");
}

#[tokio::test]
async fn a_responses_backend_gets_flat_tools_and_the_whole_chain_as_items() {
    let gateway = start_over_responses().await;
    let tools = json!([{"type": "function", "name": "f", "parameters": {"type": "object"}}]);
    let first = gateway
        .create(json!({"input": "[[tool:f:{}]]", "tools": tools}))
        .await;
    let call_id = first["output"][0]["call_id"].as_str().unwrap();
    let body = sent_raw(
        &gateway,
        json!({"previous_response_id": first["id"], "tools": tools,
            "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": false,
            "input": [{"type": "function_call_output", "call_id": call_id, "output": "42"}]}),
    )
    .await;
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "name": "f"})
    );
    assert_eq!(body["parallel_tool_calls"], false);
    assert_eq!(
        body["tools"][0]["name"], "f",
        "flat, as the Responses API has them"
    );
    let kinds: Vec<&str> = body["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["type"].as_str().unwrap_or("message"))
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "function_call",
            "function_call_output",
            "message"
        ]
    );
    let call = &body["input"][1];
    assert_eq!(call["call_id"], call_id);
    assert!(
        call.get("id").is_none(),
        "the gateway's ids stay the gateway's"
    );
}

#[tokio::test]
async fn a_streamed_turn_streams_from_a_responses_backend() {
    let gateway = start_over_responses().await;
    let sse = gateway
        .stream(json!({"input": "[[echo_raw_request]]"}))
        .await;
    let body: Value = serde_json::from_str(&output_text(sse.final_response())).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["store"], false);
}
