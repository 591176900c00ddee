//! What a hostile or careless client sends: NUL characters wherever a store
//! would see them, duplicate item ids, malformed paths, and connections that
//! trickle their request. Every one is a 4xx in the OpenAI error shape (or a
//! closed connection), before anything is generated or stored; the storage
//! cases run on SQLite and on PostgreSQL.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Answer, Gateway, client, start_on, start_with, storages};

fn assert_400(answer: &Answer, param: &str, context: &str) {
    assert_eq!(answer.status, 400, "{context}: {}", answer.body);
    let error = &answer.body["error"];
    assert_eq!(error["type"], "invalid_request_error", "{context}");
    assert_eq!(error["param"], param, "{context}: {}", answer.body);
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
}

async fn delete(gateway: &Gateway, path: &str) -> Answer {
    let response = client()
        .delete(format!("{}{path}", gateway.url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn a_nul_in_metadata_is_refused_and_metadata_filters_keep_working() {
    for storage in storages() {
        let gateway = start_on(storage, |_| {}).await;
        let evil = gateway
            .post(
                "/v1/responses",
                &json!({"input": "hi", "metadata": {"evil": "a\u{0}b"}}),
            )
            .await;
        assert_400(&evil, "metadata", &format!("{storage:?}"));
        let evil_key = gateway
            .post(
                "/v1/responses",
                &json!({"input": "hi", "metadata": {"e\u{0}vil": "x"}}),
            )
            .await;
        assert_400(&evil_key, "metadata", &format!("{storage:?}"));
        let kept = gateway
            .create(json!({"input": "hi", "metadata": {"team": "blue"}}))
            .await;
        let listed = gateway.get("/v1/responses?metadata[team]=blue").await;
        assert_eq!(listed.status, 200, "{storage:?}: {}", listed.body);
        assert_eq!(listed.body["data"][0]["id"], kept["id"], "{storage:?}");
    }
}

#[tokio::test]
async fn a_nul_wherever_a_store_would_see_it_is_a_400_before_anything_is_generated() {
    for storage in storages() {
        let gateway = start_on(storage, |_| {}).await;
        let context = format!("{storage:?}");
        let bodies = [
            (json!({"input": "hi", "model": "\u{0}"}), "model"),
            (
                json!({"input": "hi", "previous_response_id": "resp_\u{0}"}),
                "previous_response_id",
            ),
            (
                json!({"input": "hi", "conversation": "conv_\u{0}"}),
                "conversation",
            ),
            (
                json!({"input": "hi", "conversation": {"id": "conv_\u{0}"}}),
                "conversation.id",
            ),
            (
                json!({"input": [{"type": "item_reference", "id": "msg_\u{0}"}]}),
                "input[0].id",
            ),
            (
                json!({"input": [{"type": "message", "id": "m\u{0}", "role": "user", "content": "x"}]}),
                "input[0].id",
            ),
        ];
        for (body, param) in bodies {
            let answer = gateway.post("/v1/responses", &body).await;
            assert_400(&answer, param, &format!("{context} {body}"));
            let compact = gateway.post("/v1/responses/compact", &body).await;
            assert!(
                compact.status == 400,
                "{context} compact {body}: {}",
                compact.body
            );
        }
        assert_eq!(
            gateway.mock_stats.requests.load(Ordering::SeqCst),
            0,
            "{context}: nothing reached the backend"
        );
        for path in [
            "/v1/responses/resp_%00",
            "/v1/responses/resp_%00/input_items",
            "/v1/conversations/conv_%00",
            "/v1/conversations/conv_%00/items",
            "/v1/conversations/conv_1/items/msg_%00",
        ] {
            let answer = gateway.get(path).await;
            assert_eq!(answer.status, 400, "{context} GET {path}: {}", answer.body);
            assert_eq!(answer.body["error"]["code"], "invalid_value", "{path}");
            if !path.ends_with("items") {
                assert_eq!(delete(&gateway, path).await.status, 400, "DELETE {path}");
            }
        }
        for query in [
            "model=%00",
            "after=resp_%00",
            "metadata[k]=%00",
            "metadata[%00]=v",
        ] {
            let answer = gateway.get(&format!("/v1/responses?{query}")).await;
            assert_eq!(answer.status, 400, "{context} {query}: {}", answer.body);
        }
        let conversation = gateway
            .post("/v1/conversations", &json!({"metadata": {"k": "\u{0}"}}))
            .await;
        assert_400(&conversation, "metadata", &context);
        let conversation = gateway
            .post(
                "/v1/conversations",
                &json!({"items": [{"type": "message", "id": "\u{0}", "role": "user", "content": "x"}]}),
            )
            .await;
        assert_400(&conversation, "items[0].id", &context);
    }
}

#[tokio::test]
async fn duplicate_item_ids_are_refused_so_lookups_by_id_stay_unambiguous() {
    for storage in storages() {
        let gateway = start_on(storage, |_| {}).await;
        let context = format!("{storage:?}");
        let twice = json!([
            {"type": "message", "id": "msg_dup", "role": "user", "content": "a"},
            {"type": "message", "id": "msg_dup", "role": "user", "content": "b"},
        ]);
        let answer = gateway
            .post("/v1/responses", &json!({"input": twice}))
            .await;
        assert_400(&answer, "input[1].id", &context);
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Duplicate item found with id msg_dup")
        );
        let conversation = gateway
            .post(
                "/v1/conversations",
                &json!({"items": [{"type": "message", "id": "msg_a", "role": "user", "content": "a"}]}),
            )
            .await;
        assert_eq!(conversation.status, 200, "{context}: {}", conversation.body);
        let id = conversation.body["id"].as_str().unwrap();
        let items = format!("/v1/conversations/{id}/items");
        let again = gateway
            .post(
                &items,
                &json!({"items": [{"type": "message", "id": "msg_a", "role": "user", "content": "b"}]}),
            )
            .await;
        assert_400(&again, "items[0].id", &context);
        let within = gateway.post(&items, &json!({"items": twice})).await;
        assert_400(&within, "items[1].id", &context);
        let in_a_response = gateway
            .post(
                "/v1/responses",
                &json!({"conversation": id, "input": [{"type": "message", "id": "msg_a", "role": "user", "content": "c"}]}),
            )
            .await;
        assert_400(&in_a_response, "input[0].id", &context);
        // The one item is what GET names and DELETE removes.
        let item = gateway.get(&format!("{items}/msg_a")).await;
        assert_eq!(item.status, 200, "{context}");
        assert_eq!(item.body["content"][0]["text"], "a");
        assert_eq!(
            delete(&gateway, &format!("{items}/msg_a")).await.status,
            200
        );
        assert_eq!(gateway.get(&format!("{items}/msg_a")).await.status, 404);
        // Paging after an id of a response's input is exact.
        let created = gateway
            .create(json!({"input": [
                {"type": "message", "id": "msg_1", "role": "user", "content": "1"},
                {"type": "message", "id": "msg_2", "role": "user", "content": "2"},
            ]}))
            .await;
        let page = gateway
            .get(&format!(
                "/v1/responses/{}/input_items?order=asc&after=msg_1",
                created["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(page.status, 200, "{context}: {}", page.body);
        assert_eq!(page.body["data"].as_array().unwrap().len(), 1);
        assert_eq!(page.body["data"][0]["id"], "msg_2");
        // Two references to one stored item would store it twice.
        let twice = gateway
            .post(
                "/v1/responses",
                &json!({"input": [
                    {"type": "item_reference", "id": "msg_1"},
                    {"type": "item_reference", "id": "msg_1"},
                ]}),
            )
            .await;
        assert_400(&twice, "input[1].id", &context);
    }
}

#[tokio::test]
async fn every_rejection_is_in_the_openai_error_shape() {
    let gateway = start_with(|_| {}).await;
    for path in ["/v1/responses/%FF", "/v1/conversations/%FF/items"] {
        let answer = gateway.get(path).await;
        assert_eq!(answer.status, 400, "{path}");
        assert_eq!(answer.headers["content-type"], "application/json", "{path}");
        assert_eq!(answer.body["error"]["code"], "invalid_value", "{path}");
        assert!(answer.body["error"]["message"].is_string());
    }
}

/// Writes `request` on a fresh connection and reads until the server closes
/// it (or `patience` runs out). Returns what it read, and whether it closed.
async fn trickle(gateway: &Gateway, request: &[u8], patience: Duration) -> (String, bool) {
    let address = gateway.url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut read = Vec::new();
    let closed = tokio::time::timeout(patience, tcp.read_to_end(&mut read))
        .await
        .is_ok();
    (String::from_utf8_lossy(&read).into_owned(), closed)
}

#[tokio::test]
async fn clients_that_send_half_a_request_are_timed_out() {
    let gateway = start_with(|config| {
        config.server.header_read_timeout = Duration::from_millis(300);
        config.server.body_read_timeout = Duration::from_millis(300);
    })
    .await;
    let mut half_headers = Vec::new();
    for _ in 0..20 {
        let gateway = &gateway;
        half_headers.push(async move {
            trickle(
                gateway,
                b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: app",
                Duration::from_secs(5),
            )
            .await
        });
    }
    for (_, closed) in futures::future::join_all(half_headers).await {
        assert!(closed, "a connection with half a header is closed");
    }
    let (answer, closed) = trickle(
        &gateway,
        b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"input\":",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(closed);
}

#[tokio::test]
async fn a_silent_connection_is_closed_but_an_idle_keep_alive_one_lives_its_idle_timeout() {
    let gateway = start_with(|config| {
        config.server.header_read_timeout = Duration::from_millis(300);
        config.server.idle_timeout = Duration::from_millis(1500);
    })
    .await;
    let (_, closed) = trickle(&gateway, b"", Duration::from_secs(5)).await;
    assert!(closed, "a connection that sends nothing is closed");

    let address = gateway.url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let read = tcp.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
    let started = tokio::time::Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest))
        .await
        .expect("closed once idle")
        .unwrap();
    let idle = started.elapsed();
    assert!(
        idle >= Duration::from_millis(1000),
        "kept past the header timeout while idle: closed after {idle:?}"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_its_stream_is_let_go() {
    let gateway = start_with(|config| {
        config.server.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let address: std::net::SocketAddr = gateway.url.trim_start_matches("http://").parse().unwrap();
    // A small receive buffer, so that the stream cannot fit into the sockets'
    // buffers whatever the machine's TCP autotuning.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(address).await.unwrap();
    let body = r#"{"input":"[[tokens:60000]]","stream":true,"store":false}"#;
    let request = format!(
        "POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // Nothing is read for a while: the gateway can no longer write, and after
    // the stall clock (1 s here) it lets the connection go, which drops the
    // response (and so its backend request). Without the clock the connection
    // stays open, and the read below never ends.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut received))
        .await
        .expect("the gateway closed the connection")
        .ok();
    let received = String::from_utf8_lossy(&received);
    assert!(
        received.starts_with("HTTP/1.1 200"),
        "{}",
        &received[..received.len().min(200)]
    );
    assert!(
        !received.contains("data: [DONE]"),
        "the stream was cut, not finished ({} bytes read)",
        received.len()
    );
}

#[tokio::test]
async fn requests_past_the_item_and_tool_limits_are_a_400_before_anything_runs() {
    let gateway = start_with(|config| {
        config.server.max_input_items = 3;
        config.server.max_tools = 2;
    })
    .await;
    let message = json!({"type": "message", "role": "user", "content": "hi"});
    let function = json!({"type": "function", "name": "f", "parameters": {"type": "object"}});
    let items = gateway
        .post("/v1/responses", &json!({"input": vec![message.clone(); 4]}))
        .await;
    assert_400(&items, "input", "four items");
    let tools = gateway
        .post(
            "/v1/responses",
            &json!({"input": "hi", "tools": vec![function.clone(); 3]}),
        )
        .await;
    assert_400(&tools, "tools", "three tools");
    let conversation = gateway
        .post(
            "/v1/conversations",
            &json!({"items": vec![message.clone(); 4]}),
        )
        .await;
    assert_400(&conversation, "items", "a conversation of four");
    assert_eq!(gateway.mock_stats.requests.load(Ordering::SeqCst), 0);
    // At the limits, all is well.
    let at = gateway
        .post(
            "/v1/responses",
            &json!({"input": vec![message; 3], "tools": vec![function; 2]}),
        )
        .await;
    assert_eq!(at.status, 200, "{}", at.body);
}
