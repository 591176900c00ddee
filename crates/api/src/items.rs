//! Items: the units of a conversation, as clients send them in `input` and as the
//! response carries them in `output`.
//!
//! One `Item` type serves both directions, as in the OpenAI API, where a client may
//! send any output item back as input. Input is lenient where real clients are (a
//! message without `type`, an `item_reference` without `type`); output always carries
//! the ids and statuses the schema requires.

use serde::{Deserialize, Deserializer, Serialize};

use crate::client_calls::{
    ApplyPatchCallItem, ApplyPatchCallOutputItem, CustomToolCallItem, CustomToolCallOutputItem,
    LocalShellCallItem, LocalShellCallOutputItem, ShellCallItem, ShellCallOutputItem,
};
use crate::content::{MessageContent, ReasoningPart};
use crate::mcp::{McpApprovalRequestItem, McpApprovalResponseItem, McpCallItem, McpListToolsItem};
use crate::web_search::WebSearchCallItem;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Message(MessageItem),
    FunctionCall(FunctionCallItem),
    FunctionCallOutput(FunctionCallOutputItem),
    Reasoning(ReasoningItem),
    ItemReference(ItemReference),
    Compaction(CompactionItem),
    McpListTools(McpListToolsItem),
    McpCall(McpCallItem),
    McpApprovalRequest(McpApprovalRequestItem),
    McpApprovalResponse(McpApprovalResponseItem),
    WebSearchCall(WebSearchCallItem),
    CustomToolCall(CustomToolCallItem),
    CustomToolCallOutput(CustomToolCallOutputItem),
    LocalShellCall(LocalShellCallItem),
    LocalShellCallOutput(LocalShellCallOutputItem),
    ShellCall(ShellCallItem),
    ShellCallOutput(ShellCallOutputItem),
    ApplyPatchCall(ApplyPatchCallItem),
    ApplyPatchCallOutput(ApplyPatchCallOutputItem),
}

impl Item {
    /// The item's id, when it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Message(item) => item.id.as_deref(),
            Self::FunctionCall(item) => item.id.as_deref(),
            Self::FunctionCallOutput(item) => item.id.as_deref(),
            Self::Reasoning(item) => item.id.as_deref(),
            Self::ItemReference(item) => Some(&item.id),
            Self::Compaction(item) => item.id.as_deref(),
            Self::McpListTools(item) => Some(&item.id),
            Self::McpCall(item) => Some(&item.id),
            Self::McpApprovalRequest(item) => Some(&item.id),
            Self::McpApprovalResponse(item) => item.id.as_deref(),
            Self::WebSearchCall(item) => Some(&item.id),
            Self::CustomToolCall(item) => item.id.as_deref(),
            Self::CustomToolCallOutput(item) => item.id.as_deref(),
            Self::LocalShellCall(item) => Some(&item.id),
            // Its `id` names the call it answers, not itself.
            Self::LocalShellCallOutput(_) => None,
            Self::ShellCall(item) => item.id.as_deref(),
            Self::ShellCallOutput(item) => item.id.as_deref(),
            Self::ApplyPatchCall(item) => item.id.as_deref(),
            Self::ApplyPatchCallOutput(item) => item.id.as_deref(),
        }
    }
}

/// The lifecycle of an output item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    InProgress,
    Completed,
    Incomplete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    System,
    Developer,
}

/// Labels an assistant message as commentary or final answer (sent back by Codex).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Commentary,
    FinalAnswer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    pub role: Role,
    pub content: MessageContent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub call_id: String,
    pub name: String,
    pub arguments: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    /// The `namespace` tool the function was declared in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallOutputItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub call_id: String,
    pub output: MessageContent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasoningItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "crate::serde_util::null_as_default")]
    pub summary: Vec<ReasoningPart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<ReasoningPart>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemReference {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactionItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub encrypted_content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// The `input` of a create request: a bare string is one user message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<Item>),
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Input;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of input items")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Input::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Input::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(InputItem(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Input::Items(items))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One element of `input`, read with the leniency real clients need: a message may
/// omit `type` (the Chat-style `{"role", "content"}`), and an item reference may too.
struct InputItem(Item);

impl<'de> Deserialize<'de> for InputItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut value = serde_json::Value::deserialize(deserializer)?;
        let Some(object) = value.as_object_mut() else {
            return Err(D::Error::custom("each input item must be an object"));
        };
        let has_type = object.get("type").is_some_and(|t| !t.is_null());
        if !has_type {
            let inferred = if object.contains_key("role") {
                "message"
            } else if object.contains_key("id") {
                "item_reference"
            } else {
                return Err(D::Error::custom(
                    "input item has neither `type` nor `role`; expected a message or a typed item",
                ));
            };
            object.insert("type".into(), inferred.into());
        }
        Item::deserialize(value)
            .map(InputItem)
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_without_type_is_a_message() {
        let input: Input = serde_json::from_str(r#"[{"role":"user","content":"hi"}]"#).unwrap();
        let Input::Items(items) = input else {
            panic!("expected items")
        };
        assert!(matches!(
            &items[0],
            Item::Message(MessageItem { role: Role::User, content: MessageContent::Text(t), .. }) if t == "hi"
        ));
    }

    #[test]
    fn an_item_reference_may_omit_its_type() {
        let input: Input = serde_json::from_str(r#"[{"id":"msg_1"}]"#).unwrap();
        assert_eq!(
            input,
            Input::Items(vec![Item::ItemReference(ItemReference {
                id: "msg_1".into()
            })])
        );
    }

    #[test]
    fn unknown_item_type_is_named() {
        let error = serde_json::from_str::<Input>(r#"[{"type":"teleport"}]"#).unwrap_err();
        assert!(error.to_string().contains("teleport"), "{error}");
    }

    #[test]
    fn function_call_output_accepts_a_string_or_parts() {
        let item: Item = serde_json::from_str(
            r#"{"type":"function_call_output","call_id":"c1","output":[{"type":"input_text","text":"42"}]}"#,
        )
        .unwrap();
        assert!(matches!(item, Item::FunctionCallOutput(_)));
    }
}
