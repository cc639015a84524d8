//! Credential types, signing and verification.
//!
//! A credential's `id` is the blake3 hash of its signed payload. When the issuer is not the
//! signer, `proof.chain` must hold an `AuthorizedDevice { identity = issuer, device =
//! signer }` credential that itself verifies: that is how a device signs for its identity
//! (the walk and its rules are in `chain.rs`).
//!
//! Decoding bounds the nesting of chains ([`MAX_DECODED_CHAINS`]): a forged credential
//! nesting thousands of chains would otherwise recurse in the decoder until the stack
//! overflows, which aborts the process (fuzzing finding, see docs/fuzzing.md).

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::chain::MAX_CHAIN_LINKS;
use crate::types::{encode, Hash, KeyPair, PublicKey, Signature};

/// Most chains nested inside one decoded credential; deeper input is a decoding error. Above
/// [`MAX_CHAIN_LINKS`], so that every credential that could verify still decodes (and one
/// chain too long gets its own clear error from verification).
pub const MAX_DECODED_CHAINS: usize = 16;
const _: () = assert!(MAX_DECODED_CHAINS > MAX_CHAIN_LINKS);

/// A member's role in a space, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// The creator: an admin that cannot be removed or demoted.
    Owner,
    Admin,
    Editor,
    Reader,
    Removed,
}

impl Role {
    /// May issue membership credentials.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
    /// May write data (mutations).
    pub fn can_edit(self) -> bool {
        matches!(self, Role::Owner | Role::Admin | Role::Editor)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Reader => "reader",
            Role::Removed => "removed",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a feed carries: credentials (control) or mutations (data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Designation {
    Control,
    Data,
}

impl Designation {
    pub fn as_str(self) -> &'static str {
        match self {
            Designation::Control => "control",
            Designation::Data => "data",
        }
    }
}

/// The statement a credential makes about its subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assertion {
    /// Subject = the space key. Issued and signed by the space key.
    SpaceGenesis { space_key: PublicKey },
    /// Subject = the member's identity key.
    SpaceMember { space_key: PublicKey, role: Role },
    /// Subject = the feed key.
    AdmittedFeed {
        space_key: PublicKey,
        identity_key: PublicKey,
        device_key: PublicKey,
        designation: Designation,
    },
    /// Subject = the device key.
    AuthorizedDevice {
        identity_key: PublicKey,
        device_key: PublicKey,
    },
    /// Subject = the identity key.
    IdentityProfile { display_name: Option<String> },
    /// Subject = the revoked device's key. Issued by its identity (signed by the identity
    /// key or by another device of it): from `cut` on, nothing that device signs counts (the
    /// rule is in `revocation.rs`). `cut` holds, per feed of the device in this space, the
    /// length the revoker held; a feed it does not name is cut at 0.
    RevokeDevice {
        identity_key: PublicKey,
        device_key: PublicKey,
        cut: Vec<(PublicKey, u64)>,
    },
    /// Subject = the device key. Issued by its identity and signed by that device itself (a
    /// device names only itself): the name `device list` shows for it. The latest one of a
    /// device counts. Appended after `RevokeDevice`, so that stored credentials still decode.
    DeviceProfile { display_name: String },
    /// Subject = the revoked device's key. Issued by a member of another identity, on its
    /// own control feed: a copy of `revocation`, a `RevokeDevice` another identity signed
    /// (in another space), so that a space none of that identity's live devices holds learns
    /// of it (the rule is in `revocation.rs`: it cuts the device at 0, unless a revocation of
    /// its own identity in this space says where). The relayer chooses nothing but whether
    /// to relay: the cut and the signature are the revoker's. Appended after
    /// `DeviceProfile`, so that stored credentials still decode.
    RelayedRevocation {
        #[serde(deserialize_with = "bounded_chain::deserialize_boxed")]
        revocation: Box<Credential>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub id: PublicKey,
    pub assertion: Assertion,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    pub signer: PublicKey,
    pub signature: Signature,
    /// `AuthorizedDevice` credential when `signer != issuer`.
    #[serde(default, deserialize_with = "bounded_chain::deserialize")]
    pub chain: Option<Box<Credential>>,
}

/// Deserializes `Proof::chain` and a relayed revocation, refusing more than
/// [`MAX_DECODED_CHAINS`] credentials nested in one another (both ways count together). The
/// nesting in progress is counted per thread (a decoder runs on one thread, start to end).
mod bounded_chain {
    use std::cell::Cell;

    use serde::{de::Error, Deserialize, Deserializer};

    use super::{Credential, MAX_DECODED_CHAINS};

    thread_local! {
        static NESTED: Cell<usize> = const { Cell::new(0) };
    }

    /// Restores the count when a nested chain is done (or failed).
    struct Leave(usize);

    impl Drop for Leave {
        fn drop(&mut self) {
            NESTED.with(|n| n.set(self.0));
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Box<Credential>>, D::Error> {
        nested(d)
    }

    pub fn deserialize_boxed<'de, D: Deserializer<'de>>(d: D) -> Result<Box<Credential>, D::Error> {
        nested(d)
    }

    fn nested<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
        let outer = NESTED.with(Cell::get);
        if outer > MAX_DECODED_CHAINS {
            return Err(D::Error::custom(format!(
                "credential chains nested more than {MAX_DECODED_CHAINS} deep"
            )));
        }
        NESTED.with(|n| n.set(outer + 1));
        let _leave = Leave(outer);
        T::deserialize(d)
    }
}

/// A signed assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub issuer: PublicKey,
    /// Milliseconds since the Unix epoch, from the issuer's clock.
    pub issuance_date: u64,
    pub subject: Subject,
    pub parent_ids: Vec<Hash>,
    pub proof: Proof,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error("credential signature by {0} does not verify")]
    BadSignature(PublicKey),
    #[error("credential issued by {issuer} but signed by {signer} without a valid device chain")]
    MissingChain {
        issuer: PublicKey,
        signer: PublicKey,
    },
    #[error("credential signed by its issuer {0} carries a device chain it must not have")]
    UnexpectedChain(PublicKey),
    #[error("device chain link {link} is not an AuthorizedDevice credential")]
    NotADeviceAuthorization { link: usize },
    #[error(
        "device chain link {link} is issued for {found}, not for the identity {expected} \
         the credential is issued by"
    )]
    WrongIssuer {
        link: usize,
        expected: PublicKey,
        found: PublicKey,
    },
    #[error("device chain link {link} authorises device {authorized}, but {signer} signed")]
    NotTheSigner {
        link: usize,
        authorized: PublicKey,
        signer: PublicKey,
    },
    #[error("device chain is longer than {max} links")]
    ChainTooLong { max: usize },
    #[error("device {0} appears twice in one device chain")]
    RepeatedDevice(PublicKey),
    #[error("credential cannot be encoded: {0}")]
    Encoding(String),
}

