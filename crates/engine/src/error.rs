//! How backend failures become client-facing errors.
//!
//! Before the first byte they are HTTP statuses (502 for a bad answer, 503 when the
//! backend cannot be reached, 504 on timeout, 429 passed through with its
//! `Retry-After`); after it they become the `error` event and `response.failed`.

use antwort_api::{ApiError, ErrorCode};

use crate::model::BackendError;

pub fn backend_error(error: BackendError) -> ApiError {
    match error {
        BackendError::Unavailable(detail) => ApiError::new(
            ErrorCode::BackendUnavailable,
            format!("The inference backend is unreachable: {detail}"),
        ),
        BackendError::Timeout(detail) => ApiError::new(
            ErrorCode::BackendTimeout,
            format!("The inference backend did not answer in time: {detail}"),
        ),
        BackendError::Status {
            status,
            message,
            retry_after,
        } => {
            let code = match status {
                429 => ErrorCode::RateLimitExceeded,
                400 | 413 | 422 => ErrorCode::BackendBadRequest,
                404 => ErrorCode::ModelNotFound,
                _ => ErrorCode::BackendError,
            };
            let text = match status {
                401 | 403 => format!(
                    "The inference backend rejected the gateway's credentials (HTTP {status}): {message}"
                ),
                _ => format!("The inference backend answered HTTP {status}: {message}"),
            };
            ApiError {
                retry_after,
                ..ApiError::new(code, text)
            }
        }
        BackendError::Protocol(detail) => ApiError::new(
            ErrorCode::BackendError,
            format!("The inference backend sent an invalid answer: {detail}"),
        ),
    }
}

/// Store failures seen by a client: the database is down, or what it holds cannot
/// be read.
pub fn store_error(error: crate::store::StoreError) -> ApiError {
    match error {
        crate::store::StoreError::Unavailable(detail) => ApiError::new(
            ErrorCode::StorageUnavailable,
            format!("The store is unavailable: {detail}"),
        ),
        crate::store::StoreError::Corrupt(detail) => ApiError::new(
            ErrorCode::InternalError,
            format!("Stored data could not be read: {detail}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_tell_the_failures_apart() {
        let status = |e: BackendError| backend_error(e).status();
        assert_eq!(status(BackendError::Unavailable("refused".into())), 503);
        assert_eq!(status(BackendError::Timeout("60s".into())), 504);
        assert_eq!(status(BackendError::Protocol("bad json".into())), 502);
        let rate = backend_error(BackendError::Status {
            status: 429,
            message: "slow down".into(),
            retry_after: Some("2".into()),
        });
        assert_eq!(rate.status(), 429);
        assert_eq!(rate.retry_after.as_deref(), Some("2"));
        assert_eq!(
            status(BackendError::Status {
                status: 500,
                message: String::new(),
                retry_after: None
            }),
            502
        );
    }
}
