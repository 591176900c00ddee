//! The messages of a Responses WebSocket: what a client sends
//! ([`ClientMessage`], read from one text frame) and how the server's answers
//! are written (an engine event as SSE carries it, with the turn's
//! `stream_id`; an error in the WebSocket error shape).

use antwort_api::{ApiError, CreateResponseRequest, ErrorCode, StreamEvent, check_text};
use serde_json::{Map, Value};

/// The longest `stream_id` a client may choose.
const MAX_STREAM_ID_CHARS: usize = 64;

/// One client message.
#[derive(Debug)]
pub enum ClientMessage {
    /// `response.create`: a turn, on the lane `stream_id` names (the
    /// connection's own lane without one).
    Create {
        stream_id: Option<String>,
        request: Box<CreateResponseRequest>,
        /// `generate: false`: a warm-up that generates nothing (Codex CLI).
        warm_up: bool,
    },
    /// `response.cancel`: stops the running turn that `response_id` names, or
    /// the one of lane `stream_id`.
    Cancel {
        stream_id: Option<String>,
        response_id: Option<String>,
    },
}

/// A message that could not be read, with the lane it named when it named one
/// (its error goes to that lane).
#[derive(Debug)]
pub struct Unreadable {
    pub stream_id: Option<String>,
    pub error: Box<ApiError>,
}

impl ClientMessage {
    pub fn parse(text: &str) -> Result<Self, Unreadable> {
        let unreadable = |error| Unreadable {
            stream_id: None,
            error: Box::new(error),
        };
        let mut fields: Map<String, Value> = match serde_json::from_str(text) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => {
                return Err(unreadable(ApiError::new(
                    ErrorCode::InvalidJson,
                    "A WebSocket message is one JSON object with a `type`.",
                )));
            }
            Err(error) => {
                return Err(unreadable(ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("The message is not valid JSON: {error}"),
                )));
            }
        };
        let kind = match fields.remove("type") {
            Some(Value::String(kind)) => kind,
            Some(_) => return Err(unreadable(ApiError::invalid("type", "`type` is a string"))),
            None => {
                return Err(unreadable(
                    ApiError::new(
                        ErrorCode::MissingRequiredParameter,
                        "The message has no `type`; send `response.create` or `response.cancel`.",
                    )
                    .with_param("type"),
                ));
            }
        };
        let stream_id = take_stream_id(&mut fields).map_err(unreadable)?;
        let named = |error| Unreadable {
            stream_id: stream_id.clone(),
            error: Box::new(error),
        };
        match kind.as_str() {
            "response.create" => {
                let warm_up = match fields.remove("generate") {
                    None | Some(Value::Null) | Some(Value::Bool(true)) => false,
                    Some(Value::Bool(false)) => true,
                    Some(_) => {
                        return Err(named(ApiError::invalid(
                            "generate",
                            "`generate` is a boolean",
                        )));
                    }
                };
                let request = create_request(fields).map_err(named)?;
                Ok(ClientMessage::Create {
                    stream_id,
                    request: Box::new(request),
                    warm_up,
                })
            }
            "response.cancel" => {
                let response_id = match fields.remove("response_id") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(id)) => {
                        check_text("response_id", &id).map_err(named)?;
                        Some(id)
                    }
                    Some(_) => {
                        return Err(named(ApiError::invalid(
                            "response_id",
                            "`response_id` is a string",
                        )));
                    }
                };
                if let Some(name) = fields.keys().next() {
                    return Err(named(unknown_field(name)));
                }
                Ok(ClientMessage::Cancel {
                    stream_id,
                    response_id,
                })
            }
            other => Err(named(ApiError::invalid(
                "type",
                format!(
                    "Unknown message type '{}'; this server takes `response.create` and `response.cancel`.",
                    other.chars().take(64).collect::<String>()
                ),
            ))),
        }
    }
}

fn take_stream_id(fields: &mut Map<String, Value>) -> Result<Option<String>, ApiError> {
    match fields.remove("stream_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => {
            check_text("stream_id", &id)?;
            if id.is_empty() || id.chars().count() > MAX_STREAM_ID_CHARS {
                return Err(ApiError::invalid(
                    "stream_id",
                    format!("`stream_id` is 1 to {MAX_STREAM_ID_CHARS} characters"),
                ));
            }
            Ok(Some(id))
        }
        Some(_) => Err(ApiError::invalid("stream_id", "`stream_id` is a string")),
    }
}

/// The create body of a `response.create`, checked as `POST /v1/responses`
/// checks its body. Every turn on a socket streams, so the HTTP transport's
/// fields are refused, except `stream: true`, which says only what the socket
/// does anyway and which Codex CLI sends on every turn.
fn create_request(mut fields: Map<String, Value>) -> Result<CreateResponseRequest, ApiError> {
    match fields.remove("stream") {
        None | Some(Value::Bool(true)) => {}
        Some(_) => {
            return Err(transport_field(
                "stream",
                "every turn on a WebSocket streams its events",
            ));
        }
    }
    if fields.contains_key("stream_options") {
        return Err(transport_field(
            "stream_options",
            "it is an option of HTTP streaming",
        ));
    }
    if fields.contains_key("background") {
        return Err(transport_field(
            "background",
            "background mode is not offered over a WebSocket; use POST /v1/responses",
        ));
    }
    let body = serde_json::to_vec(&Value::Object(fields)).map_err(|error| {
        ApiError::new(
            ErrorCode::InternalError,
            format!("cannot re-encode: {error}"),
        )
    })?;
    let mut request = CreateResponseRequest::from_json(&body)?;
    // The socket is a streaming view: the backend is asked to stream, as for SSE.
    request.stream = Some(true);
    Ok(request)
}

