//! Authorization: no peer ever stores a block that is not part of its space, and what a
//! peer stores is judged the same way whenever it is replayed.
//!
//! Re-derived from each node's `MemStore` alone: every stored feed must be hash-chained
//! from seq 0 with valid signatures, and a fresh replay of the stored blocks in causal order
//! (`load_space`, which judges every block by the credentials in its own causal past) must
//! find every block reachable (its dependencies stored) and every block part of the space
//! (its feed admitted in its past). Blocks that were stored but denied (a writer acting
//! beyond its role) are allowed: they are kept and never applied, on every peer alike; the
//! `verdicts` checker compares them across peers. Blocks of feeds known to belong to a bad
//! peer must never be stored at all.

use std::collections::{BTreeMap, BTreeSet};

use echo_actors::feed::{Block, FeedLog};
use echo_actors::space::{load_space, FeedRecord, SpaceRecord};
use echo_actors::store::{Key, MemStore, Store};
use echo_actors::types::{decode, Hash, PublicKey};

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
            for (_, v) in store
                .scan_prefix(&Key::feeds(&record.space_key))
                .unwrap_or_default()
            {
                let Ok(feed) = decode::<FeedRecord>(&v) else {
                    out.push(violation(node, "corrupt feed record".into()));
                    continue;
                };
                owned_feeds.insert(feed.feed_key);
                if let Err(e) = self.load_feed(store, feed.feed_key) {
                    out.push(violation(node, e));
                }
            }
            out.extend(replay(node, store, &record));
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

/// Replays the space's stored blocks the way a restart does; see the module doc.
fn replay(node: &str, store: &MemStore, record: &SpaceRecord) -> Vec<Violation> {
    let loaded = match load_space(store, record, 0) {
        Ok(loaded) => loaded,
        Err(e) => return vec![violation(node, format!("space does not load: {e}"))],
    };
    let mut out: Vec<Violation> = loaded
        .replay
        .passed_over
        .iter()
        .map(|(feed, seq, why)| {
            violation(
                node,
                format!(
                    "stored block {}:{seq} is not part of the space: {why}",
                    feed.short()
                ),
            )
        })
        .collect();
    if loaded.replay.waiting > 0 {
        out.push(violation(
            node,
            format!(
                "{} stored blocks wait for dependencies that are not stored",
                loaded.replay.waiting
            ),
        ));
    }
    out
}
