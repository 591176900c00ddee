//! The report of one run: everything measured (the JSON file is this structure),
//! each PERFORMANCE.md target beside its measured figure with a verdict, the
//! Markdown tables, and the chart's panels.
//!
//! Nothing here measures or assumes a figure: every number printed comes from the
//! run's results, and a target without a measurement says "not measured" and why.

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use crate::lanes::Compare;
use crate::lanes::history::History;
use crate::lanes::idle::{Idle, IdleWindow};
use crate::lanes::streaming::Streaming;
use crate::lanes::throughput::{LoadPoint, SLO_P99_MS, Variant};
use crate::lanes::{Lane, Plan, Side};
use crate::machine::Machine;
use crate::svg::{self, Panel, Series};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started: String,
    pub mode: String,
    pub command: String,
    pub commit: Option<String>,
    pub duration_seconds: f64,
    pub machine: Machine,
    pub gateway_open_files: Option<u64>,
    /// The machine's 1-minute load average before the run started its processes.
    pub load_average_at_start: Option<f64>,
    /// CPU time the hypervisor gave to other guests during the run, in percent.
    pub steal_percent: Option<f64>,
    pub plan: Plan,
    pub lanes: Vec<Lane>,
    pub checks: Vec<Check>,
    pub overhead: Option<Vec<Compare>>,
    pub throughput: Option<Vec<Variant>>,
    pub streaming: Option<Streaming>,
    pub history: Option<History>,
    pub tools: Option<Vec<Compare>>,
    pub idle: Option<Idle>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub lane: Lane,
    pub error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    NotMet,
    NotMeasured,
    /// PERFORMANCE.md sets no target; the figure is for information.
    NoTarget,
}

impl Verdict {
    fn text(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet => "**not met**",
            Verdict::NotMeasured => "not measured",
            Verdict::NoTarget => "no target",
        }
    }
}

/// One target of PERFORMANCE.md against this run.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub lane: String,
    pub target: String,
    pub measured: String,
    pub verdict: Verdict,
}

fn check(lane: &str, target: &str, measured: String, verdict: Verdict) -> Check {
    Check {
        lane: lane.into(),
        target: target.into(),
        measured,
        verdict,
    }
}

fn met(ok: bool) -> Verdict {
    if ok { Verdict::Met } else { Verdict::NotMet }
}

/// Targets from PERFORMANCE.md ("on this 2-core machine, gateway on one core").
pub const OVERHEAD_P50_MS: f64 = 0.1;
pub const OVERHEAD_P99_MS: f64 = 0.5;
pub const THROUGHPUT_STORE_FALSE: f64 = 10_000.0;
pub const THROUGHPUT_SQLITE: f64 = 5_000.0;
pub const TTFT_P99_MS: f64 = 1.0;
pub const GAP_P99_MS: f64 = 0.2;
pub const STREAMS: usize = 10_000;
pub const STREAMS_RSS_MB: f64 = 500.0;
pub const HISTORY_RATIO: f64 = 2.0;
pub const IDLE_RSS_MB: f64 = 20.0;
/// "~0 CPU" read as under a tenth of a percent of one core.
pub const IDLE_CPU_PERCENT: f64 = 0.1;

/// Every target beside this run's figure.
pub fn checks(report: &Report) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(overhead) = &report.overhead {
        for compare in overhead {
            let lane = format!("overhead, {}", compare.scenario);
            let target =
                format!("p50 added <= {OVERHEAD_P50_MS} ms, p99 added <= {OVERHEAD_P99_MS} ms");
            match (compare.added_p50_ms, compare.added_p99_ms) {
                (Some(p50), Some(p99)) => out.push(check(
                    &lane,
                    &target,
                    format!("p50 {}, p99 {} ms", signed(p50), signed(p99)),
                    met(p50 <= OVERHEAD_P50_MS && p99 <= OVERHEAD_P99_MS),
                )),
                _ => out.push(not_measured(&lane, &target, &compare.gateway)),
            }
        }
    }
    if let Some(variants) = &report.throughput {
        for variant in variants {
            out.push(throughput_check(variant));
        }
    }
    if let Some(streaming) = &report.streaming {
        out.push(stream_check(
            format!("added TTFT p99 <= {TTFT_P99_MS} ms"),
            streaming.added_ttft_p99_ms,
            TTFT_P99_MS,
        ));
        out.push(stream_check(
            format!("added inter-chunk p99 <= {GAP_P99_MS} ms"),
            streaming.added_gap_p99_ms,
            GAP_P99_MS,
        ));
        out.push(streams_check(streaming));
    }
    if let Some(history) = &report.history {
        out.push(history_check(history));
    }
    if let Some(idle) = &report.idle {
        let (fresh, used) = (&idle.fresh, &idle.after_one_request);
        let within = |w: &IdleWindow| w.rss_mb <= IDLE_RSS_MB && w.cpu_percent < IDLE_CPU_PERCENT;
        out.push(check(
            "idle",
            &format!("<= {IDLE_RSS_MB} MB RSS, ~0 CPU (< {IDLE_CPU_PERCENT}% of a core)"),
            format!(
                "fresh: {:.1} MB, {:.3}% CPU; after one request: {:.1} MB, {:.3}% CPU ({:.0} s windows)",
                fresh.rss_mb,
                fresh.cpu_percent,
                used.rss_mb,
                used.cpu_percent,
                used.window_seconds
            ),
            met(within(fresh) && within(used)),
        ));
    }
    for failure in &report.failures {
        out.push(check(
            failure.lane.name(),
            "the lane runs",
            format!("failed: {}", first_line(&failure.error)),
            Verdict::NotMeasured,
        ));
    }
    out
}

