//! The body of a scripted stream, shared by Chat Completions and Responses: frames
//! sent with their delays, `[[cut:N]]` and `[[hold_after_finish]]`, and the
//! counting of streams started, completed and cancelled.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;

use crate::{Stats, error};

/// One SSE frame and how long to wait before sending it.
pub(crate) struct Frame {
    pub wait: Duration,
    pub bytes: Bytes,
}

impl Frame {
    pub fn new(wait: Duration, bytes: impl Into<Bytes>) -> Self {
        Self {
            wait,
            bytes: bytes.into(),
        }
    }
}

/// How a stream ends once its frames are sent.
pub(crate) struct Ending {
    /// Ends the body after this many frames, with neither a terminal frame nor
    /// the tail: a server that died mid-stream.
    pub cut: Option<usize>,
    /// Holds the connection open after the frames, without the tail.
    pub hold: bool,
    /// Sent after the frames (Chat's `[DONE]`).
    pub tail: Option<&'static [u8]>,
}

/// Counts a stream as cancelled if it is dropped before its last frame.
struct StreamGuard {
    stats: Arc<Stats>,
    completed: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let counter = if self.completed {
            &self.stats.streams_completed
        } else {
            &self.stats.streams_cancelled
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// A `text/event-stream` response that sends `frames` and ends as `ending` says.
pub(crate) fn respond(stats: &Arc<Stats>, frames: Vec<Frame>, ending: Ending) -> Response {
    stats.streams_started.fetch_add(1, Ordering::SeqCst);
    let guard = StreamGuard {
        stats: stats.clone(),
        completed: false,
    };
    let Ending { cut, hold, tail } = ending;
    let state = (frames.into_iter().enumerate(), guard, tail);
    let body = futures::stream::unfold(state, move |(mut frames, mut guard, tail)| async move {
        let Some((index, frame)) = frames.next() else {
            if guard.completed {
                return None;
            }
            guard.completed = true;
            if hold {
                // Everything sent but the tail, and the connection held.
                std::future::pending::<()>().await;
            }
            let tail = tail?;
            return Some((Ok(Bytes::from_static(tail)), (frames, guard, None)));
        };
        if cut.is_some_and(|n| index >= n) {
            // A cut stream ends without its terminal frame; the guard counts it as
            // completed because the mock chose to end it.
            guard.completed = true;
            drop(guard);
            return None;
        }
        // tokio rounds even a zero sleep up to its next millisecond tick: a mock
        // told to answer at once must not wait.
        if !frame.wait.is_zero() {
            tokio::time::sleep(frame.wait).await;
        }
        Some((Ok::<_, Infallible>(frame.bytes), (frames, guard, tail)))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "cannot build stream"))
}
