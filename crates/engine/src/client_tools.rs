//! Tools the client runs that are not plain functions: custom (freeform)
//! tools, `local_shell`, `shell`, `apply_patch`, and functions grouped in a
//! `namespace` (what Codex CLI declares). A chat model knows only functions, so
//! each is offered as one ([`declare`]); the model's call comes back to the
//! client as the item the client declared ([`call_item`]); and those items,
//! sent back with their outputs, reach the model as function calls and
//! outputs again ([`as_functions`]).

use std::collections::HashMap;
use std::sync::Arc;

use antwort_api::{
    ApiError, ApplyPatchCallItem, CustomToolCallItem, EventData, FunctionCallItem,
    FunctionCallOutputItem, FunctionTool, FunctionType, HostedTool, Item, ItemStatus,
    LocalShellCallItem, MessageContent, ShellCallItem, Tool, shell_output_text,
};
use serde_json::{Value, json};

/// The tool types this module offers the model as functions.
pub const CLIENT_TOOL_TYPES: &[&str] =
    &["custom", "local_shell", "shell", "apply_patch", "namespace"];

/// Between a namespace and a function's name in the name the model calls.
const NAMESPACE_SEPARATOR: &str = "__";

/// What a call of an offered name is, when it is not a plain function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientToolKind {
    Custom {
        name: String,
        namespace: Option<String>,
    },
    LocalShell,
    Shell,
    ApplyPatch,
    /// A function of a namespace: a function_call with its own name and the namespace.
    Namespaced {
        namespace: String,
        name: String,
    },
}

/// The client tools of one response, by the name the model calls.
#[derive(Debug, Clone, Default)]
pub struct ClientTools(Arc<HashMap<String, ClientToolKind>>);

impl ClientTools {
    pub fn get(&self, name: &str) -> Option<&ClientToolKind> {
        self.0.get(name)
    }
}

/// The functions the model is offered for the client tools in `tools`, and
/// what each name stands for.
pub fn declare(tools: &[Tool]) -> Result<(Vec<FunctionTool>, ClientTools), ApiError> {
    let mut offered: Vec<FunctionTool> = Vec::new();
    let mut kinds = HashMap::new();
    // Names the model already calls: the plain functions'.
    let mut taken: std::collections::HashSet<String> = tools
        .iter()
        .filter_map(|tool| match tool {
            Tool::Function(function) => Some(function.name.clone()),
            _ => None,
        })
        .collect();
    for (index, tool) in tools.iter().enumerate() {
        let Tool::Hosted(hosted) = tool else {
            continue;
        };
        let param = |field: &str| format!("tools[{index}].{field}");
        let before = offered.len();
        match hosted.kind.as_str() {
            "custom" => {
                let (function, kind) = custom(hosted, None, &param)?;
                kinds.insert(function.name.clone(), kind);
                offered.push(function);
            }
            "local_shell" => {
                offered.push(local_shell());
                kinds.insert("local_shell".to_owned(), ClientToolKind::LocalShell);
            }
            "shell" => {
                offered.push(shell());
                kinds.insert("shell".to_owned(), ClientToolKind::Shell);
            }
            "apply_patch" => {
                offered.push(apply_patch());
                kinds.insert("apply_patch".to_owned(), ClientToolKind::ApplyPatch);
            }
            "namespace" => namespace(hosted, &param, &mut offered, &mut kinds)?,
            _ => {}
        }
        // One name, one tool: a call must come back as the item of the tool
        // the client meant.
        for function in &offered[before..] {
            if !taken.insert(function.name.clone()) {
                return Err(ApiError::invalid(
                    format!("tools[{index}]"),
                    format!(
                        "two tools are offered to the model as '{}'; give them different names",
                        function.name
                    ),
                ));
            }
        }
    }
    Ok((offered, ClientTools(Arc::new(kinds))))
}

fn text(config: &serde_json::Map<String, Value>, field: &str) -> Option<String> {
    config.get(field).and_then(Value::as_str).map(str::to_owned)
}

