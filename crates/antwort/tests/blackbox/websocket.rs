//! WebSocket mode on `/v1/responses`: turns, errors, continuation, streams,
//! cancel and warm-ups, driven by a plain tungstenite client (`socket.rs`; the
//! official SDKs' WebSocket clients run in `tests/sdk`, limits and liveness in
//! `websocket_limits.rs`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{Sse, output_text, start};
use crate::socket::{Socket, response_id, wait_for};

#[tokio::test]
async fn a_turn_is_exactly_the_events_sse_sends_and_no_done() {
    let gateway = start().await;
    let body = json!({"input": "Hello socket", "store": false});
    let sse = gateway.stream(body.clone()).await;
    let mut socket = Socket::open(&gateway).await;
    assert!(
        socket.headers.contains_key("x-request-id"),
        "the upgrade has a request id like every request"
    );
    let turn = socket.turn(body).await;
    assert_eq!(turn.types(), sse.types());
    assert_eq!(
        output_text(turn.final_response()),
        output_text(sse.final_response())
    );
    // The socket serves the next turn.
    let again = socket.turn(json!({"input": "again"})).await;
    assert!(output_text(again.final_response()).starts_with("echo: again"));
}

#[tokio::test]
async fn a_bad_request_is_one_error_and_the_socket_stays_usable() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    socket
        .create(json!({"input": "hi", "temperature": 7}))
        .await;
    let error = socket.error().await;
    assert_eq!(error["status"], 400);
    assert_eq!(error["error"]["param"], "temperature");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    // Nothing follows the error for that turn: the next message is the next turn's.
    let turn = socket.turn(json!({"input": "fine"})).await;
    assert_eq!(turn.types()[0], "response.created");
    socket
        .create(json!({"input": "x", "previous_response_id": "resp_nobody"}))
        .await;
    let error = socket.error().await;
    assert_eq!(error["error"]["code"], "previous_response_not_found");
    assert_eq!(error["error"]["param"], "previous_response_id");
}

#[tokio::test]
async fn malformed_binary_and_unknown_messages_are_errors_not_closes() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    socket.send_text("{not json".into()).await;
    assert_eq!(socket.error().await["error"]["code"], "invalid_json");
    socket
        .stream
        .send(Message::binary(b"{\"type\":\"response.create\"}".to_vec()))
        .await
        .unwrap();
    assert_eq!(socket.error().await["error"]["code"], "invalid_json");
    socket.send(json!({"type": "session.update"})).await;
    assert_eq!(socket.error().await["error"]["param"], "type");
    socket.send(json!({"input": "no type"})).await;
    assert_eq!(socket.error().await["error"]["param"], "type");
    for (field, value) in [
        ("stream", json!(false)),
        ("stream_options", json!({"include_obfuscation": false})),
        ("background", json!(true)),
    ] {
        let mut body = json!({"input": "x"});
        body[field] = value;
        socket.create(body).await;
        let error = socket.error().await;
        assert_eq!(error["error"]["param"], field, "{error}");
    }
    // `stream: true` is what Codex CLI sends on every socket turn.
    let turn = socket
        .turn(json!({"input": "still open", "stream": true}))
        .await;
    assert!(output_text(turn.final_response()).starts_with("echo: still open"));
}

#[tokio::test]
async fn a_turn_that_fails_after_it_started_ends_with_response_failed() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    let turn = socket.turn(json!({"input": "break [[cut:3]]"})).await;
    assert_eq!(turn.types().last().copied(), Some("response.failed"));
    let after = socket.turn(json!({"input": "next"})).await;
    assert_eq!(after.types().last().copied(), Some("response.completed"));
}

#[tokio::test]
async fn unstored_turns_continue_from_the_connection_not_the_store() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    let first = socket
        .turn(json!({"input": "my name is Ada", "store": false}))
        .await;
    let first_id = response_id(&first);
    assert_eq!(
        gateway
            .get(&format!("/v1/responses/{first_id}"))
            .await
            .status,
        404,
        "nothing was stored"
    );
    let second = socket
        .turn(json!({
            "input": "what is my name? [[echo_request]]",
            "previous_response_id": first_id,
            "store": false,
        }))
        .await;
    let sent = output_text(second.final_response());
    assert!(
        sent.contains("my name is Ada") && sent.contains("echo: my name is Ada"),
        "the backend got the first turn's input and output: {sent}"
    );
    assert_eq!(second.final_response()["previous_response_id"], first_id);
    // Only the most recent response is held: the first is gone now.
    socket
        .create(json!({"input": "x", "previous_response_id": first_id, "store": false}))
        .await;
    let error = socket.error().await;
    assert_eq!(error["error"]["code"], "previous_response_not_found");
    assert_eq!(error["status"], 400);
    // Another socket holds nothing; the full input starts it again.
    let second_id = response_id(&second);
    let mut other = Socket::open(&gateway).await;
    other
        .create(json!({"input": "x", "previous_response_id": second_id, "store": false}))
        .await;
    assert_eq!(
        other.error().await["error"]["code"],
        "previous_response_not_found"
    );
    let recovered = other
        .turn(json!({"input": [
            {"role": "user", "content": "my name is Ada"},
            {"role": "user", "content": "and again"}
        ], "store": false}))
        .await;
    assert_eq!(
        recovered.types().last().copied(),
        Some("response.completed")
    );
}

