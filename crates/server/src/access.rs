//! Deny by default: every route is registered through [`RouteTable`] with the
//! access it needs ([`Access`]), and one middleware ([`guard`]) answers every
//! request from that same table before the router sees it. A request to a
//! route that is not [`Access::Public`] (`/healthz`, `/readyz`) must carry a
//! valid credential (401), the route's scope (403) and room in its rate limits
//! (429 with `Retry-After`); an unknown path or method needs a credential too,
//! so that nothing answers a stranger but the allowlist. The identity it
//! established travels to the handlers in the request's extensions.

use std::net::SocketAddr;
use std::sync::Arc;

use antwort_api::{ApiError, ErrorCode};
use antwort_auth::{
    Admission, AuditEvent, AuditKind, Auth, AuthError, BucketState, Identity, Permission, Refusal,
};
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::HttpError;

/// What a route needs of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// On the allowlist: answered without a credential.
    Public,
    /// Any valid credential.
    Authenticated,
    /// A valid credential with this scope.
    Needs(Permission),
}

/// One registered route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub method: Method,
    /// The axum path, with `{name}` segments.
    pub path: &'static str,
    pub access: Access,
}

/// The routes and their access, built together so that neither exists without
/// the other.
pub struct RouteTable {
    rules: Vec<Rule>,
    router: Router<AppState>,
}

impl RouteTable {
    pub fn new() -> Self {
        Self {
            rules: Vec::new(),
            router: Router::new(),
        }
    }

    pub fn route<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = axum::routing::MethodFilter::try_from(method.clone())
            .unwrap_or(axum::routing::MethodFilter::GET);
        self.router = self.router.route(path, axum::routing::on(filter, handler));
        self.rules.push(Rule {
            method,
            path,
            access,
        });
        self
    }

    pub fn into_parts(self) -> (Vec<Rule>, Router<AppState>) {
        (self.rules, self.router)
    }
}

impl Default for RouteTable {
    fn default() -> Self {
        Self::new()
    }
}

/// The access rules, looked up by method and concrete path.
#[derive(Debug, Clone)]
pub struct Rules(Arc<Vec<(Rule, Vec<Segment>)>>);

/// One segment of a route's path: a literal, or a `{name}` that matches any
/// non-empty segment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    Any,
}

impl Rules {
    pub fn new(rules: Vec<Rule>) -> Self {
        let parsed = rules
            .into_iter()
            .map(|rule| {
                let segments = rule
                    .path
                    .split('/')
                    .map(|part| {
                        if part.starts_with('{') && part.ends_with('}') {
                            Segment::Any
                        } else {
                            Segment::Literal(part)
                        }
                    })
                    .collect();
                (rule, segments)
            })
            .collect();
        Self(Arc::new(parsed))
    }

    /// The rule for `method` on `path`: of the templates that match, the one
    /// with the most literal segments (as the router picks
    /// `/v1/responses/compact` over `/v1/responses/{id}`). `None` for a path or
    /// method no route serves.
    /// `HEAD` is answered by a GET route (axum runs its handler), so it needs
    /// what GET needs.
    pub fn find(&self, method: &Method, path: &str) -> Option<&Rule> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let count = path.split('/').count();
        self.0
            .iter()
            .filter(|(rule, segments)| rule.method == *method && segments.len() == count)
            .filter_map(|(rule, segments)| literal_match(segments, path).map(|n| (n, rule)))
            .max_by_key(|(literals, _)| *literals)
            .map(|(_, rule)| rule)
    }
}

/// How many literal segments of `template` match `path` (of as many
/// segments), if all of it does.
fn literal_match(template: &[Segment], path: &str) -> Option<usize> {
    let mut literals = 0;
    for (wanted, part) in template.iter().zip(path.split('/')) {
        match wanted {
            Segment::Any if !part.is_empty() => {}
            Segment::Literal(literal) if *literal == part => literals += 1,
            _ => return None,
        }
    }
    Some(literals)
}

/// The state the guard needs.
#[derive(Clone)]
pub struct Gate {
    pub auth: Arc<Auth>,
    pub rules: Rules,
}

/// Who asked, and from where: what audit lines say besides the event. Kept
/// as the request had it (cheap clones), made text only for an audit line.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin {
    request_id: Option<HeaderValue>,
    source: Option<SocketAddr>,
    method: Method,
    uri: axum::http::Uri,
}

impl RequestOrigin {
    pub fn of(request: &Request) -> Self {
        Self {
            request_id: request.headers().get("x-request-id").cloned(),
            source: request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| *addr),
            method: request.method().clone(),
            uri: request.uri().clone(),
        }
    }

    /// `event` with this origin.
    pub fn stamp(&self, mut event: AuditEvent) -> AuditEvent {
        event.request_id = self
            .request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        event.source = self.source.map(|addr| addr.to_string());
        event.method = Some(self.method.to_string());
        event.path = Some(self.uri.path().to_owned());
        event
    }
}

