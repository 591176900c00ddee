//! MCP as a server-side tool type: [`McpType`] (engine-wide: declarations and
//! the model's view of stored MCP items) and [`McpTools`] (the MCP servers of
//! one response: listing, offers, approvals, the `mcp_call` and
//! `mcp_approval_request` items and their events, and running calls through the
//! [`McpConnector`]).

use std::sync::Arc;

use antwort_api::{
    ApiError, EventData, FunctionCallItem, FunctionCallOutputItem, Item, ItemStatus,
    McpApprovalRequestItem, McpCallError, McpCallErrorKind, McpCallItem, McpCallStatus,
    McpListToolsItem, MessageContent, Tool, ToolChoice,
};
use async_trait::async_trait;
use futures::StreamExt;

use super::declared::{self, DeclaredServer, mcp_tool_name};
use super::{McpCallResult, McpConnector, McpError};
use crate::ids;
use crate::model::ModelToolChoice;
use crate::tool::{
    ApprovedCall, CallStart, Finished, ItemEmitter, Offer, Replay, ServerCall, ServerTool, ToolType,
};

/// The MCP tool type, with the connector every response's calls go through.
pub struct McpType {
    connector: Arc<dyn McpConnector>,
}

impl McpType {
    pub fn new(connector: Arc<dyn McpConnector>) -> Self {
        Self { connector }
    }
}

impl ToolType for McpType {
    fn kind(&self) -> &'static str {
        "mcp"
    }

    fn declare(
        &self,
        tools: &[Tool],
        scope: &crate::store::Scope,
    ) -> Result<Option<Box<dyn ServerTool>>, ApiError> {
        let servers = declared::declared_servers(tools, &scope.tenant)?;
        if servers.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::new(McpTools {
            servers,
            connector: self.connector.clone(),
        })))
    }

    fn check_undeclared(&self, input: &[Item], replayed: usize) -> Result<(), ApiError> {
        // An approval without the server declared cannot run.
        declared::approved_calls(input, replayed, &[] as &[DeclaredServer]).map(|_| ())
    }

    fn owns(&self, item: &Item) -> bool {
        matches!(
            item,
            Item::McpListTools(_)
                | Item::McpCall(_)
                | Item::McpApprovalRequest(_)
                | Item::McpApprovalResponse(_)
        )
    }

    fn replay(&self, item: Item, history: &[Item]) -> Replay {
        match item {
            Item::McpCall(call) => mcp_call_turn(call),
            Item::McpApprovalRequest(request) => {
                // A request is answered by the call that ran after it; only a
                // denial is something the model must hear about.
                let ran = history.iter().any(|item| {
                    matches!(item, Item::McpCall(call) if call.approval_request_id.as_deref() == Some(request.id.as_str()))
                });
                let denial = history.iter().rev().find_map(|item| match item {
                    Item::McpApprovalResponse(answer)
                        if answer.approval_request_id == request.id =>
                    {
                        Some((answer.approve, answer.reason.clone()))
                    }
                    _ => None,
                });
                match denial {
                    Some((false, reason)) if !ran => denied_turn(&request, reason.as_deref()),
                    _ => Replay::Hidden,
                }
            }
            Item::McpApprovalResponse(_) => Replay::Boundary,
            _ => Replay::Hidden,
        }
    }
}

fn call_pair(call_id: String, name: String, arguments: String, output: String) -> Replay {
    let call = Item::FunctionCall(FunctionCallItem {
        id: None,
        call_id: call_id.clone(),
        name,
        arguments,
        status: Some(ItemStatus::Completed),
        namespace: None,
    });
    let output = Item::FunctionCallOutput(FunctionCallOutputItem {
        id: None,
        call_id,
        output: MessageContent::Text(output),
        status: Some(ItemStatus::Completed),
    });
    Replay::Call { call, output }
}

fn mcp_call_turn(call: McpCallItem) -> Replay {
    let output = match (call.output, &call.error) {
        (_, Some(error)) => format!("Error: {}", error.message()),
        (Some(output), None) => output,
        (None, None) => "The tool was not run.".to_owned(),
    };
    call_pair(
        call.id,
        mcp_tool_name(&call.server_label, &call.name),
        call.arguments,
        output,
    )
}

fn denied_turn(request: &McpApprovalRequestItem, reason: Option<&str>) -> Replay {
    let mut output = "The user denied this tool call; it was not run.".to_owned();
    if let Some(reason) = reason.filter(|r| !r.is_empty()) {
        output.push_str(" Reason: ");
        output.push_str(reason);
    }
    call_pair(
        request.id.clone(),
        mcp_tool_name(&request.server_label, &request.name),
        request.arguments.clone(),
        output,
    )
}

/// The MCP servers one response declared.
pub struct McpTools {
    servers: Vec<DeclaredServer>,
    connector: Arc<dyn McpConnector>,
}

