//! MCP in the Responses API: the `mcp` tool a request declares, and the items the
//! gateway emits and accepts around it (`mcp_list_tools`, `mcp_call`,
//! `mcp_approval_request`, `mcp_approval_response`), in the OpenAI shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `{"type": "mcp", ...}` in `tools`: a remote MCP server whose tools the model may
/// call, run by the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpTool {
    #[serde(rename = "type")]
    pub kind: McpToolType,
    pub server_label: String,
    /// Where the server is; without it, `server_label` names a server defined in
    /// the gateway's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
    /// OpenAI's hosted connectors; accepted so that the request parses, refused
    /// with a clear error by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<String>,
    /// Headers for the server. Secrets: never echoed, stored or logged.
    #[serde(default, skip_serializing)]
    pub headers: Option<BTreeMap<String, String>>,
    /// An OAuth access token for the server, sent as a bearer token. A secret too.
    #[serde(default, skip_serializing)]
    pub authorization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<McpToolFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_approval: Option<McpRequireApproval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_description: Option<String>,
    /// Fields this gateway does not use (`defer_loading`, `allowed_callers`, ...),
    /// kept so that the response echoes the tool as it was sent.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The constant `"mcp"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpToolType {
    Mcp,
}

/// `allowed_tools`: a list of names, or a filter object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum McpToolFilter {
    Names(Vec<String>),
    Filter(McpToolSelector),
}

/// Selects tools by name and, when set, by their `readOnlyHint` annotation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct McpToolSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

impl McpToolSelector {
    /// Whether a tool with this name and read-only hint is selected. A selector
    /// with neither criterion selects nothing.
    pub fn selects(&self, name: &str, read_only: bool) -> bool {
        if self.tool_names.is_none() && self.read_only.is_none() {
            return false;
        }
        let by_name = self
            .tool_names
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name));
        let by_hint = self.read_only.is_none_or(|wanted| wanted == read_only);
        by_name && by_hint
    }
}

impl McpToolFilter {
    pub fn allows(&self, name: &str, read_only: bool) -> bool {
        match self {
            Self::Names(names) => names.iter().any(|n| n == name),
            Self::Filter(selector) => selector.selects(name, read_only),
        }
    }
}

/// `require_approval`: `"always"`, `"never"`, or per-tool filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum McpRequireApproval {
    Mode(McpApprovalMode),
    Filter(McpApprovalFilter),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpApprovalMode {
    Always,
    Never,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct McpApprovalFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always: Option<McpToolSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub never: Option<McpToolSelector>,
}

impl McpRequireApproval {
    /// Whether calling this tool needs the client's approval first. As in the
    /// OpenAI API, a tool no filter names needs approval: running remote code
    /// without asking must be asked for.
    pub fn requires(&self, name: &str, read_only: bool) -> bool {
        match self {
            Self::Mode(McpApprovalMode::Always) => true,
            Self::Mode(McpApprovalMode::Never) => false,
            Self::Filter(filter) => {
                if filter
                    .always
                    .as_ref()
                    .is_some_and(|s| s.selects(name, read_only))
                {
                    return true;
                }
                !filter
                    .never
                    .as_ref()
                    .is_some_and(|s| s.selects(name, read_only))
            }
        }
    }
}

/// `mcp_list_tools`: the tools a server offered, or why it could not list them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpListToolsItem {
    pub id: String,
    pub server_label: String,
    #[serde(default)]
    pub tools: Vec<McpListedTool>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpListedTool {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub input_schema: serde_json::Value,
    #[serde(default)]
    pub annotations: Option<serde_json::Value>,
}

