//! Token counts of a turn, for context-window checks and `input_tokens`.
//!
//! Text is counted with tiktoken's `o200k_base` encoding. Open models use their own
//! tokenizers, so this is an estimate that is usually within a few percent for
//! English text; the per-message and per-image allowances follow OpenAI's published
//! accounting for chat formats.
//!
//! Tokenizing a long history on every request is the costliest step of a
//! request's preparation, and almost always needless: a token is at least one
//! byte, so the same accounting with bytes instead of tokens is an upper bound
//! ([`Counter::Bound`]), and a turn whose bound fits the window fits.

use antwort_api::{ContentPart, FunctionTool, ImageDetail, Item, MessageContent};

/// Role markers and separators a chat template adds around each message.
const PER_MESSAGE: u64 = 4;
/// What an image costs, by detail: one low-resolution tile, or a typical
/// high-resolution image (four tiles and the base).
const IMAGE_LOW: u64 = 85;
const IMAGE_HIGH: u64 = 765;

pub fn count_text(text: &str) -> u64 {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

/// How text is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// With the tokenizer.
    Tokens,
    /// In bytes: at least the number of tokens, without tokenizing.
    Bound,
}

impl Counter {
    fn text(self, text: &str) -> u64 {
        match self {
            Self::Tokens => count_text(text),
            Self::Bound => text.len() as u64,
        }
    }

    fn json(self, value: &serde_json::Value) -> u64 {
        match self {
            Self::Tokens => count_text(&value.to_string()),
            Self::Bound => {
                let mut counter = ByteCounter(0);
                // Writing into a counter cannot fail.
                let _ = serde_json::to_writer(&mut counter, value);
                counter.0
            }
        }
    }

    /// What one item takes in the prompt (see [`count_item`]).
    pub fn item(self, item: &Item) -> u64 {
        match item {
            Item::Message(message) => PER_MESSAGE + self.content(&message.content),
            Item::FunctionCall(call) => {
                PER_MESSAGE + self.text(&call.name) + self.text(&call.arguments)
            }
            Item::FunctionCallOutput(output) => PER_MESSAGE + self.content(&output.output),
            Item::Compaction(compaction) => PER_MESSAGE + self.text(&compaction.encrypted_content),
            // MCP items reach a backend as function calls and outputs (see `replay`);
            // counted here only when a count is asked of raw stored input.
            Item::McpCall(call) => {
                PER_MESSAGE
                    + self.text(&call.name)
                    + self.text(&call.arguments)
                    + call.output.as_deref().map_or(0, |t| self.text(t))
            }
            Item::McpApprovalRequest(request) => {
                PER_MESSAGE + self.text(&request.name) + self.text(&request.arguments)
            }
            Item::CustomToolCall(call) => {
                PER_MESSAGE + self.text(&call.name) + self.text(&call.input)
            }
            Item::CustomToolCallOutput(output) => PER_MESSAGE + self.content(&output.output),
            Item::LocalShellCall(call) => PER_MESSAGE + self.text(&call.action.to_string()),
            Item::LocalShellCallOutput(output) => PER_MESSAGE + self.text(&output.output),
            Item::ShellCall(call) => PER_MESSAGE + self.text(&call.action.to_string()),
            Item::ShellCallOutput(output) => PER_MESSAGE + self.text(&output.output.to_string()),
            Item::ApplyPatchCall(call) => PER_MESSAGE + self.text(&call.operation.to_string()),
            Item::ApplyPatchCallOutput(output) => {
                PER_MESSAGE + output.output.as_deref().map_or(0, |t| self.text(t))
            }
            Item::Reasoning(_)
            | Item::ItemReference(_)
            | Item::McpListTools(_)
            | Item::McpApprovalResponse(_)
            | Item::WebSearchCall(_) => 0,
        }
    }

    fn content(self, content: &MessageContent) -> u64 {
        match content {
            MessageContent::Text(text) => self.text(text),
            MessageContent::Parts(parts) => parts
                .iter()
                .map(|part| match part {
                    ContentPart::InputImage {
                        detail: ImageDetail::Low,
                        ..
                    } => IMAGE_LOW,
                    ContentPart::InputImage { .. } => IMAGE_HIGH,
                    ContentPart::Refusal { refusal } => self.text(refusal),
                    ContentPart::InputFile { file_data, .. } => {
                        file_data.as_deref().map_or(0, |t| self.text(t))
                    }
                    other => other.text().map_or(0, |t| self.text(t)),
                })
                .sum(),
        }
    }

    /// Instructions and tool definitions (see [`count_fixed`]).
    pub fn fixed(self, instructions: Option<&str>, tools: &[FunctionTool]) -> u64 {
        let instructions = instructions.map_or(0, |text| PER_MESSAGE + self.text(text));
        let tools: u64 = tools
            .iter()
            .map(|tool| {
                let parameters = tool.parameters.as_ref().map_or(0, |p| self.json(p));
                self.text(&tool.name)
                    + tool.description.as_deref().map_or(0, |d| self.text(d))
                    + parameters
                    + 8
            })
            .sum();
        // The reply is primed with an assistant header.
        instructions + tools + 3
    }
}

/// Counts the bytes written to it.
struct ByteCounter(u64);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The tokens one item takes in the prompt. Reasoning items are not replayed to
/// chat backends, so they take none.
pub fn count_item(item: &Item) -> u64 {
    Counter::Tokens.item(item)
}

/// What is sent besides the items: instructions and tool definitions.
pub fn count_fixed(instructions: Option<&str>, tools: &[FunctionTool]) -> u64 {
    Counter::Tokens.fixed(instructions, tools)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_counted_with_a_real_tokenizer() {
        assert_eq!(count_text(""), 0);
        assert_eq!(count_text("hello"), 1);
        let long = "The quick brown fox jumps over the lazy dog. ".repeat(100);
        let count = count_text(&long);
        assert!((900..=1100).contains(&count), "{count}");
    }

    #[test]
    fn the_byte_bound_is_never_below_the_count() {
        let text = "Grüße, 世界! The quick brown fox 🦊 jumps. ".repeat(20);
        let item: Item = serde_json::from_value(serde_json::json!(
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        ))
        .unwrap();
        assert!(Counter::Bound.item(&item) >= Counter::Tokens.item(&item));
        let tool: FunctionTool = serde_json::from_value(serde_json::json!(
            {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}
        ))
        .unwrap();
        let tools = [tool];
        assert!(
            Counter::Bound.fixed(Some("be brief"), &tools)
                >= Counter::Tokens.fixed(Some("be brief"), &tools)
        );
    }
}
