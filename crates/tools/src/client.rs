//! [`McpClient`], the engine's [`McpConnector`]: finds the server a request
//! names (configured by label, or by URL through the URL policy), opens or
//! reuses a session on the right transport, runs the list or the call under its
//! deadline, and retries once when a reused connection turns out dead or an
//! OAuth token is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use antwort_engine::clock;
use tokio::time::Instant;

use antwort_engine::mcp::{McpCallResult, McpConnector, McpError, McpListedTool, McpServer};
use async_trait::async_trait;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{Peer, RoleClient, ServiceExt};
use tracing::Instrument;

use crate::errors::{self, ToolsError};
use crate::http::{self, HttpClients};
use crate::oauth::TokenSource;
use crate::output;
use crate::session::{Session, SessionKey, SessionPool};
use crate::settings::{McpAuth, McpServerSettings, McpSettings, McpTransport};
use crate::sse::SseTransport;
use antwort_egress::EgressGuard;

/// The MCP client: lists and calls tools on MCP servers for the engine.
/// Cloning is cheap and shares sessions, tokens and caches.
#[derive(Clone)]
pub struct McpClient {
    inner: Arc<Inner>,
}

struct Inner {
    configured: HashMap<String, Configured>,
    guard: Arc<EgressGuard>,
    clients: HttpClients,
    pool: SessionPool,
    list_timeout: Duration,
    call_timeout: Duration,
    max_output_bytes: usize,
    tools_cache_ttl: Duration,
    /// Configured servers' tool lists, by tenant and name, with when they were fetched.
    tools_cache: Mutex<HashMap<String, (Instant, Vec<McpListedTool>)>>,
}

/// A configured server, checked once at start.
struct Configured {
    url: Url,
    transport: McpTransport,
    headers: HashMap<HeaderName, HeaderValue>,
    token: Option<Arc<TokenSource>>,
}

/// Where one operation goes and what it sends.
struct Endpoint {
    url: Url,
    key: SessionKey,
    headers: HashMap<HeaderName, HeaderValue>,
    client: reqwest::Client,
    /// `None`: a per-request server, whose transport is found out.
    transport: Option<McpTransport>,
    token: Option<Arc<TokenSource>>,
}

impl std::fmt::Debug for McpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.inner.configured.keys().collect();
        names.sort();
        f.debug_struct("McpClient")
            .field("configured", &names)
            .finish_non_exhaustive()
    }
}

impl McpClient {
    /// Checks the settings and builds the client, with an egress guard of its
    /// own from `settings.policy`. Nothing connects yet.
    pub fn new(settings: McpSettings) -> Result<Self, ToolsError> {
        let guard = Arc::new(
            EgressGuard::new(&settings.policy).map_err(|e| ToolsError::Settings(e.to_string()))?,
        );
        Self::with_guard(settings, guard)
    }

    /// Builds the client on a shared egress guard (the one every outbound fetch
    /// of the gateway goes through); `settings.policy` is not read.
    pub fn with_guard(settings: McpSettings, guard: Arc<EgressGuard>) -> Result<Self, ToolsError> {
        for (name, value) in [
            ("connect_timeout", settings.connect_timeout),
            ("list_timeout", settings.list_timeout),
            ("call_timeout", settings.call_timeout),
            ("token_timeout", settings.token_timeout),
        ] {
            if value.is_zero() {
                return Err(ToolsError::Settings(format!("mcp {name} must be positive")));
            }
        }
        if settings.max_output_bytes == 0 {
            return Err(ToolsError::Settings(
                "mcp max_output_bytes must be positive".to_owned(),
            ));
        }
        let clients = HttpClients::new(settings.connect_timeout, guard.clone())?;
        let mut configured = HashMap::new();
        for server in settings.servers {
            let name = server.name.clone();
            let entry = configured_server(server, &clients, settings.token_timeout)?;
            if configured.insert(name.clone(), entry).is_some() {
                return Err(ToolsError::Settings(format!(
                    "mcp server '{name}' is defined twice"
                )));
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                configured,
                guard,
                clients,
                pool: SessionPool::new(settings.session_idle_timeout, settings.max_sessions),
                list_timeout: settings.list_timeout,
                call_timeout: settings.call_timeout,
                max_output_bytes: settings.max_output_bytes,
                tools_cache_ttl: settings.tools_cache_ttl,
                tools_cache: Mutex::new(HashMap::new()),
            }),
        })
    }
}

