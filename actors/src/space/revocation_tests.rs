//! Device revocation in a space (`SpaceCore` with `credentials/revocation.rs`): Bob has two
//! devices in Alice's space; one revokes the other while the revoked one keeps writing on
//! its own. Every peer must deny the same blocks (those at or past the cut), accept those
//! before it, and end with the same document, whether the revocation arrives before or
//! after the late blocks, in any order and split by restarts; the revoked device can write
//! nothing more, and cannot authorise a new device for itself.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::core_tests::{append, hand_built, update_adding, writer, Writer};
use super::verdict_tests::{outcome, persist};
use super::*;
use crate::credentials::{
    authorize_device, Assertion, Designation, Role, Signer, Subject, WriteDenied,
};
use crate::feed::{Block, FeedLog, Payload};
use crate::store::MemStore;
use crate::types::{KeyPair, PublicKey, Timeframe};

/// Alice's space with Bob (EDITOR) on two devices, and the blocks that built it.
pub(super) struct Bob {
    pub record: SpaceRecord,
    pub identity: KeyPair,
    pub laptop: Writer,
    pub phone: Writer,
    /// Alice (the owner) and her control feed, which starts with the genesis.
    pub alice: Writer,
    pub alice_control: (FeedLog, KeyPair),
    /// Genesis and admissions, in order.
    pub base: Vec<Block>,
    /// A core holding `base` (Alice's view).
    pub core: SpaceCore,
    rng: ChaCha20Rng,
    next_object: u128,
}

fn device(identity: &KeyPair, rng: &mut ChaCha20Rng) -> Writer {
    let key = KeyPair::generate(rng);
    let control = KeyPair::generate(rng);
    let data = KeyPair::generate(rng);
    Writer {
        signer: Signer::for_device(
            identity.public(),
            key.clone(),
            authorize_device(identity, key.public(), 1),
        ),
        control: (FeedLog::new(control.public()), control),
        data: (FeedLog::new(data.public()), data),
    }
}

impl Bob {
    pub fn new(seed: u64) -> Bob {
        let mut hb = hand_built(seed);
        let space_key = hb.core.record().space_key;
        let identity = KeyPair::generate(&mut hb.rng);
        let laptop = device(&identity, &mut hb.rng);
        let phone = device(&identity, &mut hb.rng);
        let mut base = hb.blocks.clone();
        let mut assertions = vec![(
            identity.public(),
            Assertion::SpaceMember {
                space_key,
                role: Role::Editor,
            },
        )];
        // Alice admits the laptop's feeds; the phone admits its own (below), its control
        // feed starting with its own admission, as a device joining by itself does.
        for d in [&laptop] {
            let feeds = [
                (d.control.1.public(), Designation::Control),
                (d.data.1.public(), Designation::Data),
            ];
            for (feed, designation) in feeds {
                let admitted = Assertion::AdmittedFeed {
                    space_key,
                    identity_key: identity.public(),
                    device_key: d.signer.key.public(),
                    designation,
                };
                assertions.push((feed, admitted));
            }
        }
        for (id, assertion) in assertions {
            let c = hb.owner.signer.issue(Subject { id, assertion }, 2, vec![]);
            let tf = hb.core.timeframe().clone();
            let b = append(&mut hb.control, &tf, Payload::Credential(Box::new(c)));
            hb.core.apply(&b).unwrap();
            base.push(b);
        }
        let mut phone = phone;
        for (feed, designation) in [
            (phone.control.1.public(), Designation::Control),
            (phone.data.1.public(), Designation::Data),
        ] {
            let own = phone.signer.issue(
                Subject {
                    id: feed,
                    assertion: Assertion::AdmittedFeed {
                        space_key,
                        identity_key: identity.public(),
                        device_key: phone.signer.key.public(),
                        designation,
                    },
                },
                2,
                vec![],
            );
            let tf = hb.core.timeframe().clone();
            let b = append(&mut phone.control, &tf, Payload::Credential(Box::new(own)));
            assert!(matches!(hb.core.apply(&b).unwrap(), Verdict::Accepted(_)));
            base.push(b);
        }
        Bob {
            record: hb.core.record().clone(),
            identity,
            laptop,
            phone,
            alice: hb.owner,
            alice_control: hb.control,
            base,
            core: hb.core,
            rng: hb.rng,
            next_object: 0,
        }
    }

