//! Lane 3, streaming. First, a mock that streams 64 deltas 20 ms apart, the first
//! at once: time to first token (request sent to first text delta: a content
//! chunk direct, a `response.output_text.delta` through the gateway, with no timer
//! of the mock's in it) and the gaps between deltas,
//! direct against gateway, at a fixed number of concurrent streams. Then many
//! streams held open at once (1,000, 5,000, 10,000 in a full run), reading the
//! gateway's resident memory: what one open stream costs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde::Serialize;

use super::{Ctx, Storage, bytes_of, chat_body, measure, responses_body};
use crate::load::{self, Api, Job, closed_loop};
use crate::machine::kib_to_mb;
use crate::procs::Proc;
use crate::stats::{Dist, added};

/// The mock's delay between tokens, and the number of deltas, from PERFORMANCE.md.
pub const TOKEN_DELAY_MS: u64 = 20;
pub const DELTAS: usize = 64;

/// Streams being opened at once while holding many: more would overflow the
/// listen backlog and turn the opening phase into SYN retries.
const OPENING_AT_ONCE: usize = 256;

/// How long a held stream would last if not released, and the gap between its
/// tokens grows with the number of streams, so that all of them together make
/// about a thousand events per second: the lane measures open streams, not a
/// second throughput test.
const HOLD_LIFETIME: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Serialize)]
pub struct Streaming {
    pub token_delay_ms: u64,
    pub deltas: usize,
    pub concurrency: usize,
    pub direct_streams: usize,
    pub gateway_streams: usize,
    pub direct_errors: u64,
    pub gateway_errors: u64,
    pub first_error: Option<String>,
    pub ttft_direct: Option<Dist>,
    pub ttft_gateway: Option<Dist>,
    pub added_ttft_p50_ms: Option<f64>,
    pub added_ttft_p99_ms: Option<f64>,
    pub gap_direct: Option<Dist>,
    pub gap_gateway: Option<Dist>,
    pub added_gap_p50_ms: Option<f64>,
    pub added_gap_p99_ms: Option<f64>,
    pub gateway_cpu_us_per_stream: Option<f64>,
    pub holds: Vec<Hold>,
}

/// Many streams open at once.
#[derive(Debug, Clone, Serialize)]
pub struct Hold {
    pub requested: usize,
    /// Fewer than requested when the open-file limits could not hold them all.
    pub attempted: usize,
    /// Streams that had `response.created` and were still open when memory was read.
    pub held: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub open_seconds: f64,
    pub rss_before_mb: f64,
    pub rss_mb: f64,
    /// (RSS with the streams open - RSS before) / held, in kB (10^3 bytes).
    pub kb_per_stream: Option<f64>,
    pub capped_by: Option<String>,
}

#[derive(Default)]
struct Timings {
    ttft: Vec<Duration>,
    gaps: Vec<Duration>,
}

