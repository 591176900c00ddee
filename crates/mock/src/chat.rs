//! `POST /v1/chat/completions`: the scripted answer as a chat completion, or as
//! a stream of chunks ended by `[DONE]`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::MockState;
use crate::generation::{self, AbandonGuard, Usage, argument_pieces, call_id, logprob, pieces};
use crate::script::{self, Script};
use crate::sse::{self, Ending, Frame};

pub(crate) async fn route(State(state): State<MockState>, body: Bytes) -> Response {
    let pending = AbandonGuard::new(&state.stats);
    let response = answer(state, body).await;
    pending.answered();
    response
}

async fn answer(state: MockState, body: Bytes) -> Response {
    let body = match generation::accept(&state, &state.stats.chat_requests, &body).await {
        Ok((body, _)) => body,
        Err(response) => return response,
    };
    let script = script::from_chat_request(&body, state.latency);
    if let Some(response) = generation::status_faults(&script).await {
        return response;
    }
    let logprobs = body["logprobs"].as_bool().unwrap_or(false);
    let top_logprobs = body["top_logprobs"].as_u64().unwrap_or(0);
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if body["stream"].as_bool().unwrap_or(false) {
        let include_usage = body["stream_options"]["include_usage"]
            .as_bool()
            .unwrap_or(false);
        let chunks = chunks(
            &script,
            &model,
            logprobs.then_some(top_logprobs),
            include_usage,
        );
        return sse::respond(
            &state.stats,
            frames(chunks, &script),
            Ending {
                cut: script.cut_after,
                hold: script.hold_after_finish,
                tail: Some(b"data: [DONE]\n\n"),
            },
        );
    }
    if let Some(message) = &script.stream_error {
        return generation::generation_failure(message);
    }
    // tokio rounds even a zero sleep up to its next millisecond tick: a mock
    // told to answer at once must not wait.
    if !script.ttft.is_zero() {
        tokio::time::sleep(script.ttft).await;
    }
    axum::Json(completion(&script, model, logprobs.then_some(top_logprobs))).into_response()
}

fn completion(script: &Script, model: String, logprobs: Option<u64>) -> Value {
    let mut message = json!({"role": "assistant", "content": script.text});
    if let Some(reasoning) = &script.reasoning {
        message["reasoning_content"] = json!(reasoning);
    }
    if let Some(refusal) = &script.refusal {
        message["refusal"] = json!(refusal);
    }
    if !script.tool_calls.is_empty() {
        message["tool_calls"] = script
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| json!({"id": call_id(i), "type": "function", "function": {"name": name, "arguments": args}}))
            .collect();
    }
    let mut choice = json!({"index": 0, "message": message, "finish_reason": script.finish_reason});
    if let Some(top) = logprobs
        && let Some(text) = &script.text
    {
        let content: Vec<Value> = pieces(text).iter().map(|p| logprob(p, top)).collect();
        choice["logprobs"] = json!({"content": content});
    }
    let mut completion = json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
        "choices": [choice],
    });
    if script.usage {
        completion["usage"] = usage(script);
    }
    completion
}

fn usage(script: &Script) -> Value {
    let usage = Usage::of(script);
    json!({
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.output(),
        "total_tokens": usage.prompt + usage.output(),
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    })
}

/// The stream's chunks, from the role chunk to the finish chunk and usage.
fn chunks(script: &Script, model: &str, logprobs: Option<u64>, include_usage: bool) -> Vec<Value> {
    let chunk = |delta: Value, finish: Option<&str>, extra: Option<(&str, Value)>| {
        let mut choice = json!({"index": 0, "delta": delta, "finish_reason": finish});
        if let Some((key, value)) = extra {
            choice[key] = value;
        }
        json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [choice]})
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        None,
        None,
    )];
    if let Some(reasoning) = &script.reasoning {
        chunks.extend(
            pieces(reasoning)
                .into_iter()
                .map(|p| chunk(json!({"reasoning_content": p}), None, None)),
        );
    }
    if let Some(text) = &script.text
        && script.one_piece
    {
        chunks.push(chunk(json!({"content": text}), None, None));
    } else if let Some(text) = &script.text {
        for piece in pieces(text) {
            let extra =
                logprobs.map(|top| ("logprobs", json!({"content": [logprob(&piece, top)]})));
            chunks.push(chunk(json!({"content": piece}), None, extra));
        }
    }
    if let Some(refusal) = &script.refusal {
        chunks.extend(
            pieces(refusal)
                .into_iter()
                .map(|p| chunk(json!({"refusal": p}), None, None)),
        );
    }
    for (index, (name, args)) in script.tool_calls.iter().enumerate() {
        chunks.push(chunk(
            json!({"tool_calls": [{"index": index, "id": call_id(index), "type": "function", "function": {"name": name, "arguments": ""}}]}),
            None,
            None,
        ));
        for piece in argument_pieces(args) {
            chunks.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                None,
                None,
            ));
        }
    }
    if let Some(message) = &script.stream_error {
        // vLLM's shape for a failure mid-stream: an error object in place of a
        // chunk (then `[DONE]`), after the first token.
        chunks.truncate(2);
        chunks.push(json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}}));
        return chunks;
    }
    chunks.push(chunk(json!({}), Some(&script.finish_reason), None));
    if include_usage && script.usage {
        // After the finish chunk, as vLLM and OpenAI send it.
        chunks.push(json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [], "usage": usage(script)}));
    }
    chunks
}

fn frames(chunks: Vec<Value>, script: &Script) -> Vec<Frame> {
    let total = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, chunk)| {
            // Chunk 0 opens the message (its role); chunk 1 is the first token,
            // sent with it, so that `ttft` is the time to the first token and not
            // that plus one `delay`. The delay then separates the tokens.
            let wait = match index {
                0 => script.ttft,
                1 => Duration::ZERO,
                _ if index + 1 < total => script.token_delay,
                _ => Duration::ZERO,
            };
            Frame::new(wait, format!("data: {chunk}\n\n"))
        })
        .collect()
}
