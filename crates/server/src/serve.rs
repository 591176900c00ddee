//! Accepting connections and serving the app on them, with the limits a
//! public listener needs.
//!
//! Not `axum::serve`: it sets no timeout at all, so a client that sends half a
//! request header holds its connection (and a task) for as long as it likes.
//! Here each connection has a watchdog ([`crate::watch`]): a request head must
//! arrive within `header_read_timeout`, and a keep-alive connection may be idle
//! for `idle_timeout`, two clocks that hyper's own header timeout would merge
//! into one. Connections are served with upgrades (WebSocket), and shut down
//! gracefully.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

use crate::watch::{Watch, Watched};

/// Limits of the connections the gateway accepts.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request's header must arrive whole within this of its first byte (a new
    /// connection's, of connecting), or the connection is closed (slow-loris
    /// clients).
    pub header_read_timeout: Duration,
    /// A keep-alive connection idle this long between requests is closed.
    pub idle_timeout: Duration,
    /// A connection whose client has not taken a frame of its response for this
    /// long (it stopped reading) is closed, which cancels an unstored response.
    pub stall_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting,
/// lets every open connection finish its requests (idle ones close at once), and
/// returns when they all have. The caller bounds that wait.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    // The watchdog keeps the header clock; hyper's would also close idle
    // keep-alive connections after it.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, or a connection reset before it was
                // accepted: wait a moment rather than spin, and go on.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Every answer and every streamed event is written as soon as it is
        // ready: without TCP_NODELAY, Nagle's algorithm holds a small write
        // back until the previous one is acknowledged, and a client that delays
        // its ACKs turns that into 40 ms stalls between SSE events.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
        let watch = Watch::new(
            limits.header_read_timeout,
            limits.idle_timeout,
            limits.stall_timeout,
        );
        let requests = Arc::clone(&watch);
        let app = app.clone();
        let service = TowerToHyperService::new(tower::service_fn(
            move |mut request: Request<hyper::body::Incoming>| {
                // The source address, for the audit log.
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                // The connection is busy until the response body's last byte
                // is written (hyper drops the body then), which may be the end
                // of a long stream.
                let guard = requests.request();
                let app = app.clone();
                async move {
                    let response = app.oneshot(request.map(Body::new)).await?;
                    Ok::<_, Infallible>(response.map(|body| {
                        Body::new(body.map_frame(move |frame| {
                            guard.frame_taken();
                            frame
                        }))
                    }))
                }
            },
        ));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(Watched::new(tcp, watch.clone())), service)
            .into_owned();
        let connection = graceful.watch(connection);
        antwort_engine::tasks::spawn(async move {
            tokio::select! {
                served = connection => {
                    if let Err(error) = served {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                // Dropping the connection closes it.
                overdue = watch.overdue() => {
                    tracing::debug!(?overdue, "connection closed by its watchdog");
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
