//! HALO credentials: signed assertions with identity -> device chains, and the space
//! control state derived from them.
//!
//! - [`credential`]: the types, signing, and stand-alone verification (signature + chain).
//! - [`chain`]: identity -> device chains (devices signing for, and authorising devices of,
//!   their identity) and their exact verification.
//! - [`space_state`]: the sans-IO rules that turn a sequence of credentials into members,
//!   roles and admitted feeds, and decide who may write what.
//! - [`history`]: the accepted credentials with their causal order, and the state derived
//!   from them as a pure function of the set (concurrent role changes resolved by rule).
//! - [`revocation`]: which device revocations take effect and which blocks they deny, as a
//!   pure function of the set (`SpaceCore` judges blocks by it).
//! - [`genesis`]: the credentials that create a space.

mod chain;
mod credential;
mod genesis;
mod history;
mod revocation;
mod space_state;
mod verified;

pub use chain::{DeviceAuthorization, DeviceChain, MAX_CHAIN_LINKS};
pub use credential::{
    authorize_device, Assertion, Credential, CredentialError, Designation, Proof, Role, Signer,
    Subject, MAX_DECODED_CHAINS,
};
pub use genesis::{identity_space_genesis, space_genesis, SpaceGenesis, GENESIS_CREDENTIALS};
pub use history::{ControlHistory, Position};
pub use revocation::{Revocation, Revocations};
pub use space_state::{
    check_relayed_revocation, checked_revocation, Applied, FeedInfo, Member, RevokedDevice,
    RuleError, SpaceState, WriteDenied, MAX_CUT_FEEDS,
};
pub use verified::{VerifiedCredentials, VERIFIED_LIMIT};

#[cfg(test)]
mod revocation_tests;
#[cfg(test)]
mod space_state_tests;
