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
/// of its own) whose log lines stay inside the caller's span, reported to the
/// caller's subscriber (a thread does not inherit a scoped one by itself).
#[allow(
    clippy::disallowed_methods,
    reason = "the one place that starts a thread"
)]
pub fn spawn_thread(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let span = tracing::Span::current();
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || tracing::dispatcher::with_default(&dispatch, || span.in_scope(body)))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn spawned_work_keeps_the_callers_span() {
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry());
        let span = tracing::info_span!("http", request_id = "req-1");
        let tracker = tokio_util::task::TaskTracker::new();
        let current = || tracing::Span::current().id();
        let (task, tracked, thread) = {
            let _entered = span.enter();
            (
                super::spawn(async move { current() }),
                super::spawn_tracked(&tracker, async move { current() }),
                super::spawn_thread("test-thread", move || {}).map(|_| ()),
            )
        };
        assert!(span.id().is_some());
        assert_eq!(task.await.unwrap(), span.id());
        assert_eq!(tracked.await.unwrap(), span.id());
        thread.unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        {
            let _entered = span.enter();
            super::spawn_thread("test-thread", move || {
                let _ = sender.send(tracing::Span::current().id());
            })
            .unwrap();
        }
        assert_eq!(receiver.recv().unwrap(), span.id());
    }
}
