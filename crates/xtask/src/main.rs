//! `xtask`: development tasks for the antwort workspace, run as `cargo xtask ...`
//! through the alias in `.cargo/config.toml`.
//!
//! `soak` runs the fault soak (see `soak.rs`). `bench`: it builds the gateway and the mock in release mode,
//! runs the lanes of `PERFORMANCE.md` against the mock (direct and through the
//! gateway, interleaved, gateway pinned to its own core) and writes a Markdown
//! report, a JSON file and an SVG chart under `bench/results/`. See
//! `docs/performance.md` for the method and how to read the report.
//!
//! The benchmark re-runs itself once under `sh` and `taskset`: `sh` raises the
//! open-file limit (the many-streams lane holds thousands of sockets) and `taskset`
//! puts the load driver on the mock's core, away from the gateway's. Doing either
//! in-process would take `unsafe` system calls, which the workspace forbids.

#![allow(
    clippy::disallowed_methods,
    reason = "the benchmark measures time and spawns its load itself"
)]

mod clock;
mod lanes;
mod load;
mod machine;
mod pg;
mod procs;
mod report;
mod soak;
mod stats;
mod svg;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::clock::Utc;
use crate::lanes::{Ctx, Lane, Plan};
use crate::machine::{Machine, Placement};
use crate::report::{Failure, Report};

#[derive(Parser)]
#[command(name = "xtask", about = "Development tasks for antwort")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Measure what the gateway adds over its backend; writes bench/results/.
    Bench(BenchArgs),
    /// Random backend faults under concurrent load, then the gateway's promises
    /// checked; writes bench/results/soak-*.
    Soak(soak::SoakArgs),
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// Short rounds, about a minute in all, for development: noisier figures.
    #[arg(long)]
    quick: bool,
    /// Lanes to run, comma separated (default: all of them).
    #[arg(long, value_delimiter = ',', value_enum)]
    lanes: Vec<Lane>,
    /// Directory for the report (default: bench/results in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Use the binaries in target/release as they are, without building first.
    #[arg(long)]
    no_build: bool,
    /// PostgreSQL for the stored throughput variant, which is skipped (and the
    /// report says so) when it cannot be reached.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
}

/// Set in the re-run process: the placement the first one decided, as JSON.
const STAGE_ENV: &str = "ANTWORT_XTASK_BENCH_PLACEMENT";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Task::Bench(args) => bench(args),
        Task::Soak(args) => match soak::soak(args, &workspace_root(), build) {
            Ok(true) => Ok(ExitCode::SUCCESS),
            Ok(false) => Ok(ExitCode::FAILURE),
            Err(error) => Err(error),
        },
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

fn bench(args: BenchArgs) -> Result<ExitCode> {
    let workspace = workspace_root();
    let placement = match std::env::var(STAGE_ENV) {
        Ok(json) => serde_json::from_str(&json).context("reading the placement")?,
        Err(_) => {
            if !args.no_build {
                build(&workspace)?;
            }
            let placement = Placement::decide();
            rerun_placed(&placement);
            // Only reached when the re-run could not start.
            Placement {
                note: Some(format!(
                    "{}; the load driver itself could not be re-run under taskset and ulimit",
                    placement.describe()
                )),
                ..placement
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        tokio::select! {
            outcome = run(args, workspace, placement) => outcome,
            // Dropping `run` drops every child process handle, which kills it.
            _ = tokio::signal::ctrl_c() => bail!("interrupted; the mock and gateway were stopped"),
        }
    })
}

/// `cargo build --release --locked -p antwort -p antwort-mock`: only what the
/// benchmark runs, so that a build of the whole tree next door is not disturbed.
fn build(workspace: &Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("==> cargo build --release --locked -p antwort -p antwort-mock");
    let mut command = Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        if is_cargo_run_variable(&name.to_string_lossy()) {
            command.env_remove(name);
        }
    }
    let status = command
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "antwort",
            "-p",
            "antwort-mock",
        ])
        .current_dir(workspace)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    Ok(())
}

/// Variables `cargo run` sets for the program it runs. A build started from here
/// must not inherit them: build scripts may track them (ring's tracks
/// `CARGO_MANIFEST_DIR`), and a changed value rebuilds that crate and everything
/// above it, here and again in the next build from a shell.
fn is_cargo_run_variable(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_RUSTC_CURRENT_DIR"
        )
}

/// Replaces this process with itself under `sh` (open-file limit raised) and
/// `taskset` (on the driver's core). Returns only if that could not be done.
fn rerun_placed(placement: &Placement) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let Ok(json) = serde_json::to_string(placement) else {
        return;
    };
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(procs::RAISE_NOFILE_AND_EXEC)
        .arg("sh");
    if let Some(core) = placement.driver_core {
        command.args(["taskset", "-c", &core.to_string()]);
    }
    command
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(STAGE_ENV, json);
    let error = command.exec();
    eprintln!("warning: could not re-run the benchmark placed: {error}");
}

fn target_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
}

