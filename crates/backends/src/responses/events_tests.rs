//! Responses events (streamed and whole) translated into model events.

use super::*;
use antwort_api::{LogProb, TopLogProb, Usage};
use serde_json::json;

/// The model events of `events` (each one SSE event's data), and how the
/// last one ended.
fn run(events: &[Value]) -> (Vec<ModelEvent>, Result<Translated, BackendError>) {
    let mut translator = ResponsesTranslator::default();
    let mut out = VecDeque::new();
    let mut last = Ok(Translated::Events);
    for event in events {
        last = translator.translate(&event.to_string(), &mut out);
        if !matches!(last, Ok(Translated::Events)) {
            break;
        }
    }
    (out.into(), last)
}

fn start(id: &str) -> ModelEvent {
    ModelEvent::ItemStart {
        id: Some(id.into()),
    }
}

fn text(text: &str) -> ModelEvent {
    ModelEvent::TextDelta {
        text: text.into(),
        logprobs: Vec::new(),
    }
}

fn call(index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> ModelEvent {
    ModelEvent::ToolCallDelta {
        index,
        id: id.map(str::to_owned),
        name: name.map(str::to_owned),
        arguments: arguments.into(),
    }
}

fn added(output_index: u64, item: Value) -> Value {
    json!({"type": "response.output_item.added", "output_index": output_index, "item": item, "sequence_number": 1})
}

fn done(output_index: u64, item: Value) -> Value {
    json!({"type": "response.output_item.done", "output_index": output_index, "item": item})
}

fn arguments(item_id: &str, output_index: u64, delta: &str) -> Value {
    json!({"type": "response.function_call_arguments.delta", "item_id": item_id,
           "output_index": output_index, "delta": delta})
}

fn completed(output: Value) -> Value {
    json!({"type": "response.completed", "response": {"status": "completed", "output": output,
           "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8,
                     "input_tokens_details": {"cached_tokens": 1},
                     "output_tokens_details": {"reasoning_tokens": 2}}}})
}

fn usage() -> ModelEvent {
    ModelEvent::Usage(Usage {
        input_tokens: 5,
        input_tokens_details: antwort_api::InputTokensDetails { cached_tokens: 1 },
        output_tokens: 3,
        output_tokens_details: antwort_api::OutputTokensDetails {
            reasoning_tokens: 2,
        },
        total_tokens: 8,
    })
}

fn fc(id: &str, call_id: &str, name: &str, arguments: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
           "arguments": arguments, "status": "in_progress"})
}

#[test]
fn streamed_text_with_logprobs_and_an_annotation() {
    let message = json!({"type": "message", "id": "msg_b", "role": "assistant", "status": "in_progress", "content": []});
    let (events, end) = run(&[
        json!({"type": "response.created", "response": {"status": "in_progress", "output": []}}),
        added(0, message.clone()),
        json!({"type": "response.content_part.added", "item_id": "msg_b", "output_index": 0,
               "content_index": 0, "part": {"type": "output_text", "text": ""}}),
        json!({"type": "response.output_text.delta", "item_id": "msg_b", "output_index": 0,
               "content_index": 0, "delta": "Hel", "obfuscation": "xyz",
               "logprobs": [{"token": "Hel", "logprob": -0.5, "top_logprobs": [{"token": "He", "logprob": -1.0}]}]}),
        json!({"type": "response.output_text.delta", "item_id": "msg_b", "output_index": 0,
               "content_index": 0, "delta": "lo", "logprobs": []}),
        json!({"type": "response.output_text.annotation.added", "item_id": "msg_b", "output_index": 0,
               "content_index": 0, "annotation_index": 0,
               "annotation": {"type": "url_citation", "url": "https://a", "title": "A", "start_index": 0, "end_index": 5}}),
        json!({"type": "response.output_text.done", "item_id": "msg_b", "output_index": 0, "text": "Hello"}),
        done(
            0,
            json!({"type": "message", "id": "msg_b", "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": "Hello", "annotations": []}]}),
        ),
        completed(json!([])),
    ]);
    assert_eq!(end.unwrap(), Translated::Done);
    assert_eq!(
        events,
        [
            start("msg_b"),
            ModelEvent::TextDelta {
                text: "Hel".into(),
                logprobs: vec![LogProb {
                    token: "Hel".into(),
                    logprob: -0.5,
                    bytes: b"Hel".to_vec(),
                    top_logprobs: vec![TopLogProb {
                        token: "He".into(),
                        logprob: -1.0,
                        bytes: b"He".to_vec(),
                    }],
                }],
            },
            text("lo"),
            ModelEvent::Annotation(
                json!({"type": "url_citation", "url": "https://a", "title": "A",
                                          "start_index": 0, "end_index": 5})
            ),
            usage(),
            ModelEvent::Finish(FinishReason::Stop),
        ]
    );
}