fn transport_field(name: &str, why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedParameter,
        format!("`{name}` is not sent in a WebSocket `response.create`: {why}."),
    )
    .with_param(name)
}

fn unknown_field(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnknownParameter,
        format!(
            "Unknown parameter: '{}'.",
            name.chars().take(64).collect::<String>()
        ),
    )
    .with_param(name.chars().take(64).collect::<String>())
}

/// An error in the WebSocket shape: `{"type": "error", "status", "error":
/// {"type", "code", "message", "param"}}`, with the lane it concerns.
pub fn error_text(error: &ApiError, stream_id: Option<&str>) -> String {
    let mut message = serde_json::json!({
        "type": "error",
        "status": error.code.status(),
        "error": error.body().error,
    });
    if let Some(stream_id) = stream_id {
        message["stream_id"] = Value::String(stream_id.to_owned());
    }
    message.to_string()
}

/// An engine event as SSE's `data:` carries it, with the turn's `stream_id`
/// when it has one.
pub fn event_text(event: &StreamEvent, stream_id: Option<&str>) -> Option<String> {
    let mut text = match serde_json::to_string(event) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!(%error, "cannot serialize a stream event");
            return None;
        }
    };
    if let Some(stream_id) = stream_id
        && text.ends_with('}')
    {
        // The event is an object: the field goes in before its closing brace.
        text.pop();
        text.push_str(",\"stream_id\":");
        text.push_str(&Value::String(stream_id.to_owned()).to_string());
        text.push('}');
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn error_of(text: &str) -> ApiError {
        *ClientMessage::parse(text).unwrap_err().error
    }

    #[test]
    fn a_create_carries_its_body_and_lane() {
        let message = ClientMessage::parse(
            r#"{"type":"response.create","stream_id":"a","model":"m","input":"hi","stream":true}"#,
        )
        .unwrap();
        let ClientMessage::Create {
            stream_id,
            request,
            warm_up,
        } = message
        else {
            panic!("not a create");
        };
        assert_eq!(stream_id.as_deref(), Some("a"));
        assert_eq!(request.model.as_deref(), Some("m"));
        assert!(!warm_up);
        let warm =
            ClientMessage::parse(r#"{"type":"response.create","model":"m","generate":false}"#);
        assert!(matches!(
            warm,
            Ok(ClientMessage::Create { warm_up: true, .. })
        ));
    }

    #[test]
    fn transport_fields_are_refused_by_name() {
        for (field, value) in [
            ("stream", "false"),
            ("stream_options", "{}"),
            ("background", "true"),
        ] {
            let error = error_of(&format!(
                r#"{{"type":"response.create","model":"m","{field}":{value}}}"#
            ));
            assert_eq!(error.param.as_deref(), Some(field));
            assert_eq!(error.code, ErrorCode::UnsupportedParameter);
        }
    }

    #[test]
    fn what_is_not_a_message_is_an_error_naming_why() {
        assert_eq!(error_of("{").code, ErrorCode::InvalidJson);
        assert_eq!(error_of("[1]").code, ErrorCode::InvalidJson);
        assert_eq!(
            error_of(r#"{"model":"m"}"#).code,
            ErrorCode::MissingRequiredParameter
        );
        let unknown =
            ClientMessage::parse(r#"{"type":"session.update","stream_id":"s"}"#).unwrap_err();
        assert_eq!(unknown.error.param.as_deref(), Some("type"));
        assert_eq!(unknown.stream_id.as_deref(), Some("s"));
        assert_eq!(
            error_of(r#"{"type":"response.create","stream_id":""}"#)
                .param
                .as_deref(),
            Some("stream_id")
        );
        assert_eq!(
            error_of(r#"{"type":"response.cancel","nope":1}"#).code,
            ErrorCode::UnknownParameter
        );
    }

    #[test]
    fn events_carry_their_lane() {
        let event = StreamEvent {
            sequence_number: 3,
            data: antwort_api::EventData::Error {
                error: ApiError::new(ErrorCode::BackendError, "x").body().error,
            },
        };
        let text = event_text(&event, Some("lane \"1\"")).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["stream_id"], "lane \"1\"");
        assert_eq!(value["sequence_number"], 3);
        let error: Value =
            serde_json::from_str(&error_text(&ApiError::invalid("input", "bad"), None)).unwrap();
        assert_eq!(error["status"], 400);
        assert_eq!(error["error"]["param"], "input");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert!(error.get("stream_id").is_none());
    }
}
