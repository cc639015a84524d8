//! Identity (HALO): the device key of this data dir, the identity key derived from a BIP39
//! seed phrase (never stored: used at `identity create` and `identity recover`, then
//! wiped), the AuthorizedDevice credential that binds them, and `IdentityActor`.

mod actor;
mod device_name;
mod info;
mod keys;
mod migrate;
mod request_error;

pub use actor::{
    AdoptIdentity, CreateIdentity, CurrentSigner, DeviceName, DeviceSignature, FoundHalo, Founding,
    IdentityActor, RecoverIdentity, RenameDevice, ShowIdentity, SignAsDevice,
};
pub use info::{CreatedIdentity, IdentityInfo, RecoveredIdentity};
pub use keys::{
    identity_from_phrase, parse_phrase, recover_identity, DeviceRecord, HaloGenesis,
    IdentityRecord, NewIdentity, PhraseError, RecoveredRecord, SEED_PHRASE_WORDS,
};
pub use migrate::{load_identity, open_sled_migrated, IdentityLoadError};
pub use request_error::IdentityRequestError;
