//! `POST /v1/responses`, stateless and scripted like Chat Completions: the request
//! is translated to the Chat body the gateway would send for the same turn (see
//! [`convert`]) and scripted from it, so every directive and the reflection text
//! come out as they do over Chat; `[[echo_request]]` echoes that Chat body and
//! `[[echo_raw_request]]` the Responses body as received. The answer is a Response object, or its SSE events (see
//! [`stream`]).
//!
//! Output items, in order: a `reasoning` item (`rs_mock_0`) when the script
//! reasons, with one `summary_text` part when the request asked for
//! `reasoning.summary` and an `encrypted_content` (`mock-sealed:` and the
//! reasoning text in base64) when `include` has `reasoning.encrypted_content`;
//! a `message` item (`msg_mock_0`) with the text and any refusal, with logprobs
//! when asked for; a `function_call` item (`fc_mock_N`, `call_mock_N`) per
//! scripted call. `[[finish:length]]` makes the response `incomplete` with
//! reason `max_output_tokens`.

pub mod convert;
mod stream;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::MockState;
use crate::generation::{self, AbandonGuard, Usage, call_id, logprob, pieces};
use crate::script::{self, Script};

pub(crate) async fn route(State(state): State<MockState>, body: Bytes) -> Response {
    let pending = AbandonGuard::new(&state.stats);
    let response = answer(state, body).await;
    pending.answered();
    response
}

async fn answer(state: MockState, body: Bytes) -> Response {
    let (body, number) =
        match generation::accept(&state, &state.stats.responses_requests, &body).await {
            Ok(accepted) => accepted,
            Err(response) => return response,
        };
    let chat = convert::chat_body(&body);
    let script = script::from_chat_request_echoing(&chat, &body, state.latency);
    if let Some(response) = generation::status_faults(&script).await {
        return response;
    }
    let answer = Answer::new(&body, &chat, script, number);
    if body["stream"].as_bool().unwrap_or(false) {
        return stream::respond(&state.stats, &answer);
    }
    if let Some(message) = &answer.script.stream_error {
        return generation::generation_failure(message);
    }
    if !answer.script.ttft.is_zero() {
        tokio::time::sleep(answer.script.ttft).await;
    }
    axum::Json(answer.response(answer.final_status(), answer.output())).into_response()
}

/// A scripted answer and what the request asked of its shape.
pub(crate) struct Answer {
    pub script: Script,
    pub id: String,
    pub model: Value,
    /// The reasoning item carries a summary part.
    pub summary: bool,
    /// The reasoning item carries `encrypted_content`.
    pub encrypted: bool,
    /// Output text carries logprobs, with this many alternatives.
    pub logprobs: Option<u64>,
    /// The request's settings, echoed in the Response object as OpenAI does.
    echoed: serde_json::Map<String, Value>,
}

impl Answer {
    fn new(body: &Value, chat: &Value, script: Script, number: u64) -> Self {
        let include = body["include"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        Self {
            script,
            id: format!("resp_mock_{number}"),
            model: body["model"].clone(),
            summary: body["reasoning"]["summary"]
                .as_str()
                .is_some_and(|s| s != "none"),
            encrypted: include.iter().any(|i| i == "reasoning.encrypted_content"),
            // The translation already decided, as the gateway's does.
            logprobs: (chat["logprobs"] == true)
                .then(|| chat["top_logprobs"].as_u64().unwrap_or(0)),
            echoed: echoed(body),
        }
    }

    /// Why the response is incomplete, if it is.
    fn incomplete_reason(&self) -> Option<&'static str> {
        match self.script.finish_reason.as_str() {
            "length" => Some("max_output_tokens"),
            "content_filter" => Some("content_filter"),
            _ => None,
        }
    }

    pub fn final_status(&self) -> &'static str {
        match self.incomplete_reason() {
            Some(_) => "incomplete",
            None => "completed",
        }
    }

    pub fn reasoning_item(&self) -> Option<Value> {
        let reasoning = self.script.reasoning.as_deref()?;
        let summary = if self.summary {
            json!([{"type": "summary_text", "text": reasoning}])
        } else {
            json!([])
        };
        let mut item = json!({"type": "reasoning", "id": "rs_mock_0", "summary": summary,
            "content": [{"type": "reasoning_text", "text": reasoning}]});
        if self.encrypted {
            let sealed = base64::engine::general_purpose::STANDARD.encode(reasoning);
            item["encrypted_content"] = json!(format!("mock-sealed:{sealed}"));
        }
        Some(item)
    }

    pub fn text_part(&self) -> Option<Value> {
        let text = self.script.text.as_deref()?;
        let mut part = json!({"type": "output_text", "text": text, "annotations": []});
        if let Some(top) = self.logprobs {
            let logprobs: Vec<Value> = pieces(text).iter().map(|p| logprob(p, top)).collect();
            part["logprobs"] = json!(logprobs);
        }
        Some(part)
    }

    pub fn refusal_part(&self) -> Option<Value> {
        let refusal = self.script.refusal.as_deref()?;
        Some(json!({"type": "refusal", "refusal": refusal}))
    }

    pub fn message_item(&self) -> Option<Value> {
        let content: Vec<Value> = [self.text_part(), self.refusal_part()]
            .into_iter()
            .flatten()
            .collect();
        if content.is_empty() {
            return None;
        }
        Some(
            json!({"type": "message", "id": "msg_mock_0", "status": self.final_status(),
            "role": "assistant", "content": content}),
        )
    }

    pub fn call_items(&self) -> Vec<Value> {
        self.script
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| {
                json!({"type": "function_call", "id": format!("fc_mock_{i}"), "call_id": call_id(i),
                    "name": name, "arguments": args, "status": "completed"})
            })
            .collect()
    }

    pub fn output(&self) -> Vec<Value> {
        let mut output: Vec<Value> = self.reasoning_item().into_iter().collect();
        output.extend(self.message_item());
        output.extend(self.call_items());
        output
    }

    /// The Response object with this status and output.
    pub fn response(&self, status: &str, output: Vec<Value>) -> Value {
        let incomplete = (status == "incomplete")
            .then(|| {
                self.incomplete_reason()
                    .map(|reason| json!({"reason": reason}))
            })
            .flatten();
        let finished = matches!(status, "completed" | "incomplete");
        let mut response = json!({
            "id": self.id, "object": "response", "created_at": 0,
            "completed_at": finished.then_some(0), "status": status,
            "error": null, "incomplete_details": incomplete, "model": self.model,
            "output": output, "usage": self.usage(),
            "previous_response_id": null, "background": false,
        });
        if let Some(fields) = response.as_object_mut() {
            fields.extend(self.echoed.clone());
        }
        response
    }

    fn usage(&self) -> Value {
        if !self.script.usage {
            return Value::Null;
        }
        let usage = Usage::of(&self.script);
        json!({
            "input_tokens": usage.prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage.output(),
            "output_tokens_details": {"reasoning_tokens": usage.reasoning},
            "total_tokens": usage.prompt + usage.output(),
        })
    }
}

