//! Reasoning items: reasoning text, summaries (written by the backend, or filled
//! from the text when asked), and `encrypted_content`.

use antwort_api::{
    ContentPart, EventData, Item, ItemStatus, ReasoningItem, ReasoningPart, StreamEvent,
};

use super::{Assembler, OpenItem, ReasoningEventNames};
use crate::ids;

/// A reasoning item still receiving deltas.
pub(super) struct OpenReasoning {
    pub(super) output_index: usize,
    id: String,
    /// The reasoning text, once content part 0 was added.
    text: Option<String>,
    /// Summary parts by index.
    summary: Vec<String>,
    /// Summary part 0 mirrors the text (the backend wrote no summary when it
    /// began); the backend's own parts, if it sends some later, follow it.
    mirrored: bool,
    /// Text deltas still go to part 0: until the backend sends a summary of its
    /// own, which then stands for the rest of the reasoning.
    mirroring: bool,
    encrypted: Option<String>,
}

impl Assembler {
    /// The open reasoning item, opening one (and closing what was open) if the
    /// last open item is something else.
    fn open_reasoning(&mut self, out: &mut Vec<StreamEvent>) -> Option<&mut OpenReasoning> {
        if !matches!(self.open.last(), Some(OpenItem::Reasoning(_))) {
            self.close_all(ItemStatus::Completed, out);
            let output_index = self.reserve_slot();
            let id = ids::reasoning_id();
            let item = Item::Reasoning(ReasoningItem {
                id: Some(id.clone()),
                summary: Vec::new(),
                content: Some(Vec::new()),
                encrypted_content: None,
                status: Some(ItemStatus::InProgress),
            });
            self.emit(EventData::OutputItemAdded { output_index, item }, out);
            self.open.push(OpenItem::Reasoning(OpenReasoning {
                output_index,
                id,
                text: None,
                summary: Vec::new(),
                mirrored: false,
                mirroring: false,
                encrypted: None,
            }));
        }
        match self.open.last_mut() {
            Some(OpenItem::Reasoning(reasoning)) => Some(reasoning),
            _ => None,
        }
    }

    pub(super) fn reasoning(&mut self, delta: String, out: &mut Vec<StreamEvent>) {
        if delta.is_empty() {
            return;
        }
        let mirror = self.summarize_reasoning;
        let names = self.reasoning_names;
        let mut events = Vec::new();
        let Some(reasoning) = self.open_reasoning(out) else {
            return;
        };
        let (item_id, output_index) = (reasoning.id.clone(), reasoning.output_index);
        if reasoning.text.is_none() {
            reasoning.text = Some(String::new());
            events.push(EventData::ContentPartAdded {
                item_id: item_id.clone(),
                output_index,
                content_index: 0,
                part: ContentPart::ReasoningText {
                    text: String::new(),
                },
            });
            if mirror && reasoning.summary.is_empty() {
                reasoning.mirrored = true;
                reasoning.mirroring = true;
                reasoning.summary.push(String::new());
                events.push(EventData::ReasoningSummaryPartAdded {
                    item_id: item_id.clone(),
                    output_index,
                    summary_index: 0,
                    part: ReasoningPart::SummaryText {
                        text: String::new(),
                    },
                });
            }
        }
        if let Some(text) = reasoning.text.as_mut() {
            text.push_str(&delta);
        }
        let mirrored = reasoning.mirroring;
        if let Some(part) = reasoning.summary.first_mut().filter(|_| mirrored) {
            part.push_str(&delta);
        }
        events.push(match names {
            ReasoningEventNames::OpenResponses => EventData::ReasoningDelta {
                item_id: item_id.clone(),
                output_index,
                content_index: 0,
                delta: delta.clone(),
            },
            ReasoningEventNames::OpenAi => EventData::ReasoningTextDelta {
                item_id: item_id.clone(),
                output_index,
                content_index: 0,
                delta: delta.clone(),
            },
        });
        if mirrored {
            events.push(EventData::ReasoningSummaryTextDelta {
                item_id,
                output_index,
                summary_index: 0,
                delta,
            });
        }
        for data in events {
            self.emit(data, out);
        }
    }

