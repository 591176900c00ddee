//! The tool types Codex CLI sends: custom (freeform) tools, `local_shell`,
//! `shell`, `apply_patch` and `namespace` groups. Each is offered to the model
//! as a function, its call comes back as the item the client declared, and
//! that item with its output reaches the model as a call and its result.

use serde_json::{Value, json};

use crate::harness::{output_text, start};

fn items_of<'a>(response: &'a Value, kind: &str) -> Vec<&'a Value> {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == kind)
        .collect()
}

const PATCH_GRAMMAR: &str = "start: begin_patch hunk+ end_patch";

#[tokio::test]
async fn a_custom_tool_call_comes_back_as_custom_tool_call_with_its_raw_input() {
    let gateway = start().await;
    let tools = json!([{
        "type": "custom", "name": "apply_patch", "description": "Edit files.",
        "format": {"type": "grammar", "syntax": "lark", "definition": PATCH_GRAMMAR}
    }]);
    let sse = gateway
        .stream(json!({
            "input": "patch it [[tool:apply_patch:{\"input\":\"*** Begin Patch\\n*** End Patch\"}]]",
            "tools": tools,
        }))
        .await;
    let response = sse.final_response();
    let calls = items_of(response, "custom_tool_call");
    assert_eq!(calls.len(), 1, "{response}");
    assert_eq!(calls[0]["name"], "apply_patch");
    assert_eq!(calls[0]["input"], "*** Begin Patch\n*** End Patch");
    let done = sse.of_type("response.custom_tool_call_input.done");
    assert_eq!(done[0]["input"], calls[0]["input"]);
    assert!(
        sse.of_type("response.function_call_arguments.delta")
            .is_empty()
    );

    // The output goes back; the model sees a call and its result.
    let call_id = calls[0]["call_id"].as_str().unwrap();
    let next = gateway
        .create(json!({
            "previous_response_id": response["id"],
            "input": [
                {"type": "custom_tool_call_output", "call_id": call_id, "output": "Success. Updated a.txt"},
                {"role": "user", "content": "[[echo_request]]"}
            ],
            "tools": tools,
        }))
        .await;
    let sent: Value = serde_json::from_str(&output_text(&next)).unwrap();
    let messages = sent["messages"].as_array().unwrap();
    let call = messages
        .iter()
        .find(|m| !m["tool_calls"].is_null())
        .expect("the call is replayed");
    assert_eq!(call["tool_calls"][0]["function"]["name"], "apply_patch");
    let result = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(result["content"], "Success. Updated a.txt");
    let offered = &sent["tools"][0]["function"];
    assert!(
        offered["description"]
            .as_str()
            .unwrap()
            .contains(PATCH_GRAMMAR),
        "the grammar is handed to the model: {offered}"
    );
}

