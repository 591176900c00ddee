//! Resilience around one backend ([`Resilient`]): a cap on generations at
//! once with a bounded queue ([`limiter`]), a circuit breaker ([`breaker`]),
//! retries with exponential backoff and jitter (`backon`'s), `Retry-After`
//! honoured up to a cap, and the timeouts a stream needs: to its first event,
//! between events, and for the whole generation.
//!
//! Retries happen only before the first event reaches the engine, so before
//! anything reached the client: an attempt's stream is peeked
//! ([`antwort_engine::model::peek`]) and an error in place of its first
//! event is retried like an error status. Dropping the stream (the client
//! left) drops the backend's HTTP response, which cancels its generation.

pub mod breaker;
pub mod limiter;

use std::sync::Arc;
use std::time::Duration;

use antwort_api::Model;
use antwort_engine::model::peek;
use antwort_engine::{
    Backend, BackendError, BackendErrorKind, CircuitState, ModelRequest, ModelStream,
};
use async_trait::async_trait;
use backon::BackoffBuilder;
use futures::StreamExt;
use tokio::sync::OwnedSemaphorePermit;

use breaker::Breaker;
use limiter::Limiter;

/// How one backend is protected, with the Go antwort's `resilience.*` keys
/// where it had them.
#[derive(Debug, Clone, PartialEq)]
pub struct ResilienceSettings {
    /// Retries and the circuit breaker; timeouts and the concurrency cap
    /// apply either way.
    pub enabled: bool,
    /// Attempts per request, the first included (1: no retry).
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The longest `Retry-After` waited for; a backend that asks for longer
    /// is not retried, and its client is told to wait instead.
    pub retry_after_max: Duration,
    /// Failed requests in a row that open the circuit (0: no breaker).
    pub failure_threshold: u32,
    /// How long an open circuit stays open before a probe.
    pub reset_timeout: Duration,
    /// From sending a request to its first event (for a request that is not
    /// streamed, that is its whole answer).
    pub first_byte_timeout: Duration,
    /// Between two events of a stream.
    pub idle_timeout: Duration,
    /// For a whole generation, from sending to the last event.
    pub total_timeout: Duration,
    /// Generations at once (0: no cap).
    pub max_concurrency: usize,
    /// Requests that may wait for a slot when the cap is reached.
    pub max_queue: usize,
    /// How long one may wait.
    pub queue_timeout: Duration,
}

impl Default for ResilienceSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_attempts: 3,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            retry_after_max: Duration::from_secs(30),
            failure_threshold: 5,
            reset_timeout: Duration::from_secs(30),
            first_byte_timeout: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(120),
            total_timeout: Duration::from_secs(3600),
            max_concurrency: 0,
            max_queue: 64,
            queue_timeout: Duration::from_secs(30),
        }
    }
}

/// A backend behind retries, a breaker, a concurrency cap and timeouts.
pub struct Resilient {
    name: String,
    inner: Arc<dyn Backend>,
    settings: ResilienceSettings,
    breaker: Arc<Breaker>,
    limiter: Limiter,
}

impl Resilient {
    /// `name` is the backend's, for the logs.
    pub fn new(name: &str, inner: Arc<dyn Backend>, settings: ResilienceSettings) -> Self {
        let threshold = if settings.enabled {
            settings.failure_threshold
        } else {
            0
        };
        Self {
            name: name.to_owned(),
            breaker: Arc::new(Breaker::new(name, threshold, settings.reset_timeout)),
            limiter: Limiter::new(
                settings.max_concurrency,
                settings.max_queue,
                settings.queue_timeout,
            ),
            inner,
            settings,
        }
    }

    /// One attempt: the backend's answer and its first event, in time.
    async fn attempt(&self, request: &ModelRequest) -> Result<ModelStream, BackendError> {
        let within = self.settings.first_byte_timeout;
        let answer = async { peek(self.inner.generate(request).await?).await };
        match tokio::time::timeout(within, answer).await {
            Ok(answer) => answer,
            Err(_) => Err(BackendError::timeout(if request.stream {
                format!("no first token within {within:?}")
            } else {
                format!("no answer within {within:?}")
            })),
        }
    }

