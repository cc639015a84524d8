//! `ControlHistory`: the accepted credentials of one space, each with its place in the causal
//! order, and the control state derived from them as a pure function of the *set*: every
//! peer that holds the same credentials derives the same members, roles and feeds, whatever
//! order they arrived in and however often it restarted.
//!
//! Causal order comes from the blocks that carry the credentials: a credential at `(feed,
//! seq)` happened before another if the other's block timeframe covers it (or it is earlier
//! on the same feed). Two credentials are concurrent if neither happened before the other.
//!
//! The derivation ([`derive`]):
//! 1. Credentials are replayed in a canonical order that respects causality: by causal depth
//!    (1 + the deepest credential in its past), then by credential id.
//! 2. The sequential rules of [`SpaceState`] decide each one (a credential that fails them
//!    has no effect).
//! 3. Concurrent branches (the DXOS rule, with ties to the higher authority):
//!    - if a credential `r` removes or demotes member X, every credential X issued
//!      concurrently with `r` that X's new role would not allow is **void**;
//!    - two concurrent `SpaceMember` credentials that set different roles for the same
//!      subject: the one from the higher authority wins (space key > OWNER > ADMIN, the
//!      issuer's role when its credential was replayed); between equals the more
//!      restrictive role wins. The loser is void.
//! 4. Void credentials are taken out and the replay runs again, until no new credential
//!    becomes void. Voiding is transitive that way: what a void credential enabled (a
//!    promotion, an admission) is gone in the next round, and so is what depended on it.
//!
//! Everything above depends only on the set, so the fast path is exact: a credential whose
//! past holds every accepted credential is simply applied to the derived state (it is last
//! in the canonical order and concurrent with nothing).
//!
//! [`ControlHistory::state_before`] gives the state derived from the credentials in a
//! block's causal past: the one that decides that block's verdict.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Assertion, Credential, Role, SpaceState, VerifiedCredentials};
use crate::types::{Hash, PublicKey, Timeframe};

/// Most past states kept for blocks whose past is not the whole history.
const PAST_STATE_CACHE: usize = 256;

/// Where a block stands in the causal order: its feed, its seq, and what its writer had
/// applied when it wrote it.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    pub feed: PublicKey,
    pub seq: u64,
    pub timeframe: &'a Timeframe,
}

impl Position<'_> {
    /// True if the block at `(feed, seq)` is in this position's causal past.
    pub fn covers(&self, feed: &PublicKey, seq: u64) -> bool {
        if *feed == self.feed {
            return seq < self.seq;
        }
        self.timeframe.get(feed).is_some_and(|s| s >= seq)
    }
}

/// One accepted credential and its place in the causal order.
#[derive(Debug, Clone)]
struct Entry {
    feed: PublicKey,
    seq: u64,
    timeframe: Timeframe,
    credential: Credential,
    id: Hash,
    depth: u32,
}

impl Entry {
    fn position(&self) -> Position<'_> {
        Position {
            feed: self.feed,
            seq: self.seq,
            timeframe: &self.timeframe,
        }
    }
    fn before(&self, other: &Entry) -> bool {
        other.position().covers(&self.feed, self.seq)
    }
    fn concurrent(&self, other: &Entry) -> bool {
        !self.before(other) && !other.before(self)
    }
}

/// The accepted credentials of a space and the state derived from them.
#[derive(Debug)]
pub struct ControlHistory {
    space_key: PublicKey,
    /// Shared, so that a trial copy of the history (every batch from a peer) is cheap.
    entries: Vec<Arc<Entry>>,
    /// Highest accepted credential seq per control feed.
    heads: BTreeMap<PublicKey, u64>,
    state: SpaceState,
    void: BTreeSet<Hash>,
    version: u64,
    /// Derived states of past subsets, keyed by the highest seq included per feed.
    past: BTreeMap<BTreeMap<PublicKey, u64>, SpaceState>,
    /// Credentials already verified (shared with trial copies).
    verified: VerifiedCredentials,
}

