//! The Responses request body a model turn becomes.

use super::*;
use antwort_api::CreateResponseRequest;
use antwort_engine::prepare::plan;

fn model_request(request: &str) -> ModelRequest {
    let request = CreateResponseRequest::from_json(request.as_bytes()).unwrap();
    plan(
        request,
        Some("m"),
        "resp_1".into(),
        0,
        &[],
        &antwort_engine::Scope::default(),
    )
    .unwrap()
    .model_request
}

fn body_of(request: &ModelRequest, options: ModelOptions) -> Value {
    serde_json::to_value(responses_request(request, options)).unwrap()
}

fn body_for(request: &str) -> Value {
    body_of(&model_request(request), ModelOptions::default())
}

#[test]
fn every_request_is_stateless_and_streams_without_padding() {
    let body = body_for(r#"{"input":"hi","instructions":"be brief","stream":true}"#);
    assert_eq!(body["store"], false);
    assert_eq!(body["stream"], true);
    assert_eq!(body["instructions"], "be brief");
    assert_eq!(
        body["stream_options"],
        json!({"include_obfuscation": false})
    );
    assert_eq!(
        body["input"],
        json!([{"type": "message", "role": "user", "content": "hi"}])
    );
    for absent in [
        "tools",
        "tool_choice",
        "text",
        "reasoning",
        "include",
        "metadata",
    ] {
        assert!(body.get(absent).is_none(), "{absent} in {body}");
    }
    let body = body_for(r#"{"input":"hi","store":true}"#);
    assert_eq!(
        body["store"], false,
        "the gateway stores, never the backend"
    );
    assert!(body.get("stream_options").is_none());
}

#[test]
fn tools_are_flat_and_strict_only_when_they_say_so() {
    let body = body_for(
        r#"{"input":"hi","tools":[
            {"type":"function","name":"w","description":"weather","parameters":{"type":"object"}},
            {"type":"function","name":"s","strict":true,"parameters":{"type":"object","additionalProperties":false}},
            {"type":"function","name":"bare"}],
            "tool_choice":{"type":"function","name":"w"},"parallel_tool_calls":false}"#,
    );
    assert_eq!(
        body["tools"],
        json!([
            {"type": "function", "name": "w", "description": "weather",
             "parameters": {"type": "object"}, "strict": false},
            {"type": "function", "name": "s",
             "parameters": {"type": "object", "additionalProperties": false}, "strict": true},
            {"type": "function", "name": "bare",
             "parameters": {"type": "object", "properties": {}}, "strict": false},
        ])
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "name": "w"})
    );
    assert_eq!(body["parallel_tool_calls"], false);
}

