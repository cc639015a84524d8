//! Frames of the replication channel.

use std::collections::BTreeMap;

use crate::credentials::Credential;
use crate::feed::Block;
use crate::presence::PresenceFrame;
use crate::signal::Topic;
use crate::types::PublicKey;

/// Feed key -> number of blocks held.
pub type Heads = BTreeMap<PublicKey, u64>;

/// One message of a replication channel. It crosses the stream as a
/// [`super::WireMessage`] (blocks in compact form), never as itself: it has no encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplMessage {
    /// First frame from each side: which space (by its swarm topic, a hash of the space
    /// key, so that a peer who does not know the space learns nothing), and the sender's
    /// `AuthorizedDevice` credential (identity -> the TLS device key).
    Hello {
        topic: Topic,
        device_auth: Box<Credential>,
    },
    /// The sender's feed lengths.
    Heads(Heads),
    /// Please send blocks `from..to` of `feed`.
    Want { feed: PublicKey, from: u64, to: u64 },
    /// Blocks, in feed order.
    Blocks(Vec<Block>),
    /// A presence announcement (`crate::presence`): not part of replication; the channel
    /// hands it to the space's presence core.
    Presence(PresenceFrame),
}

impl ReplMessage {
    /// The frame's kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ReplMessage::Hello { .. } => "Hello",
            ReplMessage::Heads(_) => "Heads",
            ReplMessage::Want { .. } => "Want",
            ReplMessage::Blocks(_) => "Blocks",
            ReplMessage::Presence(_) => "Presence",
        }
    }
}
