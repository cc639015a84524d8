//! Relayed revocations in a space (rule 3 of `credentials/revocation.rs`, `relay.rs`): Bob's
//! phone revoked the laptop in another space; Alice, a member of both, relays it here. Every
//! peer must deny all the laptop's work here, whatever the relayer saw and whatever the
//! arrival order, until a revocation by Bob's own identity here says where its cut is;
//! forged copies and relays of one's own identity count for nothing; the genesis stands.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use super::core_tests::append;
use super::revocation_tests::{deliver_all, Bob};
use super::verdict_tests::{outcome, persist};
use super::*;
use crate::credentials::{Assertion, Credential, Role, Subject};
use crate::feed::{Block, Payload};
use crate::store::MemStore;
use crate::types::{KeyPair, PublicKey, Timeframe};

/// The phone's revocation of the laptop as written in another space: its cut names a feed of
/// that space, none of this one.
fn revoked_elsewhere(bob: &Bob) -> Credential {
    let laptop = bob.laptop.signer.key.public();
    bob.phone.signer.issue(
        Subject {
            id: laptop,
            assertion: Assertion::RevokeDevice {
                identity_key: bob.identity.public(),
                device_key: laptop,
                cut: vec![(KeyPair::from_secret([77; 32]).public(), 4)],
            },
        },
        3,
        vec![],
    )
}

/// `revocation`, relayed by `signer`'s identity on `feed`, which has seen `seen`.
fn relayed_by(
    signer: &crate::credentials::Signer,
    feed: &mut (crate::feed::FeedLog, KeyPair),
    revocation: Credential,
    seen: &Timeframe,
) -> Block {
    let Assertion::RevokeDevice { device_key, .. } = revocation.subject.assertion else {
        panic!("not a revocation");
    };
    let c = signer.issue(
        Subject {
            id: device_key,
            assertion: Assertion::RelayedRevocation {
                revocation: Box::new(revocation),
            },
        },
        4,
        vec![],
    );
    append(feed, seen, Payload::Credential(Box::new(c)))
}

/// Alice relays `revocation` (by default [`revoked_elsewhere`]) on her control feed.
fn alice_relays(bob: &mut Bob, revocation: Option<Credential>, seen: &Timeframe) -> Block {
    let revocation = revocation.unwrap_or_else(|| revoked_elsewhere(bob));
    let signer = bob.alice.signer.clone();
    relayed_by(&signer, &mut bob.alice_control, revocation, seen)
}

fn deliver(bob: &Bob, blocks: &[Block], client: u64) -> SpaceCore {
    let store = MemStore::new();
    deliver_all(
        &bob.record,
        &store,
        SpaceCore::new(bob.record.clone(), client),
        blocks,
        1,
        0,
    )
}

fn denied(core: &SpaceCore) -> BTreeSet<(PublicKey, u64)> {
    core.denied().keys().copied().collect()
}

/// The laptop writes two objects and the phone one, all having seen only the base.
fn two_laptop_writes_and_a_phone_write(bob: &mut Bob) -> (Vec<Block>, Timeframe) {
    let base = bob.seen_base();
    let mut seen = base.clone();
    let mut blocks = Vec::new();
    for phone in [false, false, true] {
        let b = bob.write(phone, &base);
        seen.advance(b.feed_key, b.seq);
        blocks.push(b);
    }
    (blocks, seen)
}

