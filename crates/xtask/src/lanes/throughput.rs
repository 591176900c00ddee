//! Lane 2, throughput: closed-loop clients at concurrency 1, 2, 4, ... for a fixed
//! time each, direct and through the gateway (pinned to one core), until the
//! target saturates; the figure is the best throughput whose p99 stays under 5 ms.
//! Three variants: `store: false`, `store: true` on SQLite, and `store: true` on
//! PostgreSQL when it can be reached. The direct curve is the mock's (and the
//! driver's) own ceiling, shown so that it is never the hidden bottleneck.
//! A stored variant then fetches every response the gateway answered, to show
//! that nothing was lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use serde::Serialize;

use super::overhead::json_job;
use super::{Ctx, Storage, bytes_of, chat_body, measure, responses_body};
use crate::load::{self, Job, Round, closed_loop};
use crate::machine::kib_to_mb;
use crate::pg;
use crate::procs::Proc;
use crate::stats::Dist;

/// The latency bound of the throughput figure, from PERFORMANCE.md.
pub const SLO_P99_MS: f64 = 5.0;

const PROMPT: &str = "Hello from the throughput lane";

/// One concurrency level of one side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadPoint {
    pub concurrency: usize,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    /// CPU of the serving process (mock or gateway), in percent of one core.
    pub cpu_percent: f64,
}

/// Whether the search should try the next concurrency level (twice the last).
/// It stops at the cap, after two levels in a row over the latency bound (more
/// clients would only queue), or on a plateau: when the last two levels both gained
/// less than 5% over the best throughput before them.
pub fn keep_going(points: &[LoadPoint], max_concurrency: usize) -> bool {
    let Some(last) = points.last() else {
        return true;
    };
    if last.concurrency >= max_concurrency || last.rps == 0.0 {
        return false;
    }
    let over = points
        .iter()
        .rev()
        .take_while(|p| p.p99_ms > SLO_P99_MS)
        .count();
    if over >= 2 {
        return false;
    }
    if points.len() >= 3 {
        let (before, recent) = points.split_at(points.len() - 2);
        let best_before = before.iter().map(|p| p.rps).fold(0.0, f64::max);
        if recent.iter().all(|p| p.rps < best_before * 1.05) {
            return false;
        }
    }
    true
}

/// The level with the most throughput whose p99 is within the bound.
pub fn best_under_slo(points: &[LoadPoint]) -> Option<LoadPoint> {
    points
        .iter()
        .filter(|p| p.p99_ms <= SLO_P99_MS && p.errors == 0)
        .copied()
        .max_by(|a, b| a.rps.total_cmp(&b.rps))
}

/// Responses fetched back after a stored variant.
#[derive(Debug, Clone, Serialize)]
pub struct StoredCheck {
    /// Responses the gateway answered with 200.
    pub answered: usize,
    /// Of those, found by `GET /v1/responses/{id}` afterwards.
    pub found: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub name: String,
    pub store: bool,
    pub storage: String,
    pub direct: Vec<LoadPoint>,
    pub gateway: Vec<LoadPoint>,
    pub direct_best: Option<LoadPoint>,
    pub gateway_best: Option<LoadPoint>,
    pub gateway_peak_rss_mb: Option<f64>,
    pub stored: Option<StoredCheck>,
    /// Why the variant did not run (PostgreSQL not reachable).
    pub skipped: Option<String>,
    pub first_error: Option<String>,
}

pub async fn run(ctx: &Ctx) -> Result<Vec<Variant>> {
    let mut variants = vec![
        run_variant(ctx, "store: false", false, Storage::Memory, "memory").await?,
        run_variant(ctx, "store: true, SQLite", true, Storage::Sqlite, "sqlite").await?,
    ];
    let schema_name = format!("antwort_bench_{}", std::process::id());
    let postgres = match pg::Schema::create(&ctx.postgres_url, &schema_name) {
        Ok(schema) => {
            let dsn = schema.dsn();
            let variant = run_variant(
                ctx,
                "store: true, PostgreSQL",
                true,
                Storage::Postgres(dsn),
                "postgres",
            )
            .await;
            drop(schema);
            // A PostgreSQL failure must not throw away the variants already measured.
            variant.unwrap_or_else(|error| {
                skipped("store: true, PostgreSQL", format!("failed: {error:#}"))
            })
        }
        Err(error) => skipped(
            "store: true, PostgreSQL",
            format!(
                "PostgreSQL not reachable at {}: {error:#}",
                ctx.postgres_url
            ),
        ),
    };
    variants.push(postgres);
    Ok(variants)
}

