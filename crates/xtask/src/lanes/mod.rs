//! The lanes of PERFORMANCE.md and what they share: the run's context (binaries,
//! work directory, placement, HTTP client), the plan of durations (full or
//! `--quick`), starting the mock and the gateway, and measuring a round together
//! with the CPU time of the process that served it.
//!
//! Every lane alternates direct rounds (the equivalent Chat Completions request
//! straight to the mock) with gateway rounds (`POST /v1/responses`), so that both
//! sides see the same noise from a shared machine.

pub mod history;
pub mod idle;
pub mod overhead;
pub mod streaming;
pub mod throughput;
pub mod tool_loop;
pub mod tools;

use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::load::{self, Round};
use crate::machine::{Placement, kib_to_mb};
use crate::procs::{self, Proc, Spawn};
use crate::stats::{Dist, added};

/// The lanes, in the order they run and appear in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    Overhead,
    Throughput,
    Streaming,
    History,
    Tools,
    Idle,
}

impl Lane {
    pub const ALL: [Lane; 6] = [
        Lane::Overhead,
        Lane::Throughput,
        Lane::Streaming,
        Lane::History,
        Lane::Tools,
        Lane::Idle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Lane::Overhead => "overhead",
            Lane::Throughput => "throughput",
            Lane::Streaming => "streaming",
            Lane::History => "history",
            Lane::Tools => "tools",
            Lane::Idle => "idle",
        }
    }
}

/// How long each part runs. `--quick` trades precision for a run of about a minute.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Unrecorded load before a lane's first round, so connections are open and
    /// caches warm.
    pub warmup: Duration,
    pub overhead_rounds: usize,
    pub overhead_round: Duration,
    /// Per concurrency level and side, in the throughput lane.
    pub throughput_step: Duration,
    pub throughput_max_concurrency: usize,
    pub stream_rounds: usize,
    pub stream_round: Duration,
    pub stream_concurrency: usize,
    /// Open streams to hold at once, in increasing order.
    pub hold_levels: Vec<usize>,
    pub history_depths: Vec<usize>,
    pub history_rounds: usize,
    pub history_round: Duration,
    pub tools_rounds: usize,
    pub tools_round: Duration,
    pub idle_window: Duration,
}

impl Plan {
    pub fn full() -> Self {
        Self {
            warmup: Duration::from_secs(1),
            overhead_rounds: 5,
            overhead_round: Duration::from_secs(2),
            throughput_step: Duration::from_secs(2),
            throughput_max_concurrency: 256,
            stream_rounds: 5,
            stream_round: Duration::from_secs(3),
            stream_concurrency: 32,
            hold_levels: vec![1000, 5000, 10_000],
            history_depths: vec![1, 10, 100, 1000],
            history_rounds: 5,
            history_round: Duration::from_secs(1),
            tools_rounds: 5,
            tools_round: Duration::from_secs(2),
            idle_window: Duration::from_secs(10),
        }
    }

    pub fn quick() -> Self {
        Self {
            warmup: Duration::from_millis(200),
            overhead_rounds: 3,
            overhead_round: Duration::from_millis(400),
            throughput_step: Duration::from_millis(300),
            throughput_max_concurrency: 128,
            stream_rounds: 2,
            stream_round: Duration::from_millis(1200),
            stream_concurrency: 16,
            hold_levels: vec![250, 1000],
            history_depths: vec![1, 10, 100],
            history_rounds: 2,
            history_round: Duration::from_millis(300),
            tools_rounds: 2,
            tools_round: Duration::from_millis(400),
            idle_window: Duration::from_secs(2),
        }
    }
}

/// Everything a lane needs.
pub struct Ctx {
    pub plan: Plan,
    pub antwort: PathBuf,
    pub mock: PathBuf,
    /// Logs and SQLite files of this run.
    pub work: PathBuf,
    pub placement: Placement,
    pub client: reqwest::Client,
    pub clock_ticks: u64,
    pub postgres_url: String,
    /// Numbers the processes' log files in the order they started.
    pub serial: AtomicUsize,
    /// The gateway's open-file limit, read from the first gateway started.
    pub gateway_open_files: OnceLock<Option<u64>>,
}

