//! Tests of the revocation rule (`revocation.rs`): a test per rule, and a proptest over
//! random causal histories of writes, syncs and revocations, inserted in every order.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::revocation::{Revocation, Revocations};
use crate::types::{Hash, PublicKey, Timeframe};

fn key(n: u8) -> PublicKey {
    PublicKey::from_bytes([n; 32])
}

/// The identity whose devices these tests revoke.
fn ident() -> PublicKey {
    key(200)
}

/// A revocation of device `revoked` (its feed is `key(revoked)`) cut at `cut`, by device
/// `by` (0: the identity key), as block `seq` of `key(by)`'s feed with `seen` in its past.
fn rev(id: u8, by: u8, revoked: u8, cut: u64, seq: u64, seen: &[(u8, u64)]) -> Revocation {
    let mut timeframe = Timeframe::new();
    for (f, s) in seen {
        timeframe.set(key(*f), *s);
    }
    Revocation {
        id: Hash([id; 32]),
        identity: ident(),
        revoked: key(revoked),
        cut: [(key(revoked), cut)].into(),
        rests_on: if by == 0 { vec![] } else { vec![key(by)] },
        feed: key(if by == 0 { 100 } else { by }),
        seq,
        timeframe,
        relayed: false,
        credential: None,
    }
}

/// `original` relayed into this space (rule 3) as block `seq` of the feed of `by`, a member
/// of another identity, with `seen` in its past: its cut names the original space's feeds
/// (here `key(150 + device)`), none of this one's.
fn relay(id: u8, original: &Revocation, by: u8, seq: u64, seen: &Timeframe) -> Revocation {
    Revocation {
        id: Hash([id; 32]),
        cut: original
            .cut
            .values()
            .map(|c| (key(150u8.wrapping_add(original.revoked.as_bytes()[0])), *c))
            .collect(),
        feed: key(by),
        seq,
        timeframe: seen.clone(),
        relayed: true,
        ..original.clone()
    }
}

fn set(revs: &[Revocation]) -> Revocations {
    let mut r = Revocations::new();
    for x in revs {
        r.insert(x.clone());
    }
    r
}

#[test]
fn a_revoked_devices_blocks_at_or_past_the_cut_are_denied_and_those_before_stand() {
    let r = set(&[rev(1, 2, 3, 5, 0, &[(3, 4)])]);
    assert!(r.is_revoked(&ident(), &key(3)));
    assert!(
        !r.denies(&ident(), &key(3), &key(3), 4),
        "written before the revocation"
    );
    assert!(r.denies(&ident(), &key(3), &key(3), 5));
    assert!(r.denies(&ident(), &key(3), &key(3), 900));
    assert!(
        !r.denies(&ident(), &key(2), &key(2), 900),
        "the revoker is not revoked"
    );
}

#[test]
fn a_feed_the_revocation_does_not_name_is_cut_at_zero() {
    let r = set(&[rev(1, 2, 3, 5, 0, &[])]);
    assert!(r.denies(&ident(), &key(3), &key(77), 0));
}

#[test]
fn two_revocations_of_one_device_cut_each_feed_at_the_smaller() {
    let mut a = rev(1, 2, 3, 5, 0, &[]);
    a.cut.insert(key(30), 9);
    let b = rev(2, 4, 3, 7, 0, &[]);
    let r = set(&[a, b]);
    assert_eq!(r.revoked()[&(ident(), key(3))][&key(3)], 5);
    // b does not name feed 30: its cut there is 0.
    assert_eq!(r.revoked()[&(ident(), key(3))][&key(30)], 0);
}

#[test]
fn two_devices_revoking_each_other_concurrently_are_both_revoked() {
    // 2 revokes 3 and 3 revokes 2, neither having seen the other's revocation.
    let a = rev(1, 2, 3, 4, 6, &[(3, 3)]);
    let b = rev(2, 3, 2, 6, 4, &[(2, 5)]);
    for order in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        let r = set(&order);
        assert!(r.takes_effect(&a.id) && r.takes_effect(&b.id));
        assert!(r.is_revoked(&ident(), &key(2)) && r.is_revoked(&ident(), &key(3)));
    }
}

#[test]
fn a_device_that_saw_its_own_revocation_cannot_revoke() {
    // 2 revokes 3 (block 2:6); 3 then sees it (its timeframe covers 2:6) and revokes 2.
    let a = rev(1, 2, 3, 4, 6, &[(3, 3)]);
    let b = rev(2, 3, 2, 7, 4, &[(2, 6)]);
    for order in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        let r = set(&order);
        assert!(r.takes_effect(&a.id));
        assert!(
            !r.takes_effect(&b.id),
            "void: its signer knew it was revoked"
        );
        assert!(r.is_revoked(&ident(), &key(3)) && !r.is_revoked(&ident(), &key(2)));
    }
}

