//! The agentic loop against real MCP servers (the mock's, over Streamable HTTP,
//! the older SSE transport, bearer and OAuth protected): listing, calls, parallel
//! calls, approvals, errors, limits, chaining, and the outbound URL policy.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::harness::{Gateway, message_roles, output_text, start, start_with};

fn calc(gateway: &Gateway, extra: Value) -> Value {
    let mut tool = json!({"type": "mcp", "server_label": "calc",
        "server_url": format!("{}/mcp", gateway.mock_url)});
    for (key, value) in extra.as_object().unwrap() {
        tool[key] = value.clone();
    }
    tool
}

fn never() -> Value {
    json!({"require_approval": "never"})
}

fn types(response: &Value) -> Vec<&str> {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["type"].as_str().unwrap())
        .collect()
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_tool_is_listed_called_and_its_result_answered() {
    let gateway = start().await;
    let response = gateway
        .create(json!({"tools": [calc(&gateway, never())],
            "input": "add [[tool:calc__add:{\"a\":1,\"b\":2}]]"}))
        .await;
    assert_eq!(types(&response), ["mcp_list_tools", "mcp_call", "message"]);
    let tools: Vec<&str> = response["output"][0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"add") && tools.contains(&"echo"),
        "{tools:?}"
    );
    let call = &response["output"][1];
    assert_eq!(call["name"], "add");
    assert_eq!(call["server_label"], "calc");
    assert_eq!(call["output"], "3");
    assert_eq!(call["status"], "completed");
    assert!(output_text(&response).contains("tool_results: 3"));
    assert_eq!(count(&gateway.mock_stats.mcp_tool_calls), 1);
    assert_eq!(response["status"], "completed");
}

#[tokio::test]
async fn the_loop_streams_every_mcp_event_in_the_grammar() {
    let gateway = start().await;
    let sse = gateway
        .stream(json!({"tools": [calc(&gateway, never())],
            "input": "add [[tool:calc__add:{\"a\":1,\"b\":2}]]"}))
        .await;
    let seen = sse.types();
    for kind in [
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
        "response.output_text.delta",
    ] {
        assert!(seen.contains(&kind), "{kind} missing from {seen:?}");
    }
    assert_eq!(sse.final_response()["status"], "completed");
}

#[tokio::test]
async fn parallel_calls_run_together_and_are_filed_as_they_finish() {
    let gateway = start().await;
    let sse = gateway
        .stream(json!({"tools": [calc(&gateway, never())],
            "input": "go [[tool:calc__sleep:{\"ms\":300}]] [[tool:calc__add:{\"a\":2,\"b\":2}]]"}))
        .await;
    let completed: Vec<u64> = sse
        .of_type("response.mcp_call.completed")
        .iter()
        .map(|e| e["output_index"].as_u64().unwrap())
        .collect();
    assert_eq!(completed, [2, 1], "the quick call is filed first");
    // The harness sends keepalives every 100 ms; the slow call takes 300 ms.
    assert!(sse.comments > 0, "keepalive comments flow while tools run");
    let output = &sse.final_response()["output"];
    assert_eq!(output[1]["output"], "slept 300ms");
    assert_eq!(output[2]["output"], "4");
}

#[tokio::test]
async fn approval_then_approve_through_previous_response_id() {
    let gateway = start().await;
    let tools = json!([calc(&gateway, json!({"require_approval": "always"}))]);
    let first = gateway
        .create(json!({"tools": tools, "input": "add [[tool:calc__add:{\"a\":1,\"b\":2}]]"}))
        .await;
    assert_eq!(types(&first), ["mcp_list_tools", "mcp_approval_request"]);
    assert_eq!(first["status"], "completed");
    assert_eq!(count(&gateway.mock_stats.mcp_tool_calls), 0, "nothing ran");
    let request_id = first["output"][1]["id"].as_str().unwrap();
    let second = gateway
        .create(json!({"tools": tools, "previous_response_id": first["id"], "input": [
            {"type": "mcp_approval_response", "approval_request_id": request_id, "approve": true}]}))
        .await;
    assert_eq!(types(&second), ["mcp_call", "message"]);
    assert_eq!(second["output"][0]["approval_request_id"], request_id);
    assert_eq!(second["output"][0]["output"], "3");
    assert!(output_text(&second).contains("tool_results: 3"));
    assert_eq!(count(&gateway.mock_stats.mcp_tool_calls), 1);
    assert_eq!(
        count(&gateway.mock_stats.mcp_list_tools),
        1,
        "the list is reused from the stored context"
    );
    // The same approval cannot be spent twice.
    let again = gateway
        .post(
            "/v1/responses",
            &json!({"tools": tools, "previous_response_id": second["id"], "input": [
                {"type": "mcp_approval_response", "approval_request_id": request_id, "approve": true}]}),
        )
        .await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(again.body["error"]["param"], "input[0]");
    // Nor through a fork of the chain that has not seen the first answer.
    let fork = gateway
        .post(
            "/v1/responses",
            &json!({"tools": tools, "previous_response_id": first["id"], "input": [
                {"type": "mcp_approval_response", "approval_request_id": request_id, "approve": true}]}),
        )
        .await;
    assert_eq!(fork.status, 400, "{}", fork.body);
    assert!(
        fork.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already been answered"),
        "{}",
        fork.body
    );
    assert_eq!(
        count(&gateway.mock_stats.mcp_tool_calls),
        1,
        "the call ran once"
    );
}

