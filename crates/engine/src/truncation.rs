//! Fitting a turn into the model's context window.
//!
//! `truncation: "auto"` drops the oldest turns (a user message and everything up to
//! the next one) until the input fits, keeping system and developer messages and
//! the newest item, and never leaving a function call without its output or an
//! output without its call (backends reject both).
//! `"disabled"` (the default) refuses a turn that does not fit, with
//! `context_length_exceeded`, instead of letting the backend fail obscurely.
//! Items are counted by a [`Counter`]; which one, and whether the backend's
//! tokenizer endpoint has the last word, is `counting`'s choice.

use antwort_api::{ApiError, ErrorCode, FunctionTool, Item, Role, Truncation};

use crate::tokens::Counter;

/// Whether the byte bound alone shows that the turn fits in `limit` tokens:
/// then nothing needs tokenizing, which spares the common request from
/// tokenizing its whole history.
pub fn bound_fits(
    items: &[Item],
    instructions: Option<&str>,
    tools: &[FunctionTool],
    limit: u64,
) -> bool {
    Counter::Bound.turn(items, instructions, tools) <= limit
}

fn is_user(item: &Item) -> bool {
    matches!(item, Item::Message(m) if m.role == Role::User)
}

fn is_instruction(item: &Item) -> bool {
    matches!(item, Item::Message(m) if matches!(m.role, Role::System | Role::Developer))
}

/// Applies the truncation mode; `fixed` tokens (instructions, tools) are always sent
/// and `limit` is the window less the tokens reserved for the answer.
pub fn fit(
    items: &mut Vec<Item>,
    fixed: u64,
    limit: u64,
    mode: Truncation,
    counter: Counter<'_>,
) -> Result<(), ApiError> {
    let mut total = fixed + items.iter().map(|item| counter.item(item)).sum::<u64>();
    if total <= limit {
        return Ok(());
    }
    if mode == Truncation::Auto {
        total = drop_oldest(items, total, limit, counter);
        if total <= limit {
            return Ok(());
        }
    }
    Err(exceeded(total, limit, mode))
}

/// Drops the oldest turns until the items' `total` (as `counter` counts)
/// is within `limit` or only the newest turn's last item is left besides
/// instructions; returns the total then.
pub(crate) fn drop_oldest(
    items: &mut Vec<Item>,
    mut total: u64,
    limit: u64,
    counter: Counter<'_>,
) -> u64 {
    while total > limit {
        let Some(start) = items.iter().position(|item| !is_instruction(item)) else {
            break;
        };
        if start + 1 >= items.len() {
            break;
        }
        // A turn runs to the next user message: the question, its answer, and
        // any calls and outputs between them go together.
        let end = items[start + 1..]
            .iter()
            .position(is_user)
            .map_or(items.len(), |offset| start + 1 + offset);
        // The newest turn is never dropped whole; at most its oldest items go.
        let end = if end >= items.len() { start + 1 } else { end };
        let dropped: u64 = items
            .drain(start..end)
            .map(|item| counter.item(&item))
            .sum();
        total = total.saturating_sub(dropped + drop_orphans(items, counter));
    }
    total
}

/// The refusal of a turn that takes `total` tokens where `limit` are left.
pub(crate) fn exceeded(total: u64, limit: u64, mode: Truncation) -> ApiError {
    ApiError::new(
        ErrorCode::ContextLengthExceeded,
        format!(
            "The input takes about {total} tokens, more than the {limit} this model's context window leaves for it{}",
            if mode == Truncation::Disabled {
                "; set truncation to \"auto\" to drop the oldest turns"
            } else {
                " even after dropping every older turn"
            }
        ),
    )
    .with_param("input")
}

/// Removes function_call_outputs whose call was dropped; returns the tokens removed.
/// Items go from the front, so a call never loses its output first: only outputs
/// can be orphaned.
fn drop_orphans(items: &mut Vec<Item>, counter: Counter<'_>) -> u64 {
    let calls: Vec<String> = items
        .iter()
        .filter_map(|item| match item {
            Item::FunctionCall(call) => Some(call.call_id.clone()),
            _ => None,
        })
        .collect();
    let mut removed = 0;
    items.retain(|item| {
        let orphan =
            matches!(item, Item::FunctionCallOutput(output) if !calls.contains(&output.call_id));
        if orphan {
            removed += counter.item(item);
        }
        !orphan
    });
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use antwort_api::{FunctionCallItem, FunctionCallOutputItem, MessageContent, MessageItem};

    fn message(role: Role, text: &str) -> Item {
        Item::Message(MessageItem {
            id: None,
            status: None,
            role,
            content: MessageContent::Text(text.into()),
            phase: None,
        })
    }

    fn call(id: &str) -> Item {
        Item::FunctionCall(FunctionCallItem {
            id: None,
            call_id: id.into(),
            name: "f".into(),
            arguments: "{}".into(),
            status: None,
            namespace: None,
        })
    }

    fn output(id: &str) -> Item {
        Item::FunctionCallOutput(FunctionCallOutputItem {
            id: None,
            call_id: id.into(),
            output: MessageContent::Text("result ".repeat(50)),
            status: None,
        })
    }

    fn o200k() -> Counter<'static> {
        Counter::tokens(None)
    }

    fn long(role: Role) -> Item {
        message(role, &"word ".repeat(100))
    }

    #[test]
    fn a_turn_that_fits_is_untouched() {
        let mut items = vec![message(Role::User, "hi")];
        fit(&mut items, 0, 1000, Truncation::Disabled, o200k()).unwrap();
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn disabled_refuses_with_context_length_exceeded() {
        let mut items = vec![long(Role::User), long(Role::User)];
        let error = fit(&mut items, 0, 150, Truncation::Disabled, o200k()).unwrap_err();
        assert_eq!(error.code, ErrorCode::ContextLengthExceeded);
        assert_eq!(items.len(), 2);
    }

    #[test]
    fn auto_drops_the_oldest_turns_but_keeps_instructions_and_the_newest() {
        let mut items = vec![
            message(Role::System, "rules"),
            long(Role::User),
            long(Role::Assistant),
            message(Role::User, "newest"),
        ];
        fit(&mut items, 0, 120, Truncation::Auto, o200k()).unwrap();
        assert_eq!(
            items,
            vec![
                message(Role::System, "rules"),
                message(Role::User, "newest")
            ]
        );
    }

    #[test]
    fn auto_never_splits_a_call_from_its_output() {
        let mut items = vec![
            long(Role::User),
            call("c1"),
            output("c1"),
            message(Role::User, "newest"),
        ];
        fit(&mut items, 0, 60, Truncation::Auto, o200k()).unwrap();
        assert_eq!(items, vec![message(Role::User, "newest")]);
    }

    #[test]
    fn auto_fails_when_even_the_newest_item_does_not_fit() {
        let mut items = vec![long(Role::User)];
        let error = fit(&mut items, 0, 10, Truncation::Auto, o200k()).unwrap_err();
        assert_eq!(error.code, ErrorCode::ContextLengthExceeded);
    }
}
