//! The MCP client against the mock's real MCP servers (Streamable HTTP at `/mcp`
//! and `/mcp-auth`, the older SSE transport at `/sse`, OAuth at `/oauth/token`),
//! on loopback: listing and calling over both transports, tool errors, the URL
//! policy, unreachable servers, header and OAuth authentication, output capping,
//! timeouts, the tool-list cache, and recovery from cut connections. The mock's
//! counters show what reached it.

#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn, time and read rows directly; the funnels are for the product code"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a panic is the failure report"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use antwort_engine::mcp::{McpConnector, McpError, McpServer};
use antwort_mock::{Latency, Stats};
use antwort_tools::{
    McpAuth, McpClient, McpServerSettings, McpSettings, McpTransport, OAuthClientCredentials,
    UrlPolicy,
};
use serde_json::{Map, Value, json};

/// The mock's origin (without `/v1`) and its counters.
async fn mock() -> (String, Arc<Stats>) {
    let (base, stats) = antwort_mock::spawn(Latency::default()).await.unwrap();
    let origin = base.strip_suffix("/v1").unwrap().to_owned();
    (origin, stats)
}

/// Settings that let per-request servers on loopback through, as tests need.
fn loopback_settings() -> McpSettings {
    McpSettings {
        policy: UrlPolicy {
            allow_loopback: true,
            ..UrlPolicy::default()
        },
        ..McpSettings::default()
    }
}

fn client(settings: McpSettings) -> McpClient {
    McpClient::new(settings).unwrap()
}

fn by_url(url: String) -> McpServer {
    McpServer {
        label: "test".to_owned(),
        url: Some(url),
        headers: BTreeMap::new(),
        tenant: "default".to_owned(),
    }
}

fn by_label(label: &str) -> McpServer {
    McpServer {
        label: label.to_owned(),
        url: None,
        headers: BTreeMap::new(),
        tenant: "default".to_owned(),
    }
}

fn with_header(mut server: McpServer, name: &str, value: &str) -> McpServer {
    server.headers.insert(name.to_owned(), value.to_owned());
    server
}

fn args(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("arguments must be an object, not {other}"),
    }
}

fn oauth(origin: &str, client_id: &str, secret: &str) -> McpAuth {
    McpAuth::OAuthClientCredentials(OAuthClientCredentials {
        token_url: format!("{origin}/oauth/token"),
        client_id: client_id.to_owned(),
        client_secret: secret.to_owned(),
        scopes: vec!["tools".to_owned()],
    })
}

async fn check_list_and_call(mcp: &McpClient, server: &McpServer) {
    let tools = mcp.list_tools(server).await.unwrap();
    let mut names: Vec<_> = tools.iter().map(|tool| tool.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["add", "big", "echo", "fail", "sleep"]);
    let add = tools.iter().find(|tool| tool.name == "add").unwrap();
    assert!(add.description.as_deref().unwrap().contains("sum"));
    assert_eq!(add.input_schema["type"], "object");
    assert!(add.input_schema["properties"]["a"].is_object());
    assert!(add.input_schema["properties"]["b"].is_object());
    assert_eq!(add.annotations.as_ref().unwrap()["readOnlyHint"], true);

    let sum = mcp
        .call_tool(server, "add", args(json!({"a": 1, "b": 2})))
        .await
        .unwrap();
    assert_eq!(sum.output, "3");
    assert!(!sum.is_error);
    let echo = mcp
        .call_tool(
            server,
            "echo",
            args(json!({"text": "grüß dich\nzweite Zeile"})),
        )
        .await
        .unwrap();
    assert_eq!(echo.output, "grüß dich\nzweite Zeile");
}

