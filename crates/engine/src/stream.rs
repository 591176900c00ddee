//! `ResponseStream`: the one event stream of a response, pulled from the backend's
//! model stream through the assembler.
//!
//! It is pull-based: nothing runs unless the consumer polls, and dropping it drops
//! the backend request, which cancels generation upstream. A stored response is
//! written before its terminal event is released, so a client told "completed" can
//! rely on finding it; and [`ResponseStream::detach`] runs a stream to its end on
//! its own task, for work that must finish even when the client goes away.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use antwort_api::{ApiError, ErrorCode, EventData, Item, Response, StreamEvent};
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};

use crate::assembler::Assembler;
use crate::clock::unix_now;
use crate::error::backend_error;
use crate::model::ModelStream;
use crate::store::{Scope, Store, StoreError, StoredResponse};

/// Where and what to save when the response ends.
pub(crate) struct Persist {
    pub store: Arc<dyn Store>,
    pub scope: Scope,
    /// The request's own input items (with ids), not the replayed chain.
    pub input: Vec<Item>,
    pub conversation_id: Option<String>,
}

pub struct ResponseStream {
    assembler: Assembler,
    upstream: Option<ModelStream>,
    pending: VecDeque<StreamEvent>,
    scratch: Vec<StreamEvent>,
    persist: Option<Persist>,
    /// The write in flight, and the terminal event it holds back.
    saving: Option<(BoxFuture<'static, Result<(), StoreError>>, StreamEvent)>,
}

impl ResponseStream {
    pub(crate) fn new(
        mut assembler: Assembler,
        upstream: ModelStream,
        persist: Option<Persist>,
    ) -> Self {
        let mut scratch = Vec::new();
        assembler.start(&mut scratch);
        Self {
            assembler,
            upstream: Some(upstream),
            pending: scratch.drain(..).collect(),
            scratch,
            persist,
            saving: None,
        }
    }

    /// Runs the stream to its end on a task of its own, tracked by `tasks` so that
    /// shutdown can wait for it, and hands back its events. If the receiver is
    /// dropped (the client went away), the work still finishes and is saved.
    pub fn detach(self, tasks: &tokio_util::task::TaskTracker) -> DetachedStream {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        tasks.spawn(async move {
            let mut stream = self;
            while let Some(event) = stream.next().await {
                // A closed receiver only means nobody watches any more.
                let _ = sender.send(event);
            }
        });
        DetachedStream { receiver }
    }

    fn log_outcome(&self) {
        let response = self.assembler.response();
        let usage = response.usage.unwrap_or_default();
        tracing::info!(
            response_id = %response.id,
            model = %response.model,
            status = response.status.as_str(),
            output_items = response.output.len(),
            input_tokens = usage.input_tokens,
            output_tokens = usage.output_tokens,
            error = response.error.as_ref().map(|e| e.message.as_str()),
            "response finished"
        );
    }

    /// The assembler just finished: hold the terminal event back until the response
    /// is saved, when it is to be saved.
    fn after_finish(&mut self) {
        self.upstream = None;
        self.log_outcome();
        let Some(persist) = self.persist.take() else {
            return;
        };
        let Some(terminal) = self.scratch.pop() else {
            return;
        };
        let record = StoredResponse {
            response: self.assembler.response().clone(),
            input: persist.input,
            conversation_id: persist.conversation_id,
        };
        let (store, scope) = (persist.store, persist.scope);
        let save = async move { store.save_response(&scope, &record).await }.boxed();
        self.saving = Some((save, terminal));
    }
}

impl Drop for ResponseStream {
    fn drop(&mut self) {
        if !self.assembler.is_finished() {
            tracing::info!(
                response_id = %self.assembler.response().id,
                "client went away before the end; the backend request is cancelled"
            );
        }
    }
}

impl Stream for ResponseStream {
    type Item = StreamEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(event));
            }
            if let Some((save, _)) = this.saving.as_mut() {
                let result = match save.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(result) => result,
                };
                let Some((_, terminal)) = this.saving.take() else {
                    continue;
                };
                match result {
                    Ok(()) => this.pending.push_back(terminal),
                    Err(error) => {
                        // Never tell a client "completed" for a response that is not
                        // where it was promised to be.
                        tracing::error!(%error, "a finished response could not be stored");
                        let failure = ApiError::new(
                            ErrorCode::StorageUnavailable,
                            format!("The response could not be stored: {error}"),
                        );
                        this.assembler.replace_terminal_with_failure(
                            terminal,
                            failure,
                            &mut this.scratch,
                        );
                        this.pending.extend(this.scratch.drain(..));
                    }
                }
                continue;
            }
            let Some(upstream) = this.upstream.as_mut() else {
                return Poll::Ready(None);
            };
            match upstream.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(event))) => this.assembler.push(event, &mut this.scratch),
                Poll::Ready(Some(Err(error))) => {
                    this.assembler.fail(backend_error(error), &mut this.scratch);
                    this.after_finish();
                }
                Poll::Ready(None) => {
                    this.assembler.finish(unix_now(), &mut this.scratch);
                    this.after_finish();
                }
            }
            this.pending.extend(this.scratch.drain(..));
        }
    }
}

/// The events of a detached response stream.
pub struct DetachedStream {
    receiver: tokio::sync::mpsc::UnboundedReceiver<StreamEvent>,
}

impl Stream for DetachedStream {
    type Item = StreamEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        self.receiver.poll_recv(cx)
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
