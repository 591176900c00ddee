//! The SSE grammar over every kind of output, schema-checked event by event (the
//! harness checks the grammar of every stream; these tests check what each carries).

use std::collections::BTreeSet;

use serde_json::json;

use crate::harness::{Gateway, Sse, output_text, spec, start, start_with};

#[tokio::test]
async fn text_stream_with_usage_sent_after_the_finish_chunk() {
    let gateway = start().await;
    let sse = gateway.stream(json!({"input": "Hello there"})).await;
    assert_eq!(sse.types().last().copied(), Some("response.completed"));
    let done = sse.of_type("response.output_text.done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["text"], output_text(sse.final_response()));
    assert!(
        done[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("echo: Hello there")
    );
    assert!(
        sse.of_type("response.output_text.delta").len() > 3,
        "the text arrives in pieces"
    );
    let usage = &sse.final_response()["usage"];
    assert!(
        usage["output_tokens"].as_u64().unwrap() > 0,
        "usage kept: {usage}"
    );
}

#[tokio::test]
async fn reasoning_events_use_openresponses_names_by_default() {
    let gateway = start().await;
    let sse = gateway
        .stream(json!({"model": "mock-reasoning", "input": "why"}))
        .await;
    assert_eq!(
        sse.of_type("response.reasoning.done")[0]["text"],
        "Thinking about: why"
    );
    assert_eq!(sse.final_response()["output"][0]["type"], "reasoning");
    assert_eq!(sse.final_response()["output"][1]["type"], "message");
}

#[tokio::test]
async fn reasoning_events_can_use_openai_names() {
    let gateway = start_with_openai_names().await;
    let response = crate::harness::client()
        .post(format!("{}/v1/responses", gateway.url))
        .json(&json!({"model": "mock-reasoning", "input": "why", "stream": true}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(response.contains("event: response.reasoning_text.delta"));
    assert!(response.contains("event: response.reasoning_text.done"));
    assert!(!response.contains("event: response.reasoning.delta"));
}

#[tokio::test]
async fn clients_that_identify_as_the_openai_sdks_get_openai_names_by_default() {
    let gateway = start().await;
    let sse = gateway
        .stream_with_headers(
            json!({"model": "mock-reasoning", "input": "why"}),
            &[
                ("x-stainless-lang", "js"),
                ("x-stainless-package-version", "6.9.0"),
            ],
        )
        .await;
    assert_eq!(
        sse.of_type("response.reasoning_text.done")[0]["text"],
        "Thinking about: why"
    );
    assert!(sse.of_type("response.reasoning.delta").is_empty());
}

#[tokio::test]
async fn a_requested_summary_is_filled_from_the_reasoning_text() {
    let gateway = start().await;
    let sse = gateway
        .stream(
            json!({"model": "mock-reasoning", "input": "why", "reasoning": {"summary": "auto"}}),
        )
        .await;
    let reasoning = &sse.final_response()["output"][0];
    assert_eq!(
        reasoning["summary"],
        json!([{"type": "summary_text", "text": "Thinking about: why"}])
    );
    assert_eq!(
        reasoning["content"],
        json!([{"type": "reasoning_text", "text": "Thinking about: why"}]),
        "the text stays where OpenResponses clients read it"
    );
    let deltas: String = sse
        .of_type("response.reasoning_summary_text.delta")
        .iter()
        .map(|event| event["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "Thinking about: why");
    assert_eq!(
        sse.of_type("response.reasoning_summary_part.added").len(),
        1
    );
    assert_eq!(
        sse.of_type("response.reasoning_summary_part.done")[0]["part"],
        json!({"type": "summary_text", "text": "Thinking about: why"})
    );
    let unasked = gateway
        .create(json!({"model": "mock-reasoning", "input": "why"}))
        .await;
    assert_eq!(unasked["output"][0]["summary"], json!([]));
}

#[tokio::test]
async fn reasoning_summary_always_fills_it_unasked() {
    let gateway = start_with(|config| {
        config.engine.reasoning_summary = antwort::config::ReasoningSummaryMode::Always;
    })
    .await;
    let response = gateway
        .create(json!({"model": "mock-reasoning", "input": "why"}))
        .await;
    assert_eq!(
        response["output"][0]["summary"][0]["text"],
        "Thinking about: why"
    );
}

async fn start_with_openai_names() -> Gateway {
    crate::harness::start_with(|config| {
        config.engine.reasoning_events = antwort::config::ReasoningEvents::Openai;
    })
    .await
}

#[tokio::test]
async fn parallel_tool_calls_stream_their_arguments() {
    let gateway = start().await;
    let sse = gateway
        .stream(json!({"tools": [{"type": "function", "name": "get_weather"}, {"type": "function", "name": "get_time"}],
            "input": "[[tool:get_weather:{\"city\":\"Paris\"}]] [[tool:get_time:{\"tz\":\"UTC\"}]]"}))
        .await;
    let done = sse.of_type("response.function_call_arguments.done");
    assert_eq!(done.len(), 2);
    assert_eq!(done[0]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(done[0]["output_index"], 0);
    assert_eq!(done[1]["arguments"], "{\"tz\":\"UTC\"}");
    assert_eq!(done[1]["output_index"], 1);
    assert!(
        sse.of_type("response.function_call_arguments.delta").len() >= 6,
        "arguments arrive in pieces"
    );
    assert!(sse.of_type("response.output_text.delta").is_empty());
}

#[tokio::test]
async fn refusal_streams_refusal_events() {
    let gateway = start().await;
    let sse = gateway.stream(json!({"input": "[[refuse:No way.]]"})).await;
    assert_eq!(
        sse.of_type("response.refusal.done")[0]["refusal"],
        "No way."
    );
}

#[tokio::test]
async fn logprobs_ride_on_text_events() {
    let gateway = start().await;
    let sse = gateway
        .stream(json!({"input": "[[reply:one two]]", "include": ["message.output_text.logprobs"], "top_logprobs": 1}))
        .await;
    let deltas = sse.of_type("response.output_text.delta");
    assert_eq!(deltas[0]["logprobs"][0]["token"], "one ");
    let done = sse.of_type("response.output_text.done");
    assert_eq!(done[0]["logprobs"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn length_limit_ends_with_response_incomplete() {
    let gateway = start().await;
    let sse = gateway
        .stream(json!({"input": "[[finish:length]]", "max_output_tokens": 16}))
        .await;
    assert_eq!(sse.types().last().copied(), Some("response.incomplete"));
    assert_eq!(
        sse.final_response()["incomplete_details"]["reason"],
        "max_output_tokens"
    );
}

#[tokio::test]
async fn a_cut_backend_stream_ends_with_error_then_failed_then_done() {
    let gateway = start().await;
    let sse = gateway
        .stream(json!({"input": "[[cut:3]] a long answer that never finishes"}))
        .await;
    let types = sse.types();
    assert_eq!(&types[types.len() - 2..], ["error", "response.failed"]);
    assert_eq!(sse.final_response()["status"], "failed");
    assert_eq!(sse.final_response()["error"]["code"], "backend_error");
}

#[tokio::test]
async fn keepalive_comments_flow_while_the_backend_is_silent() {
    let gateway = start().await;
    let sse = gateway
        .stream(json!({"input": "[[ttft_ms:600]] slow"}))
        .await;
    assert!(
        sse.comments >= 2,
        "expected keepalive comments in:\n{}",
        sse.raw
    );
}

/// Runs one stream of each kind and checks that, together, they emit every event type
/// the server can emit, each of which the harness validated against the schema.
#[tokio::test]
async fn schema_validation_covers_every_emitted_event_type() {
    let gateway = start().await;
    let tools = json!([{"type": "function", "name": "f"}]);
    let scenarios = [
        json!({"input": "plain"}),
        json!({"model": "mock-reasoning", "input": "think"}),
        json!({"input": "[[refuse:no]]"}),
        json!({"tools": tools, "input": "[[tool:f:{}]]"}),
        json!({"input": "[[finish:length]]"}),
        json!({"input": "[[cut:2]] x y z"}),
    ];
    let mut seen = BTreeSet::new();
    for scenario in scenarios {
        let sse: Sse = gateway.stream(scenario).await;
        seen.extend(sse.types().into_iter().map(str::to_owned));
    }
    let emitted = [
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.refusal.delta",
        "response.refusal.done",
        "response.reasoning.delta",
        "response.reasoning.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
    ];
    for kind in emitted {
        assert!(
            seen.contains(kind),
            "{kind} was not exercised; seen: {seen:?}"
        );
        assert!(
            spec().event_types().any(|t| t == kind),
            "{kind} is not in the schema"
        );
    }
    for kind in &seen {
        assert!(
            emitted.contains(&kind.as_str()),
            "{kind} emitted but not in the covered list"
        );
    }
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_an_unstored_upstream_request() {
    let gateway = start().await;
    crate::harness::stream_then_leave(
        &gateway.url,
        json!({"input": "[[tokens:500]] [[delay_ms:20]]", "store": false}),
    )
    .await;
    // The mock counts a stream as cancelled when its body is dropped before the end;
    // wait for that with a deadline rather than a fixed sleep.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let cancelled = gateway
            .mock_stats
            .streams_cancelled
            .load(std::sync::atomic::Ordering::SeqCst);
        if cancelled == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upstream stream was not cancelled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        gateway
            .mock_stats
            .streams_completed
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn a_backend_that_stalls_mid_stream_fails_the_response() {
    let gateway = crate::harness::start_with(|config| {
        config.engine.backend_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    // The first token comes at once; the next ones only after 3 s, past the timeout.
    let sse = gateway
        .stream(json!({"input": "[[delay_ms:3000]] slow answer"}))
        .await;
    assert_eq!(sse.types().last().copied(), Some("response.failed"));
    assert_eq!(sse.final_response()["error"]["code"], "backend_timeout");
}
