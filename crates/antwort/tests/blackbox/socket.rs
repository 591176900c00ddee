//! The WebSocket suites' client: a plain tungstenite socket on a gateway's
//! `/v1/responses`, reading turns as the harness reads SSE streams.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{Gateway, Sse};

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A client socket on a gateway's `/v1/responses`.
pub struct Socket {
    pub stream: Stream,
    /// The upgrade's response headers.
    pub headers: tokio_tungstenite::tungstenite::http::HeaderMap,
}

pub const WAIT: Duration = Duration::from_secs(10);

impl Socket {
    pub async fn open(gateway: &Gateway) -> Self {
        Self::open_with(gateway, &[]).await.unwrap()
    }

    pub async fn open_with(
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

    pub async fn send(&mut self, message: Value) {
        self.send_text(message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    pub async fn create(&mut self, body: Value) {
        let mut message = body;
        message["type"] = json!("response.create");
        self.send(message).await;
    }

    /// The next JSON message; `None` once the server closed the socket
    /// (with the close frame's code).
    pub async fn next(&mut self) -> Result<Value, Option<u16>> {
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

    pub async fn message(&mut self) -> Value {
        self.next().await.expect("a message, not a close")
    }

    /// The events of one turn, up to its terminal event, grammar-checked.
    pub async fn events(&mut self, stream_id: Option<&str>) -> Sse {
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
    pub async fn turn(&mut self, body: Value) -> Sse {
        self.create(body).await;
        self.events(None).await
    }

    /// A message that must be an error in the WebSocket shape.
    pub async fn error(&mut self) -> Value {
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

pub fn response_id(sse: &Sse) -> String {
    sse.final_response()["id"].as_str().unwrap().to_owned()
}

/// Waits until `done` holds, up to the socket suite's wait.
pub async fn wait_for(done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