impl Clone for ControlHistory {
    /// A copy without the cache of past states (a trial copy rarely needs them).
    fn clone(&self) -> Self {
        ControlHistory {
            space_key: self.space_key,
            entries: self.entries.clone(),
            heads: self.heads.clone(),
            state: self.state.clone(),
            void: self.void.clone(),
            version: self.version,
            past: BTreeMap::new(),
            verified: self.verified.clone(),
        }
    }
}

impl ControlHistory {
    pub fn new(space_key: PublicKey) -> Self {
        ControlHistory {
            space_key,
            entries: Vec::new(),
            heads: BTreeMap::new(),
            state: SpaceState::new(space_key),
            void: BTreeSet::new(),
            version: 0,
            past: BTreeMap::new(),
            verified: VerifiedCredentials::default(),
        }
    }

    /// True if `feed`'s first block is an accepted `SpaceGenesis` (the creator's control
    /// feed, or the identity space's derived genesis feed). Only the space key signs one.
    pub fn is_genesis_feed(&self, feed: &PublicKey) -> bool {
        self.entries.iter().any(|e| {
            e.feed == *feed
                && e.seq == 0
                && matches!(
                    e.credential.subject.assertion,
                    Assertion::SpaceGenesis { .. }
                )
        })
    }

    /// The memory of verified credentials, shared by this history and its trial copies.
    pub fn verified(&self) -> VerifiedCredentials {
        self.verified.clone()
    }

    /// The state derived from every accepted credential.
    pub fn state(&self) -> &SpaceState {
        &self.state
    }

    /// Changes every time a credential is accepted (members, roles or feeds may differ).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of accepted credentials.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Feed key -> number of blocks: the blocks that carry the accepted credentials and
    /// their causal past (what a peer must hold to apply every one of them).
    pub fn causal_past(&self) -> BTreeMap<PublicKey, u64> {
        let mut past: BTreeMap<PublicKey, u64> = BTreeMap::new();
        let mut reach = |feed: PublicKey, len: u64| {
            let slot = past.entry(feed).or_insert(0);
            *slot = (*slot).max(len);
        };
        for e in &self.entries {
            reach(e.feed, e.seq.saturating_add(1));
            for (feed, seq) in e.timeframe.iter() {
                reach(*feed, seq.saturating_add(1));
            }
        }
        past
    }

    /// Ids of accepted credentials that concurrent credentials made void.
    pub fn void(&self) -> &BTreeSet<Hash> {
        &self.void
    }

    /// The state derived from the accepted credentials in `pos`'s causal past.
    pub fn state_before(&mut self, pos: &Position) -> &SpaceState {
        // The common case (a block written after every credential we hold) allocates nothing.
        if self
            .heads
            .iter()
            .all(|(feed, &head)| pos.covers(feed, head))
        {
            return &self.state;
        }
        let key: BTreeMap<PublicKey, u64> = self
            .heads
            .iter()
            .filter_map(|(feed, &head)| {
                let bound = if *feed == pos.feed {
                    pos.seq.checked_sub(1)
                } else {
                    pos.timeframe.get(feed)
                };
                bound.map(|b| (*feed, b.min(head)))
            })
            .collect();
        if key == self.heads {
            return &self.state;
        }
        if !self.past.contains_key(&key) {
            if self.past.len() >= PAST_STATE_CACHE {
                self.past.clear();
            }
            let subset: Vec<&Entry> = self
                .entries
                .iter()
                .filter(|e| key.get(&e.feed).is_some_and(|&b| e.seq <= b))
                .map(|e| &**e)
                .collect();
            let (state, _) = derive(self.space_key, subset);
            self.past.insert(key.clone(), state);
        }
        // Inserted just above when missing.
        self.past.get(&key).unwrap_or(&self.state)
    }

