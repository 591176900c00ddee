//! Tool calls: a call's deltas until its name arrives, routing by that name
//! (a client function, or a server-side tool of this response), and the items
//! of server-side calls from start to result.

use antwort_api::{
    EventData, FunctionCallItem, Item, ItemStatus, McpApprovalRequestItem, McpCallError,
    McpCallErrorKind, McpCallItem, McpCallStatus, McpListToolsItem, McpListedTool, StreamEvent,
};

use super::{Assembler, OpenItem, ServerCall};
use crate::ids;
use crate::mcp::{McpCallResult, McpError};

pub(super) enum CallKind {
    /// A client function: a function_call item.
    Function { call_id: String },
    /// A server-side MCP call: an mcp_call item, left open for its result.
    Mcp { server_label: String, tool: String },
    /// An MCP call that needs approval: an mcp_approval_request item.
    Approval { server_label: String, tool: String },
}

impl CallKind {
    /// The event for a piece of this call's arguments; an approval request shows
    /// its arguments whole, when it is done.
    fn argument_delta(
        &self,
        item_id: String,
        output_index: usize,
        delta: String,
    ) -> Option<EventData> {
        match self {
            Self::Function { .. } => Some(EventData::FunctionCallArgumentsDelta {
                item_id,
                output_index,
                delta,
            }),
            Self::Mcp { .. } => Some(EventData::McpCallArgumentsDelta {
                item_id,
                output_index,
                delta,
            }),
            Self::Approval { .. } => None,
        }
    }
}

