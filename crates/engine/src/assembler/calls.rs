//! Tool calls: a call's deltas until its name arrives, routing by that name
//! (a client function, or a server-side tool of this response), and the items
//! of server-side calls from start to result, as their tool type makes them
//! (through `crate::tool::ServerTool`; nothing here names a tool type).

use antwort_api::{EventData, FunctionCallItem, Item, ItemStatus, StreamEvent};

use super::{Assembler, OpenItem};
use crate::client_tools::{ClientToolKind, call_item};
use crate::ids;
use crate::tool::{CallStart, Finished, ItemEmitter, Route, ServerCall};

pub(super) enum CallKind {
    /// A client function: a function_call item.
    Function { call_id: String },
    /// A server-side tool: its item is the tool type's.
    Server { route: Route },
    /// A client tool that is not a plain function: its item is the one the
    /// client declared (`crate::client_tools`).
    Client {
        call_id: String,
        kind: ClientToolKind,
    },
}

impl CallKind {
    /// The event for a piece of this call's arguments.
    fn argument_delta(
        &self,
        item_id: String,
        output_index: usize,
        delta: String,
    ) -> Option<EventData> {
        match self {
            Self::Function { .. }
            | Self::Client {
                kind: ClientToolKind::Namespaced { .. },
                ..
            } => Some(EventData::FunctionCallArgumentsDelta {
                item_id,
                output_index,
                delta,
            }),
            // Their input is said whole, once it is known.
            Self::Client { .. } => None,
            Self::Server { route } => route.tool.argument_delta(
                &CallStart {
                    item_id: &item_id,
                    output_index,
                    target: &route.target,
                    approval: route.approval,
                    approval_request_id: None,
                },
                delta,
            ),
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
        let routed = self.routes.get(&name).cloned();
        let client_tool = self.client_tools.get(&name).cloned();
        let (id, kind, item, started) = match (routed, client_tool) {
            (Some(route), _) => {
                let id = route.tool.new_item_id(route.approval);
                let (item, started) = route.tool.start(&CallStart {
                    item_id: &id,
                    output_index,
                    target: &route.target,
                    approval: route.approval,
                    approval_request_id: None,
                });
                (id, CallKind::Server { route }, item, started)
            }
            (None, Some(kind)) => {
                let id = match kind {
                    ClientToolKind::Namespaced { .. } => ids::function_call_id(),
                    ClientToolKind::Custom { .. } => ids::client_call_id("ctc"),
                    ClientToolKind::LocalShell => ids::client_call_id("lsh"),
                    ClientToolKind::Shell => ids::client_call_id("sh"),
                    ClientToolKind::ApplyPatch => ids::client_call_id("apc"),
                };
                let call_id = self.unique_call_id(upstream_id);
                // What is known before the arguments: an empty call.
                let (item, _) = call_item(
                    &kind,
                    id.clone(),
                    call_id.clone(),
                    "",
                    ItemStatus::InProgress,
                    output_index,
                );
                (id, CallKind::Client { call_id, kind }, item, Vec::new())
            }
            (None, None) => {
                let id = ids::function_call_id();
                let call_id = self.unique_call_id(upstream_id);
                let item = Item::FunctionCall(FunctionCallItem {
                    id: Some(id.clone()),
                    call_id: call_id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                    status: Some(ItemStatus::InProgress),
                    namespace: None,
                });
                (id, CallKind::Function { call_id }, item, Vec::new())
            }
        };
        self.emit(EventData::OutputItemAdded { output_index, item }, out);
        for data in started {
            self.emit(data, out);
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
                        namespace: None,
                    });
                    (output_index, item)
                }
                CallKind::Client { call_id, kind } => {
                    self.turn_client_calls += 1;
                    let (item, events) =
                        call_item(&kind, id, call_id, &arguments, status, output_index);
                    for data in events {
                        self.emit(data, out);
                    }
                    (output_index, item)
                }
                CallKind::Server { route } => {
                    let (done, waiting) = route.tool.arguments_done(
                        &CallStart {
                            item_id: &id,
                            output_index,
                            target: &route.target,
                            approval: route.approval,
                            approval_request_id: None,
                        },
                        &arguments,
                    );
                    if let Some(done) = done {
                        self.emit(done, out);
                    }
                    if let Some(request) = waiting {
                        // It waits for the client's approval: done as it stands.
                        self.turn_approvals += 1;
                        (output_index, request)
                    } else {
                        // The item stays open until the call has run (or will not).
                        self.running.push(ServerCall {
                            output_index,
                            item_id: id,
                            route,
                            arguments,
                            approval_request_id: None,
                        });
                        return None;
                    }
                }
            },
            OpenItem::Reasoning(_) | OpenItem::Message(_) => return None,
        })
    }

    /// A call the client approved starts outside a model turn: its item carries
    /// the approval request it answers, and its arguments arrive as one delta.
    pub fn call_started(
        &mut self,
        route: Route,
        arguments: &str,
        approval_request_id: &str,
        out: &mut Vec<StreamEvent>,
    ) -> ServerCall {
        let output_index = self.reserve_slot();
        let item_id = route.tool.new_item_id(false);
        let call = CallStart {
            item_id: &item_id,
            output_index,
            target: &route.target,
            approval: false,
            approval_request_id: Some(approval_request_id),
        };
        let (item, started) = route.tool.start(&call);
        self.emit(EventData::OutputItemAdded { output_index, item }, out);
        for data in started {
            self.emit(data, out);
        }
        if let Some(delta) = route.tool.argument_delta(&call, arguments.to_owned()) {
            self.emit(delta, out);
        }
        if let (Some(done), _) = route.tool.arguments_done(&call, arguments) {
            self.emit(done, out);
        }
        ServerCall {
            output_index,
            item_id,
            route,
            arguments: arguments.to_owned(),
            approval_request_id: Some(approval_request_id.to_owned()),
        }
    }

    /// A server-side call ran: its end events, then its finished item. The
    /// annotations its result carries wait for the answer that cites them.
    pub fn call_finished(
        &mut self,
        call: ServerCall,
        finished: Finished,
        out: &mut Vec<StreamEvent>,
    ) {
        for data in finished.events {
            self.emit(data, out);
        }
        self.citations.extend(finished.annotations);
        self.file_done(call.output_index, finished.item, out);
    }

    /// A server-side call will not run (a limit was reached, or the turn was cut).
    pub fn call_skipped(&mut self, call: ServerCall, reason: &str, out: &mut Vec<StreamEvent>) {
        let item = call.route.tool.skip(&call, reason);
        self.file_done(call.output_index, item, out);
    }

    /// Where work outside a model turn (a tool type's preparation) puts its
    /// items: through this assembler into `out`, which `send` empties.
    pub fn emitter<'a>(
        &'a mut self,
        send: &'a mut (dyn FnMut(&mut Vec<StreamEvent>) + Send),
    ) -> impl ItemEmitter + 'a {
        Emitter {
            assembler: self,
            out: Vec::new(),
            send,
        }
    }
}

/// An [`ItemEmitter`] over the assembler: items outside a model turn get their
/// output indices and sequence numbers here like any other.
struct Emitter<'a> {
    assembler: &'a mut Assembler,
    out: Vec<StreamEvent>,
    send: &'a mut (dyn FnMut(&mut Vec<StreamEvent>) + Send),
}

impl ItemEmitter for Emitter<'_> {
    fn open(&mut self, item: Item, events: Vec<EventData>) -> usize {
        let output_index = self.assembler.reserve_slot();
        self.assembler.emit(
            EventData::OutputItemAdded { output_index, item },
            &mut self.out,
        );
        for data in events {
            self.assembler.emit(data, &mut self.out);
        }
        output_index
    }

    fn emit(&mut self, event: EventData) {
        self.assembler.emit(event, &mut self.out);
    }

    fn finish(&mut self, output_index: usize, events: Vec<EventData>, item: Item) {
        for data in events {
            self.assembler.emit(data, &mut self.out);
        }
        self.assembler.file_done(output_index, item, &mut self.out);
        (self.send)(&mut self.out);
    }

    fn flush(&mut self) {
        (self.send)(&mut self.out);
    }
}
