//! Lane 6, idle: a gateway (default SQLite store) that serves nothing: its
//! resident memory and its CPU time over a window of seconds, first freshly
//! started, then again after it has answered one stored request, since what a
//! first request loads (the tokenizer's tables, the store's connections) stays.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use super::{Ctx, Storage, bytes_of};
use crate::load;
use crate::machine::kib_to_mb;
use crate::procs::Proc;

#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    pub fresh: IdleWindow,
    pub after_one_request: IdleWindow,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleWindow {
    pub window_seconds: f64,
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
    pub cpu_seconds: f64,
    /// Of one core, over the window.
    pub cpu_percent: f64,
}

pub async fn run(ctx: &Ctx) -> Result<Idle> {
    let mock = ctx.start_mock("idle", 0).await?;
    let mut gateway = ctx
        .start_gateway("idle", &mock, Storage::Sqlite, false)
        .await?;
    // Let start-up work (migrations, the health check) finish first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fresh = window(ctx, &mut gateway).await?;
    let body = json!({"model": "mock-model", "input": "One request", "store": true});
    load::post_json(
        &ctx.client,
        &format!("{}/v1/responses", gateway.url),
        bytes_of(&body),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_one_request = window(ctx, &mut gateway).await?;
    Ok(Idle {
        fresh,
        after_one_request,
    })
}

async fn window(ctx: &Ctx, gateway: &mut Proc) -> Result<IdleWindow> {
    let before = gateway.cpu_ticks();
    let started = Instant::now();
    tokio::time::sleep(ctx.plan.idle_window).await;
    let ticks = gateway.cpu_ticks().saturating_sub(before);
    let seconds = started.elapsed().as_secs_f64();
    gateway.check_alive()?;
    let (rss, hwm) = gateway.memory_kib();
    let cpu_seconds = ticks as f64 / ctx.clock_ticks.max(1) as f64;
    Ok(IdleWindow {
        window_seconds: seconds,
        rss_mb: kib_to_mb(rss),
        peak_rss_mb: kib_to_mb(hwm),
        cpu_seconds,
        cpu_percent: cpu_seconds * 100.0 / seconds,
    })
}
