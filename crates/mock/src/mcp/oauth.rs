//! The OAuth 2.0 side of the MCP test server: a token endpoint for the
//! `client_credentials` grant and the bearer check in front of `/mcp-auth`.
//!
//! `POST /oauth/token` takes a form (`application/x-www-form-urlencoded`) with
//! `grant_type=client_credentials`, `client_id`, `client_secret` and an optional
//! `scope`; the client may instead authenticate with HTTP Basic
//! (`Authorization: Basic base64(id:secret)`), which wins when both are given.
//! Two clients exist:
//!
//! | client_id       | client_secret | tokens                                 |
//! |-----------------|---------------|----------------------------------------|
//! | `antwort`       | `s3cret`      | `oauth-<n>`, `expires_in: 3600`        |
//! | `antwort-short` | `s3cret`      | `oauth-<n>`, `expires_in: 1`           |
//!
//! The answer is `{"access_token", "token_type": "Bearer", "expires_in"}` (plus
//! `scope` when one was asked for). A wrong client or secret is a 401
//! `{"error": "invalid_client"}`, a grant other than `client_credentials` a 400
//! `{"error": "unsupported_grant_type"}`, a missing grant or an unreadable form a
//! 400 `{"error": "invalid_request"}`. Every issued token increments
//! `Stats::oauth_tokens_issued`, and `<n>` is that counter's new value.
//!
//! `/mcp-auth` accepts `Authorization: Bearer static-token` (which never expires)
//! or an issued token until `expires_in` seconds after it was issued, so that a
//! client's refresh can be tested with `antwort-short`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::rejection::FormRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use crate::Stats;

/// The bearer token `/mcp-auth` always accepts.
pub const STATIC_TOKEN: &str = "static-token";

/// The registered clients: id, secret and the lifetime of their tokens.
const CLIENTS: &[(&str, &str, Duration)] = &[
    ("antwort", "s3cret", Duration::from_secs(3600)),
    ("antwort-short", "s3cret", Duration::from_secs(1)),
];

/// The tokens issued so far, with the instant each stops being accepted.
pub struct Tokens {
    stats: Arc<Stats>,
    expiries: Mutex<HashMap<String, Instant>>,
}

impl Tokens {
    /// An empty store that counts issued tokens in `stats`.
    pub fn new(stats: Arc<Stats>) -> Self {
        Self {
            stats,
            expiries: Mutex::default(),
        }
    }

    /// Issues a new token valid for `lifetime`.
    fn issue(&self, lifetime: Duration) -> String {
        let n = self
            .stats
            .oauth_tokens_issued
            .fetch_add(1, Ordering::SeqCst)
            + 1;
        let token = format!("oauth-{n}");
        let now = Instant::now();
        // A poisoned lock only means another request panicked while holding it; the
        // map itself is still consistent, so keep serving.
        let mut expiries = self.expiries.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget expired tokens here so that the map stays as small as the set of
        // live tokens, however long the mock runs.
        expiries.retain(|_, expiry| *expiry > now);
        expiries.insert(token.clone(), now + lifetime);
        token
    }

    /// Whether `token` is accepted by `/mcp-auth` now.
    fn accepts(&self, token: &str) -> bool {
        if token == STATIC_TOKEN {
            return true;
        }
        let expiries = self.expiries.lock().unwrap_or_else(PoisonError::into_inner);
        expiries
            .get(token)
            .is_some_and(|expiry| Instant::now() < *expiry)
    }
}

/// The form of a token request; every field is optional so that a missing one
/// gets an OAuth error rather than axum's generic rejection.
#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

/// `/oauth/token`.
pub fn router(tokens: Arc<Tokens>) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .with_state(tokens)
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response();
    // RFC 6749 section 5.1: token answers must not be cached.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The client id and secret from an `Authorization: Basic` header, if there is one.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    // RFC 6749 form-encodes the id and secret before joining them; the registered
    // clients only use characters that this leaves unchanged, so no decoding here.
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

async fn token(
    State(tokens): State<Arc<Tokens>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &rejection.body_text(),
            );
        }
    };
    let basic = basic_credentials(&headers);
    let tried_basic = basic.is_some();
    let (id, secret) = match basic {
        Some(credentials) => credentials,
        None => (
            form.client_id.unwrap_or_default(),
            form.client_secret.unwrap_or_default(),
        ),
    };
    let Some(&(_, _, lifetime)) = CLIENTS
        .iter()
        .find(|(client, client_secret, _)| *client == id && *client_secret == secret)
    else {
        let mut response = oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
        // RFC 6749 section 5.2 asks for a challenge when the client tried Basic.
        if tried_basic {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"antwort-mock\""),
            );
        }
        return response;
    };
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only client_credentials is supported",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            );
        }
    }
    let access_token = tokens.issue(lifetime);
    tracing::debug!(client = %id, "issued an OAuth token");
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
    });
    if let Some(scope) = form.scope {
        body["scope"] = json!(scope);
    }
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The middleware in front of `/mcp-auth`: lets a request through only with an
/// accepted bearer token.
pub async fn require_bearer(
    State(tokens): State<Arc<Tokens>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let (challenge, description) = match presented {
        Some(token) if tokens.accepts(&token) => return next.run(request).await,
        Some(_) => (
            "Bearer realm=\"antwort-mock\", error=\"invalid_token\"",
            "the bearer token is unknown or expired",
        ),
        // RFC 6750 section 3.1: without credentials, the challenge names no error.
        None => (
            "Bearer realm=\"antwort-mock\"",
            "a bearer token is required",
        ),
    };
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "invalid_token", "error_description": description})),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}