/// The settings a Response object repeats from its request, with OpenAI's
/// defaults for those the request left out: every field the schema requires is
/// there, so that strict clients parse the mock's answer.
fn echoed(body: &Value) -> serde_json::Map<String, Value> {
    let defaults = [
        ("instructions", Value::Null),
        ("tools", json!([])),
        ("tool_choice", json!("auto")),
        ("truncation", json!("disabled")),
        ("parallel_tool_calls", json!(true)),
        ("text", json!({"format": {"type": "text"}})),
        ("top_p", json!(1.0)),
        ("temperature", json!(1.0)),
        ("presence_penalty", json!(0.0)),
        ("frequency_penalty", json!(0.0)),
        ("top_logprobs", json!(0)),
        ("reasoning", Value::Null),
        ("max_output_tokens", Value::Null),
        ("max_tool_calls", Value::Null),
        ("store", json!(true)),
        ("service_tier", json!("default")),
        ("metadata", json!({})),
        ("safety_identifier", Value::Null),
        ("prompt_cache_key", Value::Null),
        ("user", Value::Null),
    ];
    defaults
        .into_iter()
        .map(|(key, default)| {
            let value = body.get(key).filter(|v| !v.is_null()).cloned();
            (key.to_owned(), value.unwrap_or(default))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Latency;

    fn answer_to(body: Value) -> Value {
        let chat = convert::chat_body(&body);
        let script = script::from_chat_request_echoing(&chat, &body, Latency::default());
        let answer = Answer::new(&body, &chat, script, 1);
        answer.response(answer.final_status(), answer.output())
    }

    #[test]
    fn reasoning_text_and_calls_come_out_in_order() {
        let response = answer_to(json!({"model": "m",
            "input": "go [[reasoning:deep thought]] [[reply:done]] [[tool:f:{\"a\":1}]]",
            "reasoning": {"summary": "auto"}, "include": ["reasoning.encrypted_content"]}));
        assert_eq!(response["status"], "completed");
        let output = response["output"].as_array().unwrap();
        let kinds: Vec<&str> = output.iter().map(|i| i["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["reasoning", "message", "function_call"]);
        assert_eq!(output[0]["summary"][0]["text"], "deep thought");
        assert_eq!(
            output[0]["encrypted_content"],
            "mock-sealed:ZGVlcCB0aG91Z2h0"
        );
        assert_eq!(
            output[1]["content"][0],
            json!({"type": "output_text", "text": "done", "annotations": []})
        );
        assert_eq!(output[2]["call_id"], "call_mock_0");
        assert_eq!(output[2]["arguments"], "{\"a\":1}");
        assert_eq!(
            response["usage"]["output_tokens_details"]["reasoning_tokens"],
            2
        );
    }

    #[test]
    fn length_is_incomplete_and_no_usage_drops_usage() {
        let response = answer_to(json!({"model": "m", "input": "[[finish:length]] [[no_usage]]"}));
        assert_eq!(response["status"], "incomplete");
        assert_eq!(
            response["incomplete_details"]["reason"],
            "max_output_tokens"
        );
        assert_eq!(response["output"][0]["status"], "incomplete");
        assert!(response["usage"].is_null());
    }

    #[test]
    fn plain_reasoning_has_no_summary_nor_seal_and_echo_shows_the_responses_body() {
        let body = json!({"model": "mock-reasoning", "input": "hi [[echo_raw_request]]", "top_logprobs": 1});
        let response = answer_to(body.clone());
        assert_eq!(response["output"][0]["summary"], json!([]));
        assert!(response["output"][0].get("encrypted_content").is_none());
        let part = &response["output"][1]["content"][0];
        assert_eq!(
            serde_json::from_str::<Value>(part["text"].as_str().unwrap()).unwrap(),
            body
        );
        assert_eq!(
            part["logprobs"][0]["top_logprobs"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
