//! The mesh: replication channels, connections and swarms.
//!
//! - [`channel`]: `ChannelActor`, one per (connection, space), driving a `ReplicationCore`.

mod channel;

pub use channel::{ChannelActor, CloseChannel, Inbound};

#[cfg(test)]
mod channel_tests;
