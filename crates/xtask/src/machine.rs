//! The machine under test and what the benchmark reads from `/proc`: CPU time and
//! resident memory of a process, its open-file limit, the CPUs it may run on.
//!
//! Reading `/proc` directly keeps the benchmark free of a system-information crate
//! and of `unsafe` (which the workspace forbids): every figure here is a line of
//! text the kernel already formats.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Where the processes run: the gateway alone on one core, the mock and the load
/// driver together on another, when the machine has two and `taskset` exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Placement {
    /// CPUs this process may use (its affinity, which a container may restrict).
    pub cpus: usize,
    pub gateway_core: Option<usize>,
    pub driver_core: Option<usize>,
    /// Why the processes are not pinned, when they are not.
    pub note: Option<String>,
}

impl Placement {
    pub fn pinned(&self) -> bool {
        self.gateway_core.is_some() && self.driver_core.is_some()
    }

    /// Decides the placement from the CPUs this process may use.
    pub fn decide() -> Self {
        let cpus = allowed_cpus();
        let count = if cpus.is_empty() {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            cpus.len()
        };
        let unpinned = |note: String| Self {
            cpus: count,
            gateway_core: None,
            driver_core: None,
            note: Some(note),
        };
        let (Some(&gateway), Some(&driver)) = (cpus.first(), cpus.get(1)) else {
            return unpinned(format!(
                "not pinned: only {count} CPU(s) available, so the gateway shares its core with the mock and the load driver"
            ));
        };
        let taskset = Command::new("taskset")
            .args(["-c", &driver.to_string(), "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !taskset.is_ok_and(|s| s.success()) {
            return unpinned(
                "not pinned: `taskset` is missing or not permitted, so the processes share all cores"
                    .into(),
            );
        }
        Self {
            cpus: count,
            gateway_core: Some(gateway),
            driver_core: Some(driver),
            note: None,
        }
    }

    pub fn describe(&self) -> String {
        match (self.gateway_core, self.driver_core, &self.note) {
            (Some(g), Some(d), _) => {
                format!("gateway pinned to CPU {g} (taskset); mock and load driver on CPU {d}")
            }
            (_, _, Some(note)) => note.clone(),
            _ => "not pinned".into(),
        }
    }
}

/// What the report says about the machine.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub mem_total_mb: Option<f64>,
    pub kernel: Option<String>,
    pub placement: Placement,
    pub pinned: bool,
    /// The load driver's open-file limit (soft), after raising it to the hard limit.
    pub driver_open_files: Option<u64>,
    /// Clock ticks per second of `/proc/<pid>/stat` CPU times.
    pub clock_ticks: u64,
}

impl Machine {
    pub fn read(placement: Placement) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total_mb = status_field_kib(&meminfo, "MemTotal").map(kib_to_mb);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_owned());
        Self {
            cpus: placement.cpus,
            cpu_model,
            mem_total_mb,
            kernel,
            pinned: placement.pinned(),
            placement,
            driver_open_files: open_files_limit(std::process::id()),
            clock_ticks: clock_ticks(),
        }
    }
}

/// The CPUs this process may run on, from `Cpus_allowed_list` in `/proc/self/status`.
pub fn allowed_cpus() -> Vec<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("Cpus_allowed_list:")
                    .map(|list| parse_cpu_list(list.trim()))
            })
        })
        .unwrap_or_default()
}

/// Parses a kernel CPU list such as `0-3,8,10-11`.
pub fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((from, to)) => {
                if let (Ok(from), Ok(to)) = (from.parse::<usize>(), to.parse::<usize>()) {
                    cpus.extend(from..=to);
                }
            }
            None => cpus.extend(part.parse::<usize>().ok()),
        }
    }
    cpus
}

/// `sysconf(_SC_CLK_TCK)` through `getconf`, since calling libc would take `unsafe`.
/// Linux has reported 100 to user space on every architecture for decades; that is
/// the fallback when `getconf` is missing.
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// User plus system CPU time of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_stat_cpu(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))
}

