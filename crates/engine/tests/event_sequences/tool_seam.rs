//! The server-tool seam with a tool type other than MCP: a web search double
//! plugged in with `Engine::with_tool_type` runs through the same loop,
//! catalog, assembler and replay, with nothing in them naming it.

use std::collections::VecDeque;

use antwort_api::{
    ApiError, EventData, FunctionCallItem, FunctionCallOutputItem, FunctionTool, FunctionType,
    Item, ItemStatus, MessageContent, Tool, ToolChoice, WebSearchAction, WebSearchCallItem,
    WebSearchSource, WebSearchStatus,
};
use antwort_engine::ModelToolChoice;
use antwort_engine::tool::{
    ApprovedCall, CallStart, Finished, Offer, Replay, ServerCall, ServerTool, Target, ToolType,
};

use super::agent_loop::TurnsBackend;
use super::*;

/// Declared by a request's `{"type": "web_search"}`.
struct SearchType;

impl ToolType for SearchType {
    fn kind(&self) -> &'static str {
        "web_search"
    }

    fn declare(
        &self,
        tools: &[Tool],
        _: &antwort_engine::Scope,
    ) -> Result<Option<Box<dyn ServerTool>>, ApiError> {
        let declared = tools.iter().any(|tool| tool.kind() == "web_search");
        Ok(declared.then(|| Box::new(Search) as Box<dyn ServerTool>))
    }

    fn owns(&self, item: &Item) -> bool {
        matches!(item, Item::WebSearchCall(_))
    }

    fn replay(&self, item: Item, _history: &[Item]) -> Replay {
        let Item::WebSearchCall(call) = item else {
            return Replay::Hidden;
        };
        let WebSearchAction::Search { query, .. } = call.action else {
            return Replay::Hidden;
        };
        Replay::Call {
            call: Item::FunctionCall(FunctionCallItem {
                id: None,
                call_id: call.id.clone(),
                name: "web_search".into(),
                arguments: serde_json::json!({"query": query}).to_string(),
                status: Some(ItemStatus::Completed),
                namespace: None,
            }),
            output: Item::FunctionCallOutput(FunctionCallOutputItem {
                id: None,
                call_id: call.id,
                output: MessageContent::Text("Rust: a language (https://www.rust-lang.org)".into()),
                status: Some(ItemStatus::Completed),
            }),
        }
    }
}

struct Search;

fn call_item(id: &str, status: WebSearchStatus, query: Option<String>) -> Item {
    let sources = (status == WebSearchStatus::Completed).then(|| {
        vec![WebSearchSource {
            kind: "url".into(),
            url: "https://www.rust-lang.org".into(),
        }]
    });
    Item::WebSearchCall(WebSearchCallItem {
        id: id.into(),
        status,
        action: WebSearchAction::Search { query, sources },
    })
}

#[async_trait]
impl ServerTool for Search {
    fn kind(&self) -> &'static str {
        "web_search"
    }

    fn check_choice(&self, choice: &ToolChoice) -> Result<bool, ApiError> {
        Ok(matches!(choice, ToolChoice::Hosted { kind } if kind == "web_search"))
    }

    fn read_context(&mut self, _: &[Item], _: usize) -> Result<Vec<ApprovedCall>, ApiError> {
        Ok(Vec::new())
    }

    fn offers(&self, _: &ToolChoice) -> Vec<Offer> {
        vec![Offer {
            function: FunctionTool {
                kind: FunctionType::Function,
                name: "web_search".into(),
                description: Some("Search the web".into()),
                parameters: Some(serde_json::json!({"type": "object",
                    "properties": {"query": {"type": "string"}}})),
                strict: None,
            },
            target: Target {
                label: "search".into(),
                name: "web_search".into(),
            },
            approval: false,
        }]
    }

    fn forced_choice(&self, choice: &ToolChoice, _: &[&Offer]) -> Option<ModelToolChoice> {
        matches!(choice, ToolChoice::Hosted { kind } if kind == "web_search")
            .then(|| ModelToolChoice::Function("web_search".into()))
    }

    fn new_item_id(&self, _: bool) -> String {
        "ws_1".into()
    }

    fn start(&self, call: &CallStart<'_>) -> (Item, Vec<EventData>) {
        let item = call_item(call.item_id, WebSearchStatus::InProgress, None);
        let started = EventData::WebSearchCallInProgress {
            item_id: call.item_id.into(),
            output_index: call.output_index,
        };
        (item, vec![started])
    }

    fn argument_delta(&self, _: &CallStart<'_>, _: String) -> Option<EventData> {
        None
    }

    fn arguments_done(&self, call: &CallStart<'_>, _: &str) -> (Option<EventData>, Option<Item>) {
        let searching = EventData::WebSearchCallSearching {
            item_id: call.item_id.into(),
            output_index: call.output_index,
        };
        (Some(searching), None)
    }

    async fn run(&self, call: &ServerCall) -> Finished {
        let arguments: Value = serde_json::from_str(&call.arguments).unwrap_or_default();
        let query = arguments["query"].as_str().map(str::to_owned);
        Finished {
            events: vec![EventData::WebSearchCallCompleted {
                item_id: call.item_id.clone(),
                output_index: call.output_index,
            }],
            item: call_item(&call.item_id, WebSearchStatus::Completed, query),
            annotations: vec![serde_json::json!({"type": "url_citation",
                "url": "https://www.rust-lang.org", "title": "Rust",
                "start_index": 0, "end_index": 4})],
        }
    }

    fn skip(&self, call: &ServerCall, _: &str) -> Item {
        call_item(&call.item_id, WebSearchStatus::Incomplete, None)
    }
}

