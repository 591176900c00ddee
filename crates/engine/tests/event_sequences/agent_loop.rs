//! The agentic loop through the real engine: scripted model turns, a fake MCP
//! connector, and the events and model requests that come out.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use antwort_api::{EventData, Item, MessageContent, Role, StreamEvent};
use antwort_engine::mcp::{McpCallResult, McpConnector, McpError, McpListedTool, McpServer};

use super::*;

/// A backend that plays one script per model turn and records every request.
pub(crate) struct TurnsBackend {
    pub(crate) turns: Mutex<VecDeque<Vec<Result<ModelEvent, BackendError>>>>,
    pub(crate) seen: Mutex<Vec<ModelRequest>>,
}

#[async_trait]
impl Backend for TurnsBackend {
    async fn generate(&self, request: &ModelRequest) -> Result<ModelStream, BackendError> {
        self.seen.lock().unwrap().push(request.clone());
        let turn = self.turns.lock().unwrap().pop_front();
        let turn = turn.ok_or_else(|| BackendError::protocol("no more turns scripted"))?;
        Ok(futures::stream::iter(turn).boxed())
    }
    async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        Ok(Vec::new())
    }
    async fn check_ready(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// MCP servers in memory: `down` cannot be reached; the others offer `add`,
/// `echo`, `fail` (a tool error) and `slow` (waits `ms` of tokio time).
#[derive(Default)]
struct FakeMcp {
    lists: AtomicUsize,
    calls: Mutex<Vec<String>>,
}

#[async_trait]
impl McpConnector for FakeMcp {
    async fn list_tools(&self, server: &McpServer) -> Result<Vec<McpListedTool>, McpError> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        if server.label == "down" {
            return Err(McpError::Unreachable("connection refused".into()));
        }
        Ok(["add", "echo", "fail", "slow"]
            .iter()
            .map(|name| McpListedTool {
                name: (*name).into(),
                description: Some(format!("the {name} tool")),
                input_schema: serde_json::json!({"type": "object"}),
                annotations: None,
            })
            .collect())
    }

    async fn call_tool(
        &self,
        server: &McpServer,
        tool: &str,
        arguments: serde_json::Map<String, Value>,
    ) -> Result<McpCallResult, McpError> {
        let arguments = Value::Object(arguments);
        self.calls
            .lock()
            .unwrap()
            .push(format!("{}.{tool} {arguments}", server.label));
        if tool == "slow" {
            let ms = arguments["ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(McpCallResult {
            output: format!("{tool} says {arguments}"),
            is_error: tool == "fail",
        })
    }
}

struct Outcome {
    events: Vec<StreamEvent>,
    requests: Vec<ModelRequest>,
    mcp: Arc<FakeMcp>,
}

impl Outcome {
    fn response(&self) -> &antwort_api::Response {
        self.events
            .last()
            .unwrap()
            .data
            .terminal_response()
            .unwrap()
    }

    fn types(&self) -> Vec<&'static str> {
        self.events.iter().map(StreamEvent::type_name).collect()
    }

    fn output_types(&self) -> Vec<String> {
        let value = serde_json::to_value(&self.response().output).unwrap();
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["type"].as_str().unwrap().to_owned())
            .collect()
    }
}

async fn drive(
    body: Value,
    turns: Vec<Vec<Result<ModelEvent, BackendError>>>,
    config: EngineConfig,
) -> Outcome {
    let backend = Arc::new(TurnsBackend {
        turns: Mutex::new(turns.into()),
        seen: Mutex::new(Vec::new()),
    });
    let mcp = Arc::new(FakeMcp::default());
    let engine = Engine::new(
        Backends::single("test", backend.clone()),
        Stores::responses_only(Arc::new(RecordingStore::default())),
        EngineConfig {
            default_model: Some("test-model".into()),
            ..config
        },
    )
    .with_mcp(mcp.clone());
    let request = CreateResponseRequest::from_json(body.to_string().as_bytes()).unwrap();
    let started = engine.create(&Scope::default(), request).await.unwrap();
    let events: Vec<_> = started.events().collect().await;
    check_grammar(&events);
    let requests = backend.seen.lock().unwrap().clone();
    Outcome {
        events,
        requests,
        mcp,
    }
}

