//! Request bodies read up to the configured limit, so that an oversized body is a
//! 413 in the OpenAI error shape on every route.

use antwort_api::{ApiError, ErrorCode};
use axum::body::{Body, Bytes};

/// Reads the body up to the configured limit; past it, a 413 in the OpenAI shape.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let too_large = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::new(
                ErrorCode::RequestTooLarge,
                format!("The request body is larger than the limit of {limit} bytes"),
            )
        } else {
            ApiError::new(
                ErrorCode::InvalidJson,
                format!("Cannot read the request body: {error}"),
            )
        }
    })
}
