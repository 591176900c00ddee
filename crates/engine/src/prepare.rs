//! Turns a validated create request into a plan: the model turn to ask for and the
//! response object to echo, after the checks that need more than one field at once
//! (a named tool must exist, stored state must be available, and so on).

use antwort_api::{
    ApiError, ContentPart, CreateResponseRequest, ErrorCode, FunctionTool, Include, Input, Item,
    MessageContent, MessageItem, ReasoningConfig, Response, ResponseObject, ResponseStatus, Role,
    TextConfig, Tool, ToolChoice,
};

use std::sync::Arc;

use crate::catalog::{self, Catalog};
use crate::model::ModelRequest;
use crate::tool::{ServerTool, ToolType};

/// Everything needed to run one create request.
pub struct Plan {
    pub model_request: ModelRequest,
    /// The client's functions, as declared, when the request declares
    /// server-side tools (for the catalog built once those are known); else empty.
    pub functions: Vec<FunctionTool>,
    /// The server-side tools the request declared, one set per tool type.
    pub tools: Vec<Box<dyn ServerTool>>,
    pub tool_choice: ToolChoice,
    /// The response as it stands before generation: status `in_progress`, no output.
    pub response: Response,
    /// Hosted tool types the request listed that this deployment does not run; they
    /// are not offered to the model, and the server reports them to the client.
    pub skipped_tools: Vec<String>,
    /// Whether output text carries log probabilities.
    pub logprobs: bool,
    /// The client's tools that are not plain functions (offered as functions).
    pub client_tools: crate::client_tools::ClientTools,
    /// The response whose conversation this one continues.
    pub previous_response_id: Option<String>,
    /// The conversation this response reads from and is added to.
    pub conversation_id: Option<String>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<&str> = self.tools.iter().map(|tool| tool.kind()).collect();
        f.debug_struct("Plan")
            .field("model_request", &self.model_request)
            .field("functions", &self.functions)
            .field("tools", &kinds)
            .field("response", &self.response.id)
            .field("skipped_tools", &self.skipped_tools)
            .finish_non_exhaustive()
    }
}

/// The tools as the response echoes (and stores) them: declared with the real
/// address, shown without the credentials a `server_url` may carry.
fn echoed(mut tools: Vec<Tool>) -> Vec<Tool> {
    for tool in &mut tools {
        if let Tool::Mcp(mcp) = tool
            && let Some(url) = &mut mcp.server_url
        {
            *url = antwort_api::redact_url(url);
        }
    }
    tools
}