fn call(index: u32, name: &str, arguments: &str) -> Result<ModelEvent, BackendError> {
    Ok(ModelEvent::ToolCallDelta {
        index,
        id: Some(format!("call_{index}")),
        name: Some(name.into()),
        arguments: arguments.into(),
    })
}

fn calc(extra: Value) -> Value {
    let mut tool = serde_json::json!({"type": "mcp", "server_label": "calc", "server_url": "http://calc.example/mcp"});
    for (key, value) in extra.as_object().unwrap() {
        tool[key] = value.clone();
    }
    tool
}

fn never() -> Value {
    serde_json::json!({"require_approval": "never"})
}

/// The last model request's input, as `kind name/call_id text` lines.
fn input_lines(request: &ModelRequest) -> Vec<String> {
    request
        .input
        .iter()
        .map(|item| match item {
            Item::Message(m) => format!(
                "{:?} {}",
                m.role,
                match &m.content {
                    MessageContent::Text(t) => t.clone(),
                    MessageContent::Parts(_) => "parts".into(),
                }
            ),
            Item::FunctionCall(c) => format!("call {} {}", c.name, c.arguments),
            Item::FunctionCallOutput(o) => format!(
                "output {}",
                match &o.output {
                    MessageContent::Text(t) => t.clone(),
                    MessageContent::Parts(_) => "parts".into(),
                }
            ),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn mcp_tools_are_listed_called_and_fed_back() {
    let outcome = drive(
        serde_json::json!({"input": "add 1 and 2", "tools": [calc(never())]}),
        vec![
            vec![
                call(0, "calc__add", r#"{"a":1,"b":2}"#),
                finish(FinishReason::ToolCalls),
                usage(),
            ],
            vec![text("It is 3."), finish(FinishReason::Stop), usage()],
        ],
        EngineConfig::default(),
    )
    .await;
    insta::assert_snapshot!(render(&outcome.events));
    let offered: Vec<_> = outcome.requests[0]
        .tools
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        offered,
        ["calc__add", "calc__echo", "calc__fail", "calc__slow"]
    );
    assert_eq!(
        input_lines(&outcome.requests[1]),
        [
            "User add 1 and 2",
            r#"call calc__add {"a":1,"b":2}"#,
            r#"output add says {"a":1,"b":2}"#,
        ]
    );
    let usage = outcome.response().usage.unwrap();
    assert_eq!(usage.total_tokens, 16, "both turns' usage adds up");
}

#[tokio::test(start_paused = true)]
async fn parallel_calls_are_filed_as_they_finish() {
    let outcome = drive(
        serde_json::json!({"input": "go", "tools": [calc(never())]}),
        vec![
            vec![
                call(0, "calc__slow", r#"{"ms":50}"#),
                call(1, "calc__add", r#"{"a":1}"#),
                finish(FinishReason::ToolCalls),
            ],
            vec![text("done"), finish(FinishReason::Stop)],
        ],
        EngineConfig::default(),
    )
    .await;
    let completed: Vec<usize> = outcome
        .events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::McpCallCompleted { output_index, .. } => Some(*output_index),
            _ => None,
        })
        .collect();
    assert_eq!(completed, [2, 1], "the fast call is filed first");
    assert_eq!(
        outcome.output_types(),
        ["mcp_list_tools", "mcp_call", "mcp_call", "message"]
    );
}

#[tokio::test]
async fn sequential_when_parallel_tool_calls_is_false() {
    let outcome = drive(
        serde_json::json!({"input": "go", "parallel_tool_calls": false, "tools": [calc(never())]}),
        vec![
            vec![
                call(0, "calc__slow", r#"{"ms":5}"#),
                call(1, "calc__add", r#"{"a":1}"#),
                finish(FinishReason::ToolCalls),
            ],
            vec![text("done"), finish(FinishReason::Stop)],
        ],
        EngineConfig::default(),
    )
    .await;
    let calls = outcome.mcp.calls.lock().unwrap().clone();
    assert_eq!(calls, [r#"calc.slow {"ms":5}"#, r#"calc.add {"a":1}"#]);
}

#[tokio::test]
async fn a_call_needing_approval_ends_the_response_with_a_request() {
    let outcome = drive(
        serde_json::json!({"input": "add", "tools": [calc(serde_json::json!({}))]}),
        vec![vec![
            call(0, "calc__add", r#"{"a":1,"b":2}"#),
            finish(FinishReason::ToolCalls),
        ]],
        EngineConfig::default(),
    )
    .await;
    insta::assert_snapshot!(render(&outcome.events));
    assert!(outcome.mcp.calls.lock().unwrap().is_empty(), "nothing ran");
    assert_eq!(outcome.requests.len(), 1);
}

/// The items of a previous response that stopped for approval, sent back as
/// input with the client's answer.
fn answered(approve: bool) -> Value {
    // Listed by this gateway: the list's id names the server it lists.
    let calc = antwort_engine::mcp::McpServer {
        label: "calc".into(),
        url: Some("http://calc.example/mcp".into()),
        headers: Default::default(),
        tenant: "default".into(),
    };
    let list_id = antwort_engine::ids::mcp_list_tools_id(&calc.fingerprint());
    serde_json::json!([
        {"role": "user", "content": "add 1 and 2"},
        {"type": "mcp_list_tools", "id": list_id, "server_label": "calc", "tools": [
            {"name": "add", "input_schema": {"type": "object"}}]},
        {"type": "mcp_approval_request", "id": "mcpr_1", "server_label": "calc",
         "name": "add", "arguments": "{\"a\":1,\"b\":2}"},
        {"type": "mcp_approval_response", "approval_request_id": "mcpr_1",
         "approve": approve, "reason": "not today"}
    ])
}

#[tokio::test]
async fn an_approved_call_runs_before_the_model_is_asked_again() {
    let outcome = drive(
        serde_json::json!({"input": answered(true), "tools": [calc(serde_json::json!({}))]}),
        vec![vec![text("3"), finish(FinishReason::Stop)]],
        EngineConfig::default(),
    )
    .await;
    assert_eq!(outcome.mcp.lists.load(Ordering::SeqCst), 0, "list reused");
    assert_eq!(
        outcome.mcp.calls.lock().unwrap().clone(),
        [r#"calc.add {"a":1,"b":2}"#]
    );
    assert_eq!(outcome.output_types(), ["mcp_call", "message"]);
    let call = serde_json::to_value(&outcome.response().output[0]).unwrap();
    assert_eq!(call["approval_request_id"], "mcpr_1");
    assert_eq!(call["status"], "completed");
    assert_eq!(
        input_lines(&outcome.requests[0])[1..],
        [
            r#"call calc__add {"a":1,"b":2}"#,
            r#"output add says {"a":1,"b":2}"#
        ]
    );
}

#[tokio::test]
async fn a_denied_call_is_reported_to_the_model_and_not_run() {
    let outcome = drive(
        serde_json::json!({"input": answered(false), "tools": [calc(serde_json::json!({}))]}),
        vec![vec![text("ok, I will not"), finish(FinishReason::Stop)]],
        EngineConfig::default(),
    )
    .await;
    assert!(outcome.mcp.calls.lock().unwrap().is_empty());
    assert_eq!(outcome.output_types(), ["message"]);
    assert_eq!(
        input_lines(&outcome.requests[0])[1..],
        [
            r#"call calc__add {"a":1,"b":2}"#,
            "output The user denied this tool call; it was not run. Reason: not today"
        ]
    );
}

#[tokio::test]
async fn an_answer_to_no_request_is_a_400() {
    let backend = Arc::new(TurnsBackend {
        turns: Mutex::new(VecDeque::new()),
        seen: Mutex::new(Vec::new()),
    });
    let engine = Engine::new(
        Backends::single("test", backend),
        Stores::responses_only(Arc::new(RecordingStore::default())),
        EngineConfig {
            default_model: Some("m".into()),
            ..EngineConfig::default()
        },
    );
    let body = serde_json::json!({"input": [{"type": "mcp_approval_response",
        "approval_request_id": "mcpr_nope", "approve": true}], "tools": [calc(never())]});
    let request = CreateResponseRequest::from_json(body.to_string().as_bytes()).unwrap();
    let error = engine
        .create(&Scope::default(), request)
        .await
        .err()
        .unwrap();
    assert_eq!(error.param.as_deref(), Some("input[0]"));
}

#[tokio::test]
async fn max_tool_calls_counts_calls_not_turns() {
    let outcome = drive(
        serde_json::json!({"input": "go", "max_tool_calls": 1, "tools": [calc(never())]}),
        vec![vec![
            call(0, "calc__add", "{}"),
            call(1, "calc__echo", "{}"),
            finish(FinishReason::ToolCalls),
        ]],
        EngineConfig::default(),
    )
    .await;
    assert_eq!(outcome.mcp.calls.lock().unwrap().len(), 1);
    let response = serde_json::to_value(outcome.response()).unwrap();
    assert_eq!(response["status"], "incomplete");
    assert_eq!(response["incomplete_details"]["reason"], "max_tool_calls");
    assert_eq!(response["output"][1]["status"], "completed");
    assert_eq!(response["output"][2]["status"], "incomplete");
}

#[tokio::test]
async fn the_turn_limit_ends_a_loop_that_never_answers() {
    let turn = || vec![call(0, "calc__add", "{}"), finish(FinishReason::ToolCalls)];
    let outcome = drive(
        serde_json::json!({"input": "go", "tools": [calc(never())]}),
        vec![turn(), turn(), turn()],
        EngineConfig {
            max_turns: 2,
            ..EngineConfig::default()
        },
    )
    .await;
    assert_eq!(outcome.requests.len(), 2);
    let response = serde_json::to_value(outcome.response()).unwrap();
    assert_eq!(response["incomplete_details"]["reason"], "max_turns");
}

#[tokio::test]
async fn a_mixed_turn_runs_server_calls_and_hands_client_calls_back() {
    let outcome = drive(
        serde_json::json!({"input": "go", "tools": [
            {"type": "function", "name": "add"}, calc(never())]}),
        vec![vec![
            call(0, "add", r#"{"x":1}"#),
            call(1, "calc__echo", r#"{"text":"hi"}"#),
            finish(FinishReason::ToolCalls),
        ]],
        EngineConfig::default(),
    )
    .await;
    assert_eq!(
        outcome.output_types(),
        ["mcp_list_tools", "function_call", "mcp_call"]
    );
    assert_eq!(
        outcome.mcp.calls.lock().unwrap().clone(),
        [r#"calc.echo {"text":"hi"}"#],
        "the client's `add` is not the server's"
    );
    assert_eq!(outcome.requests.len(), 1);
    assert_eq!(outcome.response().status.as_str(), "completed");
}

#[tokio::test]
async fn an_unreachable_server_fails_its_listing_not_the_response() {
    let outcome = drive(
        serde_json::json!({"input": "go", "tools": [
            {"type": "mcp", "server_label": "down", "server_url": "http://down.example/mcp"}]}),
        vec![vec![text("sorry"), finish(FinishReason::Stop)]],
        EngineConfig::default(),
    )
    .await;
    assert!(outcome.types().contains(&"response.mcp_list_tools.failed"));
    let list = serde_json::to_value(&outcome.response().output[0]).unwrap();
    assert!(
        list["error"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );
    let last = outcome.requests[0].input.last().unwrap();
    assert!(
        matches!(last, Item::Message(m) if m.role == Role::Developer),
        "the model is told: {last:?}"
    );
    assert_eq!(outcome.response().status.as_str(), "completed");
}

#[tokio::test]
async fn a_tool_error_is_reported_to_the_model() {
    let outcome = drive(
        serde_json::json!({"input": "go", "tools": [calc(never())]}),
        vec![
            vec![call(0, "calc__fail", "{}"), finish(FinishReason::ToolCalls)],
            vec![text("it failed"), finish(FinishReason::Stop)],
        ],
        EngineConfig::default(),
    )
    .await;
    assert!(outcome.types().contains(&"response.mcp_call.failed"));
    let call = serde_json::to_value(&outcome.response().output[1]).unwrap();
    assert_eq!(call["status"], "failed");
    assert_eq!(call["error"]["type"], "mcp_tool_execution_error");
    assert_eq!(
        input_lines(&outcome.requests[1]).last().unwrap(),
        "output Error: fail says {}"
    );
}

#[tokio::test]
async fn history_sent_back_whole_does_not_run_an_approved_call_again() {
    let mut input = answered(true);
    let history = input.as_array_mut().unwrap();
    history.push(
        serde_json::json!({"type": "mcp_call", "id": "mcp_1", "server_label": "calc",
        "name": "add", "arguments": "{\"a\":1,\"b\":2}", "output": "3",
        "approval_request_id": "mcpr_1", "status": "completed"}),
    );
    history.push(serde_json::json!({"role": "assistant", "content": "It is 3."}));
    history.push(serde_json::json!({"role": "user", "content": "thanks"}));
    let outcome = drive(
        serde_json::json!({"input": input, "tools": [calc(serde_json::json!({}))]}),
        vec![vec![text("you are welcome"), finish(FinishReason::Stop)]],
        EngineConfig::default(),
    )
    .await;
    assert!(outcome.mcp.calls.lock().unwrap().is_empty(), "ran before");
    assert_eq!(outcome.output_types(), ["message"]);
}

#[tokio::test]
async fn text_after_a_client_call_still_hands_the_call_back() {
    let outcome = drive(
        serde_json::json!({"input": "go", "tools": [
            {"type": "function", "name": "lookup"}, calc(never())]}),
        vec![vec![
            call(0, "lookup", "{}"),
            call(1, "calc__echo", "{}"),
            text("let me check"),
            finish(FinishReason::ToolCalls),
        ]],
        EngineConfig::default(),
    )
    .await;
    assert_eq!(outcome.requests.len(), 1, "the client must answer first");
    assert_eq!(
        outcome.output_types(),
        ["mcp_list_tools", "function_call", "mcp_call", "message"]
    );
}

#[tokio::test]
async fn approved_calls_count_against_max_tool_calls() {
    let mut input = answered(true);
    let history = input.as_array_mut().unwrap();
    history.insert(
        3,
        serde_json::json!({"type": "mcp_approval_request", "id": "mcpr_2", "server_label": "calc",
            "name": "echo", "arguments": "{}"}),
    );
    history.push(serde_json::json!({"type": "mcp_approval_response",
        "approval_request_id": "mcpr_2", "approve": true}));
    let outcome = drive(
        serde_json::json!({"input": input, "max_tool_calls": 1, "tools": [calc(serde_json::json!({}))]}),
        Vec::new(),
        EngineConfig::default(),
    )
    .await;
    assert_eq!(outcome.mcp.calls.lock().unwrap().len(), 1);
    assert!(outcome.requests.is_empty(), "the model is not asked");
    let response = serde_json::to_value(outcome.response()).unwrap();
    assert_eq!(response["incomplete_details"]["reason"], "max_tool_calls");
}

#[tokio::test]
async fn a_turn_without_a_finish_files_its_calls_before_failing() {
    let outcome = drive(
        serde_json::json!({"input": "go", "tools": [calc(never())]}),
        vec![vec![call(0, "calc__add", "{}")]],
        EngineConfig::default(),
    )
    .await;
    let added = outcome
        .events
        .iter()
        .filter(|e| matches!(e.data, EventData::OutputItemAdded { .. }))
        .count();
    let done = outcome
        .events
        .iter()
        .filter(|e| matches!(e.data, EventData::OutputItemDone { .. }))
        .count();
    assert_eq!(added, done, "every added item is done");
    assert_eq!(outcome.response().status.as_str(), "failed");
    assert_eq!(outcome.output_types(), ["mcp_list_tools", "mcp_call"]);
    assert!(outcome.mcp.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn every_turn_is_fitted_into_the_context_window() {
    let long = format!(r#"{{"text":"{}"}}"#, "word ".repeat(400));
    let outcome = drive(
        serde_json::json!({"input": "go", "tools": [calc(never())]}),
        vec![
            vec![
                call(0, "calc__echo", &long),
                finish(FinishReason::ToolCalls),
            ],
            vec![text("never asked"), finish(FinishReason::Stop)],
        ],
        EngineConfig {
            context_window: 600,
            ..EngineConfig::default()
        },
    )
    .await;
    assert_eq!(outcome.requests.len(), 1, "the second turn does not fit");
    let response = serde_json::to_value(outcome.response()).unwrap();
    assert_eq!(response["status"], "failed");
    assert_eq!(response["error"]["code"], "context_length_exceeded");
    assert_eq!(response["output"][1]["status"], "completed", "the call ran");
}
