//! Instance controls: faults and settings a test changes while the mock runs,
//! from Rust through [`Control`] or over HTTP through `POST /mock/control`.
//!
//! The faults apply to generation requests (`/v1/chat/completions` and
//! `/v1/responses`), in this order of precedence:
//!
//! - `hang`: the request is accepted and never answered, not even a status line
//!   (counted in `requests_hung`, and in `requests_abandoned` once the client
//!   gives up);
//! - `failing`: every request answers that status until it is cleared;
//! - `fail_next`: the next `count` requests answer that status, then the mock
//!   answers normally again.
//!
//! A failure's body is an OpenAI error object, with a `Retry-After` header when
//! `retry_after` is set. The settings are the model list of `/v1/models` and the
//! `max_model_len` it and `/tokenize` report.
//!
//! `POST /mock/control` takes a JSON object whose keys are applied in this order
//! (absent keys are left as they are): `reset: true` (clears every fault, keeps
//! the settings), `fail_next: {"count": N, "status": S}` (or `[N, S]`),
//! `failing: S | null`, `retry_after: SECS | null`, `hang: bool`,
//! `models: [names]`, `max_model_len: N`. It answers, as `GET /mock/control`
//! does, the state after the change.

use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{MockState, error};

/// The models `/v1/models` lists unless told otherwise.
pub const DEFAULT_MODELS: [&str; 2] = ["mock-model", "mock-reasoning"];

/// [`DEFAULT_MODELS`], owned.
pub fn default_models() -> Vec<String> {
    DEFAULT_MODELS.iter().map(|m| (*m).to_owned()).collect()
}

/// The context window `/v1/models` and `/tokenize` report unless told otherwise.
pub const DEFAULT_MAX_MODEL_LEN: u64 = 32768;

/// One mock instance's controls; every method takes effect on the next request.
#[derive(Debug)]
pub struct Control {
    settings: Mutex<Settings>,
}

#[derive(Debug, Clone)]
struct Settings {
    fail_next: Option<(u32, u16)>,
    failing: Option<u16>,
    retry_after: Option<u64>,
    hang: bool,
    models: Vec<String>,
    max_model_len: u64,
}

/// What a generation request meets before the script is read.
pub(crate) enum Fault {
    None,
    Hang,
    Fail {
        status: u16,
        retry_after: Option<u64>,
    },
}

impl Default for Control {
    fn default() -> Self {
        Self::new(default_models(), DEFAULT_MAX_MODEL_LEN)
    }
}

