//! A Chat Completions token stream as model events: the SSE body read by
//! [`antwort_egress::sse`], each `data:` chunk translated by [`ChunkTranslator`],
//! and the backend's silences bounded.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use antwort_egress::sse::{SseError, SseEvent};
use antwort_engine::{BackendError, ModelEvent};
use futures::{Stream, StreamExt};

use super::response;

/// The largest SSE event accepted from a backend. A chunk carries a few tokens;
/// this bound is for servers that send a whole answer in one, and against
/// servers that never end an event.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// After the finish chunk only usage and `[DONE]` are still to come, at once:
/// a backend that holds the connection open past this has already answered.
const AFTER_FINISH_GRACE: Duration = Duration::from_secs(2);

/// What one SSE event of the stream meant.
#[derive(Debug, PartialEq)]
pub enum Translated {
    /// Events to pass on (possibly none: a keepalive, a role-only delta).
    Events,
    /// `[DONE]`: the stream is over.
    Done,
}

/// Chunk by chunk translation, apart from any I/O so that it can be fuzzed.
#[derive(Default)]
pub struct ChunkTranslator {
    scratch: Vec<ModelEvent>,
    /// A finish reason was seen.
    pub finished: bool,
}

impl ChunkTranslator {
    /// Translates one event's `data`, appending its model events to `out`.
    pub fn translate(
        &mut self,
        data: &str,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<Translated, BackendError> {
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(Translated::Done);
        }
        if data.is_empty() {
            return Ok(Translated::Events);
        }
        let chunk: response::ChatChunk = serde_json::from_str(data)
            .map_err(|error| BackendError::protocol(format!("invalid chunk: {error}")))?;
        if let Some(error) = &chunk.error {
            let message = error
                .get("message")
                .and_then(|m| m.as_str())
                .map_or_else(|| error.to_string(), str::to_owned);
            return Err(BackendError::interrupted(format!(
                "the backend reported an error mid-stream: {message}"
            )));
        }
        response::chunk_events(chunk, &mut self.scratch);
        self.finished |= self
            .scratch
            .iter()
            .any(|e| matches!(e, ModelEvent::Finish(_)));
        out.extend(self.scratch.drain(..));
        Ok(Translated::Events)
    }
}

type Events = Pin<Box<dyn Stream<Item = Result<SseEvent, SseError<reqwest::Error>>> + Send>>;

/// Chat Completions SSE → model events. Reads on after the finish chunk until
/// `[DONE]`, since vLLM and OpenAI send usage in a chunk of its own after it.
pub struct ChunkStream {
    events: Events,
    translator: ChunkTranslator,
    pending: VecDeque<ModelEvent>,
    /// The stream is over (`[DONE]`, an error, or the end of the body).
    done: bool,
    /// A backend silent for this long mid-stream is treated as gone: without it, a
    /// stalled server would hold the client (kept alive by keepalives) forever.
    idle_timeout: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl ChunkStream {
    pub fn new(body: reqwest::Response, idle_timeout: Duration) -> Self {
        Self {
            events: antwort_egress::sse::events(body.bytes_stream(), MAX_EVENT_BYTES).boxed(),
            translator: ChunkTranslator::default(),
            pending: VecDeque::new(),
            done: false,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
        }
    }

    /// How long the backend may now be silent.
    fn allowed_silence(&self) -> Duration {
        if self.translator.finished {
            AFTER_FINISH_GRACE.min(self.idle_timeout)
        } else {
            self.idle_timeout
        }
    }

    /// The stream ended (`cause` says how, when it was not `[DONE]`): after the
    /// finish chunk the answer is whole whatever the connection does next.
    fn end(&mut self, cause: Option<BackendError>) -> Option<Result<ModelEvent, BackendError>> {
        self.done = true;
        match cause {
            Some(_) if self.translator.finished => None,
            cause => cause.map(Err),
        }
    }
}

impl Stream for ChunkStream {
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
            // After the event is read: a finish chunk shortens the silence
            // allowed from now on.
            let deadline = antwort_engine::clock::now() + this.allowed_silence();
            this.idle.as_mut().reset(deadline);
        }
    }
}
