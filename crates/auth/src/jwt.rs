//! JWT bearer tokens: verified against the issuer's JWKS, then mapped to an
//! identity by configurable claim paths (the Go antwort's `auth.jwt.*` keys).
//!
//! Only asymmetric algorithms are accepted (RS256/384/512, ES256/384, EdDSA),
//! and a token's `alg` must match the family and curve of the key its `kid`
//! names: `alg: none` and an HMAC token "signed" with a public key are refused
//! before any signature is checked. `iss`, `exp` (required), `nbf` and, when
//! configured, `aud` are checked with a small leeway.

use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::identity::{Credential, Identity};
use crate::jwks::JwksCache;
use crate::permission::{Permissions, RoleScopes};

/// `auth.jwt`.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// The expected `iss`; also where OIDC discovery looks when `jwks_url` is unset.
    pub issuer: String,
    /// The expected `aud`, when set.
    pub audience: Option<String>,
    pub jwks_url: Option<String>,
    /// Dot-paths into the claims.
    pub user_claim: String,
    pub tenant_claim: String,
    pub scopes_claim: String,
    pub roles_claim: String,
    /// The tenant of tokens without a tenant claim; without it such a token is refused.
    pub default_tenant: Option<String>,
    pub leeway: Duration,
    /// An unknown `kid` refetches the JWKS at most this often.
    pub refresh_interval: Duration,
    /// A JWKS is refetched when it is older than this.
    pub max_age: Duration,
    pub fetch_timeout: Duration,
}

impl JwtSettings {
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: None,
            jwks_url: None,
            user_claim: "sub".to_owned(),
            tenant_claim: "tenant_id".to_owned(),
            scopes_claim: "scope".to_owned(),
            roles_claim: "realm_access.roles".to_owned(),
            default_tenant: None,
            leeway: Duration::from_secs(30),
            refresh_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(600),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a token was refused. The message is for the audit log and the client; it
/// never holds the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenRefused(pub String);

fn refused(message: impl Into<String>) -> TokenRefused {
    TokenRefused(message.into())
}

pub struct JwtVerifier {
    settings: JwtSettings,
    roles: RoleScopes,
    jwks: JwksCache,
}

impl JwtVerifier {
    pub fn new(settings: JwtSettings, roles: RoleScopes) -> Result<Self, String> {
        let jwks = JwksCache::new(&settings)?;
        Ok(Self {
            settings,
            roles,
            jwks,
        })
    }

    /// Fetches the JWKS now; start-up calls it so that a wrong URL shows at once.
    pub async fn warm_up(&self) -> Result<(), String> {
        self.jwks.refresh(true).await.map(|_| ())
    }

    pub async fn verify(&self, token: &str) -> Result<Identity, TokenRefused> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| refused(format!("the bearer token is not a valid JWT: {e}")))?;
        let alg = header.alg;
        if !matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        ) {
            return Err(refused(format!(
                "tokens signed with {alg:?} are not accepted"
            )));
        }
        let jwk = self
            .jwks
            .key_for(header.kid.as_deref(), alg, fits)
            .await
            .map_err(refused)?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| refused(format!("the signing key cannot be used: {e}")))?;
        let claims: Value = jsonwebtoken::decode(token, &key, &self.validation(alg))
            .map_err(|e| refused(format!("the token is not valid: {e}")))?
            .claims;
        self.identity(&claims)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        match &self.settings.audience {
            Some(audience) => {
                // jsonwebtoken checks `aud` only when a token has one: a token
                // without it must not pass where an audience is configured.
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                validation.set_audience(&[audience]);
            }
            None => {
                validation.set_required_spec_claims(&["exp", "iss"]);
                validation.validate_aud = false;
            }
        }
        validation
    }

    fn identity(&self, claims: &Value) -> Result<Identity, TokenRefused> {
        let settings = &self.settings;
        let subject = claim_text(claims, &settings.user_claim)
            .ok_or_else(|| refused(format!("the token has no `{}` claim", settings.user_claim)))?;
        crate::check_name("subject", &subject).map_err(refused)?;
        let tenant = claim_text(claims, &settings.tenant_claim)
            .or_else(|| settings.default_tenant.clone())
            .ok_or_else(|| {
                refused(format!(
                    "the token has no `{}` claim and auth.jwt.default_tenant is not set",
                    settings.tenant_claim
                ))
            })?;
        crate::check_name("tenant", &tenant).map_err(refused)?;
        let scopes = claim_words(claims, &settings.scopes_claim);
        let roles = claim_words(claims, &settings.roles_claim);
        let named = Permissions::parse_lenient(scopes.iter().map(String::as_str));
        let granted = self.roles.grant(roles.iter().map(String::as_str));
        // A token that names none of antwort's scopes and none of its roles is a
        // user's; one that names any gets exactly what it names.
        let permissions = match (named.is_empty(), granted) {
            (true, None) => Permissions::user(),
            (_, granted) => named.union(granted.unwrap_or(Permissions::NONE)),
        };
        Ok(Identity {
            tenant,
            subject,
            permissions,
            credential: Credential::Jwt {
                issuer: settings.issuer.clone(),
            },
        })
    }
}

/// Whether `jwk` may verify a token signed with `alg`.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if let Some(declared) = jwk.common.key_algorithm
        && format!("{declared:?}") != format!("{alg:?}")
    {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512) => {
            true
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
            okp.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

/// The value at a dot-path (`realm_access.roles`).
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    path.split('.')
        .try_fold(claims, |value, part| value.get(part))
}

fn claim_text(claims: &Value, path: &str) -> Option<String> {
    match claim(claims, path)? {
        Value::String(text) if !text.trim().is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A space-separated string (`scope`) or an array of strings (`scp`, roles).
fn claim_words(claims: &Value, path: &str) -> Vec<String> {
    match claim(claims, path) {
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(values)) => values
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_found_by_dot_path_and_words_by_either_shape() {
        let claims = serde_json::json!({
            "sub": "alice",
            "org": {"id": "acme"},
            "scope": "openid responses:read",
            "realm_access": {"roles": ["reader", 7]},
            "dotted.name": "flat",
        });
        assert_eq!(claim_text(&claims, "org.id").as_deref(), Some("acme"));
        assert_eq!(claim_text(&claims, "dotted.name").as_deref(), Some("flat"));
        assert_eq!(claim_words(&claims, "scope"), ["openid", "responses:read"]);
        assert_eq!(claim_words(&claims, "realm_access.roles"), ["reader"]);
        assert!(claim_text(&claims, "org.missing").is_none());
    }
}
