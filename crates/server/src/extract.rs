//! Extractors every handler shares: who is asking ([`Caller`]: the identity,
//! its [`Scope`] and what the client says it is) and a JSON body read up to the size
//! limit and parsed at the edge ([`JsonBody`]).

use antwort_api::{
    AddConversationItemsRequest, ApiError, CompactRequest, CreateConversationRequest,
    CreateResponseRequest, ErrorCode, Input, UpdateConversationRequest, check_text, parse_json,
};
use antwort_auth::{AuditEvent, Identity, Permission};
use antwort_engine::{ClientHints, Reach, Scope};
use axum::extract::{FromRequest, FromRequestParts, Path, RawPathParams, Request};
use axum::http::request::Parts;

use crate::access::RequestOrigin;
use crate::body::read_body;
use crate::error::HttpError;
use crate::{AppState, RequestLimits};

/// The caller of a request: the identity the access guard established, the
/// [`Scope`] its stored objects live in, where it came from (for the audit
/// log) and what the client says it is.
pub struct Caller {
    pub identity: Identity,
    pub scope: Scope,
    pub origin: RequestOrigin,
    pub client: ClientHints,
}

impl Caller {
    /// A 403 unless the caller has `permission` (for what a body asks beyond
    /// the route's own scope).
    pub fn require(&self, permission: Permission) -> Result<(), HttpError> {
        if self.identity.may(permission) {
            Ok(())
        } else {
            Err(crate::access::missing_scope(&self.identity, permission).into())
        }
    }

    /// Writes `event`, by this caller, to the audit log.
    pub fn audit(&self, state: &AppState, event: AuditEvent) {
        state
            .auth
            .audit
            .record(&self.origin.stamp(event.by(&self.identity)));
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, HttpError> {
        // Only the guard puts an identity here; a route it did not guard has none
        // and serves nobody.
        let Some(identity) = parts.extensions.remove::<Identity>() else {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "This request was not authenticated.",
            )
            .into());
        };
        let origin = parts
            .extensions
            .remove::<RequestOrigin>()
            .unwrap_or_default();
        // The official OpenAI SDKs (Python, Node, and the ones generated with
        // them) identify themselves with `x-stainless-*` headers.
        let openai_sdk = parts
            .headers
            .keys()
            .any(|name| name.as_str().starts_with("x-stainless-"));
        let scope = Scope {
            tenant: identity.tenant.clone(),
            owner: identity.subject.clone(),
            reach: if identity.sees_tenant() {
                Reach::Tenant
            } else {
                Reach::Own
            },
        };
        Ok(Self {
            identity,
            scope,
            origin,
            client: ClientHints { openai_sdk },
        })
    }
}

/// A request body type, parsed (and checked) from JSON at the edge.
pub trait RequestBody: Sized {
    fn parse(body: &[u8]) -> Result<Self, ApiError>;

    /// Checks what the body asks for against the server's limits.
    fn check_limits(&self, _limits: &RequestLimits) -> Result<(), ApiError> {
        Ok(())
    }
}

fn check_items(param: &str, input: Option<&Input>, limits: &RequestLimits) -> Result<(), ApiError> {
    if let Some(Input::Items(items)) = input
        && items.len() > limits.max_input_items
    {
        return Err(ApiError::invalid(
            param,
            format!(
                "{param} holds {} items; this server takes at most {} (server.max_input_items)",
                items.len(),
                limits.max_input_items
            ),
        ));
    }
    Ok(())
}

impl RequestBody for CreateResponseRequest {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        CreateResponseRequest::from_json(body)
    }

    fn check_limits(&self, limits: &RequestLimits) -> Result<(), ApiError> {
        check_items("input", self.input.as_ref(), limits)?;
        if let Some(tools) = &self.tools
            && tools.len() > limits.max_tools
        {
            return Err(ApiError::invalid(
                "tools",
                format!(
                    "tools holds {} entries; this server takes at most {} (server.max_tools)",
                    tools.len(),
                    limits.max_tools
                ),
            ));
        }
        Ok(())
    }
}

impl RequestBody for CompactRequest {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        CompactRequest::from_json(body)
    }

    fn check_limits(&self, limits: &RequestLimits) -> Result<(), ApiError> {
        check_items("input", self.input.as_ref(), limits)
    }
}

impl RequestBody for CreateConversationRequest {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        // Clients create a conversation without a body: an empty one reads as `{}`.
        if body.iter().all(u8::is_ascii_whitespace) {
            return parse_json(b"{}");
        }
        parse_json(body)
    }

    fn check_limits(&self, limits: &RequestLimits) -> Result<(), ApiError> {
        check_items("items", self.items.as_ref(), limits)
    }
}

impl RequestBody for UpdateConversationRequest {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        parse_json(body)
    }
}

impl RequestBody for AddConversationItemsRequest {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        parse_json(body)
    }

    fn check_limits(&self, limits: &RequestLimits) -> Result<(), ApiError> {
        check_items("items", Some(&self.items), limits)
    }
}

/// A JSON body, read up to `server.max_body_bytes` (past it, a 413 in the OpenAI
/// shape) and parsed into `T` (a 400 naming the parameter at fault).
pub struct JsonBody<T>(pub T);

impl<T: RequestBody> FromRequest<AppState> for JsonBody<T> {
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, HttpError> {
        let config = &state.config;
        let body = read_body(
            request.into_body(),
            config.max_body_bytes,
            config.body_read_timeout,
        )
        .await?;
        let parsed = T::parse(&body)?;
        parsed.check_limits(&config.limits)?;
        Ok(Self(parsed))
    }
}

/// The ids a route's path names (`{id}`, `{item_id}`), percent-decoded and
/// checked as every id is at the edge ([`check_text`]). A path that is not UTF-8
/// once decoded (`%FF`) is a 400 in the OpenAI shape, as every rejection is.
pub struct PathIds<T>(pub T);

impl<T, S> FromRequestParts<S> for PathIds<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|rejection| bad_path(&rejection.body_text()))?;
        for (name, value) in &raw {
            check_text(name, value)?;
        }
        let Path(ids) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| bad_path(&rejection.body_text()))?;
        Ok(Self(ids))
    }
}

fn bad_path(detail: &str) -> HttpError {
    ApiError::new(
        ErrorCode::InvalidValue,
        format!("The request path is invalid: {detail}"),
    )
    .into()
}
