//! The form in which stored items are kept and returned: the one the OpenAI API
//! returns, whatever shorthand the client sent.
//!
//! A client may send `{"role": "user", "content": "hi"}`; the OpenAI API gives the
//! item back from `input_items` and conversation items as
//! `{"type": "message", "role": "user", "content": [{"type": "input_text", "text":
//! "hi"}], "status": "completed"}`, and the official SDKs' types expect exactly
//! that (the Python SDK fails on a string content: `'str' object has no attribute
//! 'text'`). Normalising is idempotent, so items stored before it existed are
//! normalised again when they are read.

use crate::content::{ContentPart, MessageContent, OutputText};
use crate::items::{Item, ItemStatus, Role};

impl Item {
    /// Puts the item into its stored form: a message's content as typed parts
    /// (`input_text` for user, system and developer messages, `output_text` for
    /// the assistant's), and `status: completed` on messages, function calls and
    /// their outputs that carry none.
    pub fn normalize(&mut self) {
        match self {
            Item::Message(message) => {
                let assistant = message.role == Role::Assistant;
                let content =
                    std::mem::replace(&mut message.content, MessageContent::Parts(Vec::new()));
                message.content = MessageContent::Parts(match content {
                    MessageContent::Text(text) => vec![text_part(text, assistant)],
                    MessageContent::Parts(parts) => parts
                        .into_iter()
                        .map(|part| match part {
                            ContentPart::Text { text } => text_part(text, assistant),
                            other => other,
                        })
                        .collect(),
                });
                message.status.get_or_insert(ItemStatus::Completed);
            }
            Item::FunctionCall(call) => {
                call.status.get_or_insert(ItemStatus::Completed);
            }
            Item::FunctionCallOutput(output) => {
                output.status.get_or_insert(ItemStatus::Completed);
            }
            _ => {}
        }
    }
}

/// Normalises every item of `items` (see [`Item::normalize`]).
pub fn normalize_items(items: &mut [Item]) {
    items.iter_mut().for_each(Item::normalize);
}

fn text_part(text: String, assistant: bool) -> ContentPart {
    if assistant {
        ContentPart::OutputText(OutputText {
            text,
            annotations: Vec::new(),
            logprobs: None,
        })
    } else {
        ContentPart::InputText { text }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn normalized(value: serde_json::Value) -> serde_json::Value {
        let mut item: Item = serde_json::from_value(value).unwrap();
        item.normalize();
        let once = serde_json::to_value(&item).unwrap();
        item.normalize();
        assert_eq!(serde_json::to_value(&item).unwrap(), once, "idempotent");
        once
    }

    #[test]
    fn shorthand_messages_come_back_as_typed_parts_with_a_status() {
        assert_eq!(
            normalized(json!({"type": "message", "role": "user", "content": "i1"})),
            json!({"type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_text", "text": "i1"}]})
        );
        assert_eq!(
            normalized(
                json!({"type": "message", "role": "assistant", "content": [{"type": "text", "text": "a"}]})
            ),
            json!({"type": "message", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "a", "annotations": []}]})
        );
        assert_eq!(
            normalized(json!({"type": "function_call_output", "call_id": "c", "output": "4"})),
            json!({"type": "function_call_output", "call_id": "c", "output": "4", "status": "completed"})
        );
    }

    #[test]
    fn what_is_already_in_stored_form_is_kept() {
        let message = json!({"type": "message", "id": "msg_1", "role": "user", "status": "incomplete",
            "content": [{"type": "input_text", "text": "x"}, {"type": "input_image", "image_url": "data:,", "detail": "auto"}]});
        assert_eq!(normalized(message.clone()), message);
    }
}
