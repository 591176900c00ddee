//! The tools of one response: what the model is offered, and where each call goes.
//!
//! Client functions keep their names and are handed back to the client. Server-side
//! tools (today: the tools of MCP servers) are offered under a name qualified by
//! their server label ([`mcp_tool_name`]), and a call is routed by looking its name
//! up in this catalog, built from the declared tools: never by guessing from a bare
//! function name. A name that is not a server tool of this response goes back to
//! the client, so a client function named like a server tool stays the client's.

use std::borrow::Borrow;
use std::collections::HashMap;

use antwort_api::{
    ApiError, FunctionTool, FunctionType, McpApprovalMode, McpListedTool, McpRequireApproval,
    McpTool, McpToolFilter, Tool, ToolChoice, ToolChoiceMode,
};

use crate::mcp::McpServer;
use crate::model::ModelToolChoice;
use crate::replay::mcp_tool_name;

/// An MCP server a request declared, with its tools once they are known.
#[derive(Debug, Clone)]
pub struct DeclaredServer {
    pub server: McpServer,
    pub allowed: Option<McpToolFilter>,
    pub approval: McpRequireApproval,
    pub description: Option<String>,
    /// The server's tools: from the stored context, or listed for this response.
    pub tools: Option<Vec<McpListedTool>>,
}

/// The declared MCP servers of `tools`, checked: labels are unique and usable in
/// a tool name, and every server is one this gateway can reach.
pub fn declared_servers(tools: &[Tool]) -> Result<Vec<DeclaredServer>, ApiError> {
    let mut servers: Vec<DeclaredServer> = Vec::new();
    for (index, tool) in tools.iter().enumerate() {
        let Tool::Mcp(mcp) = tool else { continue };
        let param = |field: &str| format!("tools[{index}].{field}");
        check_label(&mcp.server_label).map_err(|m| ApiError::invalid(param("server_label"), m))?;
        if servers.iter().any(|s| s.server.label == mcp.server_label) {
            return Err(ApiError::invalid(
                param("server_label"),
                format!(
                    "server_label '{}' is declared twice; each MCP server needs its own label",
                    mcp.server_label
                ),
            ));
        }
        if mcp.connector_id.is_some() {
            return Err(ApiError::unsupported(
                param("connector_id"),
                "OpenAI's hosted connectors are not available here; give a server_url, or the label of a server configured on this gateway",
            ));
        }
        servers.push(DeclaredServer {
            server: server_of(mcp),
            allowed: mcp.allowed_tools.clone(),
            approval: mcp
                .require_approval
                .clone()
                .unwrap_or(McpRequireApproval::Mode(McpApprovalMode::Always)),
            description: mcp.server_description.clone(),
            tools: None,
        });
    }
    Ok(servers)
}

fn check_label(label: &str) -> Result<(), String> {
    let valid = !label.is_empty()
        && label.len() <= 64
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "server_label '{label}' must be 1 to 64 letters, digits, '_' or '-'"
        ))
    }
}

fn server_of(tool: &McpTool) -> McpServer {
    let mut headers = tool.headers.clone().unwrap_or_default();
    if let Some(token) = &tool.authorization {
        headers.insert("Authorization".to_owned(), format!("Bearer {token}"));
    }
    McpServer {
        label: tool.server_label.clone(),
        url: tool.server_url.clone(),
        headers,
    }
}

