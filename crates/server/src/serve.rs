//! Accepting connections and serving the app on them, with the limits a
//! public listener needs.
//!
//! Not `axum::serve`: it builds hyper's connections without a timer, so that
//! hyper's header read timeout is off, and a client that sends half a request
//! header holds its connection (and a task) for as long as it likes. Here each
//! connection gets hyper's HTTP/1 and HTTP/2 server with a timer, so that a
//! request header must arrive whole within `header_read_timeout`; connections
//! are served with upgrades (WebSocket), and shut down gracefully.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

/// Limits of the connections the gateway accepts.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request's header must arrive whole within this, or the connection is
    /// closed (slow-loris clients).
    pub header_read_timeout: Duration,
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
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
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
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|request: Request<hyper::body::Incoming>| request.map(Body::new)),
        );
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let connection = graceful.watch(connection);
        antwort_engine::tasks::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
