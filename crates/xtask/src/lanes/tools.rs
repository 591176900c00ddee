//! Lane 5, tools: a streamed turn that ends in a function call for the client, a
//! streamed turn with an MCP call the gateway runs itself against the mock's
//! `/mcp` server, one request at a time, and an agent's tool loop over HTTP and
//! over one WebSocket ([`super::tool_loop`]).
//!
//! The direct side of the MCP scenario does by hand what the gateway must do:
//! `tools/list` on an open MCP session, the first model turn (which asks for
//! `calc__add`), `tools/call`, and the second model turn with the result. So the
//! difference is the gateway's own work: its loop, translation and events.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{Compare, Ctx, SideAcc, Storage, bytes_of, measure};
use crate::load::{self, Api, Job, closed_loop};

const FUNCTION_PROMPT: &str =
    "What is the weather in Paris? [[tool:get_weather:{\"city\":\"Paris\"}]]";
const MCP_PROMPT: &str = "Add one and two [[tool:calc__add:{\"a\":1,\"b\":2}]]";

fn weather_parameters() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
}

fn chat_stream_body(messages: Value, tools: Value) -> Value {
    json!({
        "messages": messages,
        "model": "mock-model",
        "stream": true,
        "stream_options": {"include_usage": true},
        "tool_choice": "auto",
        "tools": tools,
    })
}

pub async fn run(ctx: &Ctx) -> Result<Vec<Compare>> {
    let plan = &ctx.plan;
    let mock = ctx.start_mock("tools", 0).await?;
    let gateway = ctx
        .start_gateway("tools", &mock, Storage::Memory, true)
        .await?;
    let chat_url = format!("{}/v1/chat/completions", mock.url);
    let responses_url = format!("{}/v1/responses", gateway.url);

    let function_direct = stream_job(
        ctx,
        chat_url.clone(),
        bytes_of(&chat_stream_body(
            json!([{"role": "user", "content": FUNCTION_PROMPT}]),
            json!([{"type": "function", "function": {
                "name": "get_weather", "description": "The weather in a city",
                "parameters": weather_parameters()}}]),
        )),
        Api::Chat,
    );
    let function_gateway = stream_job(
        ctx,
        responses_url.clone(),
        bytes_of(&json!({
            "model": "mock-model",
            "input": FUNCTION_PROMPT,
            "tools": [{"type": "function", "name": "get_weather",
                "description": "The weather in a city", "parameters": weather_parameters()}],
            "stream": true,
            "store": false,
        })),
        Api::Responses,
    );
    let mcp_url = format!("{}/mcp", mock.url);
    let session = Arc::new(McpSession::open(&ctx.client, &mcp_url).await?);
    let mcp_direct = mcp_direct_job(ctx, chat_url, session);
    let mcp_gateway = stream_job(
        ctx,
        responses_url,
        bytes_of(&json!({
            "model": "mock-model",
            "input": MCP_PROMPT,
            "tools": [{"type": "mcp", "server_label": "calc", "server_url": mcp_url,
                "require_approval": "never"}],
            "stream": true,
            "store": false,
        })),
        Api::Responses,
    );

    let mut results = Vec::new();
    for (scenario, direct_job, gateway_job) in [
        ("function call, streamed", function_direct, function_gateway),
        ("MCP call, streamed", mcp_direct, mcp_gateway),
    ] {
        closed_loop(1, plan.warmup, &direct_job).await;
        closed_loop(1, plan.warmup, &gateway_job).await;
        let (mut direct, mut through) = (SideAcc::default(), SideAcc::default());
        for _ in 0..plan.tools_rounds {
            direct.add(measure(&mock, closed_loop(1, plan.tools_round, &direct_job)).await);
            through.add(measure(&gateway, closed_loop(1, plan.tools_round, &gateway_job)).await);
        }
        results.push(Compare::new(
            scenario,
            direct.finish(&mock, ctx.clock_ticks),
            through.finish(&gateway, ctx.clock_ticks),
        ));
    }
    drop((gateway, mock));
    results.extend(super::tool_loop::run(ctx).await?);
    Ok(results)
}

/// A job that reads one stream to its end.
fn stream_job(ctx: &Ctx, url: String, body: bytes::Bytes, api: Api) -> Job {
    let client = ctx.client.clone();
    load::job(move |_| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move { load::stream(&client, &url, body, api).await.map(drop) }
    })
}

