//! Loading the stored identity record, and migrating records written before the identity
//! secret left the store.
//!
//! Contract: [`load_identity`] returns the record of this data dir; a record in the old
//! format (`identity_secret` first) is rewritten without the secret and flushed before it
//! returns (its credentials kept as they were), with an info line in the log. The two
//! formats share one byte layout (32 bytes, name, device credential, profile) and are told
//! apart by keys: in the current format the 32 bytes are the identity's public key, the
//! issuer of the device credential; in the old one they are the secret whose public key is
//! that issuer. Anything else is corrupt. [`open_sled_migrated`] does the same for a sled
//! data dir by copying the store into a fresh one, so that the secret does not linger in
//! sled's log either.

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

use super::IdentityRecord;
use crate::credentials::Credential;
use crate::store::{Key, SledStore, Store, StoreError};
use crate::types::{decode, encode, CodecError, KeyPair};

/// What loading (and migrating) the identity record can fail with.
#[derive(Debug, Error)]
pub enum IdentityLoadError {
    #[error("identity record is corrupt: {0}")]
    Corrupt(String),
    #[error("identity record cannot be read or rewritten: {0}")]
    Storage(#[from] StoreError),
    #[error("identity record cannot be encoded: {0}")]
    Encoding(#[from] CodecError),
}

/// The record as written before the identity secret left the store.
#[derive(Serialize, Deserialize)]
struct LegacyIdentityRecord {
    identity_secret: [u8; 32],
    name: Option<String>,
    device_credential: Credential,
    profile: Credential,
}

/// The stored bytes, read as the current format or migrated from the old one.
enum Decoded {
    Current(IdentityRecord),
    /// An old record, already converted (the secret wiped).
    Legacy(IdentityRecord),
}

fn decode_record(bytes: &[u8]) -> Result<Decoded, IdentityLoadError> {
    let record =
        decode::<IdentityRecord>(bytes).map_err(|e| IdentityLoadError::Corrupt(e.to_string()))?;
    if record.identity_key == record.device_credential.issuer {
        return Ok(Decoded::Current(record));
    }
    // The same bytes in the old layout: the first 32 are the identity secret.
    let legacy = decode::<LegacyIdentityRecord>(bytes)
        .map_err(|e| IdentityLoadError::Corrupt(e.to_string()))?;
    let LegacyIdentityRecord {
        identity_secret,
        name,
        device_credential,
        profile,
    } = legacy;
    let identity_secret = Zeroizing::new(identity_secret);
    let identity_key = KeyPair::from_secret(*identity_secret).public();
    if identity_key != device_credential.issuer {
        return Err(IdentityLoadError::Corrupt(format!(
            "its key matches neither its device credential's issuer {} nor an old record's \
             secret",
            device_credential.issuer
        )));
    }
    Ok(Decoded::Legacy(IdentityRecord {
        identity_key,
        name,
        device_credential,
        profile,
    }))
}

/// The record under [`Key::identity`], migrating (see the module docs) if it is in the old
/// format. `None` if this data dir has no identity yet.
pub fn load_identity(store: &dyn Store) -> Result<Option<IdentityRecord>, IdentityLoadError> {
    let Some(bytes) = store.get(&Key::identity())? else {
        return Ok(None);
    };
    let bytes = Zeroizing::new(bytes);
    match decode_record(&bytes)? {
        Decoded::Current(record) => Ok(Some(record)),
        Decoded::Legacy(record) => {
            store.put(&Key::identity(), &encode(&record)?)?;
            store.flush()?;
            tracing::info!(
                identity = %record.identity_key,
                "migrated the identity record: the identity secret is no longer stored on \
                 this device (its credentials are kept; the seed phrase recovers the identity)"
            );
            Ok(Some(record))
        }
    }
}

/// Opens the sled store at `path`, first migrating its identity record if it is in the old
/// format: then the whole store is copied into a fresh one with the record migrated, and the
/// copy put in its place ([`SledStore::rewrite`]; an interrupted rewrite leaves the old
/// store, migrated on the next open). Returns the store and whether it migrated. A store
/// without an identity, or with a current record, is opened as it is.
pub fn open_sled_migrated(path: &Path) -> Result<(SledStore, bool), IdentityLoadError> {
    let store = SledStore::open(path)?;
    let Some(bytes) = store.get(&Key::identity())? else {
        return Ok((store, false));
    };
    let bytes = Zeroizing::new(bytes);
    let migrated = match decode_record(&bytes)? {
        Decoded::Current(_) => return Ok((store, false)),
        Decoded::Legacy(record) => record,
    };
    drop(store);
    let identity_key = migrated.identity_key;
    let new_bytes = encode(&migrated)?;
    let identity = Key::identity();
    SledStore::rewrite(path, |key, value| {
        if key == identity.as_slice() {
            new_bytes.clone()
        } else {
            value
        }
    })?;
    tracing::info!(
        identity = %identity_key,
        store = %path.display(),
        "migrated the identity record: the identity secret is no longer stored on this \
         device (the store was rewritten without it; its credentials are kept; the seed \
         phrase recovers the identity)"
    );
    Ok((SledStore::open(path)?, true))
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
mod tests;
