//! The verdict rule under concurrency: replicas of a space write data and change roles on
//! their own views, sync in random pairs (so demotions, removals and promotions race with
//! writes, and relayers see writes before removals), and then the union of what they wrote
//! is delivered to fresh peers in random orders and batches, split by restarts (a reload
//! from the store). Every peer must end with the same accepted set, the same denials and the
//! same control state, and no honest block is ever denied.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::core_tests::{append, hand_built, update_adding, writer, Writer};
use super::*;
use crate::credentials::{Assertion, Designation, Role, Subject};
use crate::feed::{Block, Payload};
use crate::store::{Key, MemStore, Store};
use crate::types::{encode, Hash, PublicKey};

/// One writer's replica: its keys and feeds, and its own view of the space.
struct Replica {
    w: Writer,
    core: SpaceCore,
    known: BTreeSet<(PublicKey, u64)>,
}

/// A space of an owner (replica 0) and `members` others, all synced after their admission.
struct World {
    replicas: Vec<Replica>,
    universe: BTreeMap<(PublicKey, u64), Block>,
    honest: BTreeSet<(PublicKey, u64)>,
    record: SpaceRecord,
    next_object: u128,
}

fn member_credentials(space_key: PublicKey, who: &Writer, role: Role) -> Vec<Assertion> {
    let feed = |d| Assertion::AdmittedFeed {
        space_key,
        identity_key: who.signer.issuer,
        device_key: who.signer.key.public(),
        designation: d,
    };
    vec![
        Assertion::SpaceMember { space_key, role },
        feed(Designation::Control),
        feed(Designation::Data),
    ]
}

impl World {
    fn new(seed: u64, roles: &[Role]) -> World {
        let mut hb = hand_built(seed);
        let space_key = hb.core.record().space_key;
        let mut owner = hb.owner;
        owner.control = hb.control;
        let mut universe = BTreeMap::new();
        for b in &hb.blocks {
            universe.insert((b.feed_key, b.seq), b.clone());
        }
        let mut members: Vec<Writer> = Vec::new();
        for &role in roles {
            let who = writer(&mut hb.rng);
            let subjects = [
                who.signer.issuer,
                who.control.1.public(),
                who.data.1.public(),
            ];
            for (subject, assertion) in subjects
                .into_iter()
                .zip(member_credentials(space_key, &who, role))
            {
                let c = owner.signer.issue(
                    Subject {
                        id: subject,
                        assertion,
                    },
                    2,
                    vec![],
                );
                let tf = hb.core.timeframe().clone();
                let b = append(&mut owner.control, &tf, Payload::Credential(Box::new(c)));
                hb.core.apply(&b).unwrap();
                universe.insert((b.feed_key, b.seq), b);
            }
            members.push(who);
        }
        let record = hb.core.record().clone();
        let honest = universe.keys().copied().collect();
        let mut world = World {
            replicas: vec![Replica {
                w: owner,
                core: hb.core,
                known: universe.keys().copied().collect(),
            }],
            universe,
            honest,
            record,
            next_object: 0,
        };
        for (i, w) in members.into_iter().enumerate() {
            world.replicas.push(Replica {
                w,
                core: SpaceCore::new(world.record.clone(), 1000 + i as u64),
                known: BTreeSet::new(),
            });
            world.sync(i + 1, 0);
        }
        world
    }

    fn publish(&mut self, who: usize, block: Block, honest: bool) -> (PublicKey, u64) {
        let key = (block.feed_key, block.seq);
        let r = &mut self.replicas[who];
        r.core.apply(&block).unwrap();
        r.known.insert(key);
        if honest {
            self.honest.insert(key);
        }
        self.universe.insert(key, block);
        key
    }

