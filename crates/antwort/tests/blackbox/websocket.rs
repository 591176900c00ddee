//! WebSocket mode on `/v1/responses`: every rule of the socket, driven by a
//! plain tungstenite client (the official SDKs' WebSocket clients run in
//! `tests/sdk`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{Gateway, Sse, api_key, output_text, start, start_with};

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A client socket on a gateway's `/v1/responses`.
struct Socket {
    stream: Stream,
    /// The upgrade's response headers.
    headers: tokio_tungstenite::tungstenite::http::HeaderMap,
}

const WAIT: Duration = Duration::from_secs(10);

impl Socket {
    async fn open(gateway: &Gateway) -> Self {
        Self::open_with(gateway, &[]).await.unwrap()
    }

    async fn open_with(
        gateway: &Gateway,
        headers: &[(&str, &str)],
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let url = format!("{}/v1/responses", gateway.url.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .unwrap(),
                value.parse().unwrap(),
            );
        }
        let (stream, response) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self {
            stream,
            headers: response.headers().clone(),
        })
    }

    async fn send(&mut self, message: Value) {
        self.send_text(message.to_string()).await;
    }

    async fn send_text(&mut self, text: String) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    async fn create(&mut self, body: Value) {
        let mut message = body;
        message["type"] = json!("response.create");
        self.send(message).await;
    }

    /// The next JSON message; `None` once the server closed the socket
    /// (with the close frame's code).
    async fn next(&mut self) -> Result<Value, Option<u16>> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("the server answers in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    assert_ne!(text.as_str(), "[DONE]");
                    return Ok(value);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame.map(|frame| u16::from(frame.code)));
                }
                Some(Ok(Message::Binary(_))) => panic!("the server sends text frames"),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    async fn message(&mut self) -> Value {
        self.next().await.expect("a message, not a close")
    }

    /// The events of one turn, up to its terminal event, grammar-checked.
    async fn events(&mut self, stream_id: Option<&str>) -> Sse {
        let mut events = Vec::new();
        loop {
            let event = self.message().await;
            assert!(
                event["type"] != "error" || event.get("sequence_number").is_some(),
                "the turn started; got {event} after {events:?}"
            );
            let terminal = matches!(
                event["type"].as_str(),
                Some("response.completed" | "response.incomplete" | "response.failed")
            );
            events.push(event);
            if terminal {
                return Sse::from_socket(events, stream_id);
            }
        }
    }

    /// One whole turn on the default lane.
    async fn turn(&mut self, body: Value) -> Sse {
        self.create(body).await;
        self.events(None).await
    }

    /// A message that must be an error in the WebSocket shape.
    async fn error(&mut self) -> Value {
        let error = self.message().await;
        assert_eq!(error["type"], "error", "{error}");
        assert!(error["status"].as_u64().is_some(), "{error}");
        for field in ["type", "code", "message"] {
            assert!(error["error"][field].is_string(), "{field}: {error}");
        }
        assert!(error["error"].get("param").is_some(), "{error}");
        error
    }
}

fn response_id(sse: &Sse) -> String {
    sse.final_response()["id"].as_str().unwrap().to_owned()
}

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
    let mut events: std::collections::HashMap<String, Vec<Value>> = Default::default();
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
    let ids: std::collections::HashMap<String, String> = events
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
async fn a_connection_past_its_lifetime_gets_the_limit_error_and_a_clean_close() {
    let gateway = start_with(|config| {
        config.websocket.max_connection_duration = Duration::from_millis(600);
    })
    .await;
    let mut socket = Socket::open(&gateway).await;
    socket
        .create(json!({"input": "[[tokens:50]] [[delay_ms:20]]"}))
        .await;
    // The running turn finishes; then the limit error and a normal close.
    let last = loop {
        let message = socket.message().await;
        if message["type"] == "error" {
            break message;
        }
        assert_ne!(
            message["type"], "response.failed",
            "the turn is not cut short"
        );
    };
    assert_eq!(last["error"]["code"], "websocket_connection_limit_reached");
    assert_eq!(socket.next().await.unwrap_err(), Some(1000));
}

