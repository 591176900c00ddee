//! `ResponseStream`: the one event stream of a response, driven by its loop.
//!
//! The loop ([`crate::agent`]) is a future that pushes events into a queue; the
//! stream polls that future only when its consumer asks for the next event, so
//! nothing runs ahead of the client, and dropping the stream drops the loop with
//! its backend request and tool calls, which cancels them upstream. A stored
//! response is written before its terminal event is released, so a client told
//! "completed" can rely on finding it; and [`ResponseStream::detach`] runs a
//! stream to its end on its own task, for work that must finish even when the
//! client goes away.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use antwort_api::{ApiError, ErrorCode, EventData, Item, Response, StreamEvent};
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;

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

/// Where the loop puts its events. They travel boxed: a channel allocates its
/// slots in blocks, and a block of pointers is a fraction of a block of events
/// (216 bytes each), which every open stream would hold.
pub(crate) struct EventSink(mpsc::UnboundedSender<Box<StreamEvent>>);

impl EventSink {
    /// Sends and clears `events`. A closed receiver only means nobody watches
    /// any more: detached work goes on regardless.
    pub(crate) fn send(&self, events: &mut Vec<StreamEvent>) {
        for event in events.drain(..) {
            let _ = self.0.send(Box::new(event));
        }
    }
}

pub struct ResponseStream {
    /// The loop, until it has finished.
    driver: Option<BoxFuture<'static, ()>>,
    /// None once detached.
    events: Option<mpsc::UnboundedReceiver<Box<StreamEvent>>>,
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

    /// Runs the stream to its end on a task of its own, tracked by `tasks` so that
    /// shutdown can wait for it, and hands back its events. If the receiver is
    /// dropped (the client went away), the work still finishes and is saved.
    pub fn detach(mut self, tasks: &tokio_util::task::TaskTracker) -> DetachedStream {
        if let Some(driver) = self.driver.take() {
            crate::tasks::spawn_tracked(tasks, driver);
        }
        DetachedStream {
            receiver: self.events.take(),
        }
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
    type Item = StreamEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        let this = &mut *self;
        let Some(events) = this.events.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            if let Ok(event) = events.try_recv() {
                return Poll::Ready(Some(*event));
            }
            let Some(driver) = this.driver.as_mut() else {
                return Poll::Ready(None);
            };
            match driver.poll_unpin(cx) {
                // Whatever it emitted before finishing is still queued.
                Poll::Ready(()) => this.driver = None,
                Poll::Pending => {
                    return match events.try_recv() {
                        Ok(event) => Poll::Ready(Some(*event)),
                        Err(_) => Poll::Pending,
                    };
                }
            }
        }
    }
}

/// The events of a detached response stream.
pub struct DetachedStream {
    receiver: Option<mpsc::UnboundedReceiver<Box<StreamEvent>>>,
}

impl Stream for DetachedStream {
    type Item = StreamEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        match self.receiver.as_mut() {
            Some(receiver) => receiver
                .poll_recv(cx)
                .map(|event| event.map(|event| *event)),
            None => Poll::Ready(None),
        }
    }
}

/// The JSON view: drains a response's events and returns the final response.
pub async fn final_response(
    mut events: impl Stream<Item = StreamEvent> + Unpin,
) -> Result<Response, ApiError> {
    let mut last = None;
    while let Some(event) = events.next().await {
        if let EventData::Completed { response }
        | EventData::Incomplete { response }
        | EventData::Failed { response } = event.data
        {
            last = Some(*response);
        }
    }
    last.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InternalError,
            "the response stream ended without a terminal event",
        )
    })
}