fn skipped(name: &str, why: String) -> Variant {
    Variant {
        name: name.into(),
        store: true,
        storage: "postgres".into(),
        direct: Vec::new(),
        gateway: Vec::new(),
        direct_best: None,
        gateway_best: None,
        gateway_peak_rss_mb: None,
        stored: None,
        skipped: Some(why),
        first_error: None,
    }
}

async fn run_variant(
    ctx: &Ctx,
    name: &str,
    store: bool,
    storage: Storage,
    storage_name: &str,
) -> Result<Variant> {
    let label = format!("throughput-{storage_name}");
    let mock = ctx.start_mock(&label, 0).await?;
    let gateway = ctx.start_gateway(&label, &mock, storage, false).await?;
    let direct_job = json_job(
        ctx,
        format!("{}/v1/chat/completions", mock.url),
        bytes_of(&chat_body(PROMPT, false)),
    );
    let ids = Arc::new(Mutex::new(Vec::<String>::new()));
    let gateway_job = if store {
        stored_job(ctx, &gateway, ids.clone())
    } else {
        json_job(
            ctx,
            format!("{}/v1/responses", gateway.url),
            bytes_of(&responses_body(PROMPT, false, false)),
        )
    };
    let plan = &ctx.plan;
    closed_loop(1, plan.warmup, &direct_job).await;
    closed_loop(1, plan.warmup, &gateway_job).await;
    let warm = plan.throughput_step / 10;
    let mut direct: Vec<LoadPoint> = Vec::new();
    let mut through: Vec<LoadPoint> = Vec::new();
    let mut first_error = None;
    let mut concurrency = 1;
    loop {
        let direct_on = keep_going(&direct, plan.throughput_max_concurrency);
        let gateway_on = keep_going(&through, plan.throughput_max_concurrency);
        if !direct_on && !gateway_on {
            break;
        }
        eprintln!("  {name}: concurrency {concurrency}");
        // One side at one level: a warm-up, then the measured round.
        let level = async |proc: &Proc, job: &Job, first_error: &mut Option<String>| {
            closed_loop(concurrency, warm, job).await;
            let round = measure(proc, closed_loop(concurrency, plan.throughput_step, job)).await;
            point(concurrency, round, ctx.clock_ticks, first_error)
        };
        if direct_on {
            direct.push(level(&mock, &direct_job, &mut first_error).await);
        }
        if gateway_on {
            through.push(level(&gateway, &gateway_job, &mut first_error).await);
        }
        concurrency *= 2;
    }
    let (_, hwm) = gateway.memory_kib();
    let stored = if store {
        let ids = ids.lock().map(|ids| ids.clone()).unwrap_or_default();
        Some(check_stored(ctx, &gateway, ids).await)
    } else {
        None
    };
    Ok(Variant {
        name: name.into(),
        store,
        storage: storage_name.into(),
        direct_best: best_under_slo(&direct),
        gateway_best: best_under_slo(&through),
        direct,
        gateway: through,
        gateway_peak_rss_mb: (hwm > 0).then(|| kib_to_mb(hwm)),
        stored,
        skipped: None,
        first_error,
    })
}

fn point(
    concurrency: usize,
    (mut round, ticks): (Round, u64),
    clock_ticks: u64,
    first_error: &mut Option<String>,
) -> LoadPoint {
    let rps = round.rps();
    let dist = Dist::of(&mut round.latencies);
    let wall = round.wall.as_secs_f64();
    if first_error.is_none() {
        *first_error = round.first_error.take();
    }
    LoadPoint {
        concurrency,
        rps,
        p50_ms: dist.map_or(0.0, |d| d.p50_ms),
        p99_ms: dist.map_or(f64::INFINITY, |d| d.p99_ms),
        max_ms: dist.map_or(0.0, |d| d.max_ms),
        errors: round.errors,
        cpu_percent: if wall > 0.0 {
            ticks as f64 / clock_ticks.max(1) as f64 * 100.0 / wall
        } else {
            0.0
        },
    }
}

