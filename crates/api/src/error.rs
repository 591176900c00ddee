//! The public error table and the OpenAI error shape.
//!
//! Every error a client can see is one `ErrorCode` row: its HTTP status, its OpenAI
//! `type` and its machine-readable `code` live together here (as Meilisearch keeps one
//! table), so the server maps an error once at the edge and SDKs raise the right class.

use serde::{Deserialize, Serialize};

/// One row of the public error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The body is not valid JSON or does not have the expected shape.
    InvalidJson,
    /// A field has a value of the wrong type or outside its range.
    InvalidValue,
    /// A required field is missing.
    MissingRequiredParameter,
    /// A field that no version of the API defines.
    UnknownParameter,
    /// A field or value the API defines that this deployment does not support yet.
    UnsupportedParameter,
    /// `previous_response_id` names no stored response.
    PreviousResponseNotFound,
    /// The input does not fit the model's context window.
    ContextLengthExceeded,
    /// The request body exceeds the configured limit.
    RequestTooLarge,
    /// The request body did not arrive in time.
    RequestTimeout,
    /// The request carries no credential, or one that is not valid.
    Unauthenticated,
    /// The credential is valid but lacks the scope the route needs.
    PermissionDenied,
    /// The route or object does not exist.
    NotFound,
    /// The HTTP method is not allowed on this route.
    MethodNotAllowed,
    /// A rate limit of the gateway (per key or tenant) or of the backend.
    RateLimitExceeded,
    /// The backend rejected the request as invalid (passed through).
    BackendBadRequest,
    /// The backend does not know the model.
    ModelNotFound,
    /// The backend could not be reached.
    BackendUnavailable,
    /// The backend answered with an error or with something that is not a valid answer.
    BackendError,
    /// The backend did not answer in time.
    BackendTimeout,
    /// The database could not be reached or refused a write.
    StorageUnavailable,
    /// A bug or an unexpected state inside the gateway.
    InternalError,
    /// The gateway is shutting down: its drain time ran out before the work did.
    ShuttingDown,
    /// The client cancelled the response before it began (WebSocket `response.cancel`).
    Cancelled,
    /// A response is already in progress where only one may run at a time (a
    /// WebSocket without `stream_id`, or a stream whose queue is full).
    ResponseInProgress,
    /// A WebSocket reached its lifetime cap (`websocket.max_connection_duration`).
    WebSocketConnectionLimitReached,
}

impl ErrorCode {
    /// The HTTP status that the OpenAI SDKs map to the right exception class.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidJson
            | Self::InvalidValue
            | Self::MissingRequiredParameter
            | Self::UnknownParameter
            | Self::UnsupportedParameter
            | Self::PreviousResponseNotFound
            | Self::ContextLengthExceeded
            | Self::BackendBadRequest
            | Self::Cancelled
            | Self::WebSocketConnectionLimitReached => 400,
            Self::ResponseInProgress => 409,
            Self::Unauthenticated => 401,
            Self::PermissionDenied => 403,
            Self::NotFound | Self::ModelNotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTooLarge => 413,
            Self::RequestTimeout => 408,
            Self::RateLimitExceeded => 429,
            Self::InternalError => 500,
            Self::BackendError => 502,
            Self::BackendUnavailable | Self::StorageUnavailable | Self::ShuttingDown => 503,
            Self::BackendTimeout => 504,
        }
    }

    /// The OpenAI error `type`.
    pub fn error_type(self) -> &'static str {
        match self {
            Self::InvalidJson
            | Self::InvalidValue
            | Self::MissingRequiredParameter
            | Self::UnknownParameter
            | Self::UnsupportedParameter
            | Self::PreviousResponseNotFound
            | Self::ContextLengthExceeded
            | Self::RequestTooLarge
            | Self::RequestTimeout
            | Self::MethodNotAllowed
            | Self::BackendBadRequest
            | Self::Cancelled
            | Self::ResponseInProgress
            | Self::WebSocketConnectionLimitReached
            | Self::Unauthenticated
            | Self::PermissionDenied
            | Self::ModelNotFound => "invalid_request_error",
            Self::NotFound => "not_found_error",
            Self::RateLimitExceeded => "rate_limit_error",
            Self::BackendUnavailable
            | Self::BackendError
            | Self::BackendTimeout
            | Self::StorageUnavailable
            | Self::ShuttingDown
            | Self::InternalError => "server_error",
        }
    }

    /// The machine-readable `code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidValue => "invalid_value",
            Self::MissingRequiredParameter => "missing_required_parameter",
            Self::UnknownParameter => "unknown_parameter",
            Self::UnsupportedParameter => "unsupported_parameter",
            Self::PreviousResponseNotFound => "previous_response_not_found",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::RequestTooLarge => "request_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::Unauthenticated => "invalid_api_key",
            Self::PermissionDenied => "insufficient_permissions",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::BackendBadRequest => "backend_bad_request",
            Self::ModelNotFound => "model_not_found",
            Self::BackendUnavailable => "backend_unavailable",
            Self::BackendError => "backend_error",
            Self::BackendTimeout => "backend_timeout",
            Self::StorageUnavailable => "storage_unavailable",
            Self::InternalError => "internal_error",
            Self::ShuttingDown => "server_shutting_down",
            Self::Cancelled => "response_cancelled",
            Self::ResponseInProgress => "response_in_progress",
            Self::WebSocketConnectionLimitReached => "websocket_connection_limit_reached",
        }
    }
}