/// Builds the plan for `request`, using `default_model` when it names none.
pub fn plan(
    mut request: CreateResponseRequest,
    default_model: Option<&str>,
    response_id: String,
    created_at: u64,
    types: &[Arc<dyn ToolType>],
    scope: &crate::store::Scope,
) -> Result<Plan, ApiError> {
    reject_unavailable_features(&request)?;
    let conversation_id = conversation_id(&request)?;
    let model = match (&request.model, default_model) {
        (Some(model), _) => model.clone(),
        (None, Some(default)) => default.to_owned(),
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::MissingRequiredParameter,
                "Missing required parameter: 'model' (and no default model is configured)",
            )
            .with_param("model"));
        }
    };

    // Taken, not cloned: the input can be a long history.
    let input = match request.input.take() {
        None => Vec::new(),
        Some(Input::Text(text)) => vec![Item::Message(MessageItem {
            id: None,
            status: None,
            role: Role::User,
            content: MessageContent::Text(text),
            phase: None,
        })],
        Some(Input::Items(items)) => items,
    };
    check_input(&input)?;
    // Context can also come from instructions, a stored chain or a conversation.
    let has_context = request.instructions.is_some()
        || request.previous_response_id.is_some()
        || request.conversation.is_some();
    if input.is_empty() && !has_context {
        return Err(ApiError::new(
            ErrorCode::MissingRequiredParameter,
            "Missing required parameter: 'input' (or 'instructions')",
        )
        .with_param("input"));
    }

    // Taken, not cloned: the response echoes them.
    let tools = request.tools.take().unwrap_or_default();
    let (client_functions, client_tools) = crate::client_tools::declare(&tools)?;
    let functions: Vec<&FunctionTool> = tools
        .iter()
        .filter_map(|tool| match tool {
            Tool::Function(function) => Some(function),
            Tool::Mcp(_) | Tool::Hosted(_) => None,
        })
        .chain(client_functions.iter())
        .collect();
    let mut server_tools = Vec::new();
    for kind in types {
        server_tools.extend(kind.declare(&tools, scope)?);
    }

    // Hosted tool types no registered tool type runs are not offered.
    let skipped_tools: Vec<String> = tools
        .iter()
        .filter_map(|tool| match tool {
            Tool::Hosted(hosted)
                if !server_tools
                    .iter()
                    .any(|declared| declared.kind() == hosted.kind)
                    && !crate::client_tools::CLIENT_TOOL_TYPES.contains(&hosted.kind.as_str()) =>
            {
                Some(hosted.kind.clone())
            }
            Tool::Hosted(_) | Tool::Function(_) | Tool::Mcp(_) => None,
        })
        .collect();
    let tool_choice = request.tool_choice.take().unwrap_or_default();
    catalog::check_tool_choice(&tool_choice, &functions, &server_tools)?;
    // Until the server-side tools are prepared, the model is offered what is
    // known: the functions, and server-side tools already known (none, for MCP
    // servers not listed yet).
    let (offered, offered_choice) = Catalog::offered(&functions, &server_tools, &tool_choice);
    // Only a request with server-side tools builds its catalog again (once
    // they are known), so only then are the functions kept.
    let functions: Vec<FunctionTool> = if server_tools.is_empty() {
        Vec::new()
    } else {
        functions.into_iter().cloned().collect()
    };

    let logprobs = request.includes(Include::OutputTextLogprobs);
    let text = request.text.clone().unwrap_or_default();

    let model_request = ModelRequest {
        model: model.clone(),
        instructions: request.instructions.clone(),
        input,
        tools: offered,
        tool_choice: offered_choice,
        parallel_tool_calls: request.parallel_tool_calls,
        text_format: text.format.clone(),
        verbosity: text.verbosity,
        reasoning_effort: request.reasoning.as_ref().and_then(|r| r.effort),
        temperature: request.temperature,
        top_p: request.top_p,
        presence_penalty: request.presence_penalty,
        frequency_penalty: request.frequency_penalty,
        max_output_tokens: request.max_output_tokens,
        logprobs: logprobs.then(|| request.top_logprobs.unwrap_or(0)),
        user: request.user.clone(),
        stream: request.stream.unwrap_or(false),
        include: request.include.clone().unwrap_or_default(),
        reasoning_summary: request.reasoning.as_ref().and_then(|r| r.summary),
        prompt_cache_key: request.prompt_cache_key.clone(),
        service_tier: request.service_tier,
        safety_identifier: request.safety_identifier.clone(),
        metadata: request.metadata.clone().unwrap_or_default(),
        // No backend runs hosted tools yet; the registry entry that does will
        // say so, and the plan will hand it the configs.
        hosted_tools: Vec::new(),
    };

    let response = Response {
        id: response_id,
        object: ResponseObject::Response,
        created_at,
        completed_at: None,
        status: ResponseStatus::InProgress,
        incomplete_details: None,
        model,
        previous_response_id: request.previous_response_id.clone(),
        instructions: request.instructions,
        output: Vec::new(),
        error: None,
        tools: echoed(tools),
        tool_choice: tool_choice.clone(),
        truncation: request.truncation.unwrap_or_default(),
        parallel_tool_calls: request.parallel_tool_calls.unwrap_or(true),
        text: TextConfig {
            format: text.format,
            verbosity: text.verbosity,
        },
        top_p: request.top_p.unwrap_or(1.0),
        presence_penalty: request.presence_penalty.unwrap_or(0.0),
        frequency_penalty: request.frequency_penalty.unwrap_or(0.0),
        top_logprobs: request.top_logprobs.unwrap_or(0),
        temperature: request.temperature.unwrap_or(1.0),
        reasoning: Some(request.reasoning.unwrap_or(ReasoningConfig {
            effort: None,
            summary: None,
        })),
        usage: None,
        max_output_tokens: request.max_output_tokens,
        max_tool_calls: request.max_tool_calls,
        store: request.store.unwrap_or(true),
        background: false,
        service_tier: request.service_tier.unwrap_or_default(),
        metadata: request.metadata.unwrap_or_default(),
        safety_identifier: request.safety_identifier,
        prompt_cache_key: request.prompt_cache_key,
        user: request.user,
        conversation: None,
    };

    Ok(Plan {
        model_request,
        functions,
        tools: server_tools,
        tool_choice,
        skipped_tools,
        logprobs,
        client_tools,
        previous_response_id: request.previous_response_id,
        response: Response {
            conversation: conversation_id
                .clone()
                .map(|id| antwort_api::ConversationRef { id }),
            ..response
        },
        conversation_id,
    })
}