/// A `store: true` create that keeps the id of every response answered.
fn stored_job(ctx: &Ctx, gateway: &Proc, ids: Arc<Mutex<Vec<String>>>) -> Job {
    let client = ctx.client.clone();
    let url = format!("{}/v1/responses", gateway.url);
    let body = bytes_of(&responses_body(PROMPT, false, true));
    load::job(move |_| {
        let (client, url, body, ids) = (client.clone(), url.clone(), body.clone(), ids.clone());
        async move {
            let answer = load::post_json(&client, &url, body).await?;
            let id = load::response_id(&answer)
                .ok_or_else(|| anyhow::anyhow!("no id in {}", load::snippet(&answer)))?;
            if let Ok(mut ids) = ids.lock() {
                ids.push(id);
            }
            Ok(())
        }
    })
}

/// Fetches every answered response back from the gateway.
async fn check_stored(ctx: &Ctx, gateway: &Proc, ids: Vec<String>) -> StoredCheck {
    let answered = ids.len();
    let found = futures::stream::iter(ids)
        .map(|id| {
            let client = ctx.client.clone();
            let url = format!("{}/v1/responses/{id}", gateway.url);
            async move {
                client
                    .get(url)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .buffer_unordered(32)
        .filter(|found| futures::future::ready(*found))
        .count()
        .await;
    StoredCheck { answered, found }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(concurrency: usize, rps: f64, p99_ms: f64) -> LoadPoint {
        LoadPoint {
            concurrency,
            rps,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            max_ms: p99_ms,
            errors: 0,
            cpu_percent: 0.0,
        }
    }

    #[test]
    fn the_search_starts_and_climbs_while_throughput_grows() {
        assert!(keep_going(&[], 256));
        assert!(keep_going(&[at(1, 1000.0, 1.0)], 256));
        assert!(keep_going(
            &[at(1, 1000.0, 1.0), at(2, 1900.0, 1.1), at(4, 3500.0, 1.3)],
            256
        ));
    }

    #[test]
    fn the_search_stops_at_the_cap() {
        assert!(!keep_going(&[at(256, 1000.0, 1.0)], 256));
    }

    #[test]
    fn the_search_stops_after_two_levels_over_the_bound() {
        let one_over = [at(1, 1000.0, 1.0), at(2, 1900.0, 6.0)];
        assert!(keep_going(&one_over, 256));
        let two_over = [at(1, 1000.0, 1.0), at(2, 1900.0, 6.0), at(4, 3000.0, 9.0)];
        assert!(!keep_going(&two_over, 256));
    }

    #[test]
    fn the_search_stops_on_a_plateau() {
        let plateau = [
            at(1, 5000.0, 0.3),
            at(2, 9000.0, 0.4),
            at(4, 9200.0, 0.8),
            at(8, 9300.0, 1.6),
        ];
        assert!(!keep_going(&plateau, 256));
        // One flat level is not yet a plateau.
        assert!(keep_going(&plateau[..3], 256));
    }

    #[test]
    fn the_search_stops_when_nothing_completes() {
        assert!(!keep_going(&[at(1, 0.0, f64::INFINITY)], 256));
    }

    #[test]
    fn the_best_level_is_the_fastest_within_the_bound() {
        let points = [
            at(1, 1000.0, 1.0),
            at(2, 1900.0, 2.0),
            at(4, 3000.0, 6.0),
            at(8, 3100.0, 12.0),
        ];
        assert_eq!(best_under_slo(&points), Some(points[1]));
        assert_eq!(best_under_slo(&points[2..]), None);
        let mut failing = at(1, 5000.0, 1.0);
        failing.errors = 3;
        assert_eq!(best_under_slo(&[failing]), None);
    }
}
