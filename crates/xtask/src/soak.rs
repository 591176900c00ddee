//! `cargo xtask soak`: the fault soak. For N minutes per store (SQLite, then
//! PostgreSQL), concurrent clients send a random mix of requests, most of which
//! script a fault into the mock (a stream cut short, an error status, a stalled
//! error body, a held connection after the finish chunk, a slow status line, a
//! huge chunk), and some of which leave before the end. At the end it checks
//! the gateway's promises:
//!
//! - every stream that started ended with exactly one terminal event (or, when
//!   it failed before the response began, with one `error` event), then `[DONE]`;
//! - every acknowledged stored response (an id a client was given) is stored,
//!   with the status its client was told;
//! - no 5xx for a request without a fault, and every faulty one answered as its
//!   fault explains;
//! - no panic in the gateway's log;
//! - memory flat: the gateway's resident memory in the last quarter of the run
//!   within 25 % (plus 16 MiB) of the first quarter's.
//!
//! The report goes next to the benchmark's: `bench/results/soak-<time>.md` and
//! `soak-latest.md`, with the JSON beside them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};

use crate::clock::Utc;
use crate::procs::{self, Spawn};

mod scenarios;

use scenarios::{Expect, SCENARIOS, Scenario};

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// Minutes of load per store.
    #[arg(long, default_value_t = 5.0)]
    minutes: f64,
    /// Clients at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Stores to soak, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    storage: Vec<String>,
    /// Directory for the report (default: bench/results in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Use the binaries in target/release as they are, without building first.
    #[arg(long)]
    no_build: bool,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
}

/// What one store's soak saw.
#[derive(Debug, Default, Serialize)]
struct StoreRun {
    storage: String,
    seconds: f64,
    requests: u64,
    /// Per scenario: how many ran, and how many broke a promise.
    scenarios: BTreeMap<String, (u64, u64)>,
    streams_started: u64,
    acknowledged_stored: u64,
    verified_stored: u64,
    violations: Vec<String>,
    violation_count: u64,
    panics_in_log: u64,
    /// Resident memory of the gateway, in MiB, sampled through the run.
    rss_mib: Vec<f64>,
    memory_flat: bool,
}

/// Shared by the clients while a soak runs.
#[derive(Default)]
struct Tally {
    run: StoreRun,
    /// Acknowledged stored responses: id, and the status its client was told
    /// (`None` when the client left before the end).
    stored: Vec<(String, Option<String>)>,
}

impl Tally {
    fn violation(&mut self, scenario: &str, what: String) {
        self.run.violation_count += 1;
        if let Some(entry) = self.run.scenarios.get_mut(scenario) {
            entry.1 += 1;
        }
        if self.run.violations.len() < 30 {
            self.run.violations.push(format!("{scenario}: {what}"));
        }
    }
}

