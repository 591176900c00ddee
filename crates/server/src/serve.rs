//! Accepting connections and serving the app on them, with the limits a
//! public listener needs.
//!
//! Not `axum::serve`: it sets no timeout at all, so a client that sends half a
//! request header holds its connection (and a task) for as long as it likes.
//! Here each connection has a watchdog ([`crate::watch`]): a request head must
//! arrive within `header_read_timeout`, and a keep-alive connection may be idle
//! for `idle_timeout`, two clocks that hyper's own header timeout would merge
//! into one. Connections are served with upgrades (WebSocket), over TLS when
//! configured (rustls on *ring*), and shut down gracefully.

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

use tokio_rustls::TlsAcceptor;

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
/// returns when they all have. The caller bounds that wait. With `tls`, every
/// connection speaks TLS first (its handshake is held to the header clock).
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
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
    let builder = Arc::new(builder);
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
        let connection = Connection {
            builder: builder.clone(),
            app: app.clone(),
            limits,
            peer,
            graceful: graceful.watcher(),
        };
        let tls = tls.clone();
        antwort_engine::tasks::spawn(async move {
            match tls {
                None => connection.serve(tcp).await,
                Some(acceptor) => {
                    // A handshake that does not finish in time holds nothing.
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp))
                        .await
                    {
                        Ok(Ok(stream)) => connection.serve(stream).await,
                        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// What serving one accepted connection needs.
struct Connection<S> {
    builder: Arc<Builder<TokioExecutor>>,
    app: S,
    limits: ConnectionLimits,
    peer: std::net::SocketAddr,
    graceful: hyper_util::server::graceful::Watcher,
}

impl<S> Connection<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    async fn serve<I>(self, io: I)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            builder,
            app,
            limits,
            peer,
            graceful,
        } = self;
        let watch = Watch::new(
            limits.header_read_timeout,
            limits.idle_timeout,
            limits.stall_timeout,
        );
        let requests = Arc::clone(&watch);
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
            .serve_connection_with_upgrades(TokioIo::new(Watched::new(io, watch.clone())), service)
            .into_owned();
        let connection = graceful.watch(connection);
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
    }
}

/// The TLS side of a listener, from a PEM certificate chain and private key.
pub fn tls_acceptor(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate file is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("the certificate file holds no certificate".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("the key file holds no PEM private key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not make a TLS identity: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
