//! Key derivation and the stored identity records.
//!
//! The identity key is derived from a 24-word BIP39 phrase: BIP39 seed (empty passphrase)
//! -> `blake3::derive_key("echo-rs identity key v1", seed)` -> ed25519 secret. The same
//! phrase always gives the same identity, so it recovers the identity on a new device.
//!
//! Contract: the identity secret exists only inside [`NewIdentity::create`] and
//! [`recover_identity`]. There it signs this device's `AuthorizedDevice` and the identity
//! profile, and it is dropped (wiped) before they return. What the device stores
//! ([`IdentityRecord`]) holds the identity's public key and those two credentials; from then
//! on the device signs for the identity with its chain ([`IdentityRecord::signer`]).
//!
//! The identity space (HALO) is keyed by `blake3::derive_key("echo-rs halo space key v1",
//! identity secret)`: derived in the same two places, so that `identity create` can sign
//! its genesis and `identity recover` finds the same space again, and dropped with the
//! identity secret.

use bip39::{Language, Mnemonic};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::credentials::{
    authorize_device, identity_space_genesis, Assertion, Credential, Signer, Subject,
};
use crate::types::{KeyPair, PublicKey};

/// Words in a seed phrase (256 bits of entropy).
pub const SEED_PHRASE_WORDS: usize = 24;

const IDENTITY_KDF_CONTEXT: &str = "echo-rs identity key v1";

const HALO_SPACE_KDF_CONTEXT: &str = "echo-rs halo space key v1";
const HALO_GENESIS_FEED_KDF_CONTEXT: &str = "echo-rs halo genesis feed v1";
const HALO_GENESIS_DATA_KDF_CONTEXT: &str = "echo-rs halo genesis data feed v1";

/// Why a seed phrase was refused. Never carries the phrase or any of its words.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum PhraseError {
    #[error(
        "the seed phrase has {got} words; an echo-rs seed phrase has exactly \
         {SEED_PHRASE_WORDS} (the words `identity create` showed, separated by spaces)"
    )]
    WrongWordCount { got: usize },
    #[error("word {position} of the seed phrase is not a BIP39 English word (check its spelling)")]
    UnknownWord { position: usize },
    #[error(
        "the seed phrase's checksum does not match: every word is a BIP39 word, but one is \
         wrong or out of order"
    )]
    BadChecksum,
    #[error("the seed phrase is not valid BIP39: {0}")]
    Invalid(String),
}

impl PhraseError {
    /// A stable machine-readable code, e.g. `wrong_word_count`.
    pub fn code(&self) -> &'static str {
        match self {
            PhraseError::WrongWordCount { .. } => "wrong_word_count",
            PhraseError::UnknownWord { .. } => "unknown_word",
            PhraseError::BadChecksum => "bad_checksum",
            PhraseError::Invalid(_) => "bad_seed_phrase",
        }
    }
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

/// The identity as this device stores it: no secret of the identity's.
///
/// Its encoding has the layout of the records written before the secret left the store
/// (32 bytes first), so a reader tells them apart by their keys (`migrate.rs`):
/// `identity_key` is always `device_credential.issuer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecord {
    pub identity_key: PublicKey,
    pub name: Option<String>,
    /// AuthorizedDevice { identity -> this device }, with its chain (signed by the identity
    /// key, or by an authorised device of the identity).
    pub device_credential: Credential,
    /// IdentityProfile { display name }, signed by this device for the identity.
    pub profile: Credential,
}

impl IdentityRecord {
    pub fn identity_key(&self) -> PublicKey {
        self.identity_key
    }

    /// This device, signing for the identity.
    pub fn signer(&self, device: &KeyPair) -> Signer {
        Signer::for_device(
            self.identity_key,
            device.clone(),
            self.device_credential.clone(),
        )
    }
}

