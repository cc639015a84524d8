//! Key derivation and the stored identity records.
//!
//! The identity key is derived from a 24-word BIP39 phrase: BIP39 seed (empty passphrase)
//! -> `blake3::derive_key("echo-rs identity key v1", seed)` -> ed25519 secret. The same
//! phrase always gives the same identity, so it recovers the identity on a new device.

use bip39::Mnemonic;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::credentials::{authorize_device, Assertion, Credential, Signer, Subject};
use crate::types::{KeyPair, PublicKey};

/// Words in a seed phrase (256 bits of entropy).
pub const SEED_PHRASE_WORDS: usize = 24;

const IDENTITY_KDF_CONTEXT: &str = "echo-rs identity key v1";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("invalid seed phrase: {0}")]
    BadPhrase(String),
}

/// The device key of this data dir.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub secret: [u8; 32],
}

impl DeviceRecord {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        DeviceRecord {
            secret: KeyPair::generate(rng).secret_bytes(),
        }
    }
    pub fn key_pair(&self) -> KeyPair {
        KeyPair::from_secret(self.secret)
    }
}

/// The identity as this device stores it.
#[derive(Clone, Serialize, Deserialize)]
pub struct IdentityRecord {
    pub identity_secret: [u8; 32],
    pub name: Option<String>,
    /// AuthorizedDevice { identity -> this device }, signed by the identity key.
    pub device_credential: Credential,
    /// IdentityProfile { display name }, signed by this device for the identity.
    pub profile: Credential,
}

impl IdentityRecord {
    pub fn identity_key(&self) -> PublicKey {
        KeyPair::from_secret(self.identity_secret).public()
    }

    /// This device, signing for the identity.
    pub fn signer(&self, device: &KeyPair) -> Signer {
        Signer::for_device(
            self.identity_key(),
            device.clone(),
            self.device_credential.clone(),
        )
    }
}

/// A freshly created identity and the phrase that recovers it (shown once).
pub struct NewIdentity {
    pub record: IdentityRecord,
    pub seed_phrase: String,
}

/// Derives the identity key pair from a seed phrase.
pub fn identity_from_phrase(phrase: &str) -> Result<KeyPair, IdentityError> {
    let mnemonic =
        Mnemonic::parse_normalized(phrase).map_err(|e| IdentityError::BadPhrase(e.to_string()))?;
    if mnemonic.word_count() != SEED_PHRASE_WORDS {
        return Err(IdentityError::BadPhrase(format!(
            "expected {SEED_PHRASE_WORDS} words, got {}",
            mnemonic.word_count()
        )));
    }
    Ok(key_from_mnemonic(&mnemonic))
}

fn key_from_mnemonic(mnemonic: &Mnemonic) -> KeyPair {
    let seed = mnemonic.to_seed("");
    KeyPair::from_secret(blake3::derive_key(IDENTITY_KDF_CONTEXT, &seed))
}

impl NewIdentity {
    /// Creates an identity for `device`: a new phrase, its key, and the device and profile
    /// credentials.
    pub fn create(
        rng: &mut impl CryptoRngCore,
        device: &KeyPair,
        name: Option<String>,
        now_ms: u64,
    ) -> Self {
        let mut entropy = [0u8; 32];
        rng.fill_bytes(&mut entropy);
        // 32 bytes is a valid BIP39 entropy length (24 words), so this cannot fail.
        let mnemonic = Mnemonic::from_entropy(&entropy)
            .unwrap_or_else(|_| unreachable!("32-byte entropy is valid"));
        let identity = key_from_mnemonic(&mnemonic);
        let identity_key = identity.public();
        let device_credential = authorize_device(&identity, device.public(), now_ms);
        let signer = Signer::for_device(identity_key, device.clone(), device_credential.clone());
        let profile = signer.issue(
            Subject {
                id: identity_key,
                assertion: Assertion::IdentityProfile {
                    display_name: name.clone(),
                },
            },
            now_ms,
            vec![device_credential.id()],
        );
        NewIdentity {
            record: IdentityRecord {
                identity_secret: identity.secret_bytes(),
                name,
                device_credential,
                profile,
            },
            seed_phrase: mnemonic.to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn phrase_recovers_the_identity_and_credentials_verify() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let device = DeviceRecord::generate(&mut rng).key_pair();
        let created = NewIdentity::create(&mut rng, &device, Some("Ada".into()), 1000);
        assert_eq!(created.seed_phrase.split_whitespace().count(), 24);
        let recovered = identity_from_phrase(&created.seed_phrase).unwrap();
        assert_eq!(recovered.public(), created.record.identity_key());
        assert_eq!(created.record.device_credential.verify(), Ok(()));
        assert_eq!(created.record.profile.verify(), Ok(()));
        assert_eq!(created.record.profile.issuer, created.record.identity_key());
        // A different phrase gives a different identity; garbage is rejected.
        let other = NewIdentity::create(&mut rng, &device, None, 1000);
        assert_ne!(other.record.identity_key(), created.record.identity_key());
        assert!(identity_from_phrase("not a phrase").is_err());
        let twelve = created
            .seed_phrase
            .split_whitespace()
            .take(12)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(identity_from_phrase(&twelve).is_err());
    }
}