pub fn soak(args: SoakArgs, workspace: &Path, build: impl Fn(&Path) -> Result<()>) -> Result<bool> {
    if !args.no_build {
        build(workspace)?;
    }
    let release = crate::target_dir(workspace).join("release");
    let (antwort, mock) = (release.join("antwort"), release.join("antwort-mock"));
    for binary in [&antwort, &mock] {
        if !binary.exists() {
            bail!("{} is missing; run without --no-build", binary.display());
        }
    }
    let work = std::env::temp_dir().join(format!("antwort-soak-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Utc::now();
    let mut runs = Vec::new();
    for storage in &args.storage {
        eprintln!("==> soak on {storage} for {} min", args.minutes);
        // A store that cannot be soaked (PostgreSQL unreachable) is a failed run
        // in the report, not the end of the others'.
        let run = runtime
            .block_on(soak_store(&args, storage, &antwort, &mock, &work))
            .unwrap_or_else(|error| StoreRun {
                storage: storage.clone(),
                violation_count: 1,
                violations: vec![format!("could not run: {error:#}")],
                ..StoreRun::default()
            });
        eprintln!(
            "  {} requests, {} violations, {} panics, memory flat: {}",
            run.requests, run.violation_count, run.panics_in_log, run.memory_flat
        );
        runs.push(run);
    }
    let passed = runs
        .iter()
        .all(|run| run.violation_count == 0 && run.panics_in_log == 0 && run.memory_flat);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| workspace.join("bench").join("results"));
    std::fs::create_dir_all(&out)?;
    let report = json!({
        "started": started.iso(),
        "commit": crate::machine::git_describe(workspace),
        "minutes_per_store": args.minutes,
        "concurrency": args.concurrency,
        "passed": passed,
        "runs": runs,
    });
    let markdown = markdown(&report, &runs, passed);
    for stem in [
        format!("soak-{}", started.compact()),
        "soak-latest".to_owned(),
    ] {
        std::fs::write(out.join(format!("{stem}.md")), &markdown)?;
        std::fs::write(
            out.join(format!("{stem}.json")),
            serde_json::to_string_pretty(&report)?,
        )?;
    }
    println!("{markdown}");
    if passed {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("==> logs are in {}", work.display());
    }
    Ok(passed)
}

async fn soak_store(
    args: &SoakArgs,
    storage: &str,
    antwort: &Path,
    mock_program: &Path,
    work: &Path,
) -> Result<StoreRun> {
    let client = crate::load::client()?;
    let mock_port = procs::free_port()?;
    let mut mock = procs::spawn(Spawn {
        name: format!("soak-{storage}-mock"),
        program: mock_program,
        args: vec!["--listen".into(), format!("127.0.0.1:{mock_port}")],
        env: Vec::new(),
        core: None,
        port: mock_port,
        log_dir: work,
    })?;
    mock.wait_ready(&client, "/v1/models").await?;
    let schema;
    let mut env: Vec<(String, String)> = vec![
        ("ANTWORT_LOG_LEVEL".into(), "warn".into()),
        ("ANTWORT_KEEPALIVE_INTERVAL".into(), "1s".into()),
        ("ANTWORT_BACKEND_TIMEOUT".into(), "20s".into()),
    ];
    match storage {
        "sqlite" => {
            env.push(("ANTWORT_STORAGE".into(), "sqlite".into()));
            let path = work.join(format!("soak-{}.db", std::process::id()));
            env.push(("ANTWORT_STORAGE_DSN".into(), path.to_string_lossy().into()));
        }
        "postgres" => {
            schema = crate::pg::Schema::create(
                &args.postgres_url,
                &format!("soak_{}", std::process::id()),
            )
            .context("PostgreSQL not reachable")?;
            env.push(("ANTWORT_STORAGE".into(), "postgres".into()));
            env.push(("ANTWORT_STORAGE_DSN".into(), schema.dsn()));
        }
        other => bail!("unknown storage `{other}` (sqlite or postgres)"),
    }
    let port = procs::free_port()?;
    let mut gateway = procs::spawn(Spawn {
        name: format!("soak-{storage}-gateway"),
        program: antwort,
        args: procs::gateway_args(port, &mock.url),
        env,
        core: None,
        port,
        log_dir: work,
    })?;
    gateway.wait_ready(&client, "/healthz").await?;

    let tally = Arc::new(Mutex::new(Tally::default()));
    for scenario in SCENARIOS {
        tally
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .run
            .scenarios
            .insert(scenario.name.to_owned(), (0, 0));
    }
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = Vec::new();
    for worker in 0..args.concurrency {
        let (client, url, tally) = (client.clone(), gateway.url.clone(), tally.clone());
        clients.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(worker as u64 + 1);
            while Instant::now() < deadline {
                let scenario = &SCENARIOS[rng.usize(..SCENARIOS.len())];
                let leave = scenario.stream && rng.u8(..10) == 0;
                one_request(&client, &url, scenario, leave, &tally).await;
            }
        }));
    }
    let mut rss = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2).min(duration / 20)).await;
        gateway.check_alive()?;
        rss.push(gateway.memory_kib().0 as f64 / 1024.0);
    }
    for client in clients {
        client.await?;
    }
    let mut tally = std::mem::take(&mut *tally.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    verify_stored(&client, &gateway.url, &mut tally).await;
    gateway.check_alive()?;
    let log = std::fs::read_to_string(&gateway.log).unwrap_or_default();
    tally.run.panics_in_log = log.matches("panicked").count() as u64;
    tally.run.storage = storage.to_owned();
    tally.run.seconds = started.elapsed().as_secs_f64();
    tally.run.memory_flat = memory_flat(&rss);
    tally.run.rss_mib = rss;
    drop(gateway);
    drop(mock);
    Ok(tally.run)
}

