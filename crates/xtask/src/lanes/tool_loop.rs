//! Part of lane 5, tools: an agent's tool loop of [`TURNS`] turns, each ending
//! in a function call the client answers, as Codex CLI runs one. Three ways to
//! drive it through the gateway, against the same loop straight to the mock
//! (each turn a Chat Completions request with the whole history, as the
//! gateway sends it):
//!
//! - over HTTP, sending the whole history every turn (`store: false`, what an
//!   SSE client that stores nothing does);
//! - over HTTP, with `previous_response_id` (stored responses);
//! - over one WebSocket, with `previous_response_id` and `store: false`: the
//!   connection continues from memory. Each loop opens its socket, so the
//!   handshake is in its time.
//!
//! A sample is one whole loop; the report's figures divided by [`TURNS`] are
//! per turn.

use anyhow::{Context, Result, anyhow, bail};
use eventsource_stream::Eventsource;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{Compare, Ctx, SideAcc, Storage, bytes_of, measure};
use crate::load::{self, Api, Job, closed_loop};

/// Turns in one loop.
pub const TURNS: usize = 20;

const PROMPT: &str =
    "Check the weather until told to stop [[tool_always:get_weather:{\"city\":\"Paris\"}]]";

fn tool() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}})
}

pub async fn run(ctx: &Ctx) -> Result<Vec<Compare>> {
    let plan = &ctx.plan;
    let mock = ctx.start_mock("tool-loop", 0).await?;
    let gateway = ctx
        .start_gateway("tool-loop", &mock, Storage::Memory, false)
        .await?;
    let chat_url = format!("{}/v1/chat/completions", mock.url);
    let responses_url = format!("{}/v1/responses", gateway.url);
    let socket_url = format!("{}/v1/responses", gateway.url.replace("http://", "ws://"));
    let direct = direct_loop(ctx, chat_url);
    let mut results = Vec::new();
    for (scenario, gateway_job) in [
        (
            "tool loop of 20 turns, HTTP, whole history each turn",
            http_loop(ctx, responses_url.clone(), false),
        ),
        (
            "tool loop of 20 turns, HTTP, previous_response_id (stored)",
            http_loop(ctx, responses_url.clone(), true),
        ),
        (
            "tool loop of 20 turns, one WebSocket, previous_response_id",
            socket_loop(socket_url.clone()),
        ),
    ] {
        closed_loop(1, plan.warmup, &direct).await;
        closed_loop(1, plan.warmup, &gateway_job).await;
        let (mut mock_side, mut through) = (SideAcc::default(), SideAcc::default());
        for _ in 0..plan.tools_rounds {
            mock_side.add(measure(&mock, closed_loop(1, plan.tools_round, &direct)).await);
            through.add(measure(&gateway, closed_loop(1, plan.tools_round, &gateway_job)).await);
        }
        results.push(Compare::new(
            scenario,
            mock_side.finish(&mock, ctx.clock_ticks),
            through.finish(&gateway, ctx.clock_ticks),
        ));
    }
    Ok(results)
}

/// The loop straight to the mock: every turn the whole history.
fn direct_loop(ctx: &Ctx, url: String) -> Job {
    let client = ctx.client.clone();
    load::job(move |_| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let tools = json!([{"type": "function", "function": {"name": "get_weather",
                "description": "The weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
            let mut messages = vec![json!({"role": "user", "content": PROMPT})];
            for turn in 0..TURNS {
                let body = json!({"model": "mock-model", "messages": messages, "tools": tools,
                    "tool_choice": "auto", "stream": true, "stream_options": {"include_usage": true}});
                load::stream(&client, &url, bytes_of(&body), Api::Chat).await?;
                let id = format!("call_{turn}");
                messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": id, "type": "function", "function": {"name": "get_weather",
                        "arguments": "{\"city\":\"Paris\"}"}}]}));
                messages.push(json!({"role": "tool", "tool_call_id": id, "content": "sunny"}));
            }
            Ok(())
        }
    })
}

/// The function call a turn ended with, as the next turn's output answers it.
fn answer(response: &Value) -> Result<Value> {
    let call = response["output"]
        .as_array()
        .and_then(|output| output.iter().find(|item| item["type"] == "function_call"))
        .context("the turn did not end with a function call")?;
    Ok(json!({"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}))
}

/// The loop over HTTP: with `previous_response_id` when `stored`, else the
/// whole history each turn.
fn http_loop(ctx: &Ctx, url: String, stored: bool) -> Job {
    let client = ctx.client.clone();
    load::job(move |_| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let mut history = vec![json!({"role": "user", "content": PROMPT})];
            let mut previous: Option<String> = None;
            let mut input = history.clone();
            for _ in 0..TURNS {
                let mut body = json!({"model": "mock-model", "input": input, "tools": [tool()],
                    "stream": true, "store": stored});
                if let Some(previous) = &previous {
                    body["previous_response_id"] = json!(previous);
                }
                let response = sse_turn(&client, &url, &body).await?;
                let output = answer(&response)?;
                if stored {
                    previous = response["id"].as_str().map(str::to_owned);
                    input = vec![output];
                } else {
                    history.extend(response["output"].as_array().cloned().unwrap_or_default());
                    history.push(output);
                    input = history.clone();
                }
            }
            Ok(())
        }
    })
}

/// One streamed turn over HTTP; its final response.
async fn sse_turn(client: &reqwest::Client, url: &str, body: &Value) -> Result<Value> {
    let response = load::json_request(client, url, body.to_string())
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("HTTP {}", response.status());
    }
    let mut events = response.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| anyhow!("reading the stream: {e}"))?;
        if event.event == "response.completed" {
            let value: Value = serde_json::from_str(&event.data)?;
            return Ok(value["response"].clone());
        }
        if matches!(event.event.as_str(), "response.failed" | "error") {
            bail!("the turn ended with {}", event.data);
        }
    }
    bail!("the stream ended without response.completed")
}

/// The loop over one WebSocket, continuing from the connection's memory.
fn socket_loop(url: String) -> Job {
    load::job(move |_| {
        let url = url.clone();
        async move {
            let mut request = url.as_str().into_client_request()?;
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {}", load::BENCH_KEY).parse()?,
            );
            // No Nagle delay, as the HTTP driver's client (`load::client`).
            let (mut socket, _) =
                tokio_tungstenite::connect_async_with_config(request, None, true).await?;
            let mut message = json!({"type": "response.create", "model": "mock-model",
                "input": PROMPT, "tools": [tool()], "store": false});
            for _ in 0..TURNS {
                socket.send(Message::text(message.to_string())).await?;
                let response = socket_turn(&mut socket).await?;
                message = json!({"type": "response.create", "model": "mock-model",
                    "previous_response_id": response["id"], "input": [answer(&response)?],
                    "tools": [tool()], "store": false});
            }
            socket.close(None).await?;
            Ok(())
        }
    })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket_turn(socket: &mut Socket) -> Result<Value> {
    while let Some(frame) = socket.next().await {
        let Message::Text(text) = frame? else {
            continue;
        };
        // Only the terminal events are parsed; the rest is read and passed over.
        if text.contains("\"type\":\"response.completed\"") {
            let value: Value = serde_json::from_str(&text)?;
            return Ok(value["response"].clone());
        }
        if text.contains("\"type\":\"response.failed\"") || text.starts_with("{\"type\":\"error\"")
        {
            bail!("the turn ended with {text}");
        }
    }
    bail!("the socket closed during a turn")
}
