//! [`VerifiedCredentials`]: a space's memory of the credentials whose signatures and device
//! chains were already checked, so that a credential is verified once however many times it
//! is judged (a peer's batch is planned on a trial copy, then applied; its blocks are judged
//! both times). Keyed by the hash of the whole encoded credential, signatures included, so
//! a copy with another signature is checked on its own. Bounded: forgotten wholesale past
//! [`VERIFIED_LIMIT`] (a check then simply runs again). Remembers each credential's
//! [`DeviceChain`] too, so that a check on the devices it rests on (revocation) costs no
//! signature check either.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Credential, CredentialError, DeviceChain};
use crate::types::{encode, Hash};

/// Most credentials remembered as verified.
pub const VERIFIED_LIMIT: usize = 4096;

/// See the module docs. Clones share the memory.
#[derive(Debug, Clone, Default)]
pub struct VerifiedCredentials {
    seen: Arc<Mutex<BTreeMap<Hash, DeviceChain>>>,
    /// Signature checks actually run (for tests and counters).
    checks: Arc<AtomicU64>,
}

impl VerifiedCredentials {
    /// [`Credential::verify_chain`], unless this very credential passed it before: the
    /// devices it rests on.
    pub fn verify(&self, credential: &Credential) -> Result<DeviceChain, CredentialError> {
        let Ok(bytes) = encode(credential) else {
            self.checks.fetch_add(1, Ordering::Relaxed);
            return credential.verify_chain();
        };
        let key = Hash::of(&bytes);
        if let Some(chain) = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(chain.clone());
        }
        self.checks.fetch_add(1, Ordering::Relaxed);
        let chain = credential.verify_chain()?;
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= VERIFIED_LIMIT {
            seen.clear();
        }
        seen.insert(key, chain.clone());
        Ok(chain)
    }

    /// How many signature checks ran.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::credentials::{Assertion, Role, Signer, Subject};
    use crate::types::KeyPair;

    #[test]
    fn a_credential_is_checked_once_and_a_forged_copy_on_its_own() {
        let key = KeyPair::from_secret([3; 32]);
        let c = Signer::direct(key.clone()).issue(
            Subject {
                id: KeyPair::from_secret([4; 32]).public(),
                assertion: Assertion::SpaceMember {
                    space_key: key.public(),
                    role: Role::Editor,
                },
            },
            1,
            vec![],
        );
        let v = VerifiedCredentials::default();
        let copy = v.clone();
        assert_eq!(v.verify(&c), Ok(DeviceChain::default()));
        assert_eq!(
            copy.verify(&c),
            Ok(DeviceChain::default()),
            "a clone shares the memory"
        );
        assert_eq!(v.checks(), 1);
        let mut forged = c.clone();
        forged.proof.signature = Signer::direct(KeyPair::from_secret([5; 32]))
            .issue(c.subject.clone(), 1, vec![])
            .proof
            .signature;
        assert!(v.verify(&forged).is_err());
        assert!(
            v.verify(&forged).is_err(),
            "a failed check is not remembered"
        );
        assert_eq!(v.checks(), 3);
    }

    #[test]
    fn a_remembered_credential_still_names_the_devices_it_rests_on() {
        let identity = KeyPair::from_secret([3; 32]);
        let device = KeyPair::from_secret([4; 32]);
        let auth = crate::credentials::authorize_device(&identity, device.public(), 1);
        let c = Signer::for_device(identity.public(), device.clone(), auth).issue(
            Subject {
                id: identity.public(),
                assertion: Assertion::IdentityProfile { display_name: None },
            },
            2,
            vec![],
        );
        let v = VerifiedCredentials::default();
        assert_eq!(v.verify(&c).unwrap().devices(), [device.public()]);
        assert_eq!(v.verify(&c).unwrap().devices(), [device.public()]);
        assert_eq!(v.checks(), 1);
    }
}
