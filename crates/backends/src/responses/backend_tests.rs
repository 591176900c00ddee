//! The backend against a scripted server on a local socket: what it sends,
//! what it makes of answers, and that dropping its stream hangs up.

use super::*;
use antwort_engine::{BackendErrorKind, FinishReason, ModelEvent};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What the server does after its answer.
#[derive(Clone, Copy)]
enum Then {
    Close,
    /// Keeps the connection open and reports when the client hangs up.
    Hold,
}

struct Server {
    base_url: String,
    /// The request line, headers and body the server received.
    request: oneshot::Receiver<String>,
    /// Fires when the client closed the connection while the server held it.
    hung_up: oneshot::Receiver<()>,
}

/// Serves one request with `head` (status line and headers) and `body`.
async fn serve(head: String, body: String, then: Then) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (request_tx, request) = oneshot::channel();
    let (hung_up_tx, hung_up) = oneshot::channel();
    antwort_engine::tasks::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let received = read_request(&mut socket).await;
        let _ = request_tx.send(received);
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(body.as_bytes()).await.unwrap();
        socket.flush().await.unwrap();
        match then {
            Then::Close => drop(socket),
            Then::Hold => {
                let mut rest = [0u8; 64];
                while socket.read(&mut rest).await.is_ok_and(|n| n > 0) {}
                let _ = hung_up_tx.send(());
            }
        }
    });
    Server {
        base_url: format!("http://{address}"),
        request,
        hung_up,
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = socket.read(&mut buffer).await.unwrap();
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length || n == 0 {
                return text;
            }
        }
        if n == 0 {
            return text;
        }
    }
}

fn sse_head() -> String {
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n".into()
}

fn sse(events: &[Value]) -> String {
    events
        .iter()
        .map(|event| {
            format!(
                "event: {}\ndata: {event}\n\n",
                event["type"].as_str().unwrap()
            )
        })
        .collect()
}

fn backend(base_url: &str, timeout: Duration) -> ResponsesBackend {
    ResponsesBackend::new(ResponsesBackendConfig {
        base_url: base_url.into(),
        api_key: Some("k3y".into()),
        connect_timeout: Duration::from_secs(2),
        timeout,
        model_options: HashMap::new(),
        default_model_options: ModelOptions::default(),
        tokenize: false,
    })
    .unwrap()
}

fn model_request(stream: bool) -> ModelRequest {
    let body = json!({"input": "hi", "stream": stream, "model": "gpt-x"}).to_string();
    let request = antwort_api::CreateResponseRequest::from_json(body.as_bytes()).unwrap();
    antwort_engine::prepare::plan(
        request,
        None,
        "resp_1".into(),
        0,
        &[],
        &antwort_engine::Scope::default(),
    )
    .unwrap()
    .model_request
}

fn text_delta(delta: &str) -> Value {
    json!({"type": "response.output_text.delta", "item_id": "msg_b", "output_index": 0, "delta": delta})
}

