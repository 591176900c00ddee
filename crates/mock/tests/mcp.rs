//! Drives the mock's MCP servers as the gateway will: `/mcp` with the rmcp client,
//! `/sse` by hand at the wire level (rmcp no longer has a client for it), and
//! `/mcp-auth` with tokens from `/oauth/token`. Each test starts its own mock on a
//! free loopback port, so the counters it reads are its own.

#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn, time and read rows directly; the funnels are for the product code"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a panic is the failure report"
)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use antwort_mock::{Latency, Stats};
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

/// Starts a mock and returns its root URL (without `/v1`) and its counters.
async fn start() -> (String, Arc<Stats>) {
    let (base, stats) = antwort_mock::spawn(Latency::default()).await.unwrap();
    let root = base.strip_suffix("/v1").unwrap().to_owned();
    (root, stats)
}

/// A plain HTTP client from the workspace's one client stack (which installs the
/// crypto provider reqwest is built without).
fn http() -> reqwest::Client {
    antwort_egress::client_builder(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn connect(url: String, token: Option<&str>) -> RunningService<RoleClient, ()> {
    // rmcp's reqwest 0.13 has no crypto provider of its own, even for plain HTTP;
    // installing one fails harmlessly once another test has.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

async fn call(
    client: &RunningService<RoleClient, ()>,
    name: &'static str,
    args: Value,
) -> CallToolResult {
    let params = CallToolRequestParams::new(name).with_arguments(args.as_object().unwrap().clone());
    client.call_tool(params).await.unwrap()
}

fn text(result: &CallToolResult) -> &str {
    &result.content[0].as_text().unwrap().text
}

#[tokio::test]
async fn streamable_http_lists_and_calls_tools() {
    let (root, stats) = start().await;
    let client = connect(format!("{root}/mcp"), None).await;

    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, ["add", "big", "echo", "fail", "sleep"]);
    for tool in &tools {
        assert!(
            tool.description.is_some(),
            "{} has no description",
            tool.name
        );
        assert_eq!(tool.input_schema.get("type"), Some(&json!("object")));
    }
    let add = tools.iter().find(|t| t.name == "add").unwrap();
    assert_eq!(add.annotations.as_ref().unwrap().read_only_hint, Some(true));
    let properties = add.input_schema.get("properties").unwrap();
    assert_eq!(properties["a"]["type"], "number");
    assert_eq!(properties["b"]["type"], "number");
    let sleep = tools.iter().find(|t| t.name == "sleep").unwrap();
    assert_eq!(sleep.input_schema["properties"]["ms"]["type"], "integer");

    let sum = call(&client, "add", json!({"a": 1, "b": 2})).await;
    assert_eq!(text(&sum), "3");
    assert_ne!(sum.is_error, Some(true));
    assert_eq!(
        text(&call(&client, "add", json!({"a": 1.5, "b": 1})).await),
        "2.5"
    );
    assert_eq!(
        text(&call(&client, "echo", json!({"text": "héllo"})).await),
        "héllo"
    );
    let failed = call(&client, "fail", json!({})).await;
    assert_eq!(failed.is_error, Some(true));
    assert_eq!(text(&failed), "the tool failed on purpose");
    assert_eq!(
        text(&call(&client, "sleep", json!({"ms": 1})).await),
        "slept 1ms"
    );
    assert_eq!(
        text(&call(&client, "big", json!({"bytes": 5})).await),
        "xxxxx"
    );

    assert_eq!(stats.mcp_list_tools.load(Ordering::SeqCst), 1);
    assert_eq!(stats.mcp_tool_calls.load(Ordering::SeqCst), 6);
    let reported: Value = reqwest::get(format!("{root}/mock/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reported["mcp_list_tools"], 1);
    assert_eq!(reported["mcp_tool_calls"], 6);
    assert_eq!(reported["oauth_tokens_issued"], 0);
    client.cancel().await.unwrap();
}

/// Reads events until the `message` answering request `id`, skipping notifications.
async fn answer<S, E>(events: &mut S, id: u64) -> Value
where
    S: Stream<Item = Result<eventsource_stream::Event, E>> + Unpin,
    E: std::fmt::Debug,
{
    loop {
        let event = events.next().await.unwrap().unwrap();
        assert_eq!(event.event, "message");
        let message: Value = serde_json::from_str(&event.data).unwrap();
        if message["id"] == id {
            return message;
        }
    }
}

#[tokio::test]
async fn legacy_sse_transport_speaks_2024_11_05() {
    let (root, stats) = start().await;
    let http = http();
    let stream = http
        .get(format!("{root}/sse"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = stream.bytes_stream().eventsource();

    let endpoint = events.next().await.unwrap().unwrap();
    assert_eq!(endpoint.event, "endpoint");
    assert!(
        endpoint.data.starts_with("/sse/message?sessionId="),
        "{}",
        endpoint.data
    );
    let post_url = format!("{root}{}", endpoint.data);
    let post = |body: Value| {
        let request = http.post(&post_url).json(&body);
        async move { request.send().await.unwrap().status() }
    };

    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    assert_eq!(post(initialize).await, 202);
    let initialized = answer(&mut events, 1).await;
    assert_eq!(initialized["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(initialized["result"]["serverInfo"]["name"], "antwort-mock");
    assert!(initialized["result"]["capabilities"]["tools"].is_object());
    assert_eq!(
        post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await,
        202
    );

    assert_eq!(
        post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await,
        202
    );
    let listed = answer(&mut events, 2).await;
    let tools = listed["result"]["tools"].as_array().unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["add", "big", "echo", "fail", "sleep"]);
    let add = tools.iter().find(|t| t["name"] == "add").unwrap();
    assert_eq!(add["annotations"]["readOnlyHint"], true);
    assert_eq!(add["inputSchema"]["properties"]["a"]["type"], "number");

    let call = |id: u64, name: &str, arguments: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": name, "arguments": arguments}})
    };
    assert_eq!(post(call(3, "add", json!({"a": 1, "b": 2}))).await, 202);
    assert_eq!(
        answer(&mut events, 3).await["result"]["content"][0]["text"],
        "3"
    );
    // A batch, which 2024-11-05 allowed: both answers arrive on the stream.
    let batch = json!([
        call(4, "fail", json!({})),
        call(5, "echo", json!({"text": "hi"}))
    ]);
    assert_eq!(post(batch).await, 202);
    let failed = answer(&mut events, 4).await;
    assert_eq!(failed["result"]["isError"], true);
    assert_eq!(
        failed["result"]["content"][0]["text"],
        "the tool failed on purpose"
    );
    assert_eq!(
        answer(&mut events, 5).await["result"]["content"][0]["text"],
        "hi"
    );

    assert_eq!(stats.mcp_list_tools.load(Ordering::SeqCst), 1);
    assert_eq!(stats.mcp_tool_calls.load(Ordering::SeqCst), 3);

    let status = |response: reqwest::Response| response.status();
    let unknown = http
        .post(format!("{root}/sse/message?sessionId=nope"))
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status(unknown), 404);
    let garbage = http.post(&post_url).body("not json").send().await.unwrap();
    assert_eq!(status(garbage), 400);
    let no_session = http
        .post(format!("{root}/sse/message"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(status(no_session), 400);
}

/// Asks `/oauth/token` for a token with the form (or HTTP Basic) credentials.
async fn token_response(
    root: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut request = http().post(format!("{root}/oauth/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap()
}

/// Posts an `initialize` to `/mcp-auth` with `token` and returns the status.
async fn initialize_status(root: &str, token: Option<&str>) -> (u16, Option<Value>) {
    let mut request = http()
        .post(format!("{root}/mcp-auth"))
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}),
        );
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 401 {
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        return (status, Some(response.json().await.unwrap()));
    }
    (status, None)
}

#[tokio::test]
async fn auth_requires_a_static_or_issued_token() {
    let (root, stats) = start().await;

    let (status, body) = initialize_status(&root, None).await;
    assert_eq!(status, 401);
    assert_eq!(body.unwrap()["error"], "invalid_token");
    assert_eq!(initialize_status(&root, Some("wrong")).await.0, 401);
    assert_eq!(initialize_status(&root, Some("static-token")).await.0, 200);

    let client = connect(format!("{root}/mcp-auth"), Some("static-token")).await;
    assert_eq!(client.list_all_tools().await.unwrap().len(), 5);
    client.cancel().await.unwrap();

    let credentials = [
        ("grant_type", "client_credentials"),
        ("client_id", "antwort"),
        ("client_secret", "s3cret"),
        ("scope", "tools"),
    ];
    let issued = token_response(&root, &credentials, None).await;
    assert_eq!(issued.status(), 200);
    let issued: Value = issued.json().await.unwrap();
    assert_eq!(issued["access_token"], "oauth-1");
    assert_eq!(issued["token_type"], "Bearer");
    assert_eq!(issued["expires_in"], 3600);
    assert_eq!(stats.oauth_tokens_issued.load(Ordering::SeqCst), 1);

    let token = issued["access_token"].as_str().unwrap();
    let client = connect(format!("{root}/mcp-auth"), Some(token)).await;
    let sum = call(&client, "add", json!({"a": 2, "b": 2})).await;
    assert_eq!(text(&sum), "4");
    client.cancel().await.unwrap();

    let wrong_secret = token_response(
        &root,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "antwort"),
            ("client_secret", "nope"),
        ],
        None,
    )
    .await;
    assert_eq!(wrong_secret.status(), 401);
    assert_eq!(
        wrong_secret.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let wrong_grant = token_response(
        &root,
        &[
            ("grant_type", "password"),
            ("client_id", "antwort"),
            ("client_secret", "s3cret"),
        ],
        None,
    )
    .await;
    assert_eq!(wrong_grant.status(), 400);
    assert_eq!(
        wrong_grant.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    assert_eq!(stats.oauth_tokens_issued.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn short_tokens_expire_after_a_second() {
    let (root, stats) = start().await;
    let asked = Instant::now();
    let issued = token_response(
        &root,
        &[("grant_type", "client_credentials")],
        Some(("antwort-short", "s3cret")),
    )
    .await;
    assert_eq!(issued.status(), 200);
    let issued: Value = issued.json().await.unwrap();
    assert_eq!(issued["expires_in"], 1);
    let token = issued["access_token"].as_str().unwrap().to_owned();
    let (status, _) = initialize_status(&root, Some(&token)).await;
    // The token lives one second from its issue; only a machine that stalled for
    // most of that second could see it expire already, and then the check says
    // nothing about the mock.
    if asked.elapsed() < Duration::from_millis(800) {
        assert_eq!(status, 200);
    }
    // Sleeping is the point here: expiry is measured in wall-clock time.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(initialize_status(&root, Some(&token)).await.0, 401);
    assert_eq!(stats.oauth_tokens_issued.load(Ordering::SeqCst), 1);
}
