//! Errors as HTTP answers: the status from the public error table, the OpenAI error
//! envelope as the body, and `Retry-After` when a backend asked for patience.

use antwort_api::{ApiError, ErrorCode};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An `ApiError` on its way to the client.
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let error = self.0;
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Logged once, here at the edge, at a level that matches whose fault it is.
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), code = error.code.as_str(), message = %error.message, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), code = error.code.as_str(), message = %error.message, "request rejected");
        }
        let mut response = (status, axum::Json(error.body())).into_response();
        if let Some(retry_after) = error
            .retry_after
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after);
        }
        if let Some(id) = error
            .response_id
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            response.headers_mut().insert(RESPONSE_ID_HEADER, id);
        }
        response
    }
}

/// Names the response an error ended, when one had started.
pub const RESPONSE_ID_HEADER: &str = "x-antwort-response-id";

/// The largest rejection body read to keep its text as the message.
const REJECTION_BODY_BYTES: usize = 4096;

/// Every error answer in the OpenAI shape, also those written below the
/// handlers (an extractor's rejection, a limit): same status, the text it had
/// as the message. JSON answers, the handlers' own, pass untouched.
pub(crate) async fn in_openai_shape(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, REJECTION_BODY_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("the request was rejected")
            .to_owned()
    } else {
        text
    };
    let code = match status.as_u16() {
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::RequestTooLarge,
        400..=499 => ErrorCode::InvalidValue,
        _ => ErrorCode::InternalError,
    };
    let body = serde_json::to_vec(&ApiError::new(code, message).body()).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}
