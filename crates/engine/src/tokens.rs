//! Token counts of a turn, for context-window checks and `input_tokens`.
//!
//! Text is counted with a [`TokenCounter`]: the model's own tokenizer when the
//! binary loaded one (a Hugging Face `tokenizer.json`), else tiktoken's
//! `o200k_base` ([`O200kBase`]), which for an open model is an estimate usually
//! within a few percent for English text. The per-message and per-image
//! allowances follow OpenAI's published accounting for chat formats. (A
//! backend's own tokenizer endpoint counts whole turns, not text: see
//! `counting`.)
//!
//! Tokenizing a long history on every request is the costliest step of a
//! request's preparation, and almost always needless: a token is at least one
//! byte, so the same accounting with bytes instead of tokens is an upper bound
//! ([`Counter::Bound`]), and a turn whose bound fits the window fits.

use std::sync::Arc;

use antwort_api::{ContentPart, FunctionTool, ImageDetail, Item, MessageContent};

/// Role markers and separators a chat template adds around each message.
const PER_MESSAGE: u64 = 4;
/// What an image costs, by detail: one low-resolution tile, or a typical
/// high-resolution image (four tiles and the base).
const IMAGE_LOW: u64 = 85;
const IMAGE_HIGH: u64 = 765;

/// Counts the tokens of a text. The engine does no I/O, so a model's own
/// tokenizer is loaded by whoever builds the registry and handed in as one
/// of these ([`Tokenizer`]).
pub trait TokenCounter: Send + Sync {
    fn count(&self, text: &str) -> u64;
    /// What it is, for the logs (`tokens counted by ...`).
    fn name(&self) -> &str;
}

/// tiktoken's `o200k_base`: the fallback for every model without a tokenizer.
pub struct O200kBase;

impl TokenCounter for O200kBase {
    fn count(&self, text: &str) -> u64 {
        tiktoken_rs::o200k_base_singleton()
            .encode_ordinary(text)
            .len() as u64
    }

    fn name(&self) -> &str {
        "o200k_base"
    }
}

pub fn count_text(text: &str) -> u64 {
    O200kBase.count(text)
}

/// A model's own tokenizer, shared. Two are equal when they are the same one
/// (a registry entry compares its models to see whether a list changed).
#[derive(Clone)]
pub struct Tokenizer(Arc<dyn TokenCounter>);

impl Tokenizer {
    pub fn new(counter: Arc<dyn TokenCounter>) -> Self {
        Self(counter)
    }

    pub fn counter(&self) -> &dyn TokenCounter {
        &*self.0
    }
}

impl PartialEq for Tokenizer {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Tokenizer {}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Tokenizer").field(&self.0.name()).finish()
    }
}

/// How text is counted.
#[derive(Clone, Copy)]
pub enum Counter<'a> {
    /// With a tokenizer.
    Tokens(&'a dyn TokenCounter),
    /// In bytes: at least the number of tokens, without tokenizing (a
    /// token is at least one byte in every byte-level tokenizer).
    Bound,
}

impl<'a> Counter<'a> {
    /// Counts with the model's tokenizer, or `o200k_base` without one.
    pub fn tokens(tokenizer: Option<&'a Tokenizer>) -> Self {
        Self::Tokens(tokenizer.map_or(&O200kBase as &dyn TokenCounter, Tokenizer::counter))
    }

    /// What counts, for the logs (`bytes` for the bound).
    pub fn name(self) -> &'a str {
        match self {
            Self::Tokens(counter) => counter.name(),
            Self::Bound => "bytes",
        }
    }

    fn text(self, text: &str) -> u64 {
        match self {
            Self::Tokens(counter) => counter.count(text),
            Self::Bound => text.len() as u64,
        }
    }

    fn json(self, value: &serde_json::Value) -> u64 {
        match self {
            Self::Tokens(counter) => counter.count(&value.to_string()),
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

    /// A whole turn: its items, instructions and tool definitions.
    pub fn turn(self, items: &[Item], instructions: Option<&str>, tools: &[FunctionTool]) -> u64 {
        self.fixed(instructions, tools) + items.iter().map(|item| self.item(item)).sum::<u64>()
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

/// The tokens one item takes in the prompt, by `o200k_base`. Reasoning items
/// are not replayed to chat backends, so they take none.
pub fn count_item(item: &Item) -> u64 {
    Counter::tokens(None).item(item)
}

/// What is sent besides the items, by `o200k_base`: instructions and tool
/// definitions.
pub fn count_fixed(instructions: Option<&str>, tools: &[FunctionTool]) -> u64 {
    Counter::tokens(None).fixed(instructions, tools)
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
        assert!(Counter::Bound.item(&item) >= Counter::tokens(None).item(&item));
        let tool: FunctionTool = serde_json::from_value(serde_json::json!(
            {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}
        ))
        .unwrap();
        let tools = [tool];
        assert!(
            Counter::Bound.fixed(Some("be brief"), &tools)
                >= Counter::tokens(None).fixed(Some("be brief"), &tools)
        );
    }

    /// Counts one token per whitespace-separated word, like no real tokenizer.
    struct Words;

    impl TokenCounter for Words {
        fn count(&self, text: &str) -> u64 {
            text.split_whitespace().count() as u64
        }

        fn name(&self) -> &str {
            "words"
        }
    }

    #[test]
    fn a_models_tokenizer_counts_instead_of_o200k() {
        let words = Tokenizer::new(Arc::new(Words));
        let item: Item = serde_json::from_value(serde_json::json!(
            {"type": "message", "role": "user", "content": "antidisestablishmentarianism twice antidisestablishmentarianism"}
        ))
        .unwrap();
        let own = Counter::tokens(Some(&words));
        assert_eq!(own.name(), "words");
        assert_eq!(own.item(&item), PER_MESSAGE + 3);
        assert_eq!(Counter::tokens(None).name(), "o200k_base");
        assert!(Counter::tokens(None).item(&item) > PER_MESSAGE + 3);
        assert_eq!(
            own.turn(std::slice::from_ref(&item), Some("be brief"), &[]),
            PER_MESSAGE + 3 + PER_MESSAGE + 2 + 3
        );
        assert_eq!(words, words.clone(), "the same tokenizer");
        assert_ne!(words, Tokenizer::new(Arc::new(Words)));
        assert_eq!(format!("{words:?}"), "Tokenizer(\"words\")");
    }
}
