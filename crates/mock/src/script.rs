//! What the mock will answer: read from the request it received. Chat
//! Completions requests are read as they are; Responses requests are first
//! translated to the Chat body the gateway would send for the same turn
//! (`crate::responses::convert`), so that both endpoints answer alike.
//!
//! Directives in the last user message (or the system prompt) script the answer:
//!
//! - `[[reply:TEXT]]`; `[[echo_request]]` (the request body in Chat form: as
//!   received, or on `/v1/responses` as the mock translated it, so that a test
//!   reads what reached the model the same way over either protocol);
//!   `[[echo_raw_request]]` (the body as received); `[[tokens:N]]` (N words of lorem);
//! - `[[tool:NAME:ARGS_JSON]]` (repeatable; only while no tool result follows the
//!   last user message, so that a loop that feeds results back gets an answer),
//!   `[[tool_always:NAME:ARGS_JSON]]` (on every turn, for loops that never end);
//! - `[[reasoning:TEXT]]`, `[[refuse:TEXT]]`, `[[finish:length]]` (Responses:
//!   `incomplete` with reason `max_output_tokens`), `[[no_usage]]`;
//! - timing: `[[ttft_ms:N]]`, `[[delay_ms:N]]` (between streamed tokens);
//! - errors: `[[error:STATUS]]` with `[[retry_after:SECS]]`,
//!   `[[error_after_tool:STATUS]]` (that status, once a tool result follows the
//!   last user message: a loop's later turn fails);
//! - the faults of a broken server: `[[status_ms:N]]` (wait N ms before the
//!   status line), `[[stall_error:STATUS]]` (send that status line, then
//!   nothing), `[[cut:N]]` (end the stream after N chunks or events, without a
//!   terminal one), `[[hold_after_finish]]` (Chat: everything but `[DONE]`;
//!   Responses: everything up to `response.completed`; then hold the
//!   connection), `[[huge_chunk:BYTES]]` (the answer in one chunk of that many
//!   bytes), `[[stream_error:TEXT]]` (after the first token, Chat sends
//!   `{"error":{"message":TEXT}}` and `[DONE]`, Responses an `error` event and
//!   `response.failed`; a request that does not stream answers 500 with TEXT).
//!
//! A model whose name contains `reasoning` reasons by default.
//! Without directives the answer reflects the input, so that tests see exactly what
//! the gateway sent: `echo: <last user text> | system: <system prompt> |
//! messages: <n> | images: <n> | tools: <names>`, and, when tool results follow
//! the last user message, `| tool_results: <their contents, joined by " ; ">`.
//! With `response_format` (Responses: `text.format`) json_schema the answer is
//! an example of the schema, with json_object `{"echo": <last user text>}`.

use std::time::Duration;

use serde_json::{Value, json};

/// Defaults for latency, set on the command line for benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub ttft: Duration,
    pub token_delay: Duration,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    pub text: Option<String>,
    pub reasoning: Option<String>,
    pub refusal: Option<String>,
    pub tool_calls: Vec<(String, String)>,
    pub error_status: Option<u16>,
    pub retry_after: Option<String>,
    pub cut_after: Option<usize>,
    pub finish_reason: String,
    pub ttft: Duration,
    pub token_delay: Duration,
    pub usage: bool,
    pub prompt_tokens: u64,
    pub status_delay: Duration,
    pub stall_error: Option<u16>,
    pub hold_after_finish: bool,
    /// A stream fails with this message after its first token.
    pub stream_error: Option<String>,
    /// The text goes out in one chunk, not word by word.
    pub one_piece: bool,
}

/// Reads the script from a Chat Completions request body.
pub fn from_chat_request(body: &Value, latency: Latency) -> Script {
    from_chat_request_echoing(body, body, latency)
}