fn required_name(
    config: &serde_json::Map<String, Value>,
    param: &dyn Fn(&str) -> String,
) -> Result<String, ApiError> {
    match text(config, "name") {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(ApiError::invalid(param("name"), "this tool needs a `name`")),
    }
}

/// A custom tool: one string argument, `input`, described by its format.
fn custom(
    hosted: &HostedTool,
    namespace: Option<&str>,
    param: &dyn Fn(&str) -> String,
) -> Result<(FunctionTool, ClientToolKind), ApiError> {
    let config = &hosted.config;
    let name = required_name(config, param)?;
    let mut description = text(config, "description").unwrap_or_default();
    let format = config
        .get("format")
        .cloned()
        .unwrap_or(json!({"type": "text"}));
    let how = match format["type"].as_str() {
        Some("grammar") => format!(
            "The input is raw text (not JSON) that follows this {} grammar:\n{}",
            format["syntax"].as_str().unwrap_or("lark"),
            format["definition"].as_str().unwrap_or_default()
        ),
        _ => "The input is free-form raw text (not JSON).".to_owned(),
    };
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str(&how);
    let offered_name = match namespace {
        Some(namespace) => format!("{namespace}{NAMESPACE_SEPARATOR}{name}"),
        None => name.clone(),
    };
    let function = function(
        &offered_name,
        &description,
        json!({
            "type": "object",
            "properties": {"input": {"type": "string", "description": "The tool's raw input."}},
            "required": ["input"],
            "additionalProperties": false,
        }),
    );
    Ok((
        function,
        ClientToolKind::Custom {
            name,
            namespace: namespace.map(str::to_owned),
        },
    ))
}

fn function(name: &str, description: &str, parameters: Value) -> FunctionTool {
    FunctionTool {
        kind: FunctionType::Function,
        name: name.to_owned(),
        description: Some(description.to_owned()),
        parameters: Some(parameters),
        strict: None,
    }
}

fn local_shell() -> FunctionTool {
    function(
        "local_shell",
        "Runs a command on the user's machine and returns its output.",
        json!({
            "type": "object",
            "properties": {
                "command": {"type": "array", "items": {"type": "string"}, "description": "The program and its arguments."},
                "workdir": {"type": "string", "description": "The directory to run it in."},
                "timeout_ms": {"type": "integer", "description": "How long it may run."}
            },
            "required": ["command"],
        }),
    )
}

fn shell() -> FunctionTool {
    function(
        "shell",
        "Runs shell commands on the user's machine, one after another, and returns their output.",
        json!({
            "type": "object",
            "properties": {
                "commands": {"type": "array", "items": {"type": "string"}},
                "timeout_ms": {"type": "integer"},
                "max_output_length": {"type": "integer"}
            },
            "required": ["commands"],
        }),
    )
}

fn apply_patch() -> FunctionTool {
    function(
        "apply_patch",
        "Creates, updates or deletes one file. For create_file and update_file, `diff` is the patch in V4A diff format.",
        json!({
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["create_file", "update_file", "delete_file"]},
                "path": {"type": "string"},
                "diff": {"type": "string"}
            },
            "required": ["type", "path"],
        }),
    )
}

/// A namespace's functions and custom tools, each under its qualified name.
fn namespace(
    hosted: &HostedTool,
    param: &dyn Fn(&str) -> String,
    offered: &mut Vec<FunctionTool>,
    kinds: &mut HashMap<String, ClientToolKind>,
) -> Result<(), ApiError> {
    let namespace = required_name(&hosted.config, param)?;
    let Some(Value::Array(tools)) = hosted.config.get("tools") else {
        return Err(ApiError::invalid(
            param("tools"),
            "a namespace needs its `tools`",
        ));
    };
    for (index, tool) in tools.iter().enumerate() {
        let inner = |field: &str| param(&format!("tools[{index}].{field}"));
        match tool["type"].as_str() {
            Some("function") => {
                let mut function: FunctionTool = serde_json::from_value(tool.clone())
                    .map_err(|e| ApiError::invalid(inner("type"), e.to_string()))?;
                let name = std::mem::take(&mut function.name);
                function.name = format!("{namespace}{NAMESPACE_SEPARATOR}{name}");
                kinds.insert(
                    function.name.clone(),
                    ClientToolKind::Namespaced {
                        namespace: namespace.clone(),
                        name,
                    },
                );
                offered.push(function);
            }
            Some("custom") => {
                let Value::Object(config) = tool.clone() else {
                    continue;
                };
                let hosted = HostedTool {
                    kind: "custom".to_owned(),
                    config,
                };
                let (function, kind) = custom(&hosted, Some(&namespace), &inner)?;
                kinds.insert(function.name.clone(), kind);
                offered.push(function);
            }
            _ => {
                return Err(ApiError::invalid(
                    inner("type"),
                    "a namespace holds function and custom tools",
                ));
            }
        }
    }
    Ok(())
}