/// A freshly created identity and the phrase that recovers it (shown once).
pub struct NewIdentity {
    pub record: IdentityRecord,
    pub seed_phrase: Zeroizing<String>,
    /// The identity space's genesis.
    pub halo: HaloGenesis,
}

/// An identity recovered on this device, and its identity space's genesis (the same as at
/// creation: a device that finds no other device of the identity re-founds the very space).
pub struct RecoveredRecord {
    pub record: IdentityRecord,
    pub halo: HaloGenesis,
}

/// The identity space's key and genesis, all derived from the identity secret, so that the
/// seed phrase makes the same bytes every time (`credentials::identity_space_genesis`): four
/// credentials on a genesis feed of their own, whose key pair is here to sign their blocks
/// and is dropped (wiped) with this value, never stored.
pub struct HaloGenesis {
    pub space_key: PublicKey,
    pub feed: KeyPair,
    pub credentials: Vec<Credential>,
}

/// The [`HaloGenesis`] of an identity key pair.
fn halo_genesis_of(identity: &KeyPair) -> HaloGenesis {
    let secret = Zeroizing::new(identity.secret_bytes());
    let derive = |context: &str| {
        KeyPair::from_secret(*Zeroizing::new(blake3::derive_key(context, &*secret)))
    };
    let space = derive(HALO_SPACE_KDF_CONTEXT);
    let feed = derive(HALO_GENESIS_FEED_KDF_CONTEXT);
    let data = derive(HALO_GENESIS_DATA_KDF_CONTEXT);
    let credentials = identity_space_genesis(&space, identity, feed.public(), data.public());
    HaloGenesis {
        space_key: space.public(),
        feed,
        credentials,
    }
}

/// Parses a seed phrase: exactly [`SEED_PHRASE_WORDS`] BIP39 English words (any case,
/// any whitespace between them) with a valid checksum.
pub fn parse_phrase(phrase: &str) -> Result<Mnemonic, PhraseError> {
    let normalized = Zeroizing::new(
        phrase
            .split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" "),
    );
    let got = normalized.split(' ').filter(|w| !w.is_empty()).count();
    if got != SEED_PHRASE_WORDS {
        return Err(PhraseError::WrongWordCount { got });
    }
    Mnemonic::parse_in_normalized(Language::English, &normalized).map_err(|e| match e {
        bip39::Error::UnknownWord(i) => PhraseError::UnknownWord { position: i + 1 },
        bip39::Error::InvalidChecksum => PhraseError::BadChecksum,
        bip39::Error::BadWordCount(n) => PhraseError::WrongWordCount { got: n },
        other => PhraseError::Invalid(other.to_string()),
    })
}

/// Derives the identity key pair from a seed phrase. The key pair wipes its secret when
/// dropped; keep it no longer than the signing it is for.
pub fn identity_from_phrase(phrase: &str) -> Result<KeyPair, PhraseError> {
    Ok(key_from_mnemonic(&parse_phrase(phrase)?))
}

fn key_from_mnemonic(mnemonic: &Mnemonic) -> KeyPair {
    let seed = Zeroizing::new(mnemonic.to_seed(""));
    let secret = Zeroizing::new(blake3::derive_key(IDENTITY_KDF_CONTEXT, &*seed));
    KeyPair::from_secret(*secret)
}

/// Signs this device into the identity: `AuthorizedDevice { identity -> device }` and the
/// identity profile. Consumes the identity key pair, which is wiped when this returns.
fn found_record(
    identity: KeyPair,
    device: &KeyPair,
    name: Option<String>,
    now_ms: u64,
) -> IdentityRecord {
    let identity_key = identity.public();
    let device_credential = authorize_device(&identity, device.public(), now_ms);
    drop(identity);
    adopted_record(identity_key, device, device_credential, name, now_ms)
}

