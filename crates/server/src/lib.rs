//! The HTTP surface of antwort: routes, SSE, error mapping and middleware.
//!
//! This is the only crate that knows axum. Handlers are thin: they parse at the
//! edge, call the engine, and choose a view of the engine's event stream.

mod body;
mod error;
mod extract;
pub mod routes;
mod serve;
mod sse;
mod watch;

use std::convert::Infallible;
use std::time::Duration;

use antwort_api::{ApiError, ErrorCode};
use antwort_engine::Engine;
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::response::Response;
use axum::routing::{get, post};
use tower::{Service, ServiceBuilder};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::HttpError;
pub use routes::responses::SKIPPED_TOOLS_HEADER;
pub use serve::{ConnectionLimits, serve};

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
}

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub config: ServerConfig,
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
) -> impl Service<Request<Body>, Response = Response, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static {
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id)
    });
    ServiceBuilder::new()
        // The trace layer wraps the body; axum serves its own body type.
        .map_response(|response: axum::http::Response<_>| response.map(Body::new))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(axum::middleware::map_response(error::in_openai_shape))
        .service(router(engine, config))
}

/// Every route.
fn router(engine: Engine, config: ServerConfig) -> Router {
    let state = AppState { engine, config };
    Router::new()
        .route(
            "/v1/responses",
            post(routes::responses::create).get(routes::stored::list_responses),
        )
        .route(
            "/v1/responses/{id}",
            get(routes::stored::get).delete(routes::stored::delete),
        )
        .route(
            "/v1/responses/{id}/input_items",
            get(routes::stored::input_items),
        )
        .route(
            "/v1/responses/input_tokens",
            post(routes::responses::input_tokens),
        )
        .route("/v1/responses/compact", post(routes::responses::compact))
        .route("/v1/conversations", post(routes::conversations::create))
        .route(
            "/v1/conversations/{id}",
            get(routes::conversations::get)
                .post(routes::conversations::update)
                .delete(routes::conversations::delete),
        )
        .route(
            "/v1/conversations/{id}/items",
            get(routes::conversations::list_items).post(routes::conversations::add_items),
        )
        .route(
            "/v1/conversations/{id}/items/{item_id}",
            get(routes::conversations::get_item).delete(routes::conversations::delete_item),
        )
        .route("/v1/models", get(routes::models::list))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Handlers read bodies through `extract::JsonBody`, whose 413 has the OpenAI shape.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
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
