//! Device revocation: which revocations take effect, and which blocks they deny, as a pure
//! function of the set of revocations, whatever order they arrived in (sans-IO; the rule of
//! docs/identity.md, "Revocation, the rule").
//!
//! A [`Revocation`] names the revoked device, a *cut* (per feed of that device, the length
//! the revoker held: what was written before the revocation), the devices it rests on (its
//! signer and the devices of its chain; none when the identity key itself signed it, i.e.
//! the seed phrase) and its place in the causal order (its block's feed, seq and timeframe).
//!
//! Rules:
//! 1. **Effect.** A revocation takes effect unless a device it rests on is revoked by a
//!    revocation that takes effect and lies in its causal past: a device that knew it was
//!    revoked cannot revoke. One signed by the identity key always takes effect. Two devices
//!    that revoke each other concurrently (neither saw the other's) are both revoked.
//! 2. **Cut.** A device revoked by revocations that take effect has, per feed, the smallest
//!    of their cuts (a feed none of them names: 0). A block of that feed at a seq at or past
//!    the cut is denied, whatever its own timeframe (a partitioned device does not see its
//!    revocation, so its blocks' causal past cannot decide); blocks before the cut stand. A
//!    revocation's own block is judged by rule 1 alone, never by a cut.
//! 3. **Relayed.** A revocation relayed into this space (`RelayedRevocation`: a member of
//!    another identity copied it from a space where it was written) names no feed of this
//!    space, so by rule 2 it cuts the device at 0 here: none of the revoked device's work in
//!    a space its own identity never revoked it in stands (a space a stolen device joined
//!    after its revocation, where no live device of its identity is). Once a revocation
//!    written here by its own identity (native) takes effect for that device, the relayed
//!    ones no longer cut it: the natives alone do, by rule 2 (they know what was written
//!    here before the revocation; a relayer cannot). Rule 1 treats both alike, each at the
//!    place of the block that carries it. The credentials of the space key (its genesis) are
//!    never cut (`space/core.rs`): without them there is no space to be revoked from.
//!
//! Determinism: rule 1 is evaluated in one fixed order, by causal weight (the blocks the
//! writer had seen plus its own earlier ones, which grows strictly along every causal path
//! of honest blocks) and then id, and a revocation only ever looks at those before it; so the result depends on
//! the set alone, and a malformed history (timeframes that claim to see each other) cannot
//! make it loop or depend on arrival order.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    check_relayed_revocation, checked_revocation, Assertion, Credential, Position, RevokedDevice,
    VerifiedCredentials,
};
use crate::types::{Hash, PublicKey, Timeframe};

/// One revocation and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The credential's id.
    pub id: Hash,
    /// The identity that revokes one of its devices (the credential's issuer).
    pub identity: PublicKey,
    pub revoked: PublicKey,
    /// Per feed of the revoked device: the length before the revocation.
    pub cut: BTreeMap<PublicKey, u64>,
    /// The signing device and the devices of its chain; empty for the identity key.
    pub rests_on: Vec<PublicKey>,
    /// The block that carries it.
    pub feed: PublicKey,
    pub seq: u64,
    pub timeframe: Timeframe,
    /// Copied in from another space (rule 3), not written here by its own identity.
    pub relayed: bool,
    /// The `RevokeDevice` credential itself (what a relayer copies); `None` in rule tests.
    pub credential: Option<Box<Credential>>,
}

impl Revocation {
    /// The revocation that `credential` (id `id`) makes, carried by the block at `at`: a
    /// `RevokeDevice`, or a `RelayedRevocation` of one (whose id is the relay's, so that two
    /// relays of one revocation are two places). `None` if it is neither, is malformed, or
    /// the revocation's signature or device chain does not verify (a relay's own signature
    /// does not matter here: the revoker's authority is the revocation's).
    pub fn of(
        credential: &Credential,
        id: Hash,
        verified: &VerifiedCredentials,
        at: &Position<'_>,
    ) -> Option<Self> {
        // The same shape rules as `SpaceState::apply` has for either.
        let (revocation, checked, relayed) = match &credential.subject.assertion {
            Assertion::RevokeDevice { .. } => (credential, checked_revocation(credential), false),
            Assertion::RelayedRevocation { revocation } => {
                let (subject, relayer) = (credential.subject.id, credential.issuer);
                let checked = check_relayed_revocation(subject, relayer, revocation);
                (&**revocation, checked, true)
            }
            _ => return None,
        };
        let RevokedDevice {
            identity_key,
            device_key,
            cut,
        } = checked.ok()?;
        let chain = verified.verify(revocation).ok()?;
        Some(Revocation {
            id,
            identity: *identity_key,
            revoked: *device_key,
            cut: cut.iter().copied().collect(),
            rests_on: chain.devices().to_vec(),
            feed: at.feed,
            seq: at.seq,
            timeframe: at.timeframe.clone(),
            relayed,
            credential: Some(Box::new(revocation.clone())),
        })
    }