#[test]
fn a_revocation_resting_on_a_chain_through_a_revoked_device_is_void() {
    // 5 was authorised by 3; 3 is revoked; 5 has seen it and tries to revoke 2.
    let a = rev(1, 2, 3, 4, 6, &[]);
    let mut b = rev(2, 5, 2, 7, 0, &[(2, 6)]);
    b.rests_on = vec![key(5), key(3)];
    let r = set(&[b.clone(), a.clone()]);
    assert!(!r.takes_effect(&b.id));
    assert!(!r.is_revoked(&ident(), &key(2)));
}

#[test]
fn the_identity_key_revokes_even_a_device_that_revoked_everyone_else() {
    // Device 2 revokes 3 and 4; the seed phrase (identity key) then revokes 2.
    let a = rev(1, 2, 3, 0, 1, &[]);
    let b = rev(2, 2, 4, 0, 2, &[]);
    let c = rev(3, 0, 2, 3, 0, &[(2, 2)]);
    let r = set(&[c.clone(), b, a]);
    assert!(r.takes_effect(&c.id));
    assert!(r.is_revoked(&ident(), &key(2)));
    assert!(r.denies(&ident(), &key(2), &key(2), 3));
    // What 2 did before its cut (its two revocations, blocks 1 and 2) still stands.
    assert!(r.is_revoked(&ident(), &key(3)) && r.is_revoked(&ident(), &key(4)));
}

#[test]
fn an_identity_revokes_only_its_own_devices() {
    // Another identity names device 3 in its revocation: device 3 of `ident()` stands, and
    // a device of another identity that happens to share the key is what is revoked.
    let mut other = rev(1, 2, 3, 0, 0, &[]);
    other.identity = key(201);
    let r = set(&[other]);
    assert!(!r.is_revoked(&ident(), &key(3)));
    assert!(!r.denies(&ident(), &key(3), &key(3), 0));
    assert!(r.is_revoked(&key(201), &key(3)));
    // And it does not void a revocation of `ident()` that rests on that device key.
    let r = set(&[
        Revocation {
            identity: key(201),
            ..rev(1, 0, 2, 0, 0, &[])
        },
        rev(2, 2, 3, 0, 1, &[(100, 0)]),
    ]);
    assert!(r.is_revoked(&ident(), &key(3)), "{:?}", r.revoked());
}

#[test]
fn a_relayed_revocation_alone_cuts_every_feed_of_the_device_at_zero() {
    let native_elsewhere = rev(1, 2, 3, 5, 0, &[(3, 4)]);
    let r = set(&[relay(9, &native_elsewhere, 7, 0, &Timeframe::new())]);
    assert!(r.is_revoked(&ident(), &key(3)));
    assert!(
        r.denies(&ident(), &key(3), &key(3), 0),
        "its data feed here"
    );
    assert!(
        r.denies(&ident(), &key(3), &key(33), 0),
        "any other feed here"
    );
    assert!(
        !r.denies(&ident(), &key(2), &key(2), 0),
        "the revoker stands"
    );
}

#[test]
fn a_native_revocation_silences_the_relayed_ones_whatever_the_order() {
    let elsewhere = rev(1, 2, 3, 2, 0, &[]);
    let relayed = relay(9, &elsewhere, 7, 0, &Timeframe::new());
    // Written here by device 4 of the identity, which held 5 blocks of device 3's feed.
    let native = rev(2, 4, 3, 5, 0, &[(3, 4)]);
    for order in [
        [relayed.clone(), native.clone()],
        [native.clone(), relayed.clone()],
    ] {
        let r = set(&order);
        assert!(r.takes_effect(&relayed.id) && r.takes_effect(&native.id));
        assert_eq!(r.revoked()[&(ident(), key(3))], [(key(3), 5)].into());
        assert!(
            !r.denies(&ident(), &key(3), &key(3), 4),
            "written before the revocation"
        );
        assert!(r.denies(&ident(), &key(3), &key(3), 5));
    }
}

#[test]
fn a_native_revocation_that_is_void_leaves_the_relayed_cut() {
    // 3 saw 2 revoke it in another space (relayed here by 7, block 7:0), then wrote a
    // "revocation" of 2 here: void by rule 1, so the relay alone cuts 3, at 0.
    let elsewhere = rev(1, 2, 3, 2, 0, &[]);
    let relayed = relay(9, &elsewhere, 7, 0, &Timeframe::new());
    let mut seen = Timeframe::new();
    seen.set(key(7), 0);
    let void = Revocation {
        timeframe: seen,
        ..rev(2, 3, 2, 9, 0, &[])
    };
    let r = set(&[void.clone(), relayed]);
    assert!(!r.takes_effect(&void.id));
    assert!(!r.is_revoked(&ident(), &key(2)));
    assert!(r.denies(&ident(), &key(3), &key(3), 0));
}

#[test]
fn a_duplicate_changes_nothing() {
    let a = rev(1, 2, 3, 4, 6, &[]);
    let mut r = Revocations::new();
    assert!(r.insert(a.clone()));
    assert!(!r.insert(a));
    assert_eq!(r.len(), 1);
}