/// Where the gateway keeps responses.
pub enum Storage {
    Memory,
    /// A fresh SQLite file in the work directory.
    Sqlite,
    /// This SQLite file (to serve again what an earlier gateway stored).
    SqliteFile(PathBuf),
    /// A PostgreSQL URL (the throughput lane gives it a fresh schema).
    Postgres(String),
}

impl Ctx {
    fn next_name(&self, what: &str, label: &str) -> String {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        format!("{n:02}-{label}-{what}")
    }

    /// Starts `antwort-mock` on the driver's core, with a delay between streamed
    /// tokens, and waits until it answers.
    pub async fn start_mock(&self, label: &str, token_delay_ms: u64) -> Result<Proc> {
        let port = procs::free_port()?;
        let mut mock = procs::spawn(Spawn {
            name: self.next_name("mock", label),
            program: &self.mock,
            args: vec![
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--ttft-ms".into(),
                "0".into(),
                "--token-delay-ms".into(),
                token_delay_ms.to_string(),
            ],
            env: Vec::new(),
            core: self.placement.driver_core,
            port,
            log_dir: &self.work,
        })?;
        mock.wait_ready(&self.client, "/v1/models").await?;
        Ok(mock)
    }

    /// Starts `antwort serve` on its own core in front of `mock`, and waits for
    /// `/healthz`.
    pub async fn start_gateway(
        &self,
        label: &str,
        mock: &Proc,
        storage: Storage,
        mcp_loopback: bool,
    ) -> Result<Proc> {
        self.start_gateway_logging(label, mock, storage, mcp_loopback, "warn")
            .await
    }

    /// [`Ctx::start_gateway`] logging at `log_level` (an `ANTWORT_LOG_LEVEL`).
    pub async fn start_gateway_logging(
        &self,
        label: &str,
        mock: &Proc,
        storage: Storage,
        mcp_loopback: bool,
        log_level: &str,
    ) -> Result<Proc> {
        let port = procs::free_port()?;
        let name = self.next_name("gateway", label);
        // Authenticated, as a gateway in production is: every request pays
        // for its key's check (the driver sends it, `load::BENCH_KEY`).
        let mut env: Vec<(String, String)> = vec![
            ("ANTWORT_LOG_LEVEL".into(), log_level.to_owned()),
            (
                "ANTWORT_API_KEYS".into(),
                format!(
                    r#"[{{"key": "{}", "subject": "bench", "tenant_id": "bench"}}]"#,
                    load::BENCH_KEY
                ),
            ),
            ("ANTWORT_AUDIT_OUTPUT".into(), "none".into()),
        ];
        match storage {
            Storage::Memory => env.push(("ANTWORT_STORAGE".into(), "memory".into())),
            Storage::Sqlite => {
                env.push(("ANTWORT_STORAGE".into(), "sqlite".into()));
                let path = self.work.join(format!("{name}.db"));
                env.push((
                    "ANTWORT_STORAGE_DSN".into(),
                    path.to_string_lossy().into_owned(),
                ));
            }
            Storage::SqliteFile(path) => {
                env.push(("ANTWORT_STORAGE".into(), "sqlite".into()));
                env.push((
                    "ANTWORT_STORAGE_DSN".into(),
                    path.to_string_lossy().into_owned(),
                ));
            }
            Storage::Postgres(dsn) => {
                env.push(("ANTWORT_STORAGE".into(), "postgres".into()));
                env.push(("ANTWORT_STORAGE_DSN".into(), dsn));
            }
        }
        if mcp_loopback {
            env.push(("ANTWORT_MCP_ALLOW_LOOPBACK".into(), "true".into()));
        }
        let mut gateway = procs::spawn(Spawn {
            name,
            program: &self.antwort,
            args: procs::gateway_args(port, &mock.url),
            env,
            core: self.placement.gateway_core,
            port,
            log_dir: &self.work,
        })?;
        gateway.wait_ready(&self.client, "/healthz").await?;
        let _ = self.gateway_open_files.set(gateway.open_files_limit());
        Ok(gateway)
    }
}

/// Runs a round and returns it with the CPU time `proc` spent meanwhile, in ticks.
pub async fn measure(proc: &Proc, round: impl Future<Output = Round>) -> (Round, u64) {
    let before = proc.cpu_ticks();
    let round = round.await;
    (round, proc.cpu_ticks().saturating_sub(before))
}

