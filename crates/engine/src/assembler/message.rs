//! Messages: output text (with its log probabilities and annotations) and
//! refusals, part by part.

use antwort_api::{
    ContentPart, EventData, Item, ItemStatus, LogProb, MessageContent, MessageItem, OutputText,
    Role, StreamEvent,
};

use super::{Assembler, OpenItem};
use crate::ids;

/// A message still receiving deltas.
pub(super) struct OpenMessage {
    pub(super) output_index: usize,
    id: String,
    parts: Vec<OpenPart>,
}

enum OpenPart {
    Text {
        text: String,
        logprobs: Vec<LogProb>,
        annotations: Vec<serde_json::Value>,
    },
    Refusal {
        text: String,
    },
}

impl Assembler {
    /// Makes sure the last open item is a message whose last part is of the wanted
    /// kind, and returns (item id, output index, content index).
    fn message_part(
        &mut self,
        refusal: bool,
        out: &mut Vec<StreamEvent>,
    ) -> (String, usize, usize) {
        if !matches!(self.open.last(), Some(OpenItem::Message(_))) {
            self.close_all(ItemStatus::Completed, out);
            let output_index = self.reserve_slot();
            let id = ids::message_id();
            let item = Item::Message(MessageItem {
                id: Some(id.clone()),
                status: Some(ItemStatus::InProgress),
                role: Role::Assistant,
                content: MessageContent::Parts(Vec::new()),
                phase: None,
            });
            self.emit(EventData::OutputItemAdded { output_index, item }, out);
            self.open.push(OpenItem::Message(OpenMessage {
                output_index,
                id,
                parts: Vec::new(),
            }));
        }
        let logprobs = self.logprobs;
        let Some(OpenItem::Message(OpenMessage {
            output_index,
            id,
            parts,
        })) = self.open.last_mut()
        else {
            return (String::new(), 0, 0);
        };
        let (item_id, output_index) = (id.clone(), *output_index);
        let wanted_open = match parts.last() {
            Some(OpenPart::Refusal { .. }) => refusal,
            Some(OpenPart::Text { .. }) => !refusal,
            None => false,
        };
        if !wanted_open {
            let (open, part) = if refusal {
                (
                    OpenPart::Refusal {
                        text: String::new(),
                    },
                    ContentPart::Refusal {
                        refusal: String::new(),
                    },
                )
            } else {
                (
                    OpenPart::Text {
                        text: String::new(),
                        logprobs: Vec::new(),
                        annotations: Vec::new(),
                    },
                    ContentPart::OutputText(OutputText {
                        text: String::new(),
                        annotations: Vec::new(),
                        logprobs: logprobs.then(Vec::new),
                    }),
                )
            };
            parts.push(open);
            let content_index = parts.len() - 1;
            self.emit(
                EventData::ContentPartAdded {
                    item_id: item_id.clone(),
                    output_index,
                    content_index,
                    part,
                },
                out,
            );
            return (item_id, output_index, content_index);
        }
        (item_id, output_index, parts.len() - 1)
    }

    pub(super) fn text(
        &mut self,
        delta: String,
        logprobs: Vec<LogProb>,
        out: &mut Vec<StreamEvent>,
    ) {
        if delta.is_empty() && logprobs.is_empty() {
            return;
        }
        let (item_id, output_index, content_index) = self.message_part(false, out);
        let keep_logprobs = self.logprobs;
        if let Some(OpenItem::Message(OpenMessage { parts, .. })) = self.open.last_mut()
            && let Some(OpenPart::Text {
                text,
                logprobs: all,
                ..
            }) = parts.last_mut()
        {
            text.push_str(&delta);
            if keep_logprobs {
                all.extend(logprobs.iter().cloned());
            }
        }
        self.emit(
            EventData::OutputTextDelta {
                item_id,
                output_index,
                content_index,
                delta,
                logprobs: if keep_logprobs { logprobs } else { Vec::new() },
            },
            out,
        );
    }

    pub(super) fn refusal(&mut self, delta: String, out: &mut Vec<StreamEvent>) {
        if delta.is_empty() {
            return;
        }
        let (item_id, output_index, content_index) = self.message_part(true, out);
        if let Some(OpenItem::Message(OpenMessage { parts, .. })) = self.open.last_mut()
            && let Some(OpenPart::Refusal { text }) = parts.last_mut()
        {
            text.push_str(&delta);
        }
        self.emit(
            EventData::RefusalDelta {
                item_id,
                output_index,
                content_index,
                delta,
            },
            out,
        );
    }

    /// An annotation (`url_citation`, `file_citation`, ...) on the output text
    /// written so far: it joins the current text part (opened if there is none)
    /// with `response.output_text.annotation.added`.
    pub(super) fn annotation(&mut self, annotation: serde_json::Value, out: &mut Vec<StreamEvent>) {
        let (item_id, output_index, content_index) = self.message_part(false, out);
        let mut annotation_index = 0;
        if let Some(OpenItem::Message(OpenMessage { parts, .. })) = self.open.last_mut()
            && let Some(OpenPart::Text { annotations, .. }) = parts.last_mut()
        {
            annotation_index = annotations.len();
            annotations.push(annotation.clone());
        }
        self.emit(
            EventData::OutputTextAnnotationAdded {
                item_id,
                output_index,
                content_index,
                annotation_index,
                annotation,
            },
            out,
        );
    }

    /// Emits a message's done events, part by part; returns the finished item.
    pub(super) fn close_message(
        &mut self,
        message: OpenMessage,
        status: ItemStatus,
        out: &mut Vec<StreamEvent>,
    ) -> Item {
        let OpenMessage {
            output_index,
            id,
            parts,
        } = message;
        let mut content = Vec::with_capacity(parts.len());
        for (content_index, part) in parts.into_iter().enumerate() {
            let (done, part) = match part {
                OpenPart::Text {
                    text,
                    logprobs,
                    mut annotations,
                } => {
                    // Citations of server-side results this answer follows.
                    for annotation in std::mem::take(&mut self.citations) {
                        self.emit(
                            EventData::OutputTextAnnotationAdded {
                                item_id: id.clone(),
                                output_index,
                                content_index,
                                annotation_index: annotations.len(),
                                annotation: annotation.clone(),
                            },
                            out,
                        );
                        annotations.push(annotation);
                    }
                    (
                        EventData::OutputTextDone {
                            item_id: id.clone(),
                            output_index,
                            content_index,
                            text: text.clone(),
                            logprobs: logprobs.clone(),
                        },
                        ContentPart::OutputText(OutputText {
                            text,
                            annotations,
                            logprobs: self.logprobs.then_some(logprobs),
                        }),
                    )
                }
                OpenPart::Refusal { text } => (
                    EventData::RefusalDone {
                        item_id: id.clone(),
                        output_index,
                        content_index,
                        refusal: text.clone(),
                    },
                    ContentPart::Refusal { refusal: text },
                ),
            };
            self.emit(done, out);
            self.emit(
                EventData::ContentPartDone {
                    item_id: id.clone(),
                    output_index,
                    content_index,
                    part: part.clone(),
                },
                out,
            );
            content.push(part);
        }
        Item::Message(MessageItem {
            id: Some(id),
            status: Some(status),
            role: Role::Assistant,
            content: MessageContent::Parts(content),
            phase: None,
        })
    }
}
