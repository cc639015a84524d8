//! Everything random that quinn needs, derived from one 32-byte seed so that an endpoint
//! draws no OS randomness of its own (determinism rule 2).
//!
//! Contract: each use gets its own key, derived with `blake3::derive_key` under a
//! distinct context string, so no two uses share key material. Same seed, same keys,
//! same connection ids in the same order.

use std::sync::Arc;

use quinn::crypto::{HandshakeTokenKey, HmacKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Length of the connection ids we issue: 4 bytes (quinn's default is 8). Ids only tell a
/// node's own connections apart (a handful per peer), and every short-header packet
/// carries one, so the 4 bytes saved count on a stream of small blocks.
const CID_LEN: usize = 4;

fn derive(context: &str, seed: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key(context, seed)
}

/// Seed of quinn's endpoint RNG (`EndpointConfig::rng_seed`).
pub(crate) fn endpoint_rng_seed(seed: &[u8; 32]) -> [u8; 32] {
    derive("echo-rs transport 2025 quinn endpoint rng", seed)
}

/// Key that authenticates stateless resets (HMAC-SHA256).
pub(crate) fn reset_key(seed: &[u8; 32]) -> Arc<dyn HmacKey> {
    let key = derive("echo-rs transport 2025 stateless reset key", seed);
    Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key))
}

/// Key that protects retry / address-validation tokens (HKDF-SHA256 master key).
pub(crate) fn token_key(seed: &[u8; 32]) -> Arc<dyn HandshakeTokenKey> {
    let key = derive("echo-rs transport 2025 handshake token key", seed);
    Arc::new(ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(&key))
}

/// Seed of the connection-id generator.
pub(crate) fn cid_seed(seed: &[u8; 32]) -> [u8; 32] {
    derive("echo-rs transport 2025 connection ids", seed)
}

/// Issues random 8-byte connection ids from a seeded ChaCha20 stream (quinn's own
/// generators read the thread RNG).
pub(crate) struct SeededCidGenerator {
    rng: ChaCha20Rng,
}

impl SeededCidGenerator {
    pub(crate) fn new(seed: [u8; 32]) -> Self {
        SeededCidGenerator {
            rng: ChaCha20Rng::from_seed(seed),
        }
    }
}

impl quinn::ConnectionIdGenerator for SeededCidGenerator {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        let mut bytes = [0u8; CID_LEN];
        self.rng.fill_bytes(&mut bytes);
        quinn::ConnectionId::new(&bytes)
    }

    fn cid_len(&self) -> usize {
        CID_LEN
    }

    fn cid_lifetime(&self) -> Option<std::time::Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quinn::ConnectionIdGenerator;

    fn cids(seed: [u8; 32]) -> Vec<Vec<u8>> {
        let mut generator = SeededCidGenerator::new(cid_seed(&seed));
        (0..4).map(|_| generator.generate_cid().to_vec()).collect()
    }

    #[test]
    fn same_seed_same_ids_other_seed_other_ids() {
        assert_eq!(cids([1; 32]), cids([1; 32]));
        assert_ne!(cids([1; 32]), cids([2; 32]));
        let ids = cids([1; 32]);
        assert!(ids.iter().all(|id| id.len() == CID_LEN));
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn derived_keys_are_distinct() {
        let seed = [7; 32];
        assert_ne!(endpoint_rng_seed(&seed), cid_seed(&seed));
        assert_ne!(endpoint_rng_seed(&seed), seed);
        let reset = reset_key(&seed);
        let mut a = [0u8; 32];
        reset.sign(b"token", &mut a);
        let mut b = [0u8; 32];
        reset_key(&seed).sign(b"token", &mut b);
        assert_eq!(a, b);
        assert!(reset.verify(b"token", &a).is_ok());
        assert!(reset_key(&[8; 32]).verify(b"token", &a).is_err());
    }
}
