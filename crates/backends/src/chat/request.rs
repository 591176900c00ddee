//! Responses → Chat Completions: the request body a model turn becomes.
//!
//! The mapping, item by item: `instructions` is the first system message; developer
//! messages are sent as system (few open backends know the developer role); a
//! function_call joins the preceding assistant message's `tool_calls`;
//! function_call_output is a `tool` message; reasoning items are not sent (chat
//! templates of open reasoning models drop past reasoning anyway).

use std::borrow::Cow;

use antwort_api::{ContentPart, Item, MessageContent, Role, TextFormat};
use antwort_engine::{ModelRequest, ModelToolChoice};
use serde::Serialize;
use serde_json::{Value, json};

use crate::options::ModelOptions;

#[derive(Debug, Serialize)]
pub struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The same limit, for models that refuse `max_tokens` (OpenAI's o-series
    /// and newer); only one of the two is ever sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    /// OpenAI's prompt cache routing key (Codex CLI sends one per session);
    /// servers that do not know it ignore it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<&'a str>,
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<Value>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ChatMessage<'a> {
    pub role: &'static str,
    pub content: Option<ChatContent<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<&'a str>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ChatContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Value>),
}

/// Builds the Chat Completions body for a model turn, in the form the model
/// accepts (`options`).
pub fn chat_request(request: &ModelRequest, options: ModelOptions) -> ChatRequest<'_> {
    let mut messages = Vec::with_capacity(request.input.len() + 1);
    if let Some(instructions) = &request.instructions {
        messages.push(ChatMessage {
            role: "system",
            content: Some(ChatContent::Text(Cow::Borrowed(instructions))),
            tool_calls: Vec::new(),
            tool_call_id: None,
        });
    }
    for item in &request.input {
        push_item(&mut messages, item);
    }

    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| {
            let mut function = json!({"name": tool.name});
            if let Some(description) = &tool.description {
                function["description"] = json!(description);
            }
            function["parameters"] = tool
                .parameters
                .clone()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            if let Some(strict) = tool.strict {
                function["strict"] = json!(strict);
            }
            json!({"type": "function", "function": function})
        })
        .collect();

    let tool_choice = match &request.tool_choice {
        // Servers reject a tool_choice without tools, and it means nothing then.
        _ if tools.is_empty() => None,
        ModelToolChoice::Default => None,
        ModelToolChoice::None => Some(json!("none")),
        ModelToolChoice::Auto => Some(json!("auto")),
        ModelToolChoice::Required => Some(json!("required")),
        ModelToolChoice::Function(name) => {
            Some(json!({"type": "function", "function": {"name": name}}))
        }
    };

    let response_format = match &request.text_format {
        TextFormat::Text => None,
        TextFormat::JsonObject => Some(json!({"type": "json_object"})),
        TextFormat::JsonSchema(format) => {
            let mut schema = json!({
                "name": format.name,
                "schema": format.schema,
                "strict": format.strict,
            });
            if let Some(description) = &format.description {
                schema["description"] = json!(description);
            }
            Some(json!({"type": "json_schema", "json_schema": schema}))
        }
    };

    ChatRequest {
        model: &request.model,
        messages,
        // Some servers reject `parallel_tool_calls` without tools.
        parallel_tool_calls: if tools.is_empty() {
            None
        } else {
            request.parallel_tool_calls
        },
        tools,
        tool_choice,
        response_format,
        reasoning_effort: request
            .reasoning_effort
            .filter(|_| options.reasoning_effort)
            .map(|e| e.as_str()),
        temperature: request.temperature,
        top_p: request.top_p,
        presence_penalty: request.presence_penalty,
        frequency_penalty: request.frequency_penalty,
        max_tokens: request
            .max_output_tokens
            .filter(|_| !options.max_completion_tokens),
        max_completion_tokens: request
            .max_output_tokens
            .filter(|_| options.max_completion_tokens),
        logprobs: request.logprobs.map(|_| true),
        top_logprobs: request.logprobs.filter(|n| *n > 0),
        user: request.user.as_deref(),
        prompt_cache_key: request.prompt_cache_key.as_deref(),
        stream: request.stream,
        // Usage arrives in a chunk of its own after the finish chunk.
        stream_options: request.stream.then(|| json!({"include_usage": true})),
    }
}

