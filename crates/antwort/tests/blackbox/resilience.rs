//! A backend that fails: retries, `Retry-After`, timeouts, the circuit
//! breaker, the concurrency cap, and upstream cancellation, against the
//! mock's fault controls (on whichever protocol the suite runs).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

use crate::harness::{Gateway, client, output_text, start, start_with};

async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "{what} within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn requests(gateway: &Gateway) -> u64 {
    gateway.mock_stats.requests.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_5xx_then_success_is_retried_into_one_answer() {
    let gateway = start().await;
    gateway.mock.fail_next(1, 503);
    let answer = gateway
        .create(json!({"input": "[[reply:second try]]"}))
        .await;
    assert_eq!(output_text(&answer), "second try");
    assert_eq!(
        requests(&gateway),
        2,
        "the mock saw the failure and the retry"
    );
    let streamed = gateway.stream(json!({"input": "[[reply:again]]"})).await;
    assert_eq!(streamed.types().last().copied(), Some("response.completed"));
}

#[tokio::test]
async fn a_429_is_waited_out_as_its_retry_after_says() {
    let gateway = start().await;
    gateway.mock.fail_next(1, 429);
    gateway.mock.set_retry_after(Some(1));
    let started = Instant::now();
    let answer = gateway.create(json!({"input": "[[reply:patience]]"})).await;
    assert_eq!(output_text(&answer), "patience");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(requests(&gateway), 2);
}

#[tokio::test]
async fn a_backend_that_never_answers_is_a_504_after_the_first_byte_timeout() {
    let gateway = start_with(|config| {
        config.resilience.first_byte_timeout = Some(Duration::from_millis(400));
    })
    .await;
    gateway.mock.set_hang(true);
    let started = Instant::now();
    let answer = gateway.post("/v1/responses", &json!({"input": "hi"})).await;
    assert_eq!(answer.status, 504, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "backend_timeout");
    assert_eq!(answer.body["error"]["type"], "server_error");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        gateway.mock_stats.requests_hung.load(Ordering::SeqCst),
        1,
        "a timeout is not waited out again"
    );
}

#[tokio::test]
async fn a_stream_that_stalls_fails_the_response_after_the_idle_timeout() {
    let gateway = start_with(|config| {
        config.resilience.idle_timeout = Some(Duration::from_millis(300));
    })
    .await;
    let sse = gateway
        .stream(json!({"input": "[[delay_ms:3000]] slow answer", "store": false}))
        .await;
    assert_eq!(sse.types().last().copied(), Some("response.failed"));
    let error = &sse.final_response()["error"];
    assert_eq!(error["code"], "backend_timeout");
    assert!(
        error["message"].as_str().unwrap().contains("stalled"),
        "{error}"
    );
}

#[tokio::test]
async fn the_circuit_opens_after_repeated_failures_and_a_probe_closes_it() {
    let gateway = start_with(|config| {
        config.resilience.failure_threshold = 2;
        config.resilience.max_attempts = 1;
        config.resilience.reset_timeout = Duration::from_millis(600);
    })
    .await;
    let circuit = |gateway: &Gateway| {
        let gateway = gateway.url.clone();
        async move {
            let ready: serde_json::Value = client()
                .get(format!("{gateway}/readyz"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            ready["checks"]["backends"]["default"]["circuit"].clone()
        }
    };
    assert_eq!(circuit(&gateway).await, "closed");
    gateway.mock.set_failing(Some(500));
    for _ in 0..2 {
        let failed = gateway.post("/v1/responses", &json!({"input": "hi"})).await;
        assert_eq!(failed.status, 502, "{}", failed.body);
    }
    assert_eq!(circuit(&gateway).await, "open");
    let refused = gateway.post("/v1/responses", &json!({"input": "hi"})).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "backend_unavailable");
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(
        requests(&gateway),
        2,
        "an open circuit does not reach the backend"
    );

    gateway.mock.set_failing(None);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(circuit(&gateway).await, "half_open");
    let probe = gateway.create(json!({"input": "[[reply:back]]"})).await;
    assert_eq!(output_text(&probe), "back");
    assert_eq!(circuit(&gateway).await, "closed");
}

#[tokio::test]
async fn over_the_concurrency_cap_and_its_queue_a_request_is_a_503_with_retry_after() {
    let gateway = start_with(|config| {
        config.resilience.max_concurrency = 1;
        config.resilience.max_queue = 0;
    })
    .await;
    let running = client()
        .post(format!("{}/v1/responses", gateway.url))
        .json(&json!({"input": "[[tokens:6]] [[delay_ms:150]]", "stream": true, "store": false}))
        .send()
        .await
        .unwrap();
    let mut running = running.bytes_stream();
    // Its first event is in: it holds the one slot.
    running.next().await.unwrap().unwrap();
    let refused = gateway.post("/v1/responses", &json!({"input": "hi"})).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "backend_unavailable");
    assert_eq!(refused.headers["retry-after"], "1");
    while running.next().await.is_some() {}
    let after = gateway.create(json!({"input": "[[reply:my turn]]"})).await;
    assert_eq!(output_text(&after), "my turn");
}

#[tokio::test]
async fn a_client_that_leaves_cancels_the_upstream_request() {
    let gateway = start().await;
    // Before the backend answered: the mock sees its request abandoned.
    let gone = client()
        .post(format!("{}/v1/responses", gateway.url))
        .timeout(Duration::from_millis(300))
        .json(&json!({"input": "[[status_ms:5000]] hi", "store": false}))
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up");
    wait_for("the abandoned request", || {
        gateway.mock_stats.requests_abandoned.load(Ordering::SeqCst) == 1
    })
    .await;
    // Mid-stream: the mock sees its stream cancelled.
    let streaming = client()
        .post(format!("{}/v1/responses", gateway.url))
        .json(&json!({"input": "[[tokens:50]] [[delay_ms:100]]", "stream": true, "store": false}))
        .send()
        .await
        .unwrap();
    let mut events = streaming.bytes_stream();
    events.next().await.unwrap().unwrap();
    drop(events);
    wait_for("the cancelled stream", || {
        gateway.mock_stats.streams_cancelled.load(Ordering::SeqCst) == 1
    })
    .await;
}
