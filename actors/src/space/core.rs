//! `SpaceCore`: the sans-IO heart of a space. It owns the control state (credentials), the
//! object database (Yrs) and the applied timeframe, and decides for every block whether it
//! may be applied now.
//!
//! Call order: `plan(blocks)` decides, without changing anything, what of a peer's batch to
//! store (signature, order, readiness, authorisation); `apply(block)` checks readiness and
//! authorisation again and applies; blocks that are not ready yet (their writer had seen
//! blocks we have not applied) can wait in a bounded quarantine (`hold`, then `take_ready`). Local mutations go through `local`, and once their block is
//! durable, `record_local` advances the timeframe.

use std::collections::BTreeMap;

use thiserror::Error;

use super::SpaceRecord;
use crate::credentials::{RuleError, SpaceState, WriteDenied};
use crate::db::{Changes, DbError, Mutation, ObjectId, SpaceDoc};
use crate::feed::{Block, Payload};
use crate::types::{PublicKey, Timeframe};

/// Most blocks that may wait for their dependencies at once.
pub const QUARANTINE_LIMIT: usize = 10_000;

#[derive(Debug, Error)]
pub enum SpaceError {
    #[error("block {seq} of feed {feed:?} is not the next one (applied up to {applied:?})")]
    NotNext {
        feed: PublicKey,
        seq: u64,
        applied: Option<u64>,
    },
    #[error("block {seq} of feed {feed:?} depends on blocks not applied yet")]
    NotReady { feed: PublicKey, seq: u64 },
    #[error("block rejected: {0}")]
    Denied(#[from] WriteDenied),
    #[error("credential rejected: {0}")]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("quarantine is full ({QUARANTINE_LIMIT} blocks)")]
    QuarantineFull,
}

/// What to do with a batch of blocks from a peer, decided by [`SpaceCore::plan`].
#[derive(Debug, Default)]
pub struct Plan {
    /// Verified, ready and allowed, in an order that respects their dependencies.
    pub accept: Vec<Block>,
    /// Not ready yet (a gap in their feed, or a dependency not applied): quarantine them.
    pub hold: Vec<Block>,
    /// Already applied.
    pub duplicates: usize,
    /// Bad signature, or not allowed: `(feed, seq, reason)`.
    pub rejected: Vec<(PublicKey, u64, String)>,
}

/// A mutation requested by a local client.
#[derive(Debug, Clone)]
pub enum LocalOp {
    Add {
        id: ObjectId,
        object: serde_json::Value,
    },
    Update {
        id: ObjectId,
        patch: serde_json::Value,
    },
    Delete {
        id: ObjectId,
    },
    TextInsert {
        id: ObjectId,
        field: String,
        index: u32,
        text: String,
    },
    TextDelete {
        id: ObjectId,
        field: String,
        index: u32,
        len: u32,
    },
}

/// Control state + database + timeframe of one space.
pub struct SpaceCore {
    record: SpaceRecord,
    state: SpaceState,
    doc: SpaceDoc,
    applied: Timeframe,
    quarantine: BTreeMap<(PublicKey, u64), Block>,
}

impl SpaceCore {
    /// An empty space; `client_id` is this session's Yrs client id (fresh per open).
    pub fn new(record: SpaceRecord, client_id: u64) -> Self {
        SpaceCore {
            state: SpaceState::new(record.space_key),
            record,
            doc: SpaceDoc::new(client_id),
            applied: Timeframe::new(),
            quarantine: BTreeMap::new(),
        }
    }

    pub fn record(&self) -> &SpaceRecord {
        &self.record
    }
    pub fn state(&self) -> &SpaceState {
        &self.state
    }
    pub fn doc(&self) -> &SpaceDoc {
        &self.doc
    }
    /// What has been applied, per feed.
    pub fn timeframe(&self) -> &Timeframe {
        &self.applied
    }

    /// Checks and applies `block`; returns the objects it changed.
    pub fn apply(&mut self, block: &Block) -> Result<Changes, SpaceError> {
        readiness(&self.applied, block)?;
        authorize(&mut self.state, block)?;
        let changes = match &block.payload {
            Payload::Credential(_) => Changes::default(),
            Payload::Mutation(update) => self.doc.apply_update(update)?,
        };
        self.applied.advance(block.feed_key, block.seq);
        Ok(changes)
    }

