//! The load driver: closed-loop workers over one keep-alive HTTP client, and the
//! requests they send (Chat Completions straight to the mock, Responses through
//! the gateway, both as JSON or SSE).
//!
//! Closed loop means each worker sends its next request when the last one is
//! answered, so concurrency is fixed and throughput is what the target can do at
//! that concurrency. Latency is measured per request from just before sending to the
//! last byte of the body (or the stream's `[DONE]`), with `Instant`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use futures::future::BoxFuture;

/// One request of a load round, given the worker's index; `Ok` if it succeeded.
pub type Job = Arc<dyn Fn(usize) -> BoxFuture<'static, Result<()>> + Send + Sync>;

pub fn job<F, Fut>(f: F) -> Job
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    Arc::new(move |worker| Box::pin(f(worker)))
}

/// Longest wait for one non-streaming answer: far beyond any latency the report
/// could show, short enough that a hung target ends the round.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The API key benchmark gateways accept; the driver sends it with every
/// request (the mock ignores it).
pub const BENCH_KEY: &str = "sk-antwort-bench";

/// The driver's HTTP client: keep-alive with an unbounded pool, so each worker
/// keeps its connection, no proxy from the environment, no Nagle delay, and
/// the benchmark's key, as an SDK sends it.
pub fn client() -> Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {BENCH_KEY}"))?,
    );
    antwort_egress::client_builder(Duration::from_secs(10))
        .default_headers(headers)
        .no_proxy()
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(300))
        .build()
        .context("building the load driver's HTTP client")
}

/// What one round of a closed loop measured.
#[derive(Debug, Default)]
pub struct Round {
    pub latencies: Vec<Duration>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub wall: Duration,
}

impl Round {
    fn merge(&mut self, other: Round) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub fn completed(&self) -> usize {
        self.latencies.len()
    }

    pub fn rps(&self) -> f64 {
        let wall = self.wall.as_secs_f64();
        if wall > 0.0 {
            self.completed() as f64 / wall
        } else {
            0.0
        }
    }
}

/// `concurrency` workers send requests back to back until `duration` has passed;
/// a request started before the deadline is waited for and counted. Wall time runs
/// from the start to the last answer, so throughput is completed requests over it.
pub async fn closed_loop(concurrency: usize, duration: Duration, job: &Job) -> Round {
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let job = job.clone();
        workers.spawn(async move {
            let mut part = Round::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                match job(worker).await {
                    Ok(()) => part.latencies.push(sent.elapsed()),
                    Err(error) => {
                        part.errors += 1;
                        if part.first_error.is_none() {
                            part.first_error = Some(format!("{error:#}"));
                        }
                        // A target that refuses fails fast; pausing keeps a failing
                        // round from spinning the driver's core.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            part
        });
    }
    let mut round = Round::default();
    while let Some(part) = workers.join_next().await {
        match part {
            Ok(part) => round.merge(part),
            Err(error) => {
                round.errors += 1;
                round.first_error.get_or_insert_with(|| error.to_string());
            }
        }
    }
    round.wall = start.elapsed();
    round
}

/// A POST of `body` as JSON to `url`.
pub fn json_request(
    client: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
}

/// POSTs a JSON body and reads the whole answer; an error unless it is a 2xx.
pub async fn post_json(client: &reqwest::Client, url: &str, body: Bytes) -> Result<Bytes> {
    let response = json_request(client, url, body)
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {}", snippet(&bytes));
    }
    Ok(bytes)
}

/// The first few hundred bytes of a body, for error messages.
pub fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
}

/// The `id` of a Responses object, found without parsing the whole body: the
/// gateway writes it first, and the driver must not spend its core on JSON.
pub fn response_id(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("\"id\":\"")? + 6;
    let len = text[start..].find('"')?;
    Some(text[start..start + len].to_owned())
}

/// Which API a stream speaks, which decides what counts as a text delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Chat Completions chunks: a delta is a chunk with non-empty `content`.
    Chat,
    /// Responses events: a delta is `response.output_text.delta`; the stream must
    /// end with `response.completed`.
    Responses,
}

/// The timing of one stream.
#[derive(Debug, Default)]
pub struct StreamTiming {
    /// From just before sending to the first text delta.
    pub ttft: Option<Duration>,
    /// Between consecutive text deltas.
    pub gaps: Vec<Duration>,
}

/// POSTs a streaming request and reads it to `[DONE]`, timing the text deltas.
pub async fn stream(
    client: &reqwest::Client,
    url: &str,
    body: Bytes,
    api: Api,
) -> Result<StreamTiming> {
    let sent = Instant::now();
    let response = json_request(client, url, body).send().await?;
    let status = response.status();
    if !status.is_success() {
        let bytes = response.bytes().await.unwrap_or_default();
        bail!("HTTP {status}: {}", snippet(&bytes));
    }
    let mut events = response.bytes_stream().eventsource();
    let mut timing = StreamTiming::default();
    let mut last_delta: Option<Instant> = None;
    let mut completed = false;
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| anyhow!("reading the stream: {e}"))?;
        if event.data == "[DONE]" {
            if api == Api::Responses && !completed {
                bail!("the stream ended without response.completed");
            }
            return Ok(timing);
        }
        let is_delta = match api {
            Api::Chat => chat_chunk_has_content(&event.data),
            Api::Responses => match event.event.as_str() {
                "response.output_text.delta" => true,
                "response.completed" => {
                    completed = true;
                    false
                }
                "response.failed" | "response.incomplete" | "error" => {
                    bail!("the stream ended with {}: {}", event.event, event.data)
                }
                _ => false,
            },
        };
        if is_delta {
            let now = Instant::now();
            match last_delta {
                None => timing.ttft = Some(now - sent),
                Some(last) => timing.gaps.push(now - last),
            }
            last_delta = Some(now);
        }
    }
    bail!("the stream ended without [DONE]")
}

/// Whether a Chat Completions chunk carries text: `"content":"` followed by
/// anything but the closing quote (the first chunk has `"content":""`). A string
/// search rather than a parse, so that both sides cost the driver about the same.
pub fn chat_chunk_has_content(data: &str) -> bool {
    const KEY: &str = "\"content\":\"";
    data.find(KEY)
        .is_some_and(|at| !data[at + KEY.len()..].starts_with('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_chunks_with_and_without_text() {
        assert!(chat_chunk_has_content(
            r#"{"choices":[{"delta":{"content":"lorem "}}]}"#
        ));
        assert!(!chat_chunk_has_content(
            r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#
        ));
        assert!(!chat_chunk_has_content(
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#
        ));
    }

    #[test]
    fn response_id_is_the_first_id() {
        assert_eq!(
            response_id(br#"{"id":"resp_123","object":"response","output":[{"id":"msg_1"}]}"#),
            Some("resp_123".into())
        );
        assert_eq!(response_id(b"{}"), None);
    }

    #[tokio::test]
    async fn a_closed_loop_counts_successes_and_errors() {
        let job = job(|worker| async move {
            // Yielding lets both workers take turns on the test's one thread.
            tokio::task::yield_now().await;
            if worker == 0 {
                Ok(())
            } else {
                Err(anyhow!("worker {worker} fails"))
            }
        });
        let round = closed_loop(2, Duration::from_millis(20), &job).await;
        assert!(round.completed() > 0);
        assert!(round.errors > 0);
        assert_eq!(round.first_error.as_deref(), Some("worker 1 fails"));
        assert!(round.wall >= Duration::from_millis(20));
    }
}