    /// A data block of `who` that saw `seen`.
    pub fn write(&mut self, phone: bool, seen: &Timeframe) -> Block {
        self.next_object += 1;
        let client = 20_000 + self.next_object as u64;
        let payload = Payload::Mutation(update_adding(self.next_object, client));
        let w = if phone {
            &mut self.phone
        } else {
            &mut self.laptop
        };
        append(&mut w.data, seen, payload)
    }

    /// `by` revokes `whom` (laptop or phone) on its control feed, cutting `whom`'s data feed
    /// at `cut` and its control feed where `seen` has it; `by = None` is the identity key
    /// itself (the seed phrase), on the laptop's control feed.
    pub fn revoke(&mut self, by: Option<bool>, phone: bool, cut: u64, seen: &Timeframe) -> Block {
        let whom = if phone { &self.phone } else { &self.laptop };
        let control = whom.control.1.public();
        let assertion = Assertion::RevokeDevice {
            identity_key: self.identity.public(),
            device_key: whom.signer.key.public(),
            cut: vec![
                (whom.data.1.public(), cut),
                (control, seen.get(&control).map_or(0, |s| s + 1)),
            ],
        };
        let subject = Subject {
            id: whom.signer.key.public(),
            assertion,
        };
        let (signer, feed) = match by {
            None => (
                Signer::direct(self.identity.clone()),
                &mut self.laptop.control,
            ),
            Some(true) => (self.phone.signer.clone(), &mut self.phone.control),
            Some(false) => (self.laptop.signer.clone(), &mut self.laptop.control),
        };
        let c = signer.issue(subject, 3, vec![]);
        append(feed, seen, Payload::Credential(Box::new(c)))
    }

    pub fn seen_base(&self) -> Timeframe {
        self.core.timeframe().clone()
    }
}

/// Delivers `blocks` to `core` in batches of `batch`, storing what it stores in `store` and
/// rebuilding from `store` whenever a revocation took effect (what the space actor does),
/// and restarting after batch `restart_after`. Returns the final core.
pub(super) fn deliver_all(
    record: &SpaceRecord,
    store: &MemStore,
    mut core: SpaceCore,
    blocks: &[Block],
    batch: usize,
    restart_after: usize,
) -> SpaceCore {
    let mut pending: Vec<Block> = blocks.to_vec();
    let mut batches = 0;
    let mut rebuilds = 0;
    while !pending.is_empty() {
        let n = batch.min(pending.len());
        let mut next: Vec<Block> = pending.drain(..n).collect();
        loop {
            let plan = core.plan(next);
            assert!(plan.rejected.is_empty(), "rejected: {:?}", plan.rejected);
            for b in &plan.accept {
                core.apply(b).unwrap();
                persist(store, record, b);
            }
            for b in plan.hold {
                core.hold(b).unwrap();
            }
            if core.take_rebuild() {
                // As the space actor does: reload, keeping what waits in the quarantine.
                rebuilds += 1;
                let held = core.take_quarantine();
                core = load_space(store, record, 90 + rebuilds).unwrap().core;
                for b in held {
                    core.hold(b).unwrap();
                }
            }
            next = core.take_ready();
            if next.is_empty() {
                break;
            }
        }
        batches += 1;
        if batches == restart_after {
            core = load_space(store, record, 99).unwrap().core;
        }
    }
    // Whatever a rebuild or restart dropped from the quarantine, peers offer again.
    let plan = core.plan(blocks.to_vec());
    assert!(plan.rejected.is_empty(), "rejected: {:?}", plan.rejected);
    for b in &plan.accept {
        core.apply(b).unwrap();
        persist(store, record, b);
    }
    if core.take_rebuild() {
        core = load_space(store, record, 98).unwrap().core;
    }
    core
}

/// The phone writes 3 blocks everyone sees, then is revoked by the laptop at cut 3 while,
/// partitioned away, it writes 2 more. Returns (world, all blocks, the late blocks' keys).
fn partitioned_phone(seed: u64) -> (Bob, Vec<Block>, BTreeSet<(PublicKey, u64)>) {
    let mut bob = Bob::new(seed);
    let mut seen = bob.seen_base();
    let mut blocks = bob.base.clone();
    for _ in 0..3 {
        let b = bob.write(true, &seen);
        seen.advance(b.feed_key, b.seq);
        blocks.push(b);
    }
    let revocation = bob.revoke(Some(false), true, 3, &seen);
    let mut late = BTreeSet::new();
    let mut phone_seen = seen.clone();
    for _ in 0..2 {
        let b = bob.write(true, &phone_seen);
        phone_seen.advance(b.feed_key, b.seq);
        late.insert((b.feed_key, b.seq));
        blocks.push(b);
    }
    blocks.push(revocation);
    (bob, blocks, late)
}

