//! The assembler: folds model events into streaming events and the final response.
//!
//! It is the single place that knows the event grammar: created and in_progress
//! first; for each item `output_item.added`, its parts and deltas, `.done` events that
//! carry the whole accumulated value, `output_item.done`; exactly one terminal event.
//! `output_index` is fixed when an item is added and equals its position in the final
//! `output`; sequence numbers are assigned here and nowhere else.

use antwort_api::{
    ApiError, ContentPart, EventData, FunctionCallItem, IncompleteDetails, IncompleteReason, Item,
    ItemStatus, LogProb, MessageContent, MessageItem, OutputText, ReasoningItem, ReasoningPart,
    Response, ResponseError, ResponseStatus, Role, StreamEvent,
};

use crate::ids;
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
    finish: Option<FinishReason>,
    finished: bool,
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
    FunctionCall {
        output_index: usize,
        upstream_index: u32,
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
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
            finish: None,
            finished: false,
        }
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
            ModelEvent::Usage(usage) => self.response.usage = Some(usage),
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
        let position = self.open.iter().position(|item| {
            matches!(item, OpenItem::FunctionCall { upstream_index: i, .. } if *i == upstream_index)
        });
        let position = match position {
            Some(position) => position,
            None => {
                // Reasoning and messages end where tool calls begin; parallel calls
                // stay open together, since backends interleave their arguments.
                self.close_where(ItemStatus::Completed, out, |item| {
                    !matches!(item, OpenItem::FunctionCall { .. })
                });
                let output_index = self.reserve_slot();
                let id = ids::function_call_id();
                let call_id = self.unique_call_id(upstream_id);
                let item = Item::FunctionCall(FunctionCallItem {
                    id: Some(id.clone()),
                    call_id: call_id.clone(),
                    name: name.clone().unwrap_or_default(),
                    arguments: String::new(),
                    status: Some(ItemStatus::InProgress),
                });
                self.emit(EventData::OutputItemAdded { output_index, item }, out);
                self.open.push(OpenItem::FunctionCall {
                    output_index,
                    upstream_index,
                    id,
                    call_id,
                    name: name.clone().unwrap_or_default(),
                    arguments: String::new(),
                });
                self.open.len() - 1
            }
        };
        let Some(OpenItem::FunctionCall {
            output_index,
            id,
            name: call_name,
            arguments: all,
            ..
        }) = self.open.get_mut(position)
        else {
            return;
        };
        if call_name.is_empty()
            && let Some(name) = name
        {
            *call_name = name;
        }
        if arguments.is_empty() {
            return;
        }
        all.push_str(&arguments);
        let (item_id, output_index) = (id.clone(), *output_index);
        self.emit(
            EventData::FunctionCallArgumentsDelta {
                item_id,
                output_index,
                delta: arguments,
            },
            out,
        );
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
                let item = Item::Reasoning(ReasoningItem {
                    id: Some(id),
                    summary: Vec::new(),
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
            OpenItem::FunctionCall {
                output_index,
                id,
                call_id,
                name,
                arguments,
                ..
            } => {
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
        };
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

    /// The backend's stream ended: closes every item and emits the terminal event.
    pub fn finish(&mut self, now: u64, out: &mut Vec<StreamEvent>) {
        if self.finished {
            return;
        }
        let Some(reason) = self.finish else {
            self.fail(
                ApiError::new(
                    antwort_api::ErrorCode::BackendError,
                    "the backend's stream ended before generation finished",
                ),
                out,
            );
            return;
        };
        let incomplete = match reason {
            FinishReason::Length => Some(IncompleteReason::MaxOutputTokens),
            FinishReason::ContentFilter => Some(IncompleteReason::ContentFilter),
            FinishReason::Stop | FinishReason::ToolCalls => None,
        };
        let item_status = if incomplete.is_some() {
            ItemStatus::Incomplete
        } else {
            ItemStatus::Completed
        };
        self.close_all(item_status, out);
        self.response.output = self.slots.drain(..).flatten().collect();
        let data = match incomplete {
            Some(reason) => {
                self.response.status = ResponseStatus::Incomplete;
                self.response.incomplete_details = Some(IncompleteDetails { reason });
                EventData::Incomplete {
                    response: Box::new(self.response.clone()),
                }
            }
            None => {
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
        // After `finish`, the output already moved into the response.
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
