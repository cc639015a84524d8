//! Identity (HALO): the device key of this data dir, the identity key derived from a BIP39
//! seed phrase, the AuthorizedDevice credential that binds them, and `IdentityActor`.

mod actor;
mod info;
mod keys;
mod request_error;

pub use actor::{CreateIdentity, CurrentSigner, IdentityActor, ShowIdentity, SignAsIdentity};
pub use info::{CreatedIdentity, IdentityInfo};
pub use keys::{
    identity_from_phrase, DeviceRecord, IdentityError, IdentityRecord, NewIdentity,
    SEED_PHRASE_WORDS,
};
pub use request_error::IdentityRequestError;