#[test]
fn a_revoked_devices_blocks_past_the_cut_are_denied_in_either_arrival_order() {
    let (bob, blocks, late) = partitioned_phone(1);
    let phone_data = bob.phone.data.1.public();
    // Revocation first: the late blocks are denied as they come.
    let mut first: Vec<Block> = blocks.clone();
    let r = first.pop().unwrap();
    let at = first.len() - late.len();
    first.insert(at, r);
    let s1 = MemStore::new();
    let a = deliver_all(
        &bob.record,
        &s1,
        SpaceCore::new(bob.record.clone(), 1),
        &first,
        1,
        0,
    );
    // Late blocks first (a relayer that saw them before the revocation): accepted, then
    // the revocation arrives and the space is rebuilt.
    let s2 = MemStore::new();
    let mut b = SpaceCore::new(bob.record.clone(), 2);
    let (before, last) = blocks.split_at(blocks.len() - 1);
    for block in before {
        b.apply(block).unwrap();
        persist(&s2, &bob.record, block);
    }
    assert!(
        b.denied().is_empty(),
        "nothing denied before the revocation"
    );
    assert_eq!(b.doc().canonical_state().as_object().unwrap().len(), 5);
    b.apply(&last[0]).unwrap();
    persist(&s2, &bob.record, &last[0]);
    assert!(b.take_rebuild(), "the revocation asks for a rebuild");
    assert!(!b.take_rebuild(), "once");
    let b = load_space(&s2, &bob.record, 3).unwrap().core;

    for core in [&a, &b] {
        let denied: BTreeSet<(PublicKey, u64)> = core.denied().keys().copied().collect();
        assert_eq!(denied, late, "exactly the blocks at or past the cut");
        for reason in core.denied().values() {
            assert!(reason.contains("was revoked"), "{reason}");
        }
        assert_eq!(
            core.timeframe().get(&phone_data),
            Some(4),
            "the feed advanced"
        );
        assert_eq!(
            core.doc().canonical_state().as_object().unwrap().len(),
            3,
            "the three objects before the cut stand, the two after do not"
        );
    }
    assert_eq!(outcome(&a), outcome(&b));
}

#[test]
fn a_client_offering_back_what_a_rebuild_took_out_is_refused() {
    // A relayer applies the late blocks before the revocation, as its Yjs clients see.
    let (bob, blocks, late) = partitioned_phone(5);
    let store = MemStore::new();
    let mut core = SpaceCore::new(bob.record.clone(), 2);
    let (before, last) = blocks.split_at(blocks.len() - 1);
    for block in before {
        core.apply(block).unwrap();
        persist(&store, &bob.record, block);
    }
    let client_copy = core.doc().snapshot();
    let without_late = {
        let mut honest = SpaceCore::new(bob.record.clone(), 3);
        for block in before
            .iter()
            .filter(|b| !late.contains(&(b.feed_key, b.seq)))
        {
            honest.apply(block).unwrap();
        }
        honest.doc().snapshot()
    };
    core.apply(&last[0]).unwrap();
    persist(&store, &bob.record, &last[0]);
    assert!(core.take_rebuild());
    let mut rebuilt = load_space(&store, &bob.record, 4).unwrap().core;
    assert_eq!(rebuilt.denied().len(), late.len());

    // The client's whole copy carries the late items: refused, and nothing changes.
    let state = rebuilt.doc().canonical_state();
    assert!(matches!(
        rebuilt.client_update(&client_copy),
        Err(SpaceError::Retracted)
    ));
    assert_eq!(rebuilt.doc().canonical_state(), state);
    // What the space holds now, or held before the late blocks, is not refused as such.
    for honest in [rebuilt.doc().snapshot(), without_late] {
        let outcome = rebuilt.client_update(&honest);
        assert!(
            !matches!(outcome, Err(SpaceError::Retracted)),
            "{outcome:?}"
        );
    }
    // A peer that saw the revocation first never applied the late blocks, and refuses them
    // from a client all the same (the same denied blocks, the same record).
    let mut in_order = blocks.clone();
    let revocation = in_order.pop().unwrap();
    in_order.insert(in_order.len() - late.len(), revocation);
    let mut first = deliver_all(
        &bob.record,
        &MemStore::new(),
        SpaceCore::new(bob.record.clone(), 6),
        &in_order,
        1,
        0,
    );
    assert_eq!(first.denied().len(), late.len());
    assert!(matches!(
        first.client_update(&client_copy),
        Err(SpaceError::Retracted)
    ));
}

