//! Finished items (an `output_item.done`, or the output of a whole response)
//! as the model events their content would have streamed as.

use antwort_api::Item;
use antwort_engine::ModelEvent;
use serde_json::Value;

use super::wire::{self, WireMessage, WirePart, WireReasoning};

/// A message's content as text, refusal and annotation events.
pub(super) fn message_events(message: WireMessage, out: &mut Vec<ModelEvent>) {
    for part in message.content.unwrap_or_default() {
        match part {
            WirePart::OutputText {
                text,
                annotations,
                logprobs,
            } => {
                let logprobs = wire::logprobs(logprobs);
                if !text.is_empty() || !logprobs.is_empty() {
                    out.push(ModelEvent::TextDelta { text, logprobs });
                }
                out.extend(
                    annotations
                        .unwrap_or_default()
                        .into_iter()
                        .map(ModelEvent::Annotation),
                );
            }
            WirePart::Refusal { refusal } if !refusal.is_empty() => {
                out.push(ModelEvent::RefusalDelta(refusal));
            }
            WirePart::Refusal { .. } | WirePart::Other => {}
        }
    }
}

/// A reasoning item's summary (first: a backend's own summary stops the
/// gateway from writing one out of the text), text, and `encrypted_content`,
/// which only the finished item carries whole.
pub(super) fn reasoning_events(
    reasoning: WireReasoning,
    summary: bool,
    text: bool,
    out: &mut Vec<ModelEvent>,
) {
    if summary {
        for (summary_index, part) in reasoning
            .summary
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            if !part.text.is_empty() {
                out.push(ModelEvent::ReasoningSummaryDelta {
                    summary_index: u32::try_from(summary_index).unwrap_or(u32::MAX),
                    text: part.text,
                });
            }
        }
    }
    if text {
        for part in reasoning.content.unwrap_or_default() {
            if !part.text.is_empty() {
                out.push(ModelEvent::ReasoningDelta(part.text));
            }
        }
    }
    if let Some(encrypted) = reasoning.encrypted_content.filter(|e| !e.is_empty()) {
        out.push(ModelEvent::ReasoningEncrypted(encrypted));
    }
}

/// A finished item of a hosted tool the backend ran, when the API types can
/// carry it.
pub(super) fn hosted_item(item: Value, out: &mut Vec<ModelEvent>) {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match serde_json::from_value::<Item>(item) {
        Ok(item @ Item::WebSearchCall(_)) => out.push(ModelEvent::Item(Box::new(item))),
        Ok(_) | Err(_) => {
            tracing::debug!(kind, "an output item this gateway cannot pass on; left out");
        }
    }
}
