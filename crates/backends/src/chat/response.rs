//! Chat Completions → model events: streamed chunks and whole completions, read
//! leniently (every field optional) because each server fills them differently.

use antwort_api::{InputTokensDetails, LogProb, OutputTokensDetails, TopLogProb, Usage};
use antwort_engine::{FinishReason, ModelEvent};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct ChatChunk {
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default)]
    pub usage: Option<ChatUsage>,
    /// vLLM and others report a failure inside the stream this way.
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub delta: Option<ChatDelta>,
    #[serde(default)]
    pub logprobs: Option<ChatLogprobs>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChatDelta {
    #[serde(default)]
    pub content: Option<String>,
    /// vLLM, DeepSeek and llama.cpp name it `reasoning_content`; Ollama and newer
    /// vLLM `reasoning`.
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
pub struct ToolCallDelta {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
pub struct FunctionDelta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ChatLogprobs {
    #[serde(default)]
    pub content: Option<Vec<ChatTokenLogprob>>,
}

#[derive(Debug, Deserialize)]
pub struct ChatTokenLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
    #[serde(default)]
    pub top_logprobs: Option<Vec<ChatTopLogprob>>,
}

#[derive(Debug, Deserialize)]
pub struct ChatTopLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
}

#[derive(Debug, Deserialize)]
pub struct ChatUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Deserialize)]
pub struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct CompletionDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

/// A whole (non-streamed) completion. Its message has the fields of a streamed
/// delta, so it is read as one chunk that carries everything.
#[derive(Debug, Deserialize)]
pub struct ChatCompletion {
    #[serde(default)]
    pub choices: Vec<CompletionChoice>,
    #[serde(default)]
    pub usage: Option<ChatUsage>,
}

#[derive(Debug, Deserialize)]
pub struct CompletionChoice {
    #[serde(default)]
    pub message: Option<ChatDelta>,
    #[serde(default)]
    pub logprobs: Option<ChatLogprobs>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

impl ChatUsage {
    pub fn to_usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: self
                    .prompt_tokens_details
                    .as_ref()
                    .and_then(|d| d.cached_tokens)
                    .unwrap_or(0),
            },
            output_tokens: self.completion_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: self
                    .completion_tokens_details
                    .as_ref()
                    .and_then(|d| d.reasoning_tokens)
                    .unwrap_or(0),
            },
            total_tokens: self
                .total_tokens
                .unwrap_or(self.prompt_tokens + self.completion_tokens),
        }
    }
}

pub fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

fn logprobs(logprobs: Option<ChatLogprobs>) -> Vec<LogProb> {
    logprobs
        .and_then(|l| l.content)
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
                .map(|top| TopLogProb {
                    bytes: top.bytes.unwrap_or_else(|| top.token.as_bytes().to_vec()),
                    token: top.token,
                    logprob: top.logprob,
                })
                .collect(),
        })
        .collect()
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

/// The model events of one streamed chunk, in the order a reader expects them.
pub fn chunk_events(chunk: ChatChunk, out: &mut Vec<ModelEvent>) {
    for choice in chunk.choices {
        let delta = choice.delta.unwrap_or_default();
        if let Some(reasoning) = non_empty(delta.reasoning_content.or(delta.reasoning)) {
            out.push(ModelEvent::ReasoningDelta(reasoning));
        }
        let logprobs = logprobs(choice.logprobs);
        if let Some(text) = delta
            .content
            .filter(|t| !t.is_empty() || !logprobs.is_empty())
        {
            out.push(ModelEvent::TextDelta { text, logprobs });
        }
        if let Some(refusal) = non_empty(delta.refusal) {
            out.push(ModelEvent::RefusalDelta(refusal));
        }
        for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
            let function = call.function.unwrap_or_default();
            out.push(ModelEvent::ToolCallDelta {
                index: call.index.unwrap_or(position as u32),
                id: call.id,
                name: non_empty(function.name),
                arguments: function.arguments.unwrap_or_default(),
            });
        }
        if let Some(reason) = choice.finish_reason {
            out.push(ModelEvent::Finish(finish_reason(&reason)));
        }
    }
    if let Some(usage) = chunk.usage {
        out.push(ModelEvent::Usage(usage.to_usage()));
    }
}

/// The model events of a whole completion: the same events a stream would have
/// produced (reasoning, text, refusal, tool calls, finish, usage).
pub fn completion_events(completion: ChatCompletion) -> Vec<ModelEvent> {
    let choice = completion
        .choices
        .into_iter()
        .next()
        .map(|choice| ChunkChoice {
            delta: choice.message,
            logprobs: choice.logprobs,
            // A completion always finished; some servers leave the reason out.
            finish_reason: Some(choice.finish_reason.unwrap_or_else(|| "stop".to_owned())),
        });
    let chunk = ChatChunk {
        choices: choice.into_iter().collect(),
        usage: completion.usage,
        error: None,
    };
    let mut out = Vec::new();
    chunk_events(chunk, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunk: &str) -> Vec<ModelEvent> {
        let mut out = Vec::new();
        chunk_events(serde_json::from_str(chunk).unwrap(), &mut out);
        out
    }

    #[test]
    fn reasoning_content_and_reasoning_are_both_read() {
        assert_eq!(
            events(r#"{"choices":[{"delta":{"reasoning_content":"a"}}]}"#),
            [ModelEvent::ReasoningDelta("a".into())]
        );
        assert_eq!(
            events(r#"{"choices":[{"delta":{"reasoning":"b"}}]}"#),
            [ModelEvent::ReasoningDelta("b".into())]
        );
    }

    #[test]
    fn usage_only_chunk_after_finish() {
        assert_eq!(
            events(r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#),
            [ModelEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 2,
                total_tokens: 5,
                ..Usage::default()
            })]
        );
    }

    #[test]
    fn tool_call_pieces() {
        let out = events(
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"c","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}"#,
        );
        assert_eq!(
            out,
            [ModelEvent::ToolCallDelta {
                index: 1,
                id: Some("c".into()),
                name: Some("f".into()),
                arguments: String::new()
            }]
        );
    }

    #[test]
    fn whole_completion_becomes_the_same_events() {
        let completion: ChatCompletion = serde_json::from_str(
            r#"{"choices":[{"message":{"role":"assistant","content":"hi","reasoning_content":"r"},"finish_reason":"length"}],
                "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
        )
        .unwrap();
        let out = completion_events(completion);
        assert_eq!(out[0], ModelEvent::ReasoningDelta("r".into()));
        assert!(matches!(&out[1], ModelEvent::TextDelta { text, .. } if text == "hi"));
        assert_eq!(out[2], ModelEvent::Finish(FinishReason::Length));
        assert!(matches!(out[3], ModelEvent::Usage(_)));
    }
}
