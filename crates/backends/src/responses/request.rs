//! A model turn as the body of `POST /v1/responses`, stateless (`store: false`,
//! the whole context as `input`), in the form the OpenAI API accepts from a
//! client that keeps its own state (the form Codex CLI sends).
//!
//! Input items lose what only the gateway can resolve: their ids (the
//! gateway's own, which a backend never stored; OpenAI answers an unknown id
//! with "Item not found" even beside `encrypted_content`) and their statuses
//! (vLLM continues an assistant message whose status is `incomplete` instead of
//! answering). Message parts take the types the API accepts for their role
//! (`output_text` and `refusal` for the assistant, `input_text` otherwise);
//! log probabilities of earlier output are not sent back. A reasoning item
//! keeps its summary, its text and the backend's own `encrypted_content`; a blob
//! the gateway sealed (the `antwort:` prefix of `antwort_engine::sealed`) is
//! dropped, since the gateway opened it into the text already and a backend
//! cannot read it (vLLM refuses any `encrypted_content`). A reasoning item left
//! with neither text nor a blob is not sent: its summary is for people, and
//! OpenAI refuses such an item without state. The gateway's compaction is
//! sent as a user message with its summary, as the Chat Completions backend does.

use std::borrow::Cow;
use std::collections::BTreeMap;

use antwort_api::{
    ContentPart, FunctionTool, Include, Item, MessageContent, Phase, ReasoningEffort,
    ReasoningPart, ReasoningSummary, Role, ServiceTier, TextFormat, Tool, Verbosity,
    WebSearchAction, WebSearchStatus,
};
use antwort_engine::{ModelRequest, ModelToolChoice};
use serde::Serialize;
use serde_json::{Value, json};

use crate::options::ModelOptions;

/// What reasoning the gateway sealed for a client starts with
/// (`antwort_engine::sealed`'s prefix, versioned after it).
const GATEWAY_SEAL_PREFIX: &str = "antwort:";

