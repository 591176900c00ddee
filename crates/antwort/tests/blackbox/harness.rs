//! The black-box harness: the real server (the same `serve` the binary runs) on a
//! random loopback port in front of the real mock backend, an HTTP client, an SSE
//! reader that keeps the raw framing, and the OpenResponses schema validator.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use antwort::Config;
use antwort_mock::Stats;
use serde_json::{Value, json};

pub struct Gateway {
    /// Base URL of the gateway, without `/v1`.
    pub url: String,
    /// Base URL of the mock, without `/v1`: its MCP servers live here.
    pub mock_url: String,
    pub mock_stats: Arc<Stats>,
    /// The mock's fault and model controls.
    pub mock: Arc<antwort_mock::control::Control>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Sends the gateway its shutdown signal (as SIGTERM does) and returns the
    /// task that serves, which ends once the drain is over.
    pub fn shut_down(&mut self) -> tokio::task::JoinHandle<()> {
        drop(self.shutdown.take());
        self.served.take().expect("shut down once")
    }
}

/// Starts a mock and a gateway in front of it, with test-friendly settings.
pub async fn start() -> Gateway {
    start_with(|_| {}).await
}

/// The protocol the gateway speaks to the mock: Chat Completions, or with
/// `ANTWORT_TEST_BACKEND_PROTOCOL=responses` the Responses API (the suite
/// runs both ways: the same features must work on both).
pub fn backend_protocol() -> antwort::config::Protocol {
    match std::env::var("ANTWORT_TEST_BACKEND_PROTOCOL").as_deref() {
        Ok("responses") => antwort::config::Protocol::Responses,
        Ok("chat_completions") | Err(_) => antwort::config::Protocol::ChatCompletions,
        Ok(other) => panic!("ANTWORT_TEST_BACKEND_PROTOCOL={other}: chat_completions or responses"),
    }
}

/// Whether the gateway speaks Chat Completions to the mock (tests of that
/// translation's wire details run only then).
pub fn over_chat() -> bool {
    backend_protocol() == antwort::config::Protocol::ChatCompletions
}

pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Gateway {
    let mock = antwort_mock::start(antwort_mock::MockOptions::default())
        .await
        .unwrap();
    let (mock_url, mock_stats) = (mock.url.clone(), mock.stats.clone());
    let mock_root = mock.root.clone();
    let mut config = Config::default();
    config.engine.backend_url = Some(mock_url.into());
    config.engine.provider = match backend_protocol() {
        antwort::config::Protocol::Responses => antwort::config::Provider::Responses,
        antwort::config::Protocol::ChatCompletions => antwort::config::Provider::Vllm,
    };
    // The test MCP servers are on loopback; the policy test turns this off again.
    config.mcp.url_policy.allow_loopback = true;
    config.engine.default_model = Some("mock-model".into());
    config.server.keepalive_interval = Duration::from_millis(100);
    config.storage.kind = antwort::config::StorageKind::Memory;
    adjust(&mut config);
    config.validate().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        antwort::serve(&config, listener, async {
            let _ = stop.await;
        })
        .await
        .unwrap();
    });
    Gateway {
        url,
        mock_url: mock_root,
        mock_stats,
        mock: mock.control,
        shutdown: Some(shutdown),
        served: Some(served),
    }
}

/// Where a gateway under test keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Sqlite,
    Postgres,
}

/// The stores a storage test runs on: SQLite, and PostgreSQL unless
/// `ANTWORT_TEST_POSTGRES=skip` leaves it out (and says so).
pub fn storages() -> Vec<Storage> {
    if std::env::var("ANTWORT_TEST_POSTGRES").as_deref() == Ok("skip") {
        eprintln!("!!! PostgreSQL black-box runs SKIPPED (ANTWORT_TEST_POSTGRES=skip) !!!");
        return vec![Storage::Sqlite];
    }
    vec![Storage::Sqlite, Storage::Postgres]
}

/// A gateway on a fresh store of `storage` (see [`StoreTarget`]).
pub async fn start_on(storage: Storage, adjust: impl FnOnce(&mut Config)) -> Gateway {
    let target = StoreTarget::new(storage).await;
    start_with(|config| {
        target.apply(config);
        adjust(config);
    })
    .await
}