#[tokio::test]
async fn shell_and_patch_calls_come_back_as_their_own_items() {
    let gateway = start().await;
    let response = gateway
        .create(json!({
            "input": "go [[tool:local_shell:{\"command\":[\"ls\",\"-la\"],\"workdir\":\"/tmp\"}]] [[tool:shell:{\"commands\":[\"pwd\"]}]] [[tool:apply_patch:{\"type\":\"create_file\",\"path\":\"a.txt\",\"diff\":\"+hi\"}]]",
            "tools": [{"type": "local_shell"}, {"type": "shell"}, {"type": "apply_patch"}],
        }))
        .await;
    let local = items_of(&response, "local_shell_call");
    assert_eq!(local[0]["action"]["type"], "exec");
    assert_eq!(local[0]["action"]["command"], json!(["ls", "-la"]));
    assert_eq!(local[0]["action"]["working_directory"], "/tmp");
    let shell = items_of(&response, "shell_call");
    assert_eq!(shell[0]["action"]["commands"], json!(["pwd"]));
    let patch = items_of(&response, "apply_patch_call");
    assert_eq!(
        patch[0]["operation"],
        json!({"type": "create_file", "path": "a.txt", "diff": "+hi"})
    );
    assert_eq!(response["status"], "completed");
    assert!(items_of(&response, "function_call").is_empty());

    // Every output form is accepted back, and answers its call.
    let next = gateway
        .create(json!({
            "previous_response_id": response["id"],
            "input": [
                {"type": "local_shell_call_output", "id": local[0]["id"], "output": "a.txt b.txt"},
                {"type": "shell_call_output", "call_id": shell[0]["call_id"], "output": [
                    {"stdout": "/tmp", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]},
                {"type": "apply_patch_call_output", "call_id": patch[0]["call_id"], "status": "completed"},
                {"role": "user", "content": "[[echo_request]]"}
            ],
            "tools": [{"type": "local_shell"}, {"type": "shell"}, {"type": "apply_patch"}],
        }))
        .await;
    let sent: Value = serde_json::from_str(&output_text(&next)).unwrap();
    let results: Vec<&Value> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(results.len(), 3, "{sent}");
    assert_eq!(results[0]["tool_call_id"], local[0]["call_id"]);
    assert_eq!(results[0]["content"], "a.txt b.txt");
    assert!(results[1]["content"].as_str().unwrap().contains("/tmp"));
    assert_eq!(results[2]["content"], "completed");
}

#[tokio::test]
async fn an_output_without_its_call_is_a_400_naming_it() {
    let gateway = start().await;
    let answer = gateway
        .post(
            "/v1/responses",
            &json!({"input": [{"type": "custom_tool_call_output", "call_id": "nope", "output": "x"}]}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"]["param"], "input[0]");
}

#[tokio::test]
async fn namespace_functions_are_offered_qualified_and_come_back_with_their_namespace() {
    let gateway = start().await;
    let tools = json!([{
        "type": "namespace", "name": "github", "description": "GitHub tools",
        "tools": [{"type": "function", "name": "search", "parameters": {"type": "object", "properties": {}}}]
    }]);
    let response = gateway
        .create(json!({"input": "find [[tool:github__search:{}]]", "tools": tools}))
        .await;
    let calls = items_of(&response, "function_call");
    assert_eq!(calls[0]["name"], "search");
    assert_eq!(calls[0]["namespace"], "github");
    let next = gateway
        .create(json!({
            "previous_response_id": response["id"],
            "input": [
                {"type": "function_call_output", "call_id": calls[0]["call_id"], "output": "3 repos"},
                {"role": "user", "content": "[[echo_request]]"}
            ],
            "tools": tools,
        }))
        .await;
    let sent: Value = serde_json::from_str(&output_text(&next)).unwrap();
    assert_eq!(sent["tools"][0]["function"]["name"], "github__search");
    let call = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| !m["tool_calls"].is_null())
        .unwrap();
    assert_eq!(call["tool_calls"][0]["function"]["name"], "github__search");
}

#[tokio::test]
async fn prompt_cache_key_reaches_the_backend() {
    let gateway = start().await;
    let response = gateway
        .create(json!({"input": "[[echo_request]]", "prompt_cache_key": "codex-session-1"}))
        .await;
    let sent: Value = serde_json::from_str(&output_text(&response)).unwrap();
    assert_eq!(sent["prompt_cache_key"], "codex-session-1");
}

#[tokio::test]
async fn reasoning_kept_by_an_unstoring_client_is_sealed_and_read_back() {
    let gateway = start().await;
    let first = gateway
        .create(json!({
            "model": "mock-reasoning",
            "input": "think [[reasoning:the secret plan]]",
            "store": false,
            "include": ["reasoning.encrypted_content"],
        }))
        .await;
    let reasoning = items_of(&first, "reasoning")[0].clone();
    let sealed = reasoning["encrypted_content"].as_str().unwrap().to_owned();
    assert!(!sealed.contains("secret"), "never the plain text: {sealed}");
    if !crate::harness::over_chat() {
        // A Responses backend keeps reasoning in its own blob: it goes back to
        // the backend as it came, unopened.
        assert!(sealed.starts_with("mock-sealed:"), "{sealed}");
        let kept = json!({"type": "reasoning", "id": reasoning["id"], "summary": [], "encrypted_content": sealed});
        gateway
            .create(json!({"input": [kept, {"role": "user", "content": "go on"}], "store": false}))
            .await;
        let sent = gateway.mock_stats.last_request().unwrap();
        assert_eq!(
            sent["input"][0]["encrypted_content"],
            sealed.as_str(),
            "{sent}"
        );
        return;
    }
    // Codex sends the item back without its text; the gateway reads it again
    // (here into a stored response, whose input items show it).
    let kept = json!({"type": "reasoning", "id": reasoning["id"], "summary": [], "encrypted_content": sealed});
    let next = gateway
        .create(json!({"input": [kept, {"role": "user", "content": "go on"}]}))
        .await;
    let items = gateway
        .get(&format!(
            "/v1/responses/{}/input_items?order=asc",
            next["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        items.body["data"][0]["content"][0]["text"], "the secret plan",
        "{}",
        items.body
    );
    // Not asked for: no blob.
    let plain = gateway
        .create(json!({"model": "mock-reasoning", "input": "think", "store": false}))
        .await;
    assert!(
        items_of(&plain, "reasoning")[0]
            .get("encrypted_content")
            .is_none()
    );
    // Altered (or sealed by a process with another key), it is passed over:
    // the turn goes on without that reasoning.
    let mut altered = sealed.clone();
    altered.replace_range(sealed.len() - 4.., "AAAA");
    let passed = gateway
        .create(json!({"input": [{"type": "reasoning", "summary": [], "encrypted_content": altered}, {"role": "user", "content": "x"}]}))
        .await;
    let items = gateway
        .get(&format!(
            "/v1/responses/{}/input_items?order=asc",
            passed["id"].as_str().unwrap()
        ))
        .await;
    assert!(
        items.body["data"][0]["content"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{}",
        items.body
    );
}