/// Checks a `tool_choice` against the declared tools, before anything runs.
pub fn check_tool_choice(
    choice: &ToolChoice,
    functions: &[impl Borrow<FunctionTool>],
    servers: &[DeclaredServer],
) -> Result<(), ApiError> {
    let has_function = |name: &str| functions.iter().any(|f| f.borrow().name == name);
    let has_server = |label: &str| servers.iter().any(|s| s.server.label == label);
    match choice {
        ToolChoice::Mode(ToolChoiceMode::Required)
            if functions.is_empty() && servers.is_empty() =>
        {
            Err(ApiError::invalid(
                "tool_choice",
                "tool_choice 'required' needs at least one tool",
            ))
        }
        ToolChoice::Mode(_) => Ok(()),
        ToolChoice::Function { name } if !has_function(name) => Err(ApiError::invalid(
            "tool_choice",
            format!("tool_choice names function '{name}', which is not in tools"),
        )),
        ToolChoice::Function { .. } => Ok(()),
        ToolChoice::Mcp { server_label, .. } if !has_server(server_label) => {
            Err(ApiError::invalid(
                "tool_choice",
                format!("tool_choice names MCP server '{server_label}', which is not in tools"),
            ))
        }
        ToolChoice::Mcp { .. } => Ok(()),
        ToolChoice::AllowedTools { tools, .. } => {
            for (index, tool) in tools.iter().enumerate() {
                let param = format!("tool_choice.tools[{index}]");
                match (tool.kind.as_str(), &tool.name, &tool.server_label) {
                    ("function", Some(name), _) if has_function(name) => {}
                    ("function", Some(name), _) => {
                        return Err(ApiError::invalid(
                            param,
                            format!("allowed_tools names function '{name}', which is not in tools"),
                        ));
                    }
                    ("function", None, _) => {
                        return Err(ApiError::invalid(param, "allowed_tools entry needs a name"));
                    }
                    ("mcp", _, Some(label)) if has_server(label) => {}
                    ("mcp", _, label) => {
                        return Err(ApiError::invalid(
                            param,
                            format!(
                                "allowed_tools names MCP server '{}', which is not in tools",
                                label.as_deref().unwrap_or_default()
                            ),
                        ));
                    }
                    (kind, _, _) => {
                        return Err(ApiError::unsupported(
                            param,
                            format!(
                                "allowed_tools entry of type '{kind}' is not supported; function and mcp tools run here"
                            ),
                        ));
                    }
                }
            }
            Ok(())
        }
        ToolChoice::Hosted { kind } => Err(ApiError::unsupported(
            "tool_choice",
            format!("tool_choice of type '{kind}' names a hosted tool this gateway does not run"),
        )),
    }
}

/// Where a server-side tool call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRoute {
    pub server_label: String,
    /// The tool's name on its server.
    pub tool: String,
    /// Whether the client must approve the call before it runs.
    pub approval: bool,
}

/// Server-side tools by the name the model calls them.
#[derive(Debug, Clone, Default)]
pub struct Routes(HashMap<String, ServerRoute>);

impl Routes {
    /// The server-side tool this name calls; `None` for anything else, which goes
    /// back to the client.
    pub fn get(&self, name: &str) -> Option<&ServerRoute> {
        self.0.get(name)
    }
}

/// The tools of one model turn.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub offered: Vec<FunctionTool>,
    pub tool_choice: ModelToolChoice,
    pub routes: Routes,
}