fn push_item<'a>(messages: &mut Vec<ChatMessage<'a>>, item: &'a Item) {
    match item {
        Item::Message(message) => {
            let role = match message.role {
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::System | Role::Developer => "system",
            };
            let content = match message.role {
                Role::User => user_content(&message.content),
                _ => ChatContent::Text(joined_text(&message.content)),
            };
            messages.push(ChatMessage {
                role,
                content: Some(content),
                tool_calls: Vec::new(),
                tool_call_id: None,
            });
        }
        Item::FunctionCall(call) => {
            let tool_call = json!({
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            });
            match messages.last_mut() {
                Some(last) if last.role == "assistant" => last.tool_calls.push(tool_call),
                _ => messages.push(ChatMessage {
                    role: "assistant",
                    content: None,
                    tool_calls: vec![tool_call],
                    tool_call_id: None,
                }),
            }
        }
        Item::FunctionCallOutput(output) => messages.push(ChatMessage {
            role: "tool",
            content: Some(ChatContent::Text(joined_text(&output.output))),
            tool_calls: Vec::new(),
            tool_call_id: Some(&output.call_id),
        }),
        // A summary of earlier turns, as a user message: a system message in the
        // middle of a conversation breaks many open models' chat templates.
        Item::Compaction(compaction) => {
            if let Some(summary) =
                antwort_engine::compaction::summary(&compaction.encrypted_content)
            {
                messages.push(ChatMessage {
                    role: "user",
                    content: Some(ChatContent::Text(Cow::Owned(format!(
                        "Summary of the earlier conversation:\n{summary}"
                    )))),
                    tool_calls: Vec::new(),
                    tool_call_id: None,
                });
            }
        }
        // Reasoning is not replayed (see the module comment); references are
        // resolved, and server-side tool items turned into calls and outputs,
        // before a backend sees a turn (the engine's `replay`).
        Item::Reasoning(_)
        | Item::ItemReference(_)
        | Item::McpListTools(_)
        | Item::McpCall(_)
        | Item::McpApprovalRequest(_)
        | Item::McpApprovalResponse(_)
        | Item::WebSearchCall(_)
        // Client tools' calls and outputs reach a backend as function calls
        // and outputs (the engine's `client_tools`).
        | Item::CustomToolCall(_)
        | Item::CustomToolCallOutput(_)
        | Item::LocalShellCall(_)
        | Item::LocalShellCallOutput(_)
        | Item::ShellCall(_)
        | Item::ShellCallOutput(_)
        | Item::ApplyPatchCall(_)
        | Item::ApplyPatchCallOutput(_) => {}
    }
}

/// The text of a content, parts joined by newlines; a refusal counts as text so that
/// the model sees what it said.
fn joined_text(content: &MessageContent) -> Cow<'_, str> {
    match content {
        MessageContent::Text(text) => Cow::Borrowed(text),
        MessageContent::Parts(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|part| match part {
                    ContentPart::Refusal { refusal } => Some(refusal.as_str()),
                    other => other.text(),
                })
                .collect();
            match texts.as_slice() {
                [single] => Cow::Borrowed(single),
                _ => Cow::Owned(texts.join("\n")),
            }
        }
    }
}

