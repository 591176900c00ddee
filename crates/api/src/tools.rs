//! Tools, tool choice, and the text and reasoning options of a request, in the shapes
//! the request sends and the response echoes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::mcp::McpTool;

/// Tool types the OpenAI API defines that run on the provider's side. A deployment
/// that does not run one of them accepts it (real clients send them unconditionally)
/// but does not offer it to the model.
pub const HOSTED_TOOL_TYPES: &[&str] = &[
    "web_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "web_search_2025_08_26",
    "file_search",
    "code_interpreter",
    "mcp",
    "computer",
    "computer_use_preview",
    "programmatic_tool_calling",
    "tool_search",
    "image_generation",
    "local_shell",
    "shell",
    "custom",
    "apply_patch",
    "namespace",
];

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Tool {
    Function(FunctionTool),
    /// A remote MCP server, run by the gateway.
    Mcp(McpTool),
    /// A hosted tool, kept as sent so that the response echoes it unchanged.
    Hosted(HostedTool),
}

impl Tool {
    /// The wire `type` of the tool.
    pub fn kind(&self) -> &str {
        match self {
            Self::Function(_) => "function",
            Self::Mcp(_) => "mcp",
            Self::Hosted(hosted) => &hosted.kind,
        }
    }
}

impl<'de> Deserialize<'de> for Tool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let kind = match value.get("type") {
            Some(serde_json::Value::String(kind)) => kind.clone(),
            Some(_) => return Err(D::Error::custom("tool `type` must be a string")),
            None => return Err(D::Error::missing_field("type")),
        };
        if kind == "function" {
            return serde_json::from_value(serde_json::Value::Object(value))
                .map(Tool::Function)
                .map_err(D::Error::custom);
        }
        if kind == "mcp" {
            return serde_json::from_value(serde_json::Value::Object(value))
                .map(Tool::Mcp)
                .map_err(|e| D::Error::custom(format!("invalid mcp tool: {e}")));
        }
        if HOSTED_TOOL_TYPES.contains(&kind.as_str()) {
            return Ok(Tool::Hosted(HostedTool {
                kind,
                config: value,
            }));
        }
        Err(D::Error::custom(format!(
            "unknown tool type `{kind}`; expected `function` or one of the hosted tool types ({})",
            HOSTED_TOOL_TYPES.join(", ")
        )))
    }
}

/// A function implemented by the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionTool {
    #[serde(rename = "type", default = "function_type")]
    pub kind: FunctionType,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<serde_json::Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

fn function_type() -> FunctionType {
    FunctionType::Function
}

/// The constant `"function"` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionType {
    Function,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostedTool {
    pub kind: String,
    /// The whole tool object as the client sent it, `type` included.
    pub config: serde_json::Map<String, serde_json::Value>,
}

impl Serialize for HostedTool {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.config.serialize(serializer)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoiceMode {
    None,
    #[default]
    Auto,
    Required,
}

impl ToolChoiceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Auto => "auto",
            Self::Required => "required",
        }
    }
}

/// How the model may use the tools.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Mode(ToolChoiceMode),
    /// Call this function.
    Function {
        name: String,
    },
    /// Only these tools may be used, in the given mode.
    AllowedTools {
        mode: ToolChoiceMode,
        tools: Vec<ToolRef>,
    },
    /// A tool of an MCP server, or any of its tools when `name` is absent.
    Mcp {
        server_label: String,
        name: Option<String>,
    },
    /// A hosted tool type (`{"type": "web_search_preview"}` and the like).
    Hosted {
        kind: String,
    },
}

impl Default for ToolChoice {
    fn default() -> Self {
        Self::Mode(ToolChoiceMode::Auto)
    }
}

/// A reference to a tool inside `allowed_tools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolRef {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// For `mcp` entries: the server whose tools (or tool, with `name`) are allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_label: Option<String>,
}