    /// `who` writes an object: an honest writer only if its view lets it.
    fn write(&mut self, who: usize, rogue: bool) -> Option<(PublicKey, u64)> {
        let r = &mut self.replicas[who];
        let allowed = r
            .core
            .state()
            .check_data_writer(&r.w.data.1.public())
            .is_ok();
        if !allowed && !rogue {
            return None;
        }
        self.next_object += 1;
        let client = 10_000 + self.next_object as u64;
        let tf = r.core.timeframe().clone();
        let payload = Payload::Mutation(update_adding(self.next_object, client));
        let block = append(&mut r.w.data, &tf, payload);
        Some(self.publish(who, block, allowed))
    }

    /// `who` sets `target`'s role, if its own view allows it (honest control writers only).
    fn set_role(&mut self, who: usize, target: usize, role: Role) -> Option<Hash> {
        let space_key = self.record.space_key;
        let subject = self.replicas[target].w.signer.issuer;
        let r = &mut self.replicas[who];
        let c = r.w.signer.issue(
            Subject {
                id: subject,
                assertion: Assertion::SpaceMember { space_key, role },
            },
            3,
            vec![],
        );
        let may_write = r
            .core
            .state()
            .check_control_writer(&r.w.control.1.public(), &c)
            .is_ok();
        if !may_write || r.core.state().clone().apply(&c).is_err() {
            return None;
        }
        let id = c.id();
        let tf = r.core.timeframe().clone();
        let block = append(&mut r.w.control, &tf, Payload::Credential(Box::new(c)));
        self.publish(who, block, true);
        Some(id)
    }

    /// `to` receives everything `from` holds.
    fn sync(&mut self, to: usize, from: usize) {
        let missing: Vec<Block> = self.replicas[from]
            .known
            .difference(&self.replicas[to].known)
            .map(|k| self.universe[k].clone())
            .collect();
        let r = &mut self.replicas[to];
        for b in deliver(&mut r.core, missing, None) {
            r.known.insert((b.feed_key, b.seq));
        }
    }
}

/// Delivers `blocks` as one batch through plan/apply/quarantine (and stores what is stored
/// in `store`); returns the blocks stored.
fn deliver(core: &mut SpaceCore, blocks: Vec<Block>, store: Option<&MemStore>) -> Vec<Block> {
    let mut stored = Vec::new();
    let mut batch = blocks;
    loop {
        let plan = core.plan(batch);
        assert!(plan.rejected.is_empty(), "rejected: {:?}", plan.rejected);
        for b in plan.accept {
            core.apply(&b).unwrap();
            if let Some(store) = store {
                persist(store, core.record(), &b);
            }
            stored.push(b);
        }
        for b in plan.hold {
            core.hold(b).unwrap();
        }
        batch = core.take_ready();
        if batch.is_empty() {
            return stored;
        }
    }
}

pub(super) fn persist(store: &MemStore, record: &SpaceRecord, block: &Block) {
    let designation = match block.payload {
        Payload::Credential(_) => Designation::Control,
        Payload::Mutation(_) => Designation::Data,
    };
    let feed = FeedRecord {
        feed_key: block.feed_key,
        designation,
        own: false,
    };
    store
        .put(
            &Key::feed(&record.space_key, &block.feed_key),
            &encode(&feed).unwrap(),
        )
        .unwrap();
    store
        .put(
            &Key::block(&block.feed_key, block.seq),
            &encode(block).unwrap(),
        )
        .unwrap();
}

/// Everything the verdict rule decides, in comparable form.
#[derive(Debug, PartialEq)]
pub(super) struct Outcome {
    timeframe: Vec<(PublicKey, u64)>,
    denied: BTreeMap<(PublicKey, u64), String>,
    members: Vec<(PublicKey, Role)>,
    feeds: Vec<PublicKey>,
    doc: serde_json::Value,
}

pub(super) fn outcome(core: &SpaceCore) -> Outcome {
    Outcome {
        timeframe: core.timeframe().iter().map(|(k, s)| (*k, *s)).collect(),
        denied: core.denied().clone(),
        members: core
            .state()
            .members()
            .iter()
            .map(|(k, m)| (*k, m.role))
            .collect(),
        feeds: core.state().feeds().keys().copied().collect(),
        doc: core.doc().canonical_state(),
    }
}

