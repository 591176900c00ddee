//! Responses events → model events, streamed or not, apart from any I/O so
//! that the translation can be tested and fuzzed alone.
//!
//! Every item the server adds starts a model item (`ItemStart`). Function calls
//! are numbered in the order they begin (the `index` of `ToolCallDelta`), found
//! again by the server's item id or output index, and their arguments are
//! passed on as they stream; an `arguments.done` or `output_item.done` that
//! carries more than was streamed passes on the rest, so a call whose
//! arguments arrive only whole comes through too. An item whose content never
//! streamed (a server that sends only `.done` events, or a whole response) is
//! translated from its finished form, which is how a non-streamed response
//! becomes the same events a stream would have given. The output a terminal
//! event carries is read only when no item streamed at all: once some did, an
//! item there that did not stream cannot be told from one that did under
//! another id.

use std::collections::VecDeque;

use antwort_engine::{BackendError, FinishReason, ModelEvent};
use serde_json::Value;

use super::items::{hosted_item, message_events, reasoning_events};
use super::wire::{
    self, ErrorEvent, ItemEvent, Place, WireCall, WireEvent, WireMessage, WireReasoning,
    WireResponse,
};
use crate::stream::{Translate, Translated};

/// Event by event translation of one response.
#[derive(Default)]
pub struct ResponsesTranslator {
    items: Vec<Tracked>,
    /// Function calls begun so far: the next call's index.
    calls: u32,
    scratch: Vec<ModelEvent>,
    /// The terminal event was seen: the response is whole.
    pub finished: bool,
}

/// An item of the server's output, as far as it has come.
struct Tracked {
    output_index: Option<u64>,
    id: Option<String>,
    kind: Kind,
    /// Text (a message's, or reasoning text) arrived as deltas: the item's
    /// finished form adds none of it again.
    streamed_text: bool,
    streamed_summary: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KindOf {
    Message,
    Reasoning,
    Call,
    Other,
}

enum Kind {
    Message,
    Reasoning,
    Call(Call),
    Other,
}

struct Call {
    /// Its index among the calls passed on, given when its first piece is:
    /// a call that never says anything takes none, so indices have no gaps.
    index: Option<u32>,
    /// The arguments passed on so far.
    sent: String,
    /// Its call id and name were passed on.
    named: bool,
}

impl Kind {
    fn of(&self) -> KindOf {
        match self {
            Self::Message => KindOf::Message,
            Self::Reasoning => KindOf::Reasoning,
            Self::Call(_) => KindOf::Call,
            Self::Other => KindOf::Other,
        }
    }
}

/// How a response ended, when it did not fail.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Completed,
    Incomplete,
}

impl ResponsesTranslator {
    /// Translates one SSE event's `data`, appending its model events to `out`.
    pub fn translate(
        &mut self,
        data: &str,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<Translated, BackendError> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(Translated::Events);
        }
        if data == "[DONE]" {
            // Some servers end with it, as in Chat; it is no terminal event.
            return if self.finished {
                Ok(Translated::Done)
            } else {
                Err(BackendError::interrupted(
                    "the backend ended the stream before the response finished",
                ))
            };
        }
        let event = match serde_json::from_str::<WireEvent>(data) {
            Ok(event) => event,
            Err(error) => return unreadable(data, &error),
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let translated = self.event(event, &mut scratch);
        if translated.is_ok() {
            out.extend(scratch.drain(..));
        }
        scratch.clear();
        self.scratch = scratch;
        translated
    }