/// One side's rounds, added up.
#[derive(Debug, Default)]
pub struct SideAcc {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    wall: Duration,
    ticks: u64,
}

impl SideAcc {
    pub fn add(&mut self, (round, ticks): (Round, u64)) {
        self.latencies.extend(round.latencies);
        self.errors += round.errors;
        if self.first_error.is_none() {
            self.first_error = round.first_error;
        }
        self.wall += round.wall;
        self.ticks += ticks;
    }

    /// The side's figures; CPU and peak memory are `proc`'s (the mock for a direct
    /// side, the gateway for a gateway side).
    pub fn finish(mut self, proc: &Proc, clock_ticks: u64) -> Side {
        let latency = Dist::of(&mut self.latencies);
        let slow_40ms = self
            .latencies
            .iter()
            .filter(|l| **l >= Duration::from_millis(40))
            .count();
        let requests = self.latencies.len();
        let wall = self.wall.as_secs_f64();
        let cpu_seconds = self.ticks as f64 / clock_ticks.max(1) as f64;
        let (_, hwm) = proc.memory_kib();
        Side {
            requests,
            errors: self.errors,
            first_error: self.first_error,
            latency,
            rps: if wall > 0.0 {
                requests as f64 / wall
            } else {
                0.0
            },
            process: proc_role(proc),
            cpu_seconds,
            cpu_us_per_request: (requests > 0).then(|| cpu_seconds * 1e6 / requests as f64),
            cpu_percent: if wall > 0.0 {
                cpu_seconds * 100.0 / wall
            } else {
                0.0
            },
            peak_rss_mb: (hwm > 0).then(|| kib_to_mb(hwm)),
            slow_40ms,
        }
    }
}

fn proc_role(proc: &Proc) -> String {
    if proc.name.ends_with("gateway") {
        "gateway".into()
    } else {
        "mock".into()
    }
}

/// One side of a comparison: the mock answering directly, or the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub requests: usize,
    pub errors: u64,
    pub first_error: Option<String>,
    pub latency: Option<Dist>,
    /// Completed requests over the rounds' wall time.
    pub rps: f64,
    /// Whose CPU time and peak memory these are: `mock` or `gateway`.
    pub process: String,
    pub cpu_seconds: f64,
    pub cpu_us_per_request: Option<f64>,
    /// Of one core, over the rounds' wall time.
    pub cpu_percent: f64,
    /// The process's peak resident memory (`VmHWM`) since it started.
    pub peak_rss_mb: Option<f64>,
    /// Requests that took 40 ms or more. On loopback with an instant mock that is
    /// the signature of Nagle's algorithm meeting a delayed ACK (a server writing
    /// small pieces without `TCP_NODELAY`), not of work.
    pub slow_40ms: usize,
}

/// Direct against gateway for one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Compare {
    pub scenario: String,
    pub direct: Side,
    pub gateway: Side,
    pub added_p50_ms: Option<f64>,
    pub added_p99_ms: Option<f64>,
}

impl Compare {
    pub fn new(scenario: impl Into<String>, direct: Side, gateway: Side) -> Self {
        let p50 = |s: &Side| s.latency.map(|d| d.p50_ms);
        let p99 = |s: &Side| s.latency.map(|d| d.p99_ms);
        Self {
            scenario: scenario.into(),
            added_p50_ms: added(p50(&gateway), p50(&direct)),
            added_p99_ms: added(p99(&gateway), p99(&direct)),
            direct,
            gateway,
        }
    }
}

/// A Chat Completions body with one user message, as the gateway would send it.
pub fn chat_body(text: &str, stream: bool) -> serde_json::Value {
    let mut body = serde_json::json!({
        "messages": [{"role": "user", "content": text}],
        "model": "mock-model",
        "stream": stream,
    });
    if stream {
        body["stream_options"] = serde_json::json!({"include_usage": true});
    }
    body
}

/// A Responses body with one input text.
pub fn responses_body(text: &str, stream: bool, store: bool) -> serde_json::Value {
    serde_json::json!({
        "model": "mock-model",
        "input": text,
        "stream": stream,
        "store": store,
    })
}

/// JSON to request bytes, built once per lane and shared by every request.
pub fn bytes_of(value: &serde_json::Value) -> bytes::Bytes {
    bytes::Bytes::from(value.to_string())
}
