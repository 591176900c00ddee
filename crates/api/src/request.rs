//! The body of `POST /v1/responses`, parsed at the edge into typed fields with errors
//! that name the parameter at fault.
//!
//! Every field the OpenAI API defines is accepted (real clients send fields a gateway
//! does not use); a field nobody defines is a 400 naming it. Ranges and lengths are
//! checked here so that nothing downstream re-checks raw input.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{ApiError, ErrorCode};
use crate::items::Input;
use crate::stored_text::{check_input_ids, check_optional_text, check_text};
use crate::tools::{ReasoningConfig, TextConfig, Tool, ToolChoice};

/// A create request as the client sent it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateResponseRequest {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub input: Option<Input>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub conversation: Option<serde_json::Value>,
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub max_tool_calls: Option<u32>,
    #[serde(default)]
    pub store: Option<bool>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub background: Option<bool>,
    #[serde(default)]
    pub include: Option<Vec<Include>>,
    #[serde(default)]
    pub text: Option<TextConfig>,
    #[serde(default)]
    pub reasoning: Option<ReasoningConfig>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    #[serde(default)]
    pub top_logprobs: Option<u32>,
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    pub truncation: Option<Truncation>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub safety_identifier: Option<String>,
    #[serde(default)]
    pub prompt_cache_key: Option<String>,
    #[serde(default)]
    pub service_tier: Option<ServiceTier>,
    /// A stored prompt template; this deployment has no prompt store.
    #[serde(default)]
    pub prompt: Option<serde_json::Value>,
    /// Fields the OpenAI API (or a widespread client) defines that change nothing here:
    /// accepted so those clients work, and otherwise ignored.
    #[serde(default)]
    pub client_metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub context_management: Option<serde_json::Value>,
    #[serde(default)]
    pub prompt_cache_retention: Option<serde_json::Value>,
    #[serde(default)]
    pub prompt_cache_options: Option<serde_json::Value>,
    #[serde(default)]
    pub background_options: Option<serde_json::Value>,
    #[serde(default)]
    pub moderation: Option<serde_json::Value>,
    #[serde(default)]
    pub access_programs: Option<serde_json::Value>,
    #[serde(default)]
    pub image: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_obfuscation: Option<bool>,
}

/// What a client may ask to have included in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Include {
    #[serde(rename = "message.output_text.logprobs")]
    OutputTextLogprobs,
    #[serde(rename = "reasoning.encrypted_content")]
    ReasoningEncryptedContent,
    #[serde(rename = "message.input_image.image_url")]
    InputImageUrl,
    #[serde(rename = "file_search_call.results")]
    FileSearchResults,
    #[serde(rename = "web_search_call.results")]
    WebSearchResults,
    #[serde(rename = "web_search_call.action.sources")]
    WebSearchSources,
    #[serde(rename = "computer_call_output.output.image_url")]
    ComputerCallImageUrl,
    #[serde(rename = "code_interpreter_call.outputs")]
    CodeInterpreterOutputs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Truncation {
    Auto,
    #[default]
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceTier {
    Auto,
    #[default]
    Default,
    Flex,
    Scale,
    Priority,
}

/// Parses a JSON body into `T`, with errors that name the parameter at fault.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        json_error(&path, &inner)
    })
}

/// `POST /v1/responses/compact`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactRequest {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub input: Option<Input>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub prompt_cache_key: Option<String>,
    /// Accepted for compatibility, not used.
    #[serde(default)]
    pub prompt_cache_options: Option<serde_json::Value>,
    #[serde(default)]
    pub prompt_cache_retention: Option<serde_json::Value>,
    #[serde(default)]
    pub service_tier: Option<serde_json::Value>,
    #[serde(default)]
    pub image: Option<serde_json::Value>,
}

/// `POST /v1/conversations`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConversationRequest {
    #[serde(default)]
    pub items: Option<Input>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// `POST /v1/conversations/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversationRequest {
    pub metadata: BTreeMap<String, String>,
}

/// `POST /v1/conversations/{id}/items`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddConversationItemsRequest {
    pub items: Input,
}

