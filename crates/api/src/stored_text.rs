//! Checks on the strings a store keeps in columns of their own (ids, model
//! names, metadata, list filters), made at the edge so that no store ever sees a
//! value it cannot hold: PostgreSQL text cannot contain NUL, and its JSON
//! functions reject the `\u0000` escape, so one such value stored in metadata
//! would break every metadata filter of the tenant afterwards. Free text (message
//! content, tool output) is kept inside JSON documents, where a NUL is an escape
//! like any other, and is left alone.
//!
//! Item ids are also checked for duplicates: a store addresses items by id, and two
//! items with one id make its pages and lookups ambiguous.

use std::collections::HashSet;

use crate::error::{ApiError, ErrorCode};
use crate::items::{Input, Item};

/// A 400 naming `param` when `value` holds a NUL character.
pub fn check_text(param: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::invalid(
            param,
            format!("Invalid value for '{param}': it contains a NUL character (\\u0000)"),
        ));
    }
    Ok(())
}

/// [`check_item_ids`] for a request's `input`, when it is a list of items.
pub fn check_input_ids(param: &str, input: Option<&Input>) -> Result<(), ApiError> {
    match input {
        Some(Input::Items(items)) => check_item_ids(param, items),
        _ => Ok(()),
    }
}

/// [`check_text`] for an optional value.
pub fn check_optional_text(param: &str, value: Option<&str>) -> Result<(), ApiError> {
    value.map_or(Ok(()), |value| check_text(param, value))
}

/// The ids of the items a client sent: none holds a NUL, and no two of the
/// items (references aside, which name items stored elsewhere) share one.
pub fn check_item_ids(param: &str, items: &[Item]) -> Result<(), ApiError> {
    let mut seen = HashSet::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Some(id) = item.id() else { continue };
        check_text(&format!("{param}[{index}].id"), id)?;
        if !matches!(item, Item::ItemReference(_)) && !seen.insert(id) {
            return Err(duplicate_item(&format!("{param}[{index}].id"), id));
        }
    }
    Ok(())
}

/// The error for an item whose id the conversation or the input already holds,
/// in the OpenAI API's words.
pub fn duplicate_item(param: &str, id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidValue,
        format!("Duplicate item found with id {id}. Remove duplicate items from your input and try again."),
    )
    .with_param(param)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(json: &str) -> Input {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_nul_is_named_with_its_parameter() {
        let error = check_text("model", "a\0b").unwrap_err();
        assert_eq!(error.status(), 400);
        assert_eq!(error.param.as_deref(), Some("model"));
        assert!(
            check_text("model", "a\\u0000b").is_ok(),
            "an escaped backslash is text"
        );
    }

    #[test]
    fn duplicate_and_nul_ids_are_refused_but_references_may_repeat() {
        let dup = items(
            r#"[{"type":"message","id":"msg_1","role":"user","content":"a"},
                {"type":"message","id":"msg_1","role":"user","content":"b"}]"#,
        );
        let error = check_input_ids("input", Some(&dup)).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("input[1].id"));
        assert!(
            error
                .message
                .starts_with("Duplicate item found with id msg_1")
        );

        let nul = items(r#"[{"type":"item_reference","id":"msg_\u0000"}]"#);
        let error = check_input_ids("input", Some(&nul)).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("input[0].id"));

        let references = items(
            r#"[{"type":"item_reference","id":"msg_1"},{"type":"item_reference","id":"msg_1"}]"#,
        );
        assert!(check_input_ids("input", Some(&references)).is_ok());
    }
}
