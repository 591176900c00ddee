//! The call items of tools the client runs that are not plain functions, as
//! Codex CLI and the OpenAI API send and expect them: custom (freeform) tool
//! calls, `local_shell` and `shell` calls, `apply_patch` calls, and their
//! outputs. Their actions are kept as the JSON they are (a client reads them;
//! the gateway only builds them from the model's arguments and replays them).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::content::MessageContent;
use crate::items::ItemStatus;

/// `custom_tool_call`: a freeform tool's call, its input a raw string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomToolCallItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub call_id: String,
    pub name: String,
    pub input: String,
    /// The namespace the tool was declared in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `custom_tool_call_output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomToolCallOutputItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub call_id: String,
    pub output: MessageContent,
}

/// `local_shell_call`: `action` is `{"type": "exec", "command": [...], "env":
/// {...}, "timeout_ms", "working_directory", "user"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalShellCallItem {
    pub id: String,
    pub call_id: String,
    pub action: Value,
    pub status: ItemStatus,
}

/// `local_shell_call_output`: `id` names the call (its item id; some clients
/// send its `call_id` instead, or beside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalShellCallOutputItem {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    pub output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
}

/// `shell_call`: `action` is `{"commands": [...], "timeout_ms", "max_output_length"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShellCallItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub call_id: String,
    pub action: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
}

/// `shell_call_output`: `output` is a list of `{"stdout", "stderr", "outcome"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShellCallOutputItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub call_id: String,
    pub output: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_length: Option<u64>,
}

/// `apply_patch_call`: `operation` is `{"type": "create_file" | "update_file" |
/// "delete_file", "path", "diff"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyPatchCallItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub call_id: String,
    pub operation: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
}

/// `apply_patch_call_output`: `status` is `completed` or `failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyPatchCallOutputItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub call_id: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// What a shell call's output said, as one text for a model: each chunk's
/// stdout and stderr, and how the command ended.
pub fn shell_output_text(output: &Value) -> String {
    let Some(chunks) = output.as_array() else {
        return output
            .as_str()
            .map_or_else(|| output.to_string(), str::to_owned);
    };
    let mut text = String::new();
    for chunk in chunks {
        for stream in ["stdout", "stderr"] {
            if let Some(part) = chunk[stream].as_str().filter(|part| !part.is_empty()) {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(part);
            }
        }
        match chunk["outcome"]["type"].as_str() {
            Some("exit") => {
                let code = &chunk["outcome"]["exit_code"];
                text.push_str(&format!("\n(exit code {code})"));
            }
            Some("timeout") => text.push_str("\n(timed out)"),
            _ => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Item;
    use serde_json::json;

    #[test]
    fn codex_call_items_round_trip() {
        for item in [
            json!({"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"}),
            json!({"type": "custom_tool_call_output", "call_id": "c1", "output": "done"}),
            json!({"type": "local_shell_call", "id": "lsh_1", "call_id": "c2", "status": "completed",
                   "action": {"type": "exec", "command": ["ls"], "env": {}}}),
            json!({"type": "local_shell_call_output", "id": "lsh_1", "output": "a.txt"}),
            json!({"type": "shell_call", "call_id": "c3", "action": {"commands": ["ls"]}}),
            json!({"type": "shell_call_output", "call_id": "c3",
                   "output": [{"stdout": "a", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]}),
            json!({"type": "apply_patch_call", "call_id": "c4", "status": "completed",
                   "operation": {"type": "delete_file", "path": "a.txt"}}),
            json!({"type": "apply_patch_call_output", "call_id": "c4", "status": "completed"}),
        ] {
            let parsed: Item = serde_json::from_value(item.clone()).unwrap();
            assert_eq!(serde_json::to_value(&parsed).unwrap(), item);
        }
    }

    #[test]
    fn shell_output_reads_as_text() {
        let output = json!([{"stdout": "hi", "stderr": "warn", "outcome": {"type": "exit", "exit_code": 1}}]);
        assert_eq!(shell_output_text(&output), "hi\nwarn\n(exit code 1)");
    }
}