/// The record of `device` in the identity `identity_key`, authorised by `device_credential`
/// (by the identity key, or by another device of it): this device signs the profile.
pub(super) fn adopted_record(
    identity_key: PublicKey,
    device: &KeyPair,
    device_credential: Credential,
    name: Option<String>,
    now_ms: u64,
) -> IdentityRecord {
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
    IdentityRecord {
        identity_key,
        name,
        device_credential,
        profile,
    }
}

impl NewIdentity {
    /// Creates an identity for `device`: a new phrase, its key (used for the device and
    /// profile credentials, then wiped), and the record to store.
    pub fn create(
        rng: &mut impl CryptoRngCore,
        device: &KeyPair,
        name: Option<String>,
        now_ms: u64,
    ) -> Self {
        let mut entropy = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *entropy);
        // 32 bytes is a valid BIP39 entropy length (24 words), so this cannot fail.
        let mnemonic = Mnemonic::from_entropy(&*entropy)
            .unwrap_or_else(|_| unreachable!("32-byte entropy is valid"));
        let identity = key_from_mnemonic(&mnemonic);
        let halo = halo_genesis_of(&identity);
        NewIdentity {
            record: found_record(identity, device, name, now_ms),
            seed_phrase: Zeroizing::new(mnemonic.to_string()),
            halo,
        }
    }
}