/// The first quarter's median against the last quarter's.
fn memory_flat(samples: &[f64]) -> bool {
    if samples.len() < 4 {
        return true;
    }
    let quarter = samples.len() / 4;
    let median = |part: &[f64]| {
        let mut part = part.to_vec();
        part.sort_by(f64::total_cmp);
        part[part.len() / 2]
    };
    let (first, last) = (
        median(&samples[..quarter]),
        median(&samples[samples.len() - quarter..]),
    );
    last <= first * 1.25 + 16.0
}

async fn one_request(
    client: &reqwest::Client,
    url: &str,
    scenario: &Scenario,
    leave: bool,
    tally: &Mutex<Tally>,
) {
    let mut body = json!({"input": scenario.input, "store": scenario.store});
    if scenario.stream {
        body["stream"] = json!(true);
    }
    let outcome = tokio::time::timeout(
        Duration::from_secs(90),
        client
            .post(format!("{url}/v1/responses"))
            .json(&body)
            .send(),
    )
    .await;
    let mut findings = Vec::new();
    let mut stored = None;
    let mut started_stream = false;
    match outcome {
        Err(_) => findings.push("no answer within 90 s".to_owned()),
        Ok(Err(error)) => findings.push(format!("transport error: {error}")),
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            let header_id = response
                .headers()
                .get("x-antwort-response-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if status != 200 {
                if !scenario.expect.allows_status(status) {
                    findings.push(format!("HTTP {status}"));
                }
                if let (Some(id), true) = (header_id, scenario.store) {
                    stored = Some((id, Some("failed".to_owned())));
                }
            } else if scenario.stream {
                started_stream = true;
                let (finding, ack) = read_stream(response, scenario, leave).await;
                findings.extend(finding);
                stored = ack.filter(|_| scenario.store);
            } else {
                match response.json::<Value>().await {
                    Ok(answer) => {
                        let status = answer["status"].as_str().unwrap_or("").to_owned();
                        if !scenario.expect.allows_terminal(&status) {
                            findings.push(format!("status {status}"));
                        }
                        if scenario.store {
                            let id = answer["id"].as_str().unwrap_or("").to_owned();
                            stored = Some((id, Some(status)));
                        }
                    }
                    Err(error) => findings.push(format!("unreadable answer: {error}")),
                }
            }
        }
    }
    let Ok(mut tally) = tally.lock() else { return };
    tally.run.requests += 1;
    tally.run.streams_started += u64::from(started_stream);
    if let Some(entry) = tally.run.scenarios.get_mut(scenario.name) {
        entry.0 += 1;
    }
    for finding in findings {
        tally.violation(scenario.name, finding);
    }
    if let Some(stored) = stored {
        tally.run.acknowledged_stored += 1;
        tally.stored.push(stored);
    }
}

/// Reads a stream to its end (or, when `leave`, to its first text delta) and
/// checks how it ended. Returns what broke a promise, and the response's id with
/// the status its client was told (none when it left).
async fn read_stream(
    response: reqwest::Response,
    scenario: &Scenario,
    leave: bool,
) -> (Vec<String>, Option<(String, Option<String>)>) {
    let mut findings = Vec::new();
    let mut events = antwort_egress::sse::events(response.bytes_stream(), 64 << 20);
    let (mut id, mut terminals, mut errors, mut done, mut after_done) =
        (None, Vec::new(), 0, false, false);
    loop {
        let next = tokio::time::timeout(Duration::from_secs(60), events.next()).await;
        let event = match next {
            Err(_) => {
                findings.push("a stream silent for 60 s".to_owned());
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                findings.push(format!("stream broken: {error}"));
                break;
            }
            Ok(Some(Ok(event))) => event,
        };
        if done {
            after_done = true;
        }
        if event.data == "[DONE]" {
            done = true;
            continue;
        }
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            findings.push("an event that is not JSON".to_owned());
            continue;
        };
        match data["type"].as_str().unwrap_or("") {
            "response.created" => id = data["response"]["id"].as_str().map(str::to_owned),
            "error" => errors += 1,
            "response.completed" | "response.failed" | "response.incomplete" => {
                terminals.push(data["response"]["status"].as_str().unwrap_or("").to_owned());
            }
            "response.output_text.delta" if leave => {
                return (findings, id.map(|id| (id, None)));
            }
            _ => {}
        }
    }
    match (&id, terminals.as_slice()) {
        (Some(_), [status]) => {
            if !scenario.expect.allows_terminal(status) {
                findings.push(format!("ended {status}"));
            }
        }
        (Some(_), other) => findings.push(format!("{} terminal events", other.len())),
        (None, []) if errors == 1 => {
            if scenario.expect != Expect::FailsEarly {
                findings.push("failed before it began".to_owned());
            }
        }
        (None, _) => findings.push(format!("no response.created ({errors} errors)")),
    }
    if !done || after_done {
        findings.push("not ended by [DONE]".to_owned());
    }
    let told = terminals.first().cloned();
    (findings, id.map(|id| (id, told)))
}