#[tokio::test]
async fn a_continuation_that_fails_forgets_what_it_continued() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    let first = socket.turn(json!({"input": "one", "store": false})).await;
    let id = response_id(&first);
    // The backend refuses it before it begins: one error, no response.failed.
    socket
        .create(json!({"input": "fail [[error:500]]", "previous_response_id": id, "store": false}))
        .await;
    assert_eq!(socket.error().await["status"], 502);
    socket
        .create(json!({"input": "retry", "previous_response_id": id, "store": false}))
        .await;
    assert_eq!(
        socket.error().await["error"]["code"],
        "previous_response_not_found"
    );
}

#[tokio::test]
async fn stored_turns_continue_across_sockets_and_http() {
    let gateway = start().await;
    let mut first_socket = Socket::open(&gateway).await;
    let first = first_socket.turn(json!({"input": "remember blue"})).await;
    let first_id = response_id(&first);
    drop(first_socket);
    let mut second_socket = Socket::open(&gateway).await;
    let second = second_socket
        .turn(json!({"input": "which colour? [[echo_request]]", "previous_response_id": first_id}))
        .await;
    assert!(output_text(second.final_response()).contains("remember blue"));
    let over_http = gateway
        .create(json!({"input": "and now? [[echo_request]]", "previous_response_id": response_id(&second)}))
        .await;
    assert!(output_text(&over_http).contains("which colour?"));
}

#[tokio::test]
async fn a_stored_turn_may_continue_an_unstored_one_and_keeps_its_whole_context() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    let first = socket
        .turn(json!({"input": "secret word: kiwi", "store": false}))
        .await;
    let stored = socket
        .turn(json!({"input": "kept", "previous_response_id": response_id(&first)}))
        .await;
    // Over HTTP, from the store alone: the unstored turn is in its context.
    let later = gateway
        .create(json!({"input": "recall [[echo_request]]", "previous_response_id": response_id(&stored)}))
        .await;
    assert!(output_text(&later).contains("secret word: kiwi"));
}

#[tokio::test]
async fn compacted_output_starts_a_new_chain_on_the_socket() {
    let gateway = start().await;
    let compacted = gateway
        .post(
            "/v1/responses/compact",
            &json!({"model": "mock-model", "input": "a long history"}),
        )
        .await;
    assert_eq!(compacted.status, 200, "{}", compacted.body);
    let mut socket = Socket::open(&gateway).await;
    let fresh = socket
        .turn(json!({"input": compacted.body["output"].clone(), "store": false}))
        .await;
    let next = socket
        .turn(json!({
            "input": "go on [[echo_request]]",
            "previous_response_id": response_id(&fresh),
            "store": false,
        }))
        .await;
    // The compaction item is the head of the new chain, replayed from memory.
    let sent = output_text(next.final_response());
    assert!(
        sent.contains("Summary of the earlier conversation"),
        "{sent}"
    );
}

#[tokio::test]
async fn streams_run_at_once_each_with_its_own_chain_and_forks() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    for lane in ["a", "b"] {
        socket
            .create(json!({
                "input": format!("lane {lane} [[tokens:30]] [[delay_ms:10]]"),
                "store": false,
                "stream_id": lane,
            }))
            .await;
    }
    let mut events: HashMap<String, Vec<Value>> = Default::default();
    let mut interleaved = false;
    let mut done = 0;
    while done < 2 {
        let event = socket.message().await;
        let lane = event["stream_id"]
            .as_str()
            .expect("every event names its stream")
            .to_owned();
        if events.len() == 2 && done == 0 {
            interleaved = true;
        }
        let terminal = event["type"] == "response.completed";
        events.entry(lane).or_default().push(event);
        done += usize::from(terminal);
    }
    assert!(interleaved, "both streams ran at once");
    let ids: HashMap<String, String> = events
        .into_iter()
        .map(|(lane, events)| {
            let sse = Sse::from_socket(events, Some(&lane));
            (lane, response_id(&sse))
        })
        .collect();
    // Each stream continues its own chain.
    for lane in ["a", "b"] {
        socket
            .create(json!({
                "input": "[[echo_request]]",
                "previous_response_id": ids[lane],
                "store": false,
                "stream_id": lane,
            }))
            .await;
        let sse = socket.events(Some(lane)).await;
        assert!(output_text(sse.final_response()).contains(&format!("lane {lane}")));
    }
    // A fork: a new stream continues from what stream a remembers, which
    // stream a still can continue from too.
    let a_now = {
        socket
            .create(json!({"input": "a again", "store": false, "stream_id": "a"}))
            .await;
        response_id(&socket.events(Some("a")).await)
    };
    for lane in ["fork", "a"] {
        socket
            .create(json!({
                "input": "[[echo_request]]",
                "previous_response_id": a_now,
                "store": false,
                "stream_id": lane,
            }))
            .await;
        let sse = socket.events(Some(lane)).await;
        assert!(
            output_text(sse.final_response()).contains("a again"),
            "{lane}"
        );
    }
}