/// Features whose machinery (conversations, background workers, prompt templates)
/// is not in this build: a clear 400 beats a silently different answer.
fn reject_unavailable_features(request: &CreateResponseRequest) -> Result<(), ApiError> {
    if request.background == Some(true) {
        return Err(ApiError::unsupported(
            "background",
            "background mode is not supported yet",
        ));
    }
    if request.prompt.is_some() {
        return Err(ApiError::unsupported(
            "prompt",
            "stored prompt templates are not supported by this gateway",
        ));
    }
    Ok(())
}

/// `conversation` is an id or `{"id": ...}`, and excludes `previous_response_id`.
fn conversation_id(request: &CreateResponseRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = &request.conversation else {
        return Ok(None);
    };
    let id = match value {
        serde_json::Value::String(id) => Some(id.clone()),
        serde_json::Value::Object(object) => object
            .get("id")
            .and_then(|id| id.as_str())
            .map(str::to_owned),
        _ => None,
    }
    .filter(|id| !id.is_empty())
    .ok_or_else(|| {
        ApiError::invalid(
            "conversation",
            "conversation must be an id or an object with an `id`",
        )
    })?;
    if request.previous_response_id.is_some() {
        return Err(ApiError::invalid(
            "conversation",
            "conversation and previous_response_id cannot be used together",
        ));
    }
    Ok(Some(id))
}

/// Rejects input that can only be served with machinery this build lacks.
fn check_input(input: &[Item]) -> Result<(), ApiError> {
    for (index, item) in input.iter().enumerate() {
        match item {
            Item::Compaction(compaction)
                if crate::compaction::summary(&compaction.encrypted_content).is_none() =>
            {
                return Err(ApiError::invalid(
                    format!("input[{index}]"),
                    "this compaction item was not produced by this gateway and cannot be read here",
                ));
            }
            Item::Message(message) => check_message(index, message)?,
            // References are resolved against the store by the engine; approval
            // answers are matched with their requests once the context is loaded.
            Item::FunctionCall(_)
            | Item::McpListTools(_)
            | Item::McpCall(_)
            | Item::McpApprovalRequest(_)
            | Item::McpApprovalResponse(_)
            | Item::WebSearchCall(_)
            | Item::CustomToolCall(_)
            | Item::CustomToolCallOutput(_)
            | Item::LocalShellCall(_)
            | Item::LocalShellCallOutput(_)
            | Item::ShellCall(_)
            | Item::ShellCallOutput(_)
            | Item::ApplyPatchCall(_)
            | Item::ApplyPatchCallOutput(_)
            | Item::FunctionCallOutput(_)
            | Item::Reasoning(_)
            | Item::ItemReference(_)
            | Item::Compaction(_) => {}
        }
    }
    Ok(())
}

