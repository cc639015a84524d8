//! Plain data returned by [`super::NodeHandle`]: serializable, ordered, front-end ready.
//! The space and identity parts are those modules' own (re-exported by `node`).

use serde::{Deserialize, Serialize};

pub use crate::identity::{CreatedIdentity, IdentityInfo, RecoveredIdentity};
pub use crate::space::{
    ChangeEvent, ChangeKind, FeedStatus, MemberInfo, OnlineDevice, QueryRequest, SpaceInfo,
    SpaceStatus, SpaceVerdicts, WhereEq,
};

/// What `echo-node status` shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeStatus {
    pub device_key: String,
    pub identity_key: Option<String>,
    pub listen: Option<String>,
    /// This device was revoked by its identity (a space of this node holds the revocation):
    /// nobody accepts what it signs any more.
    #[serde(default)]
    pub revoked: bool,
    pub spaces: Vec<SpaceStatus>,
    /// The node's counters by Prometheus name (`crate::metrics`).
    #[serde(default)]
    pub counters: std::collections::BTreeMap<String, u64>,
}
