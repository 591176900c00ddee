//! The Responses answer as OpenAI's SSE events (`event: <type>` and `data:
//! <json>` with a `sequence_number`): `response.created`,
//! `response.in_progress`, each output item from `response.output_item.added`
//! through its parts' deltas to `response.output_item.done`, and
//! `response.completed` (or `response.incomplete`).
//!
//! Timing as over Chat: `ttft` before the first output item, then the first
//! delta at once and `token_delay` before each later delta. Text goes word by
//! word (`[[huge_chunk:..]]` in one delta), tool-call arguments in three pieces.
//! `[[stream_error:TEXT]]` follows the first delta with an `error` event and
//! `response.failed`; `[[cut:N]]` ends the body after N events past `response.created` and
//! `response.in_progress`;
//! `[[hold_after_finish]]` holds the connection open after the terminal event.

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use serde_json::{Value, json};

use super::Answer;
use crate::Stats;
use crate::generation::{argument_pieces, logprob, pieces};
use crate::sse::{self, Ending, Frame};

pub(crate) fn respond(stats: &Arc<Stats>, answer: &Answer) -> Response {
    let mut events = Events::new(answer);
    let opening = answer.response("in_progress", Vec::new());
    events.push(json!({"type": "response.created", "response": opening}));
    events.push(json!({"type": "response.in_progress", "response": opening}));
    let mut index = 0;
    if let Some(item) = answer.reasoning_item() {
        events.reasoning(index, item);
        index += 1;
    }
    if let Some(item) = answer.message_item() {
        events.message(index, item);
        index += 1;
    }
    for item in answer.call_items() {
        events.call(index, item);
        index += 1;
    }
    let status = answer.final_status();
    let terminal = format!("response.{status}");
    events.push(json!({"type": terminal, "response": answer.response(status, answer.output())}));
    let ending = Ending {
        // As over Chat, where the first chunk only opens the message: the two
        // opening events carry nothing, and N counts what follows them.
        cut: answer.script.cut_after.map(|n| n + 2),
        hold: answer.script.hold_after_finish,
        tail: None,
    };
    sse::respond(stats, events.frames, ending)
}

/// The events of one stream, numbered and timed as they are added.
struct Events<'a> {
    answer: &'a Answer,
    frames: Vec<Frame>,
    items_started: bool,
    deltas: usize,
    /// After `[[stream_error:..]]` has failed the response: nothing more is sent.
    closed: bool,
}

impl<'a> Events<'a> {
    fn new(answer: &'a Answer) -> Self {
        Self {
            answer,
            frames: Vec::new(),
            items_started: false,
            deltas: 0,
            closed: false,
        }
    }

    fn push_after(&mut self, wait: Duration, mut event: Value) {
        if self.closed {
            return;
        }
        event["sequence_number"] = json!(self.frames.len());
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        self.frames.push(Frame::new(
            wait,
            format!("event: {kind}\ndata: {event}\n\n"),
        ));
    }

    fn push(&mut self, event: Value) {
        self.push_after(Duration::ZERO, event);
    }

    /// `response.output_item.added`: the first one waits for the first token.
    fn added(&mut self, index: usize, item: Value) {
        let wait = if self.items_started {
            Duration::ZERO
        } else {
            self.answer.script.ttft
        };
        self.items_started = true;
        self.push_after(
            wait,
            json!({"type": "response.output_item.added", "output_index": index, "item": item}),
        );
    }

    fn delta(&mut self, event: Value) {
        let wait = if self.deltas == 0 {
            Duration::ZERO
        } else {
            self.answer.script.token_delay
        };
        self.deltas += 1;
        self.push_after(wait, event);
        if let Some(message) = &self.answer.script.stream_error
            && self.deltas == 1
        {
            self.fail(message);
        }
    }

    fn fail(&mut self, message: &str) {
        let error = json!({"code": "server_error", "message": message});
        self.push(
            json!({"type": "error", "code": "server_error", "message": message, "param": null}),
        );
        let mut failed = self.answer.response("failed", Vec::new());
        failed["error"] = error;
        self.push(json!({"type": "response.failed", "response": failed}));
        self.closed = true;
    }

    fn done(&mut self, index: usize, item: Value) {
        self.push(
            json!({"type": "response.output_item.done", "output_index": index, "item": item}),
        );
    }

    fn reasoning(&mut self, index: usize, item: Value) {
        let id = item["id"].clone();
        let text = item["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.added(
            index,
            json!({"type": "reasoning", "id": id, "summary": [], "content": []}),
        );
        let at = json!({"item_id": id, "output_index": index});
        // The summary streams first, as OpenAI's reasoning models send it.
        if self.answer.summary {
            let part = json!({"type": "summary_text", "text": ""});
            self.push(merged(json!({"type": "response.reasoning_summary_part.added", "summary_index": 0, "part": part}), &at));
            for piece in pieces(&text) {
                self.delta(merged(json!({"type": "response.reasoning_summary_text.delta", "summary_index": 0, "delta": piece}), &at));
            }
            self.push(merged(json!({"type": "response.reasoning_summary_text.done", "summary_index": 0, "text": text}), &at));
            let part = json!({"type": "summary_text", "text": text});
            self.push(merged(json!({"type": "response.reasoning_summary_part.done", "summary_index": 0, "part": part}), &at));
        }
        for piece in pieces(&text) {
            self.delta(merged(json!({"type": "response.reasoning_text.delta", "content_index": 0, "delta": piece}), &at));
        }
        self.push(merged(
            json!({"type": "response.reasoning_text.done", "content_index": 0, "text": text}),
            &at,
        ));
        self.done(index, item);
    }