impl CreateResponseRequest {
    /// Parses and validates a request body.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let request: Self = parse_json(body)?;
        request.validate()?;
        Ok(request)
    }

    /// True when the client asked for token log probabilities on output text.
    pub fn includes(&self, include: Include) -> bool {
        self.include
            .as_deref()
            .is_some_and(|list| list.contains(&include))
    }

    fn validate(&self) -> Result<(), ApiError> {
        check_range("temperature", self.temperature, 0.0, 2.0)?;
        check_range("top_p", self.top_p, 0.0, 1.0)?;
        check_range("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        check_range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        if let Some(top_logprobs) = self.top_logprobs
            && top_logprobs > 20
        {
            return Err(ApiError::invalid(
                "top_logprobs",
                format!("top_logprobs must be between 0 and 20, got {top_logprobs}"),
            ));
        }
        if let Some(max) = self.max_output_tokens
            && max < 16
        {
            return Err(ApiError::invalid(
                "max_output_tokens",
                format!("max_output_tokens must be at least 16, got {max}"),
            ));
        }
        if self.max_tool_calls == Some(0) {
            return Err(ApiError::invalid(
                "max_tool_calls",
                "max_tool_calls must be at least 1",
            ));
        }
        check_length("safety_identifier", self.safety_identifier.as_deref(), 64)?;
        check_length("prompt_cache_key", self.prompt_cache_key.as_deref(), 64)?;
        if let Some(metadata) = &self.metadata {
            validate_metadata(metadata)?;
        }
        if let Some(tools) = &self.tools {
            for (index, tool) in tools.iter().enumerate() {
                if let Tool::Function(function) = tool {
                    validate_function_name(&function.name).map_err(|message| {
                        ApiError::invalid(format!("tools[{index}].name"), message)
                    })?;
                }
            }
        }
        if let Some(text) = &self.text
            && let crate::tools::TextFormat::JsonSchema(format) = &text.format
        {
            validate_function_name(&format.name)
                .map_err(|message| ApiError::invalid("text.format.name", message))?;
            if !format.schema.is_object() {
                return Err(ApiError::invalid(
                    "text.format.schema",
                    "text.format.schema must be a JSON Schema object",
                ));
            }
        }
        if let Some(model) = &self.model
            && model.trim().is_empty()
        {
            return Err(ApiError::invalid("model", "model must not be empty"));
        }
        check_optional_text("model", self.model.as_deref())?;
        check_optional_text("previous_response_id", self.previous_response_id.as_deref())?;
        match &self.conversation {
            Some(serde_json::Value::String(id)) => check_text("conversation", id)?,
            Some(serde_json::Value::Object(object)) => {
                if let Some(serde_json::Value::String(id)) = object.get("id") {
                    check_text("conversation.id", id)?;
                }
            }
            _ => {}
        }
        check_input_ids("input", self.input.as_ref())
    }
}

impl CompactRequest {
    /// Parses and validates a request body.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let request: Self = parse_json(body)?;
        check_optional_text("model", request.model.as_deref())?;
        check_optional_text(
            "previous_response_id",
            request.previous_response_id.as_deref(),
        )?;
        check_input_ids("input", request.input.as_ref())?;
        Ok(request)
    }
}

/// Turns a serde error at `path` into a 400 that names the parameter.
fn json_error(path: &str, error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let message = error.to_string();
    // serde reports an unknown field as "unknown field `x`, expected one of ...": the
    // list of every known field helps nobody, so name just the culprit.
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some(name) = rest.split('`').next()
    {
        // The path already ends at the unknown field.
        let param = if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            path.to_owned()
        };
        return ApiError::new(
            ErrorCode::UnknownParameter,
            format!("Unrecognized request argument supplied: {param}"),
        )
        .with_param(param);
    }
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            ErrorCode::InvalidJson,
            format!("The request body is not valid JSON: {message}"),
        ),
        Category::Data => {
            let clean = strip_position(&message);
            let (code, param) = if clean.starts_with("missing field") {
                (ErrorCode::MissingRequiredParameter, path)
            } else {
                (ErrorCode::InvalidValue, path)
            };
            let text = if param == "." || param.is_empty() {
                format!("Invalid request body: {clean}")
            } else {
                format!("Invalid value for '{param}': {clean}")
            };
            let error = ApiError::new(code, text);
            if param == "." || param.is_empty() {
                error
            } else {
                error.with_param(param)
            }
        }
    }
}