fn not_measured(lane: &str, target: &str, side: &Side) -> Check {
    let why = side
        .first_error
        .clone()
        .unwrap_or_else(|| "no successful requests".into());
    check(lane, target, why, Verdict::NotMeasured)
}

fn throughput_check(variant: &Variant) -> Check {
    let lane = format!("throughput, {}", variant.name);
    let floor = match (variant.store, variant.storage.as_str()) {
        (false, _) => Some(THROUGHPUT_STORE_FALSE),
        (true, "sqlite") => Some(THROUGHPUT_SQLITE),
        _ => None,
    };
    let target = match (floor, variant.store) {
        (Some(f), false) => format!(">= {} req/s (p99 <= {SLO_P99_MS} ms)", thousands(f)),
        (Some(f), true) => format!(
            ">= {} req/s (p99 <= {SLO_P99_MS} ms), nothing lost",
            thousands(f)
        ),
        (None, _) => "none in PERFORMANCE.md".into(),
    };
    if let Some(why) = &variant.skipped {
        return check(&lane, &target, why.clone(), Verdict::NotMeasured);
    }
    let ceiling = variant.direct_best.map_or(0.0, |p| p.rps);
    let Some(best) = variant.gateway_best else {
        return check(
            &lane,
            &target,
            format!(
                "no level with p99 <= {SLO_P99_MS} ms and no errors{}",
                variant
                    .first_error
                    .as_deref()
                    .map(|e| format!(" ({})", first_line(e)))
                    .unwrap_or_default()
            ),
            if floor.is_some() {
                Verdict::NotMet
            } else {
                Verdict::NoTarget
            },
        );
    };
    let mut measured = format!(
        "{} req/s at c={} (p99 {:.2} ms); mock ceiling {} req/s",
        thousands(best.rps),
        best.concurrency,
        best.p99_ms,
        thousands(ceiling)
    );
    let lost = variant
        .stored
        .as_ref()
        .map(|s| s.answered - s.found.min(s.answered));
    if let Some(stored) = &variant.stored {
        let _ = write!(
            measured,
            "; {} of {} answered responses found",
            thousands(stored.found as f64),
            thousands(stored.answered as f64)
        );
    }
    let Some(floor) = floor else {
        return check(&lane, &target, measured, Verdict::NoTarget);
    };
    let nothing_lost = lost.is_none_or(|l| l == 0);
    let verdict = if best.rps >= floor && nothing_lost {
        Verdict::Met
    } else if !nothing_lost {
        Verdict::NotMet
    } else if ceiling < floor {
        // The mock and the driver share a core and could not offer the load: the
        // gateway was not shown to fall short.
        measured.push_str(" (below the target: the mock's own ceiling limits this run)");
        Verdict::NotMeasured
    } else {
        Verdict::NotMet
    };
    check(&lane, &target, measured, verdict)
}

fn streams_check(streaming: &Streaming) -> Check {
    let target = format!(
        "{} concurrent streams in <= {STREAMS_RSS_MB} MB RSS",
        thousands(STREAMS as f64)
    );
    let Some(largest) = streaming.holds.iter().max_by_key(|h| h.held) else {
        return check(
            "streaming",
            &target,
            "no streams held".into(),
            Verdict::NotMeasured,
        );
    };
    let per_stream = largest
        .kb_per_stream
        .map(|kb| format!(", {kb:.1} kB per stream"))
        .unwrap_or_default();
    let measured = format!(
        "{} held in {:.1} MB RSS{per_stream}",
        thousands(largest.held as f64),
        largest.rss_mb
    );
    if largest.held >= STREAMS {
        check(
            "streaming",
            &target,
            measured,
            met(largest.rss_mb <= STREAMS_RSS_MB),
        )
    } else if largest.rss_mb > STREAMS_RSS_MB {
        // Fewer streams than the target already took more than its memory.
        check("streaming", &target, measured, Verdict::NotMet)
    } else {
        let why = largest
            .capped_by
            .as_deref()
            .map(|c| format!(" (capped: {c})"))
            .unwrap_or_default();
        check(
            "streaming",
            &target,
            format!("{measured}{why}"),
            Verdict::NotMeasured,
        )
    }
}

/// A streaming figure against its bound; none when no stream completed.
fn stream_check(target: String, added_ms: Option<f64>, bound_ms: f64) -> Check {
    match added_ms {
        Some(v) => check(
            "streaming",
            &target,
            format!("{} ms", signed(v)),
            met(v <= bound_ms),
        ),
        None => check(
            "streaming",
            &target,
            "no complete streams".into(),
            Verdict::NotMeasured,
        ),
    }
}

