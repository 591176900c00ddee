//! Each connection's two clocks: a request's header must arrive within
//! `header_read_timeout` of its first byte (and a new connection's first request
//! within that of connecting), and a keep-alive connection may sit idle between
//! requests for `idle_timeout`.
//!
//! hyper has one timer for both: its header read timeout starts when it begins
//! waiting for a request, so an idle keep-alive connection is closed after the
//! header timeout, which must be short against slow-loris clients, while load
//! balancers keep idle connections to their upstreams open for a minute and
//! more (a server that closes them first makes the balancer answer 502 now and
//! then). And hyper-util's HTTP version detection reads a new connection's
//! first bytes with no timer at all. So the two clocks are kept here: the
//! connection's reads ([`Watched`]) and its requests ([`Watch::request`]) move
//! its phase, and [`Watch::overdue`] resolves when the phase has lasted too long.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head, since the given instant.
    Head(Instant),
    /// This many requests are being served; once a response body has begun,
    /// the instant it last gave hyper a frame to write. Request bodies have
    /// their own read timeout; a response body that hyper stops taking frames
    /// from (its client no longer reads) starts the stall clock.
    Busy(usize, Option<Instant>),
    /// Between requests, since the given instant.
    Idle(Instant),
}

/// Why a connection is to be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    Head,
    Idle,
    /// The client stopped reading its response.
    Stalled,
}

/// The state one connection's reads, requests and watchdog share.
pub struct Watch {
    phase: Mutex<Phase>,
    /// An HTTP/2 connection: frames between requests (pings, settings) are
    /// not a request head, so bytes do not start the header clock.
    h2: std::sync::atomic::AtomicBool,
    changed: Notify,
    header_timeout: Duration,
    idle_timeout: Duration,
    stall_timeout: Duration,
}

impl Watch {
    /// A new connection, which must send its first request head in time.
    pub fn new(
        header_timeout: Duration,
        idle_timeout: Duration,
        stall_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            phase: Mutex::new(Phase::Head(antwort_engine::clock::now())),
            h2: std::sync::atomic::AtomicBool::new(false),
            changed: Notify::new(),
            header_timeout,
            idle_timeout,
            stall_timeout,
        })
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let next = change(*phase);
        // The watchdog sleeps until the phase's deadline: it must hear of a new
        // phase, and of a first response frame (which gives a busy phase one).
        let wake = std::mem::discriminant(&next) != std::mem::discriminant(&*phase)
            || matches!(
                (*phase, next),
                (Phase::Busy(_, None), Phase::Busy(_, Some(_)))
            );
        *phase = next;
        drop(phase);
        if wake {
            self.changed.notify_one();
        }
    }

    /// Bytes arrived: an idle connection starts receiving a request head.
    fn bytes_read(&self, first: &[u8]) {
        if !first.is_empty() && first.starts_with(b"PRI * HTTP/2.0") {
            self.h2.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if self.h2.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        self.update(|phase| match phase {
            Phase::Idle(_) => Phase::Head(antwort_engine::clock::now()),
            other => other,
        });
    }

    /// A request reached the service; the connection is busy until the
    /// returned guard (held by the response body) is dropped.
    pub fn request(self: &Arc<Self>) -> RequestGuard {
        self.update(|phase| match phase {
            Phase::Busy(n, last) => Phase::Busy(n + 1, last),
            _ => Phase::Busy(1, None),
        });
        RequestGuard(Arc::clone(self))
    }

    /// Resolves when the connection has waited for a head, or sat idle, too long.
    pub async fn overdue(&self) -> Overdue {
        loop {
            let changed = self.changed.notified();
            let phase = *self.phase.lock().unwrap_or_else(PoisonError::into_inner);
            let (deadline, why) = match phase {
                Phase::Head(since) => (Some(since + self.header_timeout), Overdue::Head),
                Phase::Idle(since) => (Some(since + self.idle_timeout), Overdue::Idle),
                Phase::Busy(_, Some(last)) => (Some(last + self.stall_timeout), Overdue::Stalled),
                Phase::Busy(_, None) => (None, Overdue::Idle),
            };
            match deadline {
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {
                            if *self.phase.lock().unwrap_or_else(PoisonError::into_inner) == phase {
                                return why;
                            }
                        }
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// Held while a request is served (its response body holds it to the last byte).
pub struct RequestGuard(Arc<Watch>);

impl RequestGuard {
    /// The response body gave hyper a frame: its client is reading.
    pub fn frame_taken(&self) {
        let now = antwort_engine::clock::now();
        self.0.update(|phase| match phase {
            Phase::Busy(n, _) => Phase::Busy(n, Some(now)),
            other => other,
        });
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.update(|phase| match phase {
            Phase::Busy(n, last) if n > 1 => Phase::Busy(n - 1, last),
            _ => Phase::Idle(antwort_engine::clock::now()),
        });
    }
}

/// A connection's socket, telling its [`Watch`] when bytes arrive.
pub struct Watched<T> {
    inner: T,
    watch: Arc<Watch>,
    /// Nothing was read yet (the first bytes tell HTTP/2 apart).
    fresh: bool,
}

impl<T> Watched<T> {
    pub fn new(inner: T, watch: Arc<Watch>) -> Self {
        Self {
            inner,
            watch,
            fresh: true,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let first: &[u8] = if self.fresh {
                &buf.filled()[before..]
            } else {
                &[]
            };
            self.watch.bytes_read(first);
            self.fresh = false;
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECS_10: Duration = Duration::from_secs(10);
    const SECS_60: Duration = Duration::from_secs(60);
    const SECS_75: Duration = Duration::from_secs(75);

    #[tokio::test(start_paused = true)]
    async fn each_phase_has_its_clock_and_a_busy_connection_has_none() {
        let watch = Watch::new(SECS_10, SECS_75, SECS_60);
        // A new connection that sends nothing.
        assert_eq!(watch.overdue().await, Overdue::Head);

        let watch = Watch::new(SECS_10, SECS_75, SECS_60);
        let guard = watch.request();
        let waited = tokio::time::timeout(Duration::from_secs(600), watch.overdue()).await;
        assert!(waited.is_err(), "no clock while busy");
        let started = antwort_engine::clock::now();
        drop(guard);
        assert_eq!(watch.overdue().await, Overdue::Idle);
        assert_eq!(
            antwort_engine::clock::now() - started,
            Duration::from_secs(75)
        );

        // Bytes after idling start the header clock, which is shorter.
        let idle = Watch::new(SECS_10, SECS_75, SECS_60);
        drop(idle.request());
        tokio::time::sleep(Duration::from_secs(30)).await;
        idle.bytes_read(b"GET / HTTP/1.1");
        let started = antwort_engine::clock::now();
        assert_eq!(idle.overdue().await, Overdue::Head);
        assert_eq!(
            antwort_engine::clock::now() - started,
            Duration::from_secs(10)
        );

        // A response whose frames stop being taken stalls after its clock.
        let stalled = Watch::new(SECS_10, SECS_75, SECS_60);
        let guard = stalled.request();
        guard.frame_taken();
        let started = antwort_engine::clock::now();
        assert_eq!(stalled.overdue().await, Overdue::Stalled);
        assert_eq!(antwort_engine::clock::now() - started, SECS_60);
        drop(guard);
    }
}