fn configured_server(
    server: McpServerSettings,
    clients: &HttpClients,
    token_timeout: Duration,
) -> Result<Configured, ToolsError> {
    let name = &server.name;
    let invalid = |what: String| ToolsError::Settings(format!("mcp server '{name}': {what}"));
    if name.trim().is_empty() {
        return Err(ToolsError::Settings("an mcp server has no name".to_owned()));
    }
    let url = http_url(&server.url).map_err(|e| invalid(format!("url {e}")))?;
    let headers = http::header_map(&server.headers).map_err(|e| invalid(e.to_string()))?;
    let token = match server.auth {
        McpAuth::None => None,
        McpAuth::OAuthClientCredentials(credentials) => {
            let token_url =
                http_url(&credentials.token_url).map_err(|e| invalid(format!("token_url {e}")))?;
            if credentials.client_id.is_empty() {
                return Err(invalid("the OAuth client_id is empty".to_owned()));
            }
            Some(Arc::new(TokenSource::new(
                name.clone(),
                token_url,
                credentials,
                clients.trusted.clone(),
                token_timeout,
            )))
        }
    };
    Ok(Configured {
        url,
        transport: server.transport,
        headers,
        token,
    })
}

/// Parses an http or https URL.
fn http_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|_| "is not a valid URL".to_owned())?;
    if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() {
        Ok(url)
    } else {
        Err("must be an http or https URL".to_owned())
    }
}

impl Inner {
    /// Where `server` is, checked against the policy if the request named it by
    /// URL.
    fn endpoint(&self, server: &McpServer) -> Result<Endpoint, McpError> {
        let Some(raw) = &server.url else {
            let configured = self
                .configured
                .get(&server.label)
                .ok_or_else(|| McpError::UnknownServer(server.label.clone()))?;
            // The operator's headers win over the request's: they are the
            // operator's decision about how to reach the server. With OAuth the
            // gateway sends its own token, and nobody else's.
            let mut headers = http::header_map(&server.headers)?;
            headers.extend(configured.headers.clone());
            if configured.token.is_some() {
                headers.remove(&AUTHORIZATION);
            }
            return Ok(Endpoint {
                key: self.pool.key(
                    &format!("{}\0configured\0{}", server.tenant, server.label),
                    &headers,
                ),
                url: configured.url.clone(),
                headers,
                client: self.clients.trusted.clone(),
                transport: Some(configured.transport),
                token: configured.token.clone(),
            });
        };
        let url = Url::parse(raw.trim())
            .map_err(|_| McpError::Denied("the server_url is not a valid URL".to_owned()))?;
        self.guard.check_url(&url).map_err(McpError::Denied)?;
        let headers = http::header_map(&server.headers)?;
        Ok(Endpoint {
            // A session is a tenant's own: a server's session state (and
            // whatever it remembers) never crosses to another tenant.
            key: self
                .pool
                .key(&format!("{}\0{}", server.tenant, url.as_str()), &headers),
            url,
            headers,
            client: self.clients.guarded.clone(),
            transport: None,
            token: None,
        })
    }