/// Who signs: a key pair, and the chain that lets it sign for `issuer` when they differ.
#[derive(Debug, Clone)]
pub struct Signer {
    pub issuer: PublicKey,
    pub key: KeyPair,
    pub chain: Option<Credential>,
}

/// The `AuthorizedDevice { identity -> device }` credential, signed by the identity key:
/// with it as `proof.chain`, the device signs for the identity.
pub fn authorize_device(identity: &KeyPair, device: PublicKey, now_ms: u64) -> Credential {
    Signer::direct(identity.clone()).authorize_device(device, now_ms)
}

impl Signer {
    /// `device` signing for `identity_key`, carrying its `AuthorizedDevice` credential.
    pub fn for_device(identity_key: PublicKey, device: KeyPair, authorization: Credential) -> Self {
        Signer {
            issuer: identity_key,
            key: device,
            chain: Some(authorization),
        }
    }

    /// A key that signs for itself.
    pub fn direct(key: KeyPair) -> Self {
        Signer {
            issuer: key.public(),
            key,
            chain: None,
        }
    }

    /// `AuthorizedDevice { identity = self.issuer -> device }`, signed by this signer: by
    /// the identity key (a direct signer), or by an authorised device carrying its own chain,
    /// which then becomes the next link of `device`'s chain.
    pub fn authorize_device(&self, device: PublicKey, now_ms: u64) -> Credential {
        self.issue(
            Subject {
                id: device,
                assertion: Assertion::AuthorizedDevice {
                    identity_key: self.issuer,
                    device_key: device,
                },
            },
            now_ms,
            vec![],
        )
    }

    /// Issues a credential about `subject`.
    pub fn issue(&self, subject: Subject, issuance_date: u64, parent_ids: Vec<Hash>) -> Credential {
        let signer = self.key.public();
        let payload = signing_payload(&self.issuer, issuance_date, &subject, &parent_ids, &signer);
        Credential {
            issuer: self.issuer,
            issuance_date,
            subject,
            parent_ids,
            proof: Proof {
                signer,
                signature: self.key.sign(&payload),
                chain: self.chain.clone().map(Box::new),
            },
        }
    }
}