async fn run(args: BenchArgs, workspace: PathBuf, placement: Placement) -> Result<ExitCode> {
    let started = Instant::now();
    let utc = Utc::now();
    let load_average_at_start = machine::load_average();
    let cpu_at_start = machine::cpu_times();
    let lanes: Vec<Lane> = if args.lanes.is_empty() {
        Lane::ALL.to_vec()
    } else {
        Lane::ALL
            .into_iter()
            .filter(|l| args.lanes.contains(l))
            .collect()
    };
    let release = target_dir(&workspace).join("release");
    let (antwort, mock) = (release.join("antwort"), release.join("antwort-mock"));
    for binary in [&antwort, &mock] {
        if !binary.exists() {
            bail!("{} is missing; run without --no-build", binary.display());
        }
    }
    let work = std::env::temp_dir().join(format!("antwort-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| workspace.join("bench").join("results"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let machine = Machine::read(placement.clone());
    eprintln!(
        "==> {} CPUs, {}; {}",
        machine.cpus,
        machine.cpu_model,
        placement.describe()
    );
    let plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    let ctx = Ctx {
        plan: plan.clone(),
        antwort,
        mock,
        work: work.clone(),
        placement,
        client: load::client()?,
        clock_ticks: machine.clock_ticks,
        postgres_url: args.postgres_url.clone(),
        serial: AtomicUsize::new(0),
        gateway_open_files: OnceLock::new(),
    };
    let mode = if args.quick { "quick" } else { "full" };
    let mut command = vec!["cargo xtask bench".to_owned()];
    command.extend(std::env::args().skip(2));
    let mut report = Report {
        started: utc.iso(),
        mode: mode.into(),
        command: command.join(" "),
        commit: machine::git_describe(&workspace),
        duration_seconds: 0.0,
        machine,
        gateway_open_files: None,
        load_average_at_start,
        steal_percent: None,
        plan,
        lanes: lanes.clone(),
        checks: Vec::new(),
        overhead: None,
        throughput: None,
        streaming: None,
        history: None,
        tools: None,
        idle: None,
        failures: Vec::new(),
    };
    for lane in lanes {
        eprintln!("==> {}", lane.name());
        let lane_started = Instant::now();
        let outcome = match lane {
            Lane::Overhead => lanes::overhead::run(&ctx)
                .await
                .map(|r| report.overhead = Some(r)),
            Lane::Throughput => lanes::throughput::run(&ctx)
                .await
                .map(|r| report.throughput = Some(r)),
            Lane::Streaming => lanes::streaming::run(&ctx)
                .await
                .map(|r| report.streaming = Some(r)),
            Lane::History => lanes::history::run(&ctx)
                .await
                .map(|r| report.history = Some(r)),
            Lane::Tools => lanes::tools::run(&ctx)
                .await
                .map(|r| report.tools = Some(r)),
            Lane::Idle => lanes::idle::run(&ctx).await.map(|r| report.idle = Some(r)),
        };
        if let Err(error) = outcome {
            eprintln!("  {} failed: {error:#}", lane.name());
            report.failures.push(Failure {
                lane,
                error: format!("{error:#}"),
            });
        }
        eprintln!(
            "  {} took {:.1} s",
            lane.name(),
            lane_started.elapsed().as_secs_f64()
        );
    }
    report.gateway_open_files = ctx.gateway_open_files.get().copied().flatten();
    report.duration_seconds = started.elapsed().as_secs_f64();
    report.steal_percent = cpu_at_start
        .zip(machine::cpu_times())
        .and_then(|(before, after)| machine::steal_percent(before, after));
    report.checks = report::checks(&report);

    let stem = if args.quick {
        format!("{}-quick", utc.compact())
    } else {
        utc.compact()
    };
    let json = serde_json::to_string_pretty(&report)?;
    let svg = report::chart(&report);
    for (name, chart) in [
        (stem.as_str(), format!("{stem}.svg")),
        ("latest", "latest.svg".into()),
    ] {
        write(
            &out.join(format!("{name}.md")),
            &report::markdown(&report, &chart),
        )?;
        write(&out.join(format!("{name}.json")), &json)?;
        write(&out.join(format!("{name}.svg")), &svg)?;
    }
    println!("{}", report::markdown(&report, "latest.svg"));
    eprintln!(
        "==> report: {} (and latest.md, latest.json, latest.svg)",
        out.join(format!("{stem}.md")).display()
    );
    if report.failures.is_empty() {
        let _ = std::fs::remove_dir_all(&work);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "==> {} lane(s) failed; process logs are in {}",
            report.failures.len(),
            work.display()
        );
        Ok(ExitCode::FAILURE)
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inner_build_drops_what_cargo_run_set() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
        ] {
            assert!(is_cargo_run_variable(name), "{name}");
        }
        // What configures cargo itself stays.
        for name in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO",
            "CARGO_BUILD_JOBS",
        ] {
            assert!(!is_cargo_run_variable(name), "{name}");
        }
    }
}
