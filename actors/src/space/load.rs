//! Rebuilds a space from the store: its feed records, their blocks (chain-checked), and a
//! replay of every block into a fresh [`SpaceCore`] in causal order.
//!
//! The core starts out knowing every device revocation that the stored blocks carry (each
//! well-formed and verified; `credentials/revocation.rs`), so a revoked device's blocks at or
//! past its cut are denied wherever the revocation sits in the store. That is also how a live
//! space applies a revocation that arrived after such blocks: it rebuilds through here.
//!
//! Replay applies, round after round, the next block of every feed whose dependencies are
//! met, until no feed can move. Verdicts depend only on each block's causal past, so a
//! block denied before is denied again and an accepted one is accepted again. A stored
//! block that fails to apply at all (the store was damaged) is logged and passed over, so
//! that one bad block never hides the rest of the space.

use std::collections::BTreeMap;

use super::SpaceRequestError;
use super::{FeedRecord, SpaceCore, SpaceError, SpaceRecord, Verdict};
use crate::credentials::{Position, Revocation, Revocations, VerifiedCredentials};
use crate::feed::{Block, FeedActor, FeedLog, Payload};
use crate::store::{Key, Store};
use crate::types::{decode, KeyPair, PublicKey};

/// A space as loaded: its core and its feeds (with our key pairs for our own feeds).
pub struct LoadedSpace {
    pub core: SpaceCore,
    pub feeds: BTreeMap<PublicKey, (FeedRecord, FeedLog, Option<KeyPair>)>,
    pub replay: Replayed,
}

/// What the replay could not use. Both stay empty for a store written by this node.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Stored blocks that do not apply at all (not part of the space): `(feed, seq, why)`.
    pub passed_over: Vec<(PublicKey, u64, String)>,
    /// Stored blocks whose dependencies are not stored.
    pub waiting: usize,
}

fn storage(e: impl std::fmt::Display) -> SpaceRequestError {
    SpaceRequestError::Storage(e.to_string())
}

/// Loads `record`'s space from `store` with a fresh Yrs `client_id`.
pub fn load_space(
    store: &dyn Store,
    record: &SpaceRecord,
    client_id: u64,
) -> Result<LoadedSpace, SpaceRequestError> {
    let mut feeds = BTreeMap::new();
    let mut blocks: BTreeMap<PublicKey, Vec<Block>> = BTreeMap::new();
    for (_, value) in store
        .scan_prefix(&Key::feeds(&record.space_key))
        .map_err(storage)?
    {
        let feed: FeedRecord = decode(&value).map_err(|e| {
            SpaceRequestError::Corrupt(format!("feed record of space {}: {e}", record.space_key))
        })?;
        let key = if feed.own {
            let secret = store
                .get(&Key::feed_secret(&feed.feed_key))
                .map_err(storage)?
                .ok_or_else(|| {
                    SpaceRequestError::Corrupt(format!(
                        "secret of own feed {} is missing",
                        feed.feed_key
                    ))
                })?;
            let secret: [u8; 32] = secret.try_into().map_err(|_| {
                SpaceRequestError::Corrupt(format!(
                    "secret of own feed {} is malformed",
                    feed.feed_key
                ))
            })?;
            Some(KeyPair::from_secret(secret))
        } else {
            None
        };
        let feed_blocks = FeedActor::load_blocks(store, &feed.feed_key)
            .map_err(|e| SpaceRequestError::Corrupt(e.to_string()))?;
        let log = FeedLog::restore(feed.feed_key, &feed_blocks, false).map_err(|e| {
            SpaceRequestError::Corrupt(format!("feed {} does not chain: {e}", feed.feed_key))
        })?;
        blocks.insert(feed.feed_key, feed_blocks);
        feeds.insert(feed.feed_key, (feed, log, key));
    }
    let revocations = stored_revocations(&blocks);
    let mut core = SpaceCore::with_revocations(record.clone(), client_id, revocations);
    let replay = replay(&mut core, &blocks);
    Ok(LoadedSpace {
        core,
        feeds,
        replay,
    })
}

/// Every well-formed, verified device revocation in `blocks`.
fn stored_revocations(blocks: &BTreeMap<PublicKey, Vec<Block>>) -> Revocations {
    let verified = VerifiedCredentials::default();
    let mut revocations = Revocations::new();
    for block in blocks.values().flatten() {
        let Payload::Credential(c) = &block.payload else {
            continue;
        };
        let at = Position {
            feed: block.feed_key,
            seq: block.seq,
            timeframe: &block.timeframe,
        };
        if let Some(r) = Revocation::of(c, c.id(), &verified, &at) {
            revocations.insert(r);
        }
    }
    revocations
}

/// Applies stored blocks in causal order; see the module doc.
fn replay(core: &mut SpaceCore, blocks: &BTreeMap<PublicKey, Vec<Block>>) -> Replayed {
    let mut report = Replayed::default();
    let mut next: BTreeMap<PublicKey, usize> = blocks.keys().map(|k| (*k, 0)).collect();
    loop {
        let mut progressed = false;
        for (feed, feed_blocks) in blocks {
            let cursor = next.entry(*feed).or_default();
            while let Some(block) = feed_blocks.get(*cursor) {
                match core.apply(block) {
                    Ok(Verdict::Accepted(_)) => {}
                    Ok(Verdict::Denied(reason)) => {
                        tracing::debug!(feed = %feed, seq = block.seq, %reason, "stored block stays denied");
                    }
                    Err(SpaceError::NotReady { .. }) => break,
                    Err(e) => {
                        tracing::warn!(space = %core.record().space_key, feed = %feed, seq = block.seq, error = %e,
                            "stored block does not apply; passing over it");
                        report.passed_over.push((*feed, block.seq, e.to_string()));
                        core.skip(block);
                    }
                }
                *cursor += 1;
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    let stuck: usize = blocks
        .iter()
        .map(|(k, v)| v.len() - next.get(k).copied().unwrap_or(0))
        .sum();
    if stuck > 0 {
        tracing::warn!(space = %core.record().space_key, blocks = stuck, "stored blocks wait for missing dependencies");
    }
    report.waiting = stuck;
    report
}