    /// A piece of a summary the backend wrote. From then on the backend
    /// summarises: no later item mirrors its text.
    pub(super) fn reasoning_summary(
        &mut self,
        summary_index: u32,
        delta: String,
        out: &mut Vec<StreamEvent>,
    ) {
        self.summarize_reasoning = false;
        let mut events = Vec::new();
        let Some(reasoning) = self.open_reasoning(out) else {
            return;
        };
        let (item_id, output_index) = (reasoning.id.clone(), reasoning.output_index);
        reasoning.mirroring = false;
        // A part mirrored before the backend's first summary keeps index 0.
        let index = summary_index as usize + usize::from(reasoning.mirrored);
        while reasoning.summary.len() <= index {
            events.push(EventData::ReasoningSummaryPartAdded {
                item_id: item_id.clone(),
                output_index,
                summary_index: reasoning.summary.len(),
                part: ReasoningPart::SummaryText {
                    text: String::new(),
                },
            });
            reasoning.summary.push(String::new());
        }
        if let Some(part) = reasoning.summary.get_mut(index) {
            part.push_str(&delta);
        }
        if !delta.is_empty() {
            events.push(EventData::ReasoningSummaryTextDelta {
                item_id,
                output_index,
                summary_index: index,
                delta,
            });
        }
        for data in events {
            self.emit(data, out);
        }
    }

    /// The open reasoning item's `encrypted_content` (a reasoning item of its
    /// own when none is open).
    pub(super) fn reasoning_encrypted(&mut self, content: String, out: &mut Vec<StreamEvent>) {
        if let Some(reasoning) = self.open_reasoning(out) {
            reasoning.encrypted = Some(content);
        }
    }

    /// Emits a reasoning item's done events; returns the finished item.
    pub(super) fn close_reasoning(
        &mut self,
        reasoning: OpenReasoning,
        status: ItemStatus,
        out: &mut Vec<StreamEvent>,
    ) -> Item {
        let OpenReasoning {
            output_index,
            id,
            text,
            summary,
            encrypted,
            ..
        } = reasoning;
        let mut content = Vec::new();
        if let Some(text) = text {
            let data = match self.reasoning_names {
                ReasoningEventNames::OpenResponses => EventData::ReasoningDone {
                    item_id: id.clone(),
                    output_index,
                    content_index: 0,
                    text: text.clone(),
                },
                ReasoningEventNames::OpenAi => EventData::ReasoningTextDone {
                    item_id: id.clone(),
                    output_index,
                    content_index: 0,
                    text: text.clone(),
                },
            };
            self.emit(data, out);
            self.emit(
                EventData::ContentPartDone {
                    item_id: id.clone(),
                    output_index,
                    content_index: 0,
                    part: ContentPart::ReasoningText { text: text.clone() },
                },
                out,
            );
            content.push(ReasoningPart::ReasoningText { text });
        }
        let mut parts = Vec::with_capacity(summary.len());
        for (summary_index, text) in summary.into_iter().enumerate() {
            self.emit(
                EventData::ReasoningSummaryTextDone {
                    item_id: id.clone(),
                    output_index,
                    summary_index,
                    text: text.clone(),
                },
                out,
            );
            let part = ReasoningPart::SummaryText { text };
            self.emit(
                EventData::ReasoningSummaryPartDone {
                    item_id: id.clone(),
                    output_index,
                    summary_index,
                    part: part.clone(),
                },
                out,
            );
            parts.push(part);
        }
        let encrypted = encrypted.or_else(|| {
            let (seal, tenant) = self.sealing.as_ref()?;
            (!content.is_empty())
                .then(|| seal.seal(tenant, &content))
                .flatten()
        });
        Item::Reasoning(ReasoningItem {
            id: Some(id),
            summary: parts,
            content: Some(content),
            encrypted_content: encrypted,
            status: Some(status),
        })
    }
}
