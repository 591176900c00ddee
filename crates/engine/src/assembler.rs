//! The assembler: folds model events into streaming events and the final response.
//!
//! It is the single place that knows the event grammar: created and in_progress
//! first; for each item `output_item.added`, its parts and deltas, `.done` events that
//! carry the whole accumulated value, `output_item.done`; exactly one terminal event.
//! `output_index` is fixed when an item is added and equals its position in the final
//! `output`; sequence numbers are assigned here and nowhere else.

use antwort_api::{
    ApiError, ContentPart, EventData, FunctionCallItem, IncompleteDetails, IncompleteReason, Item,
    ItemStatus, LogProb, McpApprovalRequestItem, McpCallError, McpCallErrorKind, McpCallItem,
    McpCallStatus, McpListToolsItem, McpListedTool, MessageContent, MessageItem, OutputText,
    ReasoningItem, ReasoningPart, Response, ResponseError, ResponseStatus, Role, StreamEvent,
    Usage,
};

use crate::catalog::Routes;
use crate::ids;
use crate::mcp::{McpCallResult, McpError};
use crate::model::{FinishReason, ModelEvent};

/// Which names reasoning text events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReasoningEventNames {
    /// `response.reasoning.delta` / `.done`, as OpenResponses specifies.
    #[default]
    OpenResponses,
    /// `response.reasoning_text.delta` / `.done`, as the OpenAI API sends.
    OpenAi,
}

pub struct Assembler {
    response: Response,
    /// Finished items by output index; `None` while an item is still open.
    slots: Vec<Option<Item>>,
    /// Items still receiving deltas, in output order.
    open: Vec<OpenItem>,
    /// Call ids handed out so far, to keep them unique within the response.
    call_ids: Vec<String>,
    next_sequence: u64,
    logprobs: bool,
    reasoning_names: ReasoningEventNames,
    /// Whether a reasoning item's summary is filled from its text, with the
    /// summary events streamed beside the text's.
    summarize_reasoning: bool,
    /// Server-side tools by the name the model calls them.
    routes: Routes,
    /// Server-side calls of this turn whose items wait for their results.
    running: Vec<ServerCall>,
    /// Function calls and approval requests this turn closed: text after a call
    /// closes it before the turn ends, and it still counts.
    turn_client_calls: usize,
    turn_approvals: usize,
    /// Tool listings under way: output index, item id, server label.
    pending_lists: Vec<(usize, String, String)>,
    /// Why the current model turn stopped, once the backend said so.
    finish: Option<FinishReason>,
    /// Usage of the current model turn; turns add up in the response's usage.
    turn_usage: Option<Usage>,
    finished: bool,
}

/// A server-side tool call whose item is open until its result is in.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerCall {
    pub output_index: usize,
    pub item_id: String,
    pub server_label: String,
    /// The tool's name on its server.
    pub tool: String,
    pub arguments: String,
    pub approval_request_id: Option<String>,
}

/// How a model turn ended.
#[derive(Debug, Default)]
pub struct TurnEnd {
    pub finish: Option<FinishReason>,
    /// Calls to run on the server, in output order.
    pub server_calls: Vec<ServerCall>,
    /// Function calls handed back to the client.
    pub client_calls: usize,
    /// Server-side calls waiting for the client's approval.
    pub approvals: usize,
}

/// How a response ends, when it does not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    Completed { now: u64 },
    Incomplete(IncompleteReason),
}

enum OpenItem {
    Reasoning {
        output_index: usize,
        id: String,
        text: String,
    },
    Message {
        output_index: usize,
        id: String,
        parts: Vec<OpenPart>,
    },
    /// A tool call, routed when its name arrived.
    Call {
        output_index: usize,
        upstream_index: u32,
        id: String,
        /// The name the model called.
        name: String,
        arguments: String,
        kind: CallKind,
    },
    /// A tool call whose name has not arrived yet: it has no item until it does.
    Unnamed {
        upstream_index: u32,
        upstream_id: Option<String>,
        arguments: String,
    },
}

