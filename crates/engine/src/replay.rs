//! The model's view of stored items: what a backend is sent for the items of a
//! conversation so far.
//!
//! Backends know messages, function calls and their outputs. Server-side tool
//! items become exactly that: an `mcp_call` is a call of the model-facing tool name
//! and its output (or error), a denied approval request is a call whose output says
//! it was denied, and listings, pending requests and approval answers are not
//! shown at all (the tool definitions travel in `tools`). Doing this once, here,
//! means a chain through tool calls replays the same way whether it is read from
//! the store, sent back by the client as input, or produced a turn ago.

use std::collections::HashMap;

use antwort_api::{
    FunctionCallItem, FunctionCallOutputItem, Item, ItemStatus, McpApprovalRequestItem,
    McpCallItem, MessageContent,
};

/// The name a server-side MCP tool is offered to the model under. Qualified by
/// the server label, so that it never depends on which other tools are declared:
/// a chain replays with the same names whatever the next request declares.
pub fn mcp_tool_name(server_label: &str, tool: &str) -> String {
    format!("{server_label}__{tool}")
}

/// Converts `items` into what a backend is sent.
pub fn model_view(items: Vec<Item>) -> Vec<Item> {
    let has_mcp = items.iter().any(|item| {
        matches!(
            item,
            Item::McpListTools(_)
                | Item::McpCall(_)
                | Item::McpApprovalRequest(_)
                | Item::McpApprovalResponse(_)
        )
    });
    if !has_mcp {
        // The usual history: nothing to convert, and no copy of it to make.
        return items;
    }
    // Approval answers by request id; an mcp_call that ran after an approval
    // carries that request's id.
    let mut answers: HashMap<String, (bool, Option<String>)> = HashMap::new();
    let mut ran: Vec<String> = Vec::new();
    for item in &items {
        match item {
            Item::McpApprovalResponse(answer) => {
                answers.insert(
                    answer.approval_request_id.clone(),
                    (answer.approve, answer.reason.clone()),
                );
            }
            Item::McpCall(McpCallItem {
                approval_request_id: Some(id),
                ..
            }) => ran.push(id.clone()),
            _ => {}
        }
    }
    let mut view = Vec::with_capacity(items.len());
    // Outputs of server-side calls wait until the run of calls they belong to
    // ends, so that calls made together reach the backend as one assistant turn.
    let mut outputs: Vec<Item> = Vec::new();
    for item in items {
        let is_call = matches!(
            item,
            Item::FunctionCall(_) | Item::McpCall(_) | Item::McpApprovalRequest(_)
        );
        if !is_call && !outputs.is_empty() && !matches!(item, Item::McpListTools(_)) {
            view.append(&mut outputs);
        }
        match item {
            Item::McpCall(call) => {
                let (call, output) = mcp_call_turn(call);
                view.push(call);
                outputs.push(output);
            }
            Item::McpApprovalRequest(request) => {
                if ran.contains(&request.id) {
                    continue;
                }
                // Only a denial is something the model must hear about; a pending
                // or approved request is answered by the call that follows it.
                if let Some((false, reason)) = answers.get(&request.id) {
                    let (call, output) = denied_turn(&request, reason.as_deref());
                    view.push(call);
                    outputs.push(output);
                }
            }
            Item::McpListTools(_) | Item::McpApprovalResponse(_) => {}
            other => view.push(other),
        }
    }
    view.append(&mut outputs);
    view
}

fn call_pair(call_id: String, name: String, arguments: String, output: String) -> (Item, Item) {
    let call = Item::FunctionCall(FunctionCallItem {
        id: None,
        call_id: call_id.clone(),
        name,
        arguments,
        status: Some(ItemStatus::Completed),
    });
    let output = Item::FunctionCallOutput(FunctionCallOutputItem {
        id: None,
        call_id,
        output: MessageContent::Text(output),
        status: Some(ItemStatus::Completed),
    });
    (call, output)
}

fn mcp_call_turn(call: McpCallItem) -> (Item, Item) {
    let output = match (call.output, &call.error) {
        (_, Some(error)) => format!("Error: {}", error.message()),
        (Some(output), None) => output,
        (None, None) => "The tool was not run.".to_owned(),
    };
    call_pair(
        call.id,
        mcp_tool_name(&call.server_label, &call.name),
        call.arguments,
        output,
    )
}

fn denied_turn(request: &McpApprovalRequestItem, reason: Option<&str>) -> (Item, Item) {
    let mut output = "The user denied this tool call; it was not run.".to_owned();
    if let Some(reason) = reason.filter(|r| !r.is_empty()) {
        output.push_str(" Reason: ");
        output.push_str(reason);
    }
    call_pair(
        request.id.clone(),
        mcp_tool_name(&request.server_label, &request.name),
        request.arguments.clone(),
        output,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use antwort_api::{McpApprovalResponseItem, McpListToolsItem, MessageItem, Role};

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
