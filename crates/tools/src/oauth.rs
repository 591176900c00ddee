//! OAuth 2.0 client credentials (RFC 6749 section 4.4) for configured MCP
//! servers: fetch a bearer token with `client_secret_post`, keep it until shortly
//! before it expires, and fetch a new one then, or when the MCP server refuses
//! the current one. Tokens and secrets are never logged.

use std::time::Duration;

use antwort_engine::clock;
use tokio::time::Instant;

use antwort_engine::mcp::McpError;
use reqwest::Url;
use serde_json::Value;
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::errors;
use crate::settings::OAuthClientCredentials;

/// A token is renewed this long before it expires (or a quarter of its
/// lifetime, for short-lived tokens), so that it does not expire in flight.
const RENEW_BEFORE: Duration = Duration::from_secs(30);

/// The token of one configured server.
pub(crate) struct TokenSource {
    server: String,
    token_url: Url,
    credentials: OAuthClientCredentials,
    client: reqwest::Client,
    timeout: Duration,
    /// Held while fetching, so that concurrent calls wait for one request.
    cached: Mutex<Option<Token>>,
}

struct Token {
    access_token: String,
    /// `None` when the endpoint did not say when it expires.
    renew_at: Option<Instant>,
}

impl TokenSource {
    pub(crate) fn new(
        server: String,
        token_url: Url,
        credentials: OAuthClientCredentials,
        client: reqwest::Client,
        timeout: Duration,
    ) -> Self {
        Self {
            server,
            token_url,
            credentials,
            client,
            timeout,
            cached: Mutex::new(None),
        }
    }

    /// A token that is still valid, fetched if needed.
    pub(crate) async fn token(&self) -> Result<String, McpError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && token.renew_at.is_none_or(|at| clock::now() < at)
        {
            return Ok(token.access_token.clone());
        }
        let token = self.fetch().await?;
        let access_token = token.access_token.clone();
        *cached = Some(token);
        Ok(access_token)
    }

    /// Forgets `refused` (the MCP server answered 401 to it), unless another
    /// call has already replaced it.
    pub(crate) async fn invalidate(&self, refused: &str) {
        let mut cached = self.cached.lock().await;
        if cached
            .as_ref()
            .is_some_and(|token| token.access_token == refused)
        {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<Token, McpError> {
        let span = tracing::info_span!("mcp.oauth_token", server = %self.server);
        tokio::time::timeout(self.timeout, self.request().instrument(span))
            .await
            .map_err(|_| {
                McpError::Timeout(format!(
                    "the token endpoint of '{}' did not answer within {:?}",
                    self.server, self.timeout
                ))
            })?
    }

    async fn request(&self) -> Result<Token, McpError> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", self.credentials.client_id.clone()),
            ("client_secret", self.credentials.client_secret.clone()),
        ];
        if !self.credentials.scopes.is_empty() {
            form.push(("scope", self.credentials.scopes.join(" ")));
        }
        let requested = clock::now();
        let response = self
            .client
            .post(self.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| errors::from_reqwest(&e))?;
        let status = response.status();
        let body: Value = if status.is_success() {
            response.json().await.map_err(|_| McpError::Protocol {
                code: -32603,
                message: "the token endpoint's answer is not JSON".to_owned(),
            })?
        } else {
            // RFC 6749 section 5.2: `error` is a code such as `invalid_client`,
            // safe to show; the description might echo input, so it is left out.
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let code = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no error code");
            tracing::debug!(
                status = status.as_u16(),
                error = code,
                "token request refused"
            );
            return Err(McpError::Http {
                status: status.as_u16(),
                message: format!("the token endpoint refused the client credentials ({code})"),
            });
        };
        let access_token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| McpError::Protocol {
                code: -32603,
                message: "the token endpoint's answer has no access_token".to_owned(),
            })?
            .to_owned();
        // Some servers send `expires_in` as a string.
        let expires_in = match body.get("expires_in") {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.parse::<f64>().ok(),
            _ => None,
        }
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(Duration::from_secs_f64);
        tracing::debug!(expires_in = ?expires_in, "token issued");
        Ok(Token {
            access_token,
            renew_at: expires_in.map(|lifetime| requested + renew_after(lifetime)),
        })
    }
}

fn renew_after(lifetime: Duration) -> Duration {
    lifetime.saturating_sub(RENEW_BEFORE.min(lifetime / 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(3570)
        );
        assert_eq!(
            renew_after(Duration::from_secs(1)),
            Duration::from_millis(750)
        );
        assert_eq!(renew_after(Duration::ZERO), Duration::ZERO);
    }
}