/// The MCP scenario's direct side: list, first turn, call, second turn.
fn mcp_direct_job(ctx: &Ctx, chat_url: String, session: Arc<McpSession>) -> Job {
    let client = ctx.client.clone();
    load::job(move |_| {
        let (client, url, session) = (client.clone(), chat_url.clone(), session.clone());
        async move {
            let listed = session.request(&client, "tools/list", json!({})).await?;
            let tools: Vec<Value> = listed["tools"]
                .as_array()
                .context("tools/list without tools")?
                .iter()
                .map(|tool| {
                    json!({"type": "function", "function": {
                        "name": format!("calc__{}", tool["name"].as_str().unwrap_or_default()),
                        "description": tool["description"],
                        "parameters": tool["inputSchema"],
                    }})
                })
                .collect();
            let user = json!({"role": "user", "content": MCP_PROMPT});
            let first = chat_stream_body(json!([user]), json!(tools));
            load::stream(&client, &url, bytes_of(&first), Api::Chat).await?;
            let arguments = json!({"a": 1, "b": 2});
            let called = session
                .request(
                    &client,
                    "tools/call",
                    json!({"name": "add", "arguments": arguments}),
                )
                .await?;
            let output = called["content"][0]["text"]
                .as_str()
                .context("tools/call without text")?;
            let second = chat_stream_body(
                json!([
                    user,
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock_0",
                        "type": "function", "function": {"name": "calc__add",
                        "arguments": arguments.to_string()}}]},
                    {"role": "tool", "tool_call_id": "call_mock_0", "content": output},
                ]),
                json!(tools),
            );
            load::stream(&client, &url, bytes_of(&second), Api::Chat).await?;
            Ok(())
        }
    })
}

/// A Streamable HTTP MCP session, opened once (as the gateway keeps its sessions).
struct McpSession {
    url: String,
    id: String,
    next: AtomicU64,
}

impl McpSession {
    async fn open(client: &reqwest::Client, url: &str) -> Result<Self> {
        let response = post(
            client,
            url,
            None,
            &json!({
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-03-26", "capabilities": {},
                    "clientInfo": {"name": "antwort-bench", "version": "0"}},
            }),
        )
        .await?;
        let id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .context("initialize answered without mcp-session-id")?
            .to_owned();
        let body = response.text().await?;
        jsonrpc_result(&body, 0)?;
        post(
            client,
            url,
            Some(&id),
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await?;
        Ok(Self {
            url: url.to_owned(),
            id,
            next: AtomicU64::new(1),
        })
    }

    async fn request(
        &self,
        client: &reqwest::Client,
        method: &str,
        params: Value,
    ) -> Result<Value> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let body = post(client, &self.url, Some(&self.id), &message)
            .await?
            .text()
            .await?;
        jsonrpc_result(&body, id)
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    message: &Value,
) -> Result<reqwest::Response> {
    let mut request = crate::load::json_request(client, url, message.to_string()).header(
        reqwest::header::ACCEPT,
        "application/json, text/event-stream",
    );
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await?;
    if !response.status().is_success() {
        bail!("MCP {}: HTTP {}", message["method"], response.status());
    }
    Ok(response)
}

/// The result of JSON-RPC request `id` from an MCP answer, which is either one
/// JSON object or an SSE stream whose `data:` lines carry messages.
pub fn jsonrpc_result(body: &str, id: u64) -> Result<Value> {
    let candidates = std::iter::once(body.trim()).chain(
        body.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim),
    );
    for candidate in candidates.filter(|c| !c.is_empty()) {
        let Ok(message) = serde_json::from_str::<Value>(candidate) else {
            continue;
        };
        if message["id"] != json!(id) {
            continue;
        }
        if let Some(error) = message.get("error") {
            bail!("MCP error: {error}");
        }
        return message
            .get("result")
            .cloned()
            .context("JSON-RPC answer without result");
    }
    bail!(
        "no JSON-RPC answer to request {id} in: {}",
        load::snippet(body.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_from_json_or_from_sse_data_lines() {
        let sse = "data: \nid: 0\nretry: 3000\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"3\"}]}}\nid: 1/0\n";
        assert_eq!(jsonrpc_result(sse, 2).unwrap()["content"][0]["text"], "3");
        assert!(jsonrpc_result(sse, 3).is_err());
        let plain = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#;
        assert_eq!(jsonrpc_result(plain, 1).unwrap(), json!({"tools": []}));
        let failed = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}"#;
        assert!(jsonrpc_result(failed, 1).is_err());
    }
}
