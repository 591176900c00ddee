//! The seam between the engine and inference backends: what the engine asks for (a
//! model turn in Responses terms) and what it gets back (a stream of model events).
//!
//! A backend translates these to its own protocol (Chat Completions today, native
//! Responses later); the engine never sees a backend's wire format.

use std::pin::Pin;

use antwort_api::{
    FunctionTool, Item, LogProb, Model, ReasoningEffort, TextFormat, Usage, Verbosity,
};
use async_trait::async_trait;
use futures::Stream;

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
    /// A piece of the model's reasoning text.
    ReasoningDelta(String),
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
}

/// Why a backend failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    #[error("the backend is unreachable: {0}")]
    Unavailable(String),
    #[error("the backend did not answer in time: {0}")]
    Timeout(String),
    #[error("the backend answered HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<String>,
    },
    #[error("the backend sent an invalid answer: {0}")]
    Protocol(String),
}