/// Reads the script from a Chat Completions body, where `[[echo_raw_request]]`
/// echoes `received`: the Responses endpoint scripts from the Chat body its
/// request translates to, and a test may want to see the one the gateway
/// really sent.
pub fn from_chat_request_echoing(body: &Value, received: &Value, latency: Latency) -> Script {
    let conversation = Conversation::read(body);
    let mut script = Script {
        finish_reason: "stop".into(),
        ttft: latency.ttft,
        token_delay: latency.token_delay,
        usage: true,
        prompt_tokens: conversation.prompt_tokens,
        ..Script::default()
    };
    let directive_text = format!(
        "{} {}",
        conversation.system.join(" "),
        conversation.last_user
    );
    apply_directives(
        &mut script,
        &directive_text,
        &conversation,
        [body, received],
    );
    if script.reasoning.is_none()
        && body["model"]
            .as_str()
            .is_some_and(|m| m.contains("reasoning"))
    {
        script.reasoning = Some(format!("Thinking about: {}", conversation.last_user));
    }
    if script.text.is_none() && script.refusal.is_none() && script.tool_calls.is_empty() {
        script.text = Some(default_text(body, &conversation));
    }
    if !script.tool_calls.is_empty() && script.finish_reason == "stop" {
        script.finish_reason = "tool_calls".into();
    }
    script
}

/// What the reflection reports about a Chat Completions conversation.
struct Conversation {
    last_user: String,
    /// Tool results after the last user message: a loop's later turn.
    tool_results: Vec<String>,
    system: Vec<String>,
    messages: usize,
    images: usize,
    tools: Vec<String>,
    prompt_tokens: u64,
}