#[async_trait]
impl ServerTool for McpTools {
    fn kind(&self) -> &'static str {
        "mcp"
    }

    fn check_choice(&self, choice: &ToolChoice) -> Result<bool, ApiError> {
        declared::check_choice(choice, &self.servers)
    }

    fn read_context(
        &mut self,
        input: &[Item],
        replayed: usize,
    ) -> Result<Vec<ApprovedCall>, ApiError> {
        declared::known_tool_lists(input, &mut self.servers);
        declared::approved_calls(input, replayed, &self.servers)
    }

    fn needs_preparation(&self) -> bool {
        self.servers.iter().any(|s| s.tools.is_none())
    }

    /// Lists the tools of every declared server whose tools are not known yet,
    /// all at once, with an `mcp_list_tools` item each.
    async fn prepare(&mut self, items: &mut dyn ItemEmitter, concurrency: usize) -> Vec<String> {
        let mut pending = Vec::new();
        for (position, declared) in self.servers.iter().enumerate() {
            if declared.tools.is_some() {
                continue;
            }
            // The id carries which server the list is of, so that a later
            // turn reuses it only for the same label at the same address.
            let id = ids::mcp_list_tools_id(&declared.server.fingerprint());
            let item = Item::McpListTools(McpListToolsItem {
                id: id.clone(),
                server_label: declared.server.label.clone(),
                tools: Vec::new(),
                error: None,
            });
            let output_index = items.open(item, Vec::new());
            items.emit(EventData::McpListToolsInProgress {
                item_id: id.clone(),
                output_index,
            });
            pending.push((position, output_index, id, declared.server.clone()));
        }
        items.flush();
        let connector = &self.connector;
        let mut listings = futures::stream::iter(pending)
            .map(|(position, output_index, id, server)| async move {
                let result = connector.list_tools(&server).await;
                (position, output_index, id, result)
            })
            .buffer_unordered(concurrency.max(1));
        let mut unavailable = Vec::new();
        while let Some((position, output_index, item_id, result)) = listings.next().await {
            let label = self.servers[position].server.label.clone();
            let (tools, error) = match result {
                Ok(tools) => (tools, None),
                Err(error) => {
                    tracing::warn!(server_label = %label, %error, "MCP server could not list its tools");
                    unavailable.push(format!("'{label}' ({error})"));
                    (Vec::new(), Some(error.to_string()))
                }
            };
            self.servers[position].tools = Some(tools.clone());
            let event = if error.is_some() {
                EventData::McpListToolsFailed {
                    item_id: item_id.clone(),
                    output_index,
                }
            } else {
                EventData::McpListToolsCompleted {
                    item_id: item_id.clone(),
                    output_index,
                }
            };
            let item = Item::McpListTools(McpListToolsItem {
                id: item_id,
                server_label: label,
                tools,
                error,
            });
            items.finish(output_index, vec![event], item);
        }
        if unavailable.is_empty() {
            return Vec::new();
        }
        // Told to the model, so that it says the tool is unavailable instead of
        // pretending it does not exist.
        vec![format!(
            "These MCP servers are unavailable, so their tools cannot be used in this response: {}.",
            unavailable.join(", ")
        )]
    }

    fn offers(&self, choice: &ToolChoice) -> Vec<Offer> {
        declared::offers(&self.servers, choice)
    }

    fn forced_choice(&self, choice: &ToolChoice, offered: &[&Offer]) -> Option<ModelToolChoice> {
        match choice {
            ToolChoice::Mcp {
                server_label,
                name: Some(tool),
            } if offered
                .iter()
                .any(|offer| offer.target.label == *server_label && offer.target.name == *tool) =>
            {
                Some(ModelToolChoice::Function(mcp_tool_name(server_label, tool)))
            }
            ToolChoice::Mcp { .. } => Some(ModelToolChoice::Required),
            _ => None,
        }
    }

    fn new_item_id(&self, approval: bool) -> String {
        if approval {
            ids::mcp_approval_request_id()
        } else {
            ids::mcp_call_id()
        }
    }

    fn start(&self, call: &CallStart<'_>) -> (Item, Vec<EventData>) {
        if call.approval {
            let item = Item::McpApprovalRequest(McpApprovalRequestItem {
                id: call.item_id.to_owned(),
                server_label: call.target.label.clone(),
                name: call.target.name.clone(),
                arguments: String::new(),
            });
            return (item, Vec::new());
        }
        let item = Item::McpCall(McpCallItem {
            id: call.item_id.to_owned(),
            server_label: call.target.label.clone(),
            name: call.target.name.clone(),
            arguments: String::new(),
            output: None,
            error: None,
            status: Some(McpCallStatus::InProgress),
            approval_request_id: call.approval_request_id.map(str::to_owned),
        });
        let started = EventData::McpCallInProgress {
            item_id: call.item_id.to_owned(),
            output_index: call.output_index,
        };
        (item, vec![started])
    }

    fn argument_delta(&self, call: &CallStart<'_>, delta: String) -> Option<EventData> {
        // An approval request shows its arguments whole, when it is done.
        (!call.approval).then(|| EventData::McpCallArgumentsDelta {
            item_id: call.item_id.to_owned(),
            output_index: call.output_index,
            delta,
        })
    }

    fn arguments_done(
        &self,
        call: &CallStart<'_>,
        arguments: &str,
    ) -> (Option<EventData>, Option<Item>) {
        if call.approval {
            let request = Item::McpApprovalRequest(McpApprovalRequestItem {
                id: call.item_id.to_owned(),
                server_label: call.target.label.clone(),
                name: call.target.name.clone(),
                arguments: arguments.to_owned(),
            });
            return (None, Some(request));
        }
        let done = EventData::McpCallArgumentsDone {
            item_id: call.item_id.to_owned(),
            output_index: call.output_index,
            arguments: arguments.to_owned(),
        };
        (Some(done), None)
    }

    async fn run(&self, call: &ServerCall) -> Finished {
        let result = match self
            .servers
            .iter()
            .find(|s| s.server.label == call.route.target.label)
        {
            Some(declared) => self.call_tool(&declared.server, call).await,
            None => Err(McpError::UnknownServer(call.route.target.label.clone())),
        };
        finished(call, result)
    }

    fn skip(&self, call: &ServerCall, reason: &str) -> Item {
        let error = McpCallError::Typed(McpCallErrorKind::McpProtocolError {
            code: -32000,
            message: reason.to_owned(),
        });
        call_item(call, None, Some(error), McpCallStatus::Incomplete)
    }
}