fn check_message(index: usize, message: &MessageItem) -> Result<(), ApiError> {
    let MessageContent::Parts(parts) = &message.content else {
        return Ok(());
    };
    for (part_index, part) in parts.iter().enumerate() {
        let param = || format!("input[{index}].content[{part_index}]");
        let allowed = match (message.role, part) {
            (
                Role::User,
                ContentPart::InputImage {
                    file_id: Some(_),
                    image_url: None,
                    ..
                },
            ) => {
                return Err(ApiError::unsupported(
                    param(),
                    "input_image by file_id needs the Files API, which this gateway does not have yet; send image_url",
                ));
            }
            (
                Role::User,
                ContentPart::InputImage {
                    image_url: None, ..
                },
            ) => {
                return Err(ApiError::invalid(param(), "input_image needs an image_url"));
            }
            (
                Role::User,
                ContentPart::InputFile {
                    file_data: None, ..
                },
            ) => {
                return Err(ApiError::unsupported(
                    param(),
                    "input_file by file_id or file_url is not supported yet; send file_data",
                ));
            }
            (
                Role::User,
                ContentPart::InputText { .. }
                | ContentPart::InputImage { .. }
                | ContentPart::InputFile { .. },
            ) => true,
            (
                Role::System | Role::Developer,
                ContentPart::InputText { .. } | ContentPart::Text { .. },
            ) => true,
            (
                Role::Assistant,
                ContentPart::OutputText(_)
                | ContentPart::Refusal { .. }
                | ContentPart::InputText { .. }
                | ContentPart::Text { .. },
            ) => true,
            (Role::User, ContentPart::Text { .. }) => true,
            _ => false,
        };
        if !allowed {
            return Err(ApiError::invalid(
                param(),
                format!(
                    "content part of this type is not allowed in a {} message",
                    role_name(message.role)
                ),
            ));
        }
    }
    Ok(())
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::System => "system",
        Role::Developer => "developer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mcp_only() -> Vec<Arc<dyn ToolType>> {
        vec![Arc::new(crate::mcp::McpType::new(Arc::new(
            crate::mcp::NoMcp,
        )))]
    }
    use crate::model::ModelToolChoice;

    fn plan_for(body: &str) -> Result<Plan, ApiError> {
        let request = CreateResponseRequest::from_json(body.as_bytes())?;
        plan(
            request,
            Some("default-model"),
            "resp_1".into(),
            1,
            &mcp_only(),
            &crate::store::Scope::default(),
        )
    }

    #[test]
    fn string_input_becomes_a_user_message_and_default_model_applies() {
        let plan = plan_for(r#"{"input":"hi"}"#).unwrap();
        assert_eq!(plan.model_request.model, "default-model");
        assert!(matches!(&plan.model_request.input[0], Item::Message(m) if m.role == Role::User));
        assert!(plan.response.store);
        assert_eq!(plan.response.temperature, 1.0);
    }

    #[test]
    fn named_function_must_exist() {
        let error = plan_for(
            r#"{"input":"hi","tools":[{"type":"function","name":"a"}],"tool_choice":{"type":"function","name":"b"}}"#,
        )
        .unwrap_err();
        assert_eq!(error.param.as_deref(), Some("tool_choice"));
    }

    #[test]
    fn allowed_tools_filters_what_the_model_sees() {
        let plan = plan_for(
            r#"{"input":"hi","tools":[{"type":"function","name":"a"},{"type":"function","name":"b"}],
                "tool_choice":{"type":"allowed_tools","mode":"required","tools":[{"type":"function","name":"b"}]}}"#,
        )
        .unwrap();
        let names: Vec<_> = plan
            .model_request
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["b"]);
        assert_eq!(plan.model_request.tool_choice, ModelToolChoice::Required);
    }

    #[test]
    fn hosted_tools_are_skipped_not_offered() {
        let plan = plan_for(
            r#"{"input":"hi","tools":[{"type":"web_search"},{"type":"function","name":"a"}]}"#,
        )
        .unwrap();
        assert_eq!(plan.skipped_tools, ["web_search"]);
        assert_eq!(plan.model_request.tools.len(), 1);
        assert_eq!(plan.response.tools.len(), 2);
    }

    #[test]
    fn conversation_takes_an_id_or_an_object_but_not_with_previous_response_id() {
        assert_eq!(
            plan_for(r#"{"input":"hi","conversation":"conv_1"}"#)
                .unwrap()
                .conversation_id
                .as_deref(),
            Some("conv_1")
        );
        assert_eq!(
            plan_for(r#"{"input":"hi","conversation":{"id":"conv_2"}}"#)
                .unwrap()
                .conversation_id
                .as_deref(),
            Some("conv_2")
        );
        let error =
            plan_for(r#"{"input":"hi","conversation":"conv_1","previous_response_id":"resp_1"}"#)
                .unwrap_err();
        assert_eq!(error.param.as_deref(), Some("conversation"));
        assert!(plan_for(r#"{"input":"hi","conversation":7}"#).is_err());
    }

    #[test]
    fn unavailable_features_give_clear_errors() {
        let error =
            plan_for(r#"{"input":[{"type":"compaction","encrypted_content":"x"}]}"#).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("input[0]"));
    }

    #[test]
    fn missing_model_without_default_is_a_400() {
        let request = CreateResponseRequest::from_json(br#"{"input":"hi"}"#).unwrap();
        let error = plan(
            request,
            None,
            "resp_1".into(),
            1,
            &mcp_only(),
            &crate::store::Scope::default(),
        )
        .unwrap_err();
        assert_eq!(error.param.as_deref(), Some("model"));
    }

    #[test]
    fn logprobs_follow_include() {
        let plan = plan_for(
            r#"{"input":"hi","top_logprobs":2,"include":["message.output_text.logprobs"]}"#,
        )
        .unwrap();
        assert_eq!(plan.model_request.logprobs, Some(2));
    }
}