    /// Decides, without changing anything, which of `blocks` (from a peer) to store and
    /// apply: each must carry a valid signature, be the next of its feed, have its writer's
    /// timeframe covered, and be allowed by the control state as it will be after the
    /// blocks accepted before it (credentials in the batch count for later blocks).
    pub fn plan(&self, mut blocks: Vec<Block>) -> Plan {
        let mut plan = Plan::default();
        let mut state = self.state.clone();
        let mut applied = self.applied.clone();
        blocks.sort_by_key(|b| (b.feed_key, b.seq));
        blocks.dedup_by_key(|b| (b.feed_key, b.seq));
        loop {
            let mut progressed = false;
            let mut rest = Vec::with_capacity(blocks.len());
            for block in blocks {
                match readiness(&applied, &block) {
                    Err(SpaceError::NotNext { applied: a, .. })
                        if a.is_some_and(|a| block.seq <= a) =>
                    {
                        plan.duplicates += 1;
                        continue;
                    }
                    Err(_) => {
                        rest.push(block);
                        continue;
                    }
                    Ok(()) => {}
                }
                if !block.signature_ok() {
                    plan.rejected
                        .push((block.feed_key, block.seq, "bad signature".into()));
                    continue;
                }
                let allowed = authorize(&mut state, &block).map_err(|e| e.to_string());
                match allowed {
                    Ok(()) => {
                        applied.advance(block.feed_key, block.seq);
                        plan.accept.push(block);
                        progressed = true;
                    }
                    Err(reason) => plan.rejected.push((block.feed_key, block.seq, reason)),
                }
            }
            blocks = rest;
            if !progressed {
                break;
            }
        }
        plan.hold = blocks;
        plan
    }

    /// Marks a stored block as passed over (it failed to apply on replay) so that its feed's
    /// later blocks are not stuck behind it.
    pub fn skip(&mut self, block: &Block) {
        self.applied.advance(block.feed_key, block.seq);
    }

    /// Parks a block whose dependencies are missing.
    pub fn hold(&mut self, block: Block) -> Result<(), SpaceError> {
        if self.quarantine.len() >= QUARANTINE_LIMIT {
            return Err(SpaceError::QuarantineFull);
        }
        self.quarantine.insert((block.feed_key, block.seq), block);
        Ok(())
    }

    /// Removes and returns the quarantined blocks that are ready now, in key order.
    pub fn take_ready(&mut self) -> Vec<Block> {
        let ready: Vec<_> = self
            .quarantine
            .iter()
            .filter(|(_, b)| readiness(&self.applied, b).is_ok())
            .map(|(k, _)| *k)
            .collect();
        ready
            .into_iter()
            .filter_map(|k| self.quarantine.remove(&k))
            .collect()
    }

    pub fn quarantined(&self) -> usize {
        self.quarantine.len()
    }

    /// Runs a local mutation against the database, if our data feed may write.
    pub fn local(&mut self, op: LocalOp) -> Result<Mutation, SpaceError> {
        self.state.check_data_writer(&self.record.data_feed)?;
        Ok(match op {
            LocalOp::Add { id, object } => self.doc.add(id, &object)?,
            LocalOp::Update { id, patch } => self.doc.update(&id, &patch)?,
            LocalOp::Delete { id } => self.doc.delete(&id)?,
            LocalOp::TextInsert {
                id,
                field,
                index,
                text,
            } => self.doc.text_insert(&id, &field, index, &text)?,
            LocalOp::TextDelete {
                id,
                field,
                index,
                len,
            } => self.doc.text_delete(&id, &field, index, len)?,
        })
    }

    /// Records that our own `block` (already applied locally) is durable.
    pub fn record_local(&mut self, block: &Block) {
        self.applied.advance(block.feed_key, block.seq);
    }
}

/// Is `block` the next one of its feed, with all its dependencies in `applied`?
fn readiness(applied: &Timeframe, block: &Block) -> Result<(), SpaceError> {
    let last = applied.get(&block.feed_key);
    if block.seq != last.map_or(0, |s| s + 1) {
        return Err(SpaceError::NotNext {
            feed: block.feed_key,
            seq: block.seq,
            applied: last,
        });
    }
    if !applied.covers(&block.timeframe) {
        return Err(SpaceError::NotReady {
            feed: block.feed_key,
            seq: block.seq,
        });
    }
    Ok(())
}

/// May `block`'s writer write it under `state`? A credential that may is applied to `state`
/// (a rejected one changes nothing); a mutation needs an admitted EDITOR+ data feed.
fn authorize(state: &mut SpaceState, block: &Block) -> Result<(), SpaceError> {
    match &block.payload {
        Payload::Credential(c) => {
            state.check_control_writer(&block.feed_key, c)?;
            state.apply(c)?;
        }
        Payload::Mutation(_) => state.check_data_writer(&block.feed_key)?,
    }
    Ok(())
}
