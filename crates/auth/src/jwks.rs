//! The issuer's signing keys: fetched from `jwks_url` (or the `jwks_uri` of the
//! issuer's OIDC discovery document), cached, refetched when older than
//! `max_age`, and on a `kid` nobody knows at most once per `refresh_interval`,
//! so a flood of forged `kid`s cannot make the gateway hammer the issuer.
//! Keys the set holds that antwort cannot use (encryption keys, HMAC secrets,
//! unknown algorithms) are skipped one by one, not fatal to the set.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use antwort_engine::clock;
use futures::StreamExt;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;
use serde_json::Value;
use tokio::time::Instant;

use crate::jwt::JwtSettings;

/// A JWKS or discovery document larger than this is refused.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

struct Fetched {
    keys: Arc<Vec<Jwk>>,
    at: Option<Instant>,
}

pub(crate) struct JwksCache {
    client: reqwest::Client,
    issuer: String,
    jwks_url: Option<String>,
    refresh_interval: Duration,
    max_age: Duration,
    current: RwLock<Fetched>,
    /// One fetch at a time; the others wait for its result.
    fetching: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub(crate) fn new(settings: &JwtSettings) -> Result<Self, String> {
        let client = antwort_egress::client_builder(settings.fetch_timeout)
            .timeout(settings.fetch_timeout)
            .build()
            .map_err(|e| format!("cannot build the JWKS client: {e}"))?;
        Ok(Self {
            client,
            issuer: settings.issuer.trim_end_matches('/').to_owned(),
            jwks_url: settings.jwks_url.clone(),
            refresh_interval: settings.refresh_interval,
            max_age: settings.max_age,
            current: RwLock::new(Fetched {
                keys: Arc::new(Vec::new()),
                at: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    fn snapshot(&self) -> (Arc<Vec<Jwk>>, Option<Instant>) {
        match self.current.read() {
            Ok(current) => (current.keys.clone(), current.at),
            Err(_) => (Arc::new(Vec::new()), None),
        }
    }

    /// The key that verifies a token with this `kid` and `alg`.
    pub(crate) async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        fits: fn(&Jwk, Algorithm) -> bool,
    ) -> Result<Jwk, String> {
        let (keys, at) = self.snapshot();
        let stale = at.is_none_or(|at| clock::now().duration_since(at) >= self.max_age);
        if !stale && let Some(key) = pick(&keys, kid, alg, fits)? {
            return Ok(key);
        }
        let keys = self.refresh(stale).await?;
        pick(&keys, kid, alg, fits)?.ok_or_else(|| match kid {
            Some(kid) => format!("no signing key with kid `{kid}` for {alg:?}"),
            None => format!("no signing key for {alg:?}"),
        })
    }

    /// Refetches the set unless that happened within `refresh_interval` (a
    /// `force`d refresh, for a set past its age, only waits for one under way).
    pub(crate) async fn refresh(&self, force: bool) -> Result<Arc<Vec<Jwk>>, String> {
        let before = self.snapshot().1;
        let _one_at_a_time = self.fetching.lock().await;
        let (keys, at) = self.snapshot();
        let fetched_meanwhile = at != before && at.is_some();
        let recent = at.is_some_and(|at| clock::now().duration_since(at) < self.refresh_interval);
        if fetched_meanwhile || (recent && !force) {
            return Ok(keys);
        }
        let result = self.fetch().await;
        let now = clock::now();
        match result {
            Ok(keys) => {
                let keys = Arc::new(keys);
                if let Ok(mut current) = self.current.write() {
                    *current = Fetched {
                        keys: keys.clone(),
                        at: Some(now),
                    };
                }
                Ok(keys)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot fetch the JWKS");
                // A failed fetch counts as one too, so a dead issuer is not
                // asked again for every token; the old keys stay in use.
                if let Ok(mut current) = self.current.write() {
                    current.at = Some(now);
                }
                Err(format!(
                    "the issuer's signing keys are unavailable: {error}"
                ))
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<Jwk>, String> {
        let url = match &self.jwks_url {
            Some(url) => url.clone(),
            None => {
                let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
                let document = self.get_json(&discovery).await?;
                document
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{discovery} names no jwks_uri"))?
                    .to_owned()
            }
        };
        let document = self.get_json(&url).await?;
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| "the JWKS has no `keys` array".to_owned())?;
        Ok(keys
            .iter()
            .filter(|key| key.get("use").and_then(Value::as_str) != Some("enc"))
            .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
            .collect())
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let shown = antwort_egress::redact_url(url);
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{shown}: {}", without_url(&e)))?;
        if !response.status().is_success() {
            return Err(format!("{shown} answered {}", response.status()));
        }
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| format!("{shown}: {}", without_url(&e)))?;
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{shown} is larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{shown} is not JSON: {e}"))
    }
}

fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "");
    }
    text
}

/// The key a token names; without a `kid`, the one key that fits, if only one does.
fn pick(
    keys: &[Jwk],
    kid: Option<&str>,
    alg: Algorithm,
    fits: fn(&Jwk, Algorithm) -> bool,
) -> Result<Option<Jwk>, String> {
    match kid {
        Some(kid) => match keys
            .iter()
            .find(|key| key.common.key_id.as_deref() == Some(kid))
        {
            Some(key) if fits(key, alg) => Ok(Some(key.clone())),
            Some(_) => Err(format!(
                "the key with kid `{kid}` does not sign with {alg:?}"
            )),
            None => Ok(None),
        },
        None => {
            let mut fitting = keys.iter().filter(|key| fits(key, alg));
            match (fitting.next(), fitting.next()) {
                (Some(key), None) => Ok(Some(key.clone())),
                (Some(_), Some(_)) => Err("the token names no kid and several keys fit".to_owned()),
                (None, _) => Ok(None),
            }
        }
    }
}
