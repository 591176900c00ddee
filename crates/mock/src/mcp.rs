//! MCP (Model Context Protocol) test servers, so that the gateway's MCP client can
//! be tested against a real server over every transport it speaks.
//!
//! One server, [`MockMcpServer`], built on the official Rust SDK (`rmcp`), offers
//! five tools whose behaviour a test can predict:
//!
//! | tool    | arguments         | result                                                  |
//! |---------|-------------------|---------------------------------------------------------|
//! | `add`   | `{a: num, b: num}`| the sum as a JSON number (`3`, `2.5`); `readOnlyHint`   |
//! | `echo`  | `{text: string}`  | the text                                                |
//! | `fail`  | `{}`              | `isError: true`, text `the tool failed on purpose`      |
//! | `sleep` | `{ms: integer}`   | waits `ms` milliseconds, then text `slept <ms>ms`       |
//! | `big`   | `{bytes: integer}`| text of `bytes` times `x` (at most [`MAX_BIG_BYTES`])   |
//!
//! [`router`] serves it on these routes, which `crate::router` merges into the
//! mock's own router (same port as `/v1`):
//!
//! - `/mcp`: the Streamable HTTP transport, without authentication.
//! - `/mcp-auth`: the same transport behind `Authorization: Bearer <token>`; the
//!   token is `static-token` or one issued by `/oauth/token` and not yet expired.
//!   Anything else is a 401 with a JSON body and a `WWW-Authenticate` header.
//! - `/oauth/token`: an OAuth 2.0 token endpoint for the `client_credentials`
//!   grant (see [`oauth`]).
//! - `GET /sse` and `POST /sse/message?sessionId=<id>`: the older HTTP+SSE
//!   transport of protocol revision 2024-11-05 (see [`sse`]).
//!
//! Every transport runs the same handler, which counts what it serves in
//! [`Stats`]: `mcp_list_tools` (tools/list requests) and `mcp_tool_calls`
//! (tools/call requests, failed ones included); `/oauth/token` counts
//! `oauth_tokens_issued`. Tests read them from `/mock/stats` or from the
//! `Arc<Stats>` that `crate::spawn` returns, for example to check that the gateway
//! caches tool lists and tokens.

pub mod oauth;
pub mod sse;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    Implementation, ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, schemars, tool, tool_router};
use serde::Deserialize;

use crate::Stats;

/// The largest text `big` returns, so that a typo in a test cannot exhaust memory.
pub const MAX_BIG_BYTES: u64 = 64 * 1024 * 1024;

/// The text of the `fail` tool's error result.
pub const FAIL_TEXT: &str = "the tool failed on purpose";

/// Arguments of `add`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AddArgs {
    /// The first addend.
    pub a: f64,
    /// The second addend.
    pub b: f64,
}

/// Arguments of `echo`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// The text to send back.
    pub text: String,
}

/// Arguments of `sleep`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SleepArgs {
    /// How long to wait, in milliseconds.
    pub ms: u64,
}

/// Arguments of `big`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct BigArgs {
    /// How many bytes of text to return.
    pub bytes: u64,
}

/// The mock's MCP server: five scripted tools and counters.
#[derive(Clone)]
pub struct MockMcpServer {
    stats: Arc<Stats>,
    tool_router: ToolRouter<Self>,
}

impl MockMcpServer {
    /// A server that counts what it serves in `stats`.
    pub fn new(stats: Arc<Stats>) -> Self {
        Self {
            stats,
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl MockMcpServer {
    #[tool(
        description = "Adds two numbers and returns their sum as a JSON number.",
        annotations(title = "Add", read_only_hint = true)
    )]
    async fn add(&self, Parameters(AddArgs { a, b }): Parameters<AddArgs>) -> CallToolResult {
        match json_number(a + b) {
            Some(sum) => CallToolResult::success(vec![ContentBlock::text(sum)]),
            None => {
                CallToolResult::error(vec![ContentBlock::text("the sum is not a finite number")])
            }
        }
    }

    #[tool(description = "Returns the given text unchanged.")]
    async fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text(text)])
    }

    #[tool(description = "Always fails: returns a tool result with isError set to true.")]
    async fn fail(&self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(FAIL_TEXT)])
    }

    #[tool(description = "Waits the given number of milliseconds, then says how long it slept.")]
    async fn sleep(
        &self,
        Parameters(SleepArgs { ms }): Parameters<SleepArgs>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        // A client that cancels the call (notifications/cancelled) must not keep the
        // server busy: that is one of the things the gateway's tests look at.
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => {
                CallToolResult::success(vec![ContentBlock::text(format!("slept {ms}ms"))])
            }
            () = context.ct.cancelled() => {
                CallToolResult::error(vec![ContentBlock::text("cancelled")])
            }
        }
    }

    #[tool(description = "Returns a text of the given number of bytes, all of them `x`.")]
    async fn big(&self, Parameters(BigArgs { bytes }): Parameters<BigArgs>) -> CallToolResult {
        match usize::try_from(bytes) {
            Ok(len) if bytes <= MAX_BIG_BYTES => {
                CallToolResult::success(vec![ContentBlock::text("x".repeat(len))])
            }
            _ => CallToolResult::error(vec![ContentBlock::text(format!(
                "bytes must be at most {MAX_BIG_BYTES}"
            ))]),
        }
    }
}