/// serde_json appends " at line 1 column 42": useful for a file, noise for an API.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(index) => &message[..index],
        None => message,
    }
}

fn check_range(name: &str, value: Option<f64>, min: f64, max: f64) -> Result<(), ApiError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(ApiError::invalid(
            name,
            format!("{name} must be between {min} and {max}, got {v}"),
        )),
        _ => Ok(()),
    }
}

fn check_length(name: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::invalid(
            name,
            format!("{name} must be at most {max} characters"),
        )),
        _ => Ok(()),
    }
}

/// At most 16 keys of at most 64 characters, values of at most 512.
pub fn validate_metadata(metadata: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if metadata.len() > 16 {
        return Err(ApiError::invalid(
            "metadata",
            format!("metadata may have at most 16 keys, got {}", metadata.len()),
        ));
    }
    for (key, value) in metadata {
        check_text("metadata", key)?;
        check_text("metadata", value)?;
        if key.chars().count() > 64 {
            return Err(ApiError::invalid(
                "metadata",
                format!("metadata key `{key}` is longer than 64 characters"),
            ));
        }
        if value.chars().count() > 512 {
            return Err(ApiError::invalid(
                "metadata",
                format!("metadata value of `{key}` is longer than 512 characters"),
            ));
        }
    }
    Ok(())
}

/// Names of functions and schemas: 1 to 64 of `[a-zA-Z0-9_-]`, as the API requires.
fn validate_function_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if name.is_empty() || name.len() > 64 || !valid_chars {
        return Err(format!(
            "`{name}` is not a valid name: use 1 to 64 letters, digits, `_` or `-`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<CreateResponseRequest, ApiError> {
        CreateResponseRequest::from_json(body.as_bytes())
    }

    #[test]
    fn string_input_is_accepted() {
        let request = parse(r#"{"model":"m","input":"hello"}"#).unwrap();
        assert_eq!(request.input, Some(Input::Text("hello".into())));
    }

    #[test]
    fn unknown_field_is_named() {
        let error = parse(r#"{"model":"m","input":"hi","temprature":1}"#).unwrap_err();
        assert_eq!(error.code, ErrorCode::UnknownParameter);
        assert_eq!(error.param.as_deref(), Some("temprature"));
    }

    #[test]
    fn wrong_type_names_the_field() {
        let error = parse(r#"{"model":"m","temperature":"hot"}"#).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidValue);
        assert_eq!(error.param.as_deref(), Some("temperature"));
        assert!(!error.message.contains("line 1"), "{}", error.message);
    }

    #[test]
    fn bad_item_names_its_index() {
        let error =
            parse(r#"{"input":[{"role":"user","content":"a"},{"type":"teleport"}]}"#).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("input[1]"));
        assert!(error.message.contains("teleport"), "{}", error.message);
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        for (body, param) in [
            (r#"{"temperature":2.5}"#, "temperature"),
            (r#"{"top_p":-0.1}"#, "top_p"),
            (r#"{"top_logprobs":21}"#, "top_logprobs"),
            (r#"{"max_output_tokens":3}"#, "max_output_tokens"),
            (r#"{"presence_penalty":3}"#, "presence_penalty"),
            (
                r#"{"tools":[{"type":"function","name":"has space"}]}"#,
                "tools[0].name",
            ),
        ] {
            let error = parse(body).unwrap_err();
            assert_eq!(error.param.as_deref(), Some(param), "{body}");
            assert_eq!(error.status(), 400);
        }
    }

    #[test]
    fn invalid_json_is_a_400() {
        let error = parse("{").unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidJson);
    }

    #[test]
    fn fields_real_clients_send_are_accepted() {
        parse(
            r#"{"model":"m","input":"hi","client_metadata":{"a":"b"},"prompt_cache_key":"k",
               "store":false,"include":["reasoning.encrypted_content"],
               "tools":[{"type":"web_search","search_context_size":"low"}]}"#,
        )
        .unwrap();
    }

    #[test]
    fn unknown_include_is_rejected() {
        let error = parse(r#"{"include":["everything"]}"#).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("include[0]"));
    }
}