fn history_check(history: &History) -> Check {
    let target = format!(
        "depth 1000: added latency <= {HISTORY_RATIO}x depth 1, constant number of queries"
    );
    let added = |depth: usize| {
        history
            .depths
            .iter()
            .find(|d| d.depth == depth)
            .and_then(|d| d.compare.added_p50_ms)
    };
    let counts: Option<Vec<usize>> = history.depths.iter().map(|d| d.queries).collect();
    let (queries, constant) = match counts.as_deref() {
        Some([first, rest @ ..]) if rest.iter().all(|n| n == first) => (
            format!("{first} queries per request at every depth"),
            Some(true),
        ),
        Some(counts) if !counts.is_empty() => (
            format!(
                "queries per request by depth: {}",
                counts
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(false),
        ),
        _ => ("queries not counted".to_owned(), None),
    };
    match (added(1), added(1000)) {
        (Some(one), Some(thousand)) if one > 0.0 => {
            let latency_met = thousand <= HISTORY_RATIO * one;
            let verdict = match constant {
                None if latency_met => Verdict::NotMeasured,
                None => Verdict::NotMet,
                Some(constant) => met(latency_met && constant),
            };
            check(
                "history",
                &target,
                format!(
                    "added p50 {:.3} ms at depth 1000 vs {:.3} ms at depth 1 ({:.1}x); {queries}",
                    thousand,
                    one,
                    thousand / one
                ),
                verdict,
            )
        }
        (Some(one), Some(thousand)) => check(
            "history",
            &target,
            format!(
                "added p50 {thousand:.3} ms at depth 1000, {one:.3} ms at depth 1: no positive baseline; {queries}"
            ),
            Verdict::NotMeasured,
        ),
        _ => check(
            "history",
            &target,
            format!(
                "depth 1000 not run (chain of {} turns); {queries}",
                history.chain_length
            ),
            Verdict::NotMeasured,
        ),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// `12,345` for counts and rates.
pub fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn signed(v: f64) -> String {
    format!("{v:+.3}")
}

fn opt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "-".into(),
    }
}

fn opt_signed(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite()).map_or("-".into(), signed)
}

/// The whole report in Markdown; `chart` is the SVG file's name beside it.
pub fn markdown(report: &Report, chart: &str) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let _ = writeln!(
        md,
        "# antwort benchmark: {} ({} run)\n",
        report.started, report.mode
    );
    let _ = writeln!(
        md,
        "- Command: `{}`; the run took {:.0} s.",
        report.command, report.duration_seconds
    );
    if let Some(commit) = &report.commit {
        let _ = writeln!(md, "- Commit: {commit}.");
    }
    let _ = writeln!(
        md,
        "- Machine: {} CPUs ({}), {} RAM, Linux {}.",
        m.cpus,
        m.cpu_model,
        m.mem_total_mb
            .map_or("unknown".into(), |mb| format!("{:.1} GB", mb / 1000.0)),
        m.kernel.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(md, "- Placement: {}.", m.placement.describe());
    let _ = writeln!(
        md,
        "- Open-file limits: load driver {}, gateway {}.",
        m.driver_open_files
            .map_or("unknown".into(), |n| n.to_string()),
        report
            .gateway_open_files
            .map_or("unknown".into(), |n| n.to_string())
    );
    let _ = writeln!(
        md,
        "- Noise: 1-minute load average {} before the run; {} of the machine's CPU time stolen by the hypervisor during it.",
        opt(report.load_average_at_start, 2),
        report
            .steal_percent
            .map_or("unknown".into(), |p| format!("{p:.1}%"))
    );
    let _ = writeln!(
        md,
        "- Units: milliseconds; MB = 10^6 bytes; *added* = gateway minus direct at the same percentile; CPU in percent of one core; peak RSS is `VmHWM` of the process serving that side (mock or gateway)."
    );
    let _ = writeln!(
        md,
        "- *>= 40 ms* counts requests that took 40 ms or more: on loopback against a mock that answers at once, that is a TCP stall (Nagle's algorithm meeting a delayed ACK, from a server that writes small pieces without `TCP_NODELAY`), not work."
    );
    if report.mode == "quick" {
        let _ = writeln!(
            md,
            "- A quick run has short rounds and few samples: its figures are for development, not for comparison."
        );
    }

    md.push_str("\n## Targets (PERFORMANCE.md)\n\n| lane | target | measured | verdict |\n|---|---|---|---|\n");
    for c in &report.checks {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            c.lane,
            c.target,
            cell(&c.measured),
            c.verdict.text()
        );
    }

    if let Some(overhead) = &report.overhead {
        md.push_str("\n## 1. Overhead\n\nNon-streaming create, `store: false`, the mock answering at once. Direct: the same Chat Completions request straight to the mock.\n\n");
        compare_table(&mut md, "concurrency", overhead);
    }
    if let Some(variants) = &report.throughput {
        throughput_section(&mut md, variants, chart, report.plan.throughput_step);
    }
    if let Some(streaming) = &report.streaming {
        streaming_section(&mut md, streaming);
    }
    if let Some(history) = &report.history {
        history_section(&mut md, history);
    }
    if let Some(tools) = &report.tools {
        md.push_str("\n## 5. Tools\n\nOne request at a time, streamed. The direct side of the MCP call does what the gateway does: `tools/list` and `tools/call` on an open MCP session and both model turns. A tool loop's sample is one loop of 20 turns (divide by 20 for a turn), its direct side the same 20 Chat Completions turns with the whole history; the WebSocket loop opens its socket each loop and continues from the connection's memory (`store: false`).\n\n");
        compare_table(&mut md, "scenario", tools);
    }
    if let Some(idle) = &report.idle {
        md.push_str("\n## 6. Idle\n\nA gateway (SQLite store) serving nothing: freshly started, then again after it has answered one stored request.\n\n| state | window | RSS | peak RSS | CPU time | CPU |\n|---|---|---|---|---|---|\n");
        for (state, w) in [
            ("fresh", &idle.fresh),
            ("after one request", &idle.after_one_request),
        ] {
            let _ = writeln!(
                md,
                "| {state} | {:.1} s | {:.1} MB | {:.1} MB | {:.3} s | {:.3}% |",
                w.window_seconds, w.rss_mb, w.peak_rss_mb, w.cpu_seconds, w.cpu_percent
            );
        }
    }
    if !report.failures.is_empty() {
        md.push_str("\n## Failures\n\n");
        for failure in &report.failures {
            let _ = writeln!(md, "- {}: {}", failure.lane.name(), cell(&failure.error));
        }
    }
    md
}

