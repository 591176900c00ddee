//! Errors as HTTP answers: the status from the public error table, the OpenAI error
//! envelope as the body, and `Retry-After` when a backend asked for patience.

use antwort_api::ApiError;
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
        response
    }
}
