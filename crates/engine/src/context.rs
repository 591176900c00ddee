//! The context a turn continues from: the stored chain behind
//! `previous_response_id`, stored items named by `item_reference`, MCP tool lists
//! already known, and approval requests the new input answers.

use antwort_api::{ApiError, ErrorCode, Item};

use crate::agent::ApprovedCall;
use crate::catalog::DeclaredServer;
use crate::error::store_error;
use crate::store::{ConversationStore, ResponseStore, Scope};

/// Every item of the chain that ends with `previous`, oldest first.
pub async fn load_chain(
    store: &dyn ResponseStore,
    scope: &Scope,
    previous: &str,
) -> Result<Vec<Item>, ApiError> {
    store
        .load_chain(scope, previous)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::PreviousResponseNotFound,
                format!("Previous response with id '{previous}' not found."),
            )
            .with_param("previous_response_id")
        })
}

/// Every item of a conversation, oldest first.
pub async fn load_conversation(
    store: &dyn ConversationStore,
    scope: &Scope,
    conversation: &str,
) -> Result<Vec<Item>, ApiError> {
    store
        .load_conversation(scope, conversation)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("Conversation with id '{conversation}' not found."),
            )
            .with_param("conversation")
        })
}

/// Replaces each `item_reference` with the stored item it names (one query for
/// all of them); a reference to nothing is a 400 naming its position.
pub async fn resolve_references(
    store: &dyn ResponseStore,
    scope: &Scope,
    input: &mut [Item],
) -> Result<(), ApiError> {
    let wanted: Vec<String> = input
        .iter()
        .filter_map(|item| match item {
            Item::ItemReference(reference) => Some(reference.id.clone()),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let found = store.get_items(scope, &wanted).await.map_err(store_error)?;
    for (index, item) in input.iter_mut().enumerate() {
        let Item::ItemReference(reference) = item else {
            continue;
        };
        let Some(stored) = found
            .iter()
            .find(|stored| stored.id() == Some(reference.id.as_str()))
        else {
            return Err(ApiError::invalid(
                format!("input[{index}]"),
                format!("item_reference '{}' names no stored item", reference.id),
            ));
        };
        *item = stored.clone();
    }
    Ok(())
}

/// Every function_call_output must answer a function_call that comes before it,
/// in the replayed chain or the new input: a backend would reject a tool message
/// without its call, less clearly. `replayed` items come from the chain; the rest
/// are the request's own, whose positions the error names.
pub fn check_call_outputs(input: &[Item], replayed: usize) -> Result<(), ApiError> {
    let mut calls: Vec<&str> = Vec::new();
    for (index, item) in input.iter().enumerate() {
        match item {
            Item::FunctionCall(call) => calls.push(&call.call_id),
            Item::FunctionCallOutput(output) if !calls.contains(&output.call_id.as_str()) => {
                let param = format!("input[{}]", index.saturating_sub(replayed));
                return Err(ApiError::invalid(
                    param,
                    format!(
                        "No function call found for function_call_output with call_id '{}'",
                        output.call_id
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Fills in the tools of each declared MCP server from the newest successful
/// `mcp_list_tools` item of the context: a server is listed once per
/// conversation, and its list is reused from the stored context afterwards.
pub fn known_tool_lists(input: &[Item], servers: &mut [DeclaredServer]) {
    for declared in servers.iter_mut().filter(|s| s.tools.is_none()) {
        declared.tools = input.iter().rev().find_map(|item| match item {
            Item::McpListTools(list)
                if list.server_label == declared.server.label && list.error.is_none() =>
            {
                Some(list.tools.clone())
            }
            _ => None,
        });
    }
}

/// The calls that the new input's `mcp_approval_response` items approve. Each
/// answer must name an approval request of the context that has not been
/// answered yet, from a server this request declares; anything else is a 400
/// naming the answer's position. An answer whose call already ran (history sent
/// back as input) approves nothing new.
pub fn approved_calls(
    input: &[Item],
    replayed: usize,
    servers: &[DeclaredServer],
) -> Result<Vec<ApprovedCall>, ApiError> {
    let mut approved = Vec::new();
    for (index, item) in input.iter().enumerate().skip(replayed) {
        let Item::McpApprovalResponse(answer) = item else {
            continue;
        };
        let param = || format!("input[{}]", index - replayed);
        let id = answer.approval_request_id.as_str();
        let Some(request) = input[..index].iter().find_map(|item| match item {
            Item::McpApprovalRequest(request) if request.id == id => Some(request),
            _ => None,
        }) else {
            return Err(ApiError::invalid(
                param(),
                format!(
                    "mcp_approval_response answers approval request '{id}', which is not in this conversation"
                ),
            ));
        };
        // History sent back whole (the way to continue without storage) carries
        // the answer and, after it, the call it ran: nothing is left to do.
        let ran = |items: &[Item]| {
            items.iter().any(|item| {
                matches!(item, Item::McpCall(call) if call.approval_request_id.as_deref() == Some(id))
            })
        };
        if ran(&input[index + 1..]) {
            continue;
        }
        let answered = ran(&input[..index])
            || input[..index].iter().any(|item| {
                matches!(item, Item::McpApprovalResponse(earlier) if earlier.approval_request_id == id)
            });
        if answered {
            return Err(ApiError::invalid(
                param(),
                format!("approval request '{id}' has already been answered"),
            ));
        }
        if !answer.approve {
            continue;
        }
        if !servers
            .iter()
            .any(|s| s.server.label == request.server_label)
        {
            return Err(ApiError::invalid(
                param(),
                format!(
                    "approval request '{id}' is for MCP server '{}', which is not in this request's tools; declare it again to run the call",
                    request.server_label
                ),
            ));
        }
        approved.push(ApprovedCall {
            approval_request_id: id.to_owned(),
            server_label: request.server_label.clone(),
            tool: request.name.clone(),
            arguments: request.arguments.clone(),
        });
    }
    Ok(approved)
}
