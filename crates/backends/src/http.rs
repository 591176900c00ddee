//! The HTTP side every backend protocol shares: the client, the bearer key, one
//! endpoint URL parsed once, sending with a single deadline, and turning
//! transport failures and error statuses into classified [`BackendError`]s.

use std::time::Duration;

use antwort_api::Model;
use antwort_engine::BackendError;

/// Where and how to reach a backend, whichever protocol it speaks.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// Base URL with or without the trailing `/v1`.
    pub base_url: String,
    /// Sent as a bearer token when set.
    pub api_key: Option<String>,
    pub connect_timeout: std::time::Duration,
    /// The longest any one generation may take (the finer timeouts are
    /// `Resilient`'s): the deadline of its status line, of a whole answer
    /// and of a silence mid-stream. Model lists get at most 10 s.
    pub timeout: std::time::Duration,
    /// The options of models this server serves, by the model name it is sent.
    pub model_options: std::collections::HashMap<String, crate::options::ModelOptions>,
    /// The options of every model `model_options` does not name.
    pub default_model_options: crate::options::ModelOptions,
    /// Count prompt tokens with the server's `POST /tokenize` (vLLM's).
    pub tokenize: bool,
}

/// How long an error body may take to arrive: a backend that sends an error
/// status and then stalls must not hold the client.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// One backend server: where it is, how to authenticate, how long it may take.
pub(crate) struct Upstream {
    client: reqwest::Client,
    /// Always ends in `/v1`, without a trailing slash.
    base_url: String,
    /// The endpoint generation is posted to (`{base_url}/chat/completions`, ...),
    /// parsed once: parsing a URL (IDNA included) on every request showed in the
    /// request path's profile.
    endpoint: reqwest::Url,
    /// `Bearer <key>`, built once and marked sensitive (never logged).
    authorization: Option<reqwest::header::HeaderValue>,
    pub(crate) timeout: Duration,
    /// The endpoint as logs show it: without credentials or query.
    address: String,
}

impl Upstream {
    /// `path` is the generation endpoint below `/v1` (`/chat/completions`).
    pub(crate) fn new(
        base_url: &str,
        api_key: Option<&str>,
        connect_timeout: Duration,
        timeout: Duration,
        path: &str,
    ) -> Result<Self, BackendError> {
        let client = antwort_egress::client_builder(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| BackendError::unavailable(format!("cannot build HTTP client: {e}")))?;
        let base_url = normalize_base_url(base_url);
        let endpoint = reqwest::Url::parse(&format!("{base_url}{path}"))
            .map_err(|e| BackendError::unavailable(format!("invalid backend URL: {e}")))?;
        let address = antwort_egress::display_url(&endpoint);
        let authorization = match api_key {
            Some(key) => {
                let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                    .map_err(|_| {
                        BackendError::unavailable("the backend API key is not a valid header value")
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Self {
            client,
            base_url,
            endpoint,
            authorization,
            timeout,
            address,
        })
    }

    /// A POST to the generation endpoint, with the key.
    pub(crate) fn post_endpoint(&self) -> reqwest::RequestBuilder {
        self.authorized(self.client.post(self.endpoint.clone()))
    }

    pub(crate) fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.authorized(self.client.get(format!("{}{path}", self.base_url)))
    }

    /// A POST to `url` (one of this server's, parsed once), with the key.
    pub(crate) fn post(&self, url: reqwest::Url) -> reqwest::RequestBuilder {
        self.authorized(self.client.post(url))
    }

    /// `path` at the server's root, outside `/v1` (where vLLM serves
    /// `/tokenize`).
    pub(crate) fn root_url(&self, path: &str) -> Result<reqwest::Url, BackendError> {
        let root = self.base_url.strip_suffix("/v1").unwrap_or(&self.base_url);
        reqwest::Url::parse(&format!("{root}{path}"))
            .map_err(|e| BackendError::unavailable(format!("invalid backend URL: {e}")))
    }

    fn authorized(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.authorization {
            Some(value) => builder.header(reqwest::header::AUTHORIZATION, value.clone()),
            None => builder,
        }
    }

    /// The end of the time an answer may take, from now.
    pub(crate) fn deadline(&self) -> tokio::time::Instant {
        antwort_engine::clock::now() + self.timeout
    }

    /// Sends and waits for the status line, mapping every failure to a
    /// BackendError. One deadline covers connecting, the status line and, for an
    /// error status, its body: a backend that answers 500 and then stalls holds
    /// nobody past it.
    pub(crate) async fn send(
        &self,
        builder: reqwest::RequestBuilder,
        deadline: tokio::time::Instant,
    ) -> Result<reqwest::Response, BackendError> {
        self.send_within(builder, deadline, self.timeout).await
    }

    /// [`Upstream::send`], for a deadline `within` from now that is not the
    /// backend's timeout (a token count is given less).
    pub(crate) async fn send_within(
        &self,
        builder: reqwest::RequestBuilder,
        deadline: tokio::time::Instant,
        within: Duration,
    ) -> Result<reqwest::Response, BackendError> {
        let response = match tokio::time::timeout_at(deadline, builder.send()).await {
            Ok(sent) => sent.map_err(|e| self.transport_error(&e))?,
            Err(_) => {
                tracing::warn!(backend = %self.address, timeout = ?within, "the backend did not answer in time");
                return Err(BackendError::timeout(format!(
                    "no answer within {within:?}"
                )));
            }
        };
        if response.status().is_success() {
            return Ok(response);
        }
        Err(status_error(response, deadline).await)
    }

    /// The whole body of a non-streamed answer, by the same deadline as its
    /// status line; `what` names it in the timeout error.
    pub(crate) async fn body(
        &self,
        response: reqwest::Response,
        deadline: tokio::time::Instant,
        what: &str,
    ) -> Result<bytes::Bytes, BackendError> {
        tokio::time::timeout_at(deadline, response.bytes())
            .await
            .map_err(|_| BackendError::timeout(format!("the {what} did not arrive in time")))?
            .map_err(|e| self.transport_error(&e))
    }

    /// A transport failure, for the client without the backend's address
    /// (internal, and possibly with credentials), which goes to the log.
    pub(crate) fn transport_error(&self, error: &reqwest::Error) -> BackendError {
        let cause = root_cause(error);
        tracing::warn!(backend = %self.address, error = %cause, "backend request failed");
        if error.is_timeout() {
            BackendError::timeout(cause)
        } else if error.is_connect() {
            BackendError::unavailable(format!("cannot connect: {cause}"))
        } else {
            BackendError::protocol(cause)
        }
    }

    /// `GET /v1/models`: the models the server lists.
    pub(crate) async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        #[derive(serde::Deserialize)]
        struct List {
            #[serde(default)]
            data: Vec<Model>,
        }
        // A list is answered at once or not at all: the generation deadline
        // (up to an hour) would hold discovery and `GET /v1/models` that long.
        let deadline = antwort_engine::clock::now() + self.timeout.min(LIST_TIMEOUT);
        let response = self.send(self.get("/models"), deadline).await?;
        let list: List = tokio::time::timeout_at(deadline, response.json())
            .await
            .map_err(|_| BackendError::timeout("the model list did not arrive in time"))?
            .map_err(|e| BackendError::protocol(format!("invalid model list: {e}")))?;
        Ok(list.data)
    }

    /// Succeeds when `GET /v1/models` answers with a success status.
    pub(crate) async fn check_ready(&self) -> Result<(), BackendError> {
        let deadline = antwort_engine::clock::now() + self.timeout.min(LIST_TIMEOUT);
        self.send(self.get("/models"), deadline).await.map(|_| ())
    }
}

/// How long a model list (or a readiness probe) may take.
const LIST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts `http://host:8000`, `http://host:8000/` and `http://host:8000/v1`.
pub fn normalize_base_url(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    if trimmed.ends_with("/v1") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1")
    }
}

