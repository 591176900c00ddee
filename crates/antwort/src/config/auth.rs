//! `auth`: who may use the gateway (the Go antwort's keys where the concept is
//! the same: `auth.type`, `auth.api_keys`, `auth.jwt.*`,
//! `auth.authorization.*`), its rate limits and its audit log. Plain data;
//! `crate::security` builds the running authentication from it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Secret, SecretUrl, duration};

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Unset: inferred from what is configured (no credentials at all means
    /// unauthenticated local use, on loopback only).
    #[serde(rename = "type")]
    pub kind: Option<AuthKind>,
    pub api_keys: Vec<ApiKeySection>,
    /// A JSON or YAML file with a list of keys in the `api_keys` shape.
    pub api_keys_file: Option<String>,
    pub jwt: Option<JwtSection>,
    pub authorization: AuthorizationSection,
    pub rate_limits: RateLimitsSection,
    pub audit: AuditSection,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// No authentication, on any address: every request is anonymous.
    None,
    /// API keys (configured, or created with `antwort keys create`).
    Apikey,
    /// JWT bearer tokens from an OIDC issuer.
    Jwt,
    /// API keys and JWTs side by side.
    Chain,
}

/// `auth.api_keys[]`, also the shape of `ANTWORT_API_KEYS` and `api_keys_file`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct ApiKeySection {
    pub key: Option<Secret>,
    /// A file holding the key (for mounted secrets).
    pub key_file: Option<String>,
    pub subject: String,
    pub tenant_id: String,
    /// Scope names; unset or empty means a user's default scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The Go antwort's label; accepted and ignored.
    #[serde(default)]
    pub service_tier: Option<String>,
}

/// `auth.jwt`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct JwtSection {
    pub issuer: String,
    pub audience: Option<String>,
    /// Unset: the `jwks_uri` of the issuer's OIDC discovery document.
    pub jwks_url: Option<SecretUrl>,
    #[serde(default = "sub")]
    pub user_claim: String,
    #[serde(default = "tenant_id")]
    pub tenant_claim: String,
    #[serde(default = "scope")]
    pub scopes_claim: String,
    #[serde(default = "realm_roles")]
    pub roles_claim: String,
    /// The tenant of tokens without a tenant claim.
    pub default_tenant: Option<String>,
    #[serde(default = "leeway", deserialize_with = "duration")]
    pub leeway: Duration,
}

fn sub() -> String {
    "sub".into()
}
fn tenant_id() -> String {
    "tenant_id".into()
}
fn scope() -> String {
    "scope".into()
}
fn realm_roles() -> String {
    "realm_access.roles".into()
}
fn leeway() -> Duration {
    Duration::from_secs(30)
}

/// `auth.authorization`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizationSection {
    /// A role that grants every scope, `admin` included.
    pub admin_role: Option<String>,
    /// Role names to scope names (or other roles' names).
    pub role_scopes: BTreeMap<String, Vec<String>>,
}

impl Default for AuthorizationSection {
    fn default() -> Self {
        Self {
            admin_role: Some("admin".to_owned()),
            role_scopes: BTreeMap::new(),
        }
    }
}

/// `auth.rate_limits`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsSection {
    pub per_key: LimitSection,
    pub per_tenant: LimitSection,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct LimitSection {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    pub concurrent_streams: Option<u32>,
}

/// `auth.audit`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// `stdout`, `none`, or a file path to append to.
    pub output: String,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            output: "stdout".to_owned(),
        }
    }
}

impl AuthSection {
    /// The type in force: the configured one, or what the credentials imply
    /// (`None` when nothing is configured at all).
    pub fn effective_kind(&self) -> Option<AuthKind> {
        if self.kind.is_some() {
            return self.kind;
        }
        let keys = !self.api_keys.is_empty() || self.api_keys_file.is_some();
        match (keys, self.jwt.is_some()) {
            (false, false) => None,
            (true, false) => Some(AuthKind::Apikey),
            (false, true) => Some(AuthKind::Jwt),
            (true, true) => Some(AuthKind::Chain),
        }
    }

