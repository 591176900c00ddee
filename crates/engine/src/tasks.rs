//! Spawning, in one place. A spawned task or thread carries the span of the code
//! that started it, so that its log lines keep the request's `x-request-id`;
//! `clippy.toml` forbids spawning anywhere else.

use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Spawns `future` on the current runtime, inside the caller's span.
#[allow(
    clippy::disallowed_methods,
    reason = "the one place that spawns a task"
)]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_span())
}

/// Spawns `future` as work that `tracker` waits for on shutdown, inside the
/// caller's span.
#[allow(
    clippy::disallowed_methods,
    reason = "the one place that spawns a tracked task"
)]
pub fn spawn_tracked<F>(tracker: &TaskTracker, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tracker.spawn(future.in_current_span())
}

/// Starts a named OS thread (for blocking work such as a database connection
/// of its own) whose log lines stay inside the caller's span.
#[allow(
    clippy::disallowed_methods,
    reason = "the one place that starts a thread"
)]
pub fn spawn_thread(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || span.in_scope(body))
}
