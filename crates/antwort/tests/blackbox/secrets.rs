//! No secret reaches a log, at any level, or the store: the binary runs at
//! `trace` for every crate while requests carry a client key, a wrong key, a
//! backend key, MCP header and authorization values, and credentials in an
//! MCP `server_url`; then its whole output, and every stored object, is
//! searched for each secret.

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::harness::{call, client};

const CLIENT_KEY: &str = "sk-trace-client-key-1f0c";
const WRONG_KEY: &str = "sk-trace-wrong-key-77aa";
const BACKEND_KEY: &str = "backend-trace-secret-9d2e";
const MCP_HEADER: &str = "mcp-header-trace-secret-41b7";
const MCP_AUTHORIZATION: &str = "mcp-authorization-trace-secret-c3d1";
const URL_PASSWORD: &str = "url-password-trace-secret-88e0";
const URL_QUERY: &str = "url-query-trace-secret-5a6f";

#[tokio::test]
async fn no_secret_reaches_a_log_at_trace_level_or_the_store() {
    let (mock_url, _) = antwort_mock::spawn(antwort_mock::Latency::default())
        .await
        .unwrap();
    let mock_root = mock_url.trim_end_matches("/v1").to_owned();
    let keys = json!([{"key": CLIENT_KEY, "subject": "alice", "tenant_id": "acme"}]).to_string();
    let log_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("trace-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_antwort"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--backend-url",
            &mock_url,
        ])
        .args([
            "--model",
            "mock-model",
            "--log-level",
            "trace",
            "--log-format",
            "json",
        ])
        .env("ANTWORT_STORAGE", "memory")
        .env("ANTWORT_API_KEYS", &keys)
        .env("ANTWORT_API_KEY", BACKEND_KEY)
        .env("ANTWORT_EGRESS_ALLOW_LOOPBACK", "true")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let url = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let addr = text.lines().find_map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).ok()?;
            line["fields"]["addr"].as_str().map(str::to_owned)
        });
        if let Some(addr) = addr {
            break format!("http://{addr}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway did not start: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let refused = call(&url, Method::GET, "/v1/responses", Some(WRONG_KEY), None).await;
    assert_eq!(refused.status, 401);
    let server_url = format!(
        "{}/mcp?token={URL_QUERY}",
        mock_root.replacen("http://", &format!("http://tracer:{URL_PASSWORD}@"), 1)
    );
    let body = json!({
        "input": "add [[tool:calc__add:{\"a\":1,\"b\":2}]]",
        "tools": [{"type": "mcp", "server_label": "calc", "server_url": server_url,
                   "require_approval": "never", "authorization": MCP_AUTHORIZATION,
                   "headers": {"X-Api-Key": MCP_HEADER}}],
    });
    let created = call(
        &url,
        Method::POST,
        "/v1/responses",
        Some(CLIENT_KEY),
        Some(&body),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(
        created.body.to_string().contains("mcp_call"),
        "{}",
        created.body
    );
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["previous_response_id"] = json!(id);
    let stream = client()
        .post(format!("{url}/v1/responses"))
        .bearer_auth(CLIENT_KEY)
        .json(&streamed)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let stream = stream.text().await.unwrap();

    // What the store kept, read back: the response, its input items, the list.
    let mut stored = String::new();
    for path in [
        format!("/v1/responses/{id}"),
        format!("/v1/responses/{id}/input_items"),
        "/v1/responses".to_owned(),
    ] {
        let answer = call(&url, Method::GET, &path, Some(CLIENT_KEY), None).await;
        assert_eq!(answer.status, 200, "{path}");
        stored.push_str(&answer.body.to_string());
    }
    let echoed = created.body["tools"][0]["server_url"].as_str().unwrap();
    assert!(
        echoed.contains("***"),
        "the echoed server_url keeps its credentials: {echoed}"
    );

    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.lines().count() > 100,
        "a trace log this short logged nothing"
    );
    for secret in [
        CLIENT_KEY,
        WRONG_KEY,
        BACKEND_KEY,
        MCP_HEADER,
        MCP_AUTHORIZATION,
        URL_PASSWORD,
        URL_QUERY,
    ] {
        for (place, text) in [
            ("the log", &logs),
            ("the store", &stored),
            ("the answer", &created.body.to_string()),
            ("the stream", &stream),
        ] {
            if let Some(at) = text.find(secret) {
                let line = text[..at].rsplit('\n').next().unwrap_or("");
                panic!(
                    "{secret} is in {place}: ...{}",
                    &line[line.len().saturating_sub(200)..]
                );
            }
        }
    }
}
