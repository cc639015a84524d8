//! Replication of a space's feeds over one channel (one QUIC stream per connection and
//! space). [`ReplicationCore`] is the sans-IO protocol; the connection actor carries out its
//! outputs against the space actor and the stream.
//!
//! Protocol (docs/protocol.md): each side opens with `Hello` (space key + the
//! AuthorizedDevice credential that proves which identity its TLS device key belongs to),
//! then both exchange `Heads` (feed lengths). A side that sees the peer ahead on a feed
//! sends `Want { feed, from, to }`; the answer is `Blocks`, bounded in blocks and bytes (a
//! short answer is wanted again from where it stopped). New local blocks are pushed to a
//! peer known to be exactly behind, and announced with `Heads` otherwise. Every block is
//! verified (signature, chain, admission, writer's role) by the space before it is stored.

mod core;
mod message;
mod wire;

pub use self::core::{
    fit_frame, ReplInput, ReplOutput, ReplTimer, ReplicationCore, HEADS_DEBOUNCE, MAX_BATCH,
    MAX_BLOCKS_BYTES, MAX_IN_FLIGHT, WANT_COOLDOWN, WANT_RETRIES, WANT_TIMEOUT,
};
pub use message::{Heads, ReplMessage};
pub use wire::{
    CompactBlock, FeedRef, Restart, TimeframeChange, WireDecoder, WireEncoder, WireError,
    WireMessage, WireRun, MAX_SLOTS,
};

#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod wire_tests;
