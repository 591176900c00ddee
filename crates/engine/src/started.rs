//! A started response as the server receives it ([`Started`]), and its events
//! ([`Events`]): attached to the client that pulls its loop, or a follower of
//! its event log when it is stored and runs on its own task.

use std::sync::Arc;

use antwort_api::ApiError;
use futures::StreamExt;

use crate::events;
use crate::stream::{self, ResponseStream};

/// A started response: its events and what the server reports beside them.
pub struct Started {
    pub(crate) events: Events,
    /// Hosted tool types the request listed that were not offered to the model.
    pub skipped_tools: Vec<String>,
    /// The chain and the new input the response runs on, when
    /// [`crate::CreateOptions::keep_context`] asked for them.
    pub context: Option<Vec<antwort_api::Item>>,
}

impl Started {
    /// The events to send. A stored response runs on its own task, so that it
    /// finishes and is saved even if the client goes away; an unstored one is pulled
    /// by the client, so that its going away cancels generation upstream.
    pub fn events(self) -> Events {
        self.events
    }
}

/// The event stream of a started response: attached to its client (its
/// loop runs as the client reads), or a follower of the response's event log.
pub enum Events {
    Attached(Box<ResponseStream>),
    Detached(events::EventStream),
}

impl Events {
    /// The events as the log shares them (no copies), for the views.
    pub fn shared(self) -> events::EventStream {
        match self {
            Events::Attached(stream) => stream.boxed(),
            Events::Detached(stream) => stream,
        }
    }

    /// The JSON view: the final response.
    pub async fn into_response(self) -> Result<antwort_api::Response, ApiError> {
        stream::final_response(self.shared()).await
    }
}

impl futures::Stream for Events {
    type Item = antwort_api::StreamEvent;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let next = match self.get_mut() {
            Events::Attached(stream) => std::pin::Pin::new(stream.as_mut()).poll_next(cx),
            Events::Detached(stream) => stream.as_mut().poll_next(cx),
        };
        // An event a log still shares is copied; one only this stream holds is not.
        next.map(|event| {
            event.map(|event| Arc::try_unwrap(event).unwrap_or_else(|shared| (*shared).clone()))
        })
    }
}
