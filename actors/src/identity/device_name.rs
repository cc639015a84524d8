//! This device's name: chosen by its user (`device rename`, or `--device-name` where a
//! device takes on an identity), kept in the store under [`Key::device_name`], and shown to
//! the identity's other devices through a `DeviceProfile` credential in the identity space
//! (written by the space directory, `space/directory_halo.rs`). The store is the truth for
//! this device; the credential follows it.

use crate::store::{Key, Store};
use crate::types::check_name;

use super::IdentityRequestError;

/// The stored name, if any. A stored value that is not a valid name (it was checked before
/// it was written, so only a damaged store has one) reads as none, with a warning.
pub fn load_device_name(store: &dyn Store) -> Result<Option<String>, String> {
    let Some(bytes) = store.get(&Key::device_name()).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    match String::from_utf8(bytes) {
        Ok(name) if check_name(&name).is_ok() => Ok(Some(name)),
        _ => {
            tracing::warn!(
                "the stored device name is damaged; this device has no name until `device rename`"
            );
            Ok(None)
        }
    }
}

/// Checks `name` and stores it durably.
pub fn store_device_name(store: &dyn Store, name: &str) -> Result<(), IdentityRequestError> {
    check_name(name).map_err(|e| IdentityRequestError::Invalid(format!("device name: {e}")))?;
    let storage = |e: crate::store::StoreError| IdentityRequestError::Storage(e.to_string());
    store
        .put(&Key::device_name(), name.as_bytes())
        .map_err(storage)?;
    store.flush().map_err(storage)
}
