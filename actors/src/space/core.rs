//! `SpaceCore`: the sans-IO heart of a space. It owns the control history (credentials),
//! the object database (Yrs) and the applied timeframe, and gives every block its verdict.
//!
//! The verdict rule: a ready block (the next of its feed, its writer's timeframe applied) is
//! judged against the control state derived from the credentials in its own causal past
//! ([`ControlHistory::state_before`]), never against whatever this peer holds now. So the
//! verdict is the same on every peer, in every arrival order and after every restart:
//! - **accepted**: its payload is applied (a credential joins the history);
//! - **denied**: a signature-valid block of an admitted feed whose writer was not allowed to
//!   write it. It is stored and its feed advances (so it is never asked for again and the
//!   writer's later blocks are judged in turn), but its payload is never applied;
//! - **foreign**: its feed was not admitted in its past. It is not part of the space: not
//!   stored, and whoever sent it is not an honest relayer.
//!
//! Call order: `plan(blocks)` decides, without changing anything, what of a peer's batch to
//! store (signature, order, readiness, verdict); `apply(block)` checks readiness, judges
//! again and applies; blocks that are not ready yet (their writer had seen blocks we have not
//! applied) can wait in a bounded quarantine (`hold`, then `take_ready`). Local mutations go
//! through `local`, and once their block is durable, `record_local` advances the timeframe.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

use thiserror::Error;

use super::SpaceRecord;
use crate::credentials::{
    Applied, Assertion, ControlHistory, Position, Revocation, Revocations, RuleError, SpaceState,
    WriteDenied, GENESIS_CREDENTIALS,
};
use crate::db::{Changes, DbError, Mutation, ObjectId, Retracted, SpaceDoc};
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
    #[error(
        "the update brings back changes this space denied (a revoked device's writes past its \
         cut, say): discard the local document and load the space again"
    )]
    Retracted,
    #[error("quarantine is full ({QUARANTINE_LIMIT} blocks)")]
    QuarantineFull,
    #[error("block {seq} of feed {feed:?} is not part of this space: {reason}")]
    Foreign {
        feed: PublicKey,
        seq: u64,
        reason: String,
    },
}

/// What [`SpaceCore::apply`] did with a ready block.
#[derive(Debug)]
pub enum Verdict {
    /// Applied; these objects changed.
    Accepted(Changes),
    /// Stored and passed over: the writer was not allowed to write it.
    Denied(String),
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
    /// Of `accept`, how many will be denied (stored, never applied).
    pub denied: usize,
    /// Bad signature, or not part of the space: `(feed, seq, reason)`. An honest peer never
    /// serves these.
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
    control: ControlHistory,
    doc: SpaceDoc,
    applied: Timeframe,
    /// Blocks stored but denied: `(feed, seq) -> reason`.
    denied: BTreeMap<(PublicKey, u64), String>,
    /// What the denied mutations insert, which no Yjs client may bring back.
    retracted: Retracted,
    quarantine: BTreeMap<(PublicKey, u64), Block>,
    /// The device revocations carried by stored blocks (`credentials/revocation.rs`).
    revocations: Revocations,
    /// A revocation took effect after blocks it denies may have been applied: the document
    /// must be rebuilt from the store (see [`SpaceCore::take_rebuild`]).
    rebuild: bool,
}

impl SpaceCore {
    /// An empty space; `client_id` is this session's Yrs client id (fresh per open).
    pub fn new(record: SpaceRecord, client_id: u64) -> Self {
        SpaceCore {
            control: ControlHistory::new(record.space_key),
            record,
            doc: SpaceDoc::new(client_id),
            applied: Timeframe::new(),
            denied: BTreeMap::new(),
            retracted: Retracted::default(),
            quarantine: BTreeMap::new(),
            revocations: Revocations::new(),
            rebuild: false,
        }
    }

    /// An empty space that knows `revocations` from the start (a replay: see `load.rs`), so
    /// that every stored block is judged by all of them, whatever their order in the store.
    pub fn with_revocations(record: SpaceRecord, client_id: u64, revocations: Revocations) -> Self {
        let mut core = Self::new(record, client_id);
        core.revocations = revocations;
        core
    }