impl Catalog {
    /// Builds the catalog from checked declarations (see [`check_tool_choice`]).
    pub fn build(
        functions: &[impl Borrow<FunctionTool>],
        servers: &[DeclaredServer],
        choice: &ToolChoice,
    ) -> Self {
        let mut offered: Vec<FunctionTool> = Vec::new();
        let mut routes = HashMap::new();
        let client_allowed = |name: &str| match choice {
            ToolChoice::AllowedTools { tools, .. } => tools
                .iter()
                .any(|t| t.kind == "function" && t.name.as_deref() == Some(name)),
            ToolChoice::Mcp { .. } => false,
            _ => true,
        };
        for function in functions.iter().map(Borrow::borrow) {
            if client_allowed(&function.name) {
                offered.push(function.clone());
            }
        }
        let server_allowed = |label: &str, tool: &str| match choice {
            ToolChoice::AllowedTools { tools, .. } => tools.iter().any(|t| {
                t.kind == "mcp"
                    && t.server_label.as_deref() == Some(label)
                    && t.name.as_deref().is_none_or(|n| n == tool)
            }),
            ToolChoice::Mcp { server_label, .. } => server_label == label,
            _ => true,
        };
        for declared in servers {
            let label = &declared.server.label;
            for tool in declared.tools.iter().flatten() {
                let read_only = tool.read_only();
                let allowed = declared
                    .allowed
                    .as_ref()
                    .is_none_or(|filter| filter.allows(&tool.name, read_only));
                if !allowed || !server_allowed(label, &tool.name) {
                    continue;
                }
                let name = mcp_tool_name(label, &tool.name);
                if functions.iter().any(|f| f.borrow().name == name) || routes.contains_key(&name) {
                    // `a__b` + `c` and `a` + `b__c` meet as `a__b__c`; so can a
                    // client function. The first declared keeps the name.
                    tracing::warn!(
                        tool = %name,
                        "another tool already has this name; the MCP tool is not offered"
                    );
                    continue;
                }
                routes.insert(
                    name.clone(),
                    ServerRoute {
                        server_label: label.clone(),
                        tool: tool.name.clone(),
                        approval: declared.approval.requires(&tool.name, read_only),
                    },
                );
                offered.push(FunctionTool {
                    kind: FunctionType::Function,
                    name,
                    description: describe(tool, declared.description.as_deref()),
                    parameters: Some(tool.input_schema.clone()).filter(|schema| schema.is_object()),
                    strict: None,
                });
            }
        }
        let mode = |mode: &ToolChoiceMode| match mode {
            ToolChoiceMode::None => ModelToolChoice::None,
            ToolChoiceMode::Auto => ModelToolChoice::Auto,
            ToolChoiceMode::Required => ModelToolChoice::Required,
        };
        let tool_choice = if offered.is_empty() {
            // Nothing to choose from (a server could not list its tools, say).
            ModelToolChoice::Default
        } else {
            match choice {
                ToolChoice::Mode(m) => mode(m),
                ToolChoice::Function { name } => ModelToolChoice::Function(name.clone()),
                ToolChoice::Mcp {
                    server_label,
                    name: Some(tool),
                } if routes.contains_key(&mcp_tool_name(server_label, tool)) => {
                    ModelToolChoice::Function(mcp_tool_name(server_label, tool))
                }
                ToolChoice::Mcp { .. } => ModelToolChoice::Required,
                ToolChoice::AllowedTools { mode: m, .. } => mode(m),
                ToolChoice::Hosted { .. } => ModelToolChoice::Auto,
            }
        };
        Self {
            offered,
            tool_choice,
            routes: Routes(routes),
        }
    }
}

