//! The seam between the engine and inference backends: what the engine asks for (a
//! model turn in Responses terms) and what it gets back (a stream of model events).
//!
//! A backend translates these to its own protocol (Chat Completions today, native
//! Responses next); the engine never sees a backend's wire format. The events
//! speak items, not only Chat deltas: a native Responses backend reports item
//! boundaries (with its ids, which the assembler replaces with its own),
//! reasoning summaries beside reasoning text, `encrypted_content`, annotations
//! and whole items of hosted tools it ran. Errors are classified ([`BackendError::is_retryable`],
//! [`BackendError::retry_after`], the backend's name) so that retry and fallback
//! can wrap a backend, and [`peek`] lets such a wrapper see a backend's first
//! event before it commits to it.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use antwort_api::{
    FunctionTool, Include, Item, LogProb, Model, ReasoningEffort, ReasoningSummary, ServiceTier,
    TextFormat, Tool, Usage, Verbosity,
};
use async_trait::async_trait;
use futures::{Stream, StreamExt};

/// One turn to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    pub model: String,
    /// Sent first, as a system message, when present.
    pub instructions: Option<String>,
    /// The conversation so far, in order.
    pub input: Vec<Item>,
    /// Function tools offered to the model (already filtered by `allowed_tools`).
    pub tools: Vec<FunctionTool>,
    pub tool_choice: ModelToolChoice,
    pub parallel_tool_calls: Option<bool>,
    pub text_format: TextFormat,
    pub verbosity: Option<Verbosity>,
    pub reasoning_effort: Option<ReasoningEffort>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub max_output_tokens: Option<u32>,
    /// `Some(n)`: return token log probabilities with the `n` most likely alternatives.
    pub logprobs: Option<u32>,
    pub user: Option<String>,
    /// Whether the client is streaming; a backend may use it to pick its upstream mode.
    pub stream: bool,
    /// What the client asked to be included (`reasoning.encrypted_content`, ...),
    /// for a backend that can produce it.
    pub include: Vec<Include>,
    /// The reasoning summary the client asked for, for a backend that writes one.
    pub reasoning_summary: Option<ReasoningSummary>,
    pub prompt_cache_key: Option<String>,
    pub service_tier: Option<ServiceTier>,
    pub safety_identifier: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Hosted tools the backend runs itself (a native Responses backend with its
    /// own web search, say); a Chat Completions backend runs none and gets none.
    pub hosted_tools: Vec<Tool>,
}

impl ModelRequest {
    /// A turn of `model` with nothing in it, for tests (and fakes) to fill.
    pub fn empty(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            instructions: None,
            input: Vec::new(),
            tools: Vec::new(),
            tool_choice: ModelToolChoice::Default,
            parallel_tool_calls: None,
            text_format: TextFormat::Text,
            verbosity: None,
            reasoning_effort: None,
            temperature: None,
            top_p: None,
            presence_penalty: None,
            frequency_penalty: None,
            max_output_tokens: None,
            logprobs: None,
            user: None,
            stream: false,
            include: Vec::new(),
            reasoning_summary: None,
            prompt_cache_key: None,
            service_tier: None,
            safety_identifier: None,
            metadata: BTreeMap::new(),
            hosted_tools: Vec::new(),
        }
    }
}

/// Tool choice in the terms every backend understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelToolChoice {
    /// Leave the choice to the backend's default (no tools, or `auto`).
    Default,
    None,
    Auto,
    Required,
    Function(String),
}