    fn event(
        &mut self,
        event: WireEvent,
        out: &mut Vec<ModelEvent>,
    ) -> Result<Translated, BackendError> {
        match event {
            WireEvent::ItemAdded(ItemEvent { output_index, item }) => {
                self.item_added(output_index, item, out);
            }
            WireEvent::ItemDone(ItemEvent { output_index, item }) => {
                if let Some(item) = item {
                    self.item_done(output_index, item, out);
                }
            }
            WireEvent::ArgumentsDelta(event) => {
                let place = place(event.output_index, event.item_id.as_deref());
                self.arguments(place, event.delta.unwrap_or_default(), out);
            }
            WireEvent::ArgumentsDone(event) => {
                let place = place(event.output_index, event.item_id.as_deref());
                if let Some(arguments) = event.arguments {
                    let at = self.item(place, KindOf::Call, out);
                    self.rest_of_call(at, None, &arguments, out);
                }
            }
            WireEvent::TextDelta(event) => {
                let place = place(event.output_index, event.item_id.as_deref());
                let logprobs = wire::logprobs(event.logprobs);
                let text = event.delta.unwrap_or_default();
                if !text.is_empty() || !logprobs.is_empty() {
                    self.streamed(place, KindOf::Message, out);
                    out.push(ModelEvent::TextDelta { text, logprobs });
                }
            }
            WireEvent::Annotation(event) => {
                let place = place(event.output_index, event.item_id.as_deref());
                if let Some(annotation) = event.annotation {
                    self.streamed(place, KindOf::Message, out);
                    out.push(ModelEvent::Annotation(annotation));
                }
            }
            WireEvent::RefusalDelta(event) => {
                let place = place(event.output_index, event.item_id.as_deref());
                if let Some(delta) = event.delta.filter(|d| !d.is_empty()) {
                    self.streamed(place, KindOf::Message, out);
                    out.push(ModelEvent::RefusalDelta(delta));
                }
            }
            WireEvent::ReasoningDelta(event) => {
                let place = place(event.output_index, event.item_id.as_deref());
                if let Some(delta) = event.delta.filter(|d| !d.is_empty()) {
                    self.streamed(place, KindOf::Reasoning, out);
                    out.push(ModelEvent::ReasoningDelta(delta));
                }
            }
            WireEvent::SummaryDelta(event) => {
                let place = place(event.output_index, event.item_id.as_deref());
                if let Some(text) = event.delta.filter(|d| !d.is_empty()) {
                    let at = self.item(place, KindOf::Reasoning, out);
                    self.items[at].streamed_summary = true;
                    out.push(ModelEvent::ReasoningSummaryDelta {
                        summary_index: event.summary_index.unwrap_or(0),
                        text,
                    });
                }
            }
            WireEvent::Completed(event) => {
                return Ok(self.terminal(Outcome::Completed, event.response, out));
            }
            WireEvent::Incomplete(event) => {
                return Ok(self.terminal(Outcome::Incomplete, event.response, out));
            }
            WireEvent::Failed(event) => return Err(failed(event.response.as_ref())),
            WireEvent::Error(event) => return Err(error_event(event)),
            WireEvent::Other => {}
        }
        Ok(Translated::Events)
    }

    /// The tracked item at `place`.
    fn find(&self, place: Place<'_>) -> Option<usize> {
        if let Some(id) = place.item_id
            && let Some(at) = self
                .items
                .iter()
                .rposition(|item| item.id.as_deref() == Some(id))
        {
            return Some(at);
        }
        let index = place.output_index?;
        self.items
            .iter()
            .rposition(|item| item.output_index == Some(index))
    }

    /// The item at `place`, started (and tracked from now on) if it is new.
    /// An event that does not say where it belongs continues the last item
    /// when that is of its kind.
    fn item(&mut self, place: Place<'_>, kind: KindOf, out: &mut Vec<ModelEvent>) -> usize {
        if let Some(at) = self.find(place) {
            return at;
        }
        if place.item_id.is_none()
            && place.output_index.is_none()
            && let Some(last) = self.items.len().checked_sub(1)
            && self.items[last].kind.of() == kind
        {
            return last;
        }
        self.start(place, kind, out)
    }

    fn start(&mut self, place: Place<'_>, kind: KindOf, out: &mut Vec<ModelEvent>) -> usize {
        out.push(ModelEvent::ItemStart {
            id: place.item_id.map(str::to_owned),
        });
        let kind = match kind {
            KindOf::Message => Kind::Message,
            KindOf::Reasoning => Kind::Reasoning,
            KindOf::Other => Kind::Other,
            KindOf::Call => Kind::Call(Call {
                index: None,
                sent: String::new(),
                named: false,
            }),
        };
        self.items.push(Tracked {
            output_index: place.output_index,
            id: place.item_id.map(str::to_owned),
            kind,
            streamed_text: false,
            streamed_summary: false,
        });
        self.items.len() - 1
    }

    /// Marks that text of the item at `place` streamed.
    fn streamed(&mut self, place: Place<'_>, kind: KindOf, out: &mut Vec<ModelEvent>) {
        let at = self.item(place, kind, out);
        self.items[at].streamed_text = true;
    }

