//! What a Responses server sends, read leniently: every field optional,
//! unknown events and fields ignored, sequence numbers and the server's ids
//! not relied on beyond telling its items apart.

use antwort_api::{InputTokensDetails, LogProb, OutputTokensDetails, TopLogProb, Usage};
use serde::Deserialize;
use serde_json::Value;

/// One streamed event, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum WireEvent {
    #[serde(rename = "response.output_item.added")]
    ItemAdded(ItemEvent),
    #[serde(rename = "response.output_item.done")]
    ItemDone(ItemEvent),
    #[serde(rename = "response.function_call_arguments.delta")]
    ArgumentsDelta(DeltaEvent),
    #[serde(rename = "response.function_call_arguments.done")]
    ArgumentsDone(ArgumentsDoneEvent),
    #[serde(rename = "response.output_text.delta")]
    TextDelta(TextDeltaEvent),
    #[serde(rename = "response.output_text.annotation.added")]
    Annotation(AnnotationEvent),
    #[serde(rename = "response.refusal.delta")]
    RefusalDelta(DeltaEvent),
    /// OpenAI's name, and OpenResponses' (which vLLM and antwort send).
    #[serde(
        rename = "response.reasoning_text.delta",
        alias = "response.reasoning.delta"
    )]
    ReasoningDelta(DeltaEvent),
    #[serde(
        rename = "response.reasoning_summary_text.delta",
        alias = "response.reasoning_summary.delta"
    )]
    SummaryDelta(SummaryDeltaEvent),
    #[serde(rename = "response.completed")]
    Completed(TerminalEvent),
    #[serde(rename = "response.incomplete")]
    Incomplete(TerminalEvent),
    #[serde(rename = "response.failed")]
    Failed(TerminalEvent),
    #[serde(rename = "error")]
    Error(ErrorEvent),
    /// Everything else (created, in_progress, part and done events whose
    /// content the deltas and items already carry, events of later versions).
    #[serde(other)]
    Other,
}

/// Where an event's item is: the server's id and its place in the output.
#[derive(Debug, Default, Clone, Copy)]
pub struct Place<'a> {
    pub output_index: Option<u64>,
    pub item_id: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ItemEvent {
    pub output_index: Option<u64>,
    pub item: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeltaEvent {
    pub item_id: Option<String>,
    pub output_index: Option<u64>,
    pub delta: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ArgumentsDoneEvent {
    pub item_id: Option<String>,
    pub output_index: Option<u64>,
    pub arguments: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TextDeltaEvent {
    pub item_id: Option<String>,
    pub output_index: Option<u64>,
    pub delta: Option<String>,
    pub logprobs: Option<Vec<WireLogprob>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AnnotationEvent {
    pub item_id: Option<String>,
    pub output_index: Option<u64>,
    pub annotation: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SummaryDeltaEvent {
    pub item_id: Option<String>,
    pub output_index: Option<u64>,
    pub summary_index: Option<u32>,
    pub delta: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TerminalEvent {
    pub response: Option<WireResponse>,
}

/// `error`: flat in the OpenAI API, nested under `error` in OpenResponses.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ErrorEvent {
    pub message: Option<String>,
    pub code: Option<String>,
    pub error: Option<WireError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireError {
    pub message: Option<String>,
    pub code: Option<String>,
}

/// A response object: streamed in terminal events, or the whole answer of a
/// request that did not stream.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireResponse {
    pub status: Option<String>,
    pub output: Option<Vec<Value>>,
    pub usage: Option<WireUsage>,
    pub incomplete_details: Option<WireIncomplete>,
    pub error: Option<WireError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireIncomplete {
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: Option<u64>,
    pub input_tokens_details: Option<WireInputDetails>,
    pub output_tokens_details: Option<WireOutputDetails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireInputDetails {
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireOutputDetails {
    pub reasoning_tokens: Option<u64>,
}

impl WireUsage {
    pub fn to_usage(&self) -> Usage {
        Usage {
            input_tokens: self.input_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: self
                    .input_tokens_details
                    .as_ref()
                    .and_then(|d| d.cached_tokens)
                    .unwrap_or(0),
            },
            output_tokens: self.output_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: self
                    .output_tokens_details
                    .as_ref()
                    .and_then(|d| d.reasoning_tokens)
                    .unwrap_or(0),
            },
            total_tokens: self
                .total_tokens
                .unwrap_or(self.input_tokens + self.output_tokens),
        }
    }
}

/// A `function_call` item.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireCall {
    pub id: Option<String>,
    pub call_id: Option<String>,
    pub name: Option<String>,
    pub arguments: Option<String>,
}

/// A `message` item.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireMessage {
    pub id: Option<String>,
    pub content: Option<Vec<WirePart>>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WirePart {
    OutputText {
        #[serde(default)]
        text: String,
        #[serde(default)]
        annotations: Option<Vec<Value>>,
        #[serde(default)]
        logprobs: Option<Vec<WireLogprob>>,
    },
    Refusal {
        #[serde(default)]
        refusal: String,
    },
    #[serde(other)]
    Other,
}

/// A `reasoning` item.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireReasoning {
    pub id: Option<String>,
    pub summary: Option<Vec<WireText>>,
    pub content: Option<Vec<WireText>>,
    pub encrypted_content: Option<String>,
}

/// A `summary_text` or `reasoning_text` part.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireText {
    pub text: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireLogprob {
    pub token: String,
    pub logprob: f64,
    pub bytes: Option<Vec<u8>>,
    pub top_logprobs: Option<Vec<WireTopLogprob>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireTopLogprob {
    pub token: Option<String>,
    pub logprob: Option<f64>,
    pub bytes: Option<Vec<u8>>,
}

/// Log probabilities as the API types carry them; a token's bytes, when the
/// server left them out, are its UTF-8.
pub fn logprobs(logprobs: Option<Vec<WireLogprob>>) -> Vec<LogProb> {
    logprobs
        .unwrap_or_default()
        .into_iter()
        .map(|token| LogProb {
            bytes: token
                .bytes
                .unwrap_or_else(|| token.token.as_bytes().to_vec()),
            token: token.token,
            logprob: token.logprob,
            top_logprobs: token
                .top_logprobs
                .unwrap_or_default()
                .into_iter()
                .filter_map(|top| {
                    let token = top.token?;
                    Some(TopLogProb {
                        bytes: top.bytes.unwrap_or_else(|| token.as_bytes().to_vec()),
                        token,
                        logprob: top.logprob?,
                    })
                })
                .collect(),
        })
        .collect()
}