/// The body of `POST /v1/responses`.
#[derive(Debug, Serialize)]
pub struct ResponsesRequest<'a> {
    pub model: &'a str,
    input: Vec<InputItem<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instructions: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolParam<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<TextParam<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<ReasoningParam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_logprobs: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    include: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_cache_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<ServiceTier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_identifier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a BTreeMap<String, String>>,
    /// Always false: the gateway keeps state, the backend only generates.
    store: bool,
    stream: bool,
    /// Without obfuscation padding on every delta: the gateway's connection to
    /// its backend is not where a side channel on lengths matters.
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum InputItem<'a> {
    Message {
        role: &'static str,
        content: Content<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        phase: Option<Phase>,
    },
    FunctionCall {
        call_id: &'a str,
        name: &'a str,
        arguments: &'a str,
    },
    FunctionCallOutput {
        call_id: &'a str,
        output: Content<'a>,
    },
    Reasoning {
        summary: &'a [ReasoningPart],
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<&'a [ReasoningPart]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<&'a str>,
    },
    /// A search the backend ran itself in an earlier turn.
    WebSearchCall {
        status: WebSearchStatus,
        action: &'a WebSearchAction,
    },
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Part<'a>>),
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Part<'a> {
    Typed(TypedPart<'a>),
    /// Images and files, as the client sent them.
    AsSent(&'a ContentPart),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TypedPart<'a> {
    InputText {
        text: &'a str,
    },
    OutputText {
        text: &'a str,
        annotations: &'a [Value],
    },
    Refusal {
        refusal: &'a str,
    },
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ToolParam<'a> {
    Function(FunctionParam<'a>),
    /// A hosted tool for the backend to run, as the request declared it.
    AsGiven(&'a Tool),
}

#[derive(Debug, Serialize)]
struct FunctionParam<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: Cow<'a, Value>,
    /// Explicit, because the Responses API makes functions strict when it is
    /// left out, and strict mode refuses most schemas not written for it (those
    /// of MCP servers, say): a tool is strict only when it says so, as in Chat.
    strict: bool,
}

#[derive(Debug, Serialize)]
struct TextParam<'a> {
    format: FormatParam<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verbosity: Option<Verbosity>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FormatParam<'a> {
    Text,
    JsonObject,
    JsonSchema {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'a str>,
        schema: &'a Value,
        strict: bool,
    },
}

#[derive(Debug, Serialize)]
struct ReasoningParam {
    #[serde(skip_serializing_if = "Option::is_none")]
    effort: Option<ReasoningEffort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<ReasoningSummary>,
}

/// Builds the Responses body for a model turn, in the form the model accepts
/// (`options`).
pub fn responses_request(request: &ModelRequest, options: ModelOptions) -> ResponsesRequest<'_> {
    let mut tools: Vec<ToolParam<'_>> = request.tools.iter().map(function_param).collect();
    tools.extend(request.hosted_tools.iter().map(|tool| match tool {
        Tool::Function(function) => function_param(function),
        other => ToolParam::AsGiven(other),
    }));
    let tool_choice = match &request.tool_choice {
        // A tool_choice without tools means nothing, and servers refuse it.
        _ if tools.is_empty() => None,
        ModelToolChoice::Default => None,
        ModelToolChoice::None => Some(json!("none")),
        ModelToolChoice::Auto => Some(json!("auto")),
        ModelToolChoice::Required => Some(json!("required")),
        ModelToolChoice::Function(name) => Some(json!({"type": "function", "name": name})),
    };
    let effort = request
        .reasoning_effort
        .filter(|_| options.reasoning_effort);
    let reasoning =
        (effort.is_some() || request.reasoning_summary.is_some()).then_some(ReasoningParam {
            effort,
            summary: request.reasoning_summary,
        });
    ResponsesRequest {
        model: &request.model,
        input: request.input.iter().filter_map(input_item).collect(),
        instructions: request.instructions.as_deref(),
        tools,
        tool_choice,
        parallel_tool_calls: request.parallel_tool_calls,
        text: text_param(&request.text_format, request.verbosity),
        reasoning,
        temperature: request.temperature,
        top_p: request.top_p,
        presence_penalty: request.presence_penalty,
        frequency_penalty: request.frequency_penalty,
        max_output_tokens: request.max_output_tokens,
        top_logprobs: request.logprobs.filter(|n| *n > 0),
        include: includes(request),
        user: request.user.as_deref(),
        prompt_cache_key: request.prompt_cache_key.as_deref(),
        service_tier: request.service_tier,
        safety_identifier: request.safety_identifier.as_deref(),
        metadata: (!request.metadata.is_empty()).then_some(&request.metadata),
        store: false,
        stream: request.stream,
        stream_options: request
            .stream
            .then(|| json!({"include_obfuscation": false})),
    }
}

fn function_param(tool: &FunctionTool) -> ToolParam<'_> {
    ToolParam::Function(FunctionParam {
        kind: "function",
        name: &tool.name,
        description: tool.description.as_deref(),
        parameters: match &tool.parameters {
            Some(parameters) => Cow::Borrowed(parameters),
            None => Cow::Owned(json!({"type": "object", "properties": {}})),
        },
        strict: tool.strict.unwrap_or(false),
    })
}

fn text_param(format: &TextFormat, verbosity: Option<Verbosity>) -> Option<TextParam<'_>> {
    let format = match format {
        TextFormat::Text if verbosity.is_none() => return None,
        TextFormat::Text => FormatParam::Text,
        TextFormat::JsonObject => FormatParam::JsonObject,
        TextFormat::JsonSchema(schema) => FormatParam::JsonSchema {
            name: &schema.name,
            description: schema.description.as_deref(),
            schema: &schema.schema,
            strict: schema.strict,
        },
    };
    Some(TextParam { format, verbosity })
}