impl McpListedTool {
    /// The tool's `readOnlyHint` annotation.
    pub fn read_only(&self) -> bool {
        self.annotations
            .as_ref()
            .and_then(|a| a.get("readOnlyHint"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }
}

/// `mcp_call`: one call of a server's tool, with its output or error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpCallItem {
    pub id: String,
    pub server_label: String,
    pub name: String,
    pub arguments: String,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub error: Option<McpCallError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<McpCallStatus>,
    #[serde(default)]
    pub approval_request_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpCallStatus {
    InProgress,
    Calling,
    Completed,
    Incomplete,
    Failed,
}

/// Why a call failed, in the OpenAI shapes; a plain string from older clients is
/// accepted back as input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum McpCallError {
    Typed(McpCallErrorKind),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum McpCallErrorKind {
    /// The server answered with a JSON-RPC error, or could not be spoken to.
    McpProtocolError { code: i64, message: String },
    /// The tool ran and reported an error.
    McpToolExecutionError { content: serde_json::Value },
    /// The server answered with an HTTP error status.
    HttpError { code: u16, message: String },
}

impl McpCallError {
    /// What the error says, for the model.
    pub fn message(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Typed(McpCallErrorKind::McpProtocolError { message, .. })
            | Self::Typed(McpCallErrorKind::HttpError { message, .. }) => message.clone(),
            Self::Typed(McpCallErrorKind::McpToolExecutionError { content }) => match content {
                serde_json::Value::String(text) => text.clone(),
                // MCP content parts: the text of the text parts.
                serde_json::Value::Array(parts) => parts
                    .iter()
                    .map(|part| match part.get("text").and_then(|t| t.as_str()) {
                        Some(text) => text.to_owned(),
                        None => part.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                other => other.to_string(),
            },
        }
    }
}

/// `mcp_approval_request`: the model wants to call a tool that needs the client's
/// approval first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpApprovalRequestItem {
    pub id: String,
    pub server_label: String,
    pub name: String,
    pub arguments: String,
}

/// `mcp_approval_response`: the client's answer to an approval request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpApprovalResponseItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub approval_request_id: String,
    pub approve: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn approval_filters_follow_the_openai_rules() {
        let always: McpRequireApproval = serde_json::from_value(json!("always")).unwrap();
        assert!(always.requires("x", true));
        let never: McpRequireApproval = serde_json::from_value(json!("never")).unwrap();
        assert!(!never.requires("x", false));
        let filter: McpRequireApproval = serde_json::from_value(
            json!({"never": {"tool_names": ["add"]}, "always": {"tool_names": ["fail"]}}),
        )
        .unwrap();
        assert!(!filter.requires("add", false));
        assert!(filter.requires("fail", false));
        assert!(
            filter.requires("echo", false),
            "unnamed tools need approval"
        );
        let read_only: McpRequireApproval =
            serde_json::from_value(json!({"never": {"read_only": true}})).unwrap();
        assert!(!read_only.requires("add", true));
        assert!(read_only.requires("echo", false));
    }

    #[test]
    fn secrets_are_not_echoed_and_unknown_fields_are() {
        let tool: McpTool = serde_json::from_value(json!({
            "type": "mcp", "server_label": "calc", "server_url": "http://x/mcp",
            "headers": {"Authorization": "Bearer secret"}, "authorization": "tok",
            "allowed_tools": ["add"], "defer_loading": true
        }))
        .unwrap();
        assert_eq!(
            tool.headers.as_ref().unwrap()["Authorization"],
            "Bearer secret"
        );
        let echoed = serde_json::to_value(&tool).unwrap();
        assert_eq!(
            echoed,
            json!({"type": "mcp", "server_label": "calc", "server_url": "http://x/mcp",
                   "allowed_tools": ["add"], "defer_loading": true})
        );
    }

    #[test]
    fn call_errors_read_typed_or_plain() {
        let typed: McpCallError =
            serde_json::from_value(json!({"type": "http_error", "code": 502, "message": "bad"}))
                .unwrap();
        assert_eq!(typed.message(), "bad");
        let plain: McpCallError = serde_json::from_value(json!("boom")).unwrap();
        assert_eq!(plain.message(), "boom");
    }
}
