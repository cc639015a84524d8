//! Authorization: no peer ever stores (let alone applies) a block from a writer that was
//! not allowed to write it at that point.
//!
//! Re-derived from each node's `MemStore` alone: every stored feed must be hash-chained
//! from seq 0 with valid signatures, and walking all stored blocks of a space in causal
//! order (a block after every block its timeframe names) through a fresh `SpaceState`,
//! every credential block must pass `check_control_writer` + the credential rules, and
//! every data block's feed must be admitted to an EDITOR or better. A stored block that can
//! never be reached (its dependencies are not stored) is a violation too. Blocks of feeds
//! known to belong to a bad peer must never be stored at all.

use std::collections::{BTreeMap, BTreeSet};

use echo_actors::credentials::SpaceState;
use echo_actors::feed::{Block, FeedLog, Payload};
use echo_actors::space::{FeedRecord, SpaceRecord};
use echo_actors::store::{Key, MemStore, Store};
use echo_actors::types::{decode, Hash, PublicKey, Timeframe};

use super::Violation;

/// Walks stores; remembers what it already verified so that repeated checks stay cheap.
#[derive(Debug, Default)]
pub struct AuthorizationChecker {
    /// Hashes of blocks whose signature verified.
    signed: BTreeSet<Hash>,
    /// Node -> digest of the store contents last found clean.
    clean: BTreeMap<String, [u8; 32]>,
    /// Feeds no honest node may ever store (a bad peer's).
    forbidden: BTreeSet<PublicKey>,
    /// Digest of the store checked last.
    last_digest: [u8; 32],
}

/// blake3 over every entry of a store (for the trace: any divergence between two runs of
/// one seed shows up here).
fn digest(entries: &[(Vec<u8>, Vec<u8>)]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for (k, v) in entries {
        h.update(&(k.len() as u64).to_le_bytes());
        h.update(k);
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(v);
    }
    *h.finalize().as_bytes()
}

fn violation(node: &str, detail: String) -> Violation {
    Violation {
        checker: "authorization",
        detail: format!("{node}: {detail}"),
    }
}

impl AuthorizationChecker {
    /// Declares feeds that belong to a bad peer.
    pub fn forbid(&mut self, feed: PublicKey) {
        self.forbidden.insert(feed);
    }

    /// Digest of the store the last `check` read.
    pub fn last_digest(&self) -> [u8; 32] {
        self.last_digest
    }

    /// Checks everything `node` has stored.
    pub fn check(&mut self, node: &str, store: &MemStore) -> Vec<Violation> {
        let Ok(all) = store.scan_prefix(&[]) else {
            return vec![violation(node, "store cannot be read".into())];
        };
        let digest = digest(&all);
        self.last_digest = digest;
        if self.clean.get(node) == Some(&digest) {
            return Vec::new();
        }
        let found = self.check_store(node, store);
        if found.is_empty() {
            self.clean.insert(node.to_string(), digest);
        }
        found
    }

    fn check_store(&mut self, node: &str, store: &MemStore) -> Vec<Violation> {
        let mut out = Vec::new();
        let spaces = store.scan_prefix(&Key::spaces()).unwrap_or_default();
        let mut owned_feeds = BTreeSet::new();
        for (_, value) in spaces {
            let Ok(record) = decode::<SpaceRecord>(&value) else {
                out.push(violation(node, "corrupt space record".into()));
                continue;
            };
            let mut feeds: BTreeMap<PublicKey, Vec<Block>> = BTreeMap::new();
            for (_, v) in store
                .scan_prefix(&Key::feeds(&record.space_key))
                .unwrap_or_default()
            {
                let Ok(feed) = decode::<FeedRecord>(&v) else {
                    out.push(violation(node, "corrupt feed record".into()));
                    continue;
                };
                owned_feeds.insert(feed.feed_key);
                match self.load_feed(store, feed.feed_key) {
                    Ok(blocks) => {
                        feeds.insert(feed.feed_key, blocks);
                    }
                    Err(e) => out.push(violation(node, e)),
                }
            }
            out.extend(walk(node, record.space_key, &feeds));
        }
        let block_table = Key::blocks(&PublicKey::from_bytes([0; 32]));
        for (k, _) in store.scan_prefix(&block_table[..1]).unwrap_or_default() {
            let feed = k.get(1..33).and_then(|b| <[u8; 32]>::try_from(b).ok());
            if let Some(feed) = feed.map(PublicKey::from_bytes) {
                if self.forbidden.contains(&feed) {
                    out.push(violation(
                        node,
                        format!("stored a block of bad peer feed {}", feed.short()),
                    ));
                }
                if !owned_feeds.contains(&feed) {
                    out.push(violation(
                        node,
                        format!("block of feed {} outside any space", feed.short()),
                    ));
                }
            }
        }
        out.dedup();
        out
    }

    /// A feed's stored blocks: contiguous from 0, chained, validly signed.
    fn load_feed(&mut self, store: &MemStore, feed: PublicKey) -> Result<Vec<Block>, String> {
        let mut blocks = Vec::new();
        for (_, v) in store.scan_prefix(&Key::blocks(&feed)).unwrap_or_default() {
            let block = decode::<Block>(&v)
                .map_err(|e| format!("corrupt block of {}: {e}", feed.short()))?;
            let hash = block.hash();
            if !self.signed.contains(&hash) {
                if !block.signature_ok() {
                    return Err(format!(
                        "stored block {}:{} has a bad signature",
                        feed.short(),
                        block.seq
                    ));
                }
                self.signed.insert(hash);
            }
            blocks.push(block);
        }
        FeedLog::restore(feed, &blocks, false)
            .map_err(|e| format!("stored feed {} does not chain: {e}", feed.short()))?;
        Ok(blocks)
    }
}

/// Applies every stored block in causal order through a fresh control state.
fn walk(node: &str, space: PublicKey, feeds: &BTreeMap<PublicKey, Vec<Block>>) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut state = SpaceState::new(space);
    let mut applied = Timeframe::new();
    let mut cursor: BTreeMap<PublicKey, usize> = BTreeMap::new();
    loop {
        let mut progressed = false;
        for (feed, blocks) in feeds {
            let at = cursor.entry(*feed).or_default();
            while let Some(block) = blocks.get(*at) {
                if !applied.covers(&block.timeframe) {
                    break;
                }
                let allowed = match &block.payload {
                    Payload::Credential(c) => state
                        .check_control_writer(feed, c)
                        .map_err(|e| e.to_string())
                        .and_then(|()| state.apply(c).map(|_| ()).map_err(|e| e.to_string())),
                    Payload::Mutation(_) => {
                        state.check_data_writer(feed).map_err(|e| e.to_string())
                    }
                };
                if let Err(reason) = allowed {
                    out.push(violation(
                        node,
                        format!(
                            "stored {} block {}:{} not allowed: {reason}",
                            block.payload.kind(),
                            feed.short(),
                            block.seq
                        ),
                    ));
                }
                applied.advance(*feed, block.seq);
                *at += 1;
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    for (feed, blocks) in feeds {
        let at = cursor.get(feed).copied().unwrap_or(0);
        if at < blocks.len() {
            out.push(violation(
                node,
                format!(
                    "{} stored blocks of {} wait for dependencies that are not stored",
                    blocks.len() - at,
                    feed.short()
                ),
            ));
        }
    }
    out
}
