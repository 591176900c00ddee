//! Event-sequence snapshots: scripted model events go through the real engine and the
//! emitted stream is compared with a reviewed snapshot, one JSON event per line (ids
//! and timestamps normalised so that the snapshots are stable).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a panic is the failure report"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use antwort_api::{CreateResponseRequest, LogProb, Model, Usage};
use antwort_engine::store::{
    ListQuery, Page, ResponseStore, Scope, StoreError, StoredResponse, Stores,
};
use antwort_engine::{
    Backend, BackendError, Backends, Engine, EngineConfig, FinishReason, ModelEvent, ModelRequest,
    ModelStream, ReasoningEventNames,
};
use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;

#[path = "event_sequences/agent_loop.rs"]
mod agent_loop;
#[path = "event_sequences/tool_seam.rs"]
mod tool_seam;

/// A backend that replays a script and records the requests it was given.
struct ScriptedBackend {
    script: Vec<Result<ModelEvent, BackendError>>,
    seen: Mutex<Vec<ModelRequest>>,
}

#[async_trait]
impl Backend for ScriptedBackend {
    async fn generate(&self, request: &ModelRequest) -> Result<ModelStream, BackendError> {
        self.seen.lock().unwrap().push(request.clone());
        Ok(futures::stream::iter(self.script.clone()).boxed())
    }
    async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        Ok(Vec::new())
    }
    async fn check_ready(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// A store that records what was saved and knows nothing else: the storage suite
/// covers real stores; these tests only need to see what the engine hands over.
#[derive(Default)]
struct RecordingStore {
    saved: Mutex<Vec<StoredResponse>>,
}

#[async_trait]
impl ResponseStore for RecordingStore {
    async fn save_response(&self, _: &Scope, record: StoredResponse) -> Result<(), StoreError> {
        self.saved.lock().unwrap().push(record);
        Ok(())
    }
    async fn get_response(
        &self,
        _: &Scope,
        _: &str,
    ) -> Result<Option<antwort_api::Response>, StoreError> {
        Ok(None)
    }
    async fn delete_response(&self, _: &Scope, _: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn list_responses(
        &self,
        _: &Scope,
        _: &ListQuery,
    ) -> Result<Page<antwort_api::Response>, StoreError> {
        Ok(Page {
            data: Vec::new(),
            has_more: false,
        })
    }
    async fn list_input_items(
        &self,
        _: &Scope,
        _: &str,
        _: &ListQuery,
    ) -> Result<Option<Page<antwort_api::Item>>, StoreError> {
        Ok(None)
    }
    async fn load_chain(
        &self,
        _: &Scope,
        _: &str,
    ) -> Result<Option<Vec<antwort_api::Item>>, StoreError> {
        Ok(None)
    }
    async fn get_items(
        &self,
        _: &Scope,
        _: &[String],
    ) -> Result<Vec<antwort_api::Item>, StoreError> {
        Ok(Vec::new())
    }
}

fn text(t: &str) -> Result<ModelEvent, BackendError> {
    Ok(ModelEvent::TextDelta {
        text: t.into(),
        logprobs: Vec::new(),
    })
}

fn usage() -> Result<ModelEvent, BackendError> {
    Ok(ModelEvent::Usage(Usage {
        input_tokens: 5,
        output_tokens: 3,
        total_tokens: 8,
        ..Usage::default()
    }))
}

fn finish(reason: FinishReason) -> Result<ModelEvent, BackendError> {
    Ok(ModelEvent::Finish(reason))
}

async fn run_with(
    body: &str,
    script: Vec<Result<ModelEvent, BackendError>>,
    names: ReasoningEventNames,
) -> String {
    let backend = Arc::new(ScriptedBackend {
        script,
        seen: Mutex::new(Vec::new()),
    });
    let store = Arc::new(RecordingStore::default());
    let engine = Engine::new(
        Backends::single("test", backend),
        Stores::responses_only(store.clone()),
        EngineConfig {
            default_model: Some("test-model".into()),
            reasoning_event_names: names,
            ..EngineConfig::default()
        },
    );
    let request = CreateResponseRequest::from_json(body.as_bytes()).unwrap();
    let started = engine.create(&Scope::default(), request).await.unwrap();
    let events: Vec<_> = started.events().collect().await;
    {
        let saved = store.saved.lock().unwrap();
        assert_eq!(saved.len(), 1, "a stored response is saved once");
        assert_eq!(
            Some(&saved[0].response),
            events.last().unwrap().data.terminal_response(),
            "what is saved is what the terminal event says"
        );
    }
    check_grammar(&events);
    render(&events)
}

/// One JSON event per line, ids and timestamps normalised, the response objects
/// cut down to what the snapshots are about.
fn render(events: &[antwort_api::StreamEvent]) -> String {
    let mut ids = HashMap::new();
    events
        .iter()
        .map(|event| {
            let mut value = serde_json::to_value(event).unwrap();
            normalise(&mut value, &mut ids);
            if let Some(response) = value.get_mut("response") {
                // The echoed request fields are covered by other tests; keep the
                // snapshots about the grammar.
                let keep = [
                    "id",
                    "status",
                    "output",
                    "usage",
                    "error",
                    "incomplete_details",
                ];
                response
                    .as_object_mut()
                    .unwrap()
                    .retain(|k, _| keep.contains(&k.as_str()));
            }
            value.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn run(script: Vec<Result<ModelEvent, BackendError>>) -> String {
    run_with(
        r#"{"input":"hi"}"#,
        script,
        ReasoningEventNames::OpenResponses,
    )
    .await
}

/// Grammar checks that hold for every stream, whatever the snapshot says.
fn check_grammar(events: &[antwort_api::StreamEvent]) {
    for (expected, event) in events.iter().enumerate() {
        assert_eq!(
            event.sequence_number, expected as u64,
            "sequence numbers increase by one"
        );
    }
    assert_eq!(events[0].type_name(), "response.created");
    assert_eq!(events[1].type_name(), "response.in_progress");
    let terminals = events
        .iter()
        .filter(|e| e.data.terminal_response().is_some())
        .count();
    assert_eq!(terminals, 1, "exactly one terminal event");
    assert!(
        events.last().unwrap().data.terminal_response().is_some(),
        "terminal event is last"
    );
    let final_output = &events
        .last()
        .unwrap()
        .data
        .terminal_response()
        .unwrap()
        .output;
    for event in events {
        if let antwort_api::EventData::OutputItemDone { output_index, item } = &event.data {
            assert_eq!(
                &final_output[*output_index], item,
                "output_index is the final position"
            );
        }
    }
}

fn normalise(value: &mut Value, ids: &mut HashMap<String, String>) {
    match value {
        Value::String(s) => {
            // `prefix_<uuid>`, or `prefix_<uuid>_<tag>` (tool lists name their server).
            let hex = |part: &str| part.chars().all(|c| c.is_ascii_hexdigit());
            if let Some((prefix, rest)) = s.split_once('_')
                && rest.len() >= 32
                && hex(&rest[..32])
                && (rest.len() == 32 || rest[32..].strip_prefix('_').is_some_and(hex))
            {
                let next = ids.len() + 1;
                *s = ids
                    .entry(s.clone())
                    .or_insert_with(|| format!("{prefix}_{next}"))
                    .clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| normalise(v, ids)),
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "created_at" || key == "completed_at" {
                    if v.is_number() {
                        *v = Value::from(0);
                    }
                } else {
                    normalise(v, ids);
                }
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn plain_text_with_usage_after_finish() {
    let events = run(vec![
        text("Hello"),
        text(", world"),
        finish(FinishReason::Stop),
        usage(),
    ])
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test]
async fn reasoning_then_text() {
    let events = run(vec![
        Ok(ModelEvent::ReasoningDelta("think".into())),
        Ok(ModelEvent::ReasoningDelta("ing".into())),
        text("answer"),
        finish(FinishReason::Stop),
    ])
    .await;
    insta::assert_snapshot!(events);
}

/// What a native Responses backend reports: item boundaries, a summary it
/// wrote, encrypted reasoning, an annotation on the text, and a whole item.
#[tokio::test]
async fn item_level_events_of_a_responses_backend() {
    let hosted: antwort_api::Item = serde_json::from_value(serde_json::json!({
        "type": "message", "id": "msg_backend", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": "whole", "annotations": []}]
    }))
    .unwrap();
    let events = run(vec![
        Ok(ModelEvent::ItemStart {
            id: Some("rs_backend".into()),
        }),
        Ok(ModelEvent::ReasoningSummaryDelta {
            summary_index: 0,
            text: "plan".into(),
        }),
        Ok(ModelEvent::ReasoningDelta("think".into())),
        Ok(ModelEvent::ReasoningEncrypted("opaque".into())),
        Ok(ModelEvent::ItemStart { id: None }),
        text("see "),
        Ok(ModelEvent::Annotation(serde_json::json!({
            "type": "url_citation", "url": "https://example.com", "title": "Example",
            "start_index": 0, "end_index": 3
        }))),
        text("it"),
        Ok(ModelEvent::ItemStart { id: None }),
        text("second"),
        Ok(ModelEvent::Item(Box::new(hosted))),
        finish(FinishReason::Stop),
    ])
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test]
async fn reasoning_with_openai_event_names() {
    let events = run_with(
        r#"{"input":"hi"}"#,
        vec![
            Ok(ModelEvent::ReasoningDelta("hmm".into())),
            text("ok"),
            finish(FinishReason::Stop),
        ],
        ReasoningEventNames::OpenAi,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test]
async fn parallel_tool_calls_with_interleaved_arguments() {
    let call = |index, id: Option<&str>, name: Option<&str>, args: &str| {
        Ok(ModelEvent::ToolCallDelta {
            index,
            id: id.map(Into::into),
            name: name.map(Into::into),
            arguments: args.into(),
        })
    };
    let events = run(vec![
        call(0, Some("call_a"), Some("get_weather"), ""),
        call(0, None, None, "{\"city\":"),
        call(1, Some("call_b"), Some("get_time"), "{\"tz\":"),
        call(0, None, None, "\"Paris\"}"),
        call(1, None, None, "\"UTC\"}"),
        finish(FinishReason::ToolCalls),
        usage(),
    ])
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test]
async fn duplicate_upstream_call_ids_are_made_unique() {
    let call = |index| {
        Ok(ModelEvent::ToolCallDelta {
            index,
            id: Some("call_0".into()),
            name: Some("f".into()),
            arguments: "{}".into(),
        })
    };
    let events = run(vec![call(0), call(1), finish(FinishReason::ToolCalls)]).await;
    let last: Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    let output = last["response"]["output"].as_array().unwrap();
    assert_eq!(output.len(), 2);
    assert_ne!(output[0]["call_id"], output[1]["call_id"]);
}

#[tokio::test]
async fn refusal() {
    let events = run(vec![
        Ok(ModelEvent::RefusalDelta("I can't".into())),
        Ok(ModelEvent::RefusalDelta(" help with that.".into())),
        finish(FinishReason::Stop),
    ])
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test]
async fn length_limit_is_incomplete() {
    let events = run(vec![text("cut sh"), finish(FinishReason::Length)]).await;
    insta::assert_snapshot!(events);
}

#[tokio::test]
async fn backend_failure_mid_stream_fails_the_response() {
    let events = run(vec![
        text("partial"),
        Err(BackendError::protocol("connection reset")),
    ])
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test]
async fn stream_cut_without_finish_fails_the_response() {
    let events = run(vec![text("partial")]).await;
    let last: Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "response.failed");
    let error: Value = serde_json::from_str(events.lines().rev().nth(1).unwrap()).unwrap();
    assert_eq!(error["type"], "error");
}

#[tokio::test]
async fn logprobs_ride_on_deltas_and_done_events() {
    let logprob = |token: &str| LogProb {
        token: token.into(),
        logprob: -0.5,
        bytes: token.as_bytes().to_vec(),
        top_logprobs: Vec::new(),
    };
    let events = run_with(
        r#"{"input":"hi","include":["message.output_text.logprobs"],"top_logprobs":0}"#,
        vec![
            Ok(ModelEvent::TextDelta {
                text: "a".into(),
                logprobs: vec![logprob("a")],
            }),
            Ok(ModelEvent::TextDelta {
                text: "b".into(),
                logprobs: vec![logprob("b")],
            }),
            finish(FinishReason::Stop),
        ],
        ReasoningEventNames::OpenResponses,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test]
async fn a_call_named_after_its_first_arguments_keeps_them_all() {
    let delta = |name: Option<&str>, args: &str| {
        Ok(ModelEvent::ToolCallDelta {
            index: 0,
            id: Some("call_a".into()),
            name: name.map(Into::into),
            arguments: args.into(),
        })
    };
    let events = run(vec![
        delta(None, "{\"city\":"),
        delta(Some("get_weather"), "\"Paris\""),
        delta(None, "}"),
        finish(FinishReason::ToolCalls),
    ])
    .await;
    let last: Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    let call = &last["response"]["output"][0];
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], "{\"city\":\"Paris\"}");
}

/// A backend that sends a first delta, then waits for the test to release the
/// rest: the response is still running while the test looks at it.
struct GatedBackend {
    gate: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

#[async_trait]
impl Backend for GatedBackend {
    async fn generate(&self, _: &ModelRequest) -> Result<ModelStream, BackendError> {
        let gate = self.gate.lock().unwrap().take();
        let rest = futures::stream::once(async move {
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            finish(FinishReason::Stop)
        });
        Ok(futures::stream::iter(vec![text("one")]).chain(rest).boxed())
    }
    async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        Ok(Vec::new())
    }
    async fn check_ready(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_stored_response_is_a_log_a_second_reader_can_follow() {
    let (release, gate) = tokio::sync::oneshot::channel();
    let engine = Engine::new(
        Backends::single(
            "test",
            Arc::new(GatedBackend {
                gate: Mutex::new(Some(gate)),
            }),
        ),
        Stores::responses_only(Arc::new(RecordingStore::default())),
        EngineConfig {
            default_model: Some("m".into()),
            ..EngineConfig::default()
        },
    );
    let request = CreateResponseRequest::from_json(br#"{"input": "hi"}"#).unwrap();
    let mut first = engine
        .create(&Scope::default(), request)
        .await
        .unwrap()
        .events();
    let created = first.next().await.unwrap();
    let id = created.data.response_id().unwrap().to_owned();
    let second = engine
        .follow(&Scope::default(), &id, Some(created.sequence_number))
        .expect("the response is live");
    let stranger = Scope {
        tenant: "other".into(),
        owner: "other".into(),
        reach: antwort_engine::Reach::Tenant,
    };
    assert!(engine.follow(&stranger, &id, None).is_none());
    release.send(()).unwrap();
    let rest: Vec<_> = first.collect().await;
    let followed: Vec<_> = second.collect().await;
    assert_eq!(
        rest, followed,
        "both readers see the same events after the first"
    );
    assert!(rest.last().unwrap().data.terminal_response().is_some());
    check_grammar(&[vec![created], rest].concat());
}