#[test]
fn a_relayed_revocation_denies_all_the_devices_work_here_whatever_the_relayer_saw_or_the_order() {
    let mut bob = Bob::new(11);
    let laptop_data = bob.laptop.data.1.public();
    let (writes, seen_all) = two_laptop_writes_and_a_phone_write(&mut bob);
    let base_seen = bob.seen_base();
    // One relay that saw nothing of the laptop's work, and (in a second history) one that
    // saw all of it: the relayer's view changes nothing.
    let mut blind_bob = Bob::new(11);
    let _ = two_laptop_writes_and_a_phone_write(&mut blind_bob);
    let blind = alice_relays(&mut blind_bob, None, &base_seen);
    let seeing = alice_relays(&mut bob, None, &seen_all);
    let mut outcomes = Vec::new();
    for relay in [&blind, &seeing] {
        let mut first = bob.base.clone();
        first.push(relay.clone());
        first.extend(writes.iter().cloned());
        let mut last = bob.base.clone();
        last.extend(writes.iter().cloned());
        last.push(relay.clone());
        for (n, blocks) in [first, last].iter().enumerate() {
            let core = deliver(&bob, blocks, 10 + n as u64);
            assert_eq!(
                denied(&core),
                [(laptop_data, 0), (laptop_data, 1)].into(),
                "exactly the laptop's blocks"
            );
            for reason in core.denied().values() {
                assert!(reason.contains("was revoked"), "{reason}");
            }
            assert!(core
                .revocations()
                .is_revoked(&bob.identity.public(), &bob.laptop.signer.key.public()));
            assert_eq!(
                core.doc().canonical_state().as_object().unwrap().len(),
                1,
                "the phone's object alone stands"
            );
            outcomes.push(core.denied().clone());
        }
    }
    assert!(outcomes.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn a_native_revocation_keeps_the_work_before_its_cut_in_either_order_with_the_relay() {
    let mut bob = Bob::new(12);
    let laptop_data = bob.laptop.data.1.public();
    let (writes, _) = two_laptop_writes_and_a_phone_write(&mut bob);
    let base = bob.seen_base();
    let relay = alice_relays(&mut bob, None, &base);
    // The phone, having seen the laptop's first block only, revokes it here: cut 1.
    let mut phone_seen = base.clone();
    phone_seen.advance(writes[0].feed_key, writes[0].seq);
    phone_seen.advance(writes[2].feed_key, writes[2].seq);
    let native = bob.revoke(Some(true), false, 1, &phone_seen);
    let mut outcomes = Vec::new();
    for order in [[&relay, &native], [&native, &relay]] {
        let mut blocks = bob.base.clone();
        blocks.extend(writes.iter().cloned());
        blocks.extend(order.iter().map(|b| (*b).clone()));
        let core = deliver(&bob, &blocks, 20);
        assert_eq!(
            denied(&core),
            [(laptop_data, 1)].into(),
            "the block before the native cut stands, the relay's cut at 0 does not count"
        );
        assert_eq!(core.doc().canonical_state().as_object().unwrap().len(), 2);
        outcomes.push(outcome(&core));
    }
    assert_eq!(outcomes[0], outcomes[1]);
}

#[test]
fn a_relay_of_a_forged_revocation_is_denied_and_revokes_nothing() {
    let mut bob = Bob::new(13);
    let (writes, _) = two_laptop_writes_and_a_phone_write(&mut bob);
    let mut forged = revoked_elsewhere(&bob);
    // Bob's signature over another cut.
    if let Assertion::RevokeDevice { cut, .. } = &mut forged.subject.assertion {
        cut[0].1 = 0;
    }
    let base = bob.seen_base();
    let relay = alice_relays(&mut bob, Some(forged), &base);
    let mut blocks = bob.base.clone();
    blocks.push(relay.clone());
    blocks.extend(writes);
    let core = deliver(&bob, &blocks, 30);
    let reasons: Vec<&String> = core.denied().values().collect();
    assert_eq!(denied(&core), [(relay.feed_key, relay.seq)].into());
    assert!(reasons[0].contains("does not verify"), "{}", reasons[0]);
    assert!(core.revocations().is_empty());
    assert_eq!(core.doc().canonical_state().as_object().unwrap().len(), 3);
}

#[test]
fn a_relay_of_ones_own_identitys_revocation_is_denied_and_revokes_nothing() {
    let mut bob = Bob::new(14);
    let (writes, _) = two_laptop_writes_and_a_phone_write(&mut bob);
    let base = bob.seen_base();
    let signer = bob.phone.signer.clone();
    let revocation = revoked_elsewhere(&bob);
    let relay = relayed_by(&signer, &mut bob.phone.control, revocation, &base);
    let mut blocks = bob.base.clone();
    blocks.push(relay.clone());
    blocks.extend(writes);
    let core = deliver(&bob, &blocks, 40);
    assert_eq!(denied(&core), [(relay.feed_key, relay.seq)].into());
    let reason = &core.denied()[&(relay.feed_key, relay.seq)];
    assert!(reason.contains("own device"), "{reason}");
    assert!(core.revocations().is_empty());
}

#[test]
fn a_relayed_cut_never_takes_the_genesis() {
    // Alice's device revokes itself elsewhere (a well-formed revocation: her identity, her
    // device), and Bob's laptop relays that here, where Alice's control feed carries the
    // genesis: the genesis stands, what Alice's device signed itself does not.
    let mut bob = Bob::new(15);
    let alice_device = bob.alice.signer.key.public();
    let alice_identity = bob.alice.signer.issuer;
    let self_revocation = bob.alice.signer.issue(
        Subject {
            id: alice_device,
            assertion: Assertion::RevokeDevice {
                identity_key: alice_identity,
                device_key: alice_device,
                cut: vec![],
            },
        },
        3,
        vec![],
    );
    let base = bob.seen_base();
    let signer = bob.laptop.signer.clone();
    let relay = relayed_by(&signer, &mut bob.laptop.control, self_revocation, &base);
    let store = MemStore::new();
    let mut core = SpaceCore::new(bob.record.clone(), 50);
    for b in bob.base.iter().chain([&relay]) {
        assert!(matches!(core.apply(b).unwrap(), Verdict::Accepted(_)));
        persist(&store, &bob.record, b);
    }
    assert!(core.take_rebuild());
    let core = load_space(&store, &bob.record, 51).unwrap().core;
    assert!(core.state().has_genesis(), "the genesis stands");
    assert_eq!(
        core.state().role(&alice_identity),
        Some(Role::Owner),
        "the space key made Alice its owner"
    );
    let denied = denied(&core);
    let genesis_feed = bob.record.genesis_feed.unwrap();
    assert!(
        denied.iter().any(|(f, _)| *f == genesis_feed),
        "Alice's own credentials there are cut: {denied:?}"
    );
    for b in &bob.base {
        if let Payload::Credential(c) = &b.payload {
            if c.issuer == bob.record.space_key {
                assert!(
                    !denied.contains(&(b.feed_key, b.seq)),
                    "genesis block {}",
                    b.seq
                );
            }
        }
    }
}