/// The item of a call the model made of a client tool, with the events that
/// say its input is done.
pub fn call_item(
    kind: &ClientToolKind,
    id: String,
    call_id: String,
    arguments: &str,
    status: ItemStatus,
    output_index: usize,
) -> (Item, Vec<EventData>) {
    let parsed: Value = serde_json::from_str(arguments).unwrap_or(Value::Null);
    match kind {
        ClientToolKind::Custom { name, namespace } => {
            // A model that wrote the raw input instead of `{"input": ...}` meant it.
            let input = parsed["input"]
                .as_str()
                .map_or_else(|| arguments.to_owned(), str::to_owned);
            let events = vec![
                EventData::CustomToolCallInputDelta {
                    item_id: id.clone(),
                    output_index,
                    delta: input.clone(),
                },
                EventData::CustomToolCallInputDone {
                    item_id: id.clone(),
                    output_index,
                    input: input.clone(),
                },
            ];
            let item = Item::CustomToolCall(CustomToolCallItem {
                id: Some(id),
                call_id,
                name: name.clone(),
                input,
                namespace: namespace.clone(),
            });
            (item, events)
        }
        ClientToolKind::LocalShell => {
            let command = match &parsed["command"] {
                Value::Array(parts) => Value::Array(parts.clone()),
                Value::String(line) => json!(["bash", "-lc", line]),
                _ => json!([]),
            };
            let mut action = json!({"type": "exec", "command": command, "env": {}});
            if let Some(timeout) = parsed["timeout_ms"].as_u64() {
                action["timeout_ms"] = json!(timeout);
            }
            if let Some(workdir) = parsed["workdir"].as_str() {
                action["working_directory"] = json!(workdir);
            }
            let item = Item::LocalShellCall(LocalShellCallItem {
                id,
                call_id,
                action,
                status,
            });
            (item, Vec::new())
        }
        ClientToolKind::Shell => {
            let commands = match &parsed["commands"] {
                Value::Array(commands) => Value::Array(commands.clone()),
                Value::String(command) => json!([command]),
                _ => json!([]),
            };
            let mut action = json!({"commands": commands});
            for field in ["timeout_ms", "max_output_length"] {
                if let Some(value) = parsed[field].as_u64() {
                    action[field] = json!(value);
                }
            }
            let item = Item::ShellCall(ShellCallItem {
                id: Some(id),
                call_id,
                action,
                status: Some(status),
            });
            (item, Vec::new())
        }
        ClientToolKind::ApplyPatch => {
            let mut operation = json!({
                "type": parsed["type"].as_str().unwrap_or("update_file"),
                "path": parsed["path"].as_str().unwrap_or_default(),
            });
            if operation["type"] != "delete_file" {
                operation["diff"] = json!(parsed["diff"].as_str().unwrap_or_default());
            }
            let item = Item::ApplyPatchCall(ApplyPatchCallItem {
                id: Some(id),
                call_id,
                operation,
                // The API knows only these two for a patch call.
                status: Some(match status {
                    ItemStatus::Completed => ItemStatus::Completed,
                    _ => ItemStatus::InProgress,
                }),
            });
            (item, Vec::new())
        }
        ClientToolKind::Namespaced { namespace, name } => {
            let events = vec![EventData::FunctionCallArgumentsDone {
                item_id: id.clone(),
                output_index,
                name: name.clone(),
                arguments: arguments.to_owned(),
            }];
            let item = Item::FunctionCall(FunctionCallItem {
                id: Some(id),
                call_id,
                name: name.clone(),
                arguments: arguments.to_owned(),
                status: Some(status),
                namespace: Some(namespace.clone()),
            });
            (item, events)
        }
    }
}