enum CallKind {
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

enum OpenPart {
    Text {
        text: String,
        logprobs: Vec<LogProb>,
    },
    Refusal {
        text: String,
    },
}

impl Assembler {
    /// Starts a response; `response` is the in-progress snapshot from the plan.
    pub fn new(response: Response, logprobs: bool, reasoning_names: ReasoningEventNames) -> Self {
        Self {
            response,
            slots: Vec::new(),
            open: Vec::new(),
            call_ids: Vec::new(),
            next_sequence: 0,
            logprobs,
            reasoning_names,
            summarize_reasoning: false,
            routes: Routes::default(),
            running: Vec::new(),
            pending_lists: Vec::new(),
            turn_client_calls: 0,
            turn_approvals: 0,
            finish: None,
            turn_usage: None,
            finished: false,
        }
    }

    /// Fills each reasoning item's summary from its text (a backend of an open
    /// model gives reasoning text only; clients such as LangChain and the Vercel
    /// AI SDK show reasoning only from the summary and its events).
    pub fn summarize_reasoning(mut self, summarize: bool) -> Self {
        self.summarize_reasoning = summarize;
        self
    }

    /// Sets where the model's tool calls go from now on.
    pub fn set_routes(&mut self, routes: Routes) {
        self.routes = routes;
    }

