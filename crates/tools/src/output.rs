//! What the engine gets from MCP answers: tool descriptions, and a call's
//! result as one capped text (text parts joined by newlines, other parts as
//! compact JSON, structured content when there is no text).

use antwort_engine::mcp::{McpCallResult, McpListedTool};
use rmcp::model::{CallToolResult, ContentBlock, Tool};
use serde_json::Value;

pub(crate) fn tool_info(tool: Tool) -> McpListedTool {
    McpListedTool {
        name: tool.name.into_owned(),
        description: tool.description.map(|d| d.into_owned()),
        input_schema: Value::Object((*tool.input_schema).clone()),
        annotations: tool
            .annotations
            .and_then(|annotations| serde_json::to_value(annotations).ok()),
    }
}

pub(crate) fn call_result(result: CallToolResult, max_bytes: usize) -> McpCallResult {
    let has_text = result
        .content
        .iter()
        .any(|part| matches!(part, ContentBlock::Text(_)));
    let output = match result.structured_content {
        Some(structured) if !has_text => structured.to_string(),
        _ => result
            .content
            .into_iter()
            .map(|part| match part {
                ContentBlock::Text(text) => text.text,
                other => serde_json::to_string(&other).unwrap_or_default(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    McpCallResult {
        output: cap(output, max_bytes),
        is_error: result.is_error.unwrap_or(false),
    }
}

/// Cuts `text` to at most `max_bytes` (at a character boundary) and says how
/// much was left out, so that the model knows the output is incomplete.
pub(crate) fn cap(mut text: String, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let omitted = text.len() - end;
    text.truncate(end);
    text.push_str(&format!(
        "\n[output truncated: {omitted} more bytes omitted]"
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(value: Value) -> CallToolResult {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn text_parts_are_joined_and_others_are_json() {
        let out = call_result(
            result(json!({"content": [
                {"type": "text", "text": "one"},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"},
                {"type": "text", "text": "two"}
            ]})),
            1000,
        );
        assert!(!out.is_error);
        let lines: Vec<_> = out.output.lines().collect();
        assert_eq!(lines[0], "one");
        assert_eq!(
            serde_json::from_str::<Value>(lines[1]).unwrap(),
            json!({"type": "image", "data": "AAAA", "mimeType": "image/png"})
        );
        assert_eq!(lines[2], "two");
    }

    #[test]
    fn structured_content_stands_in_for_missing_text() {
        let out = call_result(
            result(json!({"content": [], "structuredContent": {"sum": 3}, "isError": true})),
            1000,
        );
        assert_eq!(out.output, r#"{"sum":3}"#);
        assert!(out.is_error);
        let out = call_result(
            result(
                json!({"content": [{"type": "text", "text": "3"}], "structuredContent": {"sum": 3}}),
            ),
            1000,
        );
        assert_eq!(out.output, "3");
    }

    #[test]
    fn capping_respects_char_boundaries() {
        assert_eq!(cap("short".into(), 10), "short");
        let capped = cap("ééé".into(), 3);
        assert!(capped.starts_with("é\n"), "{capped}");
        assert!(capped.contains("4 more bytes omitted"), "{capped}");
        let capped = cap("x".repeat(20), 10);
        assert!(capped.starts_with(&"x".repeat(10)));
        assert!(capped.contains("10 more bytes omitted"));
    }
}