/// What the client asked to be included, and the log probabilities when it
/// asked for those (the engine carries that as `logprobs`).
fn includes(request: &ModelRequest) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::with_capacity(request.include.len() + 1);
    let logprobs = request
        .logprobs
        .is_some()
        .then_some(Include::OutputTextLogprobs);
    for include in request.include.iter().copied().chain(logprobs) {
        let name = include_name(include);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// `Include` as it is spelled on the wire (the API type only reads it).
fn include_name(include: Include) -> &'static str {
    match include {
        Include::OutputTextLogprobs => "message.output_text.logprobs",
        Include::ReasoningEncryptedContent => "reasoning.encrypted_content",
        Include::InputImageUrl => "message.input_image.image_url",
        Include::FileSearchResults => "file_search_call.results",
        Include::WebSearchResults => "web_search_call.results",
        Include::WebSearchSources => "web_search_call.action.sources",
        Include::ComputerCallImageUrl => "computer_call_output.output.image_url",
        Include::CodeInterpreterOutputs => "code_interpreter_call.outputs",
    }
}

/// One input item as sent (see the module comment), or `None` for an item
/// that is not sent.
fn input_item(item: &Item) -> Option<InputItem<'_>> {
    Some(match item {
        Item::Message(message) => InputItem::Message {
            role: role_name(message.role),
            content: content(&message.content, message.role == Role::Assistant),
            phase: message.phase,
        },
        Item::FunctionCall(call) => InputItem::FunctionCall {
            call_id: &call.call_id,
            name: &call.name,
            arguments: &call.arguments,
        },
        Item::FunctionCallOutput(output) => InputItem::FunctionCallOutput {
            call_id: &output.call_id,
            output: content(&output.output, false),
        },
        Item::Reasoning(reasoning) => {
            let encrypted_content = reasoning
                .encrypted_content
                .as_deref()
                .filter(|blob| !blob.starts_with(GATEWAY_SEAL_PREFIX));
            let content = reasoning
                .content
                .as_deref()
                .filter(|parts| !parts.is_empty());
            if encrypted_content.is_none() && content.is_none() {
                return None;
            }
            InputItem::Reasoning {
                summary: &reasoning.summary,
                content,
                encrypted_content,
            }
        }
        Item::Compaction(compaction) => {
            let summary = antwort_engine::compaction::summary(&compaction.encrypted_content)?;
            InputItem::Message {
                role: "user",
                content: Content::Text(Cow::Owned(format!(
                    "Summary of the earlier conversation:\n{summary}"
                ))),
                phase: None,
            }
        }
        Item::WebSearchCall(call) => InputItem::WebSearchCall {
            status: call.status,
            action: &call.action,
        },
        // References are resolved, server-side tool items replayed as calls
        // and outputs, and client tools' items turned into function calls
        // before a backend sees a turn (the engine's `replay`).
        other => {
            tracing::debug!(
                id = other.id(),
                "an input item of a kind no backend is sent; left out"
            );
            return None;
        }
    })
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::System => "system",
        Role::Developer => "developer",
    }
}

/// A message's (or a tool output's) content, its text parts typed for the role.
fn content(content: &MessageContent, assistant: bool) -> Content<'_> {
    let parts = match content {
        MessageContent::Text(text) => return Content::Text(Cow::Borrowed(text)),
        MessageContent::Parts(parts) => parts,
    };
    Content::Parts(
        parts
            .iter()
            .filter_map(|part| {
                let typed = match part {
                    ContentPart::Refusal { refusal } if assistant => TypedPart::Refusal { refusal },
                    ContentPart::Refusal { refusal: text } => TypedPart::InputText { text },
                    ContentPart::OutputText(output) if assistant => TypedPart::OutputText {
                        text: &output.text,
                        annotations: &output.annotations,
                    },
                    ContentPart::InputText { text } | ContentPart::Text { text } if assistant => {
                        TypedPart::OutputText {
                            text,
                            annotations: &[],
                        }
                    }
                    ContentPart::InputText { text } | ContentPart::Text { text } => {
                        TypedPart::InputText { text }
                    }
                    ContentPart::OutputText(output) => TypedPart::InputText { text: &output.text },
                    ContentPart::InputImage { .. } | ContentPart::InputFile { .. } => {
                        return Some(Part::AsSent(part));
                    }
                    // Reasoning belongs in reasoning items, not in a message.
                    ContentPart::ReasoningText { .. } | ContentPart::SummaryText { .. } => {
                        return None;
                    }
                };
                Some(Part::Typed(typed))
            })
            .collect(),
    )
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