    fn item_added(
        &mut self,
        output_index: Option<u64>,
        item: Option<Value>,
        out: &mut Vec<ModelEvent>,
    ) {
        let Some(item) = item else { return };
        let place = place(output_index, item_id(&item));
        if self.find(place).is_some() {
            return;
        }
        let kind = kind_of(&item);
        let at = self.start(place, kind, out);
        if kind == KindOf::Call {
            let call: WireCall = serde_json::from_value(item).unwrap_or_default();
            let arguments = call.arguments.clone().unwrap_or_default();
            self.rest_of_call(at, Some(call), &arguments, out);
        }
    }

    /// A finished item: what of it did not stream, and hosted tools' items whole.
    fn item_done(&mut self, output_index: Option<u64>, item: Value, out: &mut Vec<ModelEvent>) {
        let kind = kind_of(&item);
        if kind == KindOf::Other {
            return hosted_item(item, out);
        }
        let at = self.item(place(output_index, item_id(&item)), kind, out);
        match kind {
            KindOf::Call => {
                let call: WireCall = serde_json::from_value(item).unwrap_or_default();
                let arguments = call.arguments.clone().unwrap_or_default();
                self.rest_of_call(at, Some(call), &arguments, out);
            }
            KindOf::Message => {
                if !self.items[at].streamed_text {
                    let message: WireMessage = serde_json::from_value(item).unwrap_or_default();
                    message_events(message, out);
                }
            }
            KindOf::Reasoning => {
                let reasoning: WireReasoning = serde_json::from_value(item).unwrap_or_default();
                let tracked = &self.items[at];
                reasoning_events(
                    reasoning,
                    !tracked.streamed_summary,
                    !tracked.streamed_text,
                    out,
                );
            }
            KindOf::Other => {}
        }
    }

    /// A piece of a call's arguments.
    fn arguments(&mut self, place: Place<'_>, delta: String, out: &mut Vec<ModelEvent>) {
        if delta.is_empty() {
            return;
        }
        let at = self.item(place, KindOf::Call, out);
        let Kind::Call(call) = &mut self.items[at].kind else {
            tracing::debug!("function call arguments for an item that is no call; passed over");
            return;
        };
        call.sent.push_str(&delta);
        out.push(ModelEvent::ToolCallDelta {
            index: call_index(&mut self.calls, call),
            id: None,
            name: None,
            arguments: delta,
        });
    }

    /// What the call at `at` lacks of `arguments` (the whole arguments so
    /// far), with its call id and name (from `item`) if they were not passed
    /// on yet. Arguments that do not continue what streamed cannot be taken
    /// back; the streamed ones stand.
    fn rest_of_call(
        &mut self,
        at: usize,
        item: Option<WireCall>,
        arguments: &str,
        out: &mut Vec<ModelEvent>,
    ) {
        let Kind::Call(call) = &mut self.items[at].kind else {
            return;
        };
        let rest = match arguments.strip_prefix(call.sent.as_str()) {
            Some(rest) => rest,
            None => {
                tracing::debug!(
                    index = ?call.index,
                    "the finished arguments differ from the streamed ones; the streamed ones stand"
                );
                ""
            }
        };
        call.sent.push_str(rest);
        let (id, name) = match item {
            Some(item) if !call.named && item.name.as_deref().is_some_and(|n| !n.is_empty()) => {
                call.named = true;
                (item.call_id.filter(|id| !id.is_empty()), item.name)
            }
            _ => (None, None),
        };
        if rest.is_empty() && name.is_none() {
            return;
        }
        out.push(ModelEvent::ToolCallDelta {
            index: call_index(&mut self.calls, call),
            id,
            name,
            arguments: rest.to_owned(),
        });
    }

    /// The response ended: its items if none streamed (a whole response, or a
    /// server that streams none), its usage, and why it stopped.
    fn terminal(
        &mut self,
        outcome: Outcome,
        response: Option<WireResponse>,
        out: &mut Vec<ModelEvent>,
    ) -> Translated {
        let response = response.unwrap_or_default();
        if self.items.is_empty() {
            for (position, item) in response.output.into_iter().flatten().enumerate() {
                self.item_done(Some(position as u64), item, out);
            }
        }
        if let Some(usage) = &response.usage {
            out.push(ModelEvent::Usage(usage.to_usage()));
        }
        let finish = match outcome {
            Outcome::Completed if self.calls > 0 => FinishReason::ToolCalls,
            Outcome::Completed => FinishReason::Stop,
            Outcome::Incomplete => {
                let reason = response.incomplete_details.and_then(|d| d.reason);
                match reason.as_deref() {
                    Some("content_filter") => FinishReason::ContentFilter,
                    // `max_output_tokens`, and whatever else cut it short.
                    _ => FinishReason::Length,
                }
            }
        };
        out.push(ModelEvent::Finish(finish));
        self.finished = true;
        Translated::Done
    }
}

