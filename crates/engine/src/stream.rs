//! `ResponseStream`: the one event stream of a response, driven by its loop.
//!
//! The loop ([`crate::agent`]) is a future that pushes events into a queue; the
//! stream polls that future only when its consumer asks for the next event, so
//! nothing runs ahead of the client, and dropping the stream drops the loop with
//! its backend request and tool calls, which cancels them upstream. A stored
//! response is written before its terminal event is released, so a client told
//! "completed" can rely on finding it; and [`ResponseStream::detach`] runs a
//! stream to its end on its own task, for work that must finish even when the
//! client goes away, appending its events to the response's event log
//! ([`crate::events`]), which its client and any other follower read.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use antwort_api::{ApiError, ErrorCode, EventData, Item, Response, StreamEvent};
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;

use crate::events::{EventLog, EventStream, SharedEvent};
use crate::store::{ResponseStore, Scope, StoreError, StoredResponse};

/// Where and what to save when the response ends.
pub(crate) struct Persist {
    pub store: Arc<dyn ResponseStore>,
    pub scope: Scope,
    /// The request's own input items (with ids), not the replayed chain.
    pub input: Vec<Item>,
    pub conversation_id: Option<String>,
}

impl Persist {
    pub(crate) async fn save(self, response: Response) -> Result<(), StoreError> {
        let record = StoredResponse {
            response,
            input: self.input,
            conversation_id: self.conversation_id,
        };
        self.store.save_response(&self.scope, record).await
    }
}

/// Where the loop puts its events. They travel behind a pointer: a channel
/// allocates its slots in blocks, and a block of pointers is a fraction of a
/// block of events (216 bytes each), which every open stream would hold; and an
/// `Arc` is what an event log shares with its followers, so the same one
/// allocation serves both paths.
pub(crate) struct EventSink(mpsc::UnboundedSender<SharedEvent>);

impl EventSink {
    /// Sends and clears `events`. A closed receiver only means nobody watches
    /// any more: detached work goes on regardless.
    pub(crate) fn send(&self, events: &mut Vec<StreamEvent>) {
        for event in events.drain(..) {
            let _ = self.0.send(Arc::new(event));
        }
    }
}

pub struct ResponseStream {
    /// The loop, until it has finished.
    driver: Option<BoxFuture<'static, ()>>,
    /// None once detached.
    events: Option<mpsc::UnboundedReceiver<SharedEvent>>,
    response_id: String,
}

impl ResponseStream {
    /// A stream driven by `run`, which emits its events into the sink it is given.
    pub(crate) fn new<F>(response_id: String, run: impl FnOnce(EventSink) -> F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        #[allow(
            clippy::disallowed_methods,
            reason = "bounded by construction: the loop runs only while the consumer polls (see detach for the bounded hand-off)"
        )]
        let (sender, events) = mpsc::unbounded_channel();
        Self {
            driver: Some(run(EventSink(sender)).boxed()),
            events: Some(events),
            response_id,
        }
    }

    /// Makes the stream the writer of its event log: hands back a follower of
    /// that log from the first event, and the future that drives the stream to
    /// its end, appending every event. If the follower is dropped (the client
    /// went away), the work still finishes and is saved; while it reads slowly,
    /// the work waits for it (the log is bounded).
    pub(crate) fn publish(
        self,
        log: &dyn EventLog,
        scope: &Scope,
    ) -> (
        EventStream,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let mut writer = log.create(scope, &self.response_id);
        // Following before the first append: the client sees every event.
        let follower = log
            .follow(scope, &self.response_id, None)
            .unwrap_or_else(|| futures::stream::empty().boxed());
        let mut events = self;
        let drive = async move {
            while let Some(event) = events.next().await {
                writer.append(event).await;
            }
            writer.close();
        };
        (follower, drive)
    }

    /// [`ResponseStream::publish`], driven on a task of its own that `tasks`
    /// tracks, so that shutdown can wait for it.
    pub fn detach(
        self,
        tasks: &tokio_util::task::TaskTracker,
        log: &dyn EventLog,
        scope: &Scope,
    ) -> EventStream {
        let (follower, drive) = self.publish(log, scope);
        crate::tasks::spawn_tracked(tasks, drive);
        follower
    }
}

impl Drop for ResponseStream {
    fn drop(&mut self) {
        if self.driver.is_some() {
            tracing::info!(
                response_id = %self.response_id,
                "client went away before the end; the backend request is cancelled"
            );
        }
    }
}

impl Stream for ResponseStream {
    type Item = SharedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SharedEvent>> {
        let this = &mut *self;
        let Some(events) = this.events.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            if let Ok(event) = events.try_recv() {
                return Poll::Ready(Some(event));
            }
            let Some(driver) = this.driver.as_mut() else {
                return Poll::Ready(None);
            };
            match driver.poll_unpin(cx) {
                // Whatever it emitted before finishing is still queued.
                Poll::Ready(()) => this.driver = None,
                Poll::Pending => {
                    return match events.try_recv() {
                        Ok(event) => Poll::Ready(Some(event)),
                        Err(_) => Poll::Pending,
                    };
                }
            }
        }
    }
}

/// The JSON view: drains a response's events and returns the final response
/// (copying only the terminal event's, when the log still shares it).
pub async fn final_response(
    mut events: impl Stream<Item = SharedEvent> + Unpin,
) -> Result<Response, ApiError> {
    let mut last = None;
    while let Some(event) = events.next().await {
        if event.data.terminal_response().is_some() {
            last = Some(event);
        }
    }
    let last = last.and_then(|event| match Arc::try_unwrap(event) {
        Ok(event) => match event.data {
            EventData::Completed { response }
            | EventData::Incomplete { response }
            | EventData::Failed { response } => Some(*response),
            _ => None,
        },
        Err(shared) => shared.data.terminal_response().cloned(),
    });
    last.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InternalError,
            "the response stream ended without a terminal event",
        )
    })
}