/// `utime + stime` from a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces, so the fields are counted after its last `)`:
/// there, field 3 (state) comes first and utime, stime are fields 14 and 15.
pub fn parse_stat_cpu(stat: &str) -> Result<u64> {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("no command name in stat line");
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .with_context(|| format!("stat field {n} missing"))?
            .parse::<u64>()
            .with_context(|| format!("stat field {n} is not a number"))
    };
    Ok(field(14)? + field(15)?)
}

/// A `Key:   1234 kB` field of `/proc/<pid>/status` or `/proc/meminfo`, in KiB.
pub fn status_field_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim() != key {
            return None;
        }
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Resident memory now (`VmRSS`) and at its peak (`VmHWM`), in KiB.
pub fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let rss = status_field_kib(&status, "VmRSS").context("no VmRSS")?;
    let hwm = status_field_kib(&status, "VmHWM").context("no VmHWM")?;
    Ok((rss, hwm))
}

/// The soft open-file limit of a process, from `/proc/<pid>/limits`.
pub fn open_files_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    parse_open_files(&limits)
}

fn parse_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The 1-minute load average, from `/proc/loadavg`: read before the run starts
/// its processes, it shows whether something else was busy on the machine.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// All CPU time of the machine and the part of it stolen by the hypervisor for
/// other guests, in clock ticks, from the `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    pub total: u64,
    pub steal: u64,
}

pub fn cpu_times() -> Option<CpuTimes> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`; guest
/// time is already counted in user time, so the total stops at steal.
pub fn parse_proc_stat(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some(CpuTimes {
        total: fields.iter().sum(),
        steal: *fields.get(7)?,
    })
}

/// The share of the machine's CPU time stolen between two readings, in percent.
pub fn steal_percent(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let steal = after.steal.checked_sub(before.steal)?;
    (total > 0).then(|| steal as f64 * 100.0 / total as f64)
}

/// Kibibytes to megabytes (10^6 bytes), the unit PERFORMANCE.md's targets use.
pub fn kib_to_mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1_000_000.0
}

/// The commit being measured, and whether the tree has uncommitted changes.
pub fn git_describe(workspace: &Path) -> Option<String> {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(workspace)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(workspace)
        .output()
        .ok()
        .is_some_and(|o| !o.stdout.is_empty());
    Some(if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), [0, 1]);
        assert_eq!(parse_cpu_list("0-2,8,10-11"), [0, 1, 2, 8, 10, 11]);
        assert_eq!(parse_cpu_list("3"), [3]);
        assert!(parse_cpu_list("").is_empty());
    }

    #[test]
    fn stat_cpu_counts_fields_after_the_command_name() {
        // A command name with spaces and a parenthesis must not shift the fields.
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 50 0 0 20 0 4 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu(stat).unwrap(), 300);
        assert!(parse_stat_cpu("garbage").is_err());
    }

    #[test]
    fn steal_from_proc_stat() {
        let before =
            parse_proc_stat("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 50 0 25 400 5 0 0 20 0 0\n")
                .unwrap();
        assert_eq!(
            before,
            CpuTimes {
                total: 1000,
                steal: 40
            }
        );
        let after = CpuTimes {
            total: 2000,
            steal: 90,
        };
        assert_eq!(steal_percent(before, after), Some(5.0));
        assert_eq!(steal_percent(after, after), None);
        assert_eq!(parse_proc_stat("intr 1 2 3"), None);
    }

    #[test]
    fn status_fields_and_limits() {
        let status = "Name:\tantwort\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_field_kib(status, "VmRSS"), Some(10240));
        assert_eq!(status_field_kib(status, "VmHWM"), Some(20480));
        assert_eq!(status_field_kib(status, "VmSwap"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            20000                20000                files\n";
        assert_eq!(parse_open_files(limits), Some(20000));
        assert!((kib_to_mb(1000) - 1.024).abs() < 1e-9);
    }
}