/// What a backend reports while it generates.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelEvent {
    /// A new output item begins here: what follows does not continue the item
    /// before it, even if it is of the same kind. `id` is the backend's own id
    /// for it, when it has one (the gateway assigns its own either way).
    ItemStart { id: Option<String> },
    /// A piece of the model's reasoning text.
    ReasoningDelta(String),
    /// A piece of a reasoning summary, written by the backend; `summary_index`
    /// tells the parts of one summary apart.
    ReasoningSummaryDelta { summary_index: u32, text: String },
    /// The current reasoning item's opaque `encrypted_content`, for the client to
    /// send back in a later turn.
    ReasoningEncrypted(String),
    /// An annotation (`url_citation`, `file_citation`, ...) on the output text
    /// written so far, in the OpenAI shape.
    Annotation(serde_json::Value),
    /// A whole item the backend produced and finished itself (the call of a
    /// hosted tool it ran, say); it goes to the output as it is.
    Item(Box<Item>),
    /// A piece of the answer, with the log probabilities of its tokens when requested.
    TextDelta {
        text: String,
        logprobs: Vec<LogProb>,
    },
    /// A piece of a refusal.
    RefusalDelta(String),
    /// A piece of a tool call; `index` tells parallel calls apart.
    ToolCallDelta {
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    /// Token counts; may arrive after `Finish`.
    Usage(Usage),
    /// Why generation stopped; the stream may still carry usage after it.
    Finish(FinishReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

pub type ModelStream = Pin<Box<dyn Stream<Item = Result<ModelEvent, BackendError>> + Send>>;

/// An inference backend.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Starts generating. Returns once the backend has accepted the request (its
    /// status line and headers are in), so that failures before the first byte are
    /// still ordinary errors the client gets as an HTTP status.
    async fn generate(&self, request: &ModelRequest) -> Result<ModelStream, BackendError>;

    /// The models the backend serves.
    async fn list_models(&self) -> Result<Vec<Model>, BackendError>;

    /// Succeeds when the backend answers.
    async fn check_ready(&self) -> Result<(), BackendError>;

    /// The state of the circuit breaker in front of the backend, when one is.
    fn circuit(&self) -> Option<CircuitState> {
        None
    }

    /// The tokens `request`'s prompt takes, as the backend's own tokenizer
    /// counts them (vLLM's `POST /tokenize`, chat template included); `None`
    /// when the backend has no such endpoint or is not configured to use it.
    async fn count_tokens(&self, _request: &ModelRequest) -> Option<Result<u64, BackendError>> {
        None
    }
}

/// A circuit breaker's state, as readiness and the logs show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Requests go through.
    Closed,
    /// The backend failed too often: requests fail at once, without trying it.
    Open,
    /// The open time is over: one probe request tries the backend.
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// Why a backend failed: what happened, and which backend (named by the
/// registry; empty until a registry entry stamps it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}")]
pub struct BackendError {
    pub backend: String,
    pub kind: BackendErrorKind,
}

/// What went wrong with a backend.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendErrorKind {
    #[error("the backend is unreachable: {0}")]
    Unavailable(String),
    #[error("the backend did not answer in time: {0}")]
    Timeout(String),
    #[error("the backend answered HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        /// The backend's `Retry-After`, parsed.
        retry_after: Option<Duration>,
    },
    #[error("the backend sent an invalid answer: {0}")]
    Protocol(String),
    /// The backend accepted the request and then failed: an error chunk, a cut
    /// connection, a stream that ended before its finish. Asking again may
    /// succeed, which a wrapper does only before anything reached the client
    /// (see [`peek`]).
    #[error("the backend failed mid-stream: {0}")]
    Interrupted(String),
    /// The gateway did not send the request: the backend's circuit is open,
    /// or its concurrency cap and queue are full. Another backend may take it;
    /// this one should not be asked again before `retry_after`.
    #[error("the backend is not taking requests: {detail}")]
    Overloaded {
        detail: String,
        retry_after: Option<Duration>,
    },
}

impl From<BackendErrorKind> for BackendError {
    fn from(kind: BackendErrorKind) -> Self {
        Self {
            backend: String::new(),
            kind,
        }
    }
}

impl BackendError {
    pub fn unavailable(detail: impl Into<String>) -> Self {
        BackendErrorKind::Unavailable(detail.into()).into()
    }

