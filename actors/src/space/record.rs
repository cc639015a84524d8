//! What a node stores about a space besides its blocks: the space record (name, genesis
//! feed, our own feeds) and one record per feed it holds.

use serde::{Deserialize, Serialize};

use crate::credentials::Designation;
use crate::types::PublicKey;

/// A space this node belongs to. The name is local to this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceRecord {
    pub space_key: PublicKey,
    pub name: Option<String>,
    /// The creator's control feed, which starts with the genesis credentials (unknown to a
    /// joiner until it has replicated it).
    pub genesis_feed: Option<PublicKey>,
    /// Our own control feed in this space.
    pub control_feed: PublicKey,
    /// Our own data feed in this space.
    pub data_feed: PublicKey,
    pub created_ms: u64,
}

/// A feed this node holds blocks of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRecord {
    pub feed_key: PublicKey,
    pub designation: Designation,
    /// True for feeds this device writes (their secret key is stored).
    pub own: bool,
}