#[test]
fn tool_choice_modes_and_none_without_tools() {
    let tools = r#""tools":[{"type":"function","name":"f"}]"#;
    for (choice, sent) in [
        (r#""none""#, json!("none")),
        (r#""auto""#, json!("auto")),
        (r#""required""#, json!("required")),
    ] {
        let body = body_for(&format!(
            r#"{{"input":"hi",{tools},"tool_choice":{choice}}}"#
        ));
        assert_eq!(body["tool_choice"], sent);
    }
    let mut request = model_request(r#"{"input":"hi"}"#);
    request.tool_choice = ModelToolChoice::Required;
    let body = body_of(&request, ModelOptions::default());
    assert!(body.get("tool_choice").is_none(), "{body}");
}

#[test]
fn hosted_tools_go_as_given_and_count_as_tools() {
    let mut request = model_request(r#"{"input":"hi"}"#);
    request.tool_choice = ModelToolChoice::Required;
    request.hosted_tools = vec![
        serde_json::from_value(json!({"type": "web_search", "search_context_size": "low"}))
            .unwrap(),
    ];
    let body = body_of(&request, ModelOptions::default());
    assert_eq!(
        body["tools"],
        json!([{"type": "web_search", "search_context_size": "low"}])
    );
    assert_eq!(body["tool_choice"], "required");
}

#[test]
fn reasoning_effort_is_dropped_for_a_model_without_it() {
    let request = model_request(
        r#"{"input":"hi","reasoning":{"effort":"high","summary":"auto"},"max_output_tokens":64}"#,
    );
    let body = body_of(&request, ModelOptions::default());
    assert_eq!(
        body["reasoning"],
        json!({"effort": "high", "summary": "auto"})
    );
    assert_eq!(body["max_output_tokens"], 64);
    let no_effort = ModelOptions {
        reasoning_effort: false,
        ..ModelOptions::default()
    };
    assert_eq!(
        body_of(&request, no_effort)["reasoning"],
        json!({"summary": "auto"})
    );
    let effort_only = model_request(r#"{"input":"hi","reasoning":{"effort":"low"}}"#);
    assert!(body_of(&effort_only, no_effort).get("reasoning").is_none());
    let o_series = ModelOptions {
        max_completion_tokens: true,
        ..ModelOptions::default()
    };
    let body = body_of(&request, o_series);
    assert_eq!(body["max_output_tokens"], 64, "one name in Responses");
    assert!(body.get("max_completion_tokens").is_none());
}

#[test]
fn sampling_text_and_identity_fields_pass_through() {
    let body = body_for(
        r#"{"input":"hi","temperature":0.5,"top_p":0.9,"presence_penalty":0.1,"frequency_penalty":0.2,
            "text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true},"verbosity":"low"},
            "include":["message.output_text.logprobs","reasoning.encrypted_content"],"top_logprobs":3,
            "user":"u","prompt_cache_key":"k","service_tier":"flex","safety_identifier":"s",
            "metadata":{"a":"b"}}"#,
    );
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["presence_penalty"], 0.1);
    assert_eq!(body["frequency_penalty"], 0.2);
    assert_eq!(
        body["text"],
        json!({"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true},
               "verbosity": "low"})
    );
    assert_eq!(body["top_logprobs"], 3);
    assert_eq!(
        body["include"],
        json!([
            "message.output_text.logprobs",
            "reasoning.encrypted_content"
        ]),
        "each name once"
    );
    assert_eq!(body["user"], "u");
    assert_eq!(body["prompt_cache_key"], "k");
    assert_eq!(body["service_tier"], "flex");
    assert_eq!(body["safety_identifier"], "s");
    assert_eq!(body["metadata"], json!({"a": "b"}));
}

#[test]
fn input_items_lose_the_gateways_ids_and_statuses() {
    let body = body_for(
        r#"{"input":[
            {"type":"message","id":"msg_1","status":"incomplete","role":"assistant",
             "content":[{"type":"output_text","text":"checking","annotations":[],"logprobs":[]},
                        {"type":"text","text":"more"},{"type":"refusal","refusal":"no"}]},
            {"type":"function_call","id":"fc_1","status":"completed","call_id":"c1","name":"w","arguments":"{}"},
            {"type":"function_call_output","id":"fco_1","status":"completed","call_id":"c1",
             "output":[{"type":"output_text","text":"sunny"}]},
            {"role":"developer","content":[{"type":"text","text":"rules"}]},
            {"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,AA","detail":"low"}]}]}"#,
    );
    assert_eq!(
        body["input"],
        json!([
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "checking", "annotations": []},
                {"type": "output_text", "text": "more", "annotations": []},
                {"type": "refusal", "refusal": "no"}]},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1",
             "output": [{"type": "input_text", "text": "sunny"}]},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
            {"type": "message", "role": "user", "content": [
                {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"}]},
        ])
    );
}

#[test]
fn a_backends_encrypted_reasoning_goes_back_and_the_gateways_seal_does_not() {
    let mut request = model_request(
        r#"{"input":[
            {"type":"reasoning","id":"rs_1","status":"completed","summary":[{"type":"summary_text","text":"s"}],
             "encrypted_content":"gAAAAB-openai"},
            {"type":"reasoning","id":"rs_2","summary":[],"content":[{"type":"reasoning_text","text":"thought"}]},
            {"type":"reasoning","id":"rs_3","summary":[{"type":"summary_text","text":"only a summary"}]},
            {"role":"user","content":"next"}]}"#,
    );
    // What `sealed::open_input` leaves: the text opened, the blob still there.
    let seal = antwort_engine::sealed::ReasoningSeal::random();
    let text = vec![ReasoningPart::ReasoningText {
        text: "thought".into(),
    }];
    if let Item::Reasoning(reasoning) = &mut request.input[1] {
        reasoning.encrypted_content = seal.seal("tenant", &text);
        assert!(reasoning.encrypted_content.is_some());
    }
    let body = body_of(&request, ModelOptions::default());
    assert_eq!(
        body["input"],
        json!([
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "s"}],
             "encrypted_content": "gAAAAB-openai"},
            {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "thought"}]},
            {"type": "message", "role": "user", "content": "next"},
        ])
    );
}

#[test]
fn the_gateways_compaction_is_a_summary_message() {
    let mut request = model_request(r#"{"input":"hi"}"#);
    request.input.insert(
        0,
        Item::Compaction(antwort_api::CompactionItem {
            id: Some("cmp_1".into()),
            encrypted_content: format!("{}we spoke of rust", antwort_engine::compaction::MARKER),
            created_by: None,
        }),
    );
    let body = body_of(&request, ModelOptions::default());
    assert_eq!(
        body["input"][0],
        json!({"type": "message", "role": "user",
               "content": "Summary of the earlier conversation:\nwe spoke of rust"})
    );
}