/// A store gateways can be started on, one after the other: a SQLite file, or
/// PostgreSQL (127.0.0.1:5432, or `ANTWORT_TEST_POSTGRES_URL`) in a fresh schema,
/// which `scripts/test.sh` clears away with the storage suite's.
#[derive(Debug, Clone)]
pub struct StoreTarget {
    kind: antwort::config::StorageKind,
    dsn: String,
}

impl StoreTarget {
    pub async fn new(storage: Storage) -> Self {
        match storage {
            Storage::Sqlite => Self {
                kind: antwort::config::StorageKind::Sqlite,
                dsn: std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                    .join(format!("{}.db", unique_name("blackbox")))
                    .to_string_lossy()
                    .into_owned(),
            },
            Storage::Postgres => Self {
                kind: antwort::config::StorageKind::Postgres,
                dsn: postgres_schema().await,
            },
        }
    }

    pub fn apply(&self, config: &mut Config) {
        config.storage.kind = self.kind;
        config.storage.dsn = Some(antwort::config::Dsn::new(self.dsn.clone()));
    }
}

fn unique_name(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

async fn postgres_schema() -> String {
    use sqlx::Connection;
    let base = std::env::var("ANTWORT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = unique_name("t_bb");
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {base}: {e}. Start it (.ci/run does), point \
             ANTWORT_TEST_POSTGRES_URL at one, or set ANTWORT_TEST_POSTGRES=skip."
            )
        });
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    format!("{base}?options=-c%20search_path%3D{schema}")
}

pub fn client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            antwort_egress::client_builder(Duration::from_secs(10))
                .build()
                .unwrap()
        })
        .clone()
}

