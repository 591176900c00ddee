//! Builds the running authentication from `auth`: the configured keys (read
//! from their files), the database's keys, the JWT verifier, the rate limits
//! and the audit log, and refuses to start where the configuration promises
//! authentication that no credential could pass.

use std::sync::Arc;

use antwort_auth::{
    AuditLog, AuditSink, Auth, ConfiguredKey, JwtSettings, JwtVerifier, KeyRing, LimitSettings,
    Permissions, RateLimits, RoleScopes, RuntimeKeys,
};
use antwort_engine::KeyStore;
use antwort_store::SqlStore;
use anyhow::Context;

use crate::config::{self, AuthKind, Config};

/// The authentication `config` asks for, on `store`: the keys created at run
/// time, and (on PostgreSQL, which replicas share) the rate-limit counters.
pub async fn build_auth(config: &Config, store: Arc<SqlStore>) -> anyhow::Result<Auth> {
    let section = &config.auth;
    let (per_key, per_tenant) = (
        limit(&section.rate_limits.per_key),
        limit(&section.rate_limits.per_tenant),
    );
    let limits = if config.storage.kind == config::StorageKind::Postgres {
        RateLimits::shared(per_key, per_tenant, store.clone())
    } else {
        RateLimits::new(per_key, per_tenant)
    };
    let keys: Arc<dyn KeyStore> = store;
    let audit = audit_log(&section.audit)?;
    let kind = match section.effective_kind() {
        None => {
            tracing::warn!(
                "no authentication is configured: serving unauthenticated, on loopback only. \
                 Configure auth.api_keys or auth.jwt to serve other hosts"
            );
            if let Ok(active) = active_keys(&*keys).await
                && active > 0
            {
                tracing::warn!(
                    active,
                    "the database holds API keys that are not honoured while authentication \
                     is off: set auth.type: apikey (ANTWORT_AUTH_TYPE=apikey) to require them"
                );
            }
            return Ok(Auth::off(limits, audit));
        }
        Some(AuthKind::None) => {
            tracing::error!(
                "auth.type is none: every request is anonymous and may read, change and delete \
                 every stored response and conversation. Put authentication in front of this \
                 server or configure auth.api_keys / auth.jwt"
            );
            return Ok(Auth::off(limits, audit));
        }
        Some(kind) => kind,
    };
    let uses_keys = matches!(kind, AuthKind::Apikey | AuthKind::Chain);
    let uses_jwt = matches!(kind, AuthKind::Jwt | AuthKind::Chain);
    let (ring, runtime) = if uses_keys {
        let ring = KeyRing::new(&configured_keys(section)?).map_err(anyhow::Error::msg)?;
        let active = active_keys(&*keys)
            .await
            .context("cannot read the API keys of the database")?;
        if ring.is_empty() && active == 0 && !uses_jwt {
            anyhow::bail!(
                "auth.type is apikey but no key is configured: set auth.api_keys, \
                 ANTWORT_API_KEYS or auth.api_keys_file, or create one with \
                 `antwort keys create --tenant T --subject S`"
            );
        }
        (ring, Some(RuntimeKeys::new(keys)))
    } else {
        (KeyRing::default(), None)
    };
    let jwt = if uses_jwt {
        let jwt = section
            .jwt
            .as_ref()
            .context("auth.type jwt needs auth.jwt.issuer")?;
        let roles = RoleScopes::new(
            &section.authorization.role_scopes,
            section.authorization.admin_role.clone(),
        )
        .map_err(anyhow::Error::msg)?;
        let verifier = JwtVerifier::new(jwt_settings(jwt), roles).map_err(anyhow::Error::msg)?;
        // An issuer that is down at start is not fatal (tokens fail until it is
        // back), but it is said at once.
        if let Err(error) = verifier.warm_up().await {
            tracing::warn!(%error, "cannot fetch the issuer's signing keys yet");
        }
        Some(verifier)
    } else {
        None
    };
    tracing::info!(
        configured_keys = !ring.is_empty(),
        database_keys = runtime.is_some(),
        jwt_issuer = section
            .jwt
            .as_ref()
            .filter(|_| uses_jwt)
            .map(|j| j.issuer.as_str())
            .unwrap_or(""),
        "authentication is required"
    );
    Ok(Auth::required(ring, runtime, jwt, limits, audit))
}

/// How many keys of the database are not revoked.
async fn active_keys(keys: &dyn KeyStore) -> Result<usize, antwort_engine::store::StoreError> {
    let listed = keys.list_keys(None).await?;
    Ok(listed.iter().filter(|key| key.revoked_at.is_none()).count())
}

fn limit(section: &config::LimitSection) -> LimitSettings {
    LimitSettings {
        requests_per_minute: section.requests_per_minute,
        tokens_per_minute: section.tokens_per_minute,
        concurrent_streams: section.concurrent_streams,
    }
}

fn audit_log(section: &config::AuditSection) -> anyhow::Result<AuditLog> {
    Ok(match section.output.trim() {
        "none" | "off" | "" => AuditLog::off(),
        "stdout" | "-" => AuditLog::new(AuditSink::Stdout),
        path => AuditLog::to_file(std::path::Path::new(path))
            .with_context(|| format!("cannot open the audit log {path}"))?,
    })
}

/// Every configured key, with keys in files read.
fn configured_keys(section: &config::AuthSection) -> anyhow::Result<Vec<ConfiguredKey>> {
    let mut entries = section.api_keys.clone();
    if let Some(path) = &section.api_keys_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read auth.api_keys_file {path}"))?;
        let listed = config::parse_key_list(&text)
            .map_err(|message| anyhow::anyhow!("auth.api_keys_file {path}: {message}"))?;
        entries.extend(listed);
    }
    let mut keys = Vec::with_capacity(entries.len());
    for (n, entry) in entries.iter().enumerate() {
        let key = match (&entry.key, &entry.key_file) {
            (Some(key), _) => key.expose().trim().to_owned(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .with_context(|| format!("cannot read auth.api_keys[{n}].key_file {file}"))?
                .trim()
                .to_owned(),
            (None, None) => anyhow::bail!("auth.api_keys[{n}] needs key or key_file"),
        };
        if key.is_empty() {
            anyhow::bail!("auth.api_keys[{n}] has an empty key");
        }
        if entry.subject.trim().is_empty() || entry.tenant_id.trim().is_empty() {
            anyhow::bail!("auth.api_keys[{n}] needs a non-empty subject and tenant_id");
        }
        let permissions = if entry.scopes.is_empty() {
            Permissions::user()
        } else {
            Permissions::parse_strict(entry.scopes.iter().map(String::as_str))
                .map_err(|m| anyhow::anyhow!("auth.api_keys[{n}].scopes: {m}"))?
        };
        keys.push(ConfiguredKey {
            key,
            subject: entry.subject.clone(),
            tenant: entry.tenant_id.clone(),
            permissions,
        });
    }
    Ok(keys)
}

fn jwt_settings(section: &config::JwtSection) -> JwtSettings {
    let mut settings = JwtSettings::new(section.issuer.clone());
    settings.audience.clone_from(&section.audience);
    settings.jwks_url = section.jwks_url.as_ref().map(|url| url.expose().to_owned());
    settings.user_claim.clone_from(&section.user_claim);
    settings.tenant_claim.clone_from(&section.tenant_claim);
    settings.scopes_claim.clone_from(&section.scopes_claim);
    settings.roles_claim.clone_from(&section.roles_claim);
    settings.default_tenant.clone_from(&section.default_tenant);
    settings.leeway = section.leeway;
    settings
}