#[tokio::test]
async fn a_denied_call_is_not_run_and_the_model_is_told() {
    let gateway = start().await;
    let tools = json!([calc(&gateway, json!({}))]);
    let first = gateway
        .create(json!({"tools": tools, "input": "add [[tool:calc__add:{\"a\":1,\"b\":2}]]"}))
        .await;
    let request_id = first["output"][1]["id"].as_str().unwrap();
    let second = gateway
        .create(
            json!({"tools": tools, "previous_response_id": first["id"], "input": [
            {"type": "mcp_approval_response", "approval_request_id": request_id,
             "approve": false, "reason": "not now"}]}),
        )
        .await;
    assert_eq!(types(&second), ["message"]);
    assert!(
        output_text(&second).contains("denied this tool call"),
        "{}",
        output_text(&second)
    );
    assert_eq!(count(&gateway.mock_stats.mcp_tool_calls), 0);
}

#[tokio::test]
async fn a_tool_error_is_a_failed_call_the_model_hears_about() {
    let gateway = start().await;
    let response = gateway
        .create(json!({"tools": [calc(&gateway, never())], "input": "[[tool:calc__fail:{}]]"}))
        .await;
    let call = &response["output"][1];
    assert_eq!(call["status"], "failed");
    assert_eq!(call["error"]["type"], "mcp_tool_execution_error");
    assert!(output_text(&response).contains("Error: the tool failed on purpose"));
}

#[tokio::test]
async fn an_unreachable_server_fails_its_listing_not_the_gateway() {
    let gateway = start().await;
    let response = gateway
        .create(json!({"tools": [{"type": "mcp", "server_label": "gone",
            "server_url": "http://127.0.0.1:9/mcp"}], "input": "hello"}))
        .await;
    assert_eq!(types(&response), ["mcp_list_tools", "message"]);
    assert!(response["output"][0]["error"].as_str().unwrap().len() > 5);
    assert!(
        output_text(&response).contains("unavailable"),
        "the model is told: {}",
        output_text(&response)
    );
}

#[tokio::test]
async fn max_tool_calls_counts_calls_across_turns() {
    let gateway = start().await;
    let response = gateway
        .create(
            json!({"tools": [calc(&gateway, never())], "max_tool_calls": 2,
            "input": "[[tool_always:calc__add:{\"a\":1,\"b\":1}]]"}),
        )
        .await;
    assert_eq!(response["status"], "incomplete");
    assert_eq!(response["incomplete_details"]["reason"], "max_tool_calls");
    assert_eq!(count(&gateway.mock_stats.mcp_tool_calls), 2);
}

#[tokio::test]
async fn the_turn_limit_stops_a_model_that_never_answers() {
    let gateway = start_with(|config| config.engine.max_turns = 3).await;
    let response = gateway
        .create(json!({"tools": [calc(&gateway, never())],
            "input": "[[tool_always:calc__echo:{\"text\":\"again\"}]]"}))
        .await;
    assert_eq!(response["status"], "incomplete");
    assert_eq!(response["incomplete_details"]["reason"], "max_turns");
    assert_eq!(count(&gateway.mock_stats.mcp_tool_calls), 3);
}

#[tokio::test]
async fn a_chain_through_tool_calls_replays_calls_and_results() {
    let gateway = start().await;
    let tools = json!([calc(&gateway, never())]);
    let first = gateway
        .create(json!({"tools": tools, "input": "add [[tool:calc__add:{\"a\":1,\"b\":2}]]"}))
        .await;
    let second = gateway
        .create(json!({"tools": tools, "previous_response_id": first["id"],
            "input": "[[echo_request]]"}))
        .await;
    let sent: Value = serde_json::from_str(&output_text(&second)).unwrap();
    let roles = message_roles(&sent);
    assert_eq!(roles, ["user", "assistant", "tool", "assistant", "user"]);
    assert_eq!(
        sent["messages"][1]["tool_calls"][0]["function"]["name"],
        "calc__add"
    );
    assert_eq!(sent["messages"][2]["content"], "3");
    assert_eq!(count(&gateway.mock_stats.mcp_list_tools), 1, "listed once");
}

#[tokio::test]
async fn a_client_function_named_like_a_server_tool_goes_back_to_the_client() {
    let gateway = start().await;
    let response = gateway
        .create(
            json!({"tools": [{"type": "function", "name": "add"}, calc(&gateway, never())],
            "input": "[[tool:add:{\"a\":1}]]"}),
        )
        .await;
    assert_eq!(types(&response), ["mcp_list_tools", "function_call"]);
    assert_eq!(response["output"][1]["name"], "add");
    assert_eq!(count(&gateway.mock_stats.mcp_tool_calls), 0);
}