#[tokio::test]
async fn a_streamed_turn_is_posted_stateless_and_read_as_events() {
    let body = sse(&[
        json!({"type": "response.created", "response": {"status": "in_progress"}}),
        json!({"type": "response.output_item.added", "output_index": 0,
               "item": {"type": "message", "id": "msg_b", "content": []}}),
        text_delta("Hi"),
        json!({"type": "response.completed", "response": {"status": "completed",
               "usage": {"input_tokens": 1, "output_tokens": 1}}}),
    ]);
    let server = serve(sse_head(), body, Then::Close).await;
    let backend = backend(&server.base_url, Duration::from_secs(5));
    let stream = backend.generate(&model_request(true)).await.unwrap();
    let events: Vec<_> = stream.collect().await;
    let events: Vec<ModelEvent> = events.into_iter().map(Result::unwrap).collect();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(matches!(&events[1], ModelEvent::TextDelta { text, .. } if text == "Hi"));
    assert_eq!(events[3], ModelEvent::Finish(FinishReason::Stop));
    let request = server.request.await.unwrap();
    assert!(
        request.starts_with("POST /v1/responses HTTP/1.1"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer k3y")
    );
    let sent: Value =
        serde_json::from_str(&request[request.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(sent["store"], false);
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["model"], "gpt-x");
}

#[tokio::test]
async fn a_stream_that_ends_without_its_terminal_event_is_interrupted() {
    let server = serve(sse_head(), sse(&[text_delta("half")]), Then::Close).await;
    let backend = backend(&server.base_url, Duration::from_secs(5));
    let stream = backend.generate(&model_request(true)).await.unwrap();
    let events: Vec<_> = stream.collect().await;
    let last = events.last().unwrap().as_ref().unwrap_err();
    assert!(
        matches!(last.kind, BackendErrorKind::Interrupted(_)),
        "{last}"
    );
    assert!(last.is_retryable());
}

#[tokio::test]
async fn a_silent_backend_times_out_mid_stream() {
    let server = serve(sse_head(), sse(&[text_delta("a")]), Then::Hold).await;
    let backend = backend(&server.base_url, Duration::from_millis(300));
    let mut stream = backend.generate(&model_request(true)).await.unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    let mut last = None;
    while let Some(event) = stream.next().await {
        last = Some(event);
    }
    let error = last.unwrap().unwrap_err();
    assert!(
        matches!(error.kind, BackendErrorKind::Timeout(_)),
        "{error}"
    );
}

#[tokio::test]
async fn dropping_the_stream_hangs_up_on_the_backend() {
    let server = serve(sse_head(), sse(&[text_delta("a")]), Then::Hold).await;
    let backend = backend(&server.base_url, Duration::from_secs(30));
    let mut stream = backend.generate(&model_request(true)).await.unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    drop(stream);
    tokio::time::timeout(Duration::from_secs(5), server.hung_up)
        .await
        .expect("the backend connection closes when the stream is dropped")
        .unwrap();
}

#[tokio::test]
async fn error_statuses_keep_openais_message_and_retry_after() {
    let body = json!({"error": {"message": "Rate limit reached", "type": "requests",
                                "code": "rate_limit_exceeded"}})
    .to_string();
    let head = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 3\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let server = serve(head, body, Then::Close).await;
    let backend = backend(&server.base_url, Duration::from_secs(5));
    let Err(error) = backend.generate(&model_request(true)).await else {
        panic!("a 429 is an error");
    };
    assert_eq!(
        error.kind,
        BackendErrorKind::Status {
            status: 429,
            message: "Rate limit reached".into(),
            retry_after: Some(Duration::from_secs(3)),
        }
    );
}

#[tokio::test]
async fn a_whole_response_becomes_events() {
    let body = json!({"id": "resp_b", "object": "response", "status": "completed", "output": [
        {"type": "function_call", "id": "fc_b", "call_id": "call_1", "name": "f", "arguments": "{}"}]})
    .to_string();
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let server = serve(head, body, Then::Close).await;
    let backend = backend(&server.base_url, Duration::from_secs(5));
    let stream = backend.generate(&model_request(false)).await.unwrap();
    let events: Vec<ModelEvent> = stream.map(Result::unwrap).collect().await;
    assert_eq!(
        events.last(),
        Some(&ModelEvent::Finish(FinishReason::ToolCalls))
    );
    let request = server.request.await.unwrap();
    let sent: Value =
        serde_json::from_str(&request[request.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(sent["stream"], false);
}

#[tokio::test]
async fn with_tokenize_a_count_is_asked_of_the_servers_root() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 53\r\nconnection: close\r\n\r\n";
    let body = r#"{"count": 17, "max_model_len": 4096, "tokens": [1,2]}"#;
    assert_eq!(body.len(), 53);
    let server = serve(head.into(), body.into(), Then::Close).await;
    let mut counting = backend(&server.base_url, Duration::from_secs(5));
    assert!(
        counting.count_tokens(&model_request(false)).await.is_none(),
        "not configured"
    );
    counting.tokenize = Some(Tokenize::new(&counting.upstream).unwrap());
    let count = counting.count_tokens(&model_request(false)).await;
    assert_eq!(count, Some(Ok(17)));
    let request = server.request.await.unwrap();
    assert!(request.starts_with("POST /tokenize HTTP/1.1"), "{request}");
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer k3y")
    );
    let sent: Value =
        serde_json::from_str(&request[request.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(
        sent,
        json!({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": true})
    );
}