#[tokio::test]
async fn streamable_http_lists_and_calls() {
    let (origin, stats) = mock().await;
    let mcp = client(loopback_settings());
    check_list_and_call(&mcp, &by_url(format!("{origin}/mcp"))).await;
    assert_eq!(stats.mcp_list_tools.load(Ordering::SeqCst), 1);
    assert_eq!(stats.mcp_tool_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn sse_lists_and_calls_after_streamable_http_is_refused() {
    // POST /sse is a 405 at the mock, so this is the specification's fallback.
    let (origin, stats) = mock().await;
    let mcp = client(loopback_settings());
    check_list_and_call(&mcp, &by_url(format!("{origin}/sse"))).await;
    assert_eq!(stats.mcp_list_tools.load(Ordering::SeqCst), 1);
    assert_eq!(stats.mcp_tool_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn configured_servers_use_their_transport() {
    let (origin, _stats) = mock().await;
    let mut sse = McpServerSettings::new("legacy", format!("{origin}/sse"));
    sse.transport = McpTransport::Sse;
    let streamable = McpServerSettings::new("modern", format!("{origin}/mcp"));
    // Configured servers are trusted: no loopback permission needed.
    let mcp = client(McpSettings {
        servers: vec![sse, streamable],
        ..McpSettings::default()
    });
    check_list_and_call(&mcp, &by_label("legacy")).await;
    check_list_and_call(&mcp, &by_label("modern")).await;
}

#[tokio::test]
async fn an_unknown_label_is_an_unknown_server() {
    let mcp = client(McpSettings::default());
    let error = mcp.list_tools(&by_label("nowhere")).await.unwrap_err();
    assert_eq!(error, McpError::UnknownServer("nowhere".to_owned()));
}

#[tokio::test]
async fn tool_errors_are_results_on_both_transports() {
    let (origin, _stats) = mock().await;
    let mcp = client(loopback_settings());
    for path in ["/mcp", "/sse"] {
        let result = mcp
            .call_tool(&by_url(format!("{origin}{path}")), "fail", Map::new())
            .await
            .unwrap();
        assert!(result.is_error, "{path}");
        assert_eq!(result.output, "the tool failed on purpose", "{path}");
    }
}

#[tokio::test]
async fn an_unknown_tool_is_a_protocol_error() {
    let (origin, _stats) = mock().await;
    let mcp = client(loopback_settings());
    let outcome = mcp
        .call_tool(&by_url(format!("{origin}/mcp")), "nope", Map::new())
        .await;
    // Servers answer an unknown tool either with a JSON-RPC error or with an
    // error result; both must reach the engine as such.
    match outcome {
        Err(McpError::Protocol { .. }) => {}
        Ok(result) => assert!(result.is_error, "{result:?}"),
        Err(other) => panic!("unexpected error: {other:?}"),
    }
}

#[tokio::test]
async fn concurrent_calls_share_a_session() {
    let (origin, stats) = mock().await;
    let mcp = client(loopback_settings());
    for path in ["/mcp", "/sse"] {
        let server = by_url(format!("{origin}{path}"));
        let calls = (0..5).map(|i| {
            let mcp = mcp.clone();
            let server = server.clone();
            async move {
                mcp.call_tool(&server, "echo", args(json!({"text": format!("call {i}")})))
                    .await
            }
        });
        let results = futures::future::join_all(calls).await;
        for (i, result) in results.into_iter().enumerate() {
            assert_eq!(result.unwrap().output, format!("call {i}"), "{path}");
        }
    }
    assert_eq!(stats.mcp_tool_calls.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn loopback_is_denied_by_default() {
    let (origin, stats) = mock().await;
    let mcp = client(McpSettings::default());
    let error = mcp
        .list_tools(&by_url(format!("{origin}/mcp")))
        .await
        .unwrap_err();
    let McpError::Denied(message) = error else {
        panic!("expected Denied, got {error:?}");
    };
    assert!(message.contains("127.0.0.1"), "{message}");

    // A name is judged by what it resolves to, inside the HTTP client.
    let by_name = origin.replace("127.0.0.1", "localhost");
    let error = mcp
        .list_tools(&by_url(format!("{by_name}/mcp")))
        .await
        .unwrap_err();
    let McpError::Denied(message) = error else {
        panic!("expected Denied, got {error:?}");
    };
    assert!(message.contains("localhost"), "{message}");
    assert_eq!(stats.mcp_list_tools.load(Ordering::SeqCst), 0);

    let allowed = client(loopback_settings());
    assert_eq!(
        allowed
            .list_tools(&by_url(format!("{by_name}/mcp")))
            .await
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn private_and_link_local_literals_are_denied() {
    let mcp = client(loopback_settings());
    for url in [
        "http://10.0.0.1/mcp",
        "http://192.168.1.1/mcp",
        "http://172.16.0.1/mcp",
        "http://100.64.0.1/mcp",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/mcp",
        "http://[fd00::1]/mcp",
        "http://[::ffff:10.0.0.1]/mcp",
        "http://0.0.0.0/mcp",
        "file:///etc/passwd",
    ] {
        let secret = with_header(by_url(url.to_owned()), "authorization", "Bearer hunter2");
        let error = mcp.list_tools(&secret).await.unwrap_err();
        let McpError::Denied(message) = &error else {
            panic!("{url}: expected Denied, got {error:?}");
        };
        assert!(!message.contains("hunter2"), "{message}");
    }
}

#[tokio::test]
async fn the_deny_list_wins_over_the_allow_list() {
    let (origin, _stats) = mock().await;
    let policy = |allow: &[&str], deny: &[&str]| McpSettings {
        policy: UrlPolicy {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
            ..UrlPolicy::default()
        },
        ..McpSettings::default()
    };
    let server = by_url(format!("{origin}/mcp"));
    let by_name = by_url(format!("{}/mcp", origin.replace("127.0.0.1", "localhost")));

    let allowed = client(policy(&["127.0.0.1", "localhost"], &[]));
    assert_eq!(allowed.list_tools(&server).await.unwrap().len(), 5);
    assert_eq!(allowed.list_tools(&by_name).await.unwrap().len(), 5);

    let denied = client(policy(&["127.0.0.1", "localhost"], &["127.0.0.0/8"]));
    assert!(matches!(
        denied.list_tools(&server).await,
        Err(McpError::Denied(_))
    ));
    assert!(matches!(
        denied.list_tools(&by_name).await,
        Err(McpError::Denied(_))
    ));
    let denied = client(policy(&["127.0.0.0/8"], &["localhost"]));
    assert!(matches!(
        denied.list_tools(&by_name).await,
        Err(McpError::Denied(_))
    ));
}

#[tokio::test]
async fn a_closed_port_is_unreachable_not_a_timeout() {
    // Bound but never listening: the port stays this test's (a released one can
    // be taken by a server of a test running beside it), and connecting to it is
    // refused.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = closed.local_addr().unwrap().port();
    // With the default 30 s list timeout, anything but Unreachable here would
    // mean the client waited instead of failing at once.
    let mcp = client(loopback_settings());
    let error = mcp
        .list_tools(&by_url(format!("http://127.0.0.1:{port}/mcp")))
        .await
        .unwrap_err();
    assert!(matches!(error, McpError::Unreachable(_)), "{error:?}");

    let mut configured = McpServerSettings::new("down", format!("http://127.0.0.1:{port}/sse"));
    configured.transport = McpTransport::Sse;
    let mcp = client(McpSettings {
        servers: vec![configured],
        ..McpSettings::default()
    });
    let error = mcp.list_tools(&by_label("down")).await.unwrap_err();
    assert!(matches!(error, McpError::Unreachable(_)), "{error:?}");
}

#[tokio::test]
async fn bearer_tokens_in_headers_authenticate() {
    let (origin, _stats) = mock().await;
    let mcp = client(loopback_settings());
    let server = by_url(format!("{origin}/mcp-auth"));
    let error = mcp.list_tools(&server).await.unwrap_err();
    assert!(
        matches!(error, McpError::Http { status: 401, .. }),
        "{error:?}"
    );
    let wrong = with_header(server.clone(), "Authorization", "Bearer wrong");
    assert!(matches!(
        mcp.list_tools(&wrong).await,
        Err(McpError::Http { status: 401, .. })
    ));
    let authorized = with_header(server, "Authorization", "Bearer static-token");
    check_list_and_call(&mcp, &authorized).await;
}

#[tokio::test]
async fn configured_static_headers_authenticate() {
    let (origin, _stats) = mock().await;
    let mut server = McpServerSettings::new("static", format!("{origin}/mcp-auth"));
    server
        .headers
        .insert("Authorization".to_owned(), "Bearer static-token".to_owned());
    let mcp = client(McpSettings {
        servers: vec![server],
        ..McpSettings::default()
    });
    // A request's own authorization does not replace the operator's.
    let request = with_header(by_label("static"), "authorization", "Bearer wrong");
    check_list_and_call(&mcp, &request).await;
}

#[tokio::test]
async fn an_oauth_token_is_fetched_once_and_reused() {
    let (origin, stats) = mock().await;
    let mut server = McpServerSettings::new("oauth", format!("{origin}/mcp-auth"));
    server.auth = oauth(&origin, "antwort", "s3cret");
    let mcp = client(McpSettings {
        servers: vec![server],
        ..McpSettings::default()
    });
    check_list_and_call(&mcp, &by_label("oauth")).await;
    for _ in 0..3 {
        let result = mcp
            .call_tool(&by_label("oauth"), "add", args(json!({"a": 2, "b": 2})))
            .await
            .unwrap();
        assert_eq!(result.output, "4");
    }
    assert_eq!(stats.oauth_tokens_issued.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_short_lived_oauth_token_is_renewed() {
    let (origin, stats) = mock().await;
    let mut server = McpServerSettings::new("short", format!("{origin}/mcp-auth"));
    server.auth = oauth(&origin, "antwort-short", "s3cret");
    let mcp = client(McpSettings {
        servers: vec![server],
        ..McpSettings::default()
    });
    let server = by_label("short");
    let call = || mcp.call_tool(&server, "echo", args(json!({"text": "hi"})));
    assert_eq!(call().await.unwrap().output, "hi");
    let issued = stats.oauth_tokens_issued.load(Ordering::SeqCst);
    assert!(issued >= 1);
    // The mock's `antwort-short` tokens live one second: wait that out, which is
    // the point of the test rather than a synchronisation.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call().await.unwrap().output, "hi");
    assert!(stats.oauth_tokens_issued.load(Ordering::SeqCst) > issued);
}

#[tokio::test]
async fn refused_client_credentials_are_an_http_error() {
    let (origin, _stats) = mock().await;
    let mut server = McpServerSettings::new("bad", format!("{origin}/mcp-auth"));
    server.auth = oauth(&origin, "antwort", "wrong");
    let mcp = client(McpSettings {
        servers: vec![server],
        ..McpSettings::default()
    });
    let error = mcp.list_tools(&by_label("bad")).await.unwrap_err();
    let McpError::Http {
        status: 401,
        message,
    } = &error
    else {
        panic!("expected HTTP 401, got {error:?}");
    };
    assert!(!message.contains("wrong"), "{message}");
}

#[tokio::test]
async fn long_outputs_are_capped() {
    let (origin, _stats) = mock().await;
    let mcp = client(McpSettings {
        max_output_bytes: 1000,
        ..loopback_settings()
    });
    for path in ["/mcp", "/sse"] {
        let result = mcp
            .call_tool(
                &by_url(format!("{origin}{path}")),
                "big",
                args(json!({"bytes": 5000})),
            )
            .await
            .unwrap();
        let (kept, note) = result.output.split_at(1000);
        assert_eq!(kept, "x".repeat(1000), "{path}");
        assert!(note.contains("4000 more bytes omitted"), "{path}: {note}");
    }
    let default = client(loopback_settings());
    let result = default
        .call_tool(
            &by_url(format!("{origin}/mcp")),
            "big",
            args(json!({"bytes": 150_000})),
        )
        .await
        .unwrap();
    assert!(result.output.starts_with(&"x".repeat(100_000)));
    assert!(result.output.contains("50000 more bytes omitted"));
}

#[tokio::test]
async fn a_slow_call_times_out_and_the_session_survives() {
    let (origin, _stats) = mock().await;
    let mcp = client(McpSettings {
        call_timeout: Duration::from_millis(300),
        ..loopback_settings()
    });
    let server = by_url(format!("{origin}/mcp"));
    let ok = mcp
        .call_tool(&server, "sleep", args(json!({"ms": 1})))
        .await
        .unwrap();
    assert_eq!(ok.output, "slept 1ms");
    let error = mcp
        .call_tool(&server, "sleep", args(json!({"ms": 10_000})))
        .await
        .unwrap_err();
    assert!(matches!(error, McpError::Timeout(_)), "{error:?}");
    let again = mcp
        .call_tool(&server, "echo", args(json!({"text": "still here"})))
        .await
        .unwrap();
    assert_eq!(again.output, "still here");
}

#[tokio::test]
async fn configured_tool_lists_are_cached() {
    let (origin, stats) = mock().await;
    let servers = vec![McpServerSettings::new("cached", format!("{origin}/mcp"))];
    let mcp = client(McpSettings {
        servers: servers.clone(),
        ..McpSettings::default()
    });
    for _ in 0..3 {
        assert_eq!(mcp.list_tools(&by_label("cached")).await.unwrap().len(), 5);
    }
    assert_eq!(stats.mcp_list_tools.load(Ordering::SeqCst), 1);
    // Another tenant gets a list (and a session) of its own.
    let mut other = by_label("cached");
    other.tenant = "globex".to_owned();
    mcp.list_tools(&other).await.unwrap();
    mcp.list_tools(&other).await.unwrap();
    assert_eq!(stats.mcp_list_tools.load(Ordering::SeqCst), 2);
    mcp.list_tools(&by_label("cached")).await.unwrap();
    assert_eq!(stats.mcp_list_tools.load(Ordering::SeqCst), 2);

    let uncached = client(McpSettings {
        servers,
        tools_cache_ttl: Duration::ZERO,
        ..McpSettings::default()
    });
    for _ in 0..2 {
        uncached.list_tools(&by_label("cached")).await.unwrap();
    }
    assert_eq!(stats.mcp_list_tools.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn per_request_tool_lists_are_not_cached() {
    let (origin, stats) = mock().await;
    let mcp = client(loopback_settings());
    let server = by_url(format!("{origin}/mcp"));
    for _ in 0..2 {
        mcp.list_tools(&server).await.unwrap();
    }
    assert_eq!(stats.mcp_list_tools.load(Ordering::SeqCst), 2);
}

#[test]
fn invalid_settings_are_refused() {
    let bad = |settings: McpSettings| McpClient::new(settings).unwrap_err().to_string();
    let message = bad(McpSettings {
        servers: vec![McpServerSettings::new("x", "ftp://example.com")],
        ..McpSettings::default()
    });
    assert!(message.contains("'x'"), "{message}");
    let message = bad(McpSettings {
        servers: vec![
            McpServerSettings::new("twice", "https://a.example.com/mcp"),
            McpServerSettings::new("twice", "https://b.example.com/mcp"),
        ],
        ..McpSettings::default()
    });
    assert!(message.contains("twice"), "{message}");
    let message = bad(McpSettings {
        policy: UrlPolicy {
            deny: vec!["not a host".to_owned()],
            ..UrlPolicy::default()
        },
        ..McpSettings::default()
    });
    assert!(message.contains("not a host"), "{message}");
}

/// A TCP relay in front of the mock whose connections a test can cut, and which
/// can play a server that is down (connections are closed as soon as they are
/// accepted), as a restarting server or a dropped network path would.
struct Relay {
    origin: String,
    down: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target_origin: &str) -> Self {
        let target = target_origin.strip_prefix("http://").unwrap().to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let connections = connections.clone();
            let down = down.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        continue;
                    }
                    let target = target.clone();
                    let relay = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().unwrap().push(relay);
                }
            }
        });
        Self {
            origin,
            down,
            connections,
            accept,
        }
    }

    /// Drops every open connection (both sides); new ones are still relayed.
    fn cut(&self) {
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// Down: open connections are cut and new ones closed at once.
    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.cut();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

#[tokio::test]
async fn a_cut_sse_stream_is_replaced_by_a_new_session() {
    let (origin, stats) = mock().await;
    let relay = Relay::start(&origin).await;
    let mcp = client(loopback_settings());
    let server = by_url(format!("{}/sse", relay.origin));
    assert!(!mcp.list_tools(&server).await.unwrap().is_empty());
    // The SSE session lives on its GET stream; cutting it leaves the pooled
    // session dead. Whether the client notices before the next listing or
    // through that listing's failure, the listing must succeed on a new session.
    // (A tool call is not retried after a lost connection: the server may have
    // run it already.)
    relay.cut();
    assert!(!mcp.list_tools(&server).await.unwrap().is_empty());
    assert!(stats.mcp_list_tools.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn a_server_that_comes_back_is_reached_again() {
    let (origin, _stats) = mock().await;
    let relay = Relay::start(&origin).await;
    let mcp = client(loopback_settings());
    for path in ["/mcp", "/sse"] {
        let server = by_url(format!("{}{path}", relay.origin));
        let echo = |text: &'static str| mcp.call_tool(&server, "echo", args(json!({"text": text})));
        assert_eq!(echo("one").await.unwrap().output, "one", "{path}");
        // Down: the pooled session fails, and so does the one retry on a new
        // session.
        relay.set_down(true);
        let error = echo("two").await.unwrap_err();
        assert!(
            matches!(error, McpError::Unreachable(_)),
            "{path}: {error:?}"
        );
        // Back: the broken session is not handed out again.
        relay.set_down(false);
        assert_eq!(echo("three").await.unwrap().output, "three", "{path}");
    }
}