#[test]
fn call_arguments_split_across_deltas() {
    let (events, end) = run(&[
        added(0, fc("fc_b", "call_1", "weather", "")),
        arguments("fc_b", 0, "{\"ci"),
        arguments("fc_b", 0, "ty\":"),
        arguments("fc_b", 0, "\"Bern\"}"),
        json!({"type": "response.function_call_arguments.done", "item_id": "fc_b", "output_index": 0,
               "arguments": "{\"city\":\"Bern\"}"}),
        done(0, fc("fc_b", "call_1", "weather", "{\"city\":\"Bern\"}")),
        completed(json!([])),
    ]);
    assert_eq!(end.unwrap(), Translated::Done);
    assert_eq!(
        events,
        [
            start("fc_b"),
            call(0, Some("call_1"), Some("weather"), ""),
            call(0, None, None, "{\"ci"),
            call(0, None, None, "ty\":"),
            call(0, None, None, "\"Bern\"}"),
            usage(),
            ModelEvent::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn two_parallel_calls_keep_their_own_arguments() {
    // The second call's deltas name it only by output index, the first's only
    // by item id: both find their call.
    let (events, _) = run(&[
        added(0, fc("fc_a", "call_a", "weather", "")),
        added(1, fc("fc_b", "call_b", "time", "")),
        json!({"type": "response.function_call_arguments.delta", "item_id": "fc_a", "delta": "{\"city\":"}),
        json!({"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "{\"tz\":"}),
        json!({"type": "response.function_call_arguments.delta", "item_id": "fc_a", "delta": "\"Bern\"}"}),
        json!({"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "\"CET\"}"}),
        done(0, fc("fc_a", "call_a", "weather", "{\"city\":\"Bern\"}")),
        done(1, fc("fc_b", "call_b", "time", "{\"tz\":\"CET\"}")),
        completed(json!([])),
    ]);
    assert_eq!(
        events,
        [
            start("fc_a"),
            call(0, Some("call_a"), Some("weather"), ""),
            start("fc_b"),
            call(1, Some("call_b"), Some("time"), ""),
            call(0, None, None, "{\"city\":"),
            call(1, None, None, "{\"tz\":"),
            call(0, None, None, "\"Bern\"}"),
            call(1, None, None, "\"CET\"}"),
            usage(),
            ModelEvent::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn arguments_that_arrive_only_with_the_finished_item() {
    let (events, _) = run(&[
        added(0, fc("fc_b", "call_1", "weather", "")),
        done(0, fc("fc_b", "call_1", "weather", "{\"city\":\"Bern\"}")),
        // A call the server never added, finished whole.
        done(1, fc("fc_c", "call_2", "time", "{}")),
        completed(json!([])),
    ]);
    assert_eq!(
        events,
        [
            start("fc_b"),
            call(0, Some("call_1"), Some("weather"), ""),
            call(0, None, None, "{\"city\":\"Bern\"}"),
            start("fc_c"),
            call(1, Some("call_2"), Some("time"), "{}"),
            usage(),
            ModelEvent::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn arguments_done_adds_only_what_did_not_stream() {
    let (events, _) = run(&[
        added(0, fc("fc_b", "call_1", "weather", "")),
        arguments("fc_b", 0, "{\"city\""),
        json!({"type": "response.function_call_arguments.done", "item_id": "fc_b", "output_index": 0,
               "arguments": "{\"city\":\"Bern\"}"}),
        done(0, fc("fc_b", "call_1", "weather", "{\"city\":\"Bern\"}")),
    ]);
    assert_eq!(
        events,
        [
            start("fc_b"),
            call(0, Some("call_1"), Some("weather"), ""),
            call(0, None, None, "{\"city\""),
            call(0, None, None, ":\"Bern\"}"),
        ]
    );
}

#[test]
fn deltas_of_a_call_never_added_get_its_name_when_it_finishes() {
    let (events, _) = run(&[
        arguments("fc_b", 0, "{\"a\":"),
        arguments("fc_b", 0, "1}"),
        done(0, fc("fc_b", "call_1", "f", "{\"a\":1}")),
    ]);
    assert_eq!(
        events,
        [
            start("fc_b"),
            call(0, None, None, "{\"a\":"),
            call(0, None, None, "1}"),
            call(0, Some("call_1"), Some("f"), ""),
        ]
    );
}

#[test]
fn reasoning_with_a_summary_and_encrypted_content() {
    let (events, _) = run(&[
        added(0, json!({"type": "reasoning", "id": "rs_b", "summary": []})),
        json!({"type": "response.reasoning_summary_part.added", "item_id": "rs_b", "output_index": 0,
               "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
        json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs_b", "output_index": 0,
               "summary_index": 0, "delta": "Thinking "}),
        json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs_b", "output_index": 0,
               "summary_index": 0, "delta": "hard"}),
        json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs_b", "output_index": 0,
               "summary_index": 1, "delta": "Then"}),
        json!({"type": "response.reasoning_text.delta", "item_id": "rs_b", "output_index": 0,
               "content_index": 0, "delta": "raw"}),
        json!({"type": "response.reasoning.delta", "item_id": "rs_b", "output_index": 0,
               "content_index": 0, "delta": " text"}),
        done(
            0,
            json!({"type": "reasoning", "id": "rs_b", "encrypted_content": "gAAAA-blob",
                       "summary": [{"type": "summary_text", "text": "Thinking hard"},
                                   {"type": "summary_text", "text": "Then"}],
                       "content": [{"type": "reasoning_text", "text": "raw text"}]}),
        ),
        added(1, json!({"type": "message", "id": "msg_b", "content": []})),
        json!({"type": "response.output_text.delta", "item_id": "msg_b", "output_index": 1, "delta": "42"}),
        completed(json!([])),
    ]);
    assert_eq!(
        events,
        [
            start("rs_b"),
            ModelEvent::ReasoningSummaryDelta {
                summary_index: 0,
                text: "Thinking ".into()
            },
            ModelEvent::ReasoningSummaryDelta {
                summary_index: 0,
                text: "hard".into()
            },
            ModelEvent::ReasoningSummaryDelta {
                summary_index: 1,
                text: "Then".into()
            },
            ModelEvent::ReasoningDelta("raw".into()),
            ModelEvent::ReasoningDelta(" text".into()),
            ModelEvent::ReasoningEncrypted("gAAAA-blob".into()),
            start("msg_b"),
            text("42"),
            usage(),
            ModelEvent::Finish(FinishReason::Stop),
        ]
    );
}

#[test]
fn incomplete_responses_say_why() {
    let incomplete = |reason: &str| {
        json!({"type": "response.incomplete", "response": {"status": "incomplete",
               "incomplete_details": {"reason": reason}, "output": []}})
    };
    let text_delta =
        json!({"type": "response.output_text.delta", "output_index": 0, "delta": "cut"});
    let (events, end) = run(&[text_delta.clone(), incomplete("max_output_tokens")]);
    assert_eq!(end.unwrap(), Translated::Done);
    assert_eq!(
        events,
        [
            ModelEvent::ItemStart { id: None },
            text("cut"),
            ModelEvent::Finish(FinishReason::Length)
        ]
    );
    let (events, _) = run(&[text_delta, incomplete("content_filter")]);
    assert_eq!(
        events.last(),
        Some(&ModelEvent::Finish(FinishReason::ContentFilter))
    );
}

#[test]
fn errors_and_failures_end_the_stream_with_an_error() {
    let openai =
        json!({"type": "error", "code": "server_error", "message": "overloaded", "param": null});
    let (_, end) = run(&[openai]);
    let error = end.unwrap_err();
    assert!(error.is_retryable());
    assert!(error.to_string().contains("overloaded"), "{error}");
    assert!(error.to_string().contains("server_error"), "{error}");
    let nested = json!({"type": "error", "error": {"type": "server_error", "code": null, "message": "gone"}});
    let (_, end) = run(&[nested]);
    assert!(end.unwrap_err().to_string().contains("gone"));
    let failed = json!({"type": "response.failed", "response": {"status": "failed",
                        "error": {"code": "rate_limit_exceeded", "message": "slow down"}}});
    let (events, end) = run(&[
        json!({"type": "response.output_text.delta", "output_index": 0, "delta": "a"}),
        failed,
    ]);
    assert!(end.unwrap_err().to_string().contains("slow down"));
    assert_eq!(
        events.len(),
        2,
        "what came before the failure stays: {events:?}"
    );
}

#[test]
fn an_end_marker_before_the_terminal_event_is_an_interruption() {
    let mut translator = ResponsesTranslator::default();
    let mut out = VecDeque::new();
    let error = translator.translate("[DONE]", &mut out).unwrap_err();
    assert!(matches!(
        error.kind,
        antwort_engine::BackendErrorKind::Interrupted(_)
    ));
    translator
        .translate(&completed(json!([])).to_string(), &mut out)
        .unwrap();
    assert_eq!(
        translator.translate("[DONE]", &mut out).unwrap(),
        Translated::Done
    );
}

#[test]
fn unknown_events_are_ignored_and_garbage_is_not_the_protocol() {
    let (events, end) = run(&[
        json!({"type": "response.in_progress", "response": {}}),
        json!({"type": "response.future_thing.delta", "whatever": [1, 2]}),
        json!({"keepalive": true}),
        json!({"type": "response.web_search_call.searching", "item_id": "ws_1", "output_index": 0}),
    ]);
    assert!(events.is_empty());
    assert_eq!(end.unwrap(), Translated::Events);
    let mut out = VecDeque::new();
    let error = ResponsesTranslator::default()
        .translate("not json", &mut out)
        .unwrap_err();
    assert!(!error.is_retryable());
    let wrong = json!({"type": "response.output_text.delta", "delta": 7}).to_string();
    assert!(
        ResponsesTranslator::default()
            .translate(&wrong, &mut out)
            .is_err()
    );
}

#[test]
fn a_hosted_search_the_backend_ran_is_passed_on_whole() {
    let search = json!({"type": "web_search_call", "id": "ws_b", "status": "completed",
                        "action": {"type": "search", "query": "rust"}});
    let (events, _) = run(&[
        added(
            0,
            json!({"type": "web_search_call", "id": "ws_b", "status": "in_progress"}),
        ),
        done(0, search.clone()),
        done(
            1,
            json!({"type": "code_interpreter_call", "id": "ci_b", "status": "completed"}),
        ),
    ]);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], start("ws_b"));
    let ModelEvent::Item(item) = &events[1] else {
        panic!("expected the search item, got {:?}", events[1]);
    };
    assert_eq!(serde_json::to_value(item).unwrap(), search);
}

#[test]
fn a_whole_response_is_the_same_events_as_its_unstreamed_form() {
    let body = json!({"id": "resp_b", "status": "completed", "output": [
        {"type": "reasoning", "id": "rs_b", "summary": [{"type": "summary_text", "text": "s"}],
         "encrypted_content": "blob"},
        {"type": "message", "id": "msg_b", "role": "assistant", "content": [
            {"type": "output_text", "text": "hi", "annotations": [{"type": "url_citation", "url": "u"}]},
            {"type": "refusal", "refusal": "no"}]},
        fc("fc_b", "call_1", "f", "{}")],
        "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8,
                  "input_tokens_details": {"cached_tokens": 1},
                  "output_tokens_details": {"reasoning_tokens": 2}}});
    let events = response_events(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        events,
        [
            start("rs_b"),
            ModelEvent::ReasoningSummaryDelta {
                summary_index: 0,
                text: "s".into()
            },
            ModelEvent::ReasoningEncrypted("blob".into()),
            start("msg_b"),
            text("hi"),
            ModelEvent::Annotation(json!({"type": "url_citation", "url": "u"})),
            ModelEvent::RefusalDelta("no".into()),
            start("fc_b"),
            call(0, Some("call_1"), Some("f"), "{}"),
            usage(),
            ModelEvent::Finish(FinishReason::ToolCalls),
        ]
    );
    let incomplete = json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
                            "output": [{"type": "message", "content": [{"type": "output_text", "text": "cu"}]}]});
    let events = response_events(incomplete.to_string().as_bytes()).unwrap();
    assert_eq!(
        events.last(),
        Some(&ModelEvent::Finish(FinishReason::Length))
    );
    let failed = json!({"status": "failed", "error": {"code": "server_error", "message": "boom"}});
    assert!(response_events(failed.to_string().as_bytes()).is_err());
    assert!(response_events(b"[]").is_err());
}

/// The output the engine's assembler builds from `events`, without the ids it
/// draws at random.
fn assembled(events: Vec<ModelEvent>) -> Value {
    use antwort_engine::assembler::Conclusion;
    let request = antwort_api::CreateResponseRequest::from_json(br#"{"input":"hi"}"#).unwrap();
    let plan = antwort_engine::prepare::plan(
        request,
        Some("m"),
        "resp_1".into(),
        0,
        &[],
        &antwort_engine::Scope::default(),
    )
    .unwrap();
    let mut assembler = antwort_engine::Assembler::new(
        plan.response,
        false,
        antwort_engine::ReasoningEventNames::OpenAi,
    );
    let mut out = Vec::new();
    assembler.start(&mut out);
    for event in events {
        assembler.push(event, &mut out);
    }
    assembler.end_turn(&mut out);
    assembler.conclude(Conclusion::Completed { now: 1 }, &mut out);
    let mut output = serde_json::to_value(&assembler.response().output).unwrap();
    for item in output.as_array_mut().unwrap() {
        item.as_object_mut().unwrap().remove("id");
    }
    output
}

#[test]
fn streamed_and_whole_the_assembler_builds_the_same_output() {
    let reasoning = json!({"type": "reasoning", "id": "rs_b", "summary": [{"type": "summary_text", "text": "plan it"}],
                           "encrypted_content": "blob"});
    let message = json!({"type": "message", "id": "msg_b", "role": "assistant", "status": "completed", "content": [
        {"type": "output_text", "text": "Hello", "annotations": [{"type": "url_citation", "url": "u"}]}]});
    let call_a = fc("fc_a", "call_a", "weather", "{\"city\":\"Bern\"}");
    let call_b = fc("fc_b", "call_b", "time", "{}");
    let whole = json!({"status": "completed", "output": [reasoning, message, call_a, call_b],
                       "usage": {"input_tokens": 5, "output_tokens": 3}});
    let (streamed, end) = run(&[
        added(0, json!({"type": "reasoning", "id": "rs_b", "summary": []})),
        json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs_b", "output_index": 0,
               "summary_index": 0, "delta": "plan "}),
        json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs_b", "output_index": 0,
               "summary_index": 0, "delta": "it"}),
        done(0, reasoning.clone()),
        added(
            1,
            json!({"type": "message", "id": "msg_b", "role": "assistant", "content": []}),
        ),
        json!({"type": "response.output_text.delta", "item_id": "msg_b", "output_index": 1, "delta": "Hel"}),
        json!({"type": "response.output_text.delta", "item_id": "msg_b", "output_index": 1, "delta": "lo"}),
        json!({"type": "response.output_text.annotation.added", "item_id": "msg_b", "output_index": 1,
               "annotation": {"type": "url_citation", "url": "u"}}),
        done(1, message.clone()),
        added(2, fc("fc_a", "call_a", "weather", "")),
        added(3, fc("fc_b", "call_b", "time", "")),
        arguments("fc_a", 2, "{\"city\":"),
        arguments("fc_a", 2, "\"Bern\"}"),
        done(2, call_a.clone()),
        done(3, call_b.clone()),
        json!({"type": "response.completed", "response": whole}),
    ]);
    assert_eq!(end.unwrap(), Translated::Done);
    let unstreamed = response_events(whole.to_string().as_bytes()).unwrap();
    assert_ne!(streamed, unstreamed, "the deltas differ");
    let output = assembled(streamed);
    assert_eq!(output, assembled(unstreamed));
    assert_eq!(
        output,
        json!([
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "plan it"}],
             "content": [], "encrypted_content": "blob", "status": "completed"},
            {"type": "message", "role": "assistant", "status": "completed", "content": [
                {"type": "output_text", "text": "Hello", "annotations": [{"type": "url_citation", "url": "u"}]}]},
            {"type": "function_call", "call_id": "call_a", "name": "weather",
             "arguments": "{\"city\":\"Bern\"}", "status": "completed"},
            {"type": "function_call", "call_id": "call_b", "name": "time", "arguments": "{}",
             "status": "completed"},
        ])
    );
}