/// A fresh peer receives `blocks` shuffled by `seed`, in batches, and restarts (reloads from
/// its store) after batch `restart_after`.
fn fresh_peer(record: &SpaceRecord, mut blocks: Vec<Block>, seed: u64) -> SpaceCore {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for i in (1..blocks.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        blocks.swap(i, j);
    }
    let everything = blocks.clone();
    let store = MemStore::new();
    let mut core = SpaceCore::new(record.clone(), 77);
    let restart_after = rng.next_u64() % 4;
    let mut batches = 0;
    while !blocks.is_empty() {
        let n = 1 + (rng.next_u64() % 8) as usize;
        let batch: Vec<Block> = blocks.drain(..n.min(blocks.len())).collect();
        deliver(&mut core, batch, Some(&store));
        batches += 1;
        if batches == restart_after {
            // A restart: the quarantine is lost, the store is replayed.
            core = load_space(&store, record, 78).unwrap().core;
        }
    }
    // What was quarantined before the restart is lost with it; peers offer it again.
    deliver(&mut core, everything, None);
    core
}

#[derive(Debug, Clone)]
enum Action {
    Write {
        who: usize,
        rogue: bool,
    },
    Role {
        who: usize,
        target: usize,
        role: Role,
    },
    Sync {
        to: usize,
        from: usize,
    },
}

fn action(replicas: usize) -> impl Strategy<Value = Action> {
    let role = prop_oneof![
        Just(Role::Admin),
        Just(Role::Editor),
        Just(Role::Reader),
        Just(Role::Removed)
    ];
    prop_oneof![
        3 => (0..replicas, prop::bool::weighted(0.15))
            .prop_map(|(who, rogue)| Action::Write { who, rogue }),
        2 => (0..replicas, 1..replicas, role)
            .prop_map(|(who, target, role)| Action::Role { who, target, role }),
        3 => (0..replicas, 0..replicas).prop_map(|(to, from)| Action::Sync { to, from }),
    ]
}

