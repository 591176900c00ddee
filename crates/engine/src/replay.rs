//! The model's view of stored items: what a backend is sent for the items of a
//! conversation so far.
//!
//! Backends know messages, function calls and their outputs. The items of
//! server-side tools become exactly that, as their tool type says
//! ([`ToolType::replay`]): an `mcp_call` is a call of the model-facing tool name
//! and its output (or error), a denied approval request is a call whose output
//! says it was denied, and listings, pending requests and approval answers are
//! not shown at all (the tool definitions travel in `tools`). Doing this once,
//! here, means a chain through tool calls replays the same way whether it is read
//! from the store, sent back by the client as input, or produced a turn ago.

use std::sync::Arc;

use antwort_api::Item;

use crate::tool::{Replay, ToolType};

/// Converts `items` into what a backend is sent, with the rules of `types`.
pub fn model_view(items: Vec<Item>, types: &[Arc<dyn ToolType>]) -> Vec<Item> {
    let items = crate::client_tools::as_functions(items);
    let owner = |item: &Item| types.iter().find(|kind| kind.owns(item));
    if !items.iter().any(|item| owner(item).is_some()) {
        // The usual history: nothing to convert, and no copy of it to make.
        return items;
    }
    let mut view = Vec::with_capacity(items.len());
    // Outputs of server-side calls wait until the run of calls they belong to
    // ends, so that calls made together reach the backend as one assistant turn.
    let mut outputs: Vec<Item> = Vec::new();
    for item in &items {
        let replay = match owner(item) {
            Some(kind) => kind.replay(item.clone(), &items),
            None => {
                if !matches!(item, Item::FunctionCall(_)) {
                    view.append(&mut outputs);
                }
                view.push(item.clone());
                continue;
            }
        };
        match replay {
            Replay::Call { call, output } => {
                view.push(call);
                outputs.push(output);
            }
            Replay::Hidden => {}
            Replay::Boundary => view.append(&mut outputs),
        }
    }
    view.append(&mut outputs);
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::{McpType, NoMcp};
    use antwort_api::{
        McpApprovalRequestItem, McpApprovalResponseItem, McpCallItem, McpListToolsItem,
        MessageContent, MessageItem, Role,
    };

    fn model_view(items: Vec<Item>) -> Vec<Item> {
        let types: Vec<Arc<dyn ToolType>> = vec![Arc::new(McpType::new(Arc::new(NoMcp)))];
        super::model_view(items, &types)
    }

    fn user(text: &str) -> Item {
        Item::Message(MessageItem {
            id: None,
            status: None,
            role: Role::User,
            content: MessageContent::Text(text.into()),
            phase: None,
        })
    }

    fn mcp_call(id: &str, approval: Option<&str>) -> Item {
        Item::McpCall(McpCallItem {
            id: id.into(),
            server_label: "calc".into(),
            name: "add".into(),
            arguments: "{}".into(),
            output: Some("3".into()),
            error: None,
            status: None,
            approval_request_id: approval.map(str::to_owned),
        })
    }

    fn request(id: &str) -> Item {
        Item::McpApprovalRequest(McpApprovalRequestItem {
            id: id.into(),
            server_label: "calc".into(),
            name: "add".into(),
            arguments: "{}".into(),
        })
    }

    fn answer(id: &str, approve: bool) -> Item {
        Item::McpApprovalResponse(McpApprovalResponseItem {
            id: None,
            approval_request_id: id.into(),
            approve,
            reason: Some("no".into()),
        })
    }

    fn shape(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                Item::FunctionCall(c) => format!("call {} {}", c.name, c.call_id),
                Item::FunctionCallOutput(o) => format!(
                    "output {} {}",
                    o.call_id,
                    match &o.output {
                        MessageContent::Text(t) => t.clone(),
                        MessageContent::Parts(_) => String::new(),
                    }
                ),
                Item::Message(_) => "message".into(),
                _ => "other".into(),
            })
            .collect()
    }

    #[test]
    fn parallel_calls_reach_the_backend_as_one_turn_and_listings_vanish() {
        let items = vec![
            user("hi"),
            Item::McpListTools(McpListToolsItem {
                id: "mcpl_1".into(),
                server_label: "calc".into(),
                tools: Vec::new(),
                error: None,
            }),
            mcp_call("mcp_1", None),
            mcp_call("mcp_2", None),
            user("again"),
        ];
        assert_eq!(
            shape(&model_view(items)),
            [
                "message",
                "call calc__add mcp_1",
                "call calc__add mcp_2",
                "output mcp_1 3",
                "output mcp_2 3",
                "message"
            ]
        );
    }

    #[test]
    fn approvals_show_as_the_call_that_ran_or_as_a_denial() {
        let approved = vec![
            request("mcpr_1"),
            answer("mcpr_1", true),
            mcp_call("mcp_1", Some("mcpr_1")),
        ];
        assert_eq!(
            shape(&model_view(approved)),
            ["call calc__add mcp_1", "output mcp_1 3"]
        );
        let denied = vec![request("mcpr_1"), answer("mcpr_1", false)];
        assert_eq!(
            shape(&model_view(denied)),
            [
                "call calc__add mcpr_1",
                "output mcpr_1 The user denied this tool call; it was not run. Reason: no"
            ]
        );
        let pending = vec![user("hi"), request("mcpr_1")];
        assert_eq!(shape(&model_view(pending)), ["message"]);
    }
}