/// reqwest's top-level message is generic ("error sending request"): the cause is
/// what an operator needs (connection refused, DNS failure, ...).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// The backend's error status, with the message of its body when that body
/// arrives in time (by `deadline`, and within [`ERROR_BODY_TIMEOUT`]).
async fn status_error(response: reqwest::Response, deadline: tokio::time::Instant) -> BackendError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let until = deadline.min(antwort_engine::clock::now() + ERROR_BODY_TIMEOUT);
    let body = tokio::time::timeout_at(until, response.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| "(its error body did not arrive)".to_owned());
    BackendError::status(status, error_message(&body), retry_after)
}

/// `Retry-After` as delta-seconds (`120`) or an HTTP date, as a duration from now.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(antwort_engine::clock::system_now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The human part of an error body, whatever shape the server chose (OpenAI's
/// `{"error": {"message", "type", "code"}}` first).
pub(crate) fn error_message(body: &str) -> String {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        let candidates = [
            value.pointer("/error/message"),
            value.get("error"),
            value.get("message"),
            value.get("detail"),
        ];
        for candidate in candidates.into_iter().flatten() {
            if let Some(text) = candidate.as_str() {
                return text.to_owned();
            }
        }
    }
    let mut text: String = body.chars().take(500).collect();
    if text.is_empty() {
        text.push_str("(empty body)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_gets_exactly_one_v1() {
        assert_eq!(normalize_base_url("http://h:8000"), "http://h:8000/v1");
        assert_eq!(normalize_base_url("http://h:8000/"), "http://h:8000/v1");
        assert_eq!(normalize_base_url("http://h:8000/v1/"), "http://h:8000/v1");
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn error_messages_are_found_in_every_shape() {
        assert_eq!(
            error_message(r#"{"error":{"message":"bad model"}}"#),
            "bad model"
        );
        assert_eq!(error_message(r#"{"error":"nope"}"#), "nope");
        assert_eq!(error_message(r#"{"detail":"missing"}"#), "missing");
        assert_eq!(error_message("plain"), "plain");
    }
}
