//! Who is asking, and what they may do: a request's credential (an API key from
//! the configuration or the database, or a JWT verified against the issuer's
//! JWKS; both accepted side by side) becomes an [`Identity`] with a tenant, a
//! subject and [`Permissions`]; [`RateLimits`] admit or refuse it; the
//! [`AuditLog`] records security events. No HTTP framework here: the server
//! hands in the request's headers and maps the answers to responses.

pub mod audit;
pub mod identity;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod limits;
pub mod permission;

use std::sync::Arc;

use antwort_engine::clock;
use antwort_engine::store::{KeyStore, StoreError, StoredKey};
use http::HeaderMap;

pub use audit::{AuditEvent, AuditKind, AuditLog, AuditSink};
pub use identity::{Credential, Identity};
pub use jwt::{JwtSettings, JwtVerifier};
pub use keys::{ConfiguredKey, KeyRing, RuntimeKeys};
pub use limits::{Admission, BucketState, LimitSettings, RateLimits, Refusal, StreamSlot};
pub use permission::{Permission, Permissions, RoleScopes};

/// Whether requests must prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every request is [`Identity::anonymous`].
    Off,
    /// Every request outside the allowlist needs a valid credential.
    Required,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "You didn't provide an API key. Send it as `Authorization: Bearer <key>` (or in an `api-key` header)."
    )]
    Missing,
    #[error("{0}")]
    Invalid(String),
    /// The key store could not be asked; not the client's fault.
    #[error("credentials cannot be checked right now: {0}")]
    Unavailable(String),
}

/// The authentication of a server: its credentials, limits and audit log.
pub struct Auth {
    mode: Mode,
    ring: KeyRing,
    runtime: Option<RuntimeKeys>,
    jwt: Option<JwtVerifier>,
    pub limits: RateLimits,
    pub audit: AuditLog,
}

impl Auth {
    /// No authentication: every request is anonymous; limits and audit still apply.
    pub fn off(limits: RateLimits, audit: AuditLog) -> Self {
        Self {
            mode: Mode::Off,
            ring: KeyRing::default(),
            runtime: None,
            jwt: None,
            limits,
            audit,
        }
    }

    pub fn required(
        ring: KeyRing,
        runtime: Option<RuntimeKeys>,
        jwt: Option<JwtVerifier>,
        limits: RateLimits,
        audit: AuditLog,
    ) -> Self {
        Self {
            mode: Mode::Required,
            ring,
            runtime,
            jwt,
            limits,
            audit,
        }
    }

    pub fn runtime_keys(&self) -> Option<&RuntimeKeys> {
        self.runtime.as_ref()
    }

    /// The identity behind a request's headers.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        if self.mode == Mode::Off {
            return Ok(Identity::anonymous());
        }
        let token = presented(headers).ok_or(AuthError::Missing)?;
        let hash = keys::hash_key(token);
        if let Some(identity) = self.ring.find(&hash) {
            return Ok(identity.clone());
        }
        if let Some(jwt) = &self.jwt
            && looks_like_jwt(token)
        {
            return jwt
                .verify(token)
                .await
                .map_err(|refused| AuthError::Invalid(refused.0));
        }
        if let Some(runtime) = &self.runtime {
            match runtime.find(&hash).await {
                Ok(Some(identity)) => return Ok(identity),
                Ok(None) => {}
                Err(error) => return Err(AuthError::Unavailable(error.to_string())),
            }
        }
        Err(AuthError::Invalid(
            "Incorrect API key provided. Check the key, or ask for a new one.".to_owned(),
        ))
    }
}

/// The credential a request carries: `Authorization: Bearer <token>` (what the
/// OpenAI SDKs send) or `api-key: <key>` (Azure OpenAI's header).
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?.trim();
        let (scheme, token) = value.split_once(' ')?;
        return (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
            .then(|| token.trim());
    }
    let value = headers.get("api-key")?.to_str().ok()?.trim();
    (!value.is_empty()).then_some(value)
}

fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// A tenant or subject name: not empty, no control characters (a NUL could
/// not be stored, and others have no business in an owner's name), at most
/// 256 bytes.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("the {what} must not be empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("the {what} must not hold control characters"));
    }
    if name.len() > 256 {
        return Err(format!("the {what} must be at most 256 bytes"));
    }
    Ok(())
}

/// A key just created: its record and the key itself, shown this once.
pub struct CreatedKey {
    pub key: StoredKey,
    pub secret: String,
}

/// Creates an API key in `store` for `tenant` and `subject` with `scopes`
/// (validated; empty means a user's default scopes).
pub async fn create_key(
    store: &Arc<dyn KeyStore>,
    tenant: &str,
    subject: &str,
    scopes: &[String],
) -> Result<CreatedKey, KeyError> {
    check_name("tenant", tenant).map_err(KeyError::Invalid)?;
    check_name("subject", subject).map_err(KeyError::Invalid)?;
    Permissions::parse_strict(scopes.iter().map(String::as_str)).map_err(KeyError::Invalid)?;
    let secret = antwort_engine::ids::api_key_secret();
    let key = StoredKey {
        id: antwort_engine::ids::api_key_id(),
        hash: keys::hex(&keys::hash_key(&secret)),
        prefix: secret.chars().take(15).collect(),
        tenant: tenant.to_owned(),
        subject: subject.to_owned(),
        scopes: scopes.to_vec(),
        created_at: clock::unix_now(),
        revoked_at: None,
    };
    store.create_key(&key).await.map_err(KeyError::Store)?;
    Ok(CreatedKey { key, secret })
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_credential_comes_from_a_bearer_or_an_api_key_header() {
        assert_eq!(
            presented(&headers(&[("authorization", "Bearer sk-1")])),
            Some("sk-1")
        );
        assert_eq!(
            presented(&headers(&[("authorization", "bearer  sk-1 ")])),
            Some("sk-1")
        );
        assert_eq!(presented(&headers(&[("api-key", "sk-2")])), Some("sk-2"));
        assert_eq!(
            presented(&headers(&[("authorization", "Basic dXNlcjpwYXNz")])),
            None
        );
        assert_eq!(presented(&headers(&[("authorization", "Bearer ")])), None);
        assert_eq!(presented(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn a_configured_key_yields_its_identity_and_anything_else_is_refused() {
        let ring = KeyRing::new(&[ConfiguredKey {
            key: "sk-good".into(),
            subject: "ci".into(),
            tenant: "acme".into(),
            permissions: Permissions::user(),
        }])
        .unwrap();
        let auth = Auth::required(
            ring,
            None,
            None,
            RateLimits::new(LimitSettings::default(), LimitSettings::default()),
            AuditLog::off(),
        );
        let identity = auth
            .authenticate(&headers(&[("authorization", "Bearer sk-good")]))
            .await
            .unwrap();
        assert_eq!(
            (identity.tenant.as_str(), identity.subject.as_str()),
            ("acme", "ci")
        );
        assert_eq!(
            auth.authenticate(&HeaderMap::new()).await,
            Err(AuthError::Missing)
        );
        assert!(matches!(
            auth.authenticate(&headers(&[("authorization", "Bearer sk-bad")]))
                .await,
            Err(AuthError::Invalid(_))
        ));
    }
}
