//! Request bodies read up to the configured limit, so that an oversized body is a
//! 413 in the OpenAI error shape on every route, and within a time bound.

use antwort_api::{ApiError, ErrorCode};
use std::time::Duration;

use axum::body::{Body, Bytes};

/// Reads the body up to the configured limit; past it, a 413 in the OpenAI
/// shape. A body that takes longer than `within` to arrive is a 408: a client
/// that trickles its body must not hold a connection and a task without end.
pub async fn read_body(body: Body, limit: usize, within: Duration) -> Result<Bytes, ApiError> {
    let read = tokio::time::timeout(within, axum::body::to_bytes(body, limit)).await;
    let Ok(read) = read else {
        return Err(ApiError::new(
            ErrorCode::RequestTimeout,
            format!("The request body did not arrive within {within:?}"),
        ));
    };
    read.map_err(|error| {
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
