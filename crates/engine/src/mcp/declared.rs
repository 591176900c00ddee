//! The MCP servers a request declared: checked declarations, the checks of a
//! `tool_choice` that names them, the functions their tools are offered as, and
//! what the stored context settled about them (tool lists, approvals).

use std::borrow::Borrow;

use antwort_api::{
    ApiError, FunctionTool, FunctionType, Item, McpApprovalMode, McpListedTool, McpRequireApproval,
    McpTool, McpToolFilter, Tool, ToolChoice,
};

use super::McpServer;
use crate::tool::{ApprovedCall, Offer, Target};

/// The name a server-side MCP tool is offered to the model under. Qualified by
/// the server label, so that it never depends on which other tools are declared:
/// a chain replays with the same names whatever the next request declares.
pub fn mcp_tool_name(server_label: &str, tool: &str) -> String {
    format!("{server_label}__{tool}")
}

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
pub fn declared_servers(tools: &[Tool], tenant: &str) -> Result<Vec<DeclaredServer>, ApiError> {
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
            server: server_of(mcp, tenant),
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

fn server_of(tool: &McpTool, tenant: &str) -> McpServer {
    let mut headers = tool.headers.clone().unwrap_or_default();
    if let Some(token) = &tool.authorization {
        headers.insert("Authorization".to_owned(), format!("Bearer {token}"));
    }
    McpServer {
        label: tool.server_label.clone(),
        url: tool.server_url.clone(),
        headers,
        tenant: tenant.to_owned(),
    }
}

/// Checks a `tool_choice` that names MCP servers; `Ok(false)` when it names none.
pub fn check_choice(choice: &ToolChoice, servers: &[DeclaredServer]) -> Result<bool, ApiError> {
    let has_server = |label: &str| servers.iter().any(|s| s.server.label == label);
    match choice {
        ToolChoice::Mcp { server_label, .. } if !has_server(server_label) => {
            Err(ApiError::invalid(
                "tool_choice",
                format!("tool_choice names MCP server '{server_label}', which is not in tools"),
            ))
        }
        ToolChoice::Mcp { .. } => Ok(true),
        ToolChoice::AllowedTools { tools, .. } => {
            let mut named = false;
            for (index, tool) in tools.iter().enumerate() {
                if tool.kind != "mcp" {
                    continue;
                }
                named = true;
                match &tool.server_label {
                    Some(label) if has_server(label) => {}
                    label => {
                        return Err(ApiError::invalid(
                            format!("tool_choice.tools[{index}]"),
                            format!(
                                "allowed_tools names MCP server '{}', which is not in tools",
                                label.as_deref().unwrap_or_default()
                            ),
                        ));
                    }
                }
            }
            Ok(named)
        }
        _ => Ok(false),
    }
}

/// The functions the known tools of `servers` are offered as under `choice`.
pub fn offers(servers: &[DeclaredServer], choice: &ToolChoice) -> Vec<Offer> {
    let allowed_by_choice = |label: &str, tool: &str| match choice {
        ToolChoice::AllowedTools { tools, .. } => tools.iter().any(|t| {
            t.kind == "mcp"
                && t.server_label.as_deref() == Some(label)
                && t.name.as_deref().is_none_or(|n| n == tool)
        }),
        ToolChoice::Mcp { server_label, .. } => server_label == label,
        _ => true,
    };
    let mut offers = Vec::new();
    for declared in servers {
        let label = &declared.server.label;
        for tool in declared.tools.iter().flatten() {
            let read_only = tool.read_only();
            let allowed = declared
                .allowed
                .as_ref()
                .is_none_or(|filter| filter.allows(&tool.name, read_only));
            if !allowed || !allowed_by_choice(label, &tool.name) {
                continue;
            }
            offers.push(Offer {
                function: FunctionTool {
                    kind: FunctionType::Function,
                    name: mcp_tool_name(label, &tool.name),
                    description: describe(tool, declared.description.as_deref()),
                    parameters: Some(tool.input_schema.clone()).filter(|schema| schema.is_object()),
                    strict: None,
                },
                target: Target {
                    label: label.clone(),
                    name: tool.name.clone(),
                },
                approval: declared.approval.requires(&tool.name, read_only),
            });
        }
    }
    offers
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

/// Fills in the tools of each declared server from the newest successful
/// `mcp_list_tools` item of the context: a server is listed once per
/// conversation, and its list is reused from the stored context afterwards,
/// but only for the same label at the same address (the list's id carries the
/// server's fingerprint): a label declared again with another `server_url` is
/// listed anew, and so is a list this gateway did not make.
pub fn known_tool_lists(input: &[Item], servers: &mut [DeclaredServer]) {
    for declared in servers.iter_mut().filter(|s| s.tools.is_none()) {
        let tag = format!("_{}", declared.server.fingerprint());
        declared.tools = input.iter().rev().find_map(|item| match item {
            Item::McpListTools(list)
                if list.server_label == declared.server.label
                    && list.error.is_none()
                    && list.id.ends_with(&tag) =>
            {
                Some(list.tools.clone())
            }
            _ => None,
        });
    }
}

/// The calls that the new input's `mcp_approval_response` items approve. Each
/// answer must name an approval request of the context that has not been
/// answered yet, from a server this request declares; anything else is a 400
/// naming the answer's position. An answer whose call already ran (history sent
/// back as input) approves nothing new.
pub fn approved_calls(
    input: &[Item],
    replayed: usize,
    servers: &[impl Borrow<DeclaredServer>],
) -> Result<Vec<ApprovedCall>, ApiError> {
    let mut approved = Vec::new();
    for (index, item) in input.iter().enumerate().skip(replayed) {
        let Item::McpApprovalResponse(answer) = item else {
            continue;
        };
        let param = || format!("input[{}]", index - replayed);
        let id = answer.approval_request_id.as_str();
        let Some(request) = input[..index].iter().find_map(|item| match item {
            Item::McpApprovalRequest(request) if request.id == id => Some(request),
            _ => None,
        }) else {
            return Err(ApiError::invalid(
                param(),
                format!(
                    "mcp_approval_response answers approval request '{id}', which is not in this conversation"
                ),
            ));
        };
        // History sent back whole (the way to continue without storage) carries
        // the answer and, after it, the call it ran: nothing is left to do.
        let ran = |items: &[Item]| {
            items.iter().any(|item| {
                matches!(item, Item::McpCall(call) if call.approval_request_id.as_deref() == Some(id))
            })
        };
        if ran(&input[index + 1..]) {
            continue;
        }
        let answered = ran(&input[..index])
            || input[..index].iter().any(|item| {
                matches!(item, Item::McpApprovalResponse(earlier) if earlier.approval_request_id == id)
            });
        if answered {
            return Err(ApiError::invalid(
                param(),
                format!("approval request '{id}' has already been answered"),
            ));
        }
        if !answer.approve {
            continue;
        }
        if !servers
            .iter()
            .any(|s| s.borrow().server.label == request.server_label)
        {
            return Err(ApiError::invalid(
                param(),
                format!(
                    "approval request '{id}' is for MCP server '{}', which is not in this request's tools; declare it again to run the call",
                    request.server_label
                ),
            ));
        }
        approved.push(ApprovedCall {
            approval_request_id: id.to_owned(),
            target: Target {
                label: request.server_label.clone(),
                name: request.name.clone(),
            },
            arguments: request.arguments.clone(),
        });
    }
    Ok(approved)
}
