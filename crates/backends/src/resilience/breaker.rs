//! A circuit breaker per backend: after `failure_threshold` failed requests
//! in a row the circuit opens and requests fail at once, without reaching the
//! backend, for `reset_timeout`; then one probe request is let through, and
//! its outcome closes the circuit or opens it again.
//!
//! What counts as a failure is the backend's fault: it could not be reached,
//! did not answer in time, answered a 5xx, or broke off a stream. A 429 is a
//! healthy backend that is busy, and a 4xx is the request's fault: neither
//! counts, and neither resets the count.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use antwort_engine::{BackendError, BackendErrorKind, CircuitState};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

pub struct Breaker {
    backend: String,
    threshold: u32,
    reset_timeout: Duration,
    state: Mutex<State>,
}

/// A request the breaker let through; tell it how the request went. A probe
/// dropped without an outcome (its client left) lets the next request probe.
pub struct Admission<'a> {
    breaker: &'a Breaker,
    probe: bool,
    settled: bool,
}

impl Admission<'_> {
    pub fn succeeded(mut self) {
        self.settled = true;
        self.breaker.succeeded();
    }

    pub fn failed(mut self, error: &BackendError) {
        self.settled = true;
        if counts(error) {
            self.breaker.failed(error);
        } else if self.probe {
            // The probe proved nothing (a 4xx, a 429): let another one try.
            self.breaker.probe_abandoned();
        }
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.breaker.probe_abandoned();
        }
    }
}

/// Whether a failure is the backend's fault.
pub fn counts(error: &BackendError) -> bool {
    match &error.kind {
        BackendErrorKind::Unavailable(_)
        | BackendErrorKind::Timeout(_)
        | BackendErrorKind::Interrupted(_) => true,
        BackendErrorKind::Status { status, .. } => *status >= 500,
        BackendErrorKind::Protocol(_) | BackendErrorKind::Overloaded { .. } => false,
    }
}

impl Breaker {
    /// `threshold` 0 turns the breaker off.
    pub fn new(backend: &str, threshold: u32, reset_timeout: Duration) -> Self {
        Self {
            backend: backend.to_owned(),
            threshold,
            reset_timeout,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn state(&self) -> CircuitState {
        match *self.lock() {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { until } if antwort_engine::clock::now() >= until => {
                CircuitState::HalfOpen
            }
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Lets a request through, or refuses it while the circuit is open (or
    /// half-open with its probe under way).
    pub fn admit(&self) -> Result<Admission<'_>, BackendError> {
        let admitted = |probe| Admission {
            breaker: self,
            probe,
            settled: false,
        };
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Ok(admitted(false)),
            State::Open { until } => {
                let now = antwort_engine::clock::now();
                if now < until {
                    return Err(BackendError::overloaded(
                        "its circuit breaker is open after repeated failures",
                        Some(until - now),
                    ));
                }
                *state = State::HalfOpen { probing: true };
                tracing::info!(backend = %self.backend, "circuit half-open: probing the backend");
                Ok(admitted(true))
            }
            State::HalfOpen { probing: true } => Err(BackendError::overloaded(
                "its circuit breaker is probing whether it recovered",
                Some(Duration::from_secs(1)),
            )),
            State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                Ok(admitted(true))
            }
        }
    }

    fn succeeded(&self) {
        let mut state = self.lock();
        if !matches!(*state, State::Closed { failures: 0 }) {
            if !matches!(*state, State::Closed { .. }) {
                tracing::info!(backend = %self.backend, "circuit closed: the backend answers again");
            }
            *state = State::Closed { failures: 0 };
        }
    }

    /// A failure the backend caused, after the request's retries (or in its
    /// stream).
    pub fn failed(&self, error: &BackendError) {
        if self.threshold == 0 {
            return;
        }
        let mut state = self.lock();
        let failures = match *state {
            State::Closed { failures } => failures + 1,
            // A failed probe, or a stream admitted before the circuit opened.
            State::HalfOpen { .. } | State::Open { .. } => self.threshold,
        };
        if failures < self.threshold {
            *state = State::Closed { failures };
            return;
        }
        if !matches!(*state, State::Open { .. }) {
            tracing::warn!(
                backend = %self.backend,
                failures,
                reset_timeout = ?self.reset_timeout,
                error = %error.kind,
                "circuit open: the backend failed repeatedly; requests fail at once until it is probed"
            );
        }
        *state = State::Open {
            until: antwort_engine::clock::now() + self.reset_timeout,
        };
    }

    fn probe_abandoned(&self) {
        let mut state = self.lock();
        if matches!(*state, State::HalfOpen { probing: true }) {
            *state = State::HalfOpen { probing: false };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> BackendError {
        BackendError::unavailable("refused")
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_and_a_probe_closes_it() {
        let breaker = Breaker::new("b", 2, Duration::from_secs(30));
        breaker.admit().unwrap().failed(&down());
        assert_eq!(breaker.state(), CircuitState::Closed);
        breaker.admit().unwrap().failed(&down());
        assert_eq!(breaker.state(), CircuitState::Open);
        let refused = breaker.admit().err().unwrap();
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(30)));

        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
        let probe = breaker.admit().unwrap();
        assert!(breaker.admit().is_err(), "one probe at a time");
        probe.succeeded();
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_it_again_and_an_abandoned_one_lets_another_try() {
        let breaker = Breaker::new("b", 1, Duration::from_secs(5));
        breaker.admit().unwrap().failed(&down());
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(breaker.admit().unwrap());
        let probe = breaker.admit().unwrap();
        probe.failed(&BackendError::status(502, "bad gateway", None));
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[test]
    fn a_busy_or_refusing_backend_is_not_broken() {
        let breaker = Breaker::new("b", 1, Duration::from_secs(5));
        breaker
            .admit()
            .unwrap()
            .failed(&BackendError::status(429, "slow down", None));
        breaker
            .admit()
            .unwrap()
            .failed(&BackendError::status(400, "bad", None));
        assert_eq!(breaker.state(), CircuitState::Closed);
        let off = Breaker::new("b", 0, Duration::from_secs(5));
        off.admit().unwrap().failed(&down());
        assert_eq!(off.state(), CircuitState::Closed);
    }
}