/// An error meant for a client: a table row, a message and the parameter at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub param: Option<String>,
    /// Seconds the client should wait, forwarded from a backend's `Retry-After`.
    pub retry_after: Option<String>,
    /// The response the error ended, when one had started (sent as a header).
    pub response_id: Option<String>,
}

impl ErrorCode {
    /// Every row, for looking a code up by its string.
    pub const ALL: &'static [ErrorCode] = &[
        Self::InvalidJson,
        Self::InvalidValue,
        Self::MissingRequiredParameter,
        Self::UnknownParameter,
        Self::UnsupportedParameter,
        Self::PreviousResponseNotFound,
        Self::ContextLengthExceeded,
        Self::RequestTooLarge,
        Self::RequestTimeout,
        Self::Unauthenticated,
        Self::PermissionDenied,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RateLimitExceeded,
        Self::BackendBadRequest,
        Self::ModelNotFound,
        Self::BackendUnavailable,
        Self::BackendError,
        Self::BackendTimeout,
        Self::StorageUnavailable,
        Self::InternalError,
        Self::ShuttingDown,
        Self::Cancelled,
        Self::ResponseInProgress,
        Self::WebSocketConnectionLimitReached,
    ];

    /// The row whose `code` is `code`.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|row| row.as_str() == code)
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            param: None,
            retry_after: None,
            response_id: None,
        }
    }

    /// A 400 for a field whose value is wrong.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidValue, message).with_param(param)
    }

    /// A 400 for a field this deployment does not support yet.
    pub fn unsupported(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedParameter, message).with_param(param)
    }

    pub fn with_response_id(mut self, id: impl Into<String>) -> Self {
        self.response_id = Some(id.into());
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The body of an HTTP error response.
    pub fn body(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                message: self.message.clone(),
                kind: self.code.error_type().to_owned(),
                param: self.param.clone(),
                code: Some(self.code.as_str().to_owned()),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl std::error::Error for ApiError {}

/// `{"error": {...}}`, the body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// The OpenAI error object; also the payload of the streaming `error` event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_the_openai_shape() {
        let error = ApiError::invalid("temperature", "temperature must be between 0 and 2");
        let json = serde_json::to_value(error.body()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {
                "message": "temperature must be between 0 and 2",
                "type": "invalid_request_error",
                "param": "temperature",
                "code": "invalid_value"
            }})
        );
        assert_eq!(error.status(), 400);
    }

    #[test]
    fn every_code_round_trips_through_its_string() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(code.as_str()), Some(*code));
        }
    }

    #[test]
    fn backend_failures_map_to_distinct_statuses() {
        assert_eq!(ErrorCode::BackendError.status(), 502);
        assert_eq!(ErrorCode::BackendUnavailable.status(), 503);
        assert_eq!(ErrorCode::BackendTimeout.status(), 504);
        assert_eq!(ErrorCode::RateLimitExceeded.status(), 429);
    }
}