/// An HTTP answer, body parsed as JSON when it is JSON.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Gateway {
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(path, body.to_string(), "application/json")
            .await
    }

    pub async fn post_raw(&self, path: &str, body: String, content_type: &str) -> Answer {
        let response = client()
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        answer(
            client()
                .get(format!("{}{path}", self.url))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A non-streaming create that must succeed; the response is schema-checked.
    pub async fn create(&self, body: Value) -> Value {
        let answer = self.post("/v1/responses", &body).await;
        assert_eq!(answer.status, 200, "create failed: {}", answer.body);
        spec().check("ResponseResource", &answer.body);
        answer.body
    }

    /// A streaming create; every event is checked against the grammar and the schema.
    pub async fn stream(&self, body: Value) -> Sse {
        self.stream_with_headers(body, &[]).await
    }

    /// [`Gateway::stream`] with request headers (a client identifying itself).
    pub async fn stream_with_headers(&self, mut body: Value, headers: &[(&str, &str)]) -> Sse {
        body["stream"] = json!(true);
        let mut request = client().post(format!("{}/v1/responses", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let raw = response.text().await.unwrap();
        let sse = Sse::parse(&raw);
        sse.check_grammar();
        sse
    }
}

/// Starts a streamed create at `url`, reads until the first text delta, then leaves
/// (drops the connection) as a client that goes away would. Returns the response id.
pub async fn stream_then_leave(url: &str, mut body: Value) -> String {
    use futures::StreamExt;
    body["stream"] = json!(true);
    let response = client()
        .post(format!("{url}/v1/responses"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let mut received = String::new();
    while !received.contains("response.output_text.delta") {
        received.push_str(&String::from_utf8_lossy(
            &stream.next().await.unwrap().unwrap(),
        ));
    }
    drop(stream);
    // The first event, response.created, carries the response id first.
    received
        .split("\"id\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned()
}

/// A request with `key` as its bearer credential (none when `None`).
pub async fn call(
    url: &str,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut request = client().request(method, format!("{url}{path}"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    answer(request.send().await.unwrap()).await
}

/// An `auth.api_keys` entry.
pub fn api_key(
    key: &str,
    tenant: &str,
    subject: &str,
    scopes: &[&str],
) -> antwort::config::ApiKeySection {
    antwort::config::ApiKeySection {
        key: Some(antwort::config::Secret::new(key)),
        key_file: None,
        subject: subject.to_owned(),
        tenant_id: tenant.to_owned(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        service_tier: None,
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

/// A whole SSE body: its events (name and JSON), comments, and whether `[DONE]` ended it.
pub struct Sse {
    pub raw: String,
    pub events: Vec<(String, Value)>,
    pub comments: usize,
    pub done_last: bool,
}

impl Sse {
    fn parse(raw: &str) -> Self {
        let mut events = Vec::new();
        let mut comments = 0;
        let mut done_last = false;
        for block in raw.split("\n\n").filter(|b| !b.trim().is_empty()) {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if line.starts_with(':') {
                    comments += 1;
                } else if let Some(value) = line.strip_prefix("event:") {
                    name = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim_start());
                }
            }
            assert!(!done_last, "nothing may follow data: [DONE]");
            if data == "[DONE]" {
                done_last = true;
            } else if !data.is_empty() {
                let value: Value = serde_json::from_str(&data).unwrap();
                events.push((name.expect("every event has an event: line"), value));
            }
        }
        Self {
            raw: raw.to_owned(),
            events,
            comments,
            done_last,
        }
    }

    /// A WebSocket turn's events (no `[DONE]` there: the terminal event ends
    /// it), held to the same grammar and schemas as an SSE stream. Each must
    /// carry `stream_id` when given, which is then taken off for the schemas.
    pub fn from_socket(mut events: Vec<Value>, stream_id: Option<&str>) -> Self {
        for event in &mut events {
            let object = event.as_object_mut().unwrap();
            let lane = object.remove("stream_id");
            assert_eq!(
                lane.as_ref().and_then(Value::as_str),
                stream_id,
                "every event carries its turn's stream_id: {event}"
            );
        }
        let sse = Self {
            raw: String::new(),
            events: events
                .into_iter()
                .map(|event| (event["type"].as_str().unwrap().to_owned(), event))
                .collect(),
            comments: 0,
            done_last: true,
        };
        sse.check_grammar();
        sse
    }

    pub fn types(&self) -> Vec<&str> {
        self.events
            .iter()
            .map(|(_, e)| e["type"].as_str().unwrap())
            .collect()
    }

    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.events
            .iter()
            .map(|(_, e)| e)
            .filter(|e| e["type"] == kind)
            .collect()
    }

    /// The response carried by the terminal event.
    pub fn final_response(&self) -> &Value {
        &self.events.last().unwrap().1["response"]
    }

    /// The grammar every stream obeys, whatever it carries.
    fn check_grammar(&self) {
        assert!(self.done_last, "the stream ends with data: [DONE]");
        let types = self.types();
        assert_eq!(types[0], "response.created");
        assert_eq!(types[1], "response.in_progress");
        let terminals = [
            "response.completed",
            "response.incomplete",
            "response.failed",
        ];
        assert_eq!(
            types.iter().filter(|t| terminals.contains(t)).count(),
            1,
            "{types:?}"
        );
        assert!(
            terminals.contains(types.last().unwrap()),
            "terminal event last: {types:?}"
        );
        // A cancelled response ends failed, but nothing went wrong: no `error`.
        if *types.last().unwrap() == "response.failed"
            && self.final_response()["status"] != "cancelled"
        {
            assert_eq!(
                types[types.len() - 2],
                "error",
                "failed is preceded by error"
            );
        }
        let output = self.final_response()["output"].as_array().unwrap().clone();
        let mut text_deltas: HashMap<(String, u64), String> = HashMap::new();
        let mut argument_deltas: HashMap<String, String> = HashMap::new();
        let mut summary_deltas: HashMap<String, String> = HashMap::new();
        let mut added = Vec::new();
        for (index, (name, event)) in self.events.iter().enumerate() {
            assert_eq!(
                name,
                event["type"].as_str().unwrap(),
                "event: equals the JSON type"
            );
            assert_eq!(
                event["sequence_number"], index as u64,
                "sequence numbers 0, 1, 2, ..."
            );
            spec().check_event(event);
            let item_key = || {
                (
                    event["item_id"].as_str().unwrap().to_owned(),
                    event["content_index"].as_u64().unwrap_or(0),
                )
            };
            match name.as_str() {
                "response.output_item.added" => added.push(event["output_index"].as_u64().unwrap()),
                "response.output_item.done" => {
                    let position = event["output_index"].as_u64().unwrap() as usize;
                    assert_eq!(
                        output[position], event["item"],
                        "output_index is the final position"
                    );
                }
                "response.reasoning_summary_text.delta" => {
                    summary_deltas
                        .entry(event["item_id"].as_str().unwrap().to_owned())
                        .or_default()
                        .push_str(event["delta"].as_str().unwrap());
                }
                "response.reasoning_summary_text.done" => {
                    let all = summary_deltas
                        .get(event["item_id"].as_str().unwrap())
                        .cloned()
                        .unwrap_or_default();
                    assert_eq!(
                        event["text"],
                        all.as_str(),
                        "summary .done carries the text"
                    );
                }
                "response.output_text.delta"
                | "response.reasoning.delta"
                | "response.reasoning_text.delta"
                | "response.refusal.delta" => {
                    text_deltas
                        .entry(item_key())
                        .or_default()
                        .push_str(event["delta"].as_str().unwrap());
                }
                "response.output_text.done"
                | "response.reasoning.done"
                | "response.reasoning_text.done" => {
                    let all = text_deltas.get(&item_key()).cloned().unwrap_or_default();
                    assert_eq!(
                        event["text"],
                        all.as_str(),
                        ".done carries the accumulated text"
                    );
                }
                "response.refusal.done" => {
                    let all = text_deltas.get(&item_key()).cloned().unwrap_or_default();
                    assert_eq!(event["refusal"], all.as_str());
                }
                "response.mcp_call_arguments.delta" => {
                    argument_deltas
                        .entry(event["item_id"].as_str().unwrap().to_owned())
                        .or_default()
                        .push_str(event["delta"].as_str().unwrap());
                }
                "response.mcp_call_arguments.done" => {
                    let all = argument_deltas
                        .get(event["item_id"].as_str().unwrap())
                        .cloned()
                        .unwrap_or_default();
                    assert_eq!(event["arguments"], all.as_str());
                }
                "response.function_call_arguments.delta" => {
                    argument_deltas
                        .entry(event["item_id"].as_str().unwrap().to_owned())
                        .or_default()
                        .push_str(event["delta"].as_str().unwrap());
                }
                "response.function_call_arguments.done" => {
                    let all = argument_deltas
                        .get(event["item_id"].as_str().unwrap())
                        .cloned()
                        .unwrap_or_default();
                    assert_eq!(event["arguments"], all.as_str());
                }
                _ => {}
            }
        }
        let expected: Vec<u64> = (0..added.len() as u64).collect();
        assert_eq!(
            added, expected,
            "items are added at consecutive output indices"
        );
        assert_eq!(
            output.len(),
            added.len(),
            "every added item is in the final output"
        );
    }
}

/// The OpenResponses schema, compiled once.
pub struct Spec {
    validators: HashMap<String, jsonschema::Validator>,
    /// Event `type` → schema name.
    event_schemas: HashMap<String, String>,
}

pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(Spec::load)
}

/// The OpenResponses document defines no MCP items or events; the OpenAI API does.
/// These schemas follow the official `openai` Python package's types
/// (`openai/types/responses/`): the `mcp` tool, `McpListTools`, `McpCall`,
/// `McpApprovalRequest` and the `response.mcp_*` events. They join the tool and
/// output item unions and the events. An echoed `mcp` tool must not carry its
/// secrets (`headers`, `authorization`).
fn add_openai_mcp_schemas(document: &mut Value) {
    let nullable_string = json!({"anyOf": [{"type": "string"}, {"type": "null"}]});
    let schemas = &mut document["components"]["schemas"];
    schemas["McpListTools"] = json!({
        "type": "object",
        "required": ["type", "id", "server_label", "tools"],
        "properties": {
            "type": {"enum": ["mcp_list_tools"]},
            "id": {"type": "string"},
            "server_label": {"type": "string"},
            "error": nullable_string,
            "tools": {"type": "array", "items": {
                "type": "object",
                "required": ["name", "input_schema"],
                "properties": {
                    "name": {"type": "string"},
                    "description": nullable_string,
                    "input_schema": {},
                    "annotations": {},
                },
            }},
        },
    });
    schemas["McpCall"] = json!({
        "type": "object",
        "required": ["type", "id", "server_label", "name", "arguments"],
        "properties": {
            "type": {"enum": ["mcp_call"]},
            "id": {"type": "string"},
            "server_label": {"type": "string"},
            "name": {"type": "string"},
            "arguments": {"type": "string"},
            "output": nullable_string,
            "approval_request_id": nullable_string,
            "status": {"enum": ["in_progress", "completed", "incomplete", "calling", "failed"]},
            "error": {"oneOf": [
                {"type": "null"},
                {"type": "object", "required": ["type", "code", "message"], "properties": {
                    "type": {"enum": ["mcp_protocol_error"]}, "code": {"type": "integer"},
                    "message": {"type": "string"}}},
                {"type": "object", "required": ["type", "content"], "properties": {
                    "type": {"enum": ["mcp_tool_execution_error"]}}},
                {"type": "object", "required": ["type", "code", "message"], "properties": {
                    "type": {"enum": ["http_error"]}, "code": {"type": "integer"},
                    "message": {"type": "string"}}},
            ]},
        },
    });
    schemas["McpApprovalRequest"] = json!({
        "type": "object",
        "required": ["type", "id", "server_label", "name", "arguments"],
        "properties": {
            "type": {"enum": ["mcp_approval_request"]},
            "id": {"type": "string"},
            "server_label": {"type": "string"},
            "name": {"type": "string"},
            "arguments": {"type": "string"},
        },
    });
    schemas["McpTool"] = json!({
        "type": "object",
        "required": ["type", "server_label"],
        "properties": {
            "type": {"enum": ["mcp"]},
            "server_label": {"type": "string"},
            "server_url": {"type": "string"},
            "server_description": {"type": "string"},
            "allowed_tools": {},
            "require_approval": {},
        },
        "not": {"anyOf": [{"required": ["headers"]}, {"required": ["authorization"]}]},
    });
    schemas["Tool"]["oneOf"]
        .as_array_mut()
        .unwrap()
        .push(json!({"$ref": "#/components/schemas/McpTool"}));
    for name in ["McpListTools", "McpCall", "McpApprovalRequest"] {
        schemas["ItemField"]["oneOf"]
            .as_array_mut()
            .unwrap()
            .push(json!({"$ref": format!("#/components/schemas/{name}")}));
    }
    let event = |kind: &str, extra: Value| {
        let mut properties = json!({
            "type": {"enum": [kind]},
            "item_id": {"type": "string"},
            "output_index": {"type": "integer"},
            "sequence_number": {"type": "integer"},
        });
        let mut required = vec![
            json!("type"),
            json!("item_id"),
            json!("output_index"),
            json!("sequence_number"),
        ];
        for (key, schema) in extra.as_object().unwrap() {
            properties[key] = schema.clone();
            required.push(json!(key));
        }
        json!({"type": "object", "required": required, "properties": properties})
    };
    let events = [
        (
            "McpListToolsInProgress",
            "response.mcp_list_tools.in_progress",
            json!({}),
        ),
        (
            "McpListToolsCompleted",
            "response.mcp_list_tools.completed",
            json!({}),
        ),
        (
            "McpListToolsFailed",
            "response.mcp_list_tools.failed",
            json!({}),
        ),
        (
            "McpCallInProgress",
            "response.mcp_call.in_progress",
            json!({}),
        ),
        ("McpCallCompleted", "response.mcp_call.completed", json!({})),
        ("McpCallFailed", "response.mcp_call.failed", json!({})),
        (
            "McpCallArgumentsDelta",
            "response.mcp_call_arguments.delta",
            json!({"delta": {"type": "string"}}),
        ),
        (
            "McpCallArgumentsDone",
            "response.mcp_call_arguments.done",
            json!({"arguments": {"type": "string"}}),
        ),
        // OpenAI's names for the reasoning text events, which the OpenAI SDKs
        // get (OpenResponses names them `response.reasoning.*`).
        (
            "OpenAiReasoningTextDelta",
            "response.reasoning_text.delta",
            json!({"content_index": {"type": "integer"}, "delta": {"type": "string"}}),
        ),
        (
            "OpenAiReasoningTextDone",
            "response.reasoning_text.done",
            json!({"content_index": {"type": "integer"}, "text": {"type": "string"}}),
        ),
    ];
    for (name, kind, extra) in events {
        schemas[format!("{name}StreamingEvent")] = event(kind, extra);
    }
}

impl Spec {
    fn load() -> Self {
        let path = std::env::var("ANTWORT_SPEC").unwrap_or_else(|_| {
            format!(
                "{}/../../spec/openresponses-openapi.json",
                env!("CARGO_MANIFEST_DIR")
            )
        });
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the OpenResponses spec at {path}: {e}"));
        let mut document: Value = serde_json::from_str(&text).unwrap();
        // The published document says `JsonSchemaResponseFormat.schema` may only be
        // null, which loses the schema object the field exists to carry (a generator
        // bug: the request side types it as an object). Accept any value there.
        document["components"]["schemas"]["JsonSchemaResponseFormat"]["properties"]["schema"] =
            json!({});
        add_openai_mcp_schemas(&mut document);
        let schemas = document["components"]["schemas"]
            .as_object()
            .unwrap()
            .clone();
        let mut validators = HashMap::new();
        let mut event_schemas = HashMap::new();
        for (name, schema) in &schemas {
            let is_event = name.ends_with("StreamingEvent");
            if !(is_event
                || ["ResponseResource", "ErrorPayload", "CompactResource"].contains(&name.as_str()))
            {
                continue;
            }
            if is_event {
                let kind = schema["properties"]["type"]["enum"][0].as_str().unwrap();
                event_schemas.insert(kind.to_owned(), name.clone());
            }
            let mut root = document.clone();
            root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
            root["$ref"] = json!(format!("#/components/schemas/{name}"));
            validators.insert(name.clone(), jsonschema::validator_for(&root).unwrap());
        }
        Self {
            validators,
            event_schemas,
        }
    }

    /// What is wrong with `instance` under `schema`, one line per violation.
    pub fn violations(&self, schema: &str, instance: &Value) -> Vec<String> {
        self.validators[schema]
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    pub fn check(&self, schema: &str, instance: &Value) {
        let instance = &without_openai_extensions(instance);
        let errors = self.violations(schema, instance);
        assert!(
            errors.is_empty(),
            "{schema} violations:\n{}\ninstance: {instance}",
            errors.join("\n")
        );
    }

    pub fn check_event(&self, event: &Value) {
        let kind = event["type"].as_str().unwrap();
        if OPENAI_EVENT_TYPES.contains(&kind) {
            // Not in the OpenResponses schema: the test that makes one checks it.
            return;
        }
        let schema = self
            .event_schemas
            .get(kind)
            .unwrap_or_else(|| panic!("event type {kind} is not in the OpenResponses schema"));
        self.check(schema, event);
    }

    /// Every event type the schema defines.
    pub fn event_types(&self) -> impl Iterator<Item = &str> {
        self.event_schemas.keys().map(String::as_str)
    }
}

/// The text of the first output_text part of the first message in `output`.
pub fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().unwrap().iter())
        .filter(|part| part["type"] == "output_text")
        .map(|part| part["text"].as_str().unwrap())
        .collect()
}

/// The roles of the chat messages in a request the mock echoed (`[[echo_request]]`).
pub fn message_roles(sent: &Value) -> Vec<&str> {
    sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect()
}

/// Item and tool types OpenAI defines that the OpenResponses schema does not
/// (the client tools Codex CLI declares and their calls): the schema check
/// leaves them out, and the tests of `codex_tools` check their shape.
const OPENAI_TYPES: &[&str] = &[
    "custom",
    "namespace",
    "local_shell",
    "shell",
    "apply_patch",
    "custom_tool_call",
    "custom_tool_call_output",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
];

/// Their events.
const OPENAI_EVENT_TYPES: &[&str] = &[
    "response.custom_tool_call_input.delta",
    "response.custom_tool_call_input.done",
];

/// `instance` without the items and tools of [`OPENAI_TYPES`]; an event
/// about one such item (added, done) is left with an item the schema knows.
fn without_openai_extensions(instance: &Value) -> Value {
    let is_extension = |value: &Value| {
        value["type"]
            .as_str()
            .is_some_and(|kind| OPENAI_TYPES.contains(&kind))
    };
    let mut instance = instance.clone();
    let strip = |object: &mut Value| {
        for field in ["output", "tools", "input"] {
            if let Some(list) = object.get_mut(field).and_then(Value::as_array_mut) {
                list.retain(|value| !is_extension(value));
            }
        }
    };
    strip(&mut instance);
    if let Some(response) = instance.get_mut("response") {
        strip(response);
    }
    if instance.get("item").is_some_and(is_extension) {
        instance["item"] = json!({
            "type": "function_call", "id": "fc_x", "call_id": "c", "name": "n",
            "arguments": "{}", "status": "completed"
        });
    }
    instance
}