    pub(super) fn apply_env(
        &mut self,
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let env = |name: &'static str, value: String, message: String| ConfigError::Env {
            name,
            value,
            message,
        };
        if let Some(v) = get("ANTWORT_AUTH_TYPE") {
            use clap::ValueEnum;
            self.kind = Some(
                AuthKind::from_str(v.trim(), true)
                    .map_err(|m| env("ANTWORT_AUTH_TYPE", v.clone(), m))?,
            );
        }
        if let Some(v) = get("ANTWORT_API_KEYS") {
            // Never echo the value: it is a list of secrets.
            self.api_keys =
                parse_key_list(&v).map_err(|m| env("ANTWORT_API_KEYS", "<redacted>".into(), m))?;
        }
        if let Some(v) = get("ANTWORT_API_KEYS_FILE") {
            self.api_keys_file = Some(v);
        }
        if let Some(v) = get("ANTWORT_JWT_ISSUER") {
            let jwt = self
                .jwt
                .get_or_insert_with(|| JwtSection::new(String::new()));
            jwt.issuer = v;
        }
        if let Some(v) = get("ANTWORT_JWT_AUDIENCE")
            && let Some(jwt) = &mut self.jwt
        {
            jwt.audience = Some(v);
        }
        if let Some(v) = get("ANTWORT_JWT_JWKS_URL")
            && let Some(jwt) = &mut self.jwt
        {
            jwt.jwks_url = Some(v.into());
        }
        if let Some(v) = get("ANTWORT_AUDIT_OUTPUT") {
            self.audit.output = v;
        }
        Ok(())
    }

    /// What serde cannot check; keys in files are read by `crate::security`.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        for (n, key) in self.api_keys.iter().enumerate() {
            if key.key.is_some() == key.key_file.is_some() {
                return invalid(format!(
                    "auth.api_keys[{n}] needs key or key_file (one of them)"
                ));
            }
            if key.subject.trim().is_empty() || key.tenant_id.trim().is_empty() {
                return invalid(format!(
                    "auth.api_keys[{n}] needs a non-empty subject and tenant_id"
                ));
            }
            antwort_auth::Permissions::parse_strict(key.scopes.iter().map(String::as_str))
                .map_err(|m| ConfigError::Invalid(format!("auth.api_keys[{n}].scopes: {m}")))?;
        }
        for (n, key) in self.api_keys.iter().enumerate() {
            for (what, name) in [("subject", &key.subject), ("tenant_id", &key.tenant_id)] {
                antwort_auth::check_name(what, name)
                    .map_err(|m| ConfigError::Invalid(format!("auth.api_keys[{n}].{what}: {m}")))?;
            }
        }
        if let Some(jwt) = &self.jwt {
            if let Some(tenant) = &jwt.default_tenant {
                antwort_auth::check_name("tenant", tenant)
                    .map_err(|m| ConfigError::Invalid(format!("auth.jwt.default_tenant: {m}")))?;
            }
            if !jwt.issuer.starts_with("https://") && !jwt.issuer.starts_with("http://") {
                return invalid(format!(
                    "auth.jwt.issuer `{}` must be the issuer's http(s) URL, as in the tokens' `iss`",
                    jwt.issuer
                ));
            }
            if let Some(url) = &jwt.jwks_url
                && super::reqwest_url(url.expose()).is_err()
            {
                return invalid(format!(
                    "auth.jwt.jwks_url `{}` is not an http(s) URL",
                    url.redacted()
                ));
            }
        }
        match self.effective_kind() {
            Some(AuthKind::Jwt | AuthKind::Chain) if self.jwt.is_none() => {
                return invalid(
                    "auth.type jwt (or chain) needs auth.jwt.issuer (ANTWORT_JWT_ISSUER)".into(),
                );
            }
            _ => {}
        }
        antwort_auth::RoleScopes::new(
            &self.authorization.role_scopes,
            self.authorization.admin_role.clone(),
        )
        .map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

impl JwtSection {
    fn new(issuer: String) -> Self {
        Self {
            issuer,
            audience: None,
            jwks_url: None,
            user_claim: sub(),
            tenant_claim: tenant_id(),
            scopes_claim: scope(),
            roles_claim: realm_roles(),
            default_tenant: None,
            leeway: leeway(),
        }
    }
}

/// A list of keys in the `api_keys` shape, from JSON (`ANTWORT_API_KEYS`, the
/// Go antwort's form) or YAML (a key file).
pub fn parse_key_list(text: &str) -> Result<Vec<ApiKeySection>, String> {
    serde_yaml_ng::from_str(text).map_err(|e| {
        // serde's message may quote the offending value, which may be a key.
        let location = e
            .location()
            .map(|l| format!(" at line {} column {}", l.line(), l.column()))
            .unwrap_or_default();
        format!(
            "expected a list like [{{\"key\": \"...\", \"subject\": \"...\", \"tenant_id\": \"...\", \"scopes\": [...]}}]{location}"
        )
    })
}