/// Table cells must stay on one line and not split the table.
fn cell(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}

fn side_row(md: &mut String, scenario: &str, path: &str, s: &Side) {
    let d = s.latency;
    let _ = writeln!(
        md,
        "| {scenario} | {path} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
        thousands(s.requests as f64),
        s.errors,
        opt(d.map(|d| d.p50_ms), 3),
        opt(d.map(|d| d.p99_ms), 3),
        opt(d.map(|d| d.max_ms), 3),
        s.slow_40ms,
        thousands(s.rps),
        opt(s.cpu_us_per_request, 1),
        s.cpu_percent,
        opt(s.peak_rss_mb, 1),
    );
}

fn compare_table(md: &mut String, first: &str, rows: &[Compare]) {
    let _ = writeln!(
        md,
        "| {first} | path | requests | errors | p50 | p99 | max | >= 40 ms | req/s | CPU µs/req | CPU % | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for c in rows {
        side_row(md, &c.scenario, "direct (mock)", &c.direct);
        side_row(md, &c.scenario, "gateway", &c.gateway);
        let _ = writeln!(
            md,
            "| {} | **added** | | | **{}** | **{}** | | | | | | |",
            c.scenario,
            opt_signed(c.added_p50_ms),
            opt_signed(c.added_p99_ms)
        );
    }
    let errors: Vec<String> = rows
        .iter()
        .flat_map(|c| {
            [("direct", &c.direct), ("gateway", &c.gateway)]
                .into_iter()
                .filter_map(|(path, s)| {
                    s.first_error
                        .as_ref()
                        .map(|e| format!("- {} {path}: first error: {}", c.scenario, cell(e)))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(md, "\n{}", errors.join("\n"));
    }
}

fn throughput_section(md: &mut String, variants: &[Variant], chart: &str, step: Duration) {
    let _ = write!(
        md,
        "\n## 2. Throughput\n\nClosed-loop clients at concurrency 1, 2, 4, ... until saturation, {:.1} s per level and side. The figure is the best throughput whose p99 stays within {SLO_P99_MS} ms (and without errors); *direct* is the mock's own ceiling with the load driver on the same core.\n\n| variant | direct (mock ceiling) | gateway | gateway / direct | stored responses found | gateway peak RSS |\n|---|---|---|---|---|---|\n",
        step.as_secs_f64()
    );
    for v in variants {
        if let Some(why) = &v.skipped {
            let _ = writeln!(md, "| {} | skipped: {} | | | | |", v.name, cell(why));
            continue;
        }
        let best = |p: Option<LoadPoint>| {
            p.map_or("none within bound".into(), |p| {
                format!(
                    "{} req/s (c={}, p99 {:.2} ms)",
                    thousands(p.rps),
                    p.concurrency,
                    p.p99_ms
                )
            })
        };
        let ratio = match (v.gateway_best, v.direct_best) {
            (Some(g), Some(d)) if d.rps > 0.0 => format!("{:.0}%", g.rps * 100.0 / d.rps),
            _ => "-".into(),
        };
        let stored = v.stored.as_ref().map_or("-".into(), |s| {
            format!(
                "{} of {}",
                thousands(s.found as f64),
                thousands(s.answered as f64)
            )
        });
        let _ = writeln!(
            md,
            "| {} | {} | {} | {ratio} | {stored} | {} MB |",
            v.name,
            best(v.direct_best),
            best(v.gateway_best),
            opt(v.gateway_peak_rss_mb, 1)
        );
    }
    let _ = writeln!(md, "\n![latency against load, direct and gateway]({chart})");
    for v in variants.iter().filter(|v| v.skipped.is_none()) {
        let _ = write!(
            md,
            "\n### {}\n\n| clients | direct req/s | direct p50 | direct p99 | mock CPU % | gateway req/s | gateway p50 | gateway p99 | gateway CPU % | gateway errors |\n|---|---|---|---|---|---|---|---|---|---|\n",
            v.name
        );
        let levels = v.direct.len().max(v.gateway.len());
        for i in 0..levels {
            let d = v.direct.get(i);
            let g = v.gateway.get(i);
            let c = d.or(g).map_or(0, |p| p.concurrency);
            let cols = |p: Option<&LoadPoint>| match p {
                Some(p) => format!(
                    "{} | {:.3} | {} | {:.0}",
                    thousands(p.rps),
                    p.p50_ms,
                    opt(Some(p.p99_ms), 3),
                    p.cpu_percent
                ),
                None => "- | - | - | -".into(),
            };
            let _ = writeln!(
                md,
                "| {c} | {} | {} | {} |",
                cols(d),
                cols(g),
                g.map_or("-".into(), |p| p.errors.to_string())
            );
        }
        if let Some(error) = &v.first_error {
            let _ = writeln!(md, "\nFirst error: {}", cell(error));
        }
    }
}

fn streaming_section(md: &mut String, s: &Streaming) {
    let _ = write!(
        md,
        "\n## 3. Streaming\n\nThe mock streams {} deltas {} ms apart; {} streams at a time; {} direct and {} gateway streams measured ({} and {} failed). Time to first token runs from sending the request to the first text delta (a content chunk direct, `response.output_text.delta` through the gateway), which the mock sends at once, so that no timer of the mock's is in it; the gap is the time between consecutive deltas.\n\n| measure | direct p50 | direct p99 | gateway p50 | gateway p99 | added p50 | added p99 |\n|---|---|---|---|---|---|---|\n",
        s.deltas,
        s.token_delay_ms,
        s.concurrency,
        thousands(s.direct_streams as f64),
        thousands(s.gateway_streams as f64),
        s.direct_errors,
        s.gateway_errors
    );
    for (name, d, g, a50, a99) in [
        (
            "time to first token",
            s.ttft_direct,
            s.ttft_gateway,
            s.added_ttft_p50_ms,
            s.added_ttft_p99_ms,
        ),
        (
            "inter-chunk gap",
            s.gap_direct,
            s.gap_gateway,
            s.added_gap_p50_ms,
            s.added_gap_p99_ms,
        ),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | **{}** | **{}** |",
            opt(d.map(|d| d.p50_ms), 3),
            opt(d.map(|d| d.p99_ms), 3),
            opt(g.map(|d| d.p50_ms), 3),
            opt(g.map(|d| d.p99_ms), 3),
            opt_signed(a50),
            opt_signed(a99)
        );
    }
    let _ = writeln!(
        md,
        "\nGateway CPU per stream: {} µs.",
        opt(s.gateway_cpu_us_per_stream, 0)
    );
    if let Some(error) = &s.first_error {
        let _ = writeln!(md, "\nFirst error: {}", cell(error));
    }
    md.push_str("\n### Open streams and memory\n\nEach level on a fresh mock and gateway, warmed up with a few streams first. Streams are opened (up to 256 at a time) and held until all have had `response.created`; then the gateway's RSS is read. *Per stream* is the growth over the warmed-up RSS, divided by the streams held.\n\n| requested | held | failed | time to open | RSS before | RSS held | per stream | note |\n|---|---|---|---|---|---|---|---|\n");
    for h in &s.holds {
        let mut note = h.capped_by.clone().unwrap_or_default();
        if let Some(error) = &h.first_error {
            if !note.is_empty() {
                note.push_str("; ");
            }
            let _ = write!(note, "first error: {error}");
        }
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} s | {:.1} MB | {:.1} MB | {} kB | {} |",
            thousands(h.requested as f64),
            thousands(h.held as f64),
            h.failed,
            h.open_seconds,
            h.rss_before_mb,
            h.rss_mb,
            opt(h.kb_per_stream, 1),
            cell(&note)
        );
    }
}