impl Translate for ResponsesTranslator {
    fn translate(
        &mut self,
        data: &str,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<Translated, BackendError> {
        ResponsesTranslator::translate(self, data, out)
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

/// The model events of a whole (non-streamed) response: the same a stream of
/// it would have given.
pub fn response_events(body: &[u8]) -> Result<Vec<ModelEvent>, BackendError> {
    // serde reads a struct from an array too; a response is an object.
    if !body.trim_ascii_start().starts_with(b"{") {
        return Err(BackendError::protocol(
            "the backend's answer is not a response object",
        ));
    }
    let response: WireResponse = serde_json::from_slice(body)
        .map_err(|e| BackendError::protocol(format!("invalid response JSON: {e}")))?;
    let outcome = match response.status.as_deref() {
        None | Some("completed") => Outcome::Completed,
        Some("incomplete") => Outcome::Incomplete,
        Some("failed") => return Err(failed(Some(&response))),
        Some("cancelled") => {
            return Err(BackendError::interrupted(
                "the backend cancelled the response",
            ));
        }
        Some(other) => {
            return Err(BackendError::protocol(format!(
                "the backend answered with a response still {other}"
            )));
        }
    };
    let mut out = Vec::new();
    ResponsesTranslator::default().terminal(outcome, Some(response), &mut out);
    Ok(out)
}

fn place(output_index: Option<u64>, item_id: Option<&str>) -> Place<'_> {
    Place {
        output_index,
        item_id,
    }
}

fn item_id(item: &Value) -> Option<&str> {
    item.get("id").and_then(Value::as_str)
}

fn kind_of(item: &Value) -> KindOf {
    match item.get("type").and_then(Value::as_str) {
        Some("message") => KindOf::Message,
        Some("reasoning") => KindOf::Reasoning,
        Some("function_call") => KindOf::Call,
        _ => KindOf::Other,
    }
}

/// `response.failed`, as the error it is.
fn failed(response: Option<&WireResponse>) -> BackendError {
    let error = response.and_then(|r| r.error.as_ref());
    let message = error
        .and_then(|e| e.message.as_deref())
        .unwrap_or("no reason given");
    reported(
        error.and_then(|e| e.code.as_deref()),
        "the backend's response failed",
        message,
    )
}

/// The call's index, given now if it has none yet.
fn call_index(calls: &mut u32, call: &mut Call) -> u32 {
    *call.index.get_or_insert_with(|| {
        let index = *calls;
        *calls += 1;
        index
    })
}

/// An `error` event, in either shape.
fn error_event(event: ErrorEvent) -> BackendError {
    let nested = event.error.unwrap_or_default();
    let message = event
        .message
        .or(nested.message)
        .unwrap_or_else(|| "no reason given".to_owned());
    let code = event.code.or(nested.code);
    reported(
        code.as_deref(),
        "the backend reported an error mid-stream",
        &message,
    )
}

/// Codes of failures another try may not meet again: the server's own fault,
/// or a passing limit.
const TRANSIENT_CODES: &[&str] = &[
    "server_error",
    "internal_error",
    "rate_limit_exceeded",
    "overloaded",
    "timeout",
];

/// A failure the backend reported: without a code, or with a transient one,
/// an interruption (retried before the first event, counted by the breaker);
/// any other code (`invalid_prompt`, a context or content limit) is about the
/// request, would fail again anywhere, and is the client's answer as it is.
fn reported(code: Option<&str>, what: &str, message: &str) -> BackendError {
    match code {
        None => BackendError::interrupted(format!("{what}: {message}")),
        Some(code) if TRANSIENT_CODES.contains(&code) => {
            BackendError::interrupted(format!("{what} ({code}): {message}"))
        }
        Some(code) => BackendError::status(400, format!("{what} ({code}): {message}"), None),
    }
}

/// Data that is no event of a known shape: JSON without a `type` is passed
/// over (a server's keepalive, a later version's addition), anything else is
/// not the protocol.
fn unreadable(data: &str, error: &serde_json::Error) -> Result<Translated, BackendError> {
    match serde_json::from_str::<Value>(data) {
        Ok(Value::Object(object)) if !object.get("type").is_some_and(Value::is_string) => {
            Ok(Translated::Events)
        }
        _ => Err(BackendError::protocol(format!("invalid event: {error}"))),
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