/// The client tools' items as a chat model knows them: each call a function
/// call of the name it was offered under, each output that call's output.
pub fn as_functions(items: Vec<Item>) -> Vec<Item> {
    if !items.iter().any(is_client_item) {
        return items;
    }
    // A local shell output names its call by the call's item id.
    let shell_calls: HashMap<String, String> = items
        .iter()
        .filter_map(|item| match item {
            Item::LocalShellCall(call) => Some((call.id.clone(), call.call_id.clone())),
            _ => None,
        })
        .collect();
    items
        .into_iter()
        .map(|item| as_function(item, &shell_calls))
        .collect()
}

fn is_client_item(item: &Item) -> bool {
    matches!(
        item,
        Item::CustomToolCall(_)
            | Item::CustomToolCallOutput(_)
            | Item::LocalShellCall(_)
            | Item::LocalShellCallOutput(_)
            | Item::ShellCall(_)
            | Item::ShellCallOutput(_)
            | Item::ApplyPatchCall(_)
            | Item::ApplyPatchCallOutput(_)
    ) || matches!(item, Item::FunctionCall(call) if call.namespace.is_some())
}

fn call(call_id: String, name: String, arguments: String) -> Item {
    Item::FunctionCall(FunctionCallItem {
        id: None,
        call_id,
        name,
        arguments,
        status: Some(ItemStatus::Completed),
        namespace: None,
    })
}

fn output(call_id: String, text: String) -> Item {
    Item::FunctionCallOutput(FunctionCallOutputItem {
        id: None,
        call_id,
        output: MessageContent::Text(text),
        status: Some(ItemStatus::Completed),
    })
}

fn qualified(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{namespace}{NAMESPACE_SEPARATOR}{name}"),
        None => name.to_owned(),
    }
}

fn as_function(item: Item, shell_calls: &HashMap<String, String>) -> Item {
    match item {
        Item::CustomToolCall(custom) => call(
            custom.call_id,
            qualified(custom.namespace.as_deref(), &custom.name),
            json!({"input": custom.input}).to_string(),
        ),
        Item::CustomToolCallOutput(custom) => Item::FunctionCallOutput(FunctionCallOutputItem {
            id: None,
            call_id: custom.call_id,
            output: custom.output,
            status: Some(ItemStatus::Completed),
        }),
        Item::LocalShellCall(shell) => {
            let mut arguments = json!({"command": shell.action["command"]});
            if let Some(workdir) = shell.action["working_directory"].as_str() {
                arguments["workdir"] = json!(workdir);
            }
            call(
                shell.call_id,
                "local_shell".to_owned(),
                arguments.to_string(),
            )
        }
        Item::LocalShellCallOutput(shell) => {
            let call_id = shell
                .call_id
                .or_else(|| shell_calls.get(&shell.id).cloned())
                .unwrap_or(shell.id);
            output(call_id, shell.output)
        }
        Item::ShellCall(shell) => call(shell.call_id, "shell".to_owned(), shell.action.to_string()),
        Item::ShellCallOutput(shell) => output(shell.call_id, shell_output_text(&shell.output)),
        Item::ApplyPatchCall(patch) => call(
            patch.call_id,
            "apply_patch".to_owned(),
            patch.operation.to_string(),
        ),
        Item::ApplyPatchCallOutput(patch) => {
            let text = match patch.output {
                Some(text) if !text.is_empty() => format!("{}: {text}", patch.status),
                _ => patch.status,
            };
            output(patch.call_id, text)
        }
        Item::FunctionCall(mut function) if function.namespace.is_some() => {
            function.name = qualified(function.namespace.take().as_deref(), &function.name);
            Item::FunctionCall(function)
        }
        other => other,
    }
}