    /// Records an accepted credential (`id` = its id, already verified and judged valid in
    /// its own past) at `pos`, and derives the new state.
    pub fn insert(&mut self, pos: &Position, credential: Credential, id: Hash) {
        let mut depth = 0;
        let mut after_all = true;
        for e in &self.entries {
            if pos.covers(&e.feed, e.seq) {
                depth = depth.max(e.depth + 1);
            } else {
                after_all = false;
            }
        }
        let entry = Entry {
            feed: pos.feed,
            seq: pos.seq,
            timeframe: pos.timeframe.clone(),
            credential,
            id,
            depth,
        };
        let head = self.heads.entry(entry.feed).or_insert(entry.seq);
        *head = (*head).max(entry.seq);
        self.version += 1;
        if after_all {
            // Last in the canonical order and concurrent with nothing: see the module doc.
            if let Err(e) = self.state.apply_verified(&entry.credential, entry.id) {
                tracing::error!(error = %e, "a credential valid in its past fails on the whole history");
            }
            self.entries.push(Arc::new(entry));
        } else {
            self.entries.push(Arc::new(entry));
            let (state, void) = derive(self.space_key, self.entries.iter().map(|e| &**e).collect());
            self.state = state;
            self.void = void;
        }
    }
}

/// Authority of an issuer when its credential is replayed: lower wins ties.
fn authority(state: &SpaceState, space_key: PublicKey, issuer: PublicKey) -> u8 {
    if issuer == space_key {
        return 0;
    }
    match state.role(&issuer) {
        Some(Role::Owner) => 1,
        Some(Role::Admin) => 2,
        _ => 3,
    }
}

/// Would a member with `role` be allowed to issue `credential`?
fn permits(role: Role, credential: &Credential) -> bool {
    match &credential.subject.assertion {
        Assertion::AdmittedFeed { identity_key, .. } if credential.issuer == *identity_key => {
            role != Role::Removed
        }
        Assertion::AdmittedFeed { .. } | Assertion::SpaceMember { .. } => role.is_admin(),
        _ => true,
    }
}

/// The role a `SpaceMember` credential sets, and for whom.
fn sets_role(credential: &Credential) -> Option<(PublicKey, Role)> {
    match credential.subject.assertion {
        Assertion::SpaceMember { role, .. } => Some((credential.subject.id, role)),
        _ => None,
    }
}

/// The control state of a causally closed set of accepted credentials, and which of them
/// are void; see the module doc.
fn derive(space_key: PublicKey, mut entries: Vec<&Entry>) -> (SpaceState, BTreeSet<Hash>) {
    entries.sort_by_key(|e| (e.depth, e.id));
    let mut void = BTreeSet::new();
    loop {
        let mut state = SpaceState::new(space_key);
        let mut effective: Vec<(&Entry, u8)> = Vec::new();
        for e in &entries {
            if void.contains(&e.id) {
                continue;
            }
            let rank = authority(&state, space_key, e.credential.issuer);
            if state.apply_verified(&e.credential, e.id).is_ok() {
                effective.push((e, rank));
            }
        }
        let losers = conflicts(&effective);
        if losers.is_empty() {
            return (state, void);
        }
        void.extend(losers);
    }
}

/// Credentials that lose to a concurrent one (step 3 of the module doc).
fn conflicts(effective: &[(&Entry, u8)]) -> BTreeSet<Hash> {
    let mut losers = BTreeSet::new();
    for (r, r_rank) in effective {
        let Some((subject, role)) = sets_role(&r.credential) else {
            continue;
        };
        for (c, c_rank) in effective {
            if c.id == r.id || !r.concurrent(c) {
                continue;
            }
            if c.credential.issuer == subject && !permits(role, &c.credential) {
                losers.insert(c.id);
            }
            if let Some((other, other_role)) = sets_role(&c.credential) {
                let r_wins = r_rank < c_rank || (r_rank == c_rank && role > other_role);
                if other == subject && other_role != role && r_wins {
                    losers.insert(c.id);
                }
            }
        }
    }
    losers
}
