//! `ResponseStream`: the one event stream of a response, pulled from the backend's
//! model stream through the assembler.
//!
//! It is pull-based on purpose: nothing runs unless the consumer polls, and dropping
//! the stream drops the backend request, which cancels generation upstream when the
//! client goes away.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use antwort_api::{ApiError, Response, StreamEvent};
use futures::{Stream, StreamExt};

use crate::assembler::Assembler;
use crate::clock::unix_now;
use crate::error::backend_error;
use crate::model::ModelStream;

pub struct ResponseStream {
    assembler: Assembler,
    upstream: Option<ModelStream>,
    pending: VecDeque<StreamEvent>,
    scratch: Vec<StreamEvent>,
}

impl ResponseStream {
    pub(crate) fn new(mut assembler: Assembler, upstream: ModelStream) -> Self {
        let mut scratch = Vec::new();
        assembler.start(&mut scratch);
        Self {
            assembler,
            upstream: Some(upstream),
            pending: scratch.drain(..).collect(),
            scratch,
        }
    }

    /// The JSON view: drains the stream and returns the final response.
    pub async fn into_response(mut self) -> Result<Response, ApiError> {
        let mut last = None;
        while let Some(event) = self.next().await {
            if let Some(response) = event.data.terminal_response() {
                last = Some(response.clone());
            }
        }
        last.ok_or_else(|| {
            ApiError::new(
                antwort_api::ErrorCode::InternalError,
                "the response stream ended without a terminal event",
            )
        })
    }
}

impl ResponseStream {
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
            let Some(upstream) = this.upstream.as_mut() else {
                return Poll::Ready(None);
            };
            match upstream.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(event))) => this.assembler.push(event, &mut this.scratch),
                Poll::Ready(Some(Err(error))) => {
                    this.assembler.fail(backend_error(error), &mut this.scratch);
                    this.upstream = None;
                    this.log_outcome();
                }
                Poll::Ready(None) => {
                    this.assembler.finish(unix_now(), &mut this.scratch);
                    this.upstream = None;
                    this.log_outcome();
                }
            }
            this.pending.extend(this.scratch.drain(..));
        }
    }
}