pub async fn run(ctx: &Ctx) -> Result<Streaming> {
    let plan = &ctx.plan;
    let mock = ctx.start_mock("streaming", TOKEN_DELAY_MS).await?;
    let gateway = ctx
        .start_gateway("streaming", &mock, Storage::Memory, false)
        .await?;
    let prompt = format!("Stream please [[tokens:{DELTAS}]]");
    let direct_timings = Arc::new(Mutex::new(Timings::default()));
    let gateway_timings = Arc::new(Mutex::new(Timings::default()));
    let direct_job = stream_job(
        ctx,
        format!("{}/v1/chat/completions", mock.url),
        bytes_of(&chat_body(&prompt, true)),
        Api::Chat,
        direct_timings.clone(),
    );
    let gateway_job = stream_job(
        ctx,
        format!("{}/v1/responses", gateway.url),
        bytes_of(&responses_body(&prompt, true, false)),
        Api::Responses,
        gateway_timings.clone(),
    );
    let c = plan.stream_concurrency;
    // One stream per worker, unrecorded, to open the connections.
    futures::future::join_all((0..c).map(|w| direct_job(w))).await;
    futures::future::join_all((0..c).map(|w| gateway_job(w))).await;
    for timings in [&direct_timings, &gateway_timings] {
        if let Ok(mut t) = timings.lock() {
            *t = Timings::default();
        }
    }
    let (mut direct_streams, mut gateway_streams) = (0, 0);
    let (mut direct_errors, mut gateway_errors) = (0, 0);
    let mut first_error = None;
    let mut gateway_ticks = 0;
    for _ in 0..plan.stream_rounds {
        let (round, _) = measure(&mock, closed_loop(c, plan.stream_round, &direct_job)).await;
        direct_streams += round.completed();
        direct_errors += round.errors;
        first_error = first_error.or(round.first_error);
        let (round, ticks) =
            measure(&gateway, closed_loop(c, plan.stream_round, &gateway_job)).await;
        gateway_streams += round.completed();
        gateway_errors += round.errors;
        gateway_ticks += ticks;
        first_error = first_error.or(round.first_error);
    }
    let take = |timings: &Arc<Mutex<Timings>>| {
        timings
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    };
    let (mut direct, mut through) = (take(&direct_timings), take(&gateway_timings));
    let ttft_direct = Dist::of(&mut direct.ttft);
    let ttft_gateway = Dist::of(&mut through.ttft);
    let gap_direct = Dist::of(&mut direct.gaps);
    let gap_gateway = Dist::of(&mut through.gaps);
    let cpu_seconds = gateway_ticks as f64 / ctx.clock_ticks.max(1) as f64;
    drop(gateway);
    drop(mock);

    let holds = hold_levels(ctx).await?;
    Ok(Streaming {
        token_delay_ms: TOKEN_DELAY_MS,
        deltas: DELTAS,
        concurrency: c,
        direct_streams,
        gateway_streams,
        direct_errors,
        gateway_errors,
        first_error,
        added_ttft_p50_ms: added(
            ttft_gateway.map(|d| d.p50_ms),
            ttft_direct.map(|d| d.p50_ms),
        ),
        added_ttft_p99_ms: added(
            ttft_gateway.map(|d| d.p99_ms),
            ttft_direct.map(|d| d.p99_ms),
        ),
        added_gap_p50_ms: added(gap_gateway.map(|d| d.p50_ms), gap_direct.map(|d| d.p50_ms)),
        added_gap_p99_ms: added(gap_gateway.map(|d| d.p99_ms), gap_direct.map(|d| d.p99_ms)),
        ttft_direct,
        ttft_gateway,
        gap_direct,
        gap_gateway,
        gateway_cpu_us_per_stream: (gateway_streams > 0)
            .then(|| cpu_seconds * 1e6 / gateway_streams as f64),
        holds,
    })
}

fn stream_job(
    ctx: &Ctx,
    url: String,
    body: bytes::Bytes,
    api: Api,
    timings: Arc<Mutex<Timings>>,
) -> Job {
    let client = ctx.client.clone();
    load::job(move |_| {
        let (client, url, body, timings) =
            (client.clone(), url.clone(), body.clone(), timings.clone());
        async move {
            let timing = load::stream(&client, &url, body, api).await?;
            let Some(ttft) = timing.ttft else {
                bail!("the stream had no text delta");
            };
            if let Ok(mut t) = timings.lock() {
                t.ttft.push(ttft);
                t.gaps.extend(timing.gaps);
            }
            Ok(())
        }
    })
}

/// Holds each level of open streams, each on a fresh mock and gateway: memory a
/// process has once taken is rarely given back, so a second level on the same
/// gateway would start from the first one's high-water mark.
async fn hold_levels(ctx: &Ctx) -> Result<Vec<Hold>> {
    let mut holds = Vec::new();
    for &requested in &ctx.plan.hold_levels {
        let label = format!("hold-{requested}");
        let mock = ctx.start_mock(&label, 0).await?;
        let mut gateway = ctx
            .start_gateway(&label, &mock, Storage::Memory, false)
            .await?;
        // Each stream is a socket in the driver and in the mock, two in the gateway.
        let limit = |n: Option<u64>| n.map_or(usize::MAX, |n| n as usize);
        let gateway_files = limit(gateway.open_files_limit());
        let driver_files = limit(crate::machine::open_files_limit(std::process::id()));
        let mock_files = limit(mock.open_files_limit());
        let cap = (gateway_files.saturating_sub(100) / 2)
            .min(driver_files.saturating_sub(200))
            .min(mock_files.saturating_sub(100));
        let attempted = requested.min(cap);
        let capped_by = (attempted < requested).then(|| {
            format!(
                "open-file limits (gateway {gateway_files}, driver {driver_files}, mock {mock_files}) allow {cap} streams"
            )
        });
        warm_up(ctx, &gateway).await?;
        eprintln!("  holding {attempted} streams");
        let mut hold = hold_once(ctx, &gateway, attempted).await;
        hold.requested = requested;
        hold.capped_by = capped_by;
        holds.push(hold);
        gateway.check_alive()?;
    }
    Ok(holds)
}

