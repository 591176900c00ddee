//! A backend's SSE body as model events, whatever its protocol: the body read
//! by [`antwort_egress::sse`], each event's `data` handed to the protocol's
//! [`Translate`], and the backend's silences bounded.
//!
//! Nothing here runs on a task of its own: the HTTP body is read only while the
//! stream is polled, and dropping the stream drops the response, which closes
//! the connection. That is how the gateway stops upstream generation when its
//! client goes away.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use antwort_egress::sse::{SseError, SseEvent};
use antwort_engine::{BackendError, ModelEvent};
use futures::{Stream, StreamExt};

/// The largest SSE event accepted from a backend. An event carries a few
/// tokens; this bound is for servers that send a whole answer in one, and
/// against servers that never end an event.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Once the answer is whole (a finish chunk) only usage and the end marker
/// are still to come, at once: a backend that holds the connection open past
/// this has already answered.
const AFTER_FINISH_GRACE: Duration = Duration::from_secs(2);

/// What one SSE event of the stream meant.
#[derive(Debug, PartialEq)]
pub enum Translated {
    /// Events to pass on (possibly none: a keepalive, a role-only delta).
    Events,
    /// The stream is over (`[DONE]`, or a terminal event).
    Done,
}

/// One protocol's event by event translation, apart from any I/O.
pub trait Translate: Send + Unpin {
    /// Translates one event's `data`, appending its model events to `out`.
    fn translate(
        &mut self,
        data: &str,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<Translated, BackendError>;

    /// The answer is whole: what the connection does from now on is no
    /// longer the answer's failure.
    fn finished(&self) -> bool;
}

type Events = Pin<Box<dyn Stream<Item = Result<SseEvent, SseError<reqwest::Error>>> + Send>>;

/// An SSE body → model events, through `T`.
pub struct EventStream<T> {
    events: Events,
    translator: T,
    pending: VecDeque<ModelEvent>,
    /// The stream is over (its end marker, an error, or the end of the body).
    done: bool,
    /// A backend silent for this long mid-stream is treated as gone: without it, a
    /// stalled server would hold the client (kept alive by keepalives) forever.
    idle_timeout: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl<T: Translate> EventStream<T> {
    pub fn new(body: reqwest::Response, idle_timeout: Duration, translator: T) -> Self {
        Self {
            events: antwort_egress::sse::events(body.bytes_stream(), MAX_EVENT_BYTES).boxed(),
            translator,
            pending: VecDeque::new(),
            done: false,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
        }
    }

    /// How long the backend may now be silent.
    fn allowed_silence(&self) -> Duration {
        if self.translator.finished() {
            AFTER_FINISH_GRACE.min(self.idle_timeout)
        } else {
            self.idle_timeout
        }
    }

    /// The stream ended (`cause` says how, when it was not its end marker):
    /// once the answer is whole it stays whole whatever the connection does next.
    fn end(&mut self, cause: Option<BackendError>) -> Option<Result<ModelEvent, BackendError>> {
        self.done = true;
        match cause {
            Some(_) if self.translator.finished() => None,
            cause => cause.map(Err),
        }
    }
}

impl<T: Translate> Stream for EventStream<T> {
    type Item = Result<ModelEvent, BackendError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let event = match this.events.poll_next_unpin(cx) {
                Poll::Pending => {
                    if this.idle.as_mut().poll(cx).is_ready() {
                        let silence = this.allowed_silence();
                        let cause = BackendError::timeout(format!(
                            "the backend sent nothing for {silence:?} mid-stream"
                        ));
                        return Poll::Ready(this.end(Some(cause)));
                    }
                    return Poll::Pending;
                }
                Poll::Ready(None) => {
                    let cause =
                        BackendError::interrupted("the backend closed the stream before finishing");
                    return Poll::Ready(this.end(Some(cause)));
                }
                Poll::Ready(Some(Err(error))) => {
                    let cause =
                        BackendError::interrupted(format!("the stream was interrupted: {error}"));
                    return Poll::Ready(this.end(Some(cause)));
                }
                Poll::Ready(Some(Ok(event))) => event,
            };
            match this.translator.translate(&event.data, &mut this.pending) {
                Ok(Translated::Events) => {}
                Ok(Translated::Done) => this.done = true,
                Err(error) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(error)));
                }
            }
            // After the event is read: a finished answer shortens the silence
            // allowed from now on.
            let deadline = antwort_engine::clock::now() + this.allowed_silence();
            this.idle.as_mut().reset(deadline);
        }
    }
}
