//! Node: wires the actors of one peer together; [`NodeHandle`] is the typed async API that
//! front ends (CLI daemon, simulator, benchmarks) use.
//!
//! A node needs a running actix context (an actix `System` in production, a turmoil host's
//! `LocalSet` in the simulator), a [`crate::store::Store`], a seed for its RNG and a
//! wall clock. It reads nothing else from its environment.

mod devices;
mod error;
mod handle;
mod info;
mod invitations;
mod presence;

pub use devices::{DeviceInfo, DeviceJoined, DeviceRenamed, DeviceRevoked, SkippedSpace};
pub use error::{ErrorKind, NodeError};
pub use handle::{NetworkConfig, Node, NodeConfig, NodeHandle};
pub use info::{
    ChangeEvent, ChangeKind, CreatedIdentity, FeedStatus, IdentityInfo, MemberInfo, NodeStatus,
    OnlineDevice, QueryRequest, RecoveredIdentity, SpaceInfo, SpaceStatus, SpaceVerdicts, WhereEq,
};

#[cfg(test)]
mod group_commit_tests;
#[cfg(test)]
mod identity_tests;
#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod spread_tests;
#[cfg(test)]
mod tests;