    /// True if `other`'s block is in this one's causal past.
    fn sees(&self, other: &Revocation) -> bool {
        if other.feed == self.feed {
            return other.seq < self.seq;
        }
        self.timeframe
            .get(&other.feed)
            .is_some_and(|s| s >= other.seq)
    }

    /// The blocks of other feeds this block's writer had seen (a timeframe entry `s` stands
    /// for blocks `0..=s`) plus its own earlier blocks (`seq` of them; the timeframe's entry
    /// for its own feed, which a writer's applied timeframe carries, is not counted again):
    /// strictly larger than the weight of every block in its causal past, when timeframes
    /// are causally closed (as honest writers' are). Counting the own feed twice would break
    /// that for a block with a long own feed seen by a block with a short one.
    fn weight(&self) -> u128 {
        let seen: u128 = self
            .timeframe
            .iter()
            .filter(|(f, _)| **f != self.feed)
            .map(|(_, s)| u128::from(*s) + 1)
            .sum();
        seen + u128::from(self.seq)
    }
}

/// The revocations of one space (or of the identity space), and what follows from them.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    all: BTreeMap<Hash, Revocation>,
    /// Derived from `all`: per revoked (identity, device), per feed, the cut (rule 2).
    cuts: BTreeMap<(PublicKey, PublicKey), BTreeMap<PublicKey, u64>>,
    /// Derived: the ids that take effect.
    effective: BTreeSet<Hash>,
}

impl Revocations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a revocation (a duplicate id is ignored); answers whether what takes effect
    /// changed.
    pub fn insert(&mut self, revocation: Revocation) -> bool {
        if self.all.contains_key(&revocation.id) {
            return false;
        }
        self.all.insert(revocation.id, revocation);
        let before = std::mem::take(&mut self.effective);
        self.derive();
        before != self.effective
    }

    fn derive(&mut self) {
        let mut order: Vec<&Revocation> = self.all.values().collect();
        order.sort_by_key(|r| (r.weight(), r.id));
        let mut effective: Vec<&Revocation> = Vec::new();
        for r in order {
            let void = effective
                .iter()
                .any(|e| e.identity == r.identity && r.rests_on.contains(&e.revoked) && r.sees(e));
            if !void {
                effective.push(r);
            }
        }
        let mut cuts: BTreeMap<(PublicKey, PublicKey), BTreeMap<PublicKey, u64>> = BTreeMap::new();
        let mut revoked_by: BTreeMap<(PublicKey, PublicKey), Vec<&Revocation>> = BTreeMap::new();
        for r in &effective {
            revoked_by
                .entry((r.identity, r.revoked))
                .or_default()
                .push(r);
        }
        for (device, mut revs) in revoked_by {
            // Rule 3: a native revocation that takes effect silences the relayed ones.
            if revs.iter().any(|r| !r.relayed) {
                revs.retain(|r| !r.relayed);
            }
            // Per feed the smallest cut; a feed some revocation does not name is cut at 0.
            let feeds: BTreeSet<PublicKey> =
                revs.iter().flat_map(|r| r.cut.keys().copied()).collect();
            let cut = feeds
                .into_iter()
                .map(|f| {
                    let least = revs
                        .iter()
                        .map(|r| r.cut.get(&f).copied().unwrap_or(0))
                        .min()
                        .unwrap_or(0);
                    (f, least)
                })
                .collect();
            cuts.insert(device, cut);
        }
        self.effective = effective.iter().map(|r| r.id).collect();
        self.cuts = cuts;
    }

    /// True if revocation `id` is known and takes effect.
    pub fn takes_effect(&self, id: &Hash) -> bool {
        self.effective.contains(id)
    }

    /// The revocations that take effect, in id order.
    pub fn effective(&self) -> impl Iterator<Item = &Revocation> {
        self.effective.iter().filter_map(|id| self.all.get(id))
    }

    /// True if `identity` revoked its `device`. (Keyed by both: an identity can only
    /// revoke its own devices, whatever device key another identity's credential names.)
    pub fn is_revoked(&self, identity: &PublicKey, device: &PublicKey) -> bool {
        self.cuts.contains_key(&(*identity, *device))
    }

    /// The devices revoked, as (identity, device), each with its cut per feed.
    pub fn revoked(&self) -> &BTreeMap<(PublicKey, PublicKey), BTreeMap<PublicKey, u64>> {
        &self.cuts
    }

    /// True if the block `seq` of `feed`, written by `device` of `identity`, is denied by a
    /// cut (rule 2). Not for the blocks that carry revocations: those are judged by
    /// [`Self::takes_effect`].
    pub fn denies(
        &self,
        identity: &PublicKey,
        device: &PublicKey,
        feed: &PublicKey,
        seq: u64,
    ) -> bool {
        self.cuts
            .get(&(*identity, *device))
            .is_some_and(|cut| seq >= cut.get(feed).copied().unwrap_or(0))
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }
}
