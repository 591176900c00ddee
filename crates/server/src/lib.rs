//! The HTTP surface of antwort: routes, SSE, error mapping and middleware.
//!
//! This is the only crate that knows axum. Handlers are thin: they parse at the
//! edge, call the engine, and choose a view of the engine's event stream.

pub mod access;
mod body;
mod error;
mod extract;
pub mod routes;
mod serve;
mod sse;
mod watch;
pub mod ws;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use access::{Access, Gate, Rules};
use antwort_api::{ApiError, ErrorCode};
use antwort_auth::{Auth, Permission};
use antwort_engine::Engine;
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::response::Response;
use tower::{Service, ServiceBuilder};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::HttpError;
pub use routes::responses::SKIPPED_TOOLS_HEADER;
pub use serve::{ConnectionLimits, serve, tls_acceptor};
pub use tokio_rustls::TlsAcceptor;

/// The query string of `GET /v1/responses`, as that route reads it (for the
/// fuzz target that checks every accepted query against a store).
pub fn parse_list_query(raw: &str) -> Result<antwort_engine::store::ListQuery, ApiError> {
    routes::listing::list_query(Some(raw), true)
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Larger request bodies get a 413.
    pub max_body_bytes: usize,
    /// How often a silent stream gets a keepalive comment.
    pub keepalive_interval: Duration,
    /// A request body must arrive within this.
    pub body_read_timeout: Duration,
    /// What one request body may hold.
    pub limits: RequestLimits,
    /// Origins browsers may call from (`*` for any); CORS is off when empty.
    pub cors_allowed_origins: Vec<String>,
    /// WebSocket mode on `/v1/responses`.
    pub websocket: ws::WebSocketSettings,
}

/// What one request may ask for, past the size of its body.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Items in `input` (or a conversation's `items`).
    pub max_input_items: usize,
    /// Entries in `tools`.
    pub max_tools: usize,
}

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    /// Shared, not copied: every handler's `State` clones the state.
    pub config: Arc<ServerConfig>,
    pub auth: Arc<Auth>,
    /// The open WebSockets, which shutdown closes and waits for.
    pub sockets: ws::Sockets,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: every route, wrapped in request ids and tracing.
///
/// The middleware wraps the router as a whole rather than each route
/// (`Router::layer`): a route's service is cloned for every request it
/// serves, and with the middleware inside it that clone copied the whole stack
/// of boxed layers each time.
pub fn app(
    engine: Engine,
    config: ServerConfig,
    auth: Arc<Auth>,
    sockets: ws::Sockets,
) -> impl Service<Request<Body>, Response = Response, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static {
    let cors = cors_layer(&config.cors_allowed_origins);
    let state = AppState {
        engine,
        config: Arc::new(config),
        auth: auth.clone(),
        sockets,
    };
    let (rules, router) = router(state);
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // `tenant` and `subject` are filled in by the access guard once it knows them.
        tracing::info_span!(
            "http",
            method = %request.method(),
            path = %request.uri().path(),
            request_id,
            tenant = tracing::field::Empty,
            subject = tracing::field::Empty,
        )
    });
    ServiceBuilder::new()
        // The trace layer wraps the body; axum serves its own body type.
        .map_response(|response: axum::http::Response<_>| response.map(Body::new))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(axum::middleware::map_response(error::in_openai_shape))
        // Outside the guard: a browser's preflight carries no credential.
        .option_layer(cors)
        .layer(axum::middleware::from_fn_with_state(
            Gate { auth, rules },
            access::guard,
        ))
        .service(router)
}

/// CORS for the configured origins; `None` (no CORS headers at all, so
/// browsers refuse cross-origin calls) when there are none.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderValue, Method, header};
    use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    let exposed = [
        "x-request-id",
        "retry-after",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ]
    .map(HeaderName::from_static);
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(exposed)
            .vary([header::ORIGIN])
            .max_age(Duration::from_secs(600)),
    )
}

/// Every route, each with the access it needs ([`access::RouteTable`]).
pub fn route_table() -> access::RouteTable {
    use Access::{Authenticated, Needs, Public};
    use Permission::{Admin, ConversationsRead, ConversationsWrite, ResponsesRead, ResponsesWrite};
    use axum::http::Method;
    use routes::{conversations, health, keys, models, responses, stored};
    access::RouteTable::new()
        .route(
            Method::POST,
            "/v1/responses",
            Needs(ResponsesWrite),
            responses::create,
        )
        .route(
            Method::GET,
            "/v1/responses",
            Needs(ResponsesRead),
            stored::list_or_upgrade,
        )
        .route(
            Method::GET,
            "/v1/responses/{id}",
            Needs(ResponsesRead),
            stored::get,
        )
        .route(
            Method::DELETE,
            "/v1/responses/{id}",
            Needs(ResponsesWrite),
            stored::delete,
        )
        .route(
            Method::GET,
            "/v1/responses/{id}/input_items",
            Needs(ResponsesRead),
            stored::input_items,
        )
        .route(
            Method::POST,
            "/v1/responses/input_tokens",
            Needs(ResponsesWrite),
            responses::input_tokens,
        )
        .route(
            Method::POST,
            "/v1/responses/compact",
            Needs(ResponsesWrite),
            responses::compact,
        )
        .route(
            Method::POST,
            "/v1/conversations",
            Needs(ConversationsWrite),
            conversations::create,
        )
        .route(
            Method::GET,
            "/v1/conversations/{id}",
            Needs(ConversationsRead),
            conversations::get,
        )
        .route(
            Method::POST,
            "/v1/conversations/{id}",
            Needs(ConversationsWrite),
            conversations::update,
        )
        .route(
            Method::DELETE,
            "/v1/conversations/{id}",
            Needs(ConversationsWrite),
            conversations::delete,
        )
        .route(
            Method::GET,
            "/v1/conversations/{id}/items",
            Needs(ConversationsRead),
            conversations::list_items,
        )
        .route(
            Method::POST,
            "/v1/conversations/{id}/items",
            Needs(ConversationsWrite),
            conversations::add_items,
        )
        .route(
            Method::GET,
            "/v1/conversations/{id}/items/{item_id}",
            Needs(ConversationsRead),
            conversations::get_item,
        )
        .route(
            Method::DELETE,
            "/v1/conversations/{id}/items/{item_id}",
            Needs(ConversationsWrite),
            conversations::delete_item,
        )
        .route(Method::GET, "/v1/models", Authenticated, models::list)
        // Model ids may hold slashes (`meta-llama/Llama-3.1-8B-Instruct`).
        .route(Method::GET, "/v1/models/{*id}", Authenticated, models::get)
        .route(Method::GET, "/v1/admin/keys", Needs(Admin), keys::list)
        .route(Method::POST, "/v1/admin/keys", Needs(Admin), keys::create)
        .route(
            Method::DELETE,
            "/v1/admin/keys/{id}",
            Needs(Admin),
            keys::revoke,
        )
        .route(Method::GET, "/healthz", Public, health::healthz)
        .route(Method::GET, "/readyz", Public, health::readyz)
}

fn router(state: AppState) -> (Rules, Router) {
    let (rules, router) = route_table().into_parts();
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Handlers read bodies through `extract::JsonBody`, whose 413 has the OpenAI shape.
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    (Rules::new(rules), router)
}

async fn not_found(uri: axum::http::Uri) -> HttpError {
    ApiError::new(ErrorCode::NotFound, format!("No route for {}", uri.path())).into()
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> HttpError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
    .into()
}
