//! Reasoning a client keeps for the gateway (`include:
//! ["reasoning.encrypted_content"]`, with `store: false`): the reasoning text
//! travels in the item's `encrypted_content`, sealed with a key only this
//! gateway holds (ChaCha20-Poly1305 from *ring*, bound to the tenant), so
//! that a client that stores nothing can send it back and the gateway reads it
//! again. The blob is never the plain text (the item's `content` and the
//! stream's events show the text to the client that asked, as before).

use antwort_api::ReasoningPart;
use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Marks a blob this gateway sealed (version 1).
const PREFIX: &str = "antwort:r1:";

/// Bytes of a key.
pub const KEY_LEN: usize = 32;

pub struct ReasoningSeal {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for ReasoningSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReasoningSeal(***)")
    }
}

impl ReasoningSeal {
    /// A seal with `key` (32 bytes).
    pub fn new(key: &[u8]) -> Result<Self, String> {
        if key.len() != KEY_LEN {
            return Err(format!(
                "the key is {} bytes; it must be {KEY_LEN}",
                key.len()
            ));
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| "not a key".to_owned())?;
        Ok(Self {
            key: LessSafeKey::new(key),
            random: SystemRandom::new(),
        })
    }

    /// A seal with the base64 key of the configuration.
    pub fn from_base64(key: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .map_err(|e| format!("the key is not base64: {e}"))?;
        Self::new(&bytes)
    }

    /// A seal with a random key: what it seals, only this process reads.
    pub fn random() -> Self {
        let random = SystemRandom::new();
        let mut key = [0u8; KEY_LEN];
        // The system's randomness failing leaves nothing to fall back on.
        #[allow(clippy::expect_used, reason = "no secure randomness, no keys at all")]
        random
            .fill(&mut key)
            .expect("the system has secure randomness");
        #[allow(clippy::expect_used, reason = "a key of the right length")]
        Self::new(&key).expect("a 32-byte key")
    }

    /// `parts`, sealed for `tenant`.
    pub fn seal(&self, tenant: &str, parts: &[ReasoningPart]) -> Option<String> {
        let mut data = serde_json::to_vec(parts).ok()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(tenant.as_bytes()),
                &mut data,
            )
            .ok()?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&data);
        Some(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(blob)
        ))
    }

    /// The parts `sealed` holds: `None` when it is not this gateway's (a
    /// provider's own blob, kept as it is), an error when it is but cannot be
    /// opened here (another key, another tenant, or altered).
    pub fn open(
        &self,
        tenant: &str,
        sealed: &str,
    ) -> Option<Result<Vec<ReasoningPart>, &'static str>> {
        let encoded = sealed.strip_prefix(PREFIX)?;
        Some(self.open_blob(tenant, encoded))
    }

    fn open_blob(&self, tenant: &str, encoded: &str) -> Result<Vec<ReasoningPart>, &'static str> {
        let mut blob = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| "it is not base64")?;
        if blob.len() < NONCE_LEN {
            return Err("it is too short");
        }
        let mut data = blob.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&blob).map_err(|_| "bad nonce")?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(tenant.as_bytes()), &mut data)
            .map_err(|_| "it was sealed with another key, for another tenant, or altered")?;
        serde_json::from_slice(plain).map_err(|_| "it holds no reasoning")
    }
}

/// Opens the sealed reasoning of the request's own input items, in place. A
/// blob of this gateway that does not open (sealed before a restart with a
/// random key, by a replica with another key, or altered) is passed over with
/// a warning: the reasoning is lost, the turn is not (chat models are not sent
/// earlier reasoning anyway), so a long session survives a key change.
pub fn open_input(seal: &ReasoningSeal, tenant: &str, input: &mut [antwort_api::Item]) {
    for (index, item) in input.iter_mut().enumerate() {
        let antwort_api::Item::Reasoning(reasoning) = item else {
            continue;
        };
        let Some(sealed) = reasoning.encrypted_content.as_deref() else {
            continue;
        };
        match seal.open(tenant, sealed) {
            Some(Ok(parts)) if reasoning.content.as_ref().is_none_or(Vec::is_empty) => {
                reasoning.content = Some(parts);
            }
            None | Some(Ok(_)) => {}
            Some(Err(why)) => {
                tracing::warn!(
                    item = index,
                    why,
                    "sealed reasoning in the input could not be opened; passed over"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn parts() -> Vec<ReasoningPart> {
        vec![ReasoningPart::ReasoningText {
            text: "the secret plan".into(),
        }]
    }

    #[test]
    fn what_is_sealed_opens_only_with_its_key_and_tenant() {
        let seal = ReasoningSeal::random();
        let sealed = seal.seal("acme", &parts()).unwrap();
        assert!(sealed.starts_with(PREFIX));
        assert!(!sealed.contains("secret"), "never the plain text");
        assert_eq!(seal.open("acme", &sealed).unwrap().unwrap(), parts());
        assert!(seal.open("globex", &sealed).unwrap().is_err());
        assert!(
            ReasoningSeal::random()
                .open("acme", &sealed)
                .unwrap()
                .is_err()
        );
        let mut altered = sealed.clone();
        altered.pop();
        assert!(seal.open("acme", &altered).unwrap().is_err());
        assert!(
            seal.open("acme", "gAAAAB-openai-blob").is_none(),
            "not ours"
        );
        assert_ne!(
            seal.seal("acme", &parts()).unwrap(),
            sealed,
            "a fresh nonce each time"
        );
    }

    #[test]
    fn a_configured_key_is_32_bytes_of_base64() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let one = ReasoningSeal::from_base64(&key).unwrap();
        let two = ReasoningSeal::from_base64(&key).unwrap();
        let sealed = one.seal("t", &parts()).unwrap();
        assert_eq!(two.open("t", &sealed).unwrap().unwrap(), parts());
        assert!(ReasoningSeal::from_base64("c2hvcnQ=").is_err());
        assert!(ReasoningSeal::from_base64("not base64!").is_err());
    }
}