/// The middleware in front of every route.
pub async fn guard(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let rule = gate
        .rules
        .find(request.method(), request.uri().path())
        .map(|rule| rule.access);
    if rule == Some(Access::Public) {
        return next.run(request).await;
    }
    let origin = RequestOrigin::of(&request);
    let audit = |event: AuditEvent| gate.auth.audit.record(&origin.stamp(event));
    let identity = match gate.auth.authenticate(request.headers()).await {
        Ok(identity) => {
            let span = tracing::Span::current();
            span.record("tenant", identity.tenant.as_str());
            span.record("subject", identity.subject.as_str());
            identity
        }
        Err(error) => {
            audit(AuditEvent::new(AuditKind::AuthenticationFailed).reason(error.to_string()));
            let code = match error {
                AuthError::Unavailable(_) => ErrorCode::StorageUnavailable,
                AuthError::Missing | AuthError::Invalid(_) => ErrorCode::Unauthenticated,
            };
            return HttpError(ApiError::new(code, error.to_string())).into_response();
        }
    };
    if let Some(Access::Needs(permission)) = rule
        && !identity.may(permission)
    {
        let denied = missing_scope(&identity, permission);
        audit(
            AuditEvent::new(AuditKind::PermissionDenied)
                .by(&identity)
                .reason(denied.message.clone()),
        );
        return HttpError(denied).into_response();
    }
    let admission = match gate.auth.limits.admit(&identity).await {
        Ok(admission) => admission,
        Err(refusal) => {
            audit(
                AuditEvent::new(AuditKind::RateLimited)
                    .by(&identity)
                    .reason(format!("{} per {}", refusal.limit, refusal.level)),
            );
            return rate_limited(&refusal);
        }
    };
    request.extensions_mut().insert(origin);
    request.extensions_mut().insert(identity);
    let mut response = next.run(request).await;
    limit_headers(response.headers_mut(), &admission);
    response
}

/// The 403 of an identity without `permission`.
pub fn missing_scope(identity: &Identity, permission: Permission) -> ApiError {
    ApiError::new(
        ErrorCode::PermissionDenied,
        format!(
            "You have insufficient permissions for this operation. Missing scope: {permission} (this credential has: {}).",
            if identity.permissions.is_empty() {
                "none".to_owned()
            } else {
                identity.permissions.to_string()
            }
        ),
    )
}

/// The error of a refused request, with the seconds to wait.
pub fn rate_limit_error(refusal: &Refusal) -> ApiError {
    let seconds = refusal.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut error = ApiError::new(
        ErrorCode::RateLimitExceeded,
        format!(
            "Rate limit reached: {} per {}. Try again in {seconds}s.",
            refusal.limit, refusal.level
        ),
    );
    error.retry_after = Some(seconds.to_string());
    error
}

/// The 429 of a refused request, with `Retry-After` and the bucket headers.
pub fn rate_limited(refusal: &Refusal) -> Response {
    let mut response = HttpError(rate_limit_error(refusal)).into_response();
    let admission = Admission {
        requests: refusal.requests,
        tokens: refusal.tokens,
    };
    limit_headers(response.headers_mut(), &admission);
    response
}

/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, as OpenAI sends them.
fn limit_headers(headers: &mut HeaderMap, admission: &Admission) {
    let mut put = |kind: &str, state: &BucketState| {
        let pairs = [
            ("limit", state.limit.to_string()),
            ("remaining", state.remaining.to_string()),
            ("reset", antwort_auth::limits::reset_text(state.reset)),
        ];
        for (what, value) in pairs {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(format!("x-ratelimit-{what}-{kind}")),
                HeaderValue::try_from(value),
            ) {
                headers.insert(name, value);
            }
        }
    };
    if let Some(state) = &admission.requests {
        put("requests", state);
    }
    if let Some(state) = &admission.tokens {
        put("tokens", state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_finds_the_most_literal_template_of_its_method() {
        let rule = |method, path, access| Rule {
            method,
            path,
            access,
        };
        let rules = Rules::new(vec![
            rule(
                Method::GET,
                "/v1/responses/{id}",
                Access::Needs(Permission::ResponsesRead),
            ),
            rule(
                Method::POST,
                "/v1/responses/compact",
                Access::Needs(Permission::ResponsesWrite),
            ),
            rule(Method::POST, "/v1/responses/{id}", Access::Authenticated),
            rule(Method::GET, "/healthz", Access::Public),
        ]);
        let found = |method: Method, path| rules.find(&method, path).map(|r| r.path);
        assert_eq!(
            found(Method::GET, "/v1/responses/resp_1"),
            Some("/v1/responses/{id}")
        );
        assert_eq!(
            found(Method::POST, "/v1/responses/compact"),
            Some("/v1/responses/compact")
        );
        assert_eq!(found(Method::GET, "/v1/responses/"), None);
        assert_eq!(found(Method::GET, "/v1/responses/a/b"), None);
        let public = |method: Method, path| {
            rules.find(&method, path).map(|r| r.access) == Some(Access::Public)
        };
        assert!(public(Method::GET, "/healthz"));
        assert!(!public(Method::POST, "/healthz"));
        assert!(!public(Method::GET, "/healthz/x"));
    }
}
