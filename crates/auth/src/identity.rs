//! Who a request comes from, once its credential is checked: a tenant, a subject
//! within it, the scopes granted, and how it proved itself (for the audit log
//! and for keying rate limits).

use crate::permission::{Permission, Permissions};

/// The tenant and subject of requests when authentication is off.
pub const ANONYMOUS_TENANT: &str = "default";
pub const ANONYMOUS_SUBJECT: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub tenant: String,
    pub subject: String,
    pub permissions: Permissions,
    pub credential: Credential,
}

/// How an identity was established. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Authentication is off (`auth.type: none`, or loopback-only by default).
    Anonymous,
    /// An API key; `key_id` is its public id (never the key).
    ApiKey { key_id: String },
    /// A JWT from `issuer`.
    Jwt { issuer: String },
}

impl Identity {
    /// The identity of every request when authentication is off: one tenant,
    /// every scope (there is nobody to tell apart).
    pub fn anonymous() -> Self {
        Self {
            tenant: ANONYMOUS_TENANT.to_owned(),
            subject: ANONYMOUS_SUBJECT.to_owned(),
            permissions: Permissions::all(),
            credential: Credential::Anonymous,
        }
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(permission)
    }

    /// Whether this identity sees every object of its tenant rather than its own.
    pub fn sees_tenant(&self) -> bool {
        self.may(Permission::Admin)
    }

    /// The key rate limits count this identity under.
    pub fn limit_key(&self) -> String {
        match &self.credential {
            Credential::ApiKey { key_id } => format!("key:{key_id}"),
            // The tenant's length keeps `a:b` + `c` apart from `a` + `b:c`.
            Credential::Jwt { .. } => {
                format!("sub:{}:{}:{}", self.tenant.len(), self.tenant, self.subject)
            }
            Credential::Anonymous => "anonymous".to_owned(),
        }
    }

    /// How the credential is described in the audit log.
    pub fn credential_label(&self) -> String {
        match &self.credential {
            Credential::Anonymous => "anonymous".to_owned(),
            Credential::ApiKey { key_id } => format!("api_key:{key_id}"),
            Credential::Jwt { issuer } => format!("jwt:{issuer}"),
        }
    }
}
