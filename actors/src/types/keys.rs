//! ed25519 keys and signatures, and blake3 hashes, as small `Copy` types with hex text
//! forms. Verification is strict (`verify_strict`: no malleable or small-order keys).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("`{0}` is not a key: expected 64 hex characters")]
    BadHex(String),
    #[error("not a valid ed25519 public key")]
    BadKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error(
        "a small-order (weak) ed25519 key: it belongs to no one, since any signature \
         verifies under it; use the key `identity show` prints"
    )]
    WeakKey,
}

/// An ed25519 public key (identity, device, space or feed key).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// First 8 hex characters: for logs and messages.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
    /// Checks a key a user typed in: it must decompress to an ed25519 point and not be of
    /// small order. All-zero bytes do decompress (to a small-order point), so decompression
    /// alone would accept them.
    pub fn check_point(&self) -> Result<(), KeyError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::BadKey)?;
        if key.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(())
    }

    /// Verifies `signature` over `message` by this key.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::BadKey)?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &sig)
            .map_err(|_| KeyError::BadSignature)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.short())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| KeyError::BadHex(truncate(s)))?;
        Ok(PublicKey(bytes))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// An ed25519 key pair. The secret never appears in `Debug` output.
#[derive(Clone)]
pub struct KeyPair(SigningKey);

impl KeyPair {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        KeyPair(SigningKey::generate(rng))
    }
    pub fn from_secret(secret: [u8; 32]) -> Self {
        KeyPair(SigningKey::from_bytes(&secret))
    }
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({})", self.public().short())
    }
}

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}..)", hex::encode(&self.0[..4]))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Signature, E> {
                let arr: [u8; 64] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Signature(arr))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// A blake3 hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub fn of(bytes: &[u8]) -> Self {
        Hash(*blake3::hash(bytes).as_bytes())
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", hex::encode(&self.0[..4]))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn check_point_refuses_weak_and_off_curve_keys() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        assert_eq!(KeyPair::generate(&mut rng).public().check_point(), Ok(()));
        // All zeros and the identity point (y = 1) decompress, to small-order points.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for weak in [[0u8; 32], identity] {
            assert_eq!(PublicKey(weak).check_point(), Err(KeyError::WeakKey));
        }
        let off_curve = (0..=255u8)
            .map(|b| PublicKey([b; 32]))
            .find(|k| VerifyingKey::from_bytes(&k.0).is_err())
            .expect("some repeated byte is not a point");
        assert_eq!(off_curve.check_point(), Err(KeyError::BadKey));
    }

    #[test]
    fn sign_verify_and_hex() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let kp = KeyPair::generate(&mut rng);
        let sig = kp.sign(b"hello");
        assert_eq!(kp.public().verify(b"hello", &sig), Ok(()));
        assert_eq!(
            kp.public().verify(b"hellO", &sig),
            Err(KeyError::BadSignature)
        );
        let other = KeyPair::generate(&mut rng);
        assert_eq!(
            other.public().verify(b"hello", &sig),
            Err(KeyError::BadSignature)
        );
        let parsed: PublicKey = kp.public().to_hex().parse().unwrap();
        assert_eq!(parsed, kp.public());
        assert!("zz".parse::<PublicKey>().is_err());
        assert!(KeyPair::from_secret(kp.secret_bytes()).public() == kp.public());
        let enc = crate::types::encode(&sig).unwrap();
        assert_eq!(crate::types::decode::<Signature>(&enc).unwrap(), sig);
    }
}