impl Conversation {
    fn read(body: &Value) -> Self {
        let messages = body["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let last_user_index = messages.iter().rposition(|m| m["role"] == "user");
        let tool_results = messages
            .iter()
            .skip(last_user_index.map_or(0, |i| i + 1))
            .filter(|m| m["role"] == "tool")
            .map(text_of)
            .collect();
        let images = messages
            .iter()
            .filter_map(|m| m["content"].as_array())
            .flatten()
            .filter(|p| p["type"] == "image_url")
            .count();
        let tools = body["tools"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
            .collect();
        Self {
            last_user: last_user_index
                .map(|i| text_of(&messages[i]))
                .unwrap_or_default(),
            tool_results,
            system: messages
                .iter()
                .filter(|m| m["role"] == "system")
                .map(text_of)
                .collect(),
            messages: messages.len(),
            images,
            tools,
            prompt_tokens: messages
                .iter()
                .map(|m| text_of(m).split_whitespace().count() as u64)
                .sum::<u64>()
                .max(1),
        }
    }
}

/// A message's text: its string content, or its text parts joined by spaces.
pub(crate) fn text_of(message: &Value) -> String {
    match &message["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn apply_directives(
    script: &mut Script,
    text: &str,
    conversation: &Conversation,
    [read, received]: [&Value; 2],
) {
    let after_tool = !conversation.tool_results.is_empty();
    let mut tokens = None;
    let mut huge = false;
    for (name, value) in directives(text) {
        match name {
            "reply" => script.text = Some(value.to_owned()),
            "echo_request" => script.text = Some(read.to_string()),
            "echo_raw_request" => script.text = Some(received.to_string()),
            "tool" if after_tool => {}
            "tool" | "tool_always" => {
                let (tool, args) = value.split_once(':').unwrap_or((value, "{}"));
                script.tool_calls.push((tool.to_owned(), args.to_owned()));
            }
            "reasoning" => script.reasoning = Some(value.to_owned()),
            "refuse" => script.refusal = Some(value.to_owned()),
            "error" => script.error_status = value.parse().ok(),
            "error_after_tool" if after_tool => script.error_status = value.parse().ok(),
            "retry_after" => script.retry_after = Some(value.to_owned()),
            "cut" => script.cut_after = value.parse().ok(),
            "finish" => script.finish_reason = value.to_owned(),
            "ttft_ms" => script.ttft = millis(value),
            "delay_ms" => script.token_delay = millis(value),
            "tokens" => tokens = value.parse::<usize>().ok(),
            "no_usage" => script.usage = false,
            "status_ms" => script.status_delay = millis(value),
            "stall_error" => script.stall_error = value.parse().ok(),
            "stream_error" => script.stream_error = Some(value.to_owned()),
            "hold_after_finish" => script.hold_after_finish = true,
            "huge_chunk" => {
                script.text = Some("x".repeat(value.parse::<usize>().unwrap_or(0)));
                huge = true;
            }
            _ => {}
        }
    }
    if let Some(count) = tokens {
        script.text = Some("lorem ".repeat(count));
    }
    script.one_piece = huge;
}

/// The answer without a scripted one: an example of the requested format, or the
/// reflection of what was received.
fn default_text(body: &Value, c: &Conversation) -> String {
    match body["response_format"]["type"].as_str() {
        Some("json_schema") => {
            example_for(&body["response_format"]["json_schema"]["schema"]).to_string()
        }
        Some("json_object") => json!({"echo": c.last_user}).to_string(),
        _ => format!(
            "echo: {} | system: {} | messages: {} | images: {} | tools: {}{}",
            c.last_user,
            if c.system.is_empty() {
                "-".to_owned()
            } else {
                c.system.join(" / ")
            },
            c.messages,
            c.images,
            if c.tools.is_empty() {
                "-".to_owned()
            } else {
                c.tools.join(",")
            },
            if c.tool_results.is_empty() {
                String::new()
            } else {
                format!(" | tool_results: {}", c.tool_results.join(" ; "))
            },
        ),
    }
}

fn millis(value: &str) -> Duration {
    Duration::from_millis(value.parse().unwrap_or(0))
}

/// `[[name]]` and `[[name:value]]` occurrences, in order.
fn directives(text: &str) -> Vec<(&str, &str)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("]]") else { break };
        let inner = &after[..end];
        let (name, value) = inner.split_once(':').unwrap_or((inner, ""));
        found.push((name.trim(), value));
        rest = &after[end + 2..];
    }
    found
}

/// A value that conforms to a JSON Schema (the common subset: objects, arrays,
/// enums, scalars), for `response_format: json_schema`.
pub fn example_for(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|v| v.first()) {
        return first.clone();
    }
    if let Some(constant) = schema.get("const") {
        return constant.clone();
    }
    if let Some(options) = schema["anyOf"].as_array().or(schema["oneOf"].as_array())
        && let Some(first) = options.first()
    {
        return example_for(first);
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.as_str(),
        Value::Array(kinds) => kinds.first().and_then(Value::as_str).unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut object = serde_json::Map::new();
            if let Some(properties) = schema["properties"].as_object() {
                for (name, property) in properties {
                    object.insert(name.clone(), example_for(property));
                }
            }
            Value::Object(object)
        }
        "array" => json!([example_for(&schema["items"])]),
        "integer" => json!(schema["minimum"].as_i64().unwrap_or(1)),
        "number" => json!(schema["minimum"].as_f64().unwrap_or(1.5)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => json!("example"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflection_reports_what_was_sent() {
        let body = json!({"model": "m", "messages": [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}]}
        ], "tools": [{"type": "function", "function": {"name": "f"}}]});
        let script = from_chat_request(&body, Latency::default());
        assert_eq!(
            script.text.as_deref(),
            Some("echo: hi | system: be nice | messages: 2 | images: 1 | tools: f")
        );
    }

    #[test]
    fn directives_script_the_answer() {
        let body = json!({"model": "m", "messages": [{"role": "user",
            "content": "go [[tool:get_weather:{\"city\":\"Paris\"}]] [[tool:get_time]] [[reasoning:hmm]] [[ttft_ms:5]]"}]});
        let script = from_chat_request(&body, Latency::default());
        assert_eq!(script.tool_calls.len(), 2);
        assert_eq!(
            script.tool_calls[0],
            ("get_weather".into(), "{\"city\":\"Paris\"}".into())
        );
        assert_eq!(script.finish_reason, "tool_calls");
        assert_eq!(script.reasoning.as_deref(), Some("hmm"));
        assert_eq!(script.ttft, Duration::from_millis(5));
    }

    #[test]
    fn tool_directives_stop_once_results_come_back() {
        let body = json!({"model": "m", "messages": [
            {"role": "user", "content": "go [[tool:add:{}]] [[tool_always:echo:{}]]"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "3"}
        ]});
        let script = from_chat_request(&body, Latency::default());
        assert_eq!(script.tool_calls, [("echo".to_owned(), "{}".to_owned())]);
        let body = json!({"model": "m", "messages": [
            {"role": "user", "content": "go [[tool:add:{}]]"},
            {"role": "tool", "tool_call_id": "c1", "content": "3"}
        ]});
        let script = from_chat_request(&body, Latency::default());
        assert!(script.tool_calls.is_empty());
        assert!(script.text.unwrap().ends_with("| tool_results: 3"));
    }

    #[test]
    fn schema_examples_conform() {
        let schema = json!({"type": "object", "properties": {
            "name": {"type": "string"}, "age": {"type": "integer", "minimum": 3},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}}});
        assert_eq!(
            example_for(&schema),
            json!({"name": "example", "age": 3, "tags": ["a"]})
        );
    }
}
