//! Lane 4, history: what a `previous_response_id` chain costs as it grows. One
//! chain of stored responses (SQLite, the default store) is built turn by turn;
//! then a `store: false` request continues it from depth 1, 10, 100 and 1,000,
//! against a direct request carrying the same replayed messages (the mock's own
//! cost grows with them too, so only the difference is the gateway's). Then a
//! second gateway on the same file, logging every SQL statement it runs, serves
//! one request per depth, and the statements are counted from its log.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};

use super::overhead::json_job;
use super::{Compare, Ctx, SideAcc, Storage, bytes_of, measure};
use crate::load::{self, closed_loop};
use crate::procs::Proc;

#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// Turns in the chain that was built.
    pub chain_length: usize,
    /// Time to build it, one stored turn after another.
    pub build_seconds: f64,
    pub depths: Vec<Depth>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Depth {
    pub depth: usize,
    pub compare: Compare,
    /// SQL statements the gateway ran for one request at this depth; None when
    /// they could not be counted.
    pub queries: Option<usize>,
}

/// Every statement sqlx runs is logged at debug under this target.
const QUERY_LOG_TARGET: &str = "sqlx::query";

fn turn_text(turn: usize) -> String {
    format!("Turn {turn} of the history lane [[reply:ok]]")
}

const NEXT: &str = "And the next turn [[reply:ok]]";

/// The Chat Completions body the gateway sends when continuing from a chain of
/// `depth` turns: every stored turn replayed as a user and an assistant message.
pub fn replayed_chat_body(depth: usize) -> Value {
    let mut messages = Vec::with_capacity(2 * depth + 1);
    for turn in 1..=depth {
        messages.push(json!({"role": "user", "content": turn_text(turn)}));
        messages.push(json!({"role": "assistant", "content": "ok"}));
    }
    messages.push(json!({"role": "user", "content": NEXT}));
    json!({"messages": messages, "model": "mock-model", "stream": false})
}

pub async fn run(ctx: &Ctx) -> Result<History> {
    let plan = &ctx.plan;
    let mock = ctx.start_mock("history", 0).await?;
    let database = ctx.work.join("history.db");
    let gateway = ctx
        .start_gateway(
            "history",
            &mock,
            Storage::SqliteFile(database.clone()),
            false,
        )
        .await?;
    let depths = plan.history_depths.clone();
    let longest = depths.iter().copied().max().unwrap_or(1);
    let url = format!("{}/v1/responses", gateway.url);

    // Build the chain; keep the id at each depth that will be measured.
    let started = Instant::now();
    let mut previous: Option<String> = None;
    let mut ids = Vec::new();
    for turn in 1..=longest {
        let mut body = json!({"model": "mock-model", "input": turn_text(turn), "store": true});
        if let Some(id) = &previous {
            body["previous_response_id"] = json!(id);
        }
        let answer = load::post_json(&ctx.client, &url, bytes_of(&body))
            .await
            .with_context(|| format!("building the chain at turn {turn}"))?;
        let id = load::response_id(&answer).context("no id in a stored response")?;
        if depths.contains(&turn) {
            ids.push((turn, id.clone()));
        }
        previous = Some(id);
        if turn % 250 == 0 {
            eprintln!("  chain at {turn} turns");
        }
    }
    let build_seconds = started.elapsed().as_secs_f64();

    let mut results = Vec::new();
    for (depth, id) in ids.iter().cloned() {
        let direct_job = json_job(
            ctx,
            format!("{}/v1/chat/completions", mock.url),
            bytes_of(&replayed_chat_body(depth)),
        );
        let gateway_job = json_job(ctx, url.clone(), bytes_of(&continue_body(&id)));
        closed_loop(1, plan.warmup / 2, &direct_job).await;
        closed_loop(1, plan.warmup / 2, &gateway_job).await;
        let (mut direct, mut through) = (SideAcc::default(), SideAcc::default());
        for _ in 0..plan.history_rounds {
            direct.add(measure(&mock, closed_loop(1, plan.history_round, &direct_job)).await);
            through.add(measure(&gateway, closed_loop(1, plan.history_round, &gateway_job)).await);
        }
        results.push(Depth {
            depth,
            compare: Compare::new(
                format!("depth {depth}"),
                direct.finish(&mock, ctx.clock_ticks),
                through.finish(&gateway, ctx.clock_ticks),
            ),
            queries: None,
        });
    }
    drop(gateway);
    if let Err(error) = count_queries(ctx, &mock, database, &ids, &mut results).await {
        eprintln!("  history: the queries could not be counted: {error:#}");
    }
    Ok(History {
        chain_length: longest,
        build_seconds,
        depths: results,
    })
}

/// A `store: false` request continuing the chain from response `id`.
fn continue_body(id: &str) -> Value {
    json!({
        "model": "mock-model",
        "input": NEXT,
        "previous_response_id": id,
        "store": false,
    })
}

/// Serves the chain again from a gateway that logs its SQL statements, and
/// records in `results` how many one request runs at each depth.
async fn count_queries(
    ctx: &Ctx,
    mock: &Proc,
    database: PathBuf,
    ids: &[(usize, String)],
    results: &mut [Depth],
) -> Result<()> {
    let level = format!("warn,{QUERY_LOG_TARGET}=debug");
    let gateway = ctx
        .start_gateway_logging(
            "history-queries",
            mock,
            Storage::SqliteFile(database),
            false,
            &level,
        )
        .await?;
    let url = format!("{}/v1/responses", gateway.url);
    let statements = || -> Result<usize> {
        let log = std::fs::read_to_string(&gateway.log)
            .with_context(|| format!("reading {}", gateway.log.display()))?;
        Ok(log
            .lines()
            .filter(|line| line.contains(QUERY_LOG_TARGET))
            .count())
    };
    // A first request, not counted: what a fresh process does once (opening a
    // connection and setting it up) is not the cost of a depth.
    if let Some((_, id)) = ids.first() {
        load::post_json(&ctx.client, &url, bytes_of(&continue_body(id))).await?;
    }
    for ((depth, id), result) in ids.iter().zip(results.iter_mut()) {
        let before = statements()?;
        load::post_json(&ctx.client, &url, bytes_of(&continue_body(id)))
            .await
            .with_context(|| format!("counting the queries at depth {depth}"))?;
        // Log lines are written before the answer is sent; the short wait is for
        // the file system only.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        result.queries = Some(statements()? - before);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replayed_body_alternates_turns_and_ends_with_the_new_input() {
        let body = replayed_chat_body(2);
        let messages = body["messages"].as_array().unwrap();
        let roles: Vec<&str> = messages
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "user", "assistant", "user"]);
        assert_eq!(messages[4]["content"], NEXT);
        assert_eq!(
            replayed_chat_body(0)["messages"].as_array().unwrap().len(),
            1
        );
    }
}