#[tokio::test]
async fn a_client_that_answers_no_ping_is_closed_one_that_does_stays() {
    let gateway = start_with(|config| {
        config.websocket.ping_interval = Duration::from_millis(100);
        config.websocket.idle_timeout = Duration::from_millis(400);
    })
    .await;
    let mut reading = Socket::open(&gateway).await;
    let mut silent = Socket::open(&gateway).await;
    // Reading answers pings (tungstenite queues each pong as it reads).
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1200);
    while tokio::time::Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(50), reading.stream.next()).await;
    }
    let turn = reading.turn(json!({"input": "alive"})).await;
    assert_eq!(turn.types().last().copied(), Some("response.completed"));
    // The silent one read nothing: the server closed it.
    let mut closed = false;
    while let Ok(Some(frame)) =
        tokio::time::timeout(Duration::from_secs(2), silent.stream.next()).await
    {
        if matches!(frame, Ok(Message::Close(_)) | Err(_)) {
            closed = true;
            break;
        }
    }
    assert!(closed, "an idle client is closed");
}

#[tokio::test]
async fn a_message_over_the_cap_is_an_error_and_a_close() {
    let gateway = start_with(|config| config.websocket.max_message_bytes = 4096).await;
    let mut socket = Socket::open(&gateway).await;
    socket.create(json!({"input": "x".repeat(8192)})).await;
    let error = socket.error().await;
    assert_eq!(error["error"]["code"], "request_too_large");
    assert_eq!(socket.next().await.unwrap_err(), Some(1009));
}

#[tokio::test]
async fn a_slow_reader_holds_back_its_own_generation() {
    let gateway = start_with(|config| config.websocket.send_buffer = 4).await;
    let mut socket = Socket::open(&gateway).await;
    socket
        .create(json!({"input": "[[tokens:200000]]", "store": false}))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = &gateway.mock_stats;
    assert_eq!(
        stats
            .streams_started
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        stats
            .streams_completed
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the backend waits for the client that does not read"
    );
    let mut count = 0usize;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(60), socket.stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            count += 1;
            if text.contains("\"response.completed\"") {
                break;
            }
        }
    }
    assert!(count > 1000, "every event arrived: {count}");
}

#[tokio::test]
async fn shutdown_ends_running_turns_then_closes_going_away() {
    let mut gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    socket
        .create(json!({"input": "[[tokens:40]] [[delay_ms:20]]", "store": false}))
        .await;
    assert_eq!(socket.message().await["type"], "response.created");
    let served = gateway.shut_down();
    let mut terminal = None;
    loop {
        let message = socket.message().await;
        if message["type"] == "error" {
            assert_eq!(message["error"]["code"], "server_shutting_down");
            break;
        }
        if message["type"] == "response.completed" || message["type"] == "response.failed" {
            terminal = Some(message);
        }
    }
    assert!(
        terminal.is_some(),
        "the running turn ended with its terminal event first"
    );
    assert_eq!(socket.next().await.unwrap_err(), Some(1001));
    served.await.unwrap();
}

#[tokio::test]
async fn a_socket_needs_the_credential_http_needs_and_each_turn_checks_it_again() {
    let gateway = start_with(|config| {
        config.auth.api_keys = vec![
            api_key("sk-writer", "acme", "alice", &[]),
            api_key("sk-reader", "acme", "bob", &["responses:read"]),
            api_key(
                "sk-responder",
                "acme",
                "carol",
                &["responses:read", "responses:write"],
            ),
        ];
    })
    .await;
    let refused = Socket::open_with(&gateway, &[]).await.err().unwrap();
    assert!(refused.to_string().contains("401"), "{refused}");
    let read_only = Socket::open_with(&gateway, &[("authorization", "Bearer sk-reader")])
        .await
        .err()
        .unwrap();
    assert!(read_only.to_string().contains("403"), "{read_only}");
    let mut socket = Socket::open_with(&gateway, &[("authorization", "Bearer sk-writer")])
        .await
        .unwrap();
    let turn = socket.turn(json!({"input": "authorised"})).await;
    assert_eq!(turn.types().last().copied(), Some("response.completed"));
    // A body that asks for more than the route's scope is checked as over HTTP.
    let mut limited = Socket::open_with(&gateway, &[("authorization", "Bearer sk-responder")])
        .await
        .unwrap();
    limited
        .create(json!({"input": "x", "conversation": "conv_1"}))
        .await;
    let denied = limited.error().await;
    assert_eq!(denied["status"], 403, "{denied}");
    assert_eq!(denied["error"]["code"], "insufficient_permissions");
}

