//! Retries, Retry-After, the breaker, timeouts and the concurrency cap around a scripted backend.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use antwort_engine::{BackendErrorKind, FinishReason, ModelEvent};

use super::*;

/// What the fake backend does on one call.
enum Outcome {
    Fail(BackendError),
    /// Answers, then its stream fails before any event.
    FailInStream(BackendError),
    /// A short answer.
    Answer,
    /// One event, then silence.
    Stall,
    /// Never answers.
    Hang,
}

struct Scripted {
    outcomes: Mutex<VecDeque<Outcome>>,
    calls: AtomicUsize,
    /// Token counts asked (each fails: the server cannot count).
    counts: AtomicUsize,
}

impl Scripted {
    fn new(outcomes: Vec<Outcome>) -> Arc<Self> {
        Arc::new(Self {
            outcomes: Mutex::new(outcomes.into()),
            calls: AtomicUsize::new(0),
            counts: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn text(text: &str) -> ModelEvent {
    ModelEvent::TextDelta {
        text: text.to_owned(),
        logprobs: Vec::new(),
    }
}

#[async_trait]
impl Backend for Scripted {
    async fn generate(&self, _: &ModelRequest) -> Result<ModelStream, BackendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let outcome = self.outcomes.lock().unwrap().pop_front();
        match outcome.unwrap_or(Outcome::Answer) {
            Outcome::Fail(error) => Err(error),
            Outcome::FailInStream(error) => Ok(futures::stream::iter(vec![Err(error)]).boxed()),
            Outcome::Answer => Ok(futures::stream::iter(vec![
                Ok(text("hi")),
                Ok(ModelEvent::Finish(FinishReason::Stop)),
            ])
            .boxed()),
            Outcome::Stall => Ok(futures::stream::once(async { Ok(text("hi")) })
                .chain(futures::stream::pending())
                .boxed()),
            Outcome::Hang => std::future::pending().await,
        }
    }

    async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        Ok(Vec::new())
    }

    async fn check_ready(&self) -> Result<(), BackendError> {
        Ok(())
    }

    async fn count_tokens(&self, _: &ModelRequest) -> Option<Result<u64, BackendError>> {
        self.counts.fetch_add(1, Ordering::SeqCst);
        Some(Err(BackendError::unavailable("refused")))
    }
}

fn request() -> ModelRequest {
    ModelRequest {
        stream: true,
        ..ModelRequest::empty("m")
    }
}

fn resilient(backend: Arc<Scripted>, adjust: impl FnOnce(&mut ResilienceSettings)) -> Resilient {
    let mut settings = ResilienceSettings::default();
    adjust(&mut settings);
    Resilient::new("test", backend, settings)
}

async fn collect(stream: ModelStream) -> Vec<Result<ModelEvent, BackendError>> {
    stream.collect().await
}

#[tokio::test(start_paused = true)]
async fn a_5xx_then_success_is_retried_into_one_answer() {
    let backend = Scripted::new(vec![Outcome::Fail(BackendError::status(503, "busy", None))]);
    let events = resilient(backend.clone(), |_| {})
        .generate(&request())
        .await
        .unwrap();
    assert_eq!(collect(events).await.len(), 2);
    assert_eq!(backend.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_error_in_place_of_the_first_event_is_retried() {
    let backend = Scripted::new(vec![Outcome::FailInStream(BackendError::interrupted(
        "error chunk",
    ))]);
    let _events = resilient(backend.clone(), |_| {})
        .generate(&request())
        .await
        .unwrap();
    assert_eq!(backend.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_for_up_to_its_cap() {
    let asked = Duration::from_secs(7);
    let backend = Scripted::new(vec![Outcome::Fail(BackendError::status(
        429,
        "slow down",
        Some(asked),
    ))]);
    let started = antwort_engine::clock::now();
    let _events = resilient(backend.clone(), |_| {})
        .generate(&request())
        .await
        .unwrap();
    assert_eq!(antwort_engine::clock::now() - started, asked);
    assert_eq!(backend.calls(), 2);

    let too_long = Duration::from_secs(120);
    let backend = Scripted::new(vec![Outcome::Fail(BackendError::status(
        429,
        "slow down",
        Some(too_long),
    ))]);
    let error = resilient(backend.clone(), |_| {})
        .generate(&request())
        .await
        .err()
        .unwrap();
    assert_eq!(
        error.retry_after(),
        Some(too_long),
        "the client is told instead"
    );
    assert_eq!(backend.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_bad_request_or_disabled_resilience_is_not_retried() {
    let backend = Scripted::new(vec![Outcome::Fail(BackendError::status(400, "bad", None))]);
    assert!(
        resilient(backend.clone(), |_| {})
            .generate(&request())
            .await
            .is_err()
    );
    assert_eq!(backend.calls(), 1);
    let backend = Scripted::new(vec![Outcome::Fail(BackendError::unavailable("refused"))]);
    let off = resilient(backend.clone(), |s| s.enabled = false);
    assert!(off.generate(&request()).await.is_err());
    assert_eq!(backend.calls(), 1);
    assert_eq!(off.circuit(), None);
}

#[tokio::test(start_paused = true)]
async fn attempts_are_limited_and_failed_requests_open_the_circuit() {
    let down = || Outcome::Fail(BackendError::unavailable("refused"));
    let backend = Scripted::new((0..6).map(|_| down()).collect());
    let guarded = resilient(backend.clone(), |s| s.failure_threshold = 2);
    assert!(guarded.generate(&request()).await.is_err());
    assert_eq!(backend.calls(), 3, "max_attempts");
    assert_eq!(
        guarded.circuit(),
        Some(CircuitState::Closed),
        "one failed request"
    );
    assert!(guarded.generate(&request()).await.is_err());
    assert_eq!(guarded.circuit(), Some(CircuitState::Open));
    let refused = guarded.generate(&request()).await.err().unwrap();
    assert!(matches!(refused.kind, BackendErrorKind::Overloaded { .. }));
    assert_eq!(
        backend.calls(),
        6,
        "an open circuit does not reach the backend"
    );

    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(guarded.circuit(), Some(CircuitState::HalfOpen));
    let _events = guarded.generate(&request()).await.unwrap();
    assert_eq!(
        guarded.circuit(),
        Some(CircuitState::Closed),
        "the probe answered"
    );
}

#[tokio::test(start_paused = true)]
async fn token_counts_pass_through_without_touching_the_breaker_and_not_while_it_is_open() {
    let backend = Scripted::new(vec![Outcome::Fail(BackendError::unavailable("refused"))]);
    let guarded = resilient(backend.clone(), |s| {
        s.failure_threshold = 1;
        s.max_attempts = 1;
    });
    for _ in 0..3 {
        let failed = guarded.count_tokens(&request()).await.unwrap().unwrap_err();
        assert!(matches!(failed.kind, BackendErrorKind::Unavailable(_)));
    }
    assert_eq!(backend.counts.load(Ordering::SeqCst), 3, "not retried");
    assert_eq!(guarded.circuit(), Some(CircuitState::Closed));
    assert!(guarded.generate(&request()).await.is_err());
    assert_eq!(guarded.circuit(), Some(CircuitState::Open));
    let refused = guarded.count_tokens(&request()).await.unwrap().unwrap_err();
    assert!(matches!(refused.kind, BackendErrorKind::Overloaded { .. }));
    assert_eq!(backend.counts.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_backend_that_never_answers_times_out_at_the_first_byte() {
    let backend = Scripted::new(vec![Outcome::Hang, Outcome::Hang, Outcome::Hang]);
    let guarded = resilient(backend.clone(), |s| {
        s.first_byte_timeout = Duration::from_secs(5);
    });
    let started = antwort_engine::clock::now();
    let error = guarded.generate(&request()).await.err().unwrap();
    assert!(
        matches!(error.kind, BackendErrorKind::Timeout(_)),
        "{error}"
    );
    assert_eq!(
        antwort_engine::clock::now() - started,
        Duration::from_secs(5)
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_stalls_ends_with_a_timeout() {
    let backend = Scripted::new(vec![Outcome::Stall]);
    let guarded = resilient(backend, |s| s.idle_timeout = Duration::from_secs(3));
    let events = collect(guarded.generate(&request()).await.unwrap()).await;
    assert_eq!(events.len(), 2);
    let error = events[1].as_ref().err().unwrap();
    assert!(error.to_string().contains("stalled"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_cap_holds_a_slot_until_the_stream_ends() {
    let backend = Scripted::new(Vec::new());
    let capped = resilient(backend, |s| {
        s.max_concurrency = 1;
        s.max_queue = 0;
    });
    let first = capped.generate(&request()).await.unwrap();
    let refused = capped.generate(&request()).await.err().unwrap();
    assert!(matches!(refused.kind, BackendErrorKind::Overloaded { .. }));
    assert!(refused.retry_after().is_some());
    drop(first);
    let _events = capped.generate(&request()).await.unwrap();
}