    /// The device revocations this space holds.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// True, once, after a revocation took effect that may deny blocks already applied: the
    /// caller rebuilds the core from the store ([`super::load_space`] judges every stored
    /// block by every stored revocation). Revocations are rare; a rebuild is one replay.
    pub fn take_rebuild(&mut self) -> bool {
        std::mem::take(&mut self.rebuild)
    }

    pub fn record(&self) -> &SpaceRecord {
        &self.record
    }
    /// The control state derived from every accepted credential.
    pub fn state(&self) -> &SpaceState {
        self.control.state()
    }
    pub fn control(&self) -> &ControlHistory {
        &self.control
    }
    /// Blocks that were stored but denied, with the reason.
    pub fn denied(&self) -> &BTreeMap<(PublicKey, u64), String> {
        &self.denied
    }
    pub fn doc(&self) -> &SpaceDoc {
        &self.doc
    }
    /// What has been applied, per feed.
    pub fn timeframe(&self) -> &Timeframe {
        &self.applied
    }

    /// Judges a ready `block` and applies it if it is accepted; a denied block is recorded
    /// and its feed advances all the same. Errors leave everything unchanged.
    pub fn apply(&mut self, block: &Block) -> Result<Verdict, SpaceError> {
        readiness(&self.applied, block)?;
        let judged = judge(&mut self.control, &mut self.revocations, block)?;
        if judged.revocation_changed {
            self.rebuild = true;
        }
        let verdict = match judged.verdict {
            Ok(()) => match &block.payload {
                Payload::Credential(_) => Verdict::Accepted(Changes::default()),
                Payload::Mutation(update) => match self.doc.apply_update(update) {
                    Ok(changes) => Verdict::Accepted(changes),
                    Err(e) => Verdict::Denied(format!("update does not apply: {e}")),
                },
            },
            Err(reason) => Verdict::Denied(reason),
        };
        if let Verdict::Denied(reason) = &verdict {
            self.denied
                .insert((block.feed_key, block.seq), reason.clone());
            if let Payload::Mutation(update) = &block.payload {
                self.retracted.record(update);
            }
        }
        self.applied.advance(block.feed_key, block.seq);
        Ok(verdict)
    }