#[test]
fn a_revoked_device_may_not_write_once_it_holds_its_revocation() {
    let (mut bob, blocks, _) = partitioned_phone(2);
    let record = SpaceRecord {
        control_feed: bob.phone.control.1.public(),
        data_feed: bob.phone.data.1.public(),
        ..bob.record.clone()
    };
    let mut phone = SpaceCore::new(record, 4);
    let (before, last) = blocks.split_at(blocks.len() - 1);
    for b in before {
        phone.apply(b).unwrap();
    }
    let op = || LocalOp::Add {
        id: crate::db::ObjectId::from_parts(9, 9),
        object: serde_json::json!({"k": 2}),
    };
    assert!(phone.local(op()).is_ok(), "not revoked yet");
    phone.apply(&last[0]).unwrap();
    let err = phone.local(op()).unwrap_err();
    assert!(
        matches!(err, SpaceError::Denied(WriteDenied::Revoked(d)) if d == bob.phone.signer.key.public()),
        "{err}"
    );
    // The laptop, not revoked, still writes; so does Alice.
    let seen = phone.timeframe().clone();
    let laptop_block = bob.write(false, &seen);
    assert!(matches!(
        phone.apply(&laptop_block).unwrap(),
        Verdict::Accepted(_)
    ));
}

#[test]
fn two_devices_revoking_each_other_concurrently_are_both_cut() {
    let mut bob = Bob::new(3);
    let seen = bob.seen_base();
    let laptop_revokes = bob.revoke(Some(false), true, 0, &seen);
    let phone_revokes = bob.revoke(Some(true), false, 0, &seen);
    let mut blocks = bob.base.clone();
    blocks.extend([laptop_revokes.clone(), phone_revokes.clone()]);
    let mut seen_all = seen.clone();
    seen_all.advance(laptop_revokes.feed_key, laptop_revokes.seq);
    seen_all.advance(phone_revokes.feed_key, phone_revokes.seq);
    let laptop_write = bob.write(false, &seen_all);
    let phone_write = bob.write(true, &seen_all);
    blocks.extend([laptop_write.clone(), phone_write.clone()]);
    let core = deliver_all(
        &bob.record,
        &MemStore::new(),
        SpaceCore::new(bob.record.clone(), 5),
        &blocks,
        2,
        0,
    );
    let denied: BTreeSet<(PublicKey, u64)> = core.denied().keys().copied().collect();
    let expected = BTreeSet::from([
        (laptop_write.feed_key, laptop_write.seq),
        (phone_write.feed_key, phone_write.seq),
    ]);
    assert_eq!(denied, expected, "both revoked: neither may write");
    // The seed phrase (the identity key) authorises a new device; its revocation of
    // anything always takes effect, and its new device writes (see below).
    let id = bob.identity.public();
    assert!(core
        .revocations()
        .is_revoked(&id, &bob.laptop.signer.key.public()));
    assert!(core
        .revocations()
        .is_revoked(&id, &bob.phone.signer.key.public()));
}

#[test]
fn a_revoked_device_cannot_authorise_a_new_device_for_itself() {
    let (mut bob, blocks, _) = partitioned_phone(4);
    let mut core = SpaceCore::new(bob.record.clone(), 6);
    for b in &blocks {
        core.apply(b).unwrap();
    }
    // The phone mints a device and that device admits its own control feed.
    let phone = bob.phone.signer.clone();
    let block = minted_admission(&mut bob, &phone, core.timeframe());
    let plan = core.plan(vec![block.clone()]);
    assert_eq!(plan.rejected.len(), 1, "{plan:?}");
    assert!(plan.rejected[0].2.contains("was revoked"), "{plan:?}");
    let err = core.apply(&block).unwrap_err();
    assert!(matches!(err, SpaceError::Foreign { .. }), "{err}");

    // The same, authorised by the laptop (not revoked), is admitted.
    let laptop = bob.laptop.signer.clone();
    let block = minted_admission(&mut bob, &laptop, core.timeframe());
    assert!(matches!(core.apply(&block).unwrap(), Verdict::Accepted(_)));
}

