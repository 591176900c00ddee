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
            // A 404 names a missing model only when the backend says so (vLLM,
            // Ollama and OpenAI do); otherwise the gateway's backend URL is wrong.
            let names_model = message.to_ascii_lowercase().contains("model");
            let code = match status {
                429 => ErrorCode::RateLimitExceeded,
                400 | 413 | 422 => ErrorCode::BackendBadRequest,
                404 if names_model => ErrorCode::ModelNotFound,
                _ => ErrorCode::BackendError,
            };
            let text = match status {
                401 | 403 => format!(
                    "The inference backend refused the gateway's own credentials (HTTP {status}); \
                     the gateway's operator must fix its backend API key: {message}"
                ),
                404 if !names_model => format!(
                    "The inference backend has no such endpoint (HTTP 404); the gateway's \
                     backend URL may be wrong: {message}"
                ),
                _ => format!("The inference backend answered HTTP {status}: {message}"),
            };
            ApiError {
                retry_after: retry_after.map(whole_seconds),
                ..ApiError::new(code, text)
            }
        }
        BackendErrorKind::Overloaded {
            detail,
            retry_after,
        } => ApiError {
            retry_after: Some(whole_seconds(retry_after.unwrap_or(OVERLOADED_RETRY))),
            ..ApiError::new(
                ErrorCode::BackendUnavailable,
                format!("The inference backend is not taking requests now: {detail}"),
            )
        },
        BackendErrorKind::Protocol(detail) | BackendErrorKind::Interrupted(detail) => {
            ApiError::new(
                ErrorCode::BackendError,
                format!("The inference backend sent an invalid answer: {detail}"),
            )
        }
    }
}

/// What an overloaded backend's client is told to wait when nothing better is
/// known: a slot frees when a generation ends, typically within seconds.
const OVERLOADED_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

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

    #[test]
    fn a_backend_404_is_a_missing_model_only_when_it_says_so() {
        let missing = backend_error(BackendError::status(
            404,
            "The model `x` does not exist.",
            None,
        ));
        assert_eq!(missing.code, ErrorCode::ModelNotFound);
        let wrong_url = backend_error(BackendError::status(404, "Not Found", None));
        assert_eq!(wrong_url.status(), 502);
        assert!(wrong_url.message.contains("backend URL"));
        let refused = backend_error(BackendError::status(401, "bad key", None));
        assert_eq!(refused.status(), 502);
        assert!(refused.message.contains("gateway's own credentials"));
    }
}