/// Runs `actions` on a world of an owner and three members, then checks the rule.
fn check(seed: u64, actions: &[Action], orders: &[u64]) {
    let mut world = World::new(seed, &[Role::Admin, Role::Editor, Role::Admin]);
    for a in actions {
        match *a {
            Action::Write { who, rogue } => {
                world.write(who, rogue);
            }
            Action::Role { who, target, role } if who != target => {
                world.set_role(who, target, role);
            }
            Action::Role { .. } => {}
            Action::Sync { to, from } if to != from => world.sync(to, from),
            Action::Sync { .. } => {}
        }
    }
    let all: Vec<Block> = world.universe.values().cloned().collect();
    let reference = {
        let mut core = SpaceCore::new(world.record.clone(), 5);
        deliver(&mut core, all.clone(), None);
        outcome(&core)
    };
    assert_eq!(
        reference.timeframe.iter().map(|(_, s)| s + 1).sum::<u64>(),
        all.len() as u64,
        "every block is stored, accepted or denied"
    );
    let honest_denied: Vec<_> = reference
        .denied
        .keys()
        .filter(|k| world.honest.contains(k))
        .collect();
    assert!(
        honest_denied.is_empty(),
        "honest blocks denied: {honest_denied:?}"
    );
    for &order in orders {
        let peer = fresh_peer(&world.record, all.clone(), order);
        assert_eq!(outcome(&peer), reference, "delivery order {order}");
    }
    let n = world.replicas.len();
    for to in 0..n {
        for from in 0..n {
            if to != from {
                world.sync(to, from);
            }
        }
    }
    for (i, r) in world.replicas.iter().enumerate() {
        assert_eq!(outcome(&r.core), reference, "replica {i} after a full sync");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn every_peer_reaches_the_same_verdicts_and_control_state(
        seed in 0u64..1000,
        actions in prop::collection::vec(action(4), 5..40),
        orders in prop::collection::vec(any::<u64>(), 3),
    ) {
        check(seed, &actions, &orders);
    }
}

/// The issue's repro: A (owner) is away while editor B writes X, which editor C relays; A
/// demotes B without having seen X. X is accepted everywhere, in either order; B's next
/// write, made after B saw its demotion, is denied everywhere.
#[test]
fn a_write_concurrent_with_its_writers_demotion_is_accepted_everywhere() {
    use Action::{Sync, Write};
    let actions = [
        Write {
            who: 2,
            rogue: false,
        },
        Sync { to: 3, from: 2 },
        Action::Role {
            who: 0,
            target: 2,
            role: Role::Reader,
        },
        Sync { to: 3, from: 0 },
        Sync { to: 0, from: 3 },
        Sync { to: 2, from: 0 },
        Write {
            who: 2,
            rogue: true,
        },
    ];
    check(1, &actions, &[1, 2, 3, 4]);
    let mut world = World::new(1, &[Role::Admin, Role::Editor, Role::Admin]);
    let x = world.write(2, false).unwrap();
    world.sync(3, 2);
    world.set_role(0, 2, Role::Reader).unwrap();
    world.sync(3, 0);
    world.sync(2, 0);
    let late = world.write(2, true).unwrap();
    world.sync(0, 2);
    world.sync(3, 2);
    for r in &world.replicas {
        assert!(!r.core.denied().contains_key(&x), "X is accepted");
    }
    // Replica 1 never heard of it; everyone who did denies it.
    for i in [0, 2, 3] {
        let denied = world.replicas[i].core.denied();
        assert!(
            denied.contains_key(&late),
            "replica {i} denies the late write"
        );
    }
    assert_eq!(
        world.replicas[3]
            .core
            .state()
            .role(&world.replicas[2].w.signer.issuer),
        Some(Role::Reader)
    );
}

/// Admin B adds member D while the owner removes B: B's credential is void, whichever
/// arrives first; a concurrent promotion by an ADMIN loses to the OWNER's demotion.
#[test]
fn credentials_concurrent_with_their_issuers_removal_are_void() {
    let mut world = World::new(3, &[Role::Admin, Role::Editor, Role::Editor]);
    // B = 1 (admin) promotes C = 2 to admin; concurrently the owner removes B and makes
    // D = 3 a reader while B makes D an editor.
    let promotion = world.set_role(1, 2, Role::Admin).unwrap();
    world.set_role(1, 3, Role::Admin).unwrap();
    world.set_role(0, 1, Role::Removed).unwrap();
    world.set_role(0, 3, Role::Reader).unwrap();
    let all: Vec<Block> = world.universe.values().cloned().collect();
    let mut outcomes = Vec::new();
    for order in 0..6 {
        let peer = fresh_peer(&world.record, all.clone(), order);
        let role = |i: usize| peer.state().role(&world.replicas[i].w.signer.issuer);
        assert_eq!(role(1), Some(Role::Removed));
        assert_eq!(role(2), Some(Role::Editor), "B's promotion of C is void");
        assert_eq!(role(3), Some(Role::Reader), "the owner wins the tie");
        assert!(peer.control().void().contains(&promotion));
        outcomes.push(outcome(&peer));
    }
    assert!(outcomes.windows(2).all(|w| w[0] == w[1]));
}

/// Two admins remove each other concurrently: every peer picks the same survivor.
#[test]
fn mutual_removal_has_one_outcome() {
    let mut world = World::new(4, &[Role::Admin, Role::Admin, Role::Editor]);
    world.set_role(1, 2, Role::Removed);
    world.set_role(2, 1, Role::Removed);
    let all: Vec<Block> = world.universe.values().cloned().collect();
    let first = outcome(&fresh_peer(&world.record, all.clone(), 0));
    let removed = first
        .members
        .iter()
        .filter(|(_, r)| *r == Role::Removed)
        .count();
    assert_eq!(removed, 1, "{first:?}");
    for order in 1..6 {
        assert_eq!(
            outcome(&fresh_peer(&world.record, all.clone(), order)),
            first
        );
    }
}
