//! The HTTP client stack: one builder for every outbound client (backends, MCP,
//! token endpoints), and the guarded variant whose DNS resolver enforces the URL
//! policy on every resolved address.

use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::EgressGuard;

/// At most this many same-origin redirects are followed per request.
const MAX_REDIRECTS: usize = 5;

/// The base of every outbound client: TLS through rustls with *ring* and the
/// system's CA certificates, `TCP_NODELAY`, a connect timeout and antwort's user
/// agent. Callers add what is theirs (pooling, redirects, timeouts).
pub fn client_builder(connect_timeout: Duration) -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .user_agent(concat!("antwort/", env!("CARGO_PKG_VERSION")))
}

/// A client for URLs a request names: [`client_builder`] with a resolver that
/// drops every address the guard denies, no proxy (a proxy resolves the target
/// itself, out of the guard's sight), and same-origin redirects only.
pub fn guarded_builder(
    connect_timeout: Duration,
    guard: Arc<EgressGuard>,
) -> reqwest::ClientBuilder {
    client_builder(connect_timeout)
        .dns_resolver(GuardedResolver { guard })
        .no_proxy()
        .redirect(same_origin_redirects())
}

/// reqwest is built without a crypto provider (its default, aws-lc, is a heavy
/// C build). Installing *ring* fails harmlessly when the process already has a
/// default provider.
fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Follows only 307 and 308 to the same origin: those keep the method and body,
/// and stay on the host the policy already judged. Anything else (another host,
/// or a redirect that would turn a POST into a GET) is returned as the answer,
/// so headers never travel to a host nobody checked.
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let keeps_body = matches!(
            attempt.status(),
            reqwest::StatusCode::TEMPORARY_REDIRECT | reqwest::StatusCode::PERMANENT_REDIRECT
        );
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !keeps_body || !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// The resolver of a guarded client: it resolves as the system does, then drops
/// every address the policy denies. IP literals never reach a resolver; they are
/// checked before connecting ([`EgressGuard::check_url`]).
struct GuardedResolver {
    guard: Arc<EgressGuard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut allowed: Vec<SocketAddr> = Vec::new();
            let mut denial = None;
            for addr in resolved {
                match guard.check_resolved(&host, addr.ip()) {
                    Ok(()) => allowed.push(addr),
                    Err(reason) => {
                        denial.get_or_insert(reason);
                    }
                }
            }
            if allowed.is_empty() {
                let reason =
                    denial.unwrap_or_else(|| format!("the host '{host}' resolves to no address"));
                tracing::debug!(host = %host, "outbound address denied by the URL policy");
                return Err(Box::new(AddressDenied(reason)) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Every address a host name resolved to is denied by the URL policy. Callers
/// find it in a connect error's source chain and report a denial, not an
/// unreachable host.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AddressDenied(pub String);

/// A URL as logs and error messages may show it: scheme, host, port and path,
/// with `***` where user information or a query (where credentials hide) was.
pub fn display_url(url: &reqwest::Url) -> String {
    redact_url(url.as_str())
}

pub use antwort_api::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parsed_url_is_shown_without_its_credentials() {
        let parsed = reqwest::Url::parse("http://u:p@h:1/v1/chat?x=1").unwrap();
        assert_eq!(display_url(&parsed), "http://***@h:1/v1/chat?***");
    }
}
