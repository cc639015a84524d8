//! The mesh: replication channels, connections and swarms.
//!
//! - [`channel`]: `ChannelActor`, one per (connection, space), driving a `ReplicationCore`.
//! - [`network`]: `NetworkActor`: endpoint, accept/dial, static peers, swarms, status.
//! - [`swarm`]: `SwarmCore`, the sans-IO topology of one space.
//! - [`identity_topics`]: which identity topics a node listens and seeks under, so that a
//!   recovered device finds its spaces' members through signaling alone.
//! - [`slots`]: `AcceptSlots`, the sans-IO rules for who holds accepted connections.
//! - [`connection`]: `ConnectionActor`, one per QUIC connection: the I/O of its channels.
//! - [`hello`]: `HelloCore`, the sans-IO channel-opening protocol of one connection.
//! - [`side_stream`]: streams that are not channels (invitation handshakes), handed over whole.

mod channel;
mod connection;
mod hello;
pub mod identity_topics;
mod network;
mod network_identity;
mod network_invitations;
mod side_stream;
mod slots;
mod swarm;

pub use crate::space::PeerStatus;
pub use channel::{ChannelActor, CloseChannel, Inbound};
pub use connection::{
    CloseConnection, ConnectionActor, ConnectionEvent, LookupSpace, OpenChannel, OpenSideStream,
    SetDeviceAuth,
};
pub use hello::{FirstFrame, HelloCore, HelloInput, HelloOutput, HelloTimer, StreamId};
pub use network::{MeshConfig, NetworkActor, NetworkStatus, Shutdown};
pub use network_invitations::{
    ConnectDevice, JoinInvitationTopic, LeaveInvitationTopic, ListenAddrs, OfferChannels,
};
pub use side_stream::{
    IncomingInvitation, RecoveryStream, RouteInvitations, SideStream, SideStreamGuard, WatchPeers,
};
pub use slots::{AcceptSlots, Admission, Refusal, SlotLimits};
pub use swarm::{Dial, SwarmCore};

#[cfg(test)]
mod channel_tests;
#[cfg(test)]
mod guard_tests;
#[cfg(test)]
mod net_tests;
#[cfg(test)]
mod stranger_tests;
#[cfg(test)]
pub(crate) mod test_util;