#[tokio::test]
async fn websocket_mode_off_answers_426_so_codex_falls_back_at_once() {
    let gateway = start_with(|config| config.websocket.enabled = false).await;
    let refused = Socket::open_with(&gateway, &[]).await.err().unwrap();
    assert!(refused.to_string().contains("426"), "{refused}");
    // A plain GET still lists.
    assert_eq!(gateway.get("/v1/responses").await.status, 200);
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

#[tokio::test]
async fn a_socket_that_closes_mid_turn_cancels_unstored_work_and_finishes_stored_work() {
    let gateway = start().await;
    let mut socket = Socket::open(&gateway).await;
    socket
        .create(json!({"input": "stored [[tokens:60]] [[delay_ms:10]]", "store": true}))
        .await;
    let created = socket.message().await;
    let stored_id = created["response"]["id"].as_str().unwrap().to_owned();
    let mut other = Socket::open(&gateway).await;
    other
        .create(json!({"input": "unstored [[tokens:400]] [[delay_ms:10]]", "store": false}))
        .await;
    assert_eq!(other.message().await["type"], "response.created");
    drop(socket);
    drop(other);
    wait_for(|| gateway.mock_stats.streams_cancelled.load(Ordering::SeqCst) == 1).await;
    let stored = loop {
        let answer = gateway.get(&format!("/v1/responses/{stored_id}")).await;
        if answer.status == 200 && answer.body["status"] == "completed" {
            break answer.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(output_text(&stored).contains("lorem"));
}

#[tokio::test]
async fn each_turn_counts_against_the_request_limit_like_a_request() {
    let gateway = start_with(|config| {
        config.auth.api_keys = vec![api_key("sk-writer", "acme", "alice", &[])];
        // The upgrade is one request, the first turn another.
        config.auth.rate_limits.per_key.requests_per_minute = Some(2);
    })
    .await;
    let mut socket = Socket::open_with(&gateway, &[("authorization", "Bearer sk-writer")])
        .await
        .unwrap();
    let first = socket.turn(json!({"input": "one"})).await;
    assert_eq!(first.types().last().copied(), Some("response.completed"));
    socket.create(json!({"input": "two"})).await;
    let refused = socket.error().await;
    assert_eq!(refused["status"], 429);
    assert_eq!(refused["error"]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn a_key_revoked_while_its_socket_is_open_stops_at_the_next_turn() {
    let gateway = start_with(|config| {
        config.auth.api_keys = vec![api_key("sk-root", "acme", "root", &["*"])];
    })
    .await;
    let created = crate::harness::call(
        &gateway.url,
        reqwest::Method::POST,
        "/v1/admin/keys",
        Some("sk-root"),
        Some(&json!({"subject": "codex"})),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {key}");
    let mut socket = Socket::open_with(&gateway, &[("authorization", bearer.as_str())])
        .await
        .unwrap();
    let turn = socket.turn(json!({"input": "before"})).await;
    assert_eq!(turn.types().last().copied(), Some("response.completed"));
    let revoked = crate::harness::call(
        &gateway.url,
        reqwest::Method::DELETE,
        &format!("/v1/admin/keys/{}", created.body["id"].as_str().unwrap()),
        Some("sk-root"),
        None,
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    // Every replica forgets a revoked key within its cache's five seconds.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    socket.create(json!({"input": "after"})).await;
    let refused = socket.error().await;
    assert_eq!(refused["status"], 401, "{refused}");
}

/// Waits until `done` holds, up to the socket suite's wait.
async fn wait_for(done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_connection_holds_only_so_many_streams_and_waiting_turns() {
    let gateway = start_with(|config| {
        config.websocket.max_streams = 2;
        config.websocket.max_queued_per_stream = 1;
    })
    .await;
    let mut socket = Socket::open(&gateway).await;
    let slow = |lane: &str| json!({"input": "slow [[tokens:60]] [[delay_ms:10]]", "store": false, "stream_id": lane});
    socket.create(slow("a")).await;
    socket.create(slow("a")).await;
    socket.create(slow("a")).await;
    socket.create(slow("b")).await;
    socket.create(slow("c")).await;
    let (mut refused, mut completed) = (Vec::new(), Vec::new());
    while completed.len() < 3 {
        let message = socket.message().await;
        if message["type"] == "error" && message.get("sequence_number").is_none() {
            refused.push(message);
        } else if message["type"] == "response.completed" {
            completed.push(message["stream_id"].as_str().unwrap().to_owned());
        }
    }
    completed.sort();
    assert_eq!(
        completed,
        ["a", "a", "b"],
        "two turns of a, in order, and b's"
    );
    let lanes: Vec<&str> = refused
        .iter()
        .map(|error| {
            assert_eq!(error["status"], 409, "{error}");
            error["stream_id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(lanes, ["a", "c"], "a's third turn, and a third stream");
}
