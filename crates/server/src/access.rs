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
pub struct Rules(Arc<Vec<Rule>>);

impl Rules {
    pub fn new(rules: Vec<Rule>) -> Self {
        Self(Arc::new(rules))
    }

    pub fn all(&self) -> &[Rule] {
        &self.0
    }

    /// The rule for `method` on `path`: of the templates that match, the one
    /// with the most literal segments (as the router picks
    /// `/v1/responses/compact` over `/v1/responses/{id}`). `None` for a path or
    /// method no route serves.
    pub fn find(&self, method: &Method, path: &str) -> Option<&Rule> {
        self.0
            .iter()
            .filter(|rule| rule.method == *method)
            .filter_map(|rule| literal_match(rule.path, path).map(|literals| (literals, rule)))
            .max_by_key(|(literals, _)| *literals)
            .map(|(_, rule)| rule)
    }

    /// Whether `path` is on the allowlist for `method`.
    fn public(&self, method: &Method, path: &str) -> bool {
        self.find(method, path)
            .is_some_and(|rule| rule.access == Access::Public)
    }
}

/// How many literal segments of `template` match `path`, if all of it does.
fn literal_match(template: &str, path: &str) -> Option<usize> {
    let mut literals = 0;
    let mut wanted = template.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return Some(literals),
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {}
            (Some(w), Some(g)) if w == g => literals += 1,
            _ => return None,
        }
    }
}

/// The state the guard needs.
#[derive(Clone)]
pub struct Gate {
    pub auth: Arc<Auth>,
    pub rules: Rules,
}

/// Who asked, and from where: what audit lines say besides the event.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin {
    pub request_id: Option<String>,
    pub source: Option<String>,
    pub method: String,
    pub path: String,
}

impl RequestOrigin {
    pub fn of(request: &Request) -> Self {
        Self {
            request_id: request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            source: request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.to_string()),
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
        }
    }

    /// `event` with this origin.
    pub fn stamp(&self, mut event: AuditEvent) -> AuditEvent {
        event.request_id.clone_from(&self.request_id);
        event.source.clone_from(&self.source);
        event.method = Some(self.method.clone());
        event.path = Some(self.path.clone());
        event
    }
}

/// The middleware in front of every route.
pub async fn guard(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if gate.rules.public(&method, &path) {
        return next.run(request).await;
    }
    let origin = RequestOrigin::of(&request);
    let audit = |event: AuditEvent| gate.auth.audit.record(&origin.stamp(event));
    let identity = match gate.auth.authenticate(request.headers()).await {
        Ok(identity) => identity,
        Err(error) => {
            audit(AuditEvent::new(AuditKind::AuthenticationFailed).reason(error.to_string()));
            let code = match error {
                AuthError::Unavailable(_) => ErrorCode::StorageUnavailable,
                AuthError::Missing | AuthError::Invalid(_) => ErrorCode::Unauthenticated,
            };
            return HttpError(ApiError::new(code, error.to_string())).into_response();
        }
    };
    if let Some(Access::Needs(permission)) = gate.rules.find(&method, &path).map(|r| r.access)
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

/// The 429 of a refused request, with `Retry-After` and the bucket headers.
pub fn rate_limited(refusal: &Refusal) -> Response {
    let seconds = refusal.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut error = ApiError::new(
        ErrorCode::RateLimitExceeded,
        format!(
            "Rate limit reached: {} per {}. Try again in {seconds}s.",
            refusal.limit, refusal.level
        ),
    );
    error.retry_after = Some(seconds.to_string());
    let mut response = HttpError(error).into_response();
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
        assert!(rules.public(&Method::GET, "/healthz"));
        assert!(!rules.public(&Method::POST, "/healthz"));
        assert!(!rules.public(&Method::GET, "/healthz/x"));
    }
}