impl ServerHandler for MockMcpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "antwort-mock",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("Scripted test tools: add, echo, fail, sleep, big.")
    }

    // `list_tools` and `call_tool` are written out, rather than generated by
    // `#[tool_handler]`, only to count requests before answering them.
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.stats.mcp_list_tools.fetch_add(1, Ordering::SeqCst);
        let mut result = ListToolsResult::with_all_items(self.tool_router.list_all());
        // Protocol 2026-07-28 asks for cache hints. A time to live of zero tells an
        // SDK not to cache the list itself, so that the counter sees every list the
        // gateway asks for and its own cache can be tested.
        if context
            .protocol_version()
            .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28)
        {
            result.ttl_ms = Some(0);
            result.cache_scope = Some(CacheScope::Public);
        }
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.stats.mcp_tool_calls.fetch_add(1, Ordering::SeqCst);
        self.tool_router
            .call(ToolCallContext::new(self, request, context))
            .await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tool_router.get(name).cloned()
    }
}

/// Formats a number as JSON would: integral values without a fraction (`3`, not
/// `3.0`), others in the shortest form that reads back equal (`2.5`). `None` for
/// infinities and NaN, which JSON cannot express.
pub fn json_number(value: f64) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    // Below 2^53 every integral f64 is exactly an i64, so the cast loses nothing.
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        return Some((value as i64).to_string());
    }
    serde_json::Number::from_f64(value).map(|n| n.to_string())
}

/// The Streamable HTTP transport in front of a fresh [`MockMcpServer`] per session.
fn streamable(stats: Arc<Stats>) -> StreamableHttpService<MockMcpServer, LocalSessionManager> {
    // The mock is a test server: it may be reached under any host name (a
    // container's service name, for example), so rmcp's protection against DNS
    // rebinding, which only admits loopback names, would only get in the way.
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    StreamableHttpService::new(
        move || Ok(MockMcpServer::new(stats.clone())),
        Arc::default(),
        config,
    )
}

/// The MCP routes: `/mcp`, `/mcp-auth`, `/oauth/token`, `/sse` and `/sse/message`.
pub fn router(stats: Arc<Stats>) -> Router {
    let tokens = Arc::new(oauth::Tokens::new(stats.clone()));
    let protected = Router::new()
        .route_service("/mcp-auth", streamable(stats.clone()))
        .route_layer(axum::middleware::from_fn_with_state(
            tokens.clone(),
            oauth::require_bearer,
        ));
    Router::new()
        .route_service("/mcp", streamable(stats.clone()))
        .merge(protected)
        .merge(oauth::router(tokens))
        .merge(sse::router(stats))
}

#[cfg(test)]
mod tests {
    use super::json_number;

    #[test]
    fn sums_read_like_json_numbers() {
        assert_eq!(json_number(3.0).as_deref(), Some("3"));
        assert_eq!(json_number(2.5).as_deref(), Some("2.5"));
        assert_eq!(json_number(-0.0).as_deref(), Some("0"));
        assert_eq!(json_number(-4.0).as_deref(), Some("-4"));
        assert_eq!(
            json_number(0.1 + 0.2).as_deref(),
            Some("0.30000000000000004")
        );
        assert_eq!(json_number(1e300).as_deref(), Some("1e+300"));
        assert_eq!(json_number(f64::INFINITY), None);
    }
}
