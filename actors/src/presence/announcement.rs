//! A presence announcement: "device D of this space was up at sequence S", signed by D's
//! own device key over the space key, and the frame that carries it on a replication
//! channel (with the sender's estimate of its age, which is not signed).
//!
//! Contract: [`Announcement::sign`] and [`Announcement::verify`] use the same
//! domain-separated bytes (`"echo-rs/presence/v1" || space key || device || seq` big-endian),
//! so an announcement verifies only for the space it was made for and only under the
//! device key it names. Building the bytes cannot fail; verification of any input is total.

use serde::{Deserialize, Serialize};

use crate::types::{KeyError, KeyPair, PublicKey, Signature};

const DOMAIN: &[u8] = b"echo-rs/presence/v1";

/// One device's signed "I am here" for one space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The announcing device (its TLS/device key, which signs).
    pub device: PublicKey,
    /// Strictly increasing per device: the device's wall clock in ms when it announced (or
    /// one more than its previous announcement, whichever is larger), so that it also grows
    /// across restarts of the device.
    pub seq: u64,
    pub signature: Signature,
}

fn signed_bytes(space_key: &PublicKey, device: &PublicKey, seq: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(DOMAIN.len() + 72);
    bytes.extend_from_slice(DOMAIN);
    bytes.extend_from_slice(space_key.as_bytes());
    bytes.extend_from_slice(device.as_bytes());
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes
}

impl Announcement {
    /// Signs an announcement of `device` (the key pair's public key) for `space_key`.
    pub fn sign(space_key: &PublicKey, device: &KeyPair, seq: u64) -> Self {
        let key = device.public();
        Announcement {
            device: key,
            seq,
            signature: device.sign(&signed_bytes(space_key, &key, seq)),
        }
    }

    /// Checks the signature: made by `device` for `space_key` and this seq.
    pub fn verify(&self, space_key: &PublicKey) -> Result<(), KeyError> {
        self.device.verify(
            &signed_bytes(space_key, &self.device, self.seq),
            &self.signature,
        )
    }
}

/// What crosses a replication channel: an announcement and how long ago (ms) the sender
/// heard or made it. `age_ms` is a hint that only shortens how long the receiver counts the
/// device online; a relayer could as well hold the frame back, so it is not signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceFrame {
    pub announcement: Announcement,
    pub age_ms: u32,
}