/// A new device that `authoriser` authorises for Bob, admitting its own control feed as
/// that feed's first block (written having seen `seen`).
fn minted_admission(bob: &mut Bob, authoriser: &Signer, seen: &Timeframe) -> Block {
    let minted = KeyPair::generate(&mut bob.rng);
    let authorization = authoriser.authorize_device(minted.public(), 5);
    let signer = Signer::for_device(bob.identity.public(), minted.clone(), authorization);
    let feed = KeyPair::generate(&mut bob.rng);
    let c = signer.issue(
        Subject {
            id: feed.public(),
            assertion: Assertion::AdmittedFeed {
                space_key: bob.record.space_key,
                identity_key: bob.identity.public(),
                device_key: minted.public(),
                designation: Designation::Control,
            },
        },
        5,
        vec![],
    );
    let mut log = (FeedLog::new(feed.public()), feed);
    append(&mut log, seen, Payload::Credential(Box::new(c)))
}

#[test]
fn another_identity_cannot_revoke_bobs_device() {
    let mut bob = Bob::new(5);
    let seen = bob.seen_base();
    let mut mallory = writer(&mut bob.rng);
    // Mallory names Bob's phone as her own device: it revokes nothing of Bob's. (Her feed
    // is not admitted, so it does not even reach the space: foreign.)
    let c = mallory.signer.issue(
        Subject {
            id: bob.phone.signer.key.public(),
            assertion: Assertion::RevokeDevice {
                identity_key: mallory.signer.issuer,
                device_key: bob.phone.signer.key.public(),
                cut: vec![],
            },
        },
        3,
        vec![],
    );
    let forged_feed = append(
        &mut mallory.control,
        &seen,
        Payload::Credential(Box::new(c)),
    );
    // And Bob's laptop cannot carry a revocation that Mallory signed for Bob: its chain does
    // not verify, so it is denied and revokes nothing.
    let forged = Signer {
        issuer: bob.identity.public(),
        key: mallory.signer.key.clone(),
        chain: None,
    }
    .issue(
        Subject {
            id: bob.phone.signer.key.public(),
            assertion: Assertion::RevokeDevice {
                identity_key: bob.identity.public(),
                device_key: bob.phone.signer.key.public(),
                cut: vec![],
            },
        },
        3,
        vec![],
    );
    let on_laptop = append(
        &mut bob.laptop.control,
        &seen,
        Payload::Credential(Box::new(forged)),
    );
    let mut core = bob.core;
    assert!(matches!(
        core.apply(&forged_feed).unwrap_err(),
        SpaceError::Foreign { .. }
    ));
    assert!(matches!(
        core.apply(&on_laptop).unwrap(),
        Verdict::Denied(_)
    ));
    assert!(core.revocations().is_empty());
    let mut seen = core.timeframe().clone();
    seen.advance(on_laptop.feed_key, on_laptop.seq);
    let phone_block = append(
        &mut bob.phone.data,
        &seen,
        Payload::Mutation(update_adding(77, 31)),
    );
    assert!(matches!(
        core.apply(&phone_block).unwrap(),
        Verdict::Accepted(_)
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any arrival order, batch size and restart point gives the same verdicts and the same
    /// document as the revocation arriving first.
    #[test]
    fn every_arrival_order_denies_the_same_blocks(seed in 0u64..1000, batch in 1usize..6, restart in 0usize..6) {
        let (bob, mut blocks, late) = partitioned_phone(10 + seed % 4);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for i in (1..blocks.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            blocks.swap(i, j);
        }
        let core = deliver_all(
            &bob.record,
            &MemStore::new(),
            SpaceCore::new(bob.record.clone(), 7),
            &blocks,
            batch,
            restart,
        );
        let denied: BTreeSet<(PublicKey, u64)> = core.denied().keys().copied().collect();
        prop_assert_eq!(&denied, &late);
        prop_assert_eq!(core.doc().canonical_state().as_object().unwrap().len(), 3);
    }
}