/// Every acknowledged stored response is found, with the status its client was
/// told (or, for clients that left, some terminal status).
async fn verify_stored(client: &reqwest::Client, url: &str, tally: &mut Tally) {
    let stored = std::mem::take(&mut tally.stored);
    for (id, told) in stored {
        let deadline = Instant::now() + Duration::from_secs(60);
        let finding = loop {
            let answer = client.get(format!("{url}/v1/responses/{id}")).send().await;
            let body = match answer {
                Ok(answer) if answer.status() == 200 => answer.json::<Value>().await.ok(),
                Ok(answer) => break Some(format!("{id}: GET answered {}", answer.status())),
                Err(error) => break Some(format!("{id}: {error}")),
            };
            let status = body
                .as_ref()
                .and_then(|b| b["status"].as_str())
                .unwrap_or("")
                .to_owned();
            if status == "in_progress" && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            break match &told {
                Some(told) if *told != status => {
                    Some(format!("{id}: told {told}, stored {status}"))
                }
                None if status == "in_progress" => Some(format!("{id}: never finished")),
                _ => None,
            };
        };
        match finding {
            Some(finding) => tally.violation("stored", finding),
            None => tally.run.verified_stored += 1,
        }
    }
}

fn markdown(report: &Value, runs: &[StoreRun], passed: bool) -> String {
    let mut text = format!(
        "# Fault soak, {}\n\nCommit `{}`; {} min per store, {} clients at once. Verdict: **{}**.\n\n\
         Produced by `cargo xtask soak`; the checks are described in `docs/reliability.md`.\n",
        report["started"].as_str().unwrap_or(""),
        report["commit"].as_str().unwrap_or(""),
        report["minutes_per_store"],
        report["concurrency"],
        if passed { "passed" } else { "FAILED" },
    );
    for run in runs {
        let first = run.rss_mib.first().copied().unwrap_or(0.0);
        let last = run.rss_mib.last().copied().unwrap_or(0.0);
        let peak = run.rss_mib.iter().copied().fold(0.0, f64::max);
        text.push_str(&format!(
            "\n## {}\n\n| | |\n|---|---|\n| requests | {} in {:.0} s ({:.0}/s) |\n\
             | streams started | {} |\n| stored responses acknowledged | {} |\n\
             | found stored as told | {} |\n| promises broken | {} |\n| panics in the log | {} |\n\
             | gateway memory (RSS) | {first:.1} MiB at start, {last:.1} MiB at the end, {peak:.1} MiB peak: {} |\n\n\
             | scenario | requests | broken |\n|---|---|---|\n",
            run.storage,
            run.requests,
            run.seconds,
            run.requests as f64 / run.seconds.max(1.0),
            run.streams_started,
            run.acknowledged_stored,
            run.verified_stored,
            run.violation_count,
            run.panics_in_log,
            if run.memory_flat { "flat" } else { "GROWING" },
        ));
        for (name, (count, broken)) in &run.scenarios {
            text.push_str(&format!("| {name} | {count} | {broken} |\n"));
        }
        if !run.violations.is_empty() {
            text.push_str("\nFirst broken promises:\n\n");
            for violation in &run.violations {
                text.push_str(&format!("- {violation}\n"));
            }
        }
    }
    text
}