/// Recovers the identity of `phrase` on `device` (a new device): the same identity key, and
/// this device authorised by it, and the key of the identity space to join. The identity
/// key is wiped before this returns.
pub fn recover_identity(
    phrase: &str,
    device: &KeyPair,
    name: Option<String>,
    now_ms: u64,
) -> Result<RecoveredRecord, PhraseError> {
    let identity = identity_from_phrase(phrase)?;
    let halo = halo_genesis_of(&identity);
    Ok(RecoveredRecord {
        record: found_record(identity, device, name, now_ms),
        halo,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn created() -> (KeyPair, NewIdentity) {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let device = DeviceRecord::generate(&mut rng).key_pair();
        let created = NewIdentity::create(&mut rng, &device, Some("Ada".into()), 1000);
        (device, created)
    }

    #[test]
    fn phrase_recovers_the_identity_and_credentials_verify() {
        let (_, created) = created();
        assert_eq!(created.seed_phrase.split_whitespace().count(), 24);
        let recovered = identity_from_phrase(&created.seed_phrase).unwrap();
        assert_eq!(recovered.public(), created.record.identity_key());
        assert_eq!(
            created.record.identity_key,
            created.record.device_credential.issuer
        );
        assert_eq!(created.record.device_credential.verify(), Ok(()));
        assert_eq!(created.record.profile.verify(), Ok(()));
        assert_eq!(created.record.profile.issuer, created.record.identity_key());
    }

    #[test]
    fn recover_gives_the_same_identity_key_and_authorizes_the_new_device() {
        let (old_device, created) = created();
        let new_device = KeyPair::from_secret([42; 32]);
        let recovered = recover_identity(&created.seed_phrase, &new_device, None, 2000).unwrap();
        let record = recovered.record;
        assert_eq!(record.identity_key, created.record.identity_key);
        // The same identity space: recovery finds what creation founded.
        assert_eq!(recovered.halo.space_key, created.halo.space_key);
        assert_ne!(recovered.halo.space_key, record.identity_key);
        // And the same genesis, byte for byte: a re-founded identity space is the same one.
        assert_eq!(recovered.halo.feed.public(), created.halo.feed.public());
        assert_eq!(recovered.halo.credentials, created.halo.credentials);
        assert_eq!(recovered.halo.credentials.len(), 4);
        assert_ne!(new_device.public(), old_device.public());
        // The new device is authorised by the identity key itself (a chain of one link).
        let auth = record
            .device_credential
            .verify_device_authorization(Some(record.identity_key), new_device.public())
            .unwrap();
        assert_eq!(auth.devices, [new_device.public()]);
        assert_eq!(record.device_credential.proof.signer, record.identity_key);
        // It signs for the identity.
        let c = record.signer(&new_device).issue(
            Subject {
                id: record.identity_key,
                assertion: Assertion::IdentityProfile { display_name: None },
            },
            3000,
            vec![],
        );
        assert_eq!(c.verify_chain().unwrap().devices(), [new_device.public()]);
    }

    #[test]
    fn a_different_phrase_gives_a_different_identity() {
        let (device, created) = created();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(10);
        let other = NewIdentity::create(&mut rng, &device, None, 1000);
        assert_ne!(other.record.identity_key, created.record.identity_key);
        assert_ne!(other.halo.space_key, created.halo.space_key);
        assert_ne!(other.halo.feed.public(), created.halo.feed.public());
    }

    #[test]
    fn wrong_word_count_is_refused_with_the_count() {
        let (_, created) = created();
        let twelve = created
            .seed_phrase
            .split_whitespace()
            .take(12)
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            identity_from_phrase(&twelve).unwrap_err(),
            PhraseError::WrongWordCount { got: 12 }
        );
        let longer = format!("{} abandon", created.seed_phrase.as_str());
        assert_eq!(
            parse_phrase(&longer).unwrap_err(),
            PhraseError::WrongWordCount { got: 25 }
        );
        assert_eq!(
            parse_phrase("").unwrap_err(),
            PhraseError::WrongWordCount { got: 0 }
        );
    }

    #[test]
    fn unknown_word_is_refused_with_its_position() {
        let (_, created) = created();
        let mut words: Vec<String> = created
            .seed_phrase
            .split_whitespace()
            .map(str::to_string)
            .collect();
        words[4] = "notaword".into();
        let err = parse_phrase(&words.join(" ")).unwrap_err();
        assert_eq!(err, PhraseError::UnknownWord { position: 5 });
        assert!(!err.to_string().contains("notaword"), "{err}");
    }

    #[test]
    fn bad_checksum_is_refused() {
        let (_, created) = created();
        let mut words: Vec<&str> = created.seed_phrase.split_whitespace().collect();
        words.swap(0, 1);
        if words[0] == words[1] {
            words.swap(0, 2);
        }
        // Swapping two words keeps every word valid; the checksum (the last word's low
        // bits) then fails for all but a rare phrase, so swap until it does.
        let mut phrase = words.join(" ");
        let mut i = 2;
        while parse_phrase(&phrase).is_ok() {
            words.swap(0, i);
            phrase = words.join(" ");
            i += 1;
        }
        assert_eq!(parse_phrase(&phrase).unwrap_err(), PhraseError::BadChecksum);
    }

    proptest::proptest! {
        /// Bad input never panics: arbitrary text, and 24 words drawn from the word list
        /// with some replaced by arbitrary text, give a phrase or an error.
        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,400}") {
            let _ = parse_phrase(&text);
        }

        #[test]
        fn parsing_near_phrases_never_panics(
            picks in proptest::collection::vec((0usize..2048, proptest::option::of("\\PC{0,12}")), 20..28)
        ) {
            let list = Language::English.word_list();
            let words: Vec<String> = picks
                .into_iter()
                .map(|(i, other)| other.unwrap_or_else(|| list[i].to_string()))
                .collect();
            match parse_phrase(&words.join(" ")) {
                Ok(m) => proptest::prop_assert_eq!(m.word_count(), SEED_PHRASE_WORDS),
                Err(e) => proptest::prop_assert!(!e.to_string().is_empty()),
            }
        }
    }

    #[test]
    fn phrases_are_read_in_any_case_and_spacing() {
        let (_, created) = created();
        let shouted = created
            .seed_phrase
            .split_whitespace()
            .map(str::to_uppercase)
            .collect::<Vec<_>>()
            .join(" \t ");
        assert_eq!(
            identity_from_phrase(&format!("  {shouted}\n"))
                .unwrap()
                .public(),
            created.record.identity_key
        );
    }
}