/// The description the model reads: the tool's own, after the server's.
fn describe(tool: &McpListedTool, server: Option<&str>) -> Option<String> {
    match (server, tool.description.as_deref()) {
        (Some(server), Some(own)) => Some(format!("{own} (from {server})")),
        (None, Some(own)) => Some(own.to_owned()),
        (Some(server), None) => Some(format!("A tool from {server}")),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools(value: serde_json::Value) -> Vec<Tool> {
        serde_json::from_value(value).unwrap()
    }

    fn listed(names: &[&str]) -> Vec<McpListedTool> {
        names
            .iter()
            .map(|name| McpListedTool {
                name: (*name).into(),
                description: None,
                input_schema: json!({"type": "object"}),
                annotations: None,
            })
            .collect()
    }

    #[test]
    fn server_tools_are_qualified_and_a_client_function_keeps_its_name() {
        let declared = tools(json!([
            {"type": "function", "name": "add"},
            {"type": "mcp", "server_label": "calc", "server_url": "http://x", "require_approval": "never"}
        ]));
        let mut servers = declared_servers(&declared).unwrap();
        servers[0].tools = Some(listed(&["add", "echo"]));
        let functions = vec![FunctionTool {
            kind: FunctionType::Function,
            name: "add".into(),
            description: None,
            parameters: None,
            strict: None,
        }];
        let catalog = Catalog::build(&functions, &servers, &ToolChoice::default());
        let names: Vec<_> = catalog.offered.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["add", "calc__add", "calc__echo"]);
        assert_eq!(catalog.routes.get("add"), None, "the client's own function");
        assert_eq!(
            catalog.routes.get("calc__add"),
            Some(&ServerRoute {
                server_label: "calc".into(),
                tool: "add".into(),
                approval: false
            })
        );
    }

    #[test]
    fn allowed_tools_and_approval_default() {
        let declared = tools(json!([
            {"type": "mcp", "server_label": "calc", "server_url": "http://x", "allowed_tools": ["echo"]}
        ]));
        let mut servers = declared_servers(&declared).unwrap();
        servers[0].tools = Some(listed(&["add", "echo"]));
        let catalog = Catalog::build(&[] as &[FunctionTool], &servers, &ToolChoice::default());
        assert_eq!(catalog.offered.len(), 1);
        assert!(catalog.routes.get("calc__echo").unwrap().approval);
    }

    #[test]
    fn an_mcp_tool_choice_forces_that_tool_or_that_server() {
        let declared = tools(json!([
            {"type": "function", "name": "f"},
            {"type": "mcp", "server_label": "calc", "server_url": "http://x", "require_approval": "never"}
        ]));
        let mut servers = declared_servers(&declared).unwrap();
        servers[0].tools = Some(listed(&["add", "echo"]));
        let functions = vec![FunctionTool {
            kind: FunctionType::Function,
            name: "f".into(),
            description: None,
            parameters: None,
            strict: None,
        }];
        let named: ToolChoice =
            serde_json::from_value(json!({"type": "mcp", "server_label": "calc", "name": "add"}))
                .unwrap();
        check_tool_choice(&named, &functions, &servers).unwrap();
        let catalog = Catalog::build(&functions, &servers, &named);
        assert_eq!(
            catalog.tool_choice,
            ModelToolChoice::Function("calc__add".into())
        );
        let any: ToolChoice =
            serde_json::from_value(json!({"type": "mcp", "server_label": "calc"})).unwrap();
        let catalog = Catalog::build(&functions, &servers, &any);
        assert_eq!(catalog.tool_choice, ModelToolChoice::Required);
        assert!(catalog.offered.iter().all(|t| t.name.starts_with("calc__")));
        let allowed: ToolChoice =
            serde_json::from_value(json!({"type": "allowed_tools", "mode": "auto",
            "tools": [{"type": "mcp", "server_label": "calc", "name": "echo"}]}))
            .unwrap();
        check_tool_choice(&allowed, &functions, &servers).unwrap();
        let catalog = Catalog::build(&functions, &servers, &allowed);
        let names: Vec<_> = catalog.offered.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["calc__echo"]);
    }

    #[test]
    fn colliding_qualified_names_keep_the_first_declared() {
        let declared = tools(json!([
            {"type": "mcp", "server_label": "a__b", "server_url": "http://x"},
            {"type": "mcp", "server_label": "a", "server_url": "http://y"}
        ]));
        let mut servers = declared_servers(&declared).unwrap();
        servers[0].tools = Some(listed(&["c"]));
        servers[1].tools = Some(listed(&["b__c"]));
        let catalog = Catalog::build(&[] as &[FunctionTool], &servers, &ToolChoice::default());
        assert_eq!(catalog.offered.len(), 1);
        assert_eq!(catalog.routes.get("a__b__c").unwrap().server_label, "a__b");
    }

    #[test]
    fn declarations_are_checked() {
        let twice = tools(json!([
            {"type": "mcp", "server_label": "a", "server_url": "http://x"},
            {"type": "mcp", "server_label": "a", "server_url": "http://y"}
        ]));
        let error = declared_servers(&twice).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("tools[1].server_label"));
        let bad = tools(json!([{"type": "mcp", "server_label": "a b"}]));
        assert!(declared_servers(&bad).is_err());
        let choice: ToolChoice =
            serde_json::from_value(json!({"type": "mcp", "server_label": "zzz"})).unwrap();
        assert!(check_tool_choice(&choice, &[] as &[FunctionTool], &[]).is_err());
    }
}
