//! Plain data the identity actor returns: serializable, front-end ready.

use serde::{Deserialize, Serialize};

/// Returned once by `identity create`: the seed phrase is never shown again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreatedIdentity {
    pub identity_key: String,
    pub device_key: String,
    pub seed_phrase: String,
    pub name: Option<String>,
}

/// The node's identity as `identity show` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdentityInfo {
    pub identity_key: String,
    pub device_key: String,
    pub name: Option<String>,
    /// This device's name (`device rename`).
    pub device_name: Option<String>,
}

/// Returned by `identity recover`: the identity of the phrase and this new device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecoveredIdentity {
    pub identity_key: String,
    pub device_key: String,
    pub name: Option<String>,
}