impl McpTools {
    /// One call, its arguments parsed: arguments that are not a JSON object are
    /// the model's mistake, reported to it as the call's error.
    async fn call_tool(
        &self,
        server: &super::McpServer,
        call: &ServerCall,
    ) -> Result<McpCallResult, McpError> {
        let arguments = if call.arguments.trim().is_empty() {
            serde_json::Map::new()
        } else {
            match serde_json::from_str::<serde_json::Value>(&call.arguments) {
                Ok(serde_json::Value::Object(arguments)) => arguments,
                _ => {
                    return Err(McpError::Protocol {
                        code: -32602,
                        message: "the tool arguments are not a JSON object".to_owned(),
                    });
                }
            }
        };
        let target = &call.route.target;
        // The connector opens the call's span (`mcp.call_tool` in the tools crate).
        let result = self
            .connector
            .call_tool(server, &target.name, arguments)
            .await;
        if let Err(error) = &result {
            tracing::warn!(server_label = %target.label, tool = %target.name, %error, "MCP call failed");
        }
        result
    }
}

/// The end of a call that ran: `completed` with its output, or `failed` with
/// the error in the OpenAI shape.
fn finished(call: &ServerCall, result: Result<McpCallResult, McpError>) -> Finished {
    let (output, error) = match result {
        Ok(McpCallResult {
            output,
            is_error: false,
        }) => (Some(output), None),
        Ok(McpCallResult {
            output,
            is_error: true,
        }) => (
            None,
            Some(McpCallErrorKind::McpToolExecutionError {
                content: serde_json::json!([{"type": "text", "text": output}]),
            }),
        ),
        Err(McpError::Http { status, message }) => (
            None,
            Some(McpCallErrorKind::HttpError {
                code: status,
                message,
            }),
        ),
        Err(McpError::Protocol { code, message }) => (
            None,
            Some(McpCallErrorKind::McpProtocolError { code, message }),
        ),
        Err(other) => (
            None,
            Some(McpCallErrorKind::McpProtocolError {
                // JSON-RPC's "server error" code: the call never got an answer.
                code: -32000,
                message: other.to_string(),
            }),
        ),
    };
    let failed = error.is_some();
    let (item_id, output_index) = (call.item_id.clone(), call.output_index);
    let event = if failed {
        EventData::McpCallFailed {
            item_id,
            output_index,
        }
    } else {
        EventData::McpCallCompleted {
            item_id,
            output_index,
        }
    };
    let status = if failed {
        McpCallStatus::Failed
    } else {
        McpCallStatus::Completed
    };
    Finished {
        events: vec![event],
        item: call_item(call, output, error.map(McpCallError::Typed), status),
        annotations: Vec::new(),
    }
}

fn call_item(
    call: &ServerCall,
    output: Option<String>,
    error: Option<McpCallError>,
    status: McpCallStatus,
) -> Item {
    Item::McpCall(McpCallItem {
        id: call.item_id.clone(),
        server_label: call.route.target.label.clone(),
        name: call.route.target.name.clone(),
        arguments: call.arguments.clone(),
        output,
        error,
        status: Some(status),
        approval_request_id: call.approval_request_id.clone(),
    })
}
