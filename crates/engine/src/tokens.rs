//! Token counts of a turn, for context-window checks and `input_tokens`.
//!
//! Text is counted with tiktoken's `o200k_base` encoding. Open models use their own
//! tokenizers, so this is an estimate that is usually within a few percent for
//! English text; the per-message and per-image allowances follow OpenAI's published
//! accounting for chat formats.

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

fn count_content(content: &MessageContent) -> u64 {
    match content {
        MessageContent::Text(text) => count_text(text),
        MessageContent::Parts(parts) => parts
            .iter()
            .map(|part| match part {
                ContentPart::InputImage {
                    detail: ImageDetail::Low,
                    ..
                } => IMAGE_LOW,
                ContentPart::InputImage { .. } => IMAGE_HIGH,
                ContentPart::Refusal { refusal } => count_text(refusal),
                ContentPart::InputFile { file_data, .. } => {
                    file_data.as_deref().map_or(0, count_text)
                }
                other => other.text().map_or(0, count_text),
            })
            .sum(),
    }
}

/// The tokens one item takes in the prompt. Reasoning items are not replayed to
/// chat backends, so they take none.
pub fn count_item(item: &Item) -> u64 {
    match item {
        Item::Message(message) => PER_MESSAGE + count_content(&message.content),
        Item::FunctionCall(call) => {
            PER_MESSAGE + count_text(&call.name) + count_text(&call.arguments)
        }
        Item::FunctionCallOutput(output) => PER_MESSAGE + count_content(&output.output),
        Item::Compaction(compaction) => PER_MESSAGE + count_text(&compaction.encrypted_content),
        // MCP items reach a backend as function calls and outputs (see `replay`);
        // counted here only when a count is asked of raw stored input.
        Item::McpCall(call) => {
            PER_MESSAGE
                + count_text(&call.name)
                + count_text(&call.arguments)
                + call.output.as_deref().map_or(0, count_text)
        }
        Item::McpApprovalRequest(request) => {
            PER_MESSAGE + count_text(&request.name) + count_text(&request.arguments)
        }
        Item::Reasoning(_)
        | Item::ItemReference(_)
        | Item::McpListTools(_)
        | Item::McpApprovalResponse(_) => 0,
    }
}

/// What is sent besides the items: instructions and tool definitions.
pub fn count_fixed(instructions: Option<&str>, tools: &[FunctionTool]) -> u64 {
    let instructions = instructions.map_or(0, |text| PER_MESSAGE + count_text(text));
    let tools: u64 = tools
        .iter()
        .map(|tool| {
            let parameters = tool
                .parameters
                .as_ref()
                .map_or(0, |p| count_text(&p.to_string()));
            count_text(&tool.name)
                + tool.description.as_deref().map_or(0, count_text)
                + parameters
                + 8
        })
        .sum();
    // The reply is primed with an assistant header.
    instructions + tools + 3
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
}