/// A few short streams before the baseline is read, so that what any first
/// request loads once (the tokenizer's tables, connection pools) is not counted
/// as the cost of the held streams.
async fn warm_up(ctx: &Ctx, gateway: &Proc) -> Result<()> {
    let body = bytes_of(&responses_body("Warm up [[tokens:4]]", true, false));
    let url = format!("{}/v1/responses", gateway.url);
    let runs = (0..8).map(|_| load::stream(&ctx.client, &url, body.clone(), Api::Responses));
    for outcome in futures::future::join_all(runs).await {
        outcome?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// The gap between a held stream's tokens: about a thousand events per second in all.
fn hold_delay(streams: usize) -> Duration {
    Duration::from_millis(streams.max(1000) as u64)
}

async fn hold_once(ctx: &Ctx, gateway: &Proc, n: usize) -> Hold {
    let delay = hold_delay(n);
    let tokens = (HOLD_LIFETIME.as_millis() / delay.as_millis().max(1)).max(2);
    let prompt = format!(
        "Hold this stream [[tokens:{tokens}]] [[delay_ms:{}]]",
        delay.as_millis()
    );
    let body = bytes_of(&responses_body(&prompt, true, false));
    let url = format!("{}/v1/responses", gateway.url);
    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let gate = Arc::new(tokio::sync::Semaphore::new(OPENING_AT_ONCE));
    let (rss_before, _) = gateway.memory_kib();
    let started = Instant::now();
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (client, url, body) = (ctx.client.clone(), url.clone(), body.clone());
        let (opened, failed, ended, first_error, gate) = (
            opened.clone(),
            failed.clone(),
            ended.clone(),
            first_error.clone(),
            gate.clone(),
        );
        streams.spawn(async move {
            let permit = gate.acquire_owned().await;
            let open = async {
                let response = crate::load::json_request(&client, &url, body)
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("HTTP {}", response.status());
                }
                let mut events = response.bytes_stream().eventsource();
                while let Some(event) = events.next().await {
                    if event?.event == "response.created" {
                        return Ok(events);
                    }
                }
                bail!("the stream closed before response.created")
            }
            .await;
            drop(permit);
            match open {
                Ok(mut events) => {
                    opened.fetch_add(1, Ordering::SeqCst);
                    // Read on, as a client would, until the benchmark lets go; a
                    // stream that ends by itself was not held.
                    while let Some(Ok(_)) = events.next().await {}
                    ended.fetch_add(1, Ordering::SeqCst);
                }
                Err(error) => {
                    failed.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut first) = first_error.lock() {
                        first.get_or_insert_with(|| format!("{error:#}"));
                    }
                }
            }
        });
    }
    // Every stream open (or failed), or at most a minute and a half.
    let deadline = started + Duration::from_secs(90);
    while opened.load(Ordering::SeqCst) + failed.load(Ordering::SeqCst) < n
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open_seconds = started.elapsed().as_secs_f64();
    // A moment for buffers and the allocator to settle before reading memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss, _) = gateway.memory_kib();
    let held = opened
        .load(Ordering::SeqCst)
        .saturating_sub(ended.load(Ordering::SeqCst));
    // Dropping the tasks drops their connections, which releases the streams.
    streams.shutdown().await;
    let first_error = first_error.lock().ok().and_then(|e| e.clone());
    Hold {
        requested: n,
        attempted: n,
        held,
        failed: failed.load(Ordering::SeqCst),
        first_error,
        open_seconds,
        rss_before_mb: kib_to_mb(rss_before),
        rss_mb: kib_to_mb(rss),
        kb_per_stream: (held > 0).then(|| (rss as f64 - rss_before as f64) * 1.024 / held as f64),
        capped_by: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_streams_share_about_a_thousand_events_per_second() {
        assert_eq!(hold_delay(250), Duration::from_secs(1));
        assert_eq!(hold_delay(1000), Duration::from_secs(1));
        assert_eq!(hold_delay(10_000), Duration::from_secs(10));
    }
}
