//! The context a turn continues from: the stored chain behind
//! `previous_response_id`, a conversation's items, stored items named by
//! `item_reference`, and the check that every function output answers a call.
//! (What a server-side tool type learns from the context, such as MCP tool
//! lists and approvals, is its own: `ServerTool::read_context`.)

use antwort_api::{ApiError, ErrorCode, Item};

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
    // A local shell output may name its call by the call's item id instead.
    let mut shell_items: Vec<&str> = Vec::new();
    for (index, item) in input.iter().enumerate() {
        let (kind, answers): (&str, Vec<&str>) = match item {
            Item::FunctionCall(call) => {
                calls.push(&call.call_id);
                continue;
            }
            Item::CustomToolCall(call) => {
                calls.push(&call.call_id);
                continue;
            }
            Item::ShellCall(call) => {
                calls.push(&call.call_id);
                continue;
            }
            Item::ApplyPatchCall(call) => {
                calls.push(&call.call_id);
                continue;
            }
            // Its output names it by item id or by call id.
            Item::LocalShellCall(call) => {
                calls.push(&call.call_id);
                shell_items.push(&call.id);
                continue;
            }
            Item::FunctionCallOutput(output) => ("function", vec![&output.call_id]),
            Item::CustomToolCallOutput(output) => ("custom tool", vec![&output.call_id]),
            Item::ShellCallOutput(output) => ("shell", vec![&output.call_id]),
            Item::ApplyPatchCallOutput(output) => ("apply_patch", vec![&output.call_id]),
            Item::LocalShellCallOutput(output) if shell_items.contains(&output.id.as_str()) => {
                continue;
            }
            Item::LocalShellCallOutput(output) => (
                "local_shell",
                output
                    .call_id
                    .iter()
                    .map(String::as_str)
                    .chain([output.id.as_str()])
                    .collect(),
            ),
            _ => continue,
        };
        if !answers.iter().any(|id| calls.contains(id)) {
            let param = format!("input[{}]", index.saturating_sub(replayed));
            return Err(ApiError::invalid(
                param,
                format!(
                    "No {kind} call found for the output with call_id '{}'",
                    answers.first().copied().unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}
