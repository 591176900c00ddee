//! How backend failures become client-facing errors.
//!
//! Before the first byte they are HTTP statuses (502 for a bad answer, 503 when the
//! backend cannot be reached, 504 on timeout, 429 passed through with its
//! `Retry-After`); after it they become the `error` event and `response.failed`.

use antwort_api::{ApiError, ErrorCode};

use crate::model::{BackendError, BackendErrorKind};

pub fn backend_error(error: BackendError) -> ApiError {
    if !error.backend.is_empty() {
        tracing::debug!(backend = %error.backend, error = %error.kind, "backend failed");
    }
    match error.kind {
        BackendErrorKind::Unavailable(detail) => ApiError::new(
            ErrorCode::BackendUnavailable,
            format!("The inference backend is unreachable: {detail}"),
        ),
        BackendErrorKind::Timeout(detail) => ApiError::new(
            ErrorCode::BackendTimeout,
            format!("The inference backend did not answer in time: {detail}"),
        ),
        BackendErrorKind::Status {
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
                retry_after: retry_after.map(whole_seconds),
                ..ApiError::new(code, text)
            }
        }
        BackendErrorKind::Protocol(detail) | BackendErrorKind::Interrupted(detail) => {
            ApiError::new(
                ErrorCode::BackendError,
                format!("The inference backend sent an invalid answer: {detail}"),
            )
        }
    }
}

/// A `Retry-After` value: whole seconds, rounded up.
fn whole_seconds(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    seconds.to_string()
}

/// A store's answer that must name something: its absence is `missing`.
pub(crate) fn found<T>(
    answer: Result<Option<T>, crate::store::StoreError>,
    missing: impl FnOnce() -> ApiError,
) -> Result<T, ApiError> {
    answer.map_err(store_error)?.ok_or_else(missing)
}

/// A store's answer to a change of something that must exist (a delete, an
/// append): `false` is `missing`.
pub(crate) fn changed(
    answer: Result<bool, crate::store::StoreError>,
    missing: impl FnOnce() -> ApiError,
) -> Result<(), ApiError> {
    if answer.map_err(store_error)? {
        Ok(())
    } else {
        Err(missing())
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
        assert_eq!(status(BackendError::unavailable("refused")), 503);
        assert_eq!(status(BackendError::timeout("60s")), 504);
        assert_eq!(status(BackendError::protocol("bad json")), 502);
        let rate = backend_error(BackendError::status(
            429,
            "slow down",
            Some(std::time::Duration::from_secs(2)),
        ));
        assert_eq!(rate.status(), 429);
        assert_eq!(rate.retry_after.as_deref(), Some("2"));
        let rounded = backend_error(BackendError::status(
            429,
            "",
            Some(std::time::Duration::from_millis(1500)),
        ));
        assert_eq!(rounded.retry_after.as_deref(), Some("2"));
        assert_eq!(status(BackendError::status(500, "", None)), 502);
    }
}
