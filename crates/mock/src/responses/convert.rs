//! Responses request → the Chat Completions body the gateway's chat translation
//! (`crates/backends/src/chat/request.rs`) would send for the same turn, so that
//! the script, and the reflection text, come out as they do over Chat.
//!
//! Item by item, as there: `instructions` is the first system message; developer
//! and system messages are system; a function_call joins the preceding
//! assistant message's `tool_calls` (or starts an assistant message);
//! function_call_output is a `tool` message; a compaction the gateway wrote is a
//! user message with its summary; reasoning and every other item are not sent. A
//! string `input` is one user message. Only the fields the script reads, and the
//! ones that cost nothing to carry, are translated.

use serde_json::{Value, json};

/// What the gateway's compaction content starts with (antwort_engine's
/// `compaction::MARKER`; the mock does not depend on the engine).
const COMPACTION_MARKER: &str = "antwort-summary-v1:";

/// The Chat Completions body equivalent to a Responses request body.
pub fn chat_body(body: &Value) -> Value {
    let mut messages = Vec::new();
    if let Some(instructions) = body["instructions"].as_str() {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    match &body["input"] {
        Value::String(text) => messages.push(json!({"role": "user", "content": text})),
        Value::Array(items) => {
            for item in items {
                push_item(&mut messages, item);
            }
        }
        _ => {}
    }
    let mut chat = json!({
        "model": body["model"],
        "messages": messages,
        "stream": body["stream"].as_bool().unwrap_or(false),
    });
    add_tools(&mut chat, body);
    if let Some(format) = response_format(&body["text"]["format"]) {
        chat["response_format"] = format;
    }
    if let Some(max) = body["max_output_tokens"].as_u64() {
        chat["max_tokens"] = json!(max);
    }
    let include = body["include"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let top = body["top_logprobs"].as_u64();
    if top.is_some() || include.iter().any(|i| i == "message.output_text.logprobs") {
        chat["logprobs"] = json!(true);
        if let Some(top) = top.filter(|n| *n > 0) {
            chat["top_logprobs"] = json!(top);
        }
    }
    if let Some(effort) = body["reasoning"]["effort"].as_str() {
        chat["reasoning_effort"] = json!(effort);
    }
    for key in ["temperature", "top_p", "user", "prompt_cache_key"] {
        if let Some(value) = body.get(key).filter(|v| !v.is_null()) {
            chat[key] = value.clone();
        }
    }
    chat
}

fn push_item(messages: &mut Vec<Value>, item: &Value) {
    // An item without a type is a message (the easy input form).
    let kind = item["type"].as_str().unwrap_or("message");
    match kind {
        "message" => {
            let (role, content) = match item["role"].as_str() {
                Some("user") => ("user", user_content(&item["content"])),
                Some("assistant") => ("assistant", json!(joined_text(&item["content"]))),
                Some("system" | "developer") => ("system", json!(joined_text(&item["content"]))),
                _ => return,
            };
            messages.push(json!({"role": role, "content": content}));
        }
        "function_call" => {
            let call = json!({
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            });
            match messages.last_mut() {
                Some(last) if last["role"] == "assistant" => {
                    if let Some(calls) = last["tool_calls"].as_array_mut() {
                        calls.push(call);
                    } else {
                        last["tool_calls"] = json!([call]);
                    }
                }
                _ => messages
                    .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => messages.push(json!({
            "role": "tool",
            "content": joined_text(&item["output"]),
            "tool_call_id": item["call_id"],
        })),
        "compaction" => {
            if let Some(summary) = item["encrypted_content"]
                .as_str()
                .and_then(|c| c.strip_prefix(COMPACTION_MARKER))
            {
                messages.push(json!({"role": "user",
                    "content": format!("Summary of the earlier conversation:\n{summary}")}));
            }
        }
        _ => {}
    }
}

/// The text a content part carries, as the gateway's `ContentPart::text` reads it.
fn part_text(part: &Value) -> Option<&str> {
    match part["type"].as_str() {
        Some("input_text" | "output_text" | "text") => part["text"].as_str(),
        _ => None,
    }
}

/// A content's text, parts joined by newlines; a refusal counts as text.
fn joined_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| match part["type"].as_str() {
                Some("refusal") => part["refusal"].as_str(),
                _ => part_text(part),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A user message's content: a string when it is one text, Chat parts otherwise
/// (images with a URL, files with data, texts; the rest is dropped).
fn user_content(content: &Value) -> Value {
    let parts = match content {
        Value::Array(parts) => parts,
        Value::String(text) => return json!(text),
        _ => return json!(""),
    };
    if let [single] = parts.as_slice()
        && let Some(text) = part_text(single)
    {
        return json!(text);
    }
    let parts: Vec<Value> = parts
        .iter()
        .filter_map(|part| match part["type"].as_str() {
            Some("input_image") => part["image_url"].as_str().map(|url| {
                let detail = part["detail"].as_str().unwrap_or("auto");
                json!({"type": "image_url", "image_url": {"url": url, "detail": detail}})
            }),
            Some("input_file") => part["file_data"].as_str().map(|data| {
                let mut file = json!({"file_data": data});
                if let Some(name) = part["filename"].as_str() {
                    file["filename"] = json!(name);
                }
                json!({"type": "file", "file": file})
            }),
            _ => part_text(part).map(|text| json!({"type": "text", "text": text})),
        })
        .collect();
    json!(parts)
}

/// Function tools are flat in Responses and nested under `function` in Chat;
/// other kinds of tool never reach a backend as such.
fn add_tools(chat: &mut Value, body: &Value) {
    let tools: Vec<Value> = body["tools"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|t| t["type"] == "function")
        .map(|tool| {
            let mut function = json!({"name": tool["name"]});
            if let Some(description) = tool["description"].as_str() {
                function["description"] = json!(description);
            }
            function["parameters"] = match &tool["parameters"] {
                Value::Null => json!({"type": "object", "properties": {}}),
                parameters => parameters.clone(),
            };
            if let Some(strict) = tool["strict"].as_bool() {
                function["strict"] = json!(strict);
            }
            json!({"type": "function", "function": function})
        })
        .collect();
    // Servers reject tool_choice and parallel_tool_calls without tools.
    if tools.is_empty() {
        return;
    }
    let choice = &body["tool_choice"];
    if let Some(choice) = choice.as_str() {
        chat["tool_choice"] = json!(choice);
    } else if choice["type"] == "function" {
        chat["tool_choice"] = json!({"type": "function", "function": {"name": choice["name"]}});
    }
    if let Some(parallel) = body["parallel_tool_calls"].as_bool() {
        chat["parallel_tool_calls"] = json!(parallel);
    }
    chat["tools"] = json!(tools);
}

fn response_format(format: &Value) -> Option<Value> {
    match format["type"].as_str()? {
        "json_object" => Some(json!({"type": "json_object"})),
        "json_schema" => {
            let mut schema = json!({
                "name": format["name"],
                "schema": format["schema"],
                "strict": format["strict"],
            });
            if let Some(description) = format["description"].as_str() {
                schema["description"] = json!(description);
            }
            Some(json!({"type": "json_schema", "json_schema": schema}))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{Latency, from_chat_request};

    #[test]
    fn a_tool_loop_reflects_as_it_does_over_chat() {
        let responses = json!({"model": "m", "instructions": "be brief", "input": [
            {"role": "developer", "content": "dev rules"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"}],
            "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}]});
        // What crates/backends/src/chat/request.rs sends for the same turn.
        let chat = json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "system", "content": "dev rules"},
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
            {"role": "tool", "content": "sunny", "tool_call_id": "c1"}],
            "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
            "stream": false});
        assert_eq!(chat_body(&responses), chat);
        let text = from_chat_request(&chat_body(&responses), Latency::default()).text;
        assert_eq!(
            text.as_deref(),
            Some(
                "echo: weather? | system: be brief / dev rules | messages: 5 | images: 0 | tools: w | tool_results: sunny"
            )
        );
        assert_eq!(text, from_chat_request(&chat, Latency::default()).text);
    }

    #[test]
    fn calls_join_the_assistant_message_and_parts_translate() {
        let body = json!({"model": "m", "input": [
            {"role": "user", "content": [
                {"type": "input_text", "text": "what is"},
                {"type": "input_image", "image_url": "data:x", "detail": "high"},
                {"type": "input_image", "file_id": "file_1"}]},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "one"}, {"type": "refusal", "refusal": "two"}]},
            {"type": "function_call", "call_id": "a", "name": "f", "arguments": "1"},
            {"type": "function_call", "call_id": "b", "name": "g", "arguments": "2"}]});
        let chat = chat_body(&body);
        let messages = chat["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[0]["content"],
            json!([{"type": "text", "text": "what is"},
                   {"type": "image_url", "image_url": {"url": "data:x", "detail": "high"}}])
        );
        assert_eq!(messages[1]["content"], "one\ntwo");
        assert_eq!(messages[1]["tool_calls"][1]["function"]["name"], "g");
    }

    #[test]
    fn formats_limits_and_logprobs_translate() {
        let body = json!({"model": "m", "input": "hi", "max_output_tokens": 7,
            "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}},
            "include": ["message.output_text.logprobs"], "top_logprobs": 2,
            "tool_choice": "required"});
        let chat = chat_body(&body);
        assert_eq!(chat["messages"], json!([{"role": "user", "content": "hi"}]));
        assert_eq!(chat["max_tokens"], 7);
        assert_eq!(
            chat["response_format"]["json_schema"]["schema"],
            json!({"type": "object"})
        );
        assert_eq!(
            (&chat["logprobs"], &chat["top_logprobs"]),
            (&json!(true), &json!(2))
        );
        // No tools, so no tool_choice: as the gateway does.
        assert!(chat.get("tool_choice").is_none());
    }
}