/// A user message: a string when it is one text, parts otherwise.
fn user_content(content: &MessageContent) -> ChatContent<'_> {
    let parts = match content {
        MessageContent::Text(text) => return ChatContent::Text(Cow::Borrowed(text)),
        MessageContent::Parts(parts) => parts,
    };
    if let [single] = parts.as_slice()
        && let Some(text) = single.text()
    {
        return ChatContent::Text(Cow::Borrowed(text));
    }
    ChatContent::Parts(
        parts
            .iter()
            .filter_map(|part| match part {
                ContentPart::InputImage {
                    image_url: Some(url),
                    detail,
                    ..
                } => Some(json!({
                    "type": "image_url",
                    "image_url": {"url": url, "detail": detail.as_str()},
                })),
                ContentPart::InputFile {
                    file_data: Some(data),
                    filename,
                    ..
                } => {
                    let mut file = json!({"file_data": data});
                    if let Some(name) = filename {
                        file["filename"] = json!(name);
                    }
                    Some(json!({"type": "file", "file": file}))
                }
                other => other
                    .text()
                    .map(|text| json!({"type": "text", "text": text})),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use antwort_api::CreateResponseRequest;
    use antwort_engine::prepare::plan;

    fn body_for(request: &str) -> Value {
        body_with(request, ModelOptions::default())
    }

    fn body_with(request: &str, options: ModelOptions) -> Value {
        let request = CreateResponseRequest::from_json(request.as_bytes()).unwrap();
        let plan = plan(
            request,
            Some("m"),
            "resp_1".into(),
            0,
            &[],
            &antwort_engine::Scope::default(),
        )
        .unwrap();
        serde_json::to_value(chat_request(&plan.model_request, options)).unwrap()
    }

    #[test]
    fn instructions_come_first_and_developer_is_sent_as_system() {
        let body = body_for(
            r#"{"instructions":"be brief","input":[
                {"role":"developer","content":"dev rules"},
                {"role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#,
        );
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "be brief"},
                {"role": "system", "content": "dev rules"},
                {"role": "user", "content": "hi"},
            ])
        );
        assert_eq!(body["stream"], false);
        assert!(body.get("stream_options").is_none());
    }

    #[test]
    fn function_calls_join_the_assistant_message_and_outputs_become_tool_messages() {
        let body = body_for(
            r#"{"input":[
                {"role":"user","content":"weather?"},
                {"type":"message","role":"assistant","content":[{"type":"output_text","text":"checking"}]},
                {"type":"function_call","call_id":"c1","name":"w","arguments":"{}"},
                {"type":"function_call","call_id":"c2","name":"t","arguments":"{}"},
                {"type":"function_call_output","call_id":"c1","output":"sunny"},
                {"type":"function_call_output","call_id":"c2","output":"noon"}]}"#,
        );
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[1]["content"], "checking");
        assert_eq!(messages[1]["tool_calls"].as_array().unwrap().len(), 2);
        assert_eq!(
            messages[2],
            json!({"role": "tool", "content": "sunny", "tool_call_id": "c1"})
        );
    }

    #[test]
    fn no_tool_choice_without_tools() {
        let body = body_for(r#"{"input":"hi","tool_choice":"none"}"#);
        assert!(body.get("tool_choice").is_none(), "{body}");
        assert!(body.get("tools").is_none());
    }

    #[test]
    fn images_keep_url_and_detail() {
        let body = body_for(
            r#"{"input":[{"role":"user","content":[
                {"type":"input_text","text":"what is this"},
                {"type":"input_image","image_url":"data:image/png;base64,AAAA","detail":"high"}]}]}"#,
        );
        assert_eq!(
            body["messages"][0]["content"][1],
            json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}})
        );
    }

    #[test]
    fn tool_choice_and_formats_translate() {
        let body = body_for(
            r#"{"input":"hi","tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],
                "tool_choice":{"type":"function","name":"f"},"parallel_tool_calls":false,
                "text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true}},
                "reasoning":{"effort":"low"},"max_output_tokens":64,"stream":true,
                "include":["message.output_text.logprobs"],"top_logprobs":3}"#,
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "function", "function": {"name": "f"}})
        );
        assert_eq!(body["parallel_tool_calls"], false);
        assert_eq!(body["tools"][0]["function"]["name"], "f");
        assert_eq!(
            body["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": true}})
        );
        assert_eq!(body["reasoning_effort"], "low");
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["logprobs"], true);
        assert_eq!(body["top_logprobs"], 3);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
    }

    #[test]
    fn the_model_options_decide_the_limit_name_and_the_effort() {
        let request = r#"{"input":"hi","max_output_tokens":64,"reasoning":{"effort":"high"}}"#;
        let default = body_for(request);
        assert_eq!(default["max_tokens"], 64);
        assert!(default.get("max_completion_tokens").is_none());
        assert_eq!(default["reasoning_effort"], "high");
        let o_series = body_with(
            request,
            ModelOptions {
                max_completion_tokens: true,
                reasoning_effort: true,
            },
        );
        assert_eq!(o_series["max_completion_tokens"], 64);
        assert!(o_series.get("max_tokens").is_none(), "{o_series}");
        let no_reasoning = body_with(
            request,
            ModelOptions {
                max_completion_tokens: false,
                reasoning_effort: false,
            },
        );
        assert!(
            no_reasoning.get("reasoning_effort").is_none(),
            "{no_reasoning}"
        );
        assert_eq!(no_reasoning["max_tokens"], 64);
    }
}