/// One step of a random history among devices 1..=4 (0 is the identity key).
#[derive(Debug, Clone)]
enum Step {
    Write(u8),
    /// `.0` learns everything `.1` holds.
    Sync(u8, u8),
    /// `.0` revokes `.1`.
    Revoke(u8, u8),
    /// `.0` (5 or 6, members of another identity) relays the revocation written `.1`-th
    /// (modulo how many there are).
    Relay(u8, u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u8..=6).prop_map(Step::Write),
        (1u8..=6, 1u8..=6).prop_map(|(a, b)| Step::Sync(a, b)),
        (0u8..=4, 1u8..=4).prop_map(|(a, b)| Step::Revoke(a, b)),
        (5u8..=6, any::<u8>()).prop_map(|(a, b)| Step::Relay(a, b)),
    ]
}

/// Plays a history: every writer (device, or the identity key as writer 0 on feed 100) holds
/// its own length and what it has seen of the others; a revocation's cut is what its
/// writer holds of the revoked device's feed.
fn play(steps: &[Step]) -> Vec<Revocation> {
    let feed = |w: u8| key(if w == 0 { 100 } else { w });
    let mut len: BTreeMap<u8, u64> = BTreeMap::new();
    let mut seen: BTreeMap<u8, Timeframe> = BTreeMap::new();
    let mut out = Vec::new();
    let mut next_id = 0u8;
    for s in steps {
        match *s {
            Step::Write(w) => *len.entry(w).or_default() += 1,
            Step::Sync(a, b) => {
                let theirs = seen.get(&b).cloned().unwrap_or_default();
                let b_len = len.get(&b).copied().unwrap_or(0);
                let mine = seen.entry(a).or_default();
                for (f, sq) in theirs.iter() {
                    mine.advance(*f, *sq);
                }
                if b_len > 0 {
                    mine.advance(feed(b), b_len - 1);
                }
            }
            Step::Revoke(by, target) => {
                if by == target {
                    continue;
                }
                let tf = seen.get(&by).cloned().unwrap_or_default();
                let cut = tf.get(&feed(target)).map_or(0, |s| s + 1);
                let seq = len.get(&by).copied().unwrap_or(0);
                *len.entry(by).or_default() += 1;
                next_id = next_id.wrapping_add(1);
                let mut r = rev(next_id, by, target, cut, seq, &[]);
                r.timeframe = tf;
                r.feed = feed(by);
                out.push(r);
            }
            Step::Relay(by, pick) => {
                let natives: Vec<&Revocation> = out.iter().filter(|r| !r.relayed).collect();
                if natives.is_empty() {
                    continue;
                }
                let original = natives[usize::from(pick) % natives.len()].clone();
                let tf = seen.get(&by).cloned().unwrap_or_default();
                let seq = len.get(&by).copied().unwrap_or(0);
                *len.entry(by).or_default() += 1;
                next_id = next_id.wrapping_add(1);
                out.push(relay(next_id, &original, by, seq, &tf));
            }
        }
    }
    out
}

proptest! {
    /// Whatever order the revocations arrive in, every peer derives the same effective set
    /// and the same cuts; and the derived set satisfies rule 1 exactly.
    #[test]
    fn every_arrival_order_gives_the_same_verdicts_and_rule_one_holds(
        steps in proptest::collection::vec(step(), 0..40),
        shuffle in proptest::collection::vec(any::<u32>(), 0..40),
    ) {
        let revs = play(&steps);
        let base = set(&revs);
        let mut shuffled = revs.clone();
        for (i, s) in shuffle.iter().enumerate() {
            let n = shuffled.len();
            if n > 1 {
                shuffled.swap(i % n, (*s as usize) % n);
            }
        }
        let other = set(&shuffled);
        prop_assert_eq!(base.revoked(), other.revoked());
        for r in &revs {
            prop_assert_eq!(base.takes_effect(&r.id), other.takes_effect(&r.id));
            // Rule 1: void exactly when an effective revocation in its past revokes a
            // device it rests on.
            let voided = revs.iter().any(|e| {
                e.id != r.id
                    && base.takes_effect(&e.id)
                    && e.identity == r.identity
                    && r.rests_on.contains(&e.revoked)
                    && (if e.feed == r.feed { e.seq < r.seq } else {
                        r.timeframe.get(&e.feed).is_some_and(|s| s >= e.seq)
                    })
            });
            prop_assert_eq!(base.takes_effect(&r.id), !voided, "{:?}", r);
            if r.rests_on.is_empty() {
                prop_assert!(base.takes_effect(&r.id), "the identity key always revokes");
            }
        }
        // Rules 2 and 3: a revoked device is cut by the natives that take effect, at the
        // smallest of their cuts, if there is one; else by the relays, at 0 everywhere.
        for ((identity, device), cut) in base.revoked() {
            let natives: Vec<&Revocation> = revs
                .iter()
                .filter(|r| !r.relayed && base.takes_effect(&r.id))
                .filter(|r| r.identity == *identity && r.revoked == *device)
                .collect();
            if natives.is_empty() {
                prop_assert!(base.denies(identity, device, device, 0));
            } else {
                let least = natives
                    .iter()
                    .map(|r| r.cut.get(device).copied().unwrap_or(0))
                    .min();
                prop_assert_eq!(cut.get(device).copied(), least);
            }
        }
    }
}
