//! Plain data the space actors return: serializable, ordered, front-end ready.

use serde::{Deserialize, Serialize};

/// A space this node is a member of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SpaceInfo {
    pub space_key: String,
    pub name: Option<String>,
}

/// A member of a space.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberInfo {
    pub identity_key: String,
    /// owner, admin, editor, reader or removed.
    pub role: String,
    /// A device of this identity was heard in the space recently (`crate::presence`); our
    /// own identity is always online.
    #[serde(default)]
    pub online: bool,
}

/// A device heard online recently in some space of this node (see
/// `NodeHandle::devices_online`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OnlineDevice {
    pub device_key: String,
    pub identity_key: String,
    /// Milliseconds since it was last heard in any space (0 for this device).
    pub silent_ms: u64,
    /// This node's own device.
    pub this_device: bool,
}

/// What a node decided about every block of a space: its heads, the blocks it stored but
/// denied, and the control state derived from the accepted credentials. Honest peers that
/// hold the same blocks show the same verdicts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SpaceVerdicts {
    /// Feed key -> length (blocks stored, accepted or denied).
    pub heads: std::collections::BTreeMap<String, u64>,
    /// `feedkey:seq` -> why it was denied.
    pub denied: std::collections::BTreeMap<String, String>,
    /// Identity key -> role.
    pub members: std::collections::BTreeMap<String, String>,
    /// Admitted feed key -> `identity key:designation`.
    pub feeds: std::collections::BTreeMap<String, String>,
}

/// A query over one space's objects.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueryRequest {
    /// Only objects whose `@type` equals this.
    #[serde(default, rename = "type")]
    pub type_name: Option<String>,
    /// Property equality on dotted paths (`address.city`), all of which must hold.
    #[serde(default, rename = "where")]
    pub where_eq: Vec<WhereEq>,
    /// Include soft-deleted objects.
    #[serde(default)]
    pub include_deleted: bool,
}

/// One `PATH = VALUE` condition of a [`QueryRequest`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WhereEq {
    pub path: String,
    pub value: serde_json::Value,
}

/// What happened to an object, as a `watch` stream reports it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Updated,
    Deleted,
}

/// One line of a `watch` stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChangeEvent {
    pub space_key: String,
    pub id: String,
    pub kind: ChangeKind,
    /// The object after the change.
    pub object: serde_json::Value,
}

/// One feed of a space and how far it reaches.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FeedStatus {
    pub feed_key: String,
    /// `control` or `data`.
    pub designation: String,
    pub device_key: String,
    /// Number of blocks in the feed (the head is `length - 1`).
    pub length: u64,
}

/// One space in `status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SpaceStatus {
    pub space_key: String,
    pub name: Option<String>,
    /// Our identity's role in the space (`removed` once removed); none while joining.
    #[serde(default)]
    pub role: Option<String>,
    pub feeds: Vec<FeedStatus>,
    /// Peers with an open replication channel for this space.
    #[serde(default)]
    pub peers: Vec<PeerStatus>,
}

/// One peer of a space, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerStatus {
    pub device_key: String,
    pub address: String,
}