impl Assembler {
    pub(super) fn tool_call(
        &mut self,
        upstream_index: u32,
        upstream_id: Option<String>,
        name: Option<String>,
        arguments: String,
        out: &mut Vec<StreamEvent>,
    ) {
        let position = self.open.iter().position(|item| match item {
            OpenItem::Call {
                upstream_index: i, ..
            }
            | OpenItem::Unnamed {
                upstream_index: i, ..
            } => *i == upstream_index,
            _ => false,
        });
        let position = match position {
            Some(position) => position,
            None => {
                // Reasoning and messages end where tool calls begin; parallel calls
                // stay open together, since backends interleave their arguments.
                self.close_where(ItemStatus::Completed, out, |item| {
                    !matches!(item, OpenItem::Call { .. } | OpenItem::Unnamed { .. })
                });
                self.open.push(OpenItem::Unnamed {
                    upstream_index,
                    upstream_id,
                    arguments: String::new(),
                });
                self.open.len() - 1
            }
        };
        if let Some(OpenItem::Unnamed { arguments: all, .. }) = self.open.get_mut(position) {
            all.push_str(&arguments);
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                self.name_call(position, name, out);
            }
            return;
        }
        let Some(OpenItem::Call {
            output_index,
            id,
            arguments: all,
            kind,
            ..
        }) = self.open.get_mut(position)
        else {
            return;
        };
        if arguments.is_empty() {
            return;
        }
        all.push_str(&arguments);
        let (item_id, output_index) = (id.clone(), *output_index);
        if let Some(data) = kind.argument_delta(item_id, output_index, arguments) {
            self.emit(data, out);
        }
    }

    /// The call at `position` got its name: it becomes a routed call in place.
    fn name_call(&mut self, position: usize, name: String, out: &mut Vec<StreamEvent>) {
        if !matches!(self.open.get(position), Some(OpenItem::Unnamed { .. })) {
            return;
        }
        let unnamed = self.open.remove(position);
        let call = self.open_call(unnamed, name, out);
        self.open.insert(position, call);
    }

    /// Routes an unnamed call by `name`, adds its item, and sends the arguments
    /// that arrived before the name as one delta.
    fn open_call(
        &mut self,
        unnamed: OpenItem,
        name: String,
        out: &mut Vec<StreamEvent>,
    ) -> OpenItem {
        let OpenItem::Unnamed {
            upstream_index,
            upstream_id,
            arguments,
        } = unnamed
        else {
            return unnamed;
        };
        let output_index = self.reserve_slot();
        let (id, kind, item) = match self.routes.get(&name).cloned() {
            Some(route) if route.approval => {
                let id = ids::mcp_approval_request_id();
                let item = Item::McpApprovalRequest(McpApprovalRequestItem {
                    id: id.clone(),
                    server_label: route.server_label.clone(),
                    name: route.tool.clone(),
                    arguments: String::new(),
                });
                let kind = CallKind::Approval {
                    server_label: route.server_label,
                    tool: route.tool,
                };
                (id, kind, item)
            }
            Some(route) => {
                let id = ids::mcp_call_id();
                let item = Item::McpCall(McpCallItem {
                    id: id.clone(),
                    server_label: route.server_label.clone(),
                    name: route.tool.clone(),
                    arguments: String::new(),
                    output: None,
                    error: None,
                    status: Some(McpCallStatus::InProgress),
                    approval_request_id: None,
                });
                let kind = CallKind::Mcp {
                    server_label: route.server_label,
                    tool: route.tool,
                };
                (id, kind, item)
            }
            None => {
                let id = ids::function_call_id();
                let call_id = self.unique_call_id(upstream_id);
                let item = Item::FunctionCall(FunctionCallItem {
                    id: Some(id.clone()),
                    call_id: call_id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                    status: Some(ItemStatus::InProgress),
                });
                (id, CallKind::Function { call_id }, item)
            }
        };
        self.emit(EventData::OutputItemAdded { output_index, item }, out);
        if matches!(kind, CallKind::Mcp { .. }) {
            self.emit(
                EventData::McpCallInProgress {
                    item_id: id.clone(),
                    output_index,
                },
                out,
            );
        }
        if !arguments.is_empty()
            && let Some(data) = kind.argument_delta(id.clone(), output_index, arguments.clone())
        {
            self.emit(data, out);
        }
        OpenItem::Call {
            output_index,
            upstream_index,
            id,
            name,
            arguments,
            kind,
        }
    }

    fn unique_call_id(&mut self, upstream: Option<String>) -> String {
        let call_id = match upstream {
            Some(id) if !id.is_empty() && !self.call_ids.contains(&id) => id,
            _ => ids::call_id(),
        };
        self.call_ids.push(call_id.clone());
        call_id
    }

    /// Closes a call: a function call or an approval request is done; a
    /// server-side call's item stays open until it has run (`None`).
    pub(super) fn close_call(
        &mut self,
        item: OpenItem,
        status: ItemStatus,
        out: &mut Vec<StreamEvent>,
    ) -> Option<(usize, Item)> {
        Some(match item {
            unnamed @ OpenItem::Unnamed { .. } => {
                // The backend never named this call: it can only be the client's.
                let call = self.open_call(unnamed, String::new(), out);
                return self.close_call(call, status, out);
            }
            OpenItem::Call {
                output_index,
                id,
                name,
                arguments,
                kind,
                ..
            } => match kind {
                CallKind::Function { call_id } => {
                    self.turn_client_calls += 1;
                    self.emit(
                        EventData::FunctionCallArgumentsDone {
                            item_id: id.clone(),
                            output_index,
                            name: name.clone(),
                            arguments: arguments.clone(),
                        },
                        out,
                    );
                    let item = Item::FunctionCall(FunctionCallItem {
                        id: Some(id),
                        call_id,
                        name,
                        arguments,
                        status: Some(status),
                    });
                    (output_index, item)
                }
                CallKind::Approval { server_label, tool } => {
                    self.turn_approvals += 1;
                    let item = Item::McpApprovalRequest(McpApprovalRequestItem {
                        id,
                        server_label,
                        name: tool,
                        arguments,
                    });
                    (output_index, item)
                }
                CallKind::Mcp { server_label, tool } => {
                    // The item stays open until the call has run (or will not).
                    self.emit(
                        EventData::McpCallArgumentsDone {
                            item_id: id.clone(),
                            output_index,
                            arguments: arguments.clone(),
                        },
                        out,
                    );
                    self.running.push(ServerCall {
                        output_index,
                        item_id: id,
                        server_label,
                        tool,
                        arguments,
                        approval_request_id: None,
                    });
                    return None;
                }
            },
            OpenItem::Reasoning(_) | OpenItem::Message(_) => return None,
        })
    }

    /// An `mcp_list_tools` item starts; returns its output index.
    pub fn list_started(&mut self, server_label: &str, out: &mut Vec<StreamEvent>) -> usize {
        let output_index = self.reserve_slot();
        let id = ids::mcp_list_tools_id();
        let item = Item::McpListTools(McpListToolsItem {
            id: id.clone(),
            server_label: server_label.to_owned(),
            tools: Vec::new(),
            error: None,
        });
        self.emit(EventData::OutputItemAdded { output_index, item }, out);
        self.emit(
            EventData::McpListToolsInProgress {
                item_id: id.clone(),
                output_index,
            },
            out,
        );
        self.pending_lists
            .push((output_index, id, server_label.to_owned()));
        output_index
    }

    /// The listing at `output_index` finished, with the tools or an error.
    pub fn list_finished(
        &mut self,
        output_index: usize,
        result: Result<Vec<McpListedTool>, String>,
        out: &mut Vec<StreamEvent>,
    ) {
        let Some(position) = self
            .pending_lists
            .iter()
            .position(|(index, _, _)| *index == output_index)
        else {
            return;
        };
        let (_, id, server_label) = self.pending_lists.remove(position);
        let (tools, error) = match result {
            Ok(tools) => (tools, None),
            Err(error) => (Vec::new(), Some(error)),
        };
        let data = if error.is_some() {
            EventData::McpListToolsFailed {
                item_id: id.clone(),
                output_index,
            }
        } else {
            EventData::McpListToolsCompleted {
                item_id: id.clone(),
                output_index,
            }
        };
        self.emit(data, out);
        let item = Item::McpListTools(McpListToolsItem {
            id,
            server_label,
            tools,
            error,
        });
        self.file_done(output_index, item, out);
    }

    /// An approved call starts outside a model turn: its item carries the
    /// approval request it answers, and its arguments arrive as one delta.
    pub fn call_started(
        &mut self,
        server_label: &str,
        tool: &str,
        arguments: &str,
        approval_request_id: &str,
        out: &mut Vec<StreamEvent>,
    ) -> ServerCall {
        let output_index = self.reserve_slot();
        let item_id = ids::mcp_call_id();
        let item = Item::McpCall(McpCallItem {
            id: item_id.clone(),
            server_label: server_label.to_owned(),
            name: tool.to_owned(),
            arguments: String::new(),
            output: None,
            error: None,
            status: Some(McpCallStatus::InProgress),
            approval_request_id: Some(approval_request_id.to_owned()),
        });
        self.emit(EventData::OutputItemAdded { output_index, item }, out);
        self.emit(
            EventData::McpCallInProgress {
                item_id: item_id.clone(),
                output_index,
            },
            out,
        );
        self.emit(
            EventData::McpCallArgumentsDelta {
                item_id: item_id.clone(),
                output_index,
                delta: arguments.to_owned(),
            },
            out,
        );
        self.emit(
            EventData::McpCallArgumentsDone {
                item_id: item_id.clone(),
                output_index,
                arguments: arguments.to_owned(),
            },
            out,
        );
        ServerCall {
            output_index,
            item_id,
            server_label: server_label.to_owned(),
            tool: tool.to_owned(),
            arguments: arguments.to_owned(),
            approval_request_id: Some(approval_request_id.to_owned()),
        }
    }

    /// A server-side call ran: its item gets the output or the error.
    pub fn call_finished(
        &mut self,
        call: ServerCall,
        result: Result<McpCallResult, McpError>,
        out: &mut Vec<StreamEvent>,
    ) {
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
        let data = if failed {
            EventData::McpCallFailed {
                item_id: call.item_id.clone(),
                output_index: call.output_index,
            }
        } else {
            EventData::McpCallCompleted {
                item_id: call.item_id.clone(),
                output_index: call.output_index,
            }
        };
        self.emit(data, out);
        let status = if failed {
            McpCallStatus::Failed
        } else {
            McpCallStatus::Completed
        };
        self.file_call(call, output, error.map(McpCallError::Typed), status, out);
    }

    /// A server-side call will not run (a limit was reached, or the turn was cut).
    pub fn call_skipped(&mut self, call: ServerCall, reason: &str, out: &mut Vec<StreamEvent>) {
        let error = McpCallError::Typed(McpCallErrorKind::McpProtocolError {
            code: -32000,
            message: reason.to_owned(),
        });
        self.file_call(call, None, Some(error), McpCallStatus::Incomplete, out);
    }

    fn file_call(
        &mut self,
        call: ServerCall,
        output: Option<String>,
        error: Option<McpCallError>,
        status: McpCallStatus,
        out: &mut Vec<StreamEvent>,
    ) {
        let item = Item::McpCall(McpCallItem {
            id: call.item_id,
            server_label: call.server_label,
            name: call.tool,
            arguments: call.arguments,
            output,
            error,
            status: Some(status),
            approval_request_id: call.approval_request_id,
        });
        self.file_done(call.output_index, item, out);
    }
}