#[test]
fn a_failure_about_the_request_is_not_taken_for_a_broken_backend() {
    let failed = |code: &str| {
        let mut translator = ResponsesTranslator::default();
        let event = json!({"type": "response.failed", "response": {"status": "failed",
            "error": {"code": code, "message": "why"}}});
        translator
            .translate(&event.to_string(), &mut VecDeque::new())
            .unwrap_err()
    };
    let about_the_request = failed("invalid_prompt");
    assert!(!about_the_request.is_retryable(), "{about_the_request}");
    assert!(about_the_request.to_string().contains("invalid_prompt"));
    assert!(failed("server_error").is_retryable());
    let mut translator = ResponsesTranslator::default();
    let error = json!({"type": "error", "code": "context_length_exceeded", "message": "too long"});
    let refused = translator
        .translate(&error.to_string(), &mut VecDeque::new())
        .unwrap_err();
    assert!(!refused.is_retryable());
}

#[test]
fn a_call_that_says_nothing_takes_no_index() {
    // Found by the fuzzer: a call announced without a name passes nothing on,
    // so the next call that does is call 0, not 1.
    let mut translator = ResponsesTranslator::default();
    let mut out = VecDeque::new();
    let silent = json!({"type": "response.output_item.added", "output_index": 0,
        "item": {"type": "function_call", "id": "fc_a", "call_id": "call_a", "arguments": ""}});
    let delta =
        json!({"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "{}"});
    for event in [silent, delta] {
        translator.translate(&event.to_string(), &mut out).unwrap();
    }
    let indices: Vec<u32> = out
        .iter()
        .filter_map(|event| match event {
            ModelEvent::ToolCallDelta { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(indices, [0]);
}