fn history_section(md: &mut String, h: &History) {
    let _ = write!(
        md,
        "\n## 4. History\n\nA chain of {} stored turns (SQLite) was built in {:.1} s; then `store: false` requests continue it from each depth, one at a time. Direct: the same replayed messages sent to the mock. *Queries*: the SQL statements one gateway request ran at that depth, counted from the log of a second gateway on the same file that logs every statement.\n\n| depth | direct p50 | direct p99 | gateway p50 | gateway p99 | added p50 | added p99 | added p50 / depth 1 | queries |\n|---|---|---|---|---|---|---|---|---|\n",
        thousands(h.chain_length as f64),
        h.build_seconds
    );
    let base = h
        .depths
        .iter()
        .find(|d| d.depth == 1)
        .and_then(|d| d.compare.added_p50_ms)
        .filter(|v| *v > 0.0);
    for d in &h.depths {
        let c = &d.compare;
        let ratio = match (c.added_p50_ms, base) {
            (Some(a), Some(b)) => format!("{:.1}x", a / b),
            _ => "-".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | **{}** | **{}** | {ratio} | {} |",
            thousands(d.depth as f64),
            opt(c.direct.latency.map(|l| l.p50_ms), 3),
            opt(c.direct.latency.map(|l| l.p99_ms), 3),
            opt(c.gateway.latency.map(|l| l.p50_ms), 3),
            opt(c.gateway.latency.map(|l| l.p99_ms), 3),
            opt_signed(c.added_p50_ms),
            opt_signed(c.added_p99_ms),
            d.queries.map_or("-".to_owned(), |n| n.to_string()),
        );
    }
    for d in &h.depths {
        for (path, s) in [
            ("direct", &d.compare.direct),
            ("gateway", &d.compare.gateway),
        ] {
            if let Some(error) = &s.first_error {
                let _ = writeln!(
                    md,
                    "\n- depth {} {path}: first error: {}",
                    d.depth,
                    cell(error)
                );
            }
        }
    }
}