    /// True once the terminal event has been emitted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn emit(&mut self, data: EventData, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent {
            data,
            sequence_number: self.next_sequence,
        });
        self.next_sequence += 1;
    }

    /// `response.created` and `response.in_progress`.
    pub fn start(&mut self, out: &mut Vec<StreamEvent>) {
        let snapshot = Box::new(self.response.clone());
        self.emit(
            EventData::Created {
                response: snapshot.clone(),
            },
            out,
        );
        self.emit(EventData::InProgress { response: snapshot }, out);
    }

    /// Folds one model event.
    pub fn push(&mut self, event: ModelEvent, out: &mut Vec<StreamEvent>) {
        match event {
            ModelEvent::ReasoningDelta(delta) => self.reasoning(delta, out),
            ModelEvent::TextDelta { text, logprobs } => self.text(text, logprobs, out),
            ModelEvent::RefusalDelta(delta) => self.refusal(delta, out),
            ModelEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => self.tool_call(index, id, name, arguments, out),
            ModelEvent::Usage(usage) => self.turn_usage = Some(usage),
            ModelEvent::Finish(reason) => self.finish = Some(reason),
        }
    }

    fn reasoning(&mut self, delta: String, out: &mut Vec<StreamEvent>) {
        if delta.is_empty() {
            return;
        }
        if !matches!(self.open.last(), Some(OpenItem::Reasoning { .. })) {
            self.close_all(ItemStatus::Completed, out);
            let output_index = self.reserve_slot();
            let id = ids::reasoning_id();
            let item = Item::Reasoning(ReasoningItem {
                id: Some(id.clone()),
                summary: Vec::new(),
                content: Some(Vec::new()),
                encrypted_content: None,
                status: Some(ItemStatus::InProgress),
            });
            self.emit(EventData::OutputItemAdded { output_index, item }, out);
            self.emit(
                EventData::ContentPartAdded {
                    item_id: id.clone(),
                    output_index,
                    content_index: 0,
                    part: ContentPart::ReasoningText {
                        text: String::new(),
                    },
                },
                out,
            );
            if self.summarize_reasoning {
                self.emit(
                    EventData::ReasoningSummaryPartAdded {
                        item_id: id.clone(),
                        output_index,
                        summary_index: 0,
                        part: ReasoningPart::SummaryText {
                            text: String::new(),
                        },
                    },
                    out,
                );
            }
            self.open.push(OpenItem::Reasoning {
                output_index,
                id,
                text: String::new(),
            });
        }
        let Some(OpenItem::Reasoning {
            output_index,
            id,
            text,
        }) = self.open.last_mut()
        else {
            return;
        };
        text.push_str(&delta);
        let (item_id, output_index) = (id.clone(), *output_index);
        let summary = self
            .summarize_reasoning
            .then(|| EventData::ReasoningSummaryTextDelta {
                item_id: item_id.clone(),
                output_index,
                summary_index: 0,
                delta: delta.clone(),
            });
        let data = match self.reasoning_names {
            ReasoningEventNames::OpenResponses => EventData::ReasoningDelta {
                item_id,
                output_index,
                content_index: 0,
                delta,
            },
            ReasoningEventNames::OpenAi => EventData::ReasoningTextDelta {
                item_id,
                output_index,
                content_index: 0,
                delta,
            },
        };
        self.emit(data, out);
        if let Some(summary) = summary {
            self.emit(summary, out);
        }
    }

    /// Makes sure the last open item is a message whose last part is of the wanted
    /// kind, and returns (item id, output index, content index).
    fn message_part(
        &mut self,
        refusal: bool,
        out: &mut Vec<StreamEvent>,
    ) -> (String, usize, usize) {
        if !matches!(self.open.last(), Some(OpenItem::Message { .. })) {
            self.close_all(ItemStatus::Completed, out);
            let output_index = self.reserve_slot();
            let id = ids::message_id();
            let item = Item::Message(MessageItem {
                id: Some(id.clone()),
                status: Some(ItemStatus::InProgress),
                role: Role::Assistant,
                content: MessageContent::Parts(Vec::new()),
                phase: None,
            });
            self.emit(EventData::OutputItemAdded { output_index, item }, out);
            self.open.push(OpenItem::Message {
                output_index,
                id,
                parts: Vec::new(),
            });
        }
        let logprobs = self.logprobs;
        let Some(OpenItem::Message {
            output_index,
            id,
            parts,
        }) = self.open.last_mut()
        else {
            return (String::new(), 0, 0);
        };
        let (item_id, output_index) = (id.clone(), *output_index);
        let wanted_open = match parts.last() {
            Some(OpenPart::Refusal { .. }) => refusal,
            Some(OpenPart::Text { .. }) => !refusal,
            None => false,
        };
        if !wanted_open {
            let (open, part) = if refusal {
                (
                    OpenPart::Refusal {
                        text: String::new(),
                    },
                    ContentPart::Refusal {
                        refusal: String::new(),
                    },
                )
            } else {
                (
                    OpenPart::Text {
                        text: String::new(),
                        logprobs: Vec::new(),
                    },
                    ContentPart::OutputText(OutputText {
                        text: String::new(),
                        annotations: Vec::new(),
                        logprobs: logprobs.then(Vec::new),
                    }),
                )
            };
            parts.push(open);
            let content_index = parts.len() - 1;
            self.emit(
                EventData::ContentPartAdded {
                    item_id: item_id.clone(),
                    output_index,
                    content_index,
                    part,
                },
                out,
            );
            return (item_id, output_index, content_index);
        }
        (item_id, output_index, parts.len() - 1)
    }

    fn text(&mut self, delta: String, logprobs: Vec<LogProb>, out: &mut Vec<StreamEvent>) {
        if delta.is_empty() && logprobs.is_empty() {
            return;
        }
        let (item_id, output_index, content_index) = self.message_part(false, out);
        let keep_logprobs = self.logprobs;
        if let Some(OpenItem::Message { parts, .. }) = self.open.last_mut()
            && let Some(OpenPart::Text {
                text,
                logprobs: all,
            }) = parts.last_mut()
        {
            text.push_str(&delta);
            if keep_logprobs {
                all.extend(logprobs.iter().cloned());
            }
        }
        self.emit(
            EventData::OutputTextDelta {
                item_id,
                output_index,
                content_index,
                delta,
                logprobs: if keep_logprobs { logprobs } else { Vec::new() },
            },
            out,
        );
    }

    fn refusal(&mut self, delta: String, out: &mut Vec<StreamEvent>) {
        if delta.is_empty() {
            return;
        }
        let (item_id, output_index, content_index) = self.message_part(true, out);
        if let Some(OpenItem::Message { parts, .. }) = self.open.last_mut()
            && let Some(OpenPart::Refusal { text }) = parts.last_mut()
        {
            text.push_str(&delta);
        }
        self.emit(
            EventData::RefusalDelta {
                item_id,
                output_index,
                content_index,
                delta,
            },
            out,
        );
    }

    fn tool_call(
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

    fn reserve_slot(&mut self) -> usize {
        self.slots.push(None);
        self.slots.len() - 1
    }

    fn close_all(&mut self, status: ItemStatus, out: &mut Vec<StreamEvent>) {
        self.close_where(status, out, |_| true);
    }

    fn close_where(
        &mut self,
        status: ItemStatus,
        out: &mut Vec<StreamEvent>,
        predicate: impl Fn(&OpenItem) -> bool,
    ) {
        let open = std::mem::take(&mut self.open);
        for item in open {
            if predicate(&item) {
                self.close(item, status, out);
            } else {
                self.open.push(item);
            }
        }
    }

    /// Emits an item's done events and files it in its slot.
    fn close(&mut self, item: OpenItem, status: ItemStatus, out: &mut Vec<StreamEvent>) {
        let (output_index, item) = match item {
            OpenItem::Reasoning {
                output_index,
                id,
                text,
            } => {
                let data = match self.reasoning_names {
                    ReasoningEventNames::OpenResponses => EventData::ReasoningDone {
                        item_id: id.clone(),
                        output_index,
                        content_index: 0,
                        text: text.clone(),
                    },
                    ReasoningEventNames::OpenAi => EventData::ReasoningTextDone {
                        item_id: id.clone(),
                        output_index,
                        content_index: 0,
                        text: text.clone(),
                    },
                };
                self.emit(data, out);
                self.emit(
                    EventData::ContentPartDone {
                        item_id: id.clone(),
                        output_index,
                        content_index: 0,
                        part: ContentPart::ReasoningText { text: text.clone() },
                    },
                    out,
                );
                let mut summary = Vec::new();
                if self.summarize_reasoning {
                    self.emit(
                        EventData::ReasoningSummaryTextDone {
                            item_id: id.clone(),
                            output_index,
                            summary_index: 0,
                            text: text.clone(),
                        },
                        out,
                    );
                    let part = ReasoningPart::SummaryText { text: text.clone() };
                    self.emit(
                        EventData::ReasoningSummaryPartDone {
                            item_id: id.clone(),
                            output_index,
                            summary_index: 0,
                            part: part.clone(),
                        },
                        out,
                    );
                    summary.push(part);
                }
                let item = Item::Reasoning(ReasoningItem {
                    id: Some(id),
                    summary,
                    content: Some(vec![ReasoningPart::ReasoningText { text }]),
                    encrypted_content: None,
                    status: Some(status),
                });
                (output_index, item)
            }
            OpenItem::Message {
                output_index,
                id,
                parts,
            } => {
                let mut content = Vec::with_capacity(parts.len());
                for (content_index, part) in parts.into_iter().enumerate() {
                    let (done, part) = match part {
                        OpenPart::Text { text, logprobs } => (
                            EventData::OutputTextDone {
                                item_id: id.clone(),
                                output_index,
                                content_index,
                                text: text.clone(),
                                logprobs: logprobs.clone(),
                            },
                            ContentPart::OutputText(OutputText {
                                text,
                                annotations: Vec::new(),
                                logprobs: self.logprobs.then_some(logprobs),
                            }),
                        ),
                        OpenPart::Refusal { text } => (
                            EventData::RefusalDone {
                                item_id: id.clone(),
                                output_index,
                                content_index,
                                refusal: text.clone(),
                            },
                            ContentPart::Refusal { refusal: text },
                        ),
                    };
                    self.emit(done, out);
                    self.emit(
                        EventData::ContentPartDone {
                            item_id: id.clone(),
                            output_index,
                            content_index,
                            part: part.clone(),
                        },
                        out,
                    );
                    content.push(part);
                }
                let item = Item::Message(MessageItem {
                    id: Some(id),
                    status: Some(status),
                    role: Role::Assistant,
                    content: MessageContent::Parts(content),
                    phase: None,
                });
                (output_index, item)
            }
            unnamed @ OpenItem::Unnamed { .. } => {
                // The backend never named this call: it can only be the client's.
                let call = self.open_call(unnamed, String::new(), out);
                return self.close(call, status, out);
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
                    return;
                }
            },
        };
        self.file_done(output_index, item, out);
    }

    /// The backend's stream for this turn ended: closes the turn's items (a
    /// server-side call's item stays open until [`Assembler::call_finished`] or
    /// [`Assembler::call_skipped`]) and says what the turn asked for.
    pub fn end_turn(&mut self, out: &mut Vec<StreamEvent>) -> TurnEnd {
        let finish = self.finish.take();
        let status = match finish {
            Some(FinishReason::Length | FinishReason::ContentFilter) => ItemStatus::Incomplete,
            _ => ItemStatus::Completed,
        };
        self.close_all(status, out);
        if let Some(usage) = self.turn_usage.take() {
            self.response.usage = Some(match self.response.usage {
                Some(total) => add_usage(total, usage),
                None => usage,
            });
        }
        TurnEnd {
            finish,
            server_calls: std::mem::take(&mut self.running),
            client_calls: std::mem::take(&mut self.turn_client_calls),
            approvals: std::mem::take(&mut self.turn_approvals),
        }
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

    /// Emits `output_item.done` for a finished item and files it in its slot.
    fn file_done(&mut self, output_index: usize, item: Item, out: &mut Vec<StreamEvent>) {
        self.emit(
            EventData::OutputItemDone {
                output_index,
                item: item.clone(),
            },
            out,
        );
        if let Some(slot) = self.slots.get_mut(output_index) {
            *slot = Some(item);
        }
    }

    /// The number of output items so far (finished or not).
    pub fn output_len(&self) -> usize {
        self.slots.len()
    }

    /// The finished items from `start` on, in output order.
    pub fn items_since(&self, start: usize) -> Vec<Item> {
        self.slots.iter().skip(start).flatten().cloned().collect()
    }

    /// Ends the response: closes what is still open and emits the terminal event.
    pub fn conclude(&mut self, conclusion: Conclusion, out: &mut Vec<StreamEvent>) {
        if self.finished {
            return;
        }
        let item_status = match conclusion {
            Conclusion::Completed { .. } => ItemStatus::Completed,
            Conclusion::Incomplete(_) => ItemStatus::Incomplete,
        };
        self.close_all(item_status, out);
        for call in std::mem::take(&mut self.running) {
            self.call_skipped(call, "The response ended before this call ran.", out);
        }
        self.response.output = self.slots.drain(..).flatten().collect();
        let data = match conclusion {
            Conclusion::Incomplete(reason) => {
                self.response.status = ResponseStatus::Incomplete;
                self.response.incomplete_details = Some(IncompleteDetails { reason });
                EventData::Incomplete {
                    response: Box::new(self.response.clone()),
                }
            }
            Conclusion::Completed { now } => {
                self.response.status = ResponseStatus::Completed;
                self.response.completed_at = Some(now);
                EventData::Completed {
                    response: Box::new(self.response.clone()),
                }
            }
        };
        self.emit(data, out);
        self.finished = true;
    }

    /// Generation failed after the stream began: closes open items as incomplete,
    /// then emits `error` and `response.failed`.
    pub fn fail(&mut self, error: ApiError, out: &mut Vec<StreamEvent>) {
        if self.finished {
            return;
        }
        self.close_all(ItemStatus::Incomplete, out);
        for call in std::mem::take(&mut self.running) {
            self.call_skipped(call, "The response failed before this call ran.", out);
        }
        // After `conclude`, the output already moved into the response.
        if !self.slots.is_empty() {
            self.response.output = self.slots.drain(..).flatten().collect();
        }
        let body = error.body().error;
        self.response.status = ResponseStatus::Failed;
        self.response.completed_at = None;
        self.response.incomplete_details = None;
        self.response.error = Some(ResponseError {
            code: error.code.as_str().to_owned(),
            message: error.message.clone(),
        });
        self.emit(EventData::Error { error: body }, out);
        self.emit(
            EventData::Failed {
                response: Box::new(self.response.clone()),
            },
            out,
        );
        self.finished = true;
    }

    /// Turns an emitted-but-unsent terminal event into `error` and
    /// `response.failed` carrying the same sequence numbers onward, for when the
    /// finished response could not be saved.
    pub fn replace_terminal_with_failure(
        &mut self,
        terminal: StreamEvent,
        error: ApiError,
        out: &mut Vec<StreamEvent>,
    ) {
        self.next_sequence = terminal.sequence_number;
        self.finished = false;
        self.fail(error, out);
    }

    /// The response as it stands (final once `is_finished`).
    pub fn response(&self) -> &Response {
        &self.response
    }
}

/// Two turns' usage, added up.
fn add_usage(a: Usage, b: Usage) -> Usage {
    Usage {
        input_tokens: a.input_tokens + b.input_tokens,
        input_tokens_details: antwort_api::InputTokensDetails {
            cached_tokens: a.input_tokens_details.cached_tokens
                + b.input_tokens_details.cached_tokens,
        },
        output_tokens: a.output_tokens + b.output_tokens,
        output_tokens_details: antwort_api::OutputTokensDetails {
            reasoning_tokens: a.output_tokens_details.reasoning_tokens
                + b.output_tokens_details.reasoning_tokens,
        },
        total_tokens: a.total_tokens + b.total_tokens,
    }
}
