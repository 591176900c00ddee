//! The assembler: folds model events into streaming events and the final response.
//!
//! It is the single place that knows the event grammar: created and in_progress
//! first; for each item `output_item.added`, its parts and deltas, `.done` events that
//! carry the whole accumulated value, `output_item.done`; exactly one terminal event.
//! `output_index` is fixed when an item is added and equals its position in the final
//! `output`; sequence numbers are assigned here and nowhere else.

use antwort_api::{
    ApiError, EventData, IncompleteDetails, IncompleteReason, Item, ItemStatus, Response,
    ResponseError, ResponseStatus, StreamEvent, Usage,
};

use crate::catalog::Routes;
use crate::model::{FinishReason, ModelEvent};
use crate::tool::ServerCall;

/// Which names reasoning text events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReasoningEventNames {
    /// `response.reasoning.delta` / `.done`, as OpenResponses specifies.
    #[default]
    OpenResponses,
    /// `response.reasoning_text.delta` / `.done`, as the OpenAI API sends.
    OpenAi,
}

mod calls;
mod message;
mod reasoning;

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
    /// Seals each reasoning item's text into its `encrypted_content`, for the
    /// tenant, when the client asked to keep reasoning.
    sealing: Option<(std::sync::Arc<crate::sealed::ReasoningSeal>, String)>,
    /// Server-side tools by the name the model calls them.
    routes: Routes,
    /// The client's tools that are not plain functions, by offered name.
    client_tools: crate::client_tools::ClientTools,
    /// Server-side calls of this turn whose items wait for their results.
    running: Vec<ServerCall>,
    /// Function calls and approval requests this turn closed: text after a call
    /// closes it before the turn ends, and it still counts.
    turn_client_calls: usize,
    turn_approvals: usize,
    /// Annotations server-side results carry (citations of search results),
    /// waiting for the next output text, which cites them.
    citations: Vec<serde_json::Value>,
    /// Why the current model turn stopped, once the backend said so.
    finish: Option<FinishReason>,
    /// Usage of the current model turn; turns add up in the response's usage.
    turn_usage: Option<Usage>,
    finished: bool,
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
    Reasoning(reasoning::OpenReasoning),
    Message(message::OpenMessage),
    /// A tool call, routed when its name arrived.
    Call {
        output_index: usize,
        upstream_index: u32,
        id: String,
        /// The name the model called.
        name: String,
        arguments: String,
        kind: calls::CallKind,
    },
    /// A tool call whose name has not arrived yet: it has no item until it does.
    Unnamed {
        upstream_index: u32,
        upstream_id: Option<String>,
        arguments: String,
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
            sealing: None,
            routes: Routes::default(),
            client_tools: Default::default(),
            running: Vec::new(),
            citations: Vec::new(),
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

    /// Reasoning the backend did not seal itself is sealed with `seal`.
    pub fn with_sealing(
        mut self,
        sealing: Option<(std::sync::Arc<crate::sealed::ReasoningSeal>, String)>,
    ) -> Self {
        self.sealing = sealing;
        self
    }

    /// Calls of these names come back as the client tool's own items.
    pub fn with_client_tools(mut self, tools: crate::client_tools::ClientTools) -> Self {
        self.client_tools = tools;
        self
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
            ModelEvent::ItemStart { .. } => {
                // The backend's own ids are not kept: every id is the gateway's,
                // so that stored chains and references use one kind.
                self.close_where(ItemStatus::Completed, out, |item| {
                    matches!(item, OpenItem::Reasoning(_) | OpenItem::Message(_))
                });
            }
            ModelEvent::ReasoningSummaryDelta {
                summary_index,
                text,
            } => self.reasoning_summary(summary_index, text, out),
            ModelEvent::ReasoningEncrypted(content) => self.reasoning_encrypted(content, out),
            ModelEvent::Annotation(annotation) => self.annotation(annotation, out),
            ModelEvent::Item(item) => self.whole_item(*item, out),
        }
    }

    /// An item the backend finished itself: added and done at once.
    fn whole_item(&mut self, item: Item, out: &mut Vec<StreamEvent>) {
        self.close_all(ItemStatus::Completed, out);
        let output_index = self.reserve_slot();
        self.emit(
            EventData::OutputItemAdded {
                output_index,
                item: item.clone(),
            },
            out,
        );
        self.file_done(output_index, item, out);
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

    /// Emits an item's done events and files it in its slot (a server-side
    /// call stays open until its result is in).
    fn close(&mut self, item: OpenItem, status: ItemStatus, out: &mut Vec<StreamEvent>) {
        let (output_index, item) = match item {
            OpenItem::Reasoning(reasoning) => {
                let output_index = reasoning.output_index;
                (output_index, self.close_reasoning(reasoning, status, out))
            }
            OpenItem::Message(message) => {
                let output_index = message.output_index;
                (output_index, self.close_message(message, status, out))
            }
            call => match self.close_call(call, status, out) {
                Some(done) => done,
                None => return,
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

    /// Its client cancelled the response: open items close as incomplete,
    /// calls not yet run are skipped, and `response.failed` carries status
    /// `cancelled` (the grammar's terminal event for a response that neither
    /// completed nor stopped at a limit), without an `error` event.
    pub fn cancel(&mut self, out: &mut Vec<StreamEvent>) {
        if self.finished {
            return;
        }
        self.close_all(ItemStatus::Incomplete, out);
        for call in std::mem::take(&mut self.running) {
            self.call_skipped(
                call,
                "The response was cancelled before this call ran.",
                out,
            );
        }
        if !self.slots.is_empty() {
            self.response.output = self.slots.drain(..).flatten().collect();
        }
        self.response.status = ResponseStatus::Cancelled;
        self.response.completed_at = None;
        self.response.incomplete_details = None;
        self.response.error = None;
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