/// An engine (with MCP only) over a backend that plays `turns`.
fn engine_with(turns: Vec<Vec<Result<ModelEvent, BackendError>>>) -> (Engine, Arc<TurnsBackend>) {
    let backend = Arc::new(TurnsBackend {
        turns: Mutex::new(VecDeque::from(turns)),
        seen: Mutex::new(Vec::new()),
    });
    let engine = Engine::new(
        Backends::single("test", backend.clone()),
        Stores::responses_only(Arc::new(RecordingStore::default())),
        EngineConfig {
            default_model: Some("m".into()),
            ..EngineConfig::default()
        },
    );
    (engine, backend)
}

#[tokio::test]
async fn a_new_tool_type_plugs_into_the_loop_through_the_seam() {
    let (engine, backend) = engine_with(vec![
        vec![
            Ok(ModelEvent::ToolCallDelta {
                index: 0,
                id: Some("call_1".into()),
                name: Some("web_search".into()),
                arguments: r#"{"query":"rust"}"#.into(),
            }),
            finish(FinishReason::ToolCalls),
        ],
        vec![text("Rust is a language."), finish(FinishReason::Stop)],
    ]);
    let engine = engine.with_tool_type(Arc::new(SearchType));
    let request = CreateResponseRequest::from_json(
        br#"{"input": "what is rust?", "tools": [{"type": "web_search"}]}"#,
    )
    .unwrap();
    let started = engine.create(&Scope::default(), request).await.unwrap();
    assert!(started.skipped_tools.is_empty(), "a tool type runs it");
    let events: Vec<_> = started.events().collect().await;
    check_grammar(&events);
    let types: Vec<&str> = events.iter().map(|e| e.data.type_name()).collect();
    for expected in [
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_text.annotation.added",
    ] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    let response = events.last().unwrap().data.terminal_response().unwrap();
    let output = serde_json::to_value(&response.output).unwrap();
    assert_eq!(output[0]["type"], "web_search_call");
    assert_eq!(output[0]["status"], "completed");
    assert_eq!(output[0]["action"]["query"], "rust");
    assert_eq!(output[1]["content"][0]["text"], "Rust is a language.");
    assert_eq!(
        output[1]["content"][0]["annotations"][0]["url"], "https://www.rust-lang.org",
        "the result's citation joins the answer"
    );
    let seen = backend.seen.lock().unwrap();
    assert_eq!(seen[0].tools[0].name, "web_search", "offered to the model");
    let second = serde_json::to_value(&seen[1].input).unwrap();
    let replayed: Vec<&str> = second
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["type"].as_str().unwrap_or("message"))
        .collect();
    assert_eq!(
        replayed,
        ["message", "function_call", "function_call_output"],
        "the model sees the search as a call and its result"
    );
}

#[tokio::test]
async fn a_hosted_tool_choice_forces_the_tool_type_that_runs_it() {
    let (engine, backend) = engine_with(vec![vec![
        text("no search needed"),
        finish(FinishReason::Stop),
    ]]);
    let body = br#"{"input": "hi", "store": false, "tools": [{"type": "function", "name": "f"}, {"type": "web_search"}], "tool_choice": {"type": "web_search"}}"#;
    let unrun = engine
        .create(
            &Scope::default(),
            CreateResponseRequest::from_json(body).unwrap(),
        )
        .await
        .err()
        .expect("no tool type runs web_search here");
    assert_eq!(unrun.param.as_deref(), Some("tool_choice"));
    let engine = engine.with_tool_type(Arc::new(SearchType));
    let started = engine
        .create(
            &Scope::default(),
            CreateResponseRequest::from_json(body).unwrap(),
        )
        .await
        .unwrap();
    let _: Vec<_> = started.events().collect().await;
    let seen = backend.seen.lock().unwrap();
    assert_eq!(
        seen[0].tool_choice,
        ModelToolChoice::Function("web_search".into())
    );
    let offered: Vec<&str> = seen[0].tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(offered, ["web_search"], "a forced type offers only itself");
}