#[tokio::test]
async fn loopback_servers_are_denied_unless_configured() {
    let gateway = start_with(|config| config.mcp.url_policy.allow_loopback = false).await;
    let response = gateway
        .create(json!({"tools": [calc(&gateway, never())], "input": "hi"}))
        .await;
    let error = response["output"][0]["error"].as_str().unwrap();
    assert!(error.contains("not allowed"), "{error}");
    assert_eq!(
        count(&gateway.mock_stats.mcp_list_tools),
        0,
        "never reached"
    );
}

#[tokio::test]
async fn a_bearer_token_from_the_request_reaches_the_server() {
    let gateway = start().await;
    let secured = |token: Option<&str>| {
        let mut tool = json!({"type": "mcp", "server_label": "secure", "require_approval": "never",
            "server_url": format!("{}/mcp-auth", gateway.mock_url)});
        if let Some(token) = token {
            tool["authorization"] = json!(token);
        }
        tool
    };
    let denied = gateway
        .create(json!({"tools": [secured(None)], "input": "hi"}))
        .await;
    assert!(denied["output"][0]["error"].is_string());
    let allowed = gateway
        .create(json!({"tools": [secured(Some("static-token"))],
            "input": "[[tool:secure__echo:{\"text\":\"psst\"}]]"}))
        .await;
    assert_eq!(allowed["output"][1]["output"], "psst");
    assert!(
        allowed["tools"][0].get("authorization").is_none(),
        "the token is not echoed"
    );
}

#[tokio::test]
async fn the_older_sse_transport_works_too() {
    let gateway = start().await;
    let response = gateway
        .create(
            json!({"tools": [{"type": "mcp", "server_label": "legacy", "require_approval": "never",
            "server_url": format!("{}/sse", gateway.mock_url)}],
            "input": "[[tool:legacy__add:{\"a\":20,\"b\":22}]]"}),
        )
        .await;
    assert_eq!(types(&response), ["mcp_list_tools", "mcp_call", "message"]);
    assert_eq!(response["output"][1]["output"], "42");
}

#[tokio::test]
async fn a_configured_server_with_oauth_caches_its_token_and_tool_list() {
    let gateway = start_with(|config| {
        // The harness points the backend at the mock before adjusting the config.
        let backend = config.engine.backend_url.clone().unwrap();
        let mock = backend.expose().trim_end_matches("/v1");
        config.mcp.url_policy.allow_loopback = false;
        config.mcp.servers = vec![antwort::config::McpServerSection {
            name: "secure".into(),
            url: format!("{mock}/mcp-auth").into(),
            transport: antwort::config::McpTransportKind::StreamableHttp,
            headers: Default::default(),
            auth: Some(antwort::config::McpAuthSection {
                kind: antwort::config::McpAuthKind::OauthClientCredentials,
                token: None,
                token_url: Some(format!("{mock}/oauth/token").into()),
                client_id: Some("antwort".into()),
                client_id_file: None,
                client_secret: Some("s3cret".into()),
                client_secret_file: None,
                scopes: vec!["tools".into()],
            }),
        }];
    })
    .await;
    for _ in 0..2 {
        let response = gateway
            .create(json!({"tools": [{"type": "mcp", "server_label": "secure", "require_approval": "never"}],
                "input": "[[tool:secure__add:{\"a\":1,\"b\":1}]]"}))
            .await;
        assert_eq!(response["output"][1]["output"], "2", "{response}");
    }
    let stats = &gateway.mock_stats;
    assert_eq!(count(&stats.oauth_tokens_issued), 1, "the token is reused");
    assert_eq!(count(&stats.mcp_list_tools), 1, "the list is cached");
    assert_eq!(count(&stats.mcp_tool_calls), 2);
}

#[tokio::test]
async fn a_tool_list_is_reused_only_for_the_same_label_at_the_same_address() {
    let gateway = start().await;
    let first = gateway
        .create(json!({"tools": [calc(&gateway, never())], "input": "hi"}))
        .await;
    assert_eq!(count(&gateway.mock_stats.mcp_list_tools), 1);
    // Same label, same address: the stored list is reused.
    let same = gateway
        .create(json!({"tools": [calc(&gateway, never())], "input": "again",
            "previous_response_id": first["id"]}))
        .await;
    assert_eq!(count(&gateway.mock_stats.mcp_list_tools), 1);
    // Same label at another address (the older SSE transport of the mock): listed anew.
    let moved = json!({"type": "mcp", "server_label": "calc", "require_approval": "never",
        "server_url": format!("{}/sse", gateway.mock_url)});
    let elsewhere = gateway
        .create(json!({"tools": [moved], "input": "and now", "previous_response_id": same["id"]}))
        .await;
    assert_eq!(types(&elsewhere)[0], "mcp_list_tools", "{elsewhere}");
    assert_eq!(count(&gateway.mock_stats.mcp_list_tools), 2);
}