    /// Decides, without changing anything, which of `blocks` (from a peer) to store and
    /// apply: each must carry a valid signature, be the next of its feed, have its writer's
    /// timeframe covered, and belong to the space (its feed admitted in its past). Blocks
    /// that will be denied are stored too; credentials accepted earlier in the batch count
    /// for later blocks.
    pub fn plan(&self, mut blocks: Vec<Block>) -> Plan {
        let mut plan = Plan::default();
        let mut control = self.control.clone();
        let mut revocations = self.revocations.clone();
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
                match judge(&mut control, &mut revocations, &block) {
                    Ok(judged) => {
                        if judged.verdict.is_err() {
                            plan.denied += 1;
                        }
                        applied.advance(block.feed_key, block.seq);
                        plan.accept.push(block);
                        progressed = true;
                    }
                    Err(e) => plan
                        .rejected
                        .push((block.feed_key, block.seq, e.to_string())),
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
    /// Held blocks that may apply now: per feed, the run of consecutive blocks that starts
    /// right after what is applied, if its first block's dependencies are all applied. Only
    /// the head of each feed is looked at, so a large quarantine is not rescanned whole
    /// after every batch; later blocks of a run whose dependencies are still missing go back
    /// to the quarantine through `plan`.
    pub fn take_ready(&mut self) -> Vec<Block> {
        let mut ready = Vec::new();
        // Each feed in the quarantine once, jumping from one feed's keys to the next's.
        let mut cursor = self.quarantine.keys().next().map(|(f, _)| *f);
        while let Some(feed) = cursor {
            cursor = self
                .quarantine
                .range((Excluded((feed, u64::MAX)), Unbounded))
                .next()
                .map(|((f, _), _)| *f);
            let next = self.applied.get(&feed).map_or(0, |s| s + 1);
            // Blocks applied meanwhile (copies from another peer) leave the quarantine.
            let stale: Vec<(PublicKey, u64)> = self
                .quarantine
                .range((feed, 0)..(feed, next))
                .map(|(k, _)| *k)
                .collect();
            for k in stale {
                self.quarantine.remove(&k);
            }
            let Some(first) = self.quarantine.get(&(feed, next)) else {
                continue;
            };
            if readiness(&self.applied, first).is_err() {
                continue;
            }
            let mut seq = next;
            while let Some(block) = self.quarantine.remove(&(feed, seq)) {
                ready.push(block);
                seq += 1;
            }
        }
        ready
    }

    /// Empties the quarantine (a rebuild carries it over to the new core).
    pub fn take_quarantine(&mut self) -> Vec<Block> {
        std::mem::take(&mut self.quarantine).into_values().collect()
    }

    pub fn quarantined(&self) -> usize {
        self.quarantine.len()
    }

    /// Runs a local mutation against the database, if our data feed may write.
    pub fn local(&mut self, op: LocalOp) -> Result<Mutation, SpaceError> {
        self.check_local_writer()?;
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

    /// Runs a local Yjs client's update (the bridge) against the database: refused if it
    /// brings back what this space denied (`db/retracted.rs`) or would break the object model; a no-op if it brings nothing new (also for a READER);
    /// otherwise applied if our data feed may write. See `db/yjs.rs`.
    pub fn client_update(&mut self, update_v1: &[u8]) -> Result<Mutation, SpaceError> {
        if self.retracted.carried_by(update_v1) {
            return Err(SpaceError::Retracted);
        }
        if !self.doc.check_client_update(update_v1)? {
            return Ok(Mutation::default());
        }
        self.check_local_writer()?;
        let changes = self.doc.apply_update(update_v1)?;
        Ok(Mutation {
            update: update_v1.to_vec(),
            changes,
        })
    }

    /// May our data feed write its next block: its role, and no revocation of this device.
    fn check_local_writer(&self) -> Result<(), SpaceError> {
        let feed = &self.record.data_feed;
        self.control.state().check_data_writer(feed)?;
        let next = self.applied.get(feed).map_or(0, |s| s + 1);
        let writer = self.control.state().feed(feed);
        match writer {
            Some(w)
                if self
                    .revocations
                    .denies(&w.identity_key, &w.device_key, feed, next) =>
            {
                Err(WriteDenied::Revoked(w.device_key).into())
            }
            _ => Ok(()),
        }
    }

    /// The database, mutably (the bridge attaches its update sink).
    pub(super) fn doc_mut(&mut self) -> &mut SpaceDoc {
        &mut self.doc
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

/// What [`judge`] decided about a ready block.
struct Judged {
    /// `Ok(())` accepted, `Err(reason)` denied.
    verdict: Result<(), String>,
    /// The block carried a revocation that changed which revocations take effect.
    revocation_changed: bool,
}

/// The verdict on a ready `block`, from the credentials in its causal past only, and from
/// the revocations (a revoked device's blocks at or past its cut are denied whatever their
/// past, as are credentials resting on a revoked device; `credentials/revocation.rs`).
/// `Err` means foreign (its feed was not admitted in its past). A block that carries a
/// well-formed, verified revocation and is stored (accepted or denied) adds it to
/// `revocations`: a revocation's authority is its identity's, not a role in the space.
fn judge(
    control: &mut ControlHistory,
    revocations: &mut Revocations,
    block: &Block,
) -> Result<Judged, SpaceError> {
    let pos = Position {
        feed: block.feed_key,
        seq: block.seq,
        timeframe: &block.timeframe,
    };
    let verdict = judge_control(control, revocations, block, &pos)?;
    let mut revocation_changed = false;
    if let Payload::Credential(c) = &block.payload {
        if let Some(r) = Revocation::of(c, c.id(), &control.verified(), &pos) {
            revocation_changed = revocations.insert(r);
        }
    }
    Ok(Judged {
        verdict,
        revocation_changed,
    })
}

/// [`judge`] without the revocation bookkeeping: `Ok(Ok(()))` accepted (an accepted
/// credential joins `control`), `Ok(Err(reason))` denied, `Err` foreign.
fn judge_control(
    control: &mut ControlHistory,
    revocations: &Revocations,
    block: &Block,
    pos: &Position<'_>,
) -> Result<Result<(), String>, SpaceError> {
    let foreign = |reason: String| SpaceError::Foreign {
        feed: block.feed_key,
        seq: block.seq,
        reason,
    };
    let verified = control.verified();
    // The genesis (the first blocks of the genesis feed: the space key's credentials and
    // the creator's admission of its feeds) is never cut: a native cut never reaches it (a
    // revoker holds it), and a relayed one, which cuts at 0, must not take the space away
    // from everyone in it.
    let genesis = matches!(&block.payload, Payload::Credential(c)
        if c.issuer == control.state().space_key()
            || (block.seq < GENESIS_CREDENTIALS && control.is_genesis_feed(&block.feed_key)));
    let past = control.state_before(pos);
    let writer = past
        .feed(&block.feed_key)
        .map(|f| (f.identity_key, f.device_key));
    let admitted = writer.is_some();
    let cut = writer
        .filter(|(i, d)| revocations.denies(i, d, &block.feed_key, block.seq))
        .map(|(_, d)| d);
    let credential = match &block.payload {
        Payload::Mutation(_) => {
            return match past.check_data_writer(&block.feed_key) {
                Ok(()) => Ok(match cut {
                    Some(device) => Err(WriteDenied::Revoked(device).to_string()),
                    None => Ok(()),
                }),
                Err(e @ WriteDenied::FeedNotAdmitted(_)) => Err(foreign(e.to_string())),
                Err(e) => Ok(Err(e.to_string())),
            };
        }
        Payload::Credential(c) => c,
    };
    match past.check_control_writer(&block.feed_key, credential) {
        Ok(()) => {}
        Err(e @ WriteDenied::FeedNotAdmitted(_)) => return Err(foreign(e.to_string())),
        Err(e) => return Ok(Err(e.to_string())),
    }
    let chain = match verified.verify(credential) {
        Ok(chain) => chain,
        Err(e) if admitted => return Ok(Err(e.to_string())),
        Err(e) => return Err(foreign(e.to_string())),
    };
    if let Assertion::RelayedRevocation { revocation } = &credential.subject.assertion {
        // The relayed revocation's own signature, too: a relay is accepted only as a true copy.
        if let Err(e) = verified.verify(revocation) {
            let why = format!("relays a revocation that does not verify: {e}");
            return if admitted {
                Ok(Err(why))
            } else {
                Err(foreign(why))
            };
        }
    }
    // A revocation is judged by the revocation rule alone (it may stand past its signer's
    // cut: two devices revoking each other concurrently). Anything else a revoked device
    // signed is denied from its cut on this feed (a feed the cut does not name, such as
    // another device's, is cut at 0; a feed's first block may be the very admission of it,
    // so the signer is what counts, not the feed's admitted writer), and so is a credential
    // resting on a revoked device further down its chain (a device it authorised must be
    // authorised again by one that is not revoked).
    if !genesis && !matches!(credential.subject.assertion, Assertion::RevokeDevice { .. }) {
        let issuer = &credential.issuer;
        let leaning = chain
            .devices()
            .iter()
            .enumerate()
            .find(|(i, d)| match i {
                0 => revocations.denies(issuer, d, &block.feed_key, block.seq),
                _ => revocations.is_revoked(issuer, d),
            })
            .map(|(_, d)| *d);
        if let Some(device) = cut.or(leaning) {
            return if admitted {
                Ok(Err(WriteDenied::Revoked(device).to_string()))
            } else {
                Err(foreign(WriteDenied::Revoked(device).to_string()))
            };
        }
    }
    let id = credential.id();
    let mut trial: SpaceState = past.clone();
    match trial.apply_verified(credential, id) {
        Ok(Applied::Changed) => {
            control.insert(pos, (**credential).clone(), id);
            Ok(Ok(()))
        }
        // A copy of a credential we hold changes nothing; on a feed that is not admitted
        // (only the space key's genesis credentials may stand there) it is not ours to keep.
        Ok(Applied::Duplicate) if admitted => Ok(Ok(())),
        Ok(Applied::Duplicate) => Err(foreign("a copy of a genesis credential".into())),
        Err(e) if admitted => Ok(Err(e.to_string())),
        Err(e) => Err(foreign(e.to_string())),
    }
}
