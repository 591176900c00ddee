//! Wire types of the Responses API: requests, the response object, items, content
//! parts, streaming events and errors.
//!
//! This crate is the public contract. It does serde and validation only, no I/O, so
//! that every other crate (and any client written in Rust) can depend on it cheaply.

pub mod client_calls;
pub mod content;
pub mod error;
pub mod events;
pub mod items;
pub mod mcp;
pub mod request;
pub mod response;
mod serde_util;
mod stored_form;
pub mod stored_text;
pub mod tools;
pub mod url_text;
pub mod web_search;

pub use client_calls::{
    ApplyPatchCallItem, ApplyPatchCallOutputItem, CustomToolCallItem, CustomToolCallOutputItem,
    LocalShellCallItem, LocalShellCallOutputItem, ShellCallItem, ShellCallOutputItem,
    shell_output_text,
};
pub use content::{
    ContentPart, ImageDetail, LogProb, MessageContent, OutputText, ReasoningPart, TopLogProb,
};
pub use error::{ApiError, ErrorBody, ErrorCode, ErrorEnvelope};
pub use events::{EventData, StreamEvent};
pub use items::{
    CompactionItem, FunctionCallItem, FunctionCallOutputItem, Input, Item, ItemReference,
    ItemStatus, MessageItem, Phase, ReasoningItem, Role,
};
pub use mcp::{
    McpApprovalMode, McpApprovalRequestItem, McpApprovalResponseItem, McpCallError,
    McpCallErrorKind, McpCallItem, McpCallStatus, McpListToolsItem, McpListedTool,
    McpRequireApproval, McpTool, McpToolFilter, McpToolSelector, McpToolType,
};
pub use request::{
    AddConversationItemsRequest, CompactRequest, CreateConversationRequest, CreateResponseRequest,
    Include, ServiceTier, StreamOptions, Truncation, UpdateConversationRequest, parse_json,
    validate_metadata,
};
pub use response::{
    Compaction, CompactionObject, Conversation, ConversationObject, ConversationRef,
    IncompleteDetails, IncompleteReason, InputTokensDetails, Model, ModelList, OutputTokensDetails,
    Response, ResponseError, ResponseObject, ResponseStatus, Usage,
};
pub use stored_form::normalize_items;
pub use stored_text::{
    check_input_ids, check_item_ids, check_optional_text, check_text, duplicate_item,
};
pub use tools::{
    FunctionTool, FunctionType, HostedTool, JsonSchemaFormat, ReasoningConfig, ReasoningEffort,
    ReasoningSummary, TextConfig, TextFormat, Tool, ToolChoice, ToolChoiceMode, ToolRef, Verbosity,
};
pub use url_text::redact_url;
pub use web_search::{WebSearchAction, WebSearchCallItem, WebSearchSource, WebSearchStatus};
