//! Presence: who of a space is online, announced over the space's replication channels and
//! never written to feeds. [`PresenceCore`] is the sans-IO protocol (rules in its module
//! docs: signed announcements, member channels only, relayed once, bounded); the space
//! actor owns one per space (`space/presence.rs`) and the channels carry its frames as
//! `ReplMessage::Presence`.

mod announcement;
mod core;

pub use self::core::{
    ChannelId, PresenceConfig, PresenceCore, PresenceInput, PresenceOutput, PresenceTimer, Seen,
    DEFAULT_INTERVAL, DEFAULT_TIMEOUT, MAX_TRACKED,
};
pub use announcement::{Announcement, PresenceFrame};

#[cfg(test)]
mod core_tests;