impl Serialize for ToolChoice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::Mode(mode) => mode.serialize(serializer),
            Self::Function { name } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("type", "function")?;
                map.serialize_entry("name", name)?;
                map.end()
            }
            Self::AllowedTools { mode, tools } => {
                let mut map = serializer.serialize_map(Some(3))?;
                map.serialize_entry("type", "allowed_tools")?;
                map.serialize_entry("mode", mode)?;
                map.serialize_entry("tools", tools)?;
                map.end()
            }
            Self::Mcp { server_label, name } => {
                let mut map = serializer.serialize_map(Some(3))?;
                map.serialize_entry("type", "mcp")?;
                map.serialize_entry("server_label", server_label)?;
                if let Some(name) = name {
                    map.serialize_entry("name", name)?;
                }
                map.end()
            }
            Self::Hosted { kind } => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("type", kind)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        struct Object {
            #[serde(rename = "type")]
            kind: String,
            name: Option<String>,
            // Chat Completions clients nest the name: {"type":"function","function":{"name":..}}.
            function: Option<NamedFunction>,
            mode: Option<ToolChoiceMode>,
            tools: Option<Vec<ToolRef>>,
            server_label: Option<String>,
        }
        #[derive(Deserialize)]
        struct NamedFunction {
            name: String,
        }
        let value = serde_json::Value::deserialize(deserializer)?;
        if let serde_json::Value::String(mode) = &value {
            return match mode.as_str() {
                "none" => Ok(Self::Mode(ToolChoiceMode::None)),
                "auto" => Ok(Self::Mode(ToolChoiceMode::Auto)),
                "required" => Ok(Self::Mode(ToolChoiceMode::Required)),
                other => Err(D::Error::custom(format!(
                    "unknown tool_choice `{other}`; expected `none`, `auto`, `required` or an object"
                ))),
            };
        }
        let object: Object = serde_json::from_value(value).map_err(D::Error::custom)?;
        match object.kind.as_str() {
            "function" => {
                let name = object
                    .name
                    .or(object.function.map(|f| f.name))
                    .ok_or_else(|| {
                        D::Error::custom("tool_choice of type `function` needs a `name`")
                    })?;
                Ok(Self::Function { name })
            }
            "allowed_tools" => {
                let tools = object
                    .tools
                    .ok_or_else(|| D::Error::custom("allowed_tools needs a `tools` list"))?;
                Ok(Self::AllowedTools {
                    mode: object.mode.unwrap_or_default(),
                    tools,
                })
            }
            "mcp" => Ok(Self::Mcp {
                server_label: object.server_label.ok_or_else(|| {
                    D::Error::custom("tool_choice of type `mcp` needs a `server_label`")
                })?,
                name: object.name,
            }),
            kind if HOSTED_TOOL_TYPES.contains(&kind) => Ok(Self::Hosted {
                kind: kind.to_owned(),
            }),
            kind => Err(D::Error::custom(format!(
                "unknown tool_choice type `{kind}`"
            ))),
        }
    }
}

/// `text` of a request and of a response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TextConfig {
    #[serde(default, deserialize_with = "crate::serde_util::null_as_default")]
    pub format: TextFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<Verbosity>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TextFormat {
    #[default]
    Text,
    JsonObject,
    JsonSchema(JsonSchemaFormat),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaFormat {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub schema: serde_json::Value,
    #[serde(default, deserialize_with = "crate::serde_util::null_as_default")]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verbosity {
    Low,
    Medium,
    High,
}

/// `reasoning` of a request and of a response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReasoningConfig {
    #[serde(default)]
    pub effort: Option<ReasoningEffort>,
    #[serde(default)]
    pub summary: Option<ReasoningSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningEffort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
    Max,
}

impl ReasoningEffort {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Xhigh => "xhigh",
            Self::Max => "max",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningSummary {
    Auto,
    Concise,
    Detailed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_choice_forms() {
        let parse = |v: serde_json::Value| serde_json::from_value::<ToolChoice>(v).unwrap();
        assert_eq!(
            parse(json!("required")),
            ToolChoice::Mode(ToolChoiceMode::Required)
        );
        assert_eq!(
            parse(json!({"type": "function", "name": "f"})),
            ToolChoice::Function { name: "f".into() }
        );
        assert_eq!(
            parse(json!({"type": "function", "function": {"name": "f"}})),
            ToolChoice::Function { name: "f".into() }
        );
        let allowed = parse(json!({"type": "allowed_tools", "mode": "required",
            "tools": [{"type": "function", "name": "f"}]}));
        assert_eq!(
            serde_json::to_value(&allowed).unwrap(),
            json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "f"}]})
        );
        assert!(serde_json::from_value::<ToolChoice>(json!("sometimes")).is_err());
    }

    #[test]
    fn hosted_tools_are_kept_verbatim_and_unknown_ones_rejected() {
        let tool: Tool =
            serde_json::from_value(json!({"type": "web_search", "search_context_size": "low"}))
                .unwrap();
        assert_eq!(tool.kind(), "web_search");
        assert_eq!(
            serde_json::to_value(&tool).unwrap(),
            json!({"type": "web_search", "search_context_size": "low"})
        );
        let error = serde_json::from_value::<Tool>(json!({"type": "teleport"})).unwrap_err();
        assert!(error.to_string().contains("teleport"));
    }

    #[test]
    fn function_tool_echo_carries_every_required_key() {
        let tool: Tool = serde_json::from_value(json!({"type": "function", "name": "f"})).unwrap();
        assert_eq!(
            serde_json::to_value(&tool).unwrap(),
            json!({"type": "function", "name": "f", "description": null, "parameters": null, "strict": null})
        );
    }
}
