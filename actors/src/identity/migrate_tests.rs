//! Loading identity records, and migrating the old format that kept the identity secret.

#![allow(clippy::unwrap_used)]

use std::fs;

use serde::Serialize;

use super::*;
use crate::credentials::{authorize_device, Assertion, Signer, Subject};
use crate::identity::{DeviceRecord, NewIdentity};
use crate::store::MemStore;
use crate::types::PublicKey;

/// The identity record exactly as the code before this migration wrote it.
#[derive(Serialize)]
struct OldIdentityRecord {
    identity_secret: [u8; 32],
    name: Option<String>,
    device_credential: Credential,
    profile: Credential,
}

const SECRET: [u8; 32] = [0x5Eu8; 32];

/// An old record made the old way: identity key pair kept, device authorised by it, profile
/// signed by the device for the identity.
fn old_record(device: &KeyPair) -> OldIdentityRecord {
    let identity = KeyPair::from_secret(SECRET);
    let device_credential = authorize_device(&identity, device.public(), 1000);
    let signer = Signer::for_device(identity.public(), device.clone(), device_credential.clone());
    let profile = signer.issue(
        Subject {
            id: identity.public(),
            assertion: Assertion::IdentityProfile {
                display_name: Some("Ada".into()),
            },
        },
        1000,
        vec![device_credential.id()],
    );
    OldIdentityRecord {
        identity_secret: identity.secret_bytes(),
        name: Some("Ada".into()),
        device_credential,
        profile,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every key and value of a store, concatenated.
fn store_bytes(store: &dyn Store) -> Vec<u8> {
    store
        .scan_prefix(&[])
        .unwrap()
        .into_iter()
        .flat_map(|(k, v)| k.into_iter().chain(v))
        .collect()
}

/// Every file under `dir`, read whole.
fn dir_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(dir_bytes(&path));
        } else {
            out.extend(fs::read(&path).unwrap());
        }
    }
    out
}

fn identity_public() -> PublicKey {
    KeyPair::from_secret(SECRET).public()
}

#[test]
fn an_old_record_is_migrated_on_load_and_its_secret_leaves_the_store() {
    let device = KeyPair::from_secret([7; 32]);
    let old = old_record(&device);
    let store = MemStore::new();
    store.put(&Key::identity(), &encode(&old).unwrap()).unwrap();
    store.put(b"zz-other", b"kept").unwrap();
    store.flush().unwrap();
    assert!(contains(&store_bytes(&store), &SECRET));

    let record = load_identity(&store).unwrap().unwrap();
    assert_eq!(record.identity_key, identity_public());
    assert_eq!(record.name.as_deref(), Some("Ada"));
    assert_eq!(record.device_credential, old.device_credential);
    assert_eq!(record.profile, old.profile);
    assert!(
        !contains(&store_bytes(&store), &SECRET),
        "secret still stored"
    );
    // Durable: a crash right after loading keeps the migrated record.
    store.crash();
    assert!(!contains(&store_bytes(&store), &SECRET));
    // The migrated record loads as it is, and this device still signs for the identity.
    assert_eq!(load_identity(&store).unwrap().unwrap(), record);
    let c = record.signer(&device).issue(
        Subject {
            id: record.identity_key,
            assertion: Assertion::IdentityProfile { display_name: None },
        },
        2000,
        vec![],
    );
    assert_eq!(c.verify_chain().unwrap().devices(), [device.public()]);
    assert_eq!(store.get(b"zz-other").unwrap().unwrap(), b"kept");
}

#[test]
fn a_current_record_loads_without_being_rewritten() {
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(3);
    let device = DeviceRecord::generate(&mut rng).key_pair();
    let created = NewIdentity::create(&mut rng, &device, None, 1);
    let store = MemStore::new();
    store
        .put(&Key::identity(), &encode(&created.record).unwrap())
        .unwrap();
    store.flush().unwrap();
    assert_eq!(load_identity(&store).unwrap().unwrap(), created.record);
    assert_eq!(store.unflushed(), 0, "nothing was written");
    assert!(load_identity(&MemStore::new()).unwrap().is_none());
}

#[test]
fn a_record_whose_key_matches_nothing_is_corrupt() {
    let device = KeyPair::from_secret([7; 32]);
    let mut old = old_record(&device);
    old.identity_secret = [9; 32];
    let store = MemStore::new();
    store.put(&Key::identity(), &encode(&old).unwrap()).unwrap();
    assert!(matches!(
        load_identity(&store),
        Err(IdentityLoadError::Corrupt(_))
    ));
    store.put(&Key::identity(), b"\x01garbage").unwrap();
    assert!(matches!(
        load_identity(&store),
        Err(IdentityLoadError::Corrupt(_))
    ));
}

#[test]
fn an_old_sled_data_dir_is_migrated_and_the_secret_is_gone_from_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let device = KeyPair::from_secret([7; 32]);
    let old = old_record(&device);
    {
        let store = SledStore::open(&path).unwrap();
        store
            .put(
                &Key::device(),
                &encode(&DeviceRecord { secret: [7; 32] }).unwrap(),
            )
            .unwrap();
        store.put(&Key::identity(), &encode(&old).unwrap()).unwrap();
        store.put(b"zz-other", b"kept").unwrap();
        store.flush().unwrap();
    }
    assert!(contains(&dir_bytes(dir.path()), &SECRET));

    let (store, migrated) = open_when_unlocked(&path);
    assert!(migrated);
    assert!(
        !contains(&dir_bytes(dir.path()), &SECRET),
        "the identity secret is still somewhere in the store's files"
    );
    let record = load_identity(&store).unwrap().unwrap();
    assert_eq!(record.identity_key, identity_public());
    assert_eq!(record.device_credential, old.device_credential);
    assert_eq!(record.profile, old.profile);
    assert_eq!(store.get(b"zz-other").unwrap().unwrap(), b"kept");
    assert!(store.get(&Key::device()).unwrap().is_some());
    drop(store);
    // Nothing more to do the second time.
    assert!(!open_when_unlocked(&path).1);
}

/// `open_sled_migrated`, waiting up to 5 s for the lock of a store this process just
/// dropped: sled's flusher thread may hold it for a moment after the last handle goes (seen
/// once under a loaded test run), which a new process never meets.
fn open_when_unlocked(path: &Path) -> (crate::store::SledStore, bool) {
    for _ in 0..250 {
        match open_sled_migrated(path) {
            Err(IdentityLoadError::Storage(crate::store::StoreError::Locked { .. })) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other.unwrap(),
        }
    }
    panic!("the store stayed locked for 5 s after it was dropped");
}

#[test]
fn a_sled_store_without_an_identity_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    assert!(!open_sled_migrated(&path).unwrap().1);
}
