//! The processes under test: `antwort-mock` and `antwort` as children on free
//! loopback ports, each pinned to its core, with the open-file limit raised, its
//! output in a log file, and killed when its handle is dropped, so that an error or
//! Ctrl-C anywhere in the benchmark leaves nothing running.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::machine;

/// Raises the soft open-file limit to the hard one (many-streams lane: every open
/// stream is a socket, two in the gateway) and then becomes the program in "$@".
/// `ulimit` is a shell builtin; calling `setrlimit` ourselves would take `unsafe`.
pub const RAISE_NOFILE_AND_EXEC: &str = r#"h=$(ulimit -Hn); [ "$h" = unlimited ] && h=1048576; ulimit -n "$h" 2>/dev/null || ulimit -n 65536 2>/dev/null; exec "$@""#;

/// A running child. Dropping it kills it.
pub struct Proc {
    pub name: String,
    pub pid: u32,
    /// `http://127.0.0.1:PORT`, without `/v1`.
    pub url: String,
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    /// User plus system CPU time so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        machine::cpu_ticks(self.pid).unwrap_or(0)
    }

    /// Resident memory now and at its peak, in KiB (zeros once the process is gone).
    pub fn memory_kib(&self) -> (u64, u64) {
        machine::memory_kib(self.pid).unwrap_or((0, 0))
    }

    pub fn open_files_limit(&self) -> Option<u64> {
        machine::open_files_limit(self.pid)
    }

    /// Whether the process is still running (a crash mid-lane must not pass for a
    /// slow answer).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); its log ends with:\n{}",
                self.name,
                log_tail(&self.log)
            );
        }
        Ok(())
    }

    /// Polls `path` until it answers 200, or the process dies, or 30 seconds pass.
    pub async fn wait_ready(&mut self, client: &reqwest::Client, path: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}{path}", self.url);
        loop {
            self.check_alive()?;
            let answer = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer {url} within 30 s; its log ends with:\n{}",
                    self.name,
                    log_tail(&self.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGKILL: nothing of these processes needs to outlive the measurement, and
        // a graceful drain could wait for streams the benchmark already abandoned.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What to start.
pub struct Spawn<'a> {
    pub name: String,
    pub program: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub core: Option<usize>,
    pub port: u16,
    pub log_dir: &'a Path,
}

/// Starts a child through `sh` (to raise its open-file limit) and `taskset` (to pin
/// it), both of which `exec`, so that the child's pid is the program's own and its
/// `/proc` entries are the program's.
pub fn spawn(spec: Spawn<'_>) -> Result<Proc> {
    let log = spec.log_dir.join(format!("{}.log", spec.name));
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let mut command = Command::new("sh");
    command.arg("-c").arg(RAISE_NOFILE_AND_EXEC).arg("sh");
    if let Some(core) = spec.core {
        command.args(["taskset", "-c", &core.to_string()]);
    }
    command.arg(spec.program).args(&spec.args);
    // An ANTWORT_* variable in the caller's shell (a config file, a log level) must
    // not change what is measured.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ANTWORT_") {
            command.env_remove(name);
        }
    }
    command
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", spec.program.display()))?;
    Ok(Proc {
        name: spec.name,
        pid: child.id(),
        url: format!("http://127.0.0.1:{}", spec.port),
        log,
        child,
    })
}

/// A free loopback port: bound, read and released. Another process could take it
/// in between, which would show up as a start failure, not as a wrong figure.
/// `antwort serve` on `127.0.0.1:port` in front of the mock at `backend`,
/// serving `mock-model` by default: how every benchmark and soak gateway runs.
pub fn gateway_args(port: u16, backend: &str) -> Vec<String> {
    vec![
        "serve".into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--backend-url".into(),
        backend.to_owned(),
        "--model".into(),
        "mock-model".into(),
    ]
}

pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The last lines of a log, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