    pub fn timeout(detail: impl Into<String>) -> Self {
        BackendErrorKind::Timeout(detail.into()).into()
    }

    pub fn protocol(detail: impl Into<String>) -> Self {
        BackendErrorKind::Protocol(detail.into()).into()
    }

    pub fn interrupted(detail: impl Into<String>) -> Self {
        BackendErrorKind::Interrupted(detail.into()).into()
    }

    pub fn status(status: u16, message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        BackendErrorKind::Status {
            status,
            message: message.into(),
            retry_after,
        }
        .into()
    }

    pub fn overloaded(detail: impl Into<String>, retry_after: Option<Duration>) -> Self {
        BackendErrorKind::Overloaded {
            detail: detail.into(),
            retry_after,
        }
        .into()
    }

    /// Names the backend that failed (kept when already named).
    pub fn from_backend(mut self, name: &str) -> Self {
        if self.backend.is_empty() {
            self.backend = name.to_owned();
        }
        self
    }

    /// Whether asking again (this backend later, or another one) may succeed:
    /// the backend could not be reached, did not answer in time, failed
    /// mid-stream, was not asked (overloaded, circuit open), or answered 408,
    /// 409, 429 or a 5xx. A 4xx about the request, or an answer that is not
    /// the protocol, would fail the same way again.
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            BackendErrorKind::Unavailable(_)
            | BackendErrorKind::Timeout(_)
            | BackendErrorKind::Interrupted(_)
            | BackendErrorKind::Overloaded { .. } => true,
            BackendErrorKind::Status { status, .. } => {
                matches!(status, 408 | 409 | 429) || *status >= 500
            }
            BackendErrorKind::Protocol(_) => false,
        }
    }

    /// How long the backend asked to be left alone, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.kind {
            BackendErrorKind::Status { retry_after, .. }
            | BackendErrorKind::Overloaded { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Waits for `stream`'s first event: an error there (a backend that answered
/// 200 and then an error chunk) is returned as the error, so that a retry or
/// fallback wrapper can still try elsewhere before anything reached the client;
/// otherwise the stream comes back whole, the first event in front.
pub async fn peek(mut stream: ModelStream) -> Result<ModelStream, BackendError> {
    match stream.next().await {
        None => Ok(futures::stream::empty().boxed()),
        Some(Err(error)) => Err(error),
        Some(Ok(first)) => Ok(futures::stream::once(async move { Ok(first) })
            .chain(stream)
            .boxed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_whether_another_try_may_help() {
        assert!(BackendError::unavailable("refused").is_retryable());
        assert!(BackendError::timeout("60s").is_retryable());
        assert!(BackendError::status(503, "busy", None).is_retryable());
        let limited = BackendError::status(429, "slow down", Some(Duration::from_secs(3)));
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
        assert!(!BackendError::status(400, "bad", None).is_retryable());
        assert!(!BackendError::protocol("not json").is_retryable());
        assert!(BackendError::interrupted("error chunk").is_retryable());
        let named = BackendError::timeout("x")
            .from_backend("vllm-a")
            .from_backend("b");
        assert_eq!(named.backend, "vllm-a");
    }

    #[tokio::test]
    async fn peek_sees_the_first_event_and_keeps_the_stream_whole() {
        let failing: ModelStream =
            futures::stream::iter(vec![Err(BackendError::protocol("error chunk"))]).boxed();
        assert!(peek(failing).await.is_err());
        let events = vec![
            Ok(ModelEvent::TextDelta {
                text: "a".into(),
                logprobs: Vec::new(),
            }),
            Ok(ModelEvent::Finish(FinishReason::Stop)),
        ];
        let peeked = peek(futures::stream::iter(events.clone()).boxed())
            .await
            .unwrap();
        let all: Vec<_> = peeked.collect().await;
        assert_eq!(all, events);
    }
}