impl Control {
    /// Controls without faults, listing `models` with a context of `max_model_len`.
    pub fn new(models: Vec<String>, max_model_len: u64) -> Self {
        Self {
            settings: Mutex::new(Settings {
                fail_next: None,
                failing: None,
                retry_after: None,
                hang: false,
                models,
                max_model_len,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Settings> {
        // A panicking test thread must not turn every later request into a panic.
        self.settings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next `count` generation requests answer `status`; replaces a count
    /// still running. A count of 0 clears it.
    pub fn fail_next(&self, count: u32, status: u16) {
        self.lock().fail_next = (count > 0).then_some((count, status));
    }

    /// How many failures `fail_next` still has to give.
    pub fn fail_next_remaining(&self) -> u32 {
        self.lock().fail_next.map_or(0, |(count, _)| count)
    }

    /// Every generation request answers `status` until this is set to `None`.
    pub fn set_failing(&self, status: Option<u16>) {
        self.lock().failing = status;
    }

    /// The `Retry-After` seconds sent with the failures of `fail_next` and
    /// `failing` (not with scripted `[[error:..]]`, which has `[[retry_after:..]]`).
    pub fn set_retry_after(&self, seconds: Option<u64>) {
        self.lock().retry_after = seconds;
    }

    /// Generation requests are accepted and never answered while this is set.
    pub fn set_hang(&self, hang: bool) {
        self.lock().hang = hang;
    }

    /// Clears every fault; the model list and `max_model_len` stay.
    pub fn reset(&self) {
        let mut settings = self.lock();
        settings.fail_next = None;
        settings.failing = None;
        settings.retry_after = None;
        settings.hang = false;
    }

    /// The models `/v1/models` lists from now on.
    pub fn set_models(&self, models: Vec<String>) {
        self.lock().models = models;
    }

    pub fn models(&self) -> Vec<String> {
        self.lock().models.clone()
    }

    /// The context window `/v1/models` and `/tokenize` report from now on.
    pub fn set_max_model_len(&self, tokens: u64) {
        self.lock().max_model_len = tokens;
    }

    pub fn max_model_len(&self) -> u64 {
        self.lock().max_model_len
    }

    /// Decides a generation request's fault, counting `fail_next` down.
    pub(crate) fn take_fault(&self) -> Fault {
        let mut settings = self.lock();
        if settings.hang {
            return Fault::Hang;
        }
        let retry_after = settings.retry_after;
        if let Some(status) = settings.failing {
            return Fault::Fail {
                status,
                retry_after,
            };
        }
        match settings.fail_next {
            Some((count, status)) => {
                settings.fail_next = (count > 1).then_some((count - 1, status));
                Fault::Fail {
                    status,
                    retry_after,
                }
            }
            None => Fault::None,
        }
    }

    fn snapshot(&self) -> Value {
        let s = self.lock().clone();
        json!({
            "fail_next": s.fail_next.map(|(count, status)| json!({"count": count, "status": status})),
            "failing": s.failing,
            "retry_after": s.retry_after,
            "hang": s.hang,
            "models": s.models,
            "max_model_len": s.max_model_len,
        })
    }

    /// Applies a `POST /mock/control` body; on a bad key or value nothing after
    /// it is applied.
    fn apply(&self, update: &Value) -> Result<(), String> {
        let Some(fields) = update.as_object() else {
            return Err("the body must be a JSON object".into());
        };
        const KEYS: [&str; 7] = [
            "reset",
            "fail_next",
            "failing",
            "retry_after",
            "hang",
            "models",
            "max_model_len",
        ];
        if let Some(unknown) = fields.keys().find(|k| !KEYS.contains(&k.as_str())) {
            // A misspelt key silently ignored would make a fault test pass vacuously.
            return Err(format!("unknown control `{unknown}`"));
        }
        for key in KEYS {
            if let Some(value) = fields.get(key) {
                self.apply_one(key, value)?;
            }
        }
        Ok(())
    }

    fn apply_one(&self, key: &str, value: &Value) -> Result<(), String> {
        let status = |v: &Value| -> Result<Option<u16>, String> {
            match v {
                Value::Null => Ok(None),
                v => v
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (100..=599).contains(s))
                    .map(Some)
                    .ok_or_else(|| format!("`{key}` needs an HTTP status, not {v}")),
            }
        };
        let bad = || format!("`{key}` has a bad value: {value}");
        match key {
            "reset" if value == &json!(true) => self.reset(),
            "reset" => {}
            "fail_next" => {
                let (count, code) = match value {
                    Value::Array(pair) if pair.len() == 2 => (&pair[0], &pair[1]),
                    Value::Object(_) => (&value["count"], &value["status"]),
                    _ => return Err(bad()),
                };
                let count = count
                    .as_u64()
                    .and_then(|c| u32::try_from(c).ok())
                    .ok_or_else(bad)?;
                self.fail_next(count, status(code)?.ok_or_else(bad)?);
            }
            "failing" => self.set_failing(status(value)?),
            "retry_after" if value.is_null() => self.set_retry_after(None),
            "retry_after" => self.set_retry_after(Some(value.as_u64().ok_or_else(bad)?)),
            "hang" => self.set_hang(value.as_bool().ok_or_else(bad)?),
            "models" => {
                let models = value.as_array().ok_or_else(bad)?;
                let names: Option<Vec<String>> = models
                    .iter()
                    .map(|m| m.as_str().map(str::to_owned))
                    .collect();
                self.set_models(names.ok_or_else(bad)?);
            }
            "max_model_len" => self.set_max_model_len(value.as_u64().ok_or_else(bad)?),
            _ => return Err(bad()),
        }
        Ok(())
    }
}

/// The answer of a failure from the controls.
pub(crate) fn failure(status: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = error(
        status,
        &format!("mock control: failing with {}", status.as_u16()),
    );
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

pub(crate) async fn get_route(State(state): State<MockState>) -> impl IntoResponse {
    axum::Json(state.control.snapshot())
}

pub(crate) async fn post_route(State(state): State<MockState>, body: Bytes) -> Response {
    let update: Value = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    };
    match state.control.apply(&update) {
        Ok(()) => axum::Json(state.control.snapshot()).into_response(),
        Err(message) => error(StatusCode::BAD_REQUEST, &message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(fault: Fault) -> Option<u16> {
        match fault {
            Fault::Fail { status, .. } => Some(status),
            Fault::None | Fault::Hang => None,
        }
    }

    #[test]
    fn fail_next_counts_down_then_answers_normally() {
        let control = Control::default();
        control.fail_next(2, 503);
        assert_eq!(control.fail_next_remaining(), 2);
        assert_eq!(failed(control.take_fault()), Some(503));
        assert_eq!(control.fail_next_remaining(), 1);
        assert_eq!(failed(control.take_fault()), Some(503));
        assert_eq!(control.fail_next_remaining(), 0);
        assert_eq!(failed(control.take_fault()), None);
        assert_eq!(failed(control.take_fault()), None);
    }

    #[test]
    fn failing_holds_until_cleared_and_hang_wins() {
        let control = Control::default();
        control.set_failing(Some(502));
        control.fail_next(1, 429);
        for _ in 0..3 {
            assert_eq!(failed(control.take_fault()), Some(502));
        }
        // `failing` took precedence, so the one-off failure is still due.
        control.set_failing(None);
        assert_eq!(failed(control.take_fault()), Some(429));
        control.set_hang(true);
        assert!(matches!(control.take_fault(), Fault::Hang));
        control.reset();
        assert!(matches!(control.take_fault(), Fault::None));
    }

    #[test]
    fn http_updates_apply_and_reject_typos() {
        let control = Control::default();
        control
            .apply(&json!({"fail_next": [1, 500], "retry_after": 2, "models": ["a"], "max_model_len": 8}))
            .unwrap();
        assert!(matches!(
            control.take_fault(),
            Fault::Fail {
                status: 500,
                retry_after: Some(2)
            }
        ));
        assert_eq!(control.models(), ["a"]);
        assert_eq!(control.max_model_len(), 8);
        control
            .apply(&json!({"failing": 503, "fail_next": {"count": 3, "status": 429}}))
            .unwrap();
        assert_eq!(control.snapshot()["failing"], 503);
        assert_eq!(control.snapshot()["fail_next"]["count"], 3);
        control.apply(&json!({"failing": null})).unwrap();
        assert_eq!(control.snapshot()["failing"], Value::Null);
        assert!(control.apply(&json!({"fail_nxt": [1, 500]})).is_err());
        assert!(control.apply(&json!({"failing": 42})).is_err());
        assert!(control.apply(&json!({"hang": "yes"})).is_err());
    }
}