#[derive(Serialize)]
struct SigningPayload<'a> {
    domain: &'static str,
    issuer: &'a PublicKey,
    issuance_date: u64,
    subject: &'a Subject,
    parent_ids: &'a [Hash],
    signer: &'a PublicKey,
}

fn signing_payload(
    issuer: &PublicKey,
    issuance_date: u64,
    subject: &Subject,
    parent_ids: &[Hash],
    signer: &PublicKey,
) -> Vec<u8> {
    let payload = SigningPayload {
        domain: "echo-rs/credential/v1",
        issuer,
        issuance_date,
        subject,
        parent_ids,
        signer,
    };
    // Encoding a struct of keys, integers and bounded strings cannot fail; an empty payload
    // would simply never verify.
    encode(&payload).unwrap_or_default()
}

impl Credential {
    fn payload(&self) -> Vec<u8> {
        signing_payload(
            &self.issuer,
            self.issuance_date,
            &self.subject,
            &self.parent_ids,
            &self.proof.signer,
        )
    }

    /// The credential id: hash of the signed payload.
    pub fn id(&self) -> Hash {
        Hash::of(&self.payload())
    }

    /// Checks the signature and, when the signer is not the issuer, the device chain
    /// ([`Credential::verify_chain`], which also says which devices it rests on).
    pub fn verify(&self) -> Result<(), CredentialError> {
        self.verify_chain().map(|_| ())
    }

    /// This credential's own signature, nothing else.
    pub(super) fn check_signature(&self) -> Result<(), CredentialError> {
        self.proof
            .signer
            .verify(&self.payload(), &self.proof.signature)
            .map_err(|_| CredentialError::BadSignature(self.proof.signer))
    }

    /// The device that actually signed (the signer), for revocation checks.
    pub fn signing_device(&self) -> PublicKey {
        self.proof.signer
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }

    fn device_signer(rng: &mut rand_chacha::ChaCha20Rng) -> (KeyPair, KeyPair, Signer) {
        let identity = KeyPair::generate(rng);
        let device = KeyPair::generate(rng);
        let auth = authorize_device(&identity, device.public(), 1);
        let signer = Signer::for_device(identity.public(), device.clone(), auth);
        (identity, device, signer)
    }

    fn profile(id: PublicKey) -> Subject {
        Subject {
            id,
            assertion: Assertion::IdentityProfile {
                display_name: Some("a".into()),
            },
        }
    }

    #[test]
    fn direct_and_chained_credentials_verify() {
        let mut rng = rng();
        let key = KeyPair::generate(&mut rng);
        let c = Signer::direct(key.clone()).issue(profile(key.public()), 5, vec![]);
        assert_eq!(c.verify(), Ok(()));
        let (identity, _device, signer) = device_signer(&mut rng);
        let c = signer.issue(profile(identity.public()), 6, vec![]);
        assert_eq!(c.verify(), Ok(()));
        assert_ne!(
            c.id(),
            Signer::direct(identity)
                .issue(profile(c.issuer), 6, vec![])
                .id()
        );
    }

    #[test]
    fn tampering_is_detected() {
        let mut rng = rng();
        let (identity, _device, signer) = device_signer(&mut rng);
        let good = signer.issue(profile(identity.public()), 6, vec![]);

        let mut c = good.clone();
        c.issuance_date = 7;
        assert!(matches!(c.verify(), Err(CredentialError::BadSignature(_))));

        let mut c = good.clone();
        c.proof.chain = None;
        assert!(matches!(
            c.verify(),
            Err(CredentialError::MissingChain { .. })
        ));

        // A chain for a different device does not authorise this signer.
        let (_, _, other) = device_signer(&mut rng);
        let mut c = good.clone();
        c.proof.chain = other.chain.clone().map(Box::new);
        assert!(matches!(
            c.verify(),
            Err(CredentialError::WrongIssuer { .. })
        ));

        // A forged chain (device signs its own authorisation) fails.
        let stranger = KeyPair::generate(&mut rng);
        let forged_auth = Signer {
            issuer: identity.public(),
            key: stranger.clone(),
            chain: None,
        }
        .issue(
            Subject {
                id: stranger.public(),
                assertion: Assertion::AuthorizedDevice {
                    identity_key: identity.public(),
                    device_key: stranger.public(),
                },
            },
            1,
            vec![],
        );
        let forged = Signer {
            issuer: identity.public(),
            key: stranger,
            chain: Some(forged_auth),
        }
        .issue(profile(identity.public()), 6, vec![]);
        assert!(forged.verify().is_err());
    }
}