    /// Runs `op` on a session of `server` within `timeout`, retrying once with a
    /// new token when the server refuses the current one (it did not run the
    /// request), and, for an `idempotent` operation only, once with a new session
    /// when a reused one has lost its connection: a lost connection may come after
    /// the server received the request, and a tool call must never run twice.
    async fn run<T, F, Fut>(
        &self,
        server: &McpServer,
        timeout: Duration,
        idempotent: bool,
        op: F,
    ) -> Result<T, McpError>
    where
        F: Fn(Peer<RoleClient>) -> Fut,
        Fut: Future<Output = Result<T, McpError>>,
    {
        let endpoint = self.endpoint(server)?;
        let work = async {
            let mut may_renew_token = endpoint.token.is_some();
            let mut may_reconnect = idempotent;
            loop {
                let token = match &endpoint.token {
                    Some(source) => Some(source.token().await?),
                    None => None,
                };
                let leased = self
                    .pool
                    .lease(
                        &endpoint.key,
                        |session| session.token == token,
                        |known| self.connect(&endpoint, token.clone(), known),
                    )
                    .await;
                let (error, lease) = match leased {
                    Ok(lease) => match op(lease.session.peer()).await {
                        Ok(value) => return Ok(value),
                        Err(error) => (error, Some(lease)),
                    },
                    Err(error) => (error, None),
                };
                if let Some(lease) = &lease
                    && (errors::is_connection_lost(&error) || errors::is_unauthorized(&error))
                {
                    self.pool.discard(&endpoint.key, &lease.session).await;
                }
                if may_renew_token && errors::is_unauthorized(&error) {
                    may_renew_token = false;
                    if let (Some(source), Some(token)) = (&endpoint.token, &token) {
                        source.invalidate(token).await;
                    }
                    tracing::info!("the MCP server refused the OAuth token; fetching a new one");
                    continue;
                }
                let reused = lease.as_ref().is_some_and(|lease| !lease.fresh);
                if may_reconnect && reused && errors::is_connection_lost(&error) {
                    may_reconnect = false;
                    tracing::info!(%error, "the MCP session's connection failed; reconnecting once");
                    continue;
                }
                return Err(error);
            }
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            McpError::Timeout(format!(
                "the MCP server '{}' did not answer within {timeout:?}",
                server.label
            ))
        })?
    }

    /// Opens and initializes a session. `known` is the transport the last
    /// session under this key used.
    async fn connect(
        &self,
        endpoint: &Endpoint,
        token: Option<String>,
        known: Option<McpTransport>,
    ) -> Result<Session, McpError> {
        match endpoint.transport.or(known) {
            Some(McpTransport::StreamableHttp) => self.streamable(endpoint, token).await,
            Some(McpTransport::Sse) => self.sse(endpoint, token).await,
            None => {
                // The MCP specification's backwards compatibility: try Streamable
                // HTTP, and if its initialize POST is refused with 400, 404 or
                // 405, the older SSE transport on the same URL. Even a URL ending
                // in `/sse` is probed this way, which costs one POST per new
                // session key (the pool then remembers the answer) and keeps one
                // rule for every URL.
                let error = match self.streamable(endpoint, token.clone()).await {
                    Err(error) if errors::suggests_sse(&error) => error,
                    other => return other,
                };
                tracing::debug!(%error, "Streamable HTTP refused; trying the SSE transport");
                match self.sse(endpoint, token).await {
                    // An HTTP error from the SSE attempt only says that this is
                    // not an SSE server either; the first answer is the one that
                    // explains more.
                    Err(McpError::Http { .. }) => Err(error),
                    other => other,
                }
            }
        }
    }

    async fn streamable(
        &self,
        endpoint: &Endpoint,
        token: Option<String>,
    ) -> Result<Session, McpError> {
        let span = tracing::info_span!(
            "mcp.connect",
            transport = "streamable-http",
            host = endpoint.url.host_str().unwrap_or_default()
        );
        async {
            let mut config = StreamableHttpClientTransportConfig::with_uri(endpoint.url.as_str())
                .custom_headers(endpoint.headers.clone());
            if let Some(token) = &token {
                config = config.auth_header(token.clone());
            }
            let transport =
                StreamableHttpClientTransport::with_client(endpoint.client.clone(), config);
            let service = client_config(ProtocolVersion::LATEST_WITH_INITIALIZE)
                .serve(transport)
                .await
                .map_err(errors::from_init)?;
            Ok(Session::open(service, McpTransport::StreamableHttp, token).await)
        }
        .instrument(span)
        .await
    }

    async fn sse(&self, endpoint: &Endpoint, token: Option<String>) -> Result<Session, McpError> {
        let span = tracing::info_span!(
            "mcp.connect",
            transport = "sse",
            host = endpoint.url.host_str().unwrap_or_default()
        );
        async {
            let mut headers = endpoint.headers.clone();
            if let Some(token) = &token {
                headers.insert(AUTHORIZATION, http::bearer(token)?);
            }
            let transport =
                SseTransport::connect(endpoint.client.clone(), endpoint.url.clone(), headers)
                    .await
                    .map_err(|error| errors::from_transport(&error))?;
            // The SSE transport belongs to protocol revision 2024-11-05, so that is
            // the revision to ask for; a server that knows newer ones still
            // answers in it.
            let service = client_config(ProtocolVersion::V_2024_11_05)
                .serve(transport)
                .await
                .map_err(errors::from_init)?;
            Ok(Session::open(service, McpTransport::Sse, token).await)
        }
        .instrument(span)
        .await
    }

    fn cached_tools(&self, name: &str) -> Option<Vec<McpListedTool>> {
        let cache = self
            .tools_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache
            .get(name)
            .filter(|(fetched, _)| fetched.elapsed() < self.tools_cache_ttl)
            .map(|(_, tools)| tools.clone())
    }

    fn cache_tools(&self, name: &str, tools: &[McpListedTool]) {
        let mut cache = self
            .tools_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.insert(name.to_owned(), (clock::now(), tools.to_vec()));
    }
}

