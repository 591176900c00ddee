//! WebSocket mode's limits and liveness: the lifetime cap, pings and the idle
//! clock, the message cap, slow readers, shutdown, credentials and rate limits
//! per turn, and the connection's stream and queue limits.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{api_key, output_text, start, start_with};
use crate::socket::{Socket, wait_for};

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