    fn message(&mut self, index: usize, item: Value) {
        let id = item["id"].clone();
        self.added(
            index,
            json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []}),
        );
        let parts = item["content"].as_array().cloned().unwrap_or_default();
        for (content_index, part) in parts.into_iter().enumerate() {
            let at = json!({"item_id": id, "output_index": index, "content_index": content_index});
            if part["type"] == "refusal" {
                self.refusal_part(&at, part);
            } else {
                self.text_part(&at, part);
            }
        }
        self.done(index, item);
    }

    fn text_part(&mut self, at: &Value, part: Value) {
        let text = part["text"].as_str().unwrap_or_default().to_owned();
        let logprobs = self.answer.logprobs;
        let mut empty = json!({"type": "output_text", "text": "", "annotations": []});
        if logprobs.is_some() {
            empty["logprobs"] = json!([]);
        }
        self.push(merged(
            json!({"type": "response.content_part.added", "part": empty}),
            at,
        ));
        let pieces = if self.answer.script.one_piece {
            vec![text.clone()]
        } else {
            pieces(&text)
        };
        for piece in pieces {
            let mut delta = merged(
                json!({"type": "response.output_text.delta", "delta": piece}),
                at,
            );
            if let Some(top) = logprobs {
                delta["logprobs"] = json!([logprob(&piece, top)]);
            }
            self.delta(delta);
        }
        let mut done = merged(
            json!({"type": "response.output_text.done", "text": text}),
            at,
        );
        if let Some(logprobs) = part.get("logprobs") {
            done["logprobs"] = logprobs.clone();
        }
        self.push(done);
        self.push(merged(
            json!({"type": "response.content_part.done", "part": part}),
            at,
        ));
    }

    fn refusal_part(&mut self, at: &Value, part: Value) {
        let refusal = part["refusal"].as_str().unwrap_or_default().to_owned();
        let empty = json!({"type": "refusal", "refusal": ""});
        self.push(merged(
            json!({"type": "response.content_part.added", "part": empty}),
            at,
        ));
        for piece in pieces(&refusal) {
            self.delta(merged(
                json!({"type": "response.refusal.delta", "delta": piece}),
                at,
            ));
        }
        self.push(merged(
            json!({"type": "response.refusal.done", "refusal": refusal}),
            at,
        ));
        self.push(merged(
            json!({"type": "response.content_part.done", "part": part}),
            at,
        ));
    }

    fn call(&mut self, index: usize, item: Value) {
        let mut opening = item.clone();
        opening["arguments"] = json!("");
        opening["status"] = json!("in_progress");
        self.added(index, opening);
        let at = json!({"item_id": item["id"], "output_index": index});
        let arguments = item["arguments"].as_str().unwrap_or_default().to_owned();
        for piece in argument_pieces(&arguments) {
            self.delta(merged(
                json!({"type": "response.function_call_arguments.delta", "delta": piece}),
                &at,
            ));
        }
        let done = json!({"type": "response.function_call_arguments.done", "name": item["name"], "arguments": arguments});
        self.push(merged(done, &at));
        self.done(index, item);
    }
}

/// `event` with the fields of `at` (which item, which part) added.
fn merged(mut event: Value, at: &Value) -> Value {
    if let (Some(event), Some(at)) = (event.as_object_mut(), at.as_object()) {
        event.extend(at.clone());
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responses::convert;
    use crate::script::{self, Latency};

    /// The events a request streams, parsed back from the frames.
    fn events_for(body: Value) -> Vec<Value> {
        let chat = convert::chat_body(&body);
        let script = script::from_chat_request_echoing(&chat, &body, Latency::default());
        let answer = Answer::new(&body, &chat, script, 1);
        let mut events = Events::new(&answer);
        events.push(json!({"type": "response.created"}));
        for (index, item) in answer.call_items().into_iter().enumerate() {
            events.call(index, item);
        }
        if let Some(item) = answer.message_item() {
            events.message(0, item);
        }
        events
            .frames
            .iter()
            .map(|frame| {
                let text = std::str::from_utf8(&frame.bytes).unwrap();
                let (head, data) = text.split_once('\n').unwrap();
                let event: Value =
                    serde_json::from_str(data.trim().strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(head, format!("event: {}", event["type"].as_str().unwrap()));
                event
            })
            .collect()
    }

    #[test]
    fn streamed_tool_calls_deliver_their_arguments_in_pieces() {
        let args = r#"{"city":"Paris","days":3}"#;
        let events =
            events_for(json!({"model": "m", "input": format!("go [[tool:get_weather:{args}]]")}));
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
            ]
        );
        let numbers: Vec<u64> = events
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, (0..7).collect::<Vec<_>>());
        let added = &events[1]["item"];
        assert_eq!(
            (&added["name"], &added["call_id"], &added["arguments"]),
            (&json!("get_weather"), &json!("call_mock_0"), &json!(""))
        );
        let streamed: String = events[2..5]
            .iter()
            .map(|e| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(streamed, args);
        assert!(events[2..6].iter().all(|e| e["item_id"] == "fc_mock_0"));
        assert_eq!(events[5]["arguments"], args);
        assert_eq!(events[6]["item"]["arguments"], args);
        assert_eq!(events[6]["item"]["status"], "completed");
    }

    #[test]
    fn a_stream_error_fails_the_response_after_the_first_delta() {
        let events =
            events_for(json!({"model": "m", "input": "[[reply:a b c]] [[stream_error:boom]]"}));
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "error",
                "response.failed",
            ]
        );
        assert_eq!(events[3]["delta"], "a ");
        assert_eq!(events[4]["message"], "boom");
        assert_eq!(events[5]["response"]["status"], "failed");
        assert_eq!(events[5]["response"]["error"]["message"], "boom");
    }
}
