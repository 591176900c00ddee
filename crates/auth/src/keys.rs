//! API keys: those the configuration names (file, `ANTWORT_API_KEYS`, key
//! files) and those created at run time in the database. Either way a key is
//! kept only as its SHA-256 and compared as one, in constant time; a presented
//! key is hashed once and never logged.
//!
//! Database keys are looked up by hash and the answer (found or not) is cached
//! for [`RUNTIME_CACHE_TTL`], so a revocation reaches every replica within that
//! time without each request costing a query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use antwort_engine::clock;
use antwort_engine::store::{KeyStore, StoreError, StoredKey};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use crate::identity::{Credential, Identity};
use crate::permission::Permissions;

/// How long a database answer about a key is reused.
pub const RUNTIME_CACHE_TTL: Duration = Duration::from_secs(5);
/// Cached answers kept at most; past it the cache starts over (a flood of
/// made-up keys costs queries, not memory).
const RUNTIME_CACHE_CAP: usize = 10_000;

/// The SHA-256 of a key.
pub type KeyHash = [u8; 32];

pub fn hash_key(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

pub fn hex(hash: &KeyHash) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A key the configuration names, with who it stands for.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfiguredKey {
    pub key: String,
    pub subject: String,
    pub tenant: String,
    pub permissions: Permissions,
}

impl std::fmt::Debug for ConfiguredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfiguredKey")
            .field("key", &"***")
            .field("subject", &self.subject)
            .field("tenant", &self.tenant)
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// The configured keys, by hash. Holds no key, only hashes.
#[derive(Default)]
pub struct KeyRing {
    entries: Vec<(KeyHash, Identity)>,
}

impl KeyRing {
    /// Refuses two entries with the same key: which identity it meant would be
    /// a guess.
    pub fn new(keys: &[ConfiguredKey]) -> Result<Self, String> {
        let mut entries: Vec<(KeyHash, Identity)> = Vec::with_capacity(keys.len());
        for (n, key) in keys.iter().enumerate() {
            let hash = hash_key(&key.key);
            if entries.iter().any(|(other, _)| *other == hash) {
                return Err(format!("auth.api_keys[{n}] repeats a key listed before it"));
            }
            entries.push((
                hash,
                Identity {
                    tenant: key.tenant.clone(),
                    subject: key.subject.clone(),
                    permissions: key.permissions,
                    // The public id of a configured key: its place in the
                    // configuration (nothing derived from the key).
                    credential: Credential::ApiKey {
                        key_id: format!("cfg_{}", n + 1),
                    },
                },
            ));
        }
        Ok(Self { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The identity of the key hashing to `hash`. Every entry is compared, each
    /// in constant time, so the time taken says nothing about which matched.
    pub fn find(&self, hash: &KeyHash) -> Option<&Identity> {
        let mut found = None;
        for (candidate, identity) in &self.entries {
            if bool::from(candidate.ct_eq(hash)) {
                found = Some(identity);
            }
        }
        found
    }
}

/// Keys created at run time, read through a short cache.
pub struct RuntimeKeys {
    store: Arc<dyn KeyStore>,
    cache: Mutex<HashMap<KeyHash, (Instant, Option<Identity>)>>,
}

impl RuntimeKeys {
    pub fn new(store: Arc<dyn KeyStore>) -> Self {
        Self {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The identity of an active key with this hash.
    pub async fn find(&self, hash: &KeyHash) -> Result<Option<Identity>, StoreError> {
        let now = clock::now();
        if let Ok(cache) = self.cache.lock()
            && let Some((at, answer)) = cache.get(hash)
            && now.duration_since(*at) < RUNTIME_CACHE_TTL
        {
            return Ok(answer.clone());
        }
        let answer = self
            .store
            .find_key(&hex(hash))
            .await?
            .filter(|key| key.revoked_at.is_none())
            .map(|key| identity_of(&key));
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= RUNTIME_CACHE_CAP {
                cache.clear();
            }
            cache.insert(*hash, (now, answer.clone()));
        }
        Ok(answer)
    }

    /// Creates a key for `subject` of `tenant` (see [`crate::create_key`]).
    pub async fn create(
        &self,
        tenant: &str,
        subject: &str,
        scopes: &[String],
    ) -> Result<crate::CreatedKey, crate::KeyError> {
        crate::create_key(&self.store, tenant, subject, scopes).await
    }

    /// Every key of `tenant`, newest first (never a key, only its record).
    pub async fn list(&self, tenant: &str) -> Result<Vec<StoredKey>, StoreError> {
        self.store.list_keys(Some(tenant)).await
    }

    /// Revokes key `id` of `tenant`; false when it has no such active key. This
    /// replica stops honouring it at once, the others within the cache's TTL.
    pub async fn revoke(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let revoked = self
            .store
            .revoke_key(Some(tenant), id, clock::unix_now())
            .await?;
        if revoked {
            self.forget();
        }
        Ok(revoked)
    }

    /// Forgets cached answers, so that this replica sees a change it made at once.
    pub fn forget(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }
}

/// The identity a stored key stands for.
pub fn identity_of(key: &StoredKey) -> Identity {
    let permissions = if key.scopes.is_empty() {
        Permissions::user()
    } else {
        Permissions::parse_lenient(key.scopes.iter().map(String::as_str))
    };
    Identity {
        tenant: key.tenant.clone(),
        subject: key.subject.clone(),
        permissions,
        credential: Credential::ApiKey {
            key_id: key.id.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(key: &str, tenant: &str) -> ConfiguredKey {
        ConfiguredKey {
            key: key.into(),
            subject: "svc".into(),
            tenant: tenant.into(),
            permissions: Permissions::user(),
        }
    }

    #[test]
    fn a_key_is_found_by_its_hash_and_a_repeated_key_is_refused() {
        let ring = KeyRing::new(&[key("sk-a", "t1"), key("sk-b", "t2")]).unwrap();
        assert_eq!(ring.find(&hash_key("sk-b")).unwrap().tenant, "t2");
        assert!(ring.find(&hash_key("sk-c")).is_none());
        assert!(KeyRing::new(&[key("sk-a", "t1"), key("sk-a", "t2")]).is_err());
    }

    #[test]
    fn a_configured_key_prints_without_its_secret() {
        let printed = format!("{:?}", key("sk-very-secret", "t1"));
        assert!(!printed.contains("sk-very-secret"), "{printed}");
    }
}