/// What the gateway tells servers about itself: no client capabilities (it
/// offers no sampling, roots or elicitation).
fn client_config(version: ProtocolVersion) -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("antwort", env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(version)
}

#[async_trait]
impl McpConnector for McpClient {
    #[tracing::instrument(name = "mcp.list_tools", skip_all, fields(server = %server.label, configured = server.url.is_none()))]
    async fn list_tools(&self, server: &McpServer) -> Result<Vec<McpListedTool>, McpError> {
        let inner = &self.inner;
        // Only configured servers are cached here: the engine keeps per-request
        // servers' lists in the conversation.
        let cacheable = server.url.is_none();
        let cache_key = format!("{}\0{}", server.tenant, server.label);
        if cacheable && let Some(tools) = inner.cached_tools(&cache_key) {
            tracing::debug!(tools = tools.len(), "tool list from the cache");
            return Ok(tools);
        }
        let result = inner
            .run(server, inner.list_timeout, true, |peer| async move {
                peer.list_all_tools().await.map_err(errors::from_service)
            })
            .await;
        let tools: Vec<McpListedTool> = match result {
            Ok(tools) => tools.into_iter().map(output::tool_info).collect(),
            Err(error) => {
                // The engine reports the failure; logging it here too would log
                // it twice.
                tracing::debug!(%error, "listing MCP tools failed");
                return Err(error);
            }
        };
        if cacheable {
            inner.cache_tools(&cache_key, &tools);
        }
        tracing::debug!(tools = tools.len(), "tool list fetched");
        Ok(tools)
    }

    #[tracing::instrument(name = "mcp.call_tool", skip_all, fields(server = %server.label, tool = %tool))]
    async fn call_tool(
        &self,
        server: &McpServer,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> Result<McpCallResult, McpError> {
        let inner = &self.inner;
        let result = inner
            .run(server, inner.call_timeout, false, |peer| {
                let params =
                    CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments.clone());
                async move { peer.call_tool(params).await.map_err(errors::from_service) }
            })
            .await;
        match result {
            Ok(result) => {
                let result = output::call_result(result, inner.max_output_bytes);
                tracing::debug!(
                    is_error = result.is_error,
                    output_bytes = result.output.len(),
                    "tool called"
                );
                Ok(result)
            }
            Err(error) => {
                tracing::debug!(%error, "calling an MCP tool failed");
                Err(error)
            }
        }
    }
}