    /// Attempts until one succeeds, the error is not worth retrying, or the
    /// attempts are used up.
    async fn attempts(&self, request: &ModelRequest) -> Result<ModelStream, BackendError> {
        let retries = if self.settings.enabled {
            self.settings.max_attempts.saturating_sub(1) as usize
        } else {
            0
        };
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.settings.backoff_base)
            .with_max_delay(self.settings.backoff_max)
            .with_max_times(retries)
            .with_jitter()
            .build();
        let mut attempt = 1;
        loop {
            let error = match self.attempt(request).await {
                Ok(stream) => return Ok(stream),
                Err(error) if !worth_retrying(&error) => return Err(error),
                Err(error) => error,
            };
            let Some(backoff) = delays.next() else {
                return Err(error);
            };
            let delay = match error.retry_after() {
                Some(asked) if asked > self.settings.retry_after_max => {
                    tracing::warn!(backend = %self.name, ?asked, cap = ?self.settings.retry_after_max, "the backend asks to wait longer than retry_after_max; not retrying");
                    return Err(error);
                }
                Some(asked) => asked,
                None => backoff,
            };
            tracing::warn!(backend = %self.name, attempt, ?delay, error = %error.kind, "backend request failed; retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// Whether the same backend is asked again: it could not be reached, broke
/// off before its first event, or answered 408, 409, 429 or a 5xx. A timeout
/// is not: another wait as long would multiply the client's (another backend
/// serving the model is still tried, by the registry's route).
fn worth_retrying(error: &BackendError) -> bool {
    error.is_retryable() && !matches!(error.kind, BackendErrorKind::Timeout(_))
}

#[async_trait]
impl Backend for Resilient {
    async fn generate(&self, request: &ModelRequest) -> Result<ModelStream, BackendError> {
        let sent = antwort_engine::clock::now();
        let admission = self.breaker.admit()?;
        let slot = self.limiter.acquire().await?;
        match self.attempts(request).await {
            Ok(stream) => {
                admission.succeeded();
                Ok(self.guard(stream, slot, request.stream, sent))
            }
            Err(error) => {
                admission.failed(&error);
                Err(error)
            }
        }
    }

    async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        self.inner.list_models().await
    }

    /// The backend itself, past the breaker: readiness shows whether it
    /// answers, and the circuit's state beside it.
    async fn check_ready(&self) -> Result<(), BackendError> {
        self.inner.check_ready().await
    }

    fn circuit(&self) -> Option<CircuitState> {
        (self.settings.enabled && self.settings.failure_threshold > 0).then(|| self.breaker.state())
    }

    /// Past the retries, the cap and the breaker's count: a count is cheap
    /// for the server and has its own short timeout, a failed one costs only
    /// a local estimate instead, and counting is not generating, so it
    /// neither waits for a generation's slot nor opens the circuit. While
    /// the circuit is open the server is not asked.
    async fn count_tokens(&self, request: &ModelRequest) -> Option<Result<u64, BackendError>> {
        if self.circuit() == Some(CircuitState::Open) {
            return Some(Err(BackendError::overloaded("the circuit is open", None)));
        }
        self.inner.count_tokens(request).await
    }
}

/// What a guarded stream carries from event to event.
struct Guarded {
    events: ModelStream,
    /// The concurrency slot, freed when the stream ends or is dropped.
    _slot: Option<OwnedSemaphorePermit>,
    breaker: Arc<Breaker>,
    idle: Option<Duration>,
    deadline: tokio::time::Instant,
    total: Duration,
    ended: bool,
}

impl Resilient {
    /// The stream with its timeouts, holding its slot; a failure in it counts
    /// against the breaker.
    fn guard(
        &self,
        events: ModelStream,
        slot: Option<OwnedSemaphorePermit>,
        streamed: bool,
        sent: tokio::time::Instant,
    ) -> ModelStream {
        let state = Guarded {
            events,
            _slot: slot,
            breaker: self.breaker.clone(),
            idle: streamed.then_some(self.settings.idle_timeout),
            // From sending: retries and the wait for the first byte count too.
            deadline: sent + self.settings.total_timeout,
            total: self.settings.total_timeout,
            ended: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            if state.ended {
                return None;
            }
            let until = match state.idle {
                Some(idle) => state.deadline.min(antwort_engine::clock::now() + idle),
                None => state.deadline,
            };
            let event = match tokio::time::timeout_at(until, state.events.next()).await {
                Ok(Some(event)) => event,
                Ok(None) => return None,
                Err(_) if until == state.deadline => Err(BackendError::timeout(format!(
                    "the generation did not finish within {:?}",
                    state.total
                ))),
                Err(_) => Err(BackendError::timeout(format!(
                    "the stream stalled: no event for {:?}",
                    state.idle.unwrap_or_default()
                ))),
            };
            if let Err(error) = &event {
                if breaker::counts(error) {
                    state.breaker.failed(error);
                }
                state.ended = true;
            }
            Some((event, state))
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests;
