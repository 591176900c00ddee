//! A broken backend, a client that leaves early, a delete mid-generation and a
//! shutdown mid-stream: the client always gets an answer in bounded time, every
//! stream ends with one terminal event and `[DONE]`, stored work is saved (or,
//! when deleted, stays deleted), and no answer tells an outsider where the
//! backend lives. Storage cases run on SQLite and on PostgreSQL.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::harness::{Gateway, StoreTarget, client, start_on, start_with, storages};

/// A streamed create read event by event, as a client that may stop reading.
struct Reader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    received: String,
}

impl Reader {
    async fn open(gateway: &Gateway, mut body: Value) -> Self {
        body["stream"] = json!(true);
        let response = client()
            .post(format!("{}/v1/responses", gateway.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        Self {
            stream: response
                .bytes_stream()
                .map(|chunk| chunk.map(|bytes| bytes.to_vec()))
                .boxed(),
            received: String::new(),
        }
    }

    /// Reads until `needle` has arrived.
    async fn until(&mut self, needle: &str) {
        while !self.received.contains(needle) {
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("no {needle} within 10 s: {}", self.received));
            let chunk =
                chunk.unwrap_or_else(|| panic!("stream ended before {needle}: {}", self.received));
            self.received
                .push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    }

    /// Reads to the end of the stream.
    async fn rest(mut self) -> String {
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
            .await
            .expect("the stream ends")
        {
            self.received
                .push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
        self.received
    }

    fn response_id(&self) -> String {
        self.received
            .split("\"id\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned()
    }
}

/// The types of the events in a raw SSE body, in order.
fn event_types(raw: &str) -> Vec<String> {
    raw.lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .map(str::to_owned)
        .collect()
}

fn assert_one_terminal_then_done(raw: &str, terminal: &str) {
    let types = event_types(raw);
    let terminals: Vec<&String> = types
        .iter()
        .filter(|t| {
            matches!(
                t.as_str(),
                "response.completed" | "response.failed" | "response.incomplete"
            )
        })
        .collect();
    assert_eq!(terminals, vec![terminal], "{raw}");
    assert_eq!(types.last().map(String::as_str), Some(terminal), "{raw}");
    assert!(raw.trim_end().ends_with("data: [DONE]"), "{raw}");
}

async fn wait_for_status(gateway: &Gateway, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = gateway.get(&format!("/v1/responses/{id}")).await;
        if answer.status == 200 && answer.body["status"] != "in_progress" {
            return answer.body;
        }
        assert!(Instant::now() < deadline, "{id}: {}", answer.body);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The stored responses tagged `probe`, once there is one that finished.
async fn find_finished(gateway: &Gateway, probe: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = gateway
            .get(&format!("/v1/responses?metadata[probe]={probe}"))
            .await;
        if let Some(found) = listed.body["data"].as_array().and_then(|d| d.first())
            && found["status"] != "in_progress"
        {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{probe} never stored: {}",
            listed.body
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_backend_that_stalls_its_error_body_is_answered_within_the_backend_timeout() {
    let gateway = start_with(|config| config.engine.backend_timeout = Duration::from_secs(1)).await;
    let started = Instant::now();
    let answer = gateway
        .post("/v1/responses", &json!({"input": "[[stall_error:500]]"}))
        .await;
    // The status line came, the answer (its error body) did not: a timeout,
    // which is not waited out again.
    assert_eq!(answer.status, 504, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "backend_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // A streaming client hears keepalives meanwhile, then the error event.
    let raw = Reader::open(&gateway, json!({"input": "[[stall_error:500]]"}))
        .await
        .rest()
        .await;
    assert!(raw.contains(": keepalive"), "{raw}");
    assert_eq!(event_types(&raw), vec!["error"], "{raw}");
    assert!(raw.contains("\"backend_timeout\""), "{raw}");
    assert!(raw.trim_end().ends_with("data: [DONE]"), "{raw}");
}

#[tokio::test]
async fn a_finish_chunk_then_a_held_connection_is_a_complete_answer() {
    let gateway =
        start_with(|config| config.engine.backend_timeout = Duration::from_secs(30)).await;
    let started = Instant::now();
    let created = gateway
        .create(json!({"input": "[[hold_after_finish]] [[reply:all here]]"}))
        .await;
    assert_eq!(created["status"], "completed");
    let raw = Reader::open(&gateway, json!({"input": "[[hold_after_finish]]"}))
        .await
        .rest()
        .await;
    assert_one_terminal_then_done(&raw, "response.completed");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_huge_chunk_is_read_whole_and_a_larger_one_is_refused() {
    let gateway = start_with(|_| {}).await;
    let raw = Reader::open(
        &gateway,
        json!({"input": "[[huge_chunk:8000000]]", "store": false}),
    )
    .await
    .rest()
    .await;
    assert_one_terminal_then_done(&raw, "response.completed");
    let raw = Reader::open(
        &gateway,
        json!({"input": "[[huge_chunk:20000000]]", "store": false}),
    )
    .await
    .rest()
    .await;
    // Refused where it came: before the response began (over Chat the chunk
    // is the first event: the stream, kept alive meanwhile, carries the one
    // error), or after (a Responses backend opened the item first).
    let types = event_types(&raw);
    assert!(
        types == ["error"] || types.ends_with(&["error".to_owned(), "response.failed".to_owned()]),
        "{types:?}"
    );
    assert!(raw.trim_end().ends_with("data: [DONE]"));
    assert!(
        raw.contains("larger than"),
        "{}",
        &raw[raw.len().saturating_sub(2000)..]
    );
}

#[tokio::test]
async fn a_stored_response_finishes_when_its_client_leaves_before_the_backend_answers() {
    for storage in storages() {
        let gateway = start_on(storage, |_| {}).await;
        // Non-streaming: the client gives up while the backend is still silent.
        let gone = client()
            .post(format!("{}/v1/responses", gateway.url))
            .timeout(Duration::from_millis(150))
            .json(&json!({"input": "[[status_ms:600]] [[reply:kept]]", "metadata": {"probe": "plain"}}))
            .send()
            .await;
        assert!(gone.is_err(), "{storage:?}: the client left first");
        let stored = find_finished(&gateway, "plain").await;
        assert_eq!(stored["status"], "completed", "{storage:?}: {stored}");
        assert_eq!(crate::harness::output_text(&stored), "kept");
        // Streaming: the client leaves after the first keepalive, before any event.
        let mut reader = Reader::open(
            &gateway,
            json!({"input": "[[status_ms:600]] [[reply:kept too]]", "metadata": {"probe": "streamed"}}),
        )
        .await;
        reader.until(": keepalive").await;
        drop(reader);
        let stored = find_finished(&gateway, "streamed").await;
        assert_eq!(stored["status"], "completed", "{storage:?}: {stored}");
    }
}

#[tokio::test]
async fn deleting_a_response_in_progress_stops_it_and_it_stays_deleted() {
    for storage in storages() {
        let gateway = start_on(storage, |_| {}).await;
        let mut reader =
            Reader::open(&gateway, json!({"input": "[[tokens:400]] [[delay_ms:50]]"})).await;
        reader.until("response.output_text.delta").await;
        let id = reader.response_id();
        let deleted = client()
            .delete(format!("{}/v1/responses/{id}", gateway.url))
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 200, "{storage:?}");
        let body: Value = deleted.json().await.unwrap();
        assert_eq!(body["deleted"], true);
        let raw = reader.rest().await;
        assert_one_terminal_then_done(&raw, "response.failed");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let read = gateway.get(&format!("/v1/responses/{id}")).await;
        assert_eq!(read.status, 404, "{storage:?}: {}", read.body);
    }
}

#[tokio::test]
async fn shutdown_ends_every_stream_with_a_terminal_event_and_saves_what_was_stored() {
    for storage in storages() {
        let target = StoreTarget::new(storage).await;
        let mut gateway = start_with(|config| {
            target.apply(config);
            config.server.shutdown_timeout = Duration::from_secs(2);
        })
        .await;
        let long = json!({"input": "[[tokens:400]] [[delay_ms:50]]"});
        let mut stored = Reader::open(&gateway, long.clone()).await;
        let mut unstored =
            Reader::open(&gateway, json!({"input": long["input"], "store": false})).await;
        // One still waiting for the backend's status line, kept alive meanwhile.
        let mut waiting = Reader::open(&gateway, json!({"input": "[[status_ms:20000]]"})).await;
        waiting.until(": keepalive").await;
        stored.until("response.output_text.delta").await;
        unstored.until("response.output_text.delta").await;
        let id = stored.response_id();
        let started = Instant::now();
        let served = gateway.shut_down();
        for reader in [stored, unstored] {
            let raw = reader.rest().await;
            assert_one_terminal_then_done(&raw, "response.failed");
            assert!(raw.contains("server_shutting_down"), "{storage:?}");
        }
        let raw = waiting.rest().await;
        assert_eq!(event_types(&raw), vec!["error"], "{storage:?}: {raw}");
        assert!(raw.contains("server_shutting_down"), "{raw}");
        assert!(raw.trim_end().ends_with("data: [DONE]"), "{raw}");
        tokio::time::timeout(Duration::from_secs(5), served)
            .await
            .expect("the drain ends")
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        // The id the client was given names the saved response afterwards.
        let restarted = start_with(|config| target.apply(config)).await;
        let saved = wait_for_status(&restarted, &id).await;
        assert_eq!(saved["status"], "failed", "{storage:?}: {saved}");
        assert_eq!(saved["error"]["code"], "server_shutting_down");
        assert!(
            !crate::harness::output_text(&saved).is_empty(),
            "what it had is kept"
        );
    }
}

#[tokio::test]
async fn a_failure_after_the_backend_accepted_names_the_stored_response() {
    for storage in storages() {
        let gateway = start_on(storage, |_| {}).await;
        // The first turn calls a tool; the turn after it fails at the backend.
        let calc = json!({"type": "mcp", "server_label": "calc", "require_approval": "never",
            "server_url": format!("{}/mcp", gateway.mock_url)});
        let answer = gateway
            .post(
                "/v1/responses",
                &json!({"tools": [calc], "input": "[[tool:calc__add:{\"a\":1,\"b\":2}]] [[error_after_tool:500]]"}),
            )
            .await;
        assert_eq!(answer.status, 502, "{storage:?}: {}", answer.body);
        let id = answer.headers["x-antwort-response-id"].to_str().unwrap();
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(id)
        );
        let stored = gateway.get(&format!("/v1/responses/{id}")).await;
        assert_eq!(stored.status, 200);
        assert_eq!(stored.body["status"], "failed");
    }
}

#[tokio::test]
async fn answers_never_show_the_backend_address_or_its_credentials() {
    let port = {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        unused.local_addr().unwrap().port()
    };
    let gateway = start_with(|config| {
        config.engine.backend_url =
            Some(format!("http://agent:hunter2@127.0.0.1:{port}/v1?key=s3cret").into());
    })
    .await;
    let started = Instant::now();
    let answers = [
        gateway.post("/v1/responses", &json!({"input": "hi"})).await,
        gateway.get("/v1/models").await,
        gateway.get("/readyz").await,
    ];
    for answer in answers {
        assert_eq!(answer.status, 503, "{}", answer.body);
        let text = answer.body.to_string();
        for secret in ["hunter2", "s3cret", "agent", "127.0.0.1", &port.to_string()] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    let ready = gateway.get("/readyz").await;
    assert_eq!(
        ready.body,
        json!({"status": "unavailable", "checks": {"store": "ok", "backend": "unavailable",
            "backends": {"default": {"status": "unavailable", "circuit": "closed"}}}})
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn check_config_prints_no_secret() {
    for dsn in [
        "postgres://u:s3cret@db:5432/antwort",
        "postgres://u@db/antwort?sslmode=disable&password=s3cret",
        "host=db user=u password=s3cret dbname=antwort",
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_antwort"))
            .env_clear()
            .args([
                "check-config",
                "--backend-url",
                "http://bob:hunter2@10.1.2.3:8000/v1?api_key=k3y",
            ])
            .env("ANTWORT_STORAGE", "postgres")
            .env("ANTWORT_STORAGE_DSN", dsn)
            .env("ANTWORT_API_KEY", "sk-4pik3y")
            .output()
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // The key=value form is refused (sqlx reads URLs only), without its secret.
        if dsn.starts_with("postgres") {
            assert!(output.status.success(), "{printed}");
            assert!(
                printed.contains("10.1.2.3"),
                "the host is still shown: {printed}"
            );
        }
        for secret in ["s3cret", "hunter2", "k3y", "sk-4pik3y"] {
            assert!(
                !printed.contains(secret),
                "{secret} printed for {dsn}: {printed}"
            );
        }
    }
}

#[tokio::test]
async fn a_backend_that_refuses_the_gateway_or_lacks_the_endpoint_says_so() {
    let gateway = start_with(|_| {}).await;
    for (input, says) in [
        ("[[error:401]]", "credentials"),
        ("[[error:403]]", "credentials"),
        ("[[error:404]]", "backend URL"),
    ] {
        let answer = gateway
            .post("/v1/responses", &json!({"input": input}))
            .await;
        assert_eq!(answer.status, 502, "{input}: {}", answer.body);
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{input}: {message}");
    }
    let missing = gateway
        .post(
            "/v1/responses",
            &json!({"input": "hi", "model": "missing-model"}),
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(missing.body["error"]["code"], "model_not_found");
}

/// A TCP proxy to PostgreSQL that can be cut: existing connections are closed
/// and new ones accepted but never answered, as a database behind a broken
/// network looks.
struct CuttableProxy {
    address: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    closing: tokio::sync::watch::Sender<bool>,
}

impl CuttableProxy {
    async fn start(upstream: &str) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (closing, watch) = tokio::sync::watch::channel(false);
        let (upstream, flag) = (upstream.to_owned(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mut stop = watch.clone();
                if flag.load(Ordering::SeqCst) {
                    // Accepted, never answered: held until the end of the test.
                    tokio::spawn(async move {
                        let _held = client;
                        let _ = stop.changed().await;
                        std::future::pending::<()>().await;
                    });
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = stop.changed() => {}
                    }
                });
            }
        });
        Self {
            address,
            cut,
            closing,
        }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.closing.send(true);
    }
}

#[tokio::test]
async fn during_a_database_outage_answers_come_within_seconds() {
    if std::env::var("ANTWORT_TEST_POSTGRES").as_deref() == Ok("skip") {
        eprintln!("!!! PostgreSQL outage test SKIPPED (ANTWORT_TEST_POSTGRES=skip) !!!");
        return;
    }
    let target = StoreTarget::new(crate::harness::Storage::Postgres).await;
    let proxy = CuttableProxy::start("127.0.0.1:5432").await;
    let gateway = start_with(|config| {
        target.apply(config);
        let dsn = config.storage.dsn.as_ref().unwrap().expose().to_owned();
        let dsn = dsn.replacen("127.0.0.1:5432", &proxy.address, 1);
        config.storage.dsn = Some(antwort::config::Dsn::new(dsn));
    })
    .await;
    gateway.create(json!({"input": "before"})).await;
    proxy.cut();
    let started = Instant::now();
    let ready = gateway.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.body["checks"]["store"], "unavailable",
        "{}",
        ready.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let answer = gateway
        .post("/v1/responses", &json!({"input": "during"}))
        .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "storage_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
}