/// The chart: latency against load for each throughput variant, latency against
/// history depth, and memory against open streams.
pub fn chart(report: &Report) -> String {
    let mut panels = Vec::new();
    let series = |name: &str, color, dashed, points: Vec<(f64, f64)>| Series {
        name: name.into(),
        color,
        dashed,
        points,
    };
    for v in report.throughput.iter().flatten() {
        if v.skipped.is_some() {
            continue;
        }
        let curve = |points: &[LoadPoint], p99: bool| -> Vec<(f64, f64)> {
            points
                .iter()
                .map(|p| (p.rps, if p99 { p.p99_ms } else { p.p50_ms }))
                .collect()
        };
        panels.push(Panel {
            title: format!("Throughput, {}", v.name),
            x_label: "requests per second".into(),
            y_label: "latency (ms)".into(),
            x_log: false,
            y_log: true,
            series: vec![
                series("direct p99", svg::DIRECT, false, curve(&v.direct, true)),
                series("direct p50", svg::DIRECT, true, curve(&v.direct, false)),
                series("gateway p99", svg::GATEWAY, false, curve(&v.gateway, true)),
                series("gateway p50", svg::GATEWAY, true, curve(&v.gateway, false)),
            ],
            hline: Some((SLO_P99_MS, format!("p99 bound {SLO_P99_MS} ms"))),
        });
    }
    if let Some(h) = &report.history {
        let curve = |direct: bool, p99: bool| -> Vec<(f64, f64)> {
            h.depths
                .iter()
                .filter_map(|d| {
                    let side = if direct {
                        &d.compare.direct
                    } else {
                        &d.compare.gateway
                    };
                    let l = side.latency?;
                    Some((d.depth as f64, if p99 { l.p99_ms } else { l.p50_ms }))
                })
                .collect()
        };
        panels.push(Panel {
            title: "History: previous_response_id chain".into(),
            x_label: "chain depth (turns)".into(),
            y_label: "latency (ms)".into(),
            x_log: true,
            y_log: true,
            series: vec![
                series("direct p99", svg::DIRECT, false, curve(true, true)),
                series("direct p50", svg::DIRECT, true, curve(true, false)),
                series("gateway p99", svg::GATEWAY, false, curve(false, true)),
                series("gateway p50", svg::GATEWAY, true, curve(false, false)),
            ],
            hline: None,
        });
    }
    if let Some(s) = &report.streaming
        && !s.holds.is_empty()
    {
        panels.push(Panel {
            title: "Open streams: gateway memory".into(),
            x_label: "streams held".into(),
            y_label: "RSS (MB)".into(),
            x_log: false,
            y_log: false,
            series: vec![series(
                "gateway RSS",
                svg::GATEWAY,
                false,
                s.holds.iter().map(|h| (h.held as f64, h.rss_mb)).collect(),
            )],
            hline: None,
        });
    }
    svg::render(
        &format!("antwort benchmark {} ({} run)", report.started, report.mode),
        &panels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::history::Depth;
    use crate::lanes::streaming::Hold;
    use crate::lanes::throughput::StoredCheck;
    use crate::machine::Placement;
    use crate::stats::Dist;

    fn dist(p50: f64, p99: f64) -> Option<Dist> {
        Some(Dist {
            n: 100,
            p50_ms: p50,
            p99_ms: p99,
            max_ms: p99 * 2.0,
            mean_ms: p50,
        })
    }

    fn side(process: &str, p50: f64, p99: f64) -> Side {
        Side {
            requests: 1000,
            errors: 0,
            first_error: None,
            latency: dist(p50, p99),
            rps: 5000.0,
            process: process.into(),
            cpu_seconds: 0.1,
            cpu_us_per_request: Some(100.0),
            cpu_percent: 50.0,
            peak_rss_mb: Some(12.5),
            slow_40ms: 0,
        }
    }

    fn point(c: usize, rps: f64, p99: f64) -> LoadPoint {
        LoadPoint {
            concurrency: c,
            rps,
            p50_ms: p99 / 2.0,
            p99_ms: p99,
            max_ms: p99,
            errors: 0,
            cpu_percent: 90.0,
        }
    }

    fn variant(name: &str, store: bool, storage: &str, gateway_rps: f64) -> Variant {
        let direct = vec![point(1, 8000.0, 0.2), point(2, 15_000.0, 0.3)];
        let gateway = vec![point(1, gateway_rps / 2.0, 0.4), point(2, gateway_rps, 0.9)];
        Variant {
            name: name.into(),
            store,
            storage: storage.into(),
            direct_best: Some(direct[1]),
            gateway_best: Some(gateway[1]),
            direct,
            gateway,
            gateway_peak_rss_mb: Some(30.0),
            stored: store.then_some(StoredCheck {
                answered: 100,
                found: 100,
            }),
            skipped: None,
            first_error: None,
        }
    }

    fn report() -> Report {
        let placement = Placement {
            cpus: 2,
            gateway_core: Some(0),
            driver_core: Some(1),
            note: None,
        };
        let mut report = Report {
            started: "2026-01-01T00:00:00Z".into(),
            mode: "quick".into(),
            command: "cargo xtask bench --quick".into(),
            commit: Some("abc".into()),
            duration_seconds: 60.0,
            machine: Machine {
                cpus: 2,
                cpu_model: "Test CPU".into(),
                mem_total_mb: Some(24_000.0),
                kernel: Some("6.1".into()),
                pinned: true,
                placement,
                driver_open_files: Some(20_000),
                clock_ticks: 100,
            },
            gateway_open_files: Some(20_000),
            load_average_at_start: Some(0.25),
            steal_percent: Some(1.5),
            plan: Plan::quick(),
            lanes: Lane::ALL.to_vec(),
            checks: Vec::new(),
            overhead: Some(vec![
                Compare::new("c=1", side("mock", 0.10, 0.20), side("gateway", 0.15, 0.40)),
                Compare::new(
                    "c=16",
                    side("mock", 0.50, 1.00),
                    side("gateway", 0.80, 2.00),
                ),
            ]),
            throughput: Some(vec![
                variant("store: false", false, "memory", 12_000.0),
                variant("store: true, SQLite", true, "sqlite", 4_000.0),
                Variant {
                    skipped: Some("PostgreSQL not reachable".into()),
                    ..variant("store: true, PostgreSQL", true, "postgres", 0.0)
                },
            ]),
            streaming: Some(Streaming {
                token_delay_ms: 20,
                deltas: 64,
                concurrency: 16,
                direct_streams: 32,
                gateway_streams: 32,
                direct_errors: 0,
                gateway_errors: 0,
                first_error: None,
                ttft_direct: dist(20.1, 21.0),
                ttft_gateway: dist(20.4, 21.5),
                added_ttft_p50_ms: Some(0.3),
                added_ttft_p99_ms: Some(0.5),
                gap_direct: dist(20.0, 20.9),
                gap_gateway: dist(20.0, 21.2),
                added_gap_p50_ms: Some(0.0),
                added_gap_p99_ms: Some(0.3),
                gateway_cpu_us_per_stream: Some(900.0),
                holds: vec![Hold {
                    requested: 1000,
                    attempted: 1000,
                    held: 1000,
                    failed: 0,
                    first_error: None,
                    open_seconds: 1.5,
                    rss_before_mb: 10.0,
                    rss_mb: 40.0,
                    kb_per_stream: Some(30.0),
                    capped_by: None,
                }],
            }),
            history: Some(History {
                chain_length: 100,
                build_seconds: 1.0,
                depths: vec![Depth {
                    depth: 1,
                    compare: Compare::new(
                        "depth 1",
                        side("mock", 0.1, 0.2),
                        side("gateway", 0.3, 0.5),
                    ),
                    queries: Some(2),
                }],
            }),
            tools: None,
            idle: Some(Idle {
                fresh: IdleWindow {
                    window_seconds: 3.0,
                    rss_mb: 15.0,
                    peak_rss_mb: 16.0,
                    cpu_seconds: 0.0,
                    cpu_percent: 0.0,
                },
                after_one_request: IdleWindow {
                    window_seconds: 3.0,
                    rss_mb: 19.0,
                    peak_rss_mb: 19.5,
                    cpu_seconds: 0.0,
                    cpu_percent: 0.0,
                },
            }),
            failures: vec![Failure {
                lane: Lane::Tools,
                error: "the mock did not start\nmore".into(),
            }],
        };
        report.checks = checks(&report);
        report
    }

    fn verdict_of(report: &Report, lane: &str) -> Verdict {
        report
            .checks
            .iter()
            .find(|c| c.lane == lane)
            .map(|c| c.verdict)
            .unwrap()
    }

    #[test]
    fn targets_get_verdicts_from_the_figures() {
        let r = report();
        // c=1 adds 0.05 / 0.2 ms: within 0.1 / 0.5.
        assert_eq!(verdict_of(&r, "overhead, c=1"), Verdict::Met);
        // c=16 adds 0.3 / 1.0 ms: over.
        assert_eq!(verdict_of(&r, "overhead, c=16"), Verdict::NotMet);
        assert_eq!(verdict_of(&r, "throughput, store: false"), Verdict::Met);
        // 4,000 < 5,000 although the mock could offer 15,000.
        assert_eq!(
            verdict_of(&r, "throughput, store: true, SQLite"),
            Verdict::NotMet
        );
        assert_eq!(
            verdict_of(&r, "throughput, store: true, PostgreSQL"),
            Verdict::NotMeasured
        );
        assert_eq!(verdict_of(&r, "idle"), Verdict::Met);
        assert_eq!(verdict_of(&r, "tools"), Verdict::NotMeasured);
        let streaming: Vec<Verdict> = r
            .checks
            .iter()
            .filter(|c| c.lane == "streaming")
            .map(|c| c.verdict)
            .collect();
        // TTFT met, gap 0.3 > 0.2, only 1,000 streams held.
        assert_eq!(
            streaming,
            [Verdict::Met, Verdict::NotMet, Verdict::NotMeasured]
        );
        assert_eq!(verdict_of(&r, "history"), Verdict::NotMeasured);
    }

    #[test]
    fn a_low_mock_ceiling_is_not_blamed_on_the_gateway() {
        let mut v = variant("store: false", false, "memory", 6_000.0);
        v.direct_best = Some(point(2, 7_000.0, 0.3));
        let c = throughput_check(&v);
        assert_eq!(c.verdict, Verdict::NotMeasured);
        assert!(c.measured.contains("mock's own ceiling"), "{}", c.measured);
    }

    #[test]
    fn lost_responses_fail_the_stored_target() {
        let mut v = variant("store: true, SQLite", true, "sqlite", 9_000.0);
        v.stored = Some(StoredCheck {
            answered: 100,
            found: 99,
        });
        assert_eq!(throughput_check(&v).verdict, Verdict::NotMet);
    }

    #[test]
    fn fewer_streams_over_the_memory_budget_fail_the_target() {
        let mut streaming = report().streaming.unwrap();
        let hold = |held: usize, rss_mb: f64| Hold {
            requested: 10_000,
            attempted: held,
            held,
            failed: 0,
            first_error: None,
            open_seconds: 3.0,
            rss_before_mb: 15.0,
            rss_mb,
            kb_per_stream: Some(50.0),
            capped_by: Some("open-file limits".into()),
        };
        streaming.holds = vec![hold(9_950, 690.0)];
        assert_eq!(streams_check(&streaming).verdict, Verdict::NotMet);
        streaming.holds = vec![hold(9_950, 450.0)];
        assert_eq!(streams_check(&streaming).verdict, Verdict::NotMeasured);
        streaming.holds = vec![hold(10_000, 450.0)];
        assert_eq!(streams_check(&streaming).verdict, Verdict::Met);
    }

    #[test]
    fn history_compares_depth_1000_with_depth_1() {
        let depth = |d: usize, added: f64, queries: Option<usize>| Depth {
            depth: d,
            compare: Compare::new(
                format!("depth {d}"),
                side("mock", 1.0, 2.0),
                side("gateway", 1.0 + added, 2.0 + added),
            ),
            queries,
        };
        let mut h = History {
            chain_length: 1000,
            build_seconds: 10.0,
            depths: vec![depth(1, 0.2, Some(2)), depth(1000, 0.35, Some(2))],
        };
        assert_eq!(history_check(&h).verdict, Verdict::Met);
        assert!(
            history_check(&h)
                .measured
                .contains("2 queries per request at every depth")
        );
        h.depths[1] = depth(1000, 0.5, Some(2));
        assert_eq!(history_check(&h).verdict, Verdict::NotMet);
        // Flat latency is not enough when the queries grow with the depth.
        h.depths[1] = depth(1000, 0.35, Some(1001));
        assert_eq!(history_check(&h).verdict, Verdict::NotMet);
        assert!(history_check(&h).measured.contains("by depth: 2, 1001"));
        // Uncounted queries leave a flat latency unconfirmed.
        h.depths[1] = depth(1000, 0.35, None);
        assert_eq!(history_check(&h).verdict, Verdict::NotMeasured);
    }

    #[test]
    fn markdown_has_every_section_and_table() {
        let r = report();
        let md = markdown(&r, "latest.svg");
        for needle in [
            "# antwort benchmark: 2026-01-01T00:00:00Z (quick run)",
            "- Placement: gateway pinned to CPU 0 (taskset); mock and load driver on CPU 1.",
            "- Noise: 1-minute load average 0.25 before the run; 1.5% of the machine's CPU time stolen by the hypervisor during it.",
            "| overhead, c=1 | p50 added <= 0.1 ms, p99 added <= 0.5 ms | p50 +0.050, p99 +0.200 ms | met |",
            "| c=16 | **added** | | | **+0.300** | **+1.000** | | | | | | |",
            "![latency against load, direct and gateway](latest.svg)",
            "| store: true, PostgreSQL | skipped: PostgreSQL not reachable | | | | |",
            "| 1 | 8,000 | 0.100 | 0.200 | 90 | 6,000 | 0.200 | 0.400 | 90 | 0 |",
            "| time to first token | 20.100 | 21.000 | 20.400 | 21.500 | **+0.300** | **+0.500** |",
            "| 1,000 | 1,000 | 0 | 1.5 s | 10.0 MB | 40.0 MB | 30.0 kB |  |",
            "## 6. Idle",
            "- tools: the mock did not start more",
        ] {
            assert!(md.contains(needle), "missing {needle:?} in\n{md}");
        }
        // Every table row has as many cells as its header.
        for table in md.split("\n\n").filter(|b| b.starts_with('|')) {
            let widths: Vec<usize> = table
                .lines()
                .filter(|l| !l.starts_with("|---"))
                .map(|l| l.matches(" |").count())
                .collect();
            assert!(
                widths.iter().all(|w| *w == widths[0]),
                "ragged table:\n{table}"
            );
        }
    }

    #[test]
    fn the_chart_has_a_panel_per_variant_run_history_and_streams() {
        let svg = chart(&report());
        // Two throughput variants (PostgreSQL skipped), history, streams.
        assert_eq!(svg.matches("font-size=\"13\"").count(), 4);
        assert!(svg.contains("Throughput, store: true, SQLite"));
        assert!(svg.contains("Open streams: gateway memory"));
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(12_345.6), "12,346");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-1500.0), "-1,500");
        assert_eq!(thousands(f64::INFINITY), "-");
    }
}
