//! Feeds: per device, per space, signed, hash-chained, append-only logs.
//!
//! - [`block`]: the block format, its signature and its hash.
//! - [`log`]: the sans-IO core that knows a feed's head and checks the next block.
//! - [`actor`]: `FeedActor`, which owns one log and its storage.

mod actor;
mod block;
mod log;

pub use actor::{Append, AppendMany, FeedActor, IngestMany, ReadRange};
pub use block::{block_len, Block, Payload, MAX_BLOCK_BYTES};
pub use log::{FeedError, FeedLog};