#[tokio::test]
async fn one_stream_takes_its_turns_in_order_and_the_default_one_refuses_a_second() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    for n in 1..=2 {
        socket
            .create(json!({"input": format!("turn {n} [[delay_ms:5]] [[tokens:10]]"), "stream_id": "s"}))
            .await;
    }
    let first = socket.events(Some("s")).await;
    let second = socket.events(Some("s")).await;
    assert!(output_text(first.final_response()).contains("lorem"));
    assert_ne!(response_id(&first), response_id(&second));

    socket
        .create(json!({"input": "slow [[delay_ms:20]] [[tokens:20]]"}))
        .await;
    socket.create(json!({"input": "too soon"})).await;
    let mut refused = None;
    let mut types = Vec::new();
    loop {
        let message = socket.message().await;
        if message["type"] == "error" && message.get("sequence_number").is_none() {
            refused = Some(message);
            continue;
        }
        let terminal = message["type"] == "response.completed";
        types.push(message);
        if terminal {
            break;
        }
    }
    let refused = refused.expect("the second create is refused");
    assert_eq!(refused["status"], 409);
    assert_eq!(refused["error"]["code"], "response_in_progress");
    Sse::from_socket(types, None);
}

#[tokio::test]
async fn a_cancel_ends_the_running_turn_with_its_terminal_event() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    socket
        .create(json!({"input": "long [[tokens:400]] [[delay_ms:10]]", "store": true}))
        .await;
    let created = socket.message().await;
    let id = created["response"]["id"].as_str().unwrap().to_owned();
    socket
        .send(json!({"type": "response.cancel", "response_id": id}))
        .await;
    let mut events = vec![created];
    loop {
        let event = socket.message().await;
        let terminal = event["type"] == "response.failed";
        events.push(event);
        if terminal {
            break;
        }
    }
    let sse = Sse::from_socket(events, None);
    assert_eq!(sse.final_response()["status"], "cancelled");
    let stored = gateway.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(stored.body["status"], "cancelled", "saved as cancelled");
    // By stream, and nothing to cancel.
    socket
        .create(json!({"input": "long [[tokens:400]] [[delay_ms:10]]", "stream_id": "x"}))
        .await;
    assert_eq!(socket.message().await["type"], "response.created");
    socket
        .send(json!({"type": "response.cancel", "stream_id": "x"}))
        .await;
    let last = loop {
        let event = socket.message().await;
        if event["type"] == "response.failed" {
            break event;
        }
    };
    assert_eq!(last["response"]["status"], "cancelled");
    assert_eq!(last["stream_id"], "x");
    socket.send(json!({"type": "response.cancel"})).await;
    assert_eq!(socket.error().await["status"], 404);
}

#[tokio::test]
async fn a_warm_up_generates_nothing_and_the_next_turn_continues_it() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    // Codex CLI warms a connection up with `generate: false`.
    let warm = socket
        .turn(json!({"input": "the instructions so far", "store": false, "generate": false}))
        .await;
    assert_eq!(warm.final_response()["status"], "completed");
    assert_eq!(warm.final_response()["output"], json!([]));
    let requests = || gateway.mock_stats.requests.load(Ordering::SeqCst);
    assert_eq!(requests(), 0, "the backend was not asked");
    let next = socket
        .turn(json!({
            "input": "go [[echo_request]]",
            "previous_response_id": response_id(&warm),
            "store": false,
        }))
        .await;
    assert!(output_text(next.final_response()).contains("the instructions so far"));
    assert_eq!(requests(), 1);
}

#[tokio::test]
async fn turns_that_follow_at_once_find_the_default_lane_free() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    let mut previous: Option<String> = None;
    for n in 0..30 {
        let mut body = json!({"input": format!("turn {n}"), "store": false});
        if let Some(previous) = &previous {
            body["previous_response_id"] = json!(previous);
        }
        // `events` fails on an `error` message: a busy lane would be one.
        let turn = socket.turn(body).await;
        previous = Some(response_id(&turn));
    }
}

#[tokio::test]
async fn a_cancelled_unstored_turn_stops_generating_upstream() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    socket
        .create(json!({"input": "long [[tokens:400]] [[delay_ms:10]]", "store": false}))
        .await;
    let created = socket.message().await;
    socket
        .send(json!({"type": "response.cancel", "response_id": created["response"]["id"]}))
        .await;
    let last = loop {
        let event = socket.message().await;
        if event["type"] == "response.failed" {
            break event;
        }
    };
    assert_eq!(last["response"]["status"], "cancelled");
    wait_for(|| gateway.mock_stats.streams_cancelled.load(Ordering::SeqCst) == 1).await;
    // A continuation of a cancelled turn's predecessor still works: cancel is not a failure.
    let turn = socket.turn(json!({"input": "after", "store": false})).await;
    assert_eq!(turn.types().last().copied(), Some("response.completed"));
}
